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

    package static let byName: [String: ChannelFlags] = [
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

    private static let plainNames = byName.map { (name: Array($0.key.utf8), flag: $0.value) }

    /// The flag of a name written as the docs write it (no escapes, spaces or capitals): the
    /// common case, without normalizing a copy. The names' lengths tell most of them apart.
    private static func flag(plainlyNamed name: UnsafeBufferPointer<UInt8>) -> ChannelFlags? {
        plainNames.first { $0.name.count == name.count && $0.name.withUnsafeBufferPointer { $0.elementsEqual(name) } }?.flag
    }

    /// Parses a raw query string as the original does: parameter names trimmed and lower-cased,
    /// values ignored, unknown names ignored.
    public init(query: Substring?) {
        guard let query else {
            self = []
            return
        }
        // On contiguous UTF-8 bytes: Characters segment graphemes, and even a UTF-8 view's indices
        // cost more per byte than the rest of the parse.
        self = query.utf8.withContiguousBytes(Self.parse)
    }

    private static func parse(query: UnsafeBufferPointer<UInt8>) -> ChannelFlags {
        var flags: ChannelFlags = []
        var start = 0
        while start < query.count {
            let end = query[start...].firstIndex(of: UInt8(ascii: "&")) ?? query.count
            let parameter = UnsafeBufferPointer(rebasing: query[start..<end])
            let name = UnsafeBufferPointer(rebasing: parameter[..<(parameter.firstIndex(of: UInt8(ascii: "=")) ?? parameter.count)])
            if !parameter.isEmpty, let flag = flag(plainlyNamed: name) ?? flag(writtenAnyhow: name) { flags.insert(flag) }
            start = end + 1
        }
        return flags
    }

    /// The flag of a name with escapes, spaces or capitals, as the original normalizes it.
    private static func flag(writtenAnyhow name: UnsafeBufferPointer<UInt8>) -> ChannelFlags? {
        byName[String(decoding: name, as: UTF8.self).removingPercentEncoding(plusAsSpace: true).trimmingWhitespace().lowercased()]
    }
}
