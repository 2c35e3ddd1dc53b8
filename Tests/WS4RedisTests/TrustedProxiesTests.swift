import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class TrustedProxiesTests: XCTestCase {
    private func request(from peer: String?, _ headers: [(String, String)]) -> HandshakeRequest {
        HandshakeRequest(method: "GET", path: "/ws/chat", query: nil, httpVersion: "HTTP/1.1", headers: headers.map { ($0.0, $0.1) }, remoteAddress: peer)
    }

    func testHeadersOfUntrustedPeersAreIgnored() throws {
        let proxies = try TrustedProxies(parsing: "10.0.0.0/8")
        XCTAssertEqual(proxies.clientAddress(of: request(from: "192.0.2.7", [("X-Forwarded-For", "1.2.3.4")])), "192.0.2.7")
        XCTAssertEqual(TrustedProxies.none.clientAddress(of: request(from: "10.1.1.1", [("X-Real-IP", "1.2.3.4")])), "10.1.1.1")
    }

    func testTheNearestUntrustedHopOfXForwardedForIsTheClient() throws {
        let proxies = try TrustedProxies(parsing: "127.0.0.1, 10.0.0.0/8")
        // A client may send its own X-Forwarded-For: only what the trusted proxies appended counts.
        let chain = request(from: "127.0.0.1", [("X-Forwarded-For", "6.6.6.6, 203.0.113.9"), ("X-Forwarded-For", "10.2.3.4")])
        XCTAssertEqual(proxies.clientAddress(of: chain), "203.0.113.9")
        XCTAssertEqual(proxies.clientAddress(of: request(from: "10.9.9.9", [("X-Forwarded-For", "10.0.0.2, 10.0.0.3")])), "10.0.0.2")
    }

    func testXRealIPWhenNoForwardedFor() throws {
        let proxies = try TrustedProxies(parsing: "::1, 127.0.0.0/8")
        XCTAssertEqual(proxies.clientAddress(of: request(from: "::1", [("X-Real-IP", "2001:db8::5")])), "2001:db8::5")
        XCTAssertEqual(proxies.clientAddress(of: request(from: "::ffff:127.0.0.2", [("x-real-ip", " 198.51.100.1 ")])), "198.51.100.1")
        XCTAssertEqual(proxies.clientAddress(of: request(from: "127.0.0.1", [])), "127.0.0.1")
    }

    func testPortsOfHostReportedPeersAreDropped() throws {
        let proxies = try TrustedProxies(parsing: "127.0.0.1, ::1")
        XCTAssertEqual(proxies.clientAddress(of: request(from: "127.0.0.1:45990", [("X-Forwarded-For", "203.0.113.1")])), "203.0.113.1")
        XCTAssertEqual(proxies.clientAddress(of: request(from: "[::1]:8080", [("X-Real-IP", "203.0.113.2")])), "203.0.113.2")
        XCTAssertEqual(TrustedProxies.none.clientAddress(of: request(from: "192.0.2.1:1234", [])), "192.0.2.1")
        XCTAssertEqual(TrustedProxies.none.clientAddress(of: request(from: "2001:db8::1", [])), "2001:db8::1")
    }

    func testMalformedEntriesAreRefusedByName() {
        for bad in ["10.0.0.0/33", "not-an-ip", "::1/129", "1.2.3"] {
            XCTAssertThrowsError(try TrustedProxies(parsing: "127.0.0.1, \(bad)")) { error in
                XCTAssertTrue("\(error)".contains(bad), "\(error)")
            }
        }
    }
}
