import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus
import Synchronization

/// The live figures of a server, updated lock-free by every event loop, and their Prometheus export.
/// Each server has its own registry: several servers in one process (tests, embedders) never mix.
package final class ServerCounters: Sendable {
    static let deliveryLatencyName = "ws4redis_delivery_latency_seconds"

    private let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    let connections = Level()
    /// The websockets of each event loop, by the loop's index: a loop that gets every socket
    /// shows (`ws4redis_loop_connections{loop="N"}`).
    let loopConnections: [Level]
    let subscriptions = Level()
    let channels = Level()
    /// Channels without local subscribers kept subscribed for subscription_linger.
    let lingeringChannels = Level()
    let redisConnected = Atomic<Bool>(false)
    private let lastConnectionID = Atomic<UInt64>(0)

    let connectionsTotal: Total
    let messagesIn: Total
    let bytesIn: Total
    let messagesOut: Total
    let bytesOut: Total
    let clientMessagesIn: Total
    let clientBytesIn: Total
    let slowClientCloses: Total
    let messagesDropped: Total
    let redisReconnects: Total
    let identityFlagsDropped: Total
    let rateLimitedCloses: Total
    let publishFailures: Total
    let redisTimeouts: Total
    /// Lingering channels a new subscriber took again (a SUBSCRIBE and an UNSUBSCRIBE saved).
    let lingeringChannelsTaken: Total
    /// A pthread lock rather than Synchronization's Mutex: ThreadSanitizer sees the former.
    private let handshakesByStatus = NIOLockedValueBox<[Int: Total]>([:])
    private let deliveryLatency: CoreMetrics.Timer
    private let levelGauges: [(Level, CoreMetrics.Gauge)]
    private let redisConnectedGauge: CoreMetrics.Gauge

    package init(loops: Int = 1) {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[Self.deliveryLatencyName] = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2.5),
        ]
        self.factory = factory
        connectionsTotal = Total("ws4redis_connections_opened_total", factory: factory)
        messagesIn = Total("ws4redis_redis_messages_total", factory: factory)
        bytesIn = Total("ws4redis_redis_message_bytes_total", factory: factory)
        messagesOut = Total("ws4redis_deliveries_total", factory: factory)
        bytesOut = Total("ws4redis_delivered_bytes_total", factory: factory)
        clientMessagesIn = Total("ws4redis_client_messages_total", factory: factory)
        clientBytesIn = Total("ws4redis_client_message_bytes_total", factory: factory)
        slowClientCloses = Total("ws4redis_slow_client_closes_total", factory: factory)
        messagesDropped = Total("ws4redis_messages_dropped_total", factory: factory)
        redisReconnects = Total("ws4redis_redis_reconnects_total", factory: factory)
        identityFlagsDropped = Total("ws4redis_identity_flags_dropped_total", factory: factory)
        rateLimitedCloses = Total("ws4redis_rate_limited_closes_total", factory: factory)
        publishFailures = Total("ws4redis_client_publish_failures_total", factory: factory)
        redisTimeouts = Total("ws4redis_redis_timeouts_total", factory: factory)
        lingeringChannelsTaken = Total("ws4redis_lingering_channels_taken_total", factory: factory)
        deliveryLatency = CoreMetrics.Timer(label: Self.deliveryLatencyName, factory: factory)
        var levelGauges = [
            (connections, CoreMetrics.Gauge(label: "ws4redis_connections", factory: factory)),
            (subscriptions, CoreMetrics.Gauge(label: "ws4redis_subscriptions", factory: factory)),
            (channels, CoreMetrics.Gauge(label: "ws4redis_channels", factory: factory)),
            (lingeringChannels, CoreMetrics.Gauge(label: "ws4redis_lingering_channels", factory: factory)),
        ]
        loopConnections = (0..<loops).map { _ in Level() }
        levelGauges += loopConnections.enumerated().map { index, level in
            (level, CoreMetrics.Gauge(label: "ws4redis_loop_connections", dimensions: [("loop", String(index))], factory: factory))
        }
        self.levelGauges = levelGauges
        redisConnectedGauge = CoreMetrics.Gauge(label: "ws4redis_redis_connected", factory: factory)
    }

    func nextConnectionID() -> UInt64 {
        lastConnectionID.add(1, ordering: .relaxed).newValue
    }

    /// Counts a handshake by the HTTP status it was answered with (101 when accepted).
    func handshakeDecided(status: Int) {
        handshakesByStatus.withLockedValue { byStatus in
            if let total = byStatus[status] { return total }
            let total = Total("ws4redis_handshakes_total", dimensions: [("status", String(status))], factory: factory)
            byStatus[status] = total
            return total
        }.add(1)
    }

    func delivered(_ messages: Int, bytes: Int) {
        messagesOut.add(messages)
        bytesOut.add(bytes)
    }

    /// One message written to a loop's subscribers, `nanoseconds` after it was read from Redis.
    func recordDeliveryLatency(nanoseconds: Int64) {
        deliveryLatency.recordNanoseconds(nanoseconds)
    }

    /// The Prometheus text exposition of every figure.
    var prometheusText: String {
        for (level, gauge) in levelGauges { gauge.record(Int64(level.current)) }
        redisConnectedGauge.record(redisConnected.load(ordering: .relaxed) ? 1 : 0)
        return registry.emitToString()
    }

    var snapshot: ServerStats {
        ServerStats(
            connections: connections.current, connectionsTotal: connectionsTotal.current, subscriptions: subscriptions.current,
            channels: channels.current, messagesIn: messagesIn.current, messagesOut: messagesOut.current,
            clientMessagesIn: clientMessagesIn.current, slowClientCloses: slowClientCloses.current, messagesDropped: messagesDropped.current,
            redisConnected: redisConnected.load(ordering: .relaxed)
        )
    }
}
