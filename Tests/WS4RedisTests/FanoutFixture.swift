import Logging
import NIOCore
import NIOEmbedded

@testable import WS4Redis

/// A connection as the hub sees it: records what the hub does to it.
final class RecordingSubscriber: FanoutSubscriber {
    var hubSlot = -1
    var needsFlush = false
    var channels: [String]
    var takesCompressedFrames = false
    /// Whether `enqueue` writes (a closed or held-back connection does not).
    var writes = true
    private(set) var confirmations = 0
    private(set) var frames: [ByteBuffer] = []
    private(set) var flushes = 0

    init(channels: [String]) {
        self.channels = channels
    }

    func subscriptionConfirmed() { confirmations += 1 }

    func enqueue(_ message: FanoutMessage, as frame: ByteBuffer) -> Bool {
        guard writes else { return false }
        frames.append(frame)
        return true
    }

    func flush() {
        needsFlush = false
        flushes += 1
    }

    func close(code: CloseCode, reason: String, timeout: TimeAmount) -> EventLoopFuture<Void>? { nil }
    func livenessTick() {}
    func heartbeatTick(_ frame: ByteBuffer) {}
}

/// A multiplexer with `hubCount` hubs on one EmbeddedEventLoop, and a stand-in subscriber
/// connection that records the commands sent to Redis. Its command connection is never started:
/// stored-message fetches find nothing at once.
final class FanoutFixture {
    let loop = EmbeddedEventLoop()
    let counters = ServerCounters()
    let multiplexer: ChannelMultiplexer
    let hubs: [LoopHub]
    let redis: EmbeddedChannel

    init(hubCount: Int = 1, compressionThreshold: Int = 64, linger: TimeAmount = .zero) throws {
        let logger = Logger(label: "test")
        multiplexer = ChannelMultiplexer(eventLoop: loop, hubCount: hubCount, sharded: false, counters: counters, logger: logger, linger: linger)
        let commands = try RedisCommandClient(endpoint: .defaultEndpoint, eventLoop: loop, logger: logger, options: .defaults)
        let publisher = ChannelPublisher(commands: commands, cluster: false, expireSeconds: 0)
        hubs = (0..<hubCount).map { [multiplexer, counters] in
            LoopHub(
                eventLoop: EmbeddedEventLoop(), index: $0, counters: counters, logger: logger, compressionThreshold: compressionThreshold,
                multiplexer: multiplexer, publisher: publisher
            )
        }
        multiplexer.attach(hubs)
        redis = EmbeddedChannel(handler: MessageToByteHandler(RedisCommandEncoder()), loop: loop)
        multiplexer.connected(PubSubConnection(redis, sharded: false), shard: 0)
    }

    /// A subscriber of `channel` on hub `hub`, joined through the port; confirmed by Redis unless told otherwise.
    func subscriber(of channel: String, hub: Int = 0, confirmed: Bool = true) -> RecordingSubscriber {
        let subscriber = RecordingSubscriber(channels: [channel])
        subscriber.channels = hubs[hub].join(subscriber, channels: subscriber.channels)
        settle()
        if confirmed { confirm(channel) }
        return subscriber
    }

    /// Runs every loop until nothing is left to do: hops between the hubs and the multiplexer settle.
    func settle() {
        for _ in 0..<4 {
            loop.run()
            for hub in hubs { (hub.eventLoop as! EmbeddedEventLoop).run() }
        }
    }

    /// The commands sent to Redis since the last call, as RESP text.
    func sentToRedis() throws -> [String] {
        var sent: [String] = []
        while let buffer = try redis.readOutbound(as: ByteBuffer.self) { sent.append(String(buffer: buffer)) }
        return sent
    }

    /// Redis confirms `channels`, then the read ends.
    func confirm(_ channels: String...) {
        for channel in channels { multiplexer.received(.subscribed(channel: channel)) }
        multiplexer.readComplete()
        settle()
    }

    /// A message from Redis with the headroom its decoder leaves.
    func publish(_ text: String, on channel: String) {
        var payload = ByteBufferAllocator().buffer(capacity: 64)
        payload.moveWriterIndex(forwardBy: FrameWriter.maxHeaderSize)
        payload.moveReaderIndex(forwardBy: FrameWriter.maxHeaderSize)
        payload.writeString(text)
        multiplexer.received(.message(channel: channel, payload: payload))
    }

    static func subscribe(_ channels: String...) -> String {
        "*\(channels.count + 1)\r\n$9\r\nSUBSCRIBE\r\n" + channels.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()
    }

    static func unsubscribe(_ channels: String...) -> String {
        "*\(channels.count + 1)\r\n$11\r\nUNSUBSCRIBE\r\n" + channels.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()
    }
}
