/// An HTTP request as far as a websocket handshake needs it, whoever parsed it (NIO or a C host).
public struct HandshakeRequest: Sendable {
    public var method: String
    public var path: String
    public var query: String?
    public var httpVersion: String
    public var headers: [(name: String, value: String)]
    public var remoteAddress: String?
    /// False when the path's bytes (percent-decoded) were not UTF-8 and `path` holds U+FFFD in their place.
    public var pathIsUTF8 = true

    public init(method: String, path: String, query: String?, httpVersion: String, headers: [(name: String, value: String)], remoteAddress: String? = nil) {
        self.method = method
        self.path = path
        self.query = query
        self.httpVersion = httpVersion
        self.headers = headers
        self.remoteAddress = remoteAddress
    }

    /// The first value of a header, names compared case-insensitively (`name` in lowercase).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.utf8.equalsIgnoringASCIICase(name) }?.value
    }

    /// Every value of a header, names compared case-insensitively (`name` in lowercase).
    package func headers(named name: String) -> [String] {
        headers.filter { $0.name.utf8.equalsIgnoringASCIICase(name) }.map(\.value)
    }

    /// How many times a header appears, names compared case-insensitively (`name` in lowercase).
    package func headerCount(named name: String) -> Int {
        headers.reduce(0) { $0 + ($1.name.utf8.equalsIgnoringASCIICase(name) ? 1 : 0) }
    }

    /// Whether a comma-separated header (Connection, Upgrade) lists `token` (in lowercase), case-insensitively.
    package func headerLists(_ name: String, token: String) -> Bool {
        headers.contains { $0.name.utf8.equalsIgnoringASCIICase(name) && $0.value.utf8.listsToken(token) }
    }
}
