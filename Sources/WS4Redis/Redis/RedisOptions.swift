import NIOCore

/// How the Redis connections prove they are alive and how much the command connection may hold:
/// the `redis_ping_interval`, `redis_timeout` and `redis_queue_bytes` settings.
package struct RedisOptions: Sendable {
    /// Silence after which a connection that owes no reply is sent a PING; nil: no pings.
    var pingInterval: TimeAmount?
    /// How long a connection may read nothing while it owes a reply (the set-up, a command, a PING)
    /// before it counts as lost; also the connect timeout. nil: no limit (connects give up after 5 s).
    var timeout: TimeAmount?
    /// Bytes of commands the command connection holds unanswered; a send beyond it is refused.
    var queueBytes: Int

    /// Milliseconds as the settings give them; 0 turns pings or the timeout off.
    init(pingIntervalMilliseconds: Int, timeoutMilliseconds: Int, queueBytes: Int) {
        pingInterval = Self.duration(milliseconds: pingIntervalMilliseconds)
        timeout = Self.duration(milliseconds: timeoutMilliseconds)
        self.queueBytes = queueBytes
    }

    private static func duration(milliseconds: Int) -> TimeAmount? {
        milliseconds > 0 ? .milliseconds(Int64(milliseconds)) : nil
    }

    /// How often a link looks at its connection: a quarter of the shorter of the two, so that a
    /// reply is given up on between `timeout` and a quarter of a check later. nil: never.
    var checkInterval: TimeAmount? {
        guard let shortest = [pingInterval, timeout].compactMap({ $0 }).min() else { return nil }
        return .nanoseconds(max(shortest.nanoseconds / 4, 1_000_000))
    }

    /// Whole checks that make up `amount`, at least one.
    func checks(in amount: TimeAmount) -> Int {
        guard let checkInterval else { return .max }
        return max(Int((amount.nanoseconds + checkInterval.nanoseconds - 1) / checkInterval.nanoseconds), 1)
    }
}
