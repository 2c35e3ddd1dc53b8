/// An HTTP request as far as a websocket handshake needs it, whoever parsed it (NIO or a C host).
public struct HandshakeRequest: Sendable {
    public var method: String
    public var path: String
    public var query: String?
    public var httpVersion: String
    public var headers: [(name: String, value: String)]
    public var remoteAddress: String?

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
    func headers(named name: String) -> [String] {
        headers.filter { $0.name.utf8.equalsIgnoringASCIICase(name) }.map(\.value)
    }

    /// Whether a comma-separated header (Connection, Upgrade) lists `token` (in lowercase), case-insensitively.
    func headerLists(_ name: String, token: String) -> Bool {
        headers.contains { header in
            header.name.utf8.equalsIgnoringASCIICase(name)
                && header.value.utf8.split(separator: UInt8(ascii: ",")).contains { $0.trimmingSpaces().equalsIgnoringASCIICase(token) }
        }
    }
}

extension Collection<UInt8> {
    /// Compares UTF-8 with `lowercase` (lowercase ASCII), ignoring ASCII case: a handshake looks
    /// headers up a dozen times, and lowercasing every name would allocate every time. Most names
    /// differ in length, which a string's UTF-8 view knows at once.
    func equalsIgnoringASCIICase(_ lowercase: String) -> Bool {
        guard count == lowercase.utf8.count else { return false }
        return zip(self, lowercase.utf8).allSatisfy { byte, expected in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) == expected
        }
    }
}

extension Substring.UTF8View {
    /// Without leading and trailing spaces and tabs.
    fileprivate func trimmingSpaces() -> Substring.UTF8View {
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var view = self
        while let first = view.first, isSpace(first) { view = view.dropFirst() }
        while let last = view.last, isSpace(last) { view = view.dropLast() }
        return view
    }
}
