import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class ClientRateLimitTests: XCTestCase {
    let second: Int64 = 1_000_000_000

    /// A limit and its rates, as a connection and its server hold them.
    struct Limited {
        var state = ClientRateLimit()
        let messages: ClientRateLimit.Rate?
        let bytes: ClientRateLimit.Rate?

        mutating func admit(bytes count: Int, now: Int64) -> ClientRateLimit.Verdict {
            state.admit(bytes: count, now: now, messages: messages, bytes: bytes)
        }
    }

    func testABurstPassesThenTheRateHolds() {
        var limit = Limited(messages: .init(perSecond: 10, burst: 5), bytes: nil)
        let start = 1000 * second
        let admitted = (0..<20).prefix { _ in limit.admit(bytes: 1, now: start) == .admitted }.count
        XCTAssertEqual(admitted, 6, "the burst beyond the first")
        XCTAssertEqual(limit.admit(bytes: 1, now: start), .tooManyMessages)
        XCTAssertEqual(limit.admit(bytes: 1, now: start + second / 10), .admitted, "a tenth of a second earns one message")
        XCTAssertEqual(limit.admit(bytes: 1, now: start + second / 10), .tooManyMessages)
    }

    func testASteadyClientAtItsRateIsNeverRefused() {
        var limit = Limited(messages: .init(perSecond: 100, burst: 1), bytes: .init(perSecond: 1000, burst: 100))
        for tick in 0..<1000 {
            XCTAssertEqual(limit.admit(bytes: 10, now: Int64(tick) * second / 100), .admitted)
        }
    }

    func testBytesAreLimitedByTheirOwnRate() {
        var limit = Limited(messages: nil, bytes: .init(perSecond: 1000, burst: 1500))
        XCTAssertEqual(limit.admit(bytes: 1500, now: 0), .admitted)
        XCTAssertEqual(limit.admit(bytes: 1, now: 0), .tooManyBytes)
        XCTAssertEqual(limit.admit(bytes: 500, now: second / 2), .admitted)
    }

    func testARefusedMessageCostsNothing() {
        var limit = Limited(messages: .init(perSecond: 1, burst: 1), bytes: nil)
        XCTAssertEqual(limit.admit(bytes: 0, now: 0), .admitted)
        XCTAssertEqual(limit.admit(bytes: 0, now: 0), .admitted)
        for _ in 0..<100 { XCTAssertEqual(limit.admit(bytes: 0, now: 0), .tooManyMessages) }
        XCTAssertEqual(limit.admit(bytes: 0, now: second), .admitted, "refusals did not push the allowance further away")
    }

    func testAZeroRateIsUnlimited() {
        XCTAssertNil(ClientRateLimit.Rate(perSecond: 0, burst: 10))
        var limit = Limited(messages: nil, bytes: nil)
        for _ in 0..<10_000 { XCTAssertEqual(limit.admit(bytes: 1 << 20, now: 0), .admitted) }
    }
}
