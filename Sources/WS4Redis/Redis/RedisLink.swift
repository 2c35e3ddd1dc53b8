import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Keeps one connection to Redis up: connects, hands the channel to its owner, and after any loss
/// reconnects with capped exponential back-off and jitter. Confined to its event loop.
final class RedisLink {
    let eventLoop: any EventLoop
    private let endpoint: RedisEndpoint
    /// In a cluster: the slot whose master this link connects to (any slot of its shard).
    private let slot: Int
    private let logger: Logger
    private let makeHandlers: () -> [any ChannelHandler]
    private let tls: NIOSSLContext?
    private let up: (any Channel) -> Void
    private let down: (String) -> Void
    private var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
    private var channel: (any Channel)?
    private var reconnectTask: Scheduled<Void>?
    private(set) var stopped = false

    /// `up` runs with each new channel (send the login commands there), `down` with the reason it went.
    init(
        endpoint: RedisEndpoint, slot: Int = 0, eventLoop: any EventLoop, logger: Logger, handlers: @escaping () -> [any ChannelHandler],
        up: @escaping (any Channel) -> Void, down: @escaping (String) -> Void
    ) throws {
        tls = try endpoint.tls.map(Self.tlsContext)
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
        resolvedAddress().flatMap { [self] address in
            stopped ? eventLoop.makeFailedFuture(WS4RedisError(.state, "stopped")) : connect(to: address)
        }.whenComplete { [self] result in
            switch result {
            case .success(let channel): established(channel)
            case .failure(let error): failedToConnect("\(error)")
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

    private func connect(to address: RedisEndpoint.Address) -> EventLoopFuture<any Channel> {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(5))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { [self, makeHandlers, tls] channel in
                channel.eventLoop.makeCompletedFuture {
                    // The owner that makes the handlers may be gone once stop() has completed.
                    guard !stopped else { throw WS4RedisError(.state, "stopped") }
                    if let tls, case .tcp(let host, _) = address {
                        let hostname = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: hostname))
                    }
                    try channel.pipeline.syncOperations.addHandlers(makeHandlers())
                }
            }
        switch address {
        case .tcp(let host, let port): return bootstrap.connect(host: host, port: port)
        case .unixSocket(let path): return bootstrap.connect(unixDomainSocketPath: path)
        case .sentinel, .cluster: return eventLoop.makeFailedFuture(WS4RedisError.configuration("a sentinel or cluster address must be resolved first"))
        }
    }

    private func established(_ channel: any Channel) {
        guard !stopped else { return channel.close(promise: nil) }
        self.channel = channel
        channel.closeFuture.whenComplete { [self] _ in lost("connection closed") }
        up(channel)
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

/// Capped exponential back-off with jitter, so that many servers do not reconnect in step.
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

    /// No retry since the last reset.
    var isFresh: Bool { attempt == 0 }
}
