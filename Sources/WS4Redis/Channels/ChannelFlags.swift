/// The query-string flags of a websocket URL (`?subscribe-broadcast&publish-user&echo`).
public struct ChannelFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt16
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

    public static let all = ChannelFlags(rawValue: 0x1FF)

    /// Flags that need an identity: without one they are refused rather than mapped to junk channels.
    public static let needingIdentity: ChannelFlags = [.subscribeUser, .subscribeGroup, .subscribeSession, .publishUser, .publishGroup, .publishSession]

    static let byName: [String: ChannelFlags] = [
        "subscribe-broadcast": .subscribeBroadcast, "subscribe-user": .subscribeUser,
        "subscribe-group": .subscribeGroup, "subscribe-session": .subscribeSession,
        "publish-broadcast": .publishBroadcast, "publish-user": .publishUser,
        "publish-group": .publishGroup, "publish-session": .publishSession,
        "echo": .echo,
    ]

    /// The flag names, comma-separated in query order (for logs).
    public var names: String {
        Self.byName.filter { contains($0.value) }.sorted { $0.value.rawValue < $1.value.rawValue }.map(\.key).joined(separator: ",")
    }

    /// Parses a comma-separated list of flag names, or `all`.
    public init(list: String) throws {
        self = []
        for name in list.split(separator: ",").map({ String($0).trimmingWhitespace().lowercased() }) where !name.isEmpty {
            if name == "all" {
                self = .all
            } else if let flag = Self.byName[name] {
                insert(flag)
            } else {
                throw WS4RedisError.configuration("unknown flag '\(name)'; flags are \(Self.byName.keys.sorted().joined(separator: ", "))")
            }
        }
    }

    private static let plainNames = byName.map { (Array($0.key.utf8), $0.value) }

    /// The flag of a name written as the docs write it (no escapes, spaces or capitals): the
    /// common case, without normalizing a copy.
    private static func flag(plainlyNamed name: some Collection<UInt8>) -> ChannelFlags? {
        plainNames.first { $0.0.elementsEqual(name) }?.1
    }

    /// Parses a raw query string as the original does: parameter names trimmed and lower-cased,
    /// values ignored, unknown names ignored.
    public init(query: Substring?) {
        self = []
        guard let query else { return }
        // On UTF-8 bytes: splitting Characters segments graphemes, which cost more than the rest of the parse.
        for parameter in query.utf8.split(separator: UInt8(ascii: "&")) {
            let name = parameter.prefix { $0 != UInt8(ascii: "=") }
            if let flag = Self.flag(plainlyNamed: name) {
                insert(flag)
                continue
            }
            let normalized = String(decoding: name, as: UTF8.self).removingPercentEncoding(plusAsSpace: true).trimmingWhitespace().lowercased()
            if let flag = Self.byName[normalized] { insert(flag) }
        }
    }
}
