import NIOCore
import XCTest

@testable import WS4Redis

/// One event loop's hub, driven through its port (as connections use it) and by the multiplexer.
final class LoopHubTests: XCTestCase {
    func testTheFirstSubscriberOfAChannelWaitsForRedisToConfirmIt() throws {
        let fanout = try FanoutFixture()
        let subscriber = RecordingSubscriber(channels: ["broadcast:f"])
        _ = fanout.hubs[0].join(subscriber, channels: subscriber.channels)
        fanout.settle()
        XCTAssertEqual(try fanout.sentToRedis(), [FanoutFixture.subscribe("broadcast:f")])
        XCTAssertEqual(subscriber.confirmations, 0, "not before Redis answered")
        fanout.confirm("broadcast:f")
        XCTAssertEqual(subscriber.confirmations, 1)
    }

    func testASecondSubscriberOfAConfirmedChannelIsConfirmedAtOnceWithoutASubscribe() throws {
        let fanout = try FanoutFixture()
        _ = fanout.subscriber(of: "broadcast:f")
        _ = try fanout.sentToRedis()
        let second = RecordingSubscriber(channels: ["broadcast:f"])
        _ = fanout.hubs[0].join(second, channels: second.channels)
        XCTAssertEqual(second.confirmations, 1, "confirmed within join, on the hub's loop")
        fanout.settle()
        XCTAssertEqual(try fanout.sentToRedis(), [])
    }

    func testAConnectionWithoutChannelsJoinsTheLoopWithoutASubscribe() throws {
        let fanout = try FanoutFixture()
        let echo = RecordingSubscriber(channels: [])
        XCTAssertEqual(fanout.hubs[0].join(echo, channels: []), [])
        fanout.settle()
        XCTAssertEqual(try fanout.sentToRedis(), [])
        XCTAssertEqual(echo.hubSlot, 0, "it is on the hub's list, for heartbeats and shutdown")
    }

    func testEverySubscriberGetsTheSameFrameAndIsFlushedOnceForABatch() throws {
        let fanout = try FanoutFixture()
        let subscribers = (0..<3).map { _ in RecordingSubscriber(channels: ["broadcast:f"]) }
        let other = RecordingSubscriber(channels: ["broadcast:other"])
        for subscriber in subscribers + [other] { _ = fanout.hubs[0].join(subscriber, channels: subscriber.channels) }
        fanout.settle()
        fanout.confirm("broadcast:f", "broadcast:other")
        let frame = FrameWriter.frame(opcode: .text, payload: ByteBuffer(string: "x"), allocator: ByteBufferAllocator())
        fanout.hubs[0].deliver([FanoutMessage(channel: "broadcast:f", frame: frame), FanoutMessage(channel: "broadcast:f", frame: frame)])
        for subscriber in subscribers {
            XCTAssertEqual(subscriber.frames, [frame, frame])
            XCTAssertEqual(subscriber.flushes, 1, "one flush per batch")
            XCTAssertFalse(subscriber.needsFlush)
        }
        XCTAssertEqual(other.frames, [], "a message goes to its channel's subscribers only")
        XCTAssertEqual(other.flushes, 0)
        XCTAssertEqual(fanout.counters.messagesOut.current, 6)
    }

    func testASubscriberThatDoesNotTakeAFrameIsNeitherCountedNorFlushed() throws {
        let fanout = try FanoutFixture()
        let closed = fanout.subscriber(of: "broadcast:f")
        closed.writes = false
        let frame = FrameWriter.frame(opcode: .text, payload: ByteBuffer(string: "x"), allocator: ByteBufferAllocator())
        fanout.hubs[0].deliver([FanoutMessage(channel: "broadcast:f", frame: frame)])
        XCTAssertEqual(closed.flushes, 0)
        XCTAssertEqual(fanout.counters.messagesOut.current, 0)
    }

    func testTheLastSubscriberLeavingUnsubscribesAndOthersLeavingDoNot() throws {
        let fanout = try FanoutFixture()
        let first = RecordingSubscriber(channels: ["broadcast:f"])
        let second = RecordingSubscriber(channels: ["broadcast:f"])
        first.channels = fanout.hubs[0].join(first, channels: first.channels)
        second.channels = fanout.hubs[0].join(second, channels: second.channels)
        fanout.settle()
        fanout.confirm("broadcast:f")
        _ = try fanout.sentToRedis()
        fanout.hubs[0].leave(first)
        fanout.settle()
        XCTAssertEqual(try fanout.sentToRedis(), [])
        XCTAssertEqual(first.hubSlot, -1)
        fanout.hubs[0].leave(second)
        fanout.settle()
        XCTAssertEqual(try fanout.sentToRedis(), [FanoutFixture.unsubscribe("broadcast:f")])
        fanout.hubs[0].leave(second)
        fanout.settle()
        XCTAssertEqual(try fanout.sentToRedis(), [], "leaving twice changes nothing")
    }

    func testSubscribersWithTheSameChannelsShareOneListUntilTheLastLeaves() throws {
        let fanout = try FanoutFixture()
        func storage(_ list: [String]) -> UnsafeRawPointer? { list.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) } }
        let name = "broadcast:a-facility-with-a-long-name"
        let first = RecordingSubscriber(channels: [name])
        let second = RecordingSubscriber(channels: [name])
        first.channels = fanout.hubs[0].join(first, channels: first.channels)
        second.channels = fanout.hubs[0].join(second, channels: [name])
        XCTAssertEqual(storage(second.channels), storage(first.channels))
        fanout.hubs[0].leave(first)
        let third = RecordingSubscriber(channels: [name])
        third.channels = fanout.hubs[0].join(third, channels: [name])
        XCTAssertEqual(storage(third.channels), storage(second.channels), "one user left: still shared")
        fanout.hubs[0].leave(second)
        fanout.hubs[0].leave(third)
        let fresh = [name]
        XCTAssertEqual(storage(fanout.hubs[0].join(RecordingSubscriber(channels: fresh), channels: fresh)), storage(fresh), "the last user gone, the list was dropped")
    }

    func testAfterALostConnectionNewSubscribersWaitForTheResubscription() throws {
        let fanout = try FanoutFixture()
        let first = fanout.subscriber(of: "broadcast:f")
        fanout.multiplexer.connectionLost(shard: 0)
        fanout.settle()
        let second = RecordingSubscriber(channels: ["broadcast:f"])
        _ = fanout.hubs[0].join(second, channels: second.channels)
        XCTAssertEqual(second.confirmations, 0, "the channel is not confirmed while Redis is away")
        _ = try fanout.sentToRedis()
        fanout.multiplexer.connected(PubSubConnection(fanout.redis, sharded: false), shard: 0)
        XCTAssertEqual(try fanout.sentToRedis(), [FanoutFixture.subscribe("broadcast:f")], "the reconnect subscribes again")
        fanout.confirm("broadcast:f")
        XCTAssertEqual(second.confirmations, 1)
        XCTAssertEqual(first.confirmations, 1, "a connection is confirmed once")
    }

    func testOnlyMessagesOverTheThresholdAreCompressedAndEachOncePerLoop() throws {
        let fanout = try FanoutFixture(compressionThreshold: 16)
        let small = FrameWriter.frame(opcode: .text, payload: ByteBuffer(string: "short"), allocator: ByteBufferAllocator())
        XCTAssertEqual(fanout.hubs[0].compressedFrame(small), small, "below the threshold the plain frame goes out")
        let subscribers = (0..<2).map { _ in RecordingSubscriber(channels: ["broadcast:f"]) }
        for subscriber in subscribers {
            subscriber.takesCompressedFrames = true
            _ = fanout.hubs[0].join(subscriber, channels: subscriber.channels)
        }
        fanout.settle()
        fanout.confirm("broadcast:f")
        let text = String(repeating: "compressible ", count: 20)
        let large = FrameWriter.frame(opcode: .text, payload: ByteBuffer(string: text), allocator: ByteBufferAllocator())
        fanout.hubs[0].deliver([FanoutMessage(channel: "broadcast:f", frame: large)])
        let sent = subscribers.map { $0.frames[0] }
        XCTAssertLessThan(sent[0].readableBytes, large.readableBytes)
        XCTAssertEqual(sent[0].getInteger(at: sent[0].readerIndex, as: UInt8.self), 0xC1, "FIN, RSV1 and text")
        XCTAssertEqual(
            sent[0].withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) }, sent[1].withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) },
            "compressed once for both"
        )
    }
}
