import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus
import Synchronization

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
