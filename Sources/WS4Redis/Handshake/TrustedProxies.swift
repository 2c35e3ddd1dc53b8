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

/// One IPv4 or IPv6 network: an address and a prefix length.
private struct AddressRange: Sendable, Equatable {
    let network: [UInt8]
    let prefixLength: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let network = Self.bytes(of: parts[0]) else { return nil }
        let bits = network.count * 8
        guard let length = parts.count == 2 ? Int(parts[1]) : bits, (0...bits).contains(length) else { return nil }
        self.network = network
        prefixLength = length
    }

    func contains(_ address: [UInt8]) -> Bool {
        guard address.count == network.count else { return false }
        var remaining = prefixLength
        for (a, b) in zip(address, network) where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            guard a & mask == b & mask else { return false }
            remaining -= 8
        }
        return true
    }

    /// The 4 or 16 bytes of a textual address; IPv4-mapped IPv6 addresses count as IPv4.
    static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        let mappedPrefix: [UInt8] = Array(repeating: 0, count: 10) + [0xFF, 0xFF]
        return bytes.starts(with: mappedPrefix) ? Array(bytes[12...]) : bytes
    }
}
