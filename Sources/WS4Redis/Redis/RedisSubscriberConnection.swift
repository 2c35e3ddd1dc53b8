import Logging
import NIOCore

/// A subscriber connection (one per cluster shard): logs in, lets its listener (re)subscribe, and reports it up once a PING comes back through everything sent before it. Its
/// link PINGs it when it is quiet (RESP2 answers `pong` in subscribed mode too) and gives it up when
/// the set-up or a PING goes unanswered for `redis_timeout`.
final class RedisSubscriberConnection {
    private let endpoint: RedisEndpoint
    private let shard: Int
    private unowned let listener: any PubSubListener
    private let sharded: Bool
    private let counters: ServerCounters
    private let logger: Logger
    private var link: RedisLink!
    /// Set once Redis refused this connection: its further errors are echoes of the first.
    private var refused = false
    /// Whether a connection was ever up: the next one is a reconnect.
    private var everConnected = false
    /// Logged in and answering.
    private var up = false
    /// A liveness PING went out and its pong has not come back.
    private var pingOwed = false

    /// The connection while it is up: closed when Redis refuses the set-up.
    private var channel: (any Channel)?

    /// `slot`: in a cluster, a slot of the shard this connection serves. `headroom`: free bytes in
    /// front of each message's payload (`PubSubReplyDecoder`).
    init(
        endpoint: RedisEndpoint, shard: Int = 0, slot: Int = 0, listener: any PubSubListener, headroom: Int, counters: ServerCounters, logger: Logger,
        options: RedisOptions
    ) throws {
        self.endpoint = endpoint
        self.shard = shard
        self.listener = listener
        sharded = endpoint.isCluster
        self.counters = counters
        self.logger = logger
        link = try RedisLink(
            endpoint: endpoint, slot: slot, eventLoop: listener.eventLoop, logger: logger, options: options,
            probe: RedisLink.Probe(owesReply: { [unowned self] in !up || pingOwed }, ping: { [unowned self] in ping($0) }),
            timeouts: counters.redisTimeouts,
            handlers: { [unowned self] in [PubSubReplyDecoder(headroom: headroom), MessageToByteHandler(RedisCommandEncoder()), SubscriberEventHandler(owner: self)] },
            up: { [unowned self] in established($0) }, down: { [unowned self] in lost($0) }
        )
    }

    func start() { link.start() }

    func stop() -> EventLoopFuture<Void> { link.stop() }

    private func established(_ channel: any Channel) {
        refused = false
        self.channel = channel
        for command in endpoint.loginCommands { channel.write([[UInt8]](redisArguments: command), promise: nil) }
        listener.connected(PubSubConnection(channel, sharded: sharded), shard: shard)
        channel.writeAndFlush([[UInt8]](redisArguments: ["PING"]), promise: nil)
    }

    private func ping(_ channel: any Channel) {
        pingOwed = true
        channel.writeAndFlush([[UInt8]](redisArguments: ["PING"]), promise: nil)
    }

    private func lost(_ reason: String) {
        pingOwed = false
        channel = nil
        listener.connectionLost(shard: shard)
        if up, !link.stopped {
            logger.error("Redis connection lost; reconnecting", metadata: ["reason": "\(reason)"])
        }
        up = false
    }

    func received(_ event: PubSubEvent) {
        switch event {
        case .pong:
            pingOwed = false
            guard !up else { break }
            up = true
            if everConnected { counters.redisReconnects.add(1) }
            everConnected = true
            link.healthy()
            listener.ready(shard: shard)
            var metadata: Logger.Metadata = ["redis": "\(endpoint.description)"]
            if endpoint.isCluster { metadata["shard"] = "\(shard)" }
            logger.info("Redis connected", metadata: metadata)
        case .error(let message) where !up:
            // Login or resubscription failed: drop the connection and retry with back-off.
            if !refused { logger.error("Redis refused the subscriber connection", metadata: ["error": "\(message)"]) }
            refused = true
            channel?.close(promise: nil)
            return
        default:
            break
        }
        listener.received(event)
    }

    func readComplete() {
        listener.readComplete()
    }
}
