import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// A ws4redis server: event loops with their hubs, one Redis subscriber connection and one command
/// connection, and either its own listener (standalone) or sockets adopted from a host.
/// Safe to call from any thread.
public final class WS4RedisServer: @unchecked Sendable {
    public let configuration: ServerConfiguration
    let validator: HandshakeValidator
    let names: ChannelNames
    private let counters: ServerCounters
    private let logger: Logger
    private let perAddress: ConnectionsPerAddress?
    private let lock = NIOLock()
    private var running: Running?
    private var authorizationCallback: AuthorizationCallback?

    /// What exists between start() and stop().
    private struct Running {
        let group: MultiThreadedEventLoopGroup
        let hubs: [LoopHub]
        /// What each loop's websockets are given, by loop.
        let environments: [ObjectIdentifier: ConnectionEnvironment]
        let multiplexer: ChannelMultiplexer
        let topology: ClusterTopology?
        let subscriber: SubscriberGroup
        let commands: any RedisCommands
        let authorizer: HandshakeAuthorizer
        let listeners: LoopListeners?
        let metricsListener: LoopListeners?
        /// The host's connections still reading a request head; nil without a handshake_timeout.
        let arrivals: ArrivalDeadlines?
        let timers: [RepeatedTask]
    }

    public init(configuration: ServerConfiguration, logger: Logger? = nil) throws {
        self.configuration = try configuration.validated()
        self.logger = logger ?? configuration.logFormat.logger(label: "ws4redis", level: Logger.Level(rawValue: configuration.logLevel) ?? .info)
        counters = ServerCounters(loops: self.configuration.effectiveIOThreads)
        validator = HandshakeValidator(configuration)
        names = ChannelNames(keyPrefix: configuration.keyPrefix)
        perAddress = configuration.maxConnectionsPerAddress > 0 ? ConnectionsPerAddress(limit: configuration.maxConnectionsPerAddress) : nil
    }

    deinit {
        stop(timeout: .seconds(1))
    }

    /// Registers the authorization callback; only before start().
    public func setAuthorizer(_ callback: AuthorizationCallback?) throws {
        try lock.withLock {
            guard running == nil else { throw WS4RedisError(.state, "the authorizer can only be set before the server starts") }
            authorizationCallback = callback
        }
    }

    /// The address the standalone listener is bound to (the real port when 0 was asked for).
    public var listenAddress: SocketAddress? {
        lock.withLock { running?.listeners?.localAddress }
    }

    public func start() throws {
        try lock.withLock {
            guard running == nil else { throw WS4RedisError(.state, "the server is already running") }
            DescriptorTable.reserveUpToLimit()
            warnAboutClientChosenKeys()
            let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.effectiveIOThreads)
            do {
                running = try makeRunning(group: group)
            } catch {
                try? group.syncShutdownGracefully()
                throw error
            }
        }
    }

    private func makeRunning(group: MultiThreadedEventLoopGroup) throws -> Running {
        let loops = Array(group.makeIterator())
        let redis = configuration.redis
        let topology = redis.isCluster ? ClusterTopology(endpoint: redis, eventLoop: loops[0], logger: logger) : nil
        let multiplexer = ChannelMultiplexer(
            eventLoop: loops[0], hubCount: loops.count, sharded: topology != nil, counters: counters, logger: logger,
            linger: .milliseconds(Int64(configuration.subscriptionLingerMilliseconds))
        )
        let redisOptions = RedisOptions(configuration)
        let commands = try redis.commands(on: loops[0], topology: topology, logger: logger, options: redisOptions, timeouts: counters.redisTimeouts)
        let publisher = ChannelPublisher(commands: commands, cluster: redis.isCluster, expireSeconds: configuration.expireSeconds)
        let hubs = loops.enumerated().map {
            LoopHub(
                eventLoop: $1, index: $0, counters: counters, logger: logger, compressionThreshold: configuration.compressionThreshold,
                multiplexer: multiplexer, publisher: publisher
            )
        }
        multiplexer.attach(hubs)
        let settings = ConnectionSettings(configuration)
        let environments = Dictionary(
            uniqueKeysWithValues: hubs.map {
                (
                    ObjectIdentifier($0.eventLoop as AnyObject),
                    ConnectionEnvironment(settings: settings, counters: counters, logger: logger, subscriptions: $0, loop: $0.index)
                )
            })
        // Messages arrive with room for the largest websocket frame header: each is framed in place, once.
        let subscriber = try SubscriberGroup(
            endpoint: redis, topology: topology, listener: multiplexer, headroom: FrameWriter.maxHeaderSize, counters: counters, logger: logger,
            options: redisOptions
        )
        let authorizer = HandshakeAuthorizer(configuration: configuration.identity, callback: authorizationCallback)
        var listeners: LoopListeners?
        var metricsListener: LoopListeners?
        do {
            topology?.start()
            subscriber.start()
            commands.start()
            if configuration.requireRedis { try requireRedis(commands) }
            // Only the core's own listeners read requests: a host's sockets arrive upgraded.
            let listening = configuration.listenAddress != nil || configuration.metricsListenAddress != nil
            let deadlines = listening && handshakeTimeout > .zero ? hubs.map { _ in ChannelDeadlines(timeout: handshakeTimeout) } : nil
            let arrivals = handshakeTimeout > .zero ? ArrivalDeadlines(timeout: handshakeTimeout) : nil
            listeners = try configuration.listenAddress.map { try listen(on: $0, loops: loops, environments: environments, deadlines: deadlines) }
            metricsListener = try configuration.metricsListenAddress.map { try listenForMetrics(on: $0, loop: loops[0], deadlines: deadlines?[0]) }
            return Running(
                group: group, hubs: hubs, environments: environments, multiplexer: multiplexer, topology: topology, subscriber: subscriber, commands: commands,
                authorizer: authorizer, listeners: listeners, metricsListener: metricsListener, arrivals: arrivals,
                timers: timers(for: hubs) + sweeps(of: deadlines ?? [], arrivals: arrivals, multiplexer: multiplexer, on: hubs)
            )
        } catch {
            listeners?.close()
            metricsListener?.close()
            topology?.stop()
            try? subscriber.stop().wait()
            try? commands.stop().wait()
            authorizer.shutdown()
            throw error
        }
    }

    /// Without a prefix, a client allowed to publish picks the Redis keys its messages are stored
    /// under (`SET broadcast:<facility>`), the app's own keys among them. The original's default,
    /// kept for compatibility; said once at start.
    private func warnAboutClientChosenKeys() {
        let publishing = configuration.allowedFlags.intersection([.publishBroadcast, .publishUser, .publishGroup, .publishSession])
        guard configuration.keyPrefix.isEmpty, !publishing.isEmpty, configuration.expireSeconds > 0 else { return }
        logger.warning(
            "clients may publish and no prefix is set: they choose Redis key names and can overwrite the app's own keys; set prefix, or leave publish-* out of allowed_flags",
            metadata: ["allowed-publish-flags": "\(publishing.names)"]
        )
    }

    /// Fails the start when the first attempt to reach Redis fails (`require_redis`).
    private func requireRedis(_ commands: any RedisCommands) throws {
        do {
            try commands.readiness().wait()
        } catch {
            throw WS4RedisError.redis("\(error) (require_redis is on: not starting without Redis)")
        }
    }

    private func timers(for hubs: [LoopHub]) -> [RepeatedTask] {
        var timers: [RepeatedTask] = []
        if configuration.pingIntervalMilliseconds > 0 {
            let interval = TimeAmount.milliseconds(Int64(configuration.pingIntervalMilliseconds))
            timers += hubs.map { hub in every(interval, on: hub.eventLoop) { hub.livenessTick() } }
        }
        if let heartbeat = configuration.heartbeat {
            let interval = TimeAmount.nanoseconds(
                max(1_000_000, Int64(configuration.heartbeatIntervalMilliseconds) * 1_000_000 / Int64(ConnectionSettings.heartbeatTicksPerInterval))
            )
            let frame = FrameWriter.frame(opcode: .text, payload: ByteBuffer(string: heartbeat), allocator: ByteBufferAllocator())
            timers += hubs.map { hub in every(interval, on: hub.eventLoop) { hub.heartbeatTick(frame) } }
        }
        return timers
    }

    /// The sweeps: of each loop's handshake deadlines on that loop, and of the host's arrivals and
    /// the lingering channels on the first (the multiplexer's).
    private func sweeps(of deadlines: [ChannelDeadlines], arrivals: ArrivalDeadlines?, multiplexer: ChannelMultiplexer, on hubs: [LoopHub]) -> [RepeatedTask] {
        var sweeps = zip(deadlines, hubs).map { deadlines, hub in every(deadlines.sweepInterval, on: hub.eventLoop) { deadlines.sweep() } }
        if let arrivals { sweeps.append(every(arrivals.sweepInterval, on: multiplexer.eventLoop) { arrivals.sweep() }) }
        if let interval = multiplexer.lingerSweepInterval {
            sweeps.append(every(interval, on: multiplexer.eventLoop) { multiplexer.sweepLingering() })
        }
        return sweeps
    }

    private func every(_ interval: TimeAmount, on loop: any EventLoop, _ body: @escaping () -> Void) -> RepeatedTask {
        loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in body() }
    }

    private func listen(
        on address: HostAndPort, loops: [any EventLoop], environments: [ObjectIdentifier: ConnectionEnvironment], deadlines: [ChannelDeadlines]?
    ) throws -> LoopListeners {
        try LoopListeners.bind(address, loops: loops, sharedWithOtherProcesses: configuration.reusePort) { [self] channel, index in
            channel.eventLoop.makeCompletedFuture {
                // TCP_NODELAY: accepted sockets inherit it from the listener, where NIO sets it.
                try applySocketOptions(to: channel)
                try channel.pipeline.syncOperations.addHandler(
                    HTTPFrontHandler(
                        server: self, environment: environments[ObjectIdentifier(loops[index] as AnyObject)], deadlines: deadlines?[index],
                        endpoints: .main(configuration)))
            }
        }
    }

    /// `metrics_listen`: /metrics and /healthz on an address of their own (in hosts too), on one loop.
    private func listenForMetrics(on address: HostAndPort, loop: any EventLoop, deadlines: ChannelDeadlines?) throws -> LoopListeners {
        try LoopListeners.bind(address, loops: [loop], sharedWithOtherProcesses: configuration.reusePort) { [self] channel, _ in
            channel.eventLoop.makeCompletedFuture {
                try applySocketOptions(to: channel)
                try channel.pipeline.syncOperations.addHandler(HTTPFrontHandler(server: self, environment: nil, deadlines: deadlines, endpoints: .metricsOnly))
            }
        }
    }

    /// Idle websockets are the common case: a socket's receive buffer starts small (clients send
    /// little) and grows only for one that sends much; NIO keeps it between reads.
    private static let receiveAllocator = SmallReceiveBufferAllocator()

    /// Set directly, in the socket's initializer: a bootstrap's channel options cost a chain of
    /// futures per accepted socket.
    private func applySocketOptions(to channel: any Channel) throws {
        let options = channel.syncOptions!
        try options.setOption(.writeBufferWaterMark, value: writeBufferWaterMark)
        try options.setOption(.recvAllocator, value: Self.receiveAllocator)
        try options.setOption(.maxMessagesPerRead, value: 1)
    }

    private var writeBufferWaterMark: ChannelOptions.Types.WriteBufferWaterMark {
        .init(low: configuration.maxOutboundBytes / 2, high: configuration.maxOutboundBytes)
    }

    /// Closes every websocket with 1001, waits for them (at most `timeout`), then stops everything.
    public func stop(timeout: TimeAmount = .seconds(5)) {
        guard
            let running = lock.withLock({ () -> Running? in
                defer { running = nil }; return running
            })
        else { return }
        running.listeners?.close()
        running.metricsListener?.close()
        let closing = running.hubs.map { hub in
            hub.eventLoop.flatSubmit { hub.closeAll(code: .goingAway, reason: "server shutting down", timeout: timeout) }
        }
        try? EventLoopFuture.andAllComplete(closing, on: running.group.any()).wait()
        running.timers.forEach { $0.cancel() }
        running.topology?.stop()
        try? running.subscriber.stop().wait()
        try? running.commands.stop().wait()
        running.authorizer.shutdown()
        try? running.group.syncShutdownGracefully()
        counters.redisConnected.store(false, ordering: .relaxed)
        logger.info("server stopped")
    }

    public func stats() -> ServerStats {
        counters.snapshot
    }

    public static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Every figure in the Prometheus text exposition format (what `/metrics` serves).
    public func metricsText() -> String {
        counters.prometheusText
    }

    /// Decides a host's upgrade request, on the caller's thread when no identity source must be
    /// asked: the host learns the decision without a trip to an event loop and back. `loop` is the
    /// socket's loop, chosen here once (an identity source's answer completes there; adopt() puts
    /// the socket there): choosing again at adoption would give, with the round robin of two loops,
    /// every socket the same loop.
    package func decision(for request: HandshakeRequest) throws -> (progress: DecisionProgress, loop: any EventLoop) {
        guard let group = lock.withLock({ running?.group }) else { throw WS4RedisError(.state, "the server is not running") }
        let loop = group.next()
        return (decide(request, on: loop), loop)
    }

    /// A handshake decision: known at once, or once an identity source has answered.
    package enum DecisionProgress {
        case decided(HandshakeDecision)
        /// Completes on the event loop the decision was asked on.
        case awaiting(EventLoopFuture<HandshakeDecision>)
    }

    func decide(_ request: HandshakeRequest, on eventLoop: any EventLoop) -> DecisionProgress {
        guard let authorizer = lock.withLock({ running?.authorizer }) else {
            return .decided(.refused(HandshakeRefusal(status: 503, body: "the server is shutting down\n")))
        }
        return decide(request, authorizer: authorizer, on: eventLoop)
    }

    /// Without an identity source to ask (the common case) the decision takes no future at all.
    private func decide(_ request: HandshakeRequest, authorizer: HandshakeAuthorizer, on eventLoop: any EventLoop) -> DecisionProgress {
        var request = request
        request.remoteAddress = configuration.trustedProxies.clientAddress(of: request)
        switch validator.validate(request) {
        case .failure(let refusal):
            return .decided(counted(.refused(refusal)))
        case .success(let upgrade):
            if let authorization = authorizer.immediateAuthorization(upgrade) { return .decided(counted(finish(upgrade, authorization))) }
            return .awaiting(
                authorizer.authorize(upgrade, on: eventLoop).map { [self] in finish(upgrade, .success($0)) }.recover { error in
                    .refused(error as? HandshakeRefusal ?? HandshakeRefusal(status: 500, body: "authorization failed: \(error)\n"))
                }.map { [self] in counted($0) })
        }
    }

    private func finish(_ upgrade: ValidUpgrade, _ authorization: Result<Authorization, HandshakeRefusal>) -> HandshakeDecision {
        switch authorization {
        case .success(let authorization):
            let decision = validator.finish(upgrade, authorization: authorization, atCapacity: atCapacity)
            guard case .accepted(let handshake) = decision else { return decision }
            return admitted(handshake)
        case .failure(let refusal):
            return .refused(refusal)
        }
    }

    /// An accepted handshake past the per-address limit, which holds a slot until the connection is gone.
    private func admitted(_ handshake: AcceptedHandshake) -> HandshakeDecision {
        if !handshake.droppedFlags.isEmpty { noteDropped(handshake) }
        guard let perAddress, let address = handshake.remoteAddress else { return .accepted(handshake) }
        guard let slot = perAddress.reserve(address) else {
            let limit = configuration.maxConnectionsPerAddress
            return .refused(HandshakeRefusal(status: 429, body: "this address has \(limit) websockets open, the most allowed here; close one first\n"))
        }
        var holding = handshake
        holding.heldWhileOpen = slot
        return .accepted(holding)
    }

    private func noteDropped(_ handshake: AcceptedHandshake) {
        counters.identityFlagsDropped.add(1)
        logger.debug(
            "flags dropped: the handshake has no identity for them",
            metadata: [
                "dropped": "\(handshake.droppedFlags.names)", "address": "\(handshake.remoteAddress ?? "-")",
            ])
    }

    private func counted(_ decision: HandshakeDecision) -> HandshakeDecision {
        counters.handshakeDecided(status: decision.status)
        return decision
    }

    private var handshakeTimeout: TimeAmount { .milliseconds(Int64(configuration.handshakeTimeoutMilliseconds)) }

    private var atCapacity: Bool {
        configuration.maxConnections > 0 && counters.connections.current >= UInt64(configuration.maxConnections)
    }

    /// Takes over a connected socket whose 101 response the host has already sent, without waiting
    /// for its event loop to register it (the host's thread goes on serving). The socket goes to
    /// `loop`, the one its decision chose (when that is still one of the server's: not after a
    /// restart), else to the next one. `onClose` runs once, after the descriptor is closed: also when adopting fails,
    /// before this throws or, when registering fails, on the event loop.
    public func adopt(
        _ handshake: AcceptedHandshake, descriptor: CInt, preface: [UInt8], on loop: any EventLoop, onClose: @escaping @Sendable () -> Void
    ) throws {
        let handedOver = lock.withLock { () -> Bool in
            guard let running else { return false }
            let (loop, environment) = destination(preferring: loop, in: running)
            // The host's thread only queues the socket: building its channel is the loop's work, and
            // the host's one HTTP thread is what every handshake waits for. Under the lock, which
            // stop() takes to end `running`: what is queued here runs before the loops shut down.
            loop.execute { [self] in
                register(descriptor, on: loop, handler: webSocketHandler(for: handshake, environment: environment), preface: preface, onClose: onClose)
            }
            return true
        }
        guard handedOver else {
            close(descriptor)
            onClose()
            throw WS4RedisError(.state, "the server is not running")
        }
    }

    private func destination(preferring loop: any EventLoop, in running: Running) -> (any EventLoop, ConnectionEnvironment) {
        if let environment = running.environments[ObjectIdentifier(loop as AnyObject)] { return (loop, environment) }
        let next = running.group.next()
        return (next, running.environments[ObjectIdentifier(next as AnyObject)]!)
    }

    /// On `loop`: the adopted descriptor becomes a channel with the websocket's handler.
    private func register(
        _ descriptor: CInt, on loop: any EventLoop, handler: any ChannelHandler, preface: [UInt8], onClose: @escaping @Sendable () -> Void
    ) {
        let handler = NIOLoopBound(handler, eventLoop: loop)
        Self.disableNagle(descriptor)
        ClientBootstrap(group: loop)
            // withConnectedSocket() creates no socket, so MPTCP changes nothing here: it is NIO's only
            // way to drop the bootstrap's default TCP_NODELAY option, which it applies through a chain
            // of futures and generic casts (13.4k of the 265k instructions of a host's handshake,
            // callgrind). disableNagle() sets it with one setsockopt instead.
            .enableMPTCP(true)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try applySocketOptions(to: channel)
                    try channel.pipeline.syncOperations.addHandler(PrefaceHandler(preface: ByteBuffer(bytes: preface)))
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
            .withConnectedSocket(descriptor)
            .whenComplete { [logger] result in
                switch result {
                case .success(let channel):
                    channel.closeFuture.whenComplete { _ in onClose() }
                case .failure(let error):
                    logger.error("cannot adopt a websocket's descriptor", metadata: ["descriptor": "\(descriptor)", "error": "\(error)"])
                    onClose()
                }
            }
    }

    /// A host may hand over a socket with Nagle on (libmicrohttpd turns TCP_NODELAY off after its
    /// response), and pushes must not wait. A host's TLS relay hands over a Unix socket, where the
    /// option does not apply: its failure there is expected.
    private static func disableNagle(_ descriptor: CInt) {
        var on: CInt = 1
        _ = setsockopt(descriptor, CInt(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<CInt>.size))
    }

    /// Puts a connection the host holds under the handshake timeout while it reads request heads;
    /// nil when there is no timeout.
    package func watchArrival(descriptor: CInt) throws -> Arrival? {
        guard let running = lock.withLock({ running }) else { throw WS4RedisError(.state, "the server is not running") }
        return running.arrivals.map { Arrival(descriptor: descriptor, deadlines: $0) }
    }

    func webSocketHandler(for handshake: AcceptedHandshake, environment: ConnectionEnvironment) -> any ChannelHandler {
        environment.handler(for: ConnectionPlan(handshake, names: names, id: counters.nextConnectionID()))
    }
}
