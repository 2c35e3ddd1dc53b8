import ArgumentParser
import NIOPosix
import WS4Redis

#if canImport(Glibc)
    import Glibc
#endif

/// `ws4redis stats`: the live figures of a running server (standalone or host), from its /metrics.
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the live figures of a running server (read from its /metrics).")

    @Option(help: "The server's base URL.")
    var url = "http://127.0.0.1:8080"

    @Option(help: "Print again every N seconds, with rates per second since the previous print; 0: once.")
    var interval = 0.0

    func validate() throws {
        guard interval >= 0 else { throw ValidationError("--interval must be 0 or more seconds") }
    }

    func run() throws {
        var target = try HTTPURL(parsing: url)
        target.path = target.path.hasSuffix("/") ? target.path + "metrics" : target.path + "/metrics"
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        var previous: MetricsSample?
        repeat {
            if previous != nil { usleep(UInt32(interval * 1_000_000)) }
            let sample = MetricsSample(prometheusText: try HTTPGet.body(of: target, group: group))
            print(StatsReport(sample, previous: previous, seconds: interval).text)
            previous = sample
        } while interval > 0
    }
}

/// What `ws4redis stats` prints for one sample (with rates when there is a previous one).
struct StatsReport {
    let text: String

    init(_ now: MetricsSample, previous: MetricsSample?, seconds: Double) {
        func count(_ name: String) -> String {
            let value = now[name]
            guard let previous, seconds > 0 else { return Self.whole(value) }
            return "\(Self.whole(value)) (\(Self.whole((value - previous[name]) / seconds))/s)"
        }
        let handshakes = now.series("ws4redis_handshakes_total", label: "status").map { "\($0.0): \(Self.whole($0.1))" }
        let latency = ["0.5", "0.99"].compactMap { q in
            now.quantile(Double(q)!, of: "ws4redis_delivery_latency_seconds").map { "p\(Int(Double(q)! * 100)) <= \(Self.duration($0))" }
        }
        let rows: [(String, String)] = [
            ("redis", "\(now["ws4redis_redis_connected"] == 1 ? "connected" : "DISCONNECTED"), reconnects \(count("ws4redis_redis_reconnects_total"))"),
            ("connections", "\(Self.whole(now["ws4redis_connections"])) open, \(count("ws4redis_connections_opened_total")) opened"),
            ("handshakes", handshakes.isEmpty ? "none" : handshakes.joined(separator: ", ")),
            ("subscriptions", "\(Self.whole(now["ws4redis_subscriptions"])) on \(Self.whole(now["ws4redis_channels"])) channels"),
            ("from redis", "\(count("ws4redis_redis_messages_total")) messages, \(count("ws4redis_redis_message_bytes_total")) bytes"),
            ("delivered", "\(count("ws4redis_deliveries_total")) messages, \(count("ws4redis_delivered_bytes_total")) bytes"),
            ("from clients", "\(count("ws4redis_client_messages_total")) messages, \(count("ws4redis_client_message_bytes_total")) bytes"),
            ("slow clients", "\(count("ws4redis_slow_client_closes_total")) closed, \(count("ws4redis_messages_dropped_total")) messages dropped"),
            ("latency", latency.isEmpty ? "no deliveries yet" : latency.joined(separator: ", ") + " (Redis to socket write)"),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        text = rows.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 }.joined(separator: "\n")
    }

    private static func whole(_ value: Double) -> String {
        value.isFinite ? String(Int64(value.rounded())) : "inf"
    }

    private static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "more than the largest bucket" }
        return seconds < 1 ? "\(whole(seconds * 1000)) ms" : "\(seconds) s"
    }
}
