import Logging
import NIOCore
import NIOPosix

/// Keeps the multiplexer's connection to Redis up: connects, logs in, hands the channel over, and
/// after any loss reconnects with capped exponential back-off and jitter. Confined to its loop.
final class RedisSubscriberConnection {
    private let endpoint: RedisEndpoint
    private let multiplexer: ChannelMultiplexer
    private let counters: ServerCounters
    private let logger: Logger
    private var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
    private var channel: (any Channel)?
    private var reconnectTask: Scheduled<Void>?
    private var stopped = false

    var eventLoop: any EventLoop { multiplexer.eventLoop }

    init(endpoint: RedisEndpoint, multiplexer: ChannelMultiplexer, counters: ServerCounters, logger: Logger) {
        self.endpoint = endpoint
        self.multiplexer = multiplexer
        self.counters = counters
        self.logger = logger
    }

    func start() {
        eventLoop.execute { self.connect() }
    }

    /// Closes the connection for good; completes when it is closed.
    func stop() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { [self] in
            stopped = true
            reconnectTask?.cancel()
            return channel?.close() ?? eventLoop.makeSucceededVoidFuture()
        }.recover { _ in }
    }

    private func connect() {
        guard !stopped else { return }
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(5))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        PubSubReplyDecoder(), MessageToByteHandler(RedisCommandEncoder()), SubscriberEventHandler(owner: self)
                    )
                }
            }
        let connecting: EventLoopFuture<any Channel> =
            switch endpoint.address {
            case .tcp(let host, let port): bootstrap.connect(host: host, port: port)
            case .unixSocket(let path): bootstrap.connect(unixDomainSocketPath: path)
            }
        connecting.whenComplete { [self] result in
            switch result {
            case .success(let channel): established(channel)
            case .failure(let error): lost(reason: "\(error)")
            }
        }
    }

    private func established(_ channel: any Channel) {
        guard !stopped else { return channel.close(promise: nil) }
        self.channel = channel
        for command in endpoint.loginCommands { channel.write([[UInt8]](redisArguments: command), promise: nil) }
        multiplexer.connected(channel)
        // The PONG tells us that login and the resubscription went through.
        channel.writeAndFlush([[UInt8]](redisArguments: ["PING"]), promise: nil)
    }

    fileprivate func confirmed() {
        guard !counters.redisConnected.load(ordering: .relaxed) else { return }
        backoff.reset()
        counters.redisConnected.store(true, ordering: .relaxed)
        logger.info("Redis connected", metadata: ["redis": "\(endpoint.description)"])
    }

    fileprivate func lost(reason: String) {
        channel = nil
        multiplexer.connectionLost()
        let wasConnected = counters.redisConnected.exchange(false, ordering: .relaxed)
        guard !stopped else { return }
        let delay = backoff.next()
        let level: Logger.Level = wasConnected ? .error : .warning
        logger.log(level: level, "Redis unavailable; reconnecting", metadata: ["reason": "\(reason)", "retry-in-ms": "\(delay.nanoseconds / 1_000_000)"])
        reconnectTask = eventLoop.scheduleTask(in: delay) { self.connect() }
    }

    fileprivate func received(_ event: PubSubEvent) {
        if event == .pong { confirmed() }
        if case .error(let message) = event, message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") || message.hasPrefix("ERR") {
            logger.error("Redis rejected the subscriber connection", metadata: ["error": "\(message)"])
            channel?.close(promise: nil)
            return
        }
        multiplexer.received(event)
    }

    fileprivate func readComplete() {
        multiplexer.flushBatches()
    }
}

/// Routes the Redis channel's events to its owner.
private final class SubscriberEventHandler: ChannelInboundHandler {
    typealias InboundIn = PubSubEvent
    private let owner: RedisSubscriberConnection

    init(owner: RedisSubscriberConnection) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner.received(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner.readComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        owner.lost(reason: "connection closed")
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Capped exponential back-off with full jitter, so that many servers do not reconnect in step.
struct Backoff {
    let initial: TimeAmount
    let maximum: TimeAmount
    private var attempt = 0

    init(initial: TimeAmount, maximum: TimeAmount) {
        self.initial = initial
        self.maximum = maximum
    }

    mutating func next() -> TimeAmount {
        let ceiling = min(maximum.nanoseconds, initial.nanoseconds << min(attempt, 20))
        attempt += 1
        return .nanoseconds(Int64.random(in: ceiling / 2...ceiling))
    }

    mutating func reset() {
        attempt = 0
    }
}
