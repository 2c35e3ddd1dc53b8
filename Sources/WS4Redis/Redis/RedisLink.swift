import Logging
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
    import Glibc
#endif

/// Keeps one connection to Redis up: connects, hands the channel to its owner, and after any loss
/// reconnects with capped exponential back-off and jitter. With a probe it also finds connections
/// whose peer vanished without a word (a frozen process, a partition, a failover elsewhere): a
/// connection that heard nothing for `pingInterval` is pinged, one that owes a reply and heard
/// nothing for `timeout` is closed, which reconnects it. Confined to its event loop.
final class RedisLink {
    /// What the owner tells the link about its connection, for the liveness checks.
    struct Probe {
        /// Whether Redis owes a reply on the current connection (the set-up, a command, a PING).
        let owesReply: () -> Bool
        /// Sends a PING on the current connection; the owner matches its reply.
        let ping: (any Channel) -> Void
    }

    let eventLoop: any EventLoop
    private let endpoint: RedisEndpoint
    /// In a cluster: the slot whose master this link connects to (any slot of its shard).
    private let slot: Int
    private let logger: Logger
    private let makeHandlers: () -> [any ChannelHandler]
    private let tls: NIOSSLContext?
    private let up: (any Channel) -> Void
    private let down: (String) -> Void
    private let options: RedisOptions
    private let probe: Probe?
    /// Counts connections given up for want of an answer (connects included).
    private let timeouts: Total?
    private var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
    private var channel: (any Channel)?
    /// The connection being made, from connect() until it is made or has failed.
    private var attempt: EventLoopFuture<(any Channel, ReadWatch)>?
    private var reconnectTask: Scheduled<Void>?
    private var livenessCheck: RepeatedTask?
    /// Consecutive checks that heard nothing while no reply was owed, and while one was.
    private var quietChecks = 0
    private var unansweredChecks = 0
    /// Why the current connection is being closed, when the link closes it.
    private var closeReason: String?
    private(set) var stopped = false

    /// `up` runs with each new channel (send the login commands there), `down` with the reason it went.
    init(
        endpoint: RedisEndpoint, slot: Int = 0, eventLoop: any EventLoop, logger: Logger, options: RedisOptions, probe: Probe? = nil,
        timeouts: Total? = nil, handlers: @escaping () -> [any ChannelHandler], up: @escaping (any Channel) -> Void, down: @escaping (String) -> Void
    ) throws {
        tls = try endpoint.tls.map(Self.tlsContext)
        self.options = options
        self.probe = probe
        self.timeouts = timeouts
        self.endpoint = endpoint
        self.slot = slot
        self.eventLoop = eventLoop
        self.logger = logger
        self.makeHandlers = handlers
        self.up = up
        self.down = down
    }

    func start() {
        eventLoop.execute { self.connect() }
    }

    /// Closes the connection for good; completes when it is closed and `down` has run, so the
    /// owner may go then.
    func stop() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { [self] in
            stopped = true
            reconnectTask?.cancel()
            // A connection still being made must end before the owner stops the event loops, which
            // it would otherwise outlive: established() closes one made after the stop.
            if let attempt { return attempt.flatMap { channel, _ in channel.closeFuture } }
            guard let channel else { return eventLoop.makeSucceededVoidFuture() }
            channel.close(promise: nil)
            // Not close()'s own future: NIO completes it before the close future's callbacks, `down`
            // among them, which would then run after an owner that waited for this had gone.
            return channel.closeFuture
        }.recover { _ in }
    }

    private static func tlsContext(_ options: RedisEndpoint.TLS) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile = options.caFile { configuration.trustRoots = .file(caFile) }
        if !options.verifyCertificate { configuration.certificateVerification = .none }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw WS4RedisError.configuration("cannot set up TLS to Redis (ssl_ca_certs \(options.caFile ?? "system")): \(error)")
        }
    }

    /// The connection proved healthy (logged in, answering): the next loss starts from a short delay.
    func healthy() {
        backoff.reset()
    }

    private func connect() {
        guard !stopped else { return }
        let attempt = resolvedAddress().flatMap { [self] address in
            stopped ? eventLoop.makeFailedFuture(WS4RedisError(.state, "stopped")) : connect(to: address)
        }
        self.attempt = attempt
        attempt.whenComplete { [self] result in
            self.attempt = nil
            switch result {
            case .success(let (channel, watch)): established(channel, watch: watch)
            case .failure(let error):
                if case .connectTimeout? = error as? ChannelError { timeouts?.add(1) }
                failedToConnect("\(error)")
            }
        }
    }

    /// Where to connect now: the endpoint's address, or the master the sentinels or the cluster name
    /// at this moment.
    private func resolvedAddress() -> EventLoopFuture<RedisEndpoint.Address> {
        let master: EventLoopFuture<HostAndPort>
        switch endpoint.address {
        case .tcp, .unixSocket:
            return eventLoop.makeSucceededFuture(endpoint.address)
        case .sentinel(let sentinels, let name):
            master = NodeLookup.sentinelMaster(named: name, asking: sentinels, password: endpoint.sentinelPassword, on: eventLoop) { !self.stopped }
        case .cluster(let nodes):
            master = NodeLookup.clusterMap(asking: nodes, login: endpoint.loginCommands, on: eventLoop) { !self.stopped }.flatMapThrowing { [slot] map in
                guard let master = map.master(ofSlot: slot) else { throw NodeLookup.Failure(description: "no master serves slot \(slot)") }
                return master
            }
        }
        return master.map { .tcp(host: $0.host, port: $0.port) }
    }

    private func connect(to address: RedisEndpoint.Address) -> EventLoopFuture<(any Channel, ReadWatch)> {
        let watch = ReadWatch()
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(options.timeout ?? .seconds(5))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { [self, makeHandlers, tls, options] channel in
                channel.eventLoop.makeCompletedFuture {
                    // The owner that makes the handlers may be gone once stop() has completed.
                    guard !stopped else { throw WS4RedisError(.state, "stopped") }
                    if case .tcp = address, let timeout = options.timeout { try Self.shortenKeepalive(of: channel, to: timeout) }
                    if let tls, case .tcp(let host, _) = address {
                        let hostname = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: hostname))
                    }
                    try channel.pipeline.syncOperations.addHandler(watch)
                    try channel.pipeline.syncOperations.addHandlers(makeHandlers())
                }
            }
        let connected: EventLoopFuture<any Channel>
        switch address {
        case .tcp(let host, let port): connected = bootstrap.connect(host: host, port: port)
        case .unixSocket(let path): connected = bootstrap.connect(unixDomainSocketPath: path)
        case .sentinel, .cluster: return eventLoop.makeFailedFuture(WS4RedisError.configuration("a sentinel or cluster address must be resolved first"))
        }
        return connected.map { ($0, watch) }
    }

    /// The kernel's own check of a TCP peer, in seconds instead of its default two hours: probes after
    /// `timeout` of silence, one a second, three unanswered end the connection; data sent and not
    /// acknowledged for `timeout` ends it too (TCP_USER_TIMEOUT). A frozen Redis still has its kernel
    /// answer for it: only the PINGs find that one.
    private static func shortenKeepalive(of channel: any Channel, to timeout: TimeAmount) throws {
        let options = channel.syncOptions!
        let tcp = { (name: Int32) in ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: name)) }
        try options.setOption(tcp(TCP_KEEPIDLE), value: SocketOptionValue(max(timeout.nanoseconds / 1_000_000_000, 1)))
        try options.setOption(tcp(TCP_KEEPINTVL), value: 1)
        try options.setOption(tcp(TCP_KEEPCNT), value: 3)
        try options.setOption(tcp(TCP_USER_TIMEOUT), value: SocketOptionValue(timeout.nanoseconds / 1_000_000))
    }

    private func established(_ channel: any Channel, watch: ReadWatch) {
        guard !stopped else { return channel.close(promise: nil) }
        self.channel = channel
        closeReason = nil
        (quietChecks, unansweredChecks) = (0, 0)
        if let probe, let interval = options.checkInterval {
            livenessCheck = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
                check(channel, watch: watch, probe: probe)
            }
        }
        channel.closeFuture.whenComplete { [self] _ in
            livenessCheck?.cancel()
            livenessCheck = nil
            lost(closeReason ?? "connection closed")
        }
        up(channel)
    }

    /// One look at the connection. Reads only set the watch's flag: no message costs a clock read
    /// or a timer, and a connection that hears anything is never pinged.
    private func check(_ channel: any Channel, watch: ReadWatch, probe: Probe) {
        let heard = watch.heard
        watch.heard = false
        guard probe.owesReply() else {
            unansweredChecks = 0
            quietChecks = heard ? 0 : quietChecks + 1
            if let interval = options.pingInterval, quietChecks >= options.checks(in: interval) {
                quietChecks = 0
                probe.ping(channel)
            }
            return
        }
        quietChecks = 0
        unansweredChecks = heard ? 0 : unansweredChecks + 1
        // One check more than the timeout holds: the reply may have become owed just before the first.
        guard let timeout = options.timeout, unansweredChecks > options.checks(in: timeout) else { return }
        timeouts?.add(1)
        closeReason = "no reply from Redis within \(timeout.nanoseconds / 1_000_000) ms"
        logger.warning("Redis does not answer; reconnecting", metadata: ["redis": "\(endpoint.description)", "timeout-ms": "\(timeout.nanoseconds / 1_000_000)"])
        channel.close(promise: nil)
    }

    /// The first failure in a row is worth a warning (Redis down, a wrong URL); retries are not.
    private func failedToConnect(_ reason: String) {
        // An attempt that outlived stop(): its owner has been told all it needs.
        guard !stopped else { return }
        if backoff.isFresh {
            logger.warning("cannot connect to Redis; retrying with back-off", metadata: ["redis": "\(endpoint.description)", "reason": "\(reason)"])
        }
        lost(reason)
    }

    private func lost(_ reason: String) {
        channel = nil
        down(reason)
        guard !stopped else { return }
        let delay = backoff.next()
        logger.debug("reconnecting to Redis", metadata: ["reason": "\(reason)", "retry-in-ms": "\(delay.nanoseconds / 1_000_000)"])
        reconnectTask = eventLoop.scheduleTask(in: delay) { self.connect() }
    }
}
