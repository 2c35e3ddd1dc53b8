import Synchronization

/// A counter shared by event loops; adds are batched by callers (once per message per loop).
final class Counter: Sendable {
    private let value = Atomic<Int64>(0)

    func add(_ amount: Int) { value.add(Int64(amount), ordering: .relaxed) }
    func subtract(_ amount: Int) { value.subtract(Int64(amount), ordering: .relaxed) }
    func set(_ amount: Int) { value.store(Int64(amount), ordering: .relaxed) }
    var current: UInt64 { UInt64(max(0, value.load(ordering: .relaxed))) }
}

/// The live figures of a server, updated lock-free by every event loop.
final class ServerCounters: Sendable {
    let connections = Counter()
    let connectionsTotal = Counter()
    let subscriptions = Counter()
    let channels = Counter()
    let messagesIn = Counter()
    let messagesOut = Counter()
    let clientMessagesIn = Counter()
    let slowClientCloses = Counter()
    let messagesDropped = Counter()
    let redisConnected = Atomic<Bool>(false)

    var snapshot: ServerStats {
        ServerStats(
            connections: connections.current, connectionsTotal: connectionsTotal.current, subscriptions: subscriptions.current,
            channels: channels.current, messagesIn: messagesIn.current, messagesOut: messagesOut.current,
            clientMessagesIn: clientMessagesIn.current, slowClientCloses: slowClientCloses.current, messagesDropped: messagesDropped.current,
            redisConnected: redisConnected.load(ordering: .relaxed)
        )
    }
}

/// A snapshot of a server's figures, as `ws4r_stats` and `/healthz` report them.
public struct ServerStats: Sendable, Equatable {
    public var connections: UInt64
    public var connectionsTotal: UInt64
    public var subscriptions: UInt64
    public var channels: UInt64
    public var messagesIn: UInt64
    public var messagesOut: UInt64
    public var clientMessagesIn: UInt64
    public var slowClientCloses: UInt64
    /// Messages replaced by a newer one on the same channel for a saturated client (keep-newest policy).
    public var messagesDropped: UInt64
    public var redisConnected: Bool

    /// The body of `/healthz`: degraded (still 200) while Redis is away.
    public var healthJSON: String {
        let fields: [(String, String)] = [
            ("status", redisConnected ? "\"ok\"" : "\"degraded\""), ("redis_connected", "\(redisConnected)"),
            ("connections", "\(connections)"), ("connections_total", "\(connectionsTotal)"), ("subscriptions", "\(subscriptions)"),
            ("channels", "\(channels)"), ("messages_in", "\(messagesIn)"), ("messages_out", "\(messagesOut)"),
            ("client_messages_in", "\(clientMessagesIn)"), ("slow_client_closes", "\(slowClientCloses)"), ("messages_dropped", "\(messagesDropped)"),
        ]
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}\n"
    }
}
