#if canImport(Glibc)
    import Glibc
#endif

/// The proxies (nginx, a load balancer) whose `X-Forwarded-For` / `X-Real-IP` headers name the real
/// client. Headers from any other peer are ignored: a client could otherwise claim any address.
public struct TrustedProxies: Sendable, Equatable {
    private let ranges: [AddressRange]

    public static let none = TrustedProxies(ranges: [])

    private init(ranges: [AddressRange]) {
        self.ranges = ranges
    }

    /// Parses a comma-separated list of addresses and CIDR ranges, e.g. "127.0.0.1, 10.0.0.0/8, ::1".
    public init(parsing list: String) throws {
        ranges = try list.split(separator: ",").map { item in
            let text = String(item).trimmingWhitespace()
            guard let range = AddressRange(text) else {
                throw WS4RedisError.configuration("trusted_proxies: '\(text)' is not an IP address or CIDR range")
            }
            return range
        }
    }

    public var isEmpty: Bool { ranges.isEmpty }

    /// The client's address: the peer's own, unless the peer is a trusted proxy; then the nearest
    /// untrusted hop of X-Forwarded-For (proxies append), else X-Real-IP.
    func clientAddress(of request: HandshakeRequest) -> String? {
        guard let peer = request.remoteAddress.map(Self.withoutPort) else { return nil }
        guard isTrusted(peer) else { return peer }
        let hops = request.headers(named: "x-forwarded-for").flatMap { $0.split(separator: ",") }.map { String($0).trimmingWhitespace() }
        if let client = hops.last(where: { !isTrusted($0) }) ?? hops.first {
            return client
        }
        return request.header("x-real-ip")?.trimmingWhitespace() ?? peer
    }

    /// Hosts may report peers as "ip:port" or "[ipv6]:port"; the address alone is what counts.
    static func withoutPort(_ address: String) -> String {
        // No colon: an IPv4 address (as NIO reports peers) or a name, without a port either way.
        guard address.utf8.contains(UInt8(ascii: ":")) else { return address }
        if AddressRange.bytes(of: address) != nil { return address }
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") { return String(address[address.index(after: address.startIndex)..<close]) }
        if let colon = address.lastIndex(of: ":"), address.firstIndex(of: ":") == colon { return String(address[..<colon]) }
        return address
    }

    private func isTrusted(_ address: String) -> Bool {
        // Without trusted proxies (the default) nothing is worth parsing an address for.
        guard !ranges.isEmpty, let bytes = AddressRange.bytes(of: address) else { return false }
        return ranges.contains { $0.contains(bytes) }
    }
}
