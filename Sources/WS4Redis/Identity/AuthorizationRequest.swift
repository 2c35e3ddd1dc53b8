/// What an authorization callback is asked about a handshake.
public struct AuthorizationRequest: Sendable {
    public let method: String
    public let path: String
    public let facility: String
    public let query: String?
    public let headers: [(name: String, value: String)]
    public let cookies: [(name: String, value: String)]
    public let remoteAddress: String?
    public let requestedFlags: ChannelFlags

    init(_ request: HandshakeRequest, facility: String, requestedFlags: ChannelFlags) {
        method = request.method
        path = request.path
        self.facility = facility
        query = request.query
        headers = request.headers
        cookies = Self.cookies(in: request)
        remoteAddress = request.remoteAddress
        self.requestedFlags = requestedFlags
    }

    /// The pairs of every `Cookie` header (RFC 6265 §5.4: `name=value; name=value`).
    static func cookies(in request: HandshakeRequest) -> [(name: String, value: String)] {
        request.headers.filter { $0.name.lowercased() == "cookie" }.flatMap { header in
            header.value.split(separator: ";").compactMap { pair -> (name: String, value: String)? in
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard let name = parts.first.map({ String($0).trimmingWhitespace() }), !name.isEmpty else { return nil }
                var value = parts.count > 1 ? String(parts[1]).trimmingWhitespace() : ""
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                return (name, value)
            }
        }
    }
}

/// A registered authorization callback: returns the identity and allowed flags, or throws a
/// `HandshakeRefusal` to deny. Runs on a worker thread and may block.
public typealias AuthorizationCallback = @Sendable (AuthorizationRequest) throws -> Authorization
