import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class SubscriptionTableTests: XCTestCase {
    func testOneSubscribePerChannelAndUnsubscribeWithTheLast() {
        var table = SubscriptionTable(hubCount: 2)
        XCTAssertEqual(table.acquire(["a", "b"], hub: 0), ["a", "b"])
        XCTAssertEqual(table.acquire(["a"], hub: 1), [])
        XCTAssertEqual(table.acquire(["a"], hub: 1), [])
        XCTAssertEqual(table.release(["a"], hub: 1), [])
        XCTAssertEqual(table.release(["a", "b"], hub: 0), ["b"])
        XCTAssertEqual(table.release(["a"], hub: 1), ["a"])
        XCTAssertEqual(table.channelCount, 2, "idle, still subscribed, until removed")
        XCTAssertEqual(table.remove(["a", "b"]), ["a", "b"])
        XCTAssertEqual(table.channelCount, 0)
    }

    func testAnIdleChannelIsTakenAgainWithoutASubscribeAndOnlyIdleOnesAreRemoved() {
        var table = SubscriptionTable(hubCount: 2)
        _ = table.acquire(["a", "b"], hub: 0)
        XCTAssertEqual(table.release(["a"], hub: 0), ["a"])
        XCTAssertEqual(table.acquire(["a"], hub: 1), [], "still subscribed")
        XCTAssertEqual(table.remove(["a", "b", "zzz"]), [], "a and b have subscribers")
        var hubs: [Int] = []
        table.forEachHub(of: "a") { hubs.append($0) }
        XCTAssertEqual(hubs, [1])
    }

    func testReleasingWhatWasNeverAcquiredChangesNothing() {
        var table = SubscriptionTable(hubCount: 2)
        _ = table.acquire(["a"], hub: 0)
        XCTAssertEqual(table.release(["a"], hub: 1), [])
        XCTAssertEqual(table.release(["zzz"], hub: 0), [])
        XCTAssertEqual(table.channelCount, 1)
    }

    func testHubsWithSubscribers() {
        var table = SubscriptionTable(hubCount: 3)
        _ = table.acquire(["a"], hub: 0)
        _ = table.acquire(["a"], hub: 2)
        var hubs: [Int] = []
        table.forEachHub(of: "a") { hubs.append($0) }
        XCTAssertEqual(hubs, [0, 2])
    }

    func testAnOlderConfirmationDoesNotConfirmANewerSubscribe() {
        var table = SubscriptionTable(hubCount: 1)
        _ = table.acquire(["a"], hub: 0)
        table.subscribeSent(["a"])
        _ = table.remove(table.release(["a"], hub: 0))
        _ = table.acquire(["a"], hub: 0)
        table.subscribeSent(["a"])
        XCTAssertFalse(table.confirmationReceived("a"), "the first SUBSCRIBE's reply")
        XCTAssertFalse(table.isConfirmed("a", connected: true))
        XCTAssertTrue(table.confirmationReceived("a"), "the second SUBSCRIBE's reply")
        XCTAssertTrue(table.isConfirmed("a", connected: true))
    }

    func testConfirmationWaitsForEverySubscribeSent() {
        var table = SubscriptionTable(hubCount: 1)
        _ = table.acquire(["a"], hub: 0)
        table.subscribeSent(["a"])
        table.subscribeSent(["a"])
        XCTAssertFalse(table.confirmationReceived("a"))
        XCTAssertTrue(table.confirmationReceived("a"))
        table.connectionLost(of: ["a"])
        XCTAssertTrue(table.isConfirmed("a", connected: true))
        XCTAssertFalse(table.isConfirmed("a", connected: false))
    }
}
