/// The query-string flags of a websocket URL (`?subscribe-broadcast&publish-user&echo`).
public struct ChannelFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let subscribeBroadcast = ChannelFlags(rawValue: 1 << 0)
    public static let subscribeUser = ChannelFlags(rawValue: 1 << 1)
    public static let subscribeGroup = ChannelFlags(rawValue: 1 << 2)
    public static let subscribeSession = ChannelFlags(rawValue: 1 << 3)
    public static let publishBroadcast = ChannelFlags(rawValue: 1 << 4)
    public static let publishUser = ChannelFlags(rawValue: 1 << 5)
    public static let publishGroup = ChannelFlags(rawValue: 1 << 6)
    public static let publishSession = ChannelFlags(rawValue: 1 << 7)
    public static let echo = ChannelFlags(rawValue: 1 << 8)

    /// Flags that need an identity: without one they are refused rather than mapped to junk channels.
    public static let needingIdentity: ChannelFlags = [.subscribeUser, .subscribeGroup, .subscribeSession, .publishUser, .publishGroup, .publishSession]

    static let byName: [String: ChannelFlags] = [
        "subscribe-broadcast": .subscribeBroadcast, "subscribe-user": .subscribeUser,
        "subscribe-group": .subscribeGroup, "subscribe-session": .subscribeSession,
        "publish-broadcast": .publishBroadcast, "publish-user": .publishUser,
        "publish-group": .publishGroup, "publish-session": .publishSession,
        "echo": .echo,
    ]

    /// Parses a raw query string as the original does: parameter names trimmed and lower-cased,
    /// values ignored, unknown names ignored.
    public init(query: Substring?) {
        self = []
        guard let query else { return }
        for parameter in query.split(separator: "&", omittingEmptySubsequences: true) {
            let name = parameter.prefix { $0 != "=" }
            let normalized = String(name).removingPercentEncoding().trimmingWhitespace().lowercased()
            if let flag = Self.byName[normalized] { insert(flag) }
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }

    /// Decodes `%XX` escapes and `+` as a query string does; malformed escapes stay as written.
    func removingPercentEncoding() -> String {
        guard contains("%") || contains("+") else { return self }
        var bytes: [UInt8] = []
        var utf8 = Array(self.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
