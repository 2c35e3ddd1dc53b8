import NIOCore
import XCTest

@testable import WS4Redis

/// The router between the subscriber connection and the hubs, on EmbeddedEventLoops.
final class ChannelMultiplexerTests: XCTestCase {
    func testRedisSeesOneSubscribeAndOneUnsubscribePerChannelAcrossHubs() throws {
        let fanout = try FanoutFixture(hubCount: 2)
        let subscribers = fanout.hubs.map { hub -> RecordingSubscriber in
            let subscriber = RecordingSubscriber(channels: ["broadcast:f"])
            _ = hub.join(subscriber, channels: subscriber.channels)
            return subscriber
        }
        fanout.settle()
        XCTAssertEqual(try fanout.sentToRedis(), [FanoutFixture.subscribe("broadcast:f")])
        XCTAssertEqual(fanout.counters.channels.current, 1)
        fanout.confirm("broadcast:f")
        XCTAssertEqual(subscribers.map(\.confirmations), [1, 1], "one confirmation from Redis answers both hubs")
        fanout.hubs[0].leave(subscribers[0])
        fanout.settle()
        XCTAssertEqual(try fanout.sentToRedis(), [], "hub 1 still holds the channel")
        fanout.hubs[1].leave(subscribers[1])
        fanout.settle()
        XCTAssertEqual(try fanout.sentToRedis(), [FanoutFixture.unsubscribe("broadcast:f")])
        XCTAssertEqual(fanout.counters.channels.current, 0)
    }

    func testAMessageIsFramedOnceAndReachesOnlyTheHubsHoldingItsChannelAtTheEndOfTheRead() throws {
        let fanout = try FanoutFixture(hubCount: 2)
        let holder = RecordingSubscriber(channels: ["broadcast:f"])
        let bystander = RecordingSubscriber(channels: ["broadcast:g"])
        _ = fanout.hubs[0].join(holder, channels: holder.channels)
        _ = fanout.hubs[1].join(bystander, channels: bystander.channels)
        fanout.settle()
        fanout.confirm("broadcast:f", "broadcast:g")
        fanout.publish("one", on: "broadcast:f")
        fanout.publish("two", on: "broadcast:f")
        fanout.settle()
        XCTAssertEqual(holder.frames, [], "a read's messages wait for its end")
        fanout.multiplexer.readComplete()
        fanout.settle()
        XCTAssertEqual(holder.frames.map { Array(FrameWriter.payload(of: $0)) }, [Array("one".utf8), Array("two".utf8)])
        XCTAssertEqual(holder.frames.first?.getInteger(at: holder.frames[0].readerIndex, as: UInt8.self), 0x81, "a text frame, framed in the headroom")
        XCTAssertEqual(holder.flushes, 1, "one hop, one flush, for the whole read")
        XCTAssertEqual(bystander.frames, [])
        XCTAssertEqual(fanout.counters.messagesIn.current, 2)
    }

    func testAConfirmationOfAnEarlierSubscribeDoesNotConfirmALaterOne() throws {
        let fanout = try FanoutFixture()
        let first = RecordingSubscriber(channels: ["broadcast:f"])
        _ = fanout.hubs[0].join(first, channels: first.channels)
        fanout.settle()
        fanout.hubs[0].leave(first)
        fanout.settle()
        let second = RecordingSubscriber(channels: ["broadcast:f"])
        _ = fanout.hubs[0].join(second, channels: second.channels)
        fanout.settle()
        XCTAssertEqual(try fanout.sentToRedis(), [
            FanoutFixture.subscribe("broadcast:f"), FanoutFixture.unsubscribe("broadcast:f"), FanoutFixture.subscribe("broadcast:f"),
        ])
        fanout.confirm("broadcast:f")
        XCTAssertEqual(second.confirmations, 0, "this answers the first SUBSCRIBE")
        fanout.confirm("broadcast:f")
        XCTAssertEqual(second.confirmations, 1)
    }

    func testRedisCountsAsConnectedFromTheFirstAnswerUntilTheConnectionIsLost() throws {
        let fanout = try FanoutFixture()
        XCTAssertFalse(fanout.counters.redisConnected.load(ordering: .relaxed))
        fanout.multiplexer.ready(shard: 0)
        XCTAssertTrue(fanout.counters.redisConnected.load(ordering: .relaxed))
        fanout.multiplexer.connectionLost(shard: 0)
        XCTAssertFalse(fanout.counters.redisConnected.load(ordering: .relaxed))
    }
}
