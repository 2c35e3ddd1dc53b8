import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class MetricsTests: XCTestCase {
    func testThePrometheusTextCarriesEveryFigure() {
        let counters = ServerCounters()
        counters.connections.add(3)
        counters.delivered(10, bytes: 640)
        counters.handshakeDecided(status: 101)
        counters.handshakeDecided(status: 101)
        counters.handshakeDecided(status: 403)
        counters.recordDeliveryLatency(nanoseconds: 700_000)
        counters.redisConnected.store(true, ordering: .relaxed)
        let text = counters.prometheusText
        for line in [
            "ws4redis_connections 3.0", "ws4redis_deliveries_total 10", "ws4redis_delivered_bytes_total 640",
            #"ws4redis_handshakes_total{status="101"} 2"#, #"ws4redis_handshakes_total{status="403"} 1"#, "ws4redis_redis_connected 1.0",
            #"ws4redis_delivery_latency_seconds_bucket{le="0.0005"} 0"#, #"ws4redis_delivery_latency_seconds_bucket{le="0.001"} 1"#,
            "ws4redis_delivery_latency_seconds_count 1", "# TYPE ws4redis_slow_client_closes_total counter",
        ] {
            XCTAssertTrue(text.contains(line + "\n"), "missing '\(line)' in:\n\(text)")
        }
        XCTAssertEqual(counters.snapshot.messagesOut, 10)
    }

    func testServersDoNotShareFigures() {
        let one = ServerCounters()
        one.connectionsTotal.add(5)
        XCTAssertTrue(ServerCounters().prometheusText.contains("ws4redis_connections_opened_total 0\n"))
    }

    func testJSONStringsAreEscaped() {
        XCTAssertEqual(JSONText.quoted("a\"b\\c\nd\u{1}é"), #""a\"b\\c\nd\u0001é""#)
    }

    func testFlagNamesInQueryOrder() {
        XCTAssertEqual(ChannelFlags([.echo, .subscribeBroadcast, .publishUser]).names, "subscribe-broadcast,publish-user,echo")
    }
}
