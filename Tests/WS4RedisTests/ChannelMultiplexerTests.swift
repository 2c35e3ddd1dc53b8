import NIOCore
import NIOEmbedded
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

    func testALingeringChannelIsTakenAgainWithoutRedisAndLeavesRedisOnceItsLingerPassed() throws {
        let fanout = try FanoutFixture(hubCount: 2, linger: .seconds(2))
        let first = fanout.subscriber(of: "broadcast:f")
        XCTAssertEqual(try fanout.sentToRedis(), [FanoutFixture.subscribe("broadcast:f")])
        fanout.hubs[0].leave(first)
        fanout.settle()
        XCTAssertEqual(try fanout.sentToRedis(), [], "no UNSUBSCRIBE while it lingers")
        XCTAssertEqual(fanout.counters.lingeringChannels.current, 1)
        fanout.publish("to nobody", on: "broadcast:f")
        fanout.multiplexer.readComplete()
        fanout.settle()
        XCTAssertEqual(first.frames, [], "nothing reaches a subscriber that left")

        let reload = RecordingSubscriber(channels: ["broadcast:f"])
        _ = fanout.hubs[1].join(reload, channels: reload.channels)
        fanout.settle()
        XCTAssertEqual(try fanout.sentToRedis(), [], "taken again: no SUBSCRIBE")
        XCTAssertEqual(reload.confirmations, 1, "confirmed at once: Redis never stopped sending")
        XCTAssertEqual(fanout.counters.lingeringChannelsTaken.current, 1)
        fanout.publish("live", on: "broadcast:f")
        fanout.multiplexer.readComplete()
        fanout.settle()
        XCTAssertEqual(reload.frames.map { Array(FrameWriter.payload(of: $0)) }, [Array("live".utf8)])

        fanout.hubs[1].leave(reload)
        fanout.settle()
        fanout.multiplexer.sweepLingering(now: .now() + .seconds(1))
        XCTAssertEqual(try fanout.sentToRedis(), [], "1 s of a 2 s linger")
        fanout.multiplexer.sweepLingering(now: .now() + .seconds(3))
        XCTAssertEqual(try fanout.sentToRedis(), [FanoutFixture.unsubscribe("broadcast:f")])
        XCTAssertEqual(fanout.counters.lingeringChannels.current, 0)
        XCTAssertEqual(fanout.counters.channels.current, 0)
    }

    func testLingeringChannelsAreNotSubscribedAgainAfterALostConnection() throws {
        let fanout = try FanoutFixture(linger: .seconds(2))
        _ = fanout.subscriber(of: "broadcast:held")
        let left = fanout.subscriber(of: "broadcast:left")
        _ = try fanout.sentToRedis()
        fanout.hubs[0].leave(left)
        fanout.settle()
        fanout.multiplexer.connectionLost(shard: 0)
        let redis = EmbeddedChannel(handler: MessageToByteHandler(RedisCommandEncoder()), loop: fanout.loop)
        fanout.multiplexer.connected(PubSubConnection(redis, sharded: false), shard: 0)
        var sent: [String] = []
        while let buffer = try redis.readOutbound(as: ByteBuffer.self) { sent.append(String(buffer: buffer)) }
        XCTAssertEqual(sent, [FanoutFixture.subscribe("broadcast:held")])
        XCTAssertEqual(fanout.counters.lingeringChannels.current, 0)
    }
}
