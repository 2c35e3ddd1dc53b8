/// Redis channel and key names, byte-for-byte those of django-websocket-redis: the pub/sub channel
/// and the key of the persisted message are the same string.
public struct ChannelNames: Sendable, Equatable {
    /// `"<prefix>:"`, or empty without a prefix.
    package let prefix: String

    public init(keyPrefix: String) {
        prefix = keyPrefix.isEmpty ? "" : keyPrefix + ":"
    }

    public func broadcast(facility: String) -> String { "\(prefix)broadcast:\(facility)" }
    public func user(_ name: String, facility: String) -> String { "\(prefix)user:\(name):\(facility)" }
    public func group(_ name: String, facility: String) -> String { "\(prefix)group:\(name):\(facility)" }
    public func session(_ key: String, facility: String) -> String { "\(prefix)session:\(key):\(facility)" }

    /// The channels of an audience in the original publisher's order: broadcast, groups, users, sessions.
    public func channels(for audience: Audience) -> [String] {
        var channels: [String] = []
        if audience.broadcast { channels.append(broadcast(facility: audience.facility)) }
        channels += audience.groups.map { group($0, facility: audience.facility) }
        channels += audience.users.map { user($0, facility: audience.facility) }
        channels += audience.sessions.map { session($0, facility: audience.facility) }
        return channels
    }

    /// The channels whose stored message `fetch` reads, in the original's order: sessions, users, groups, broadcast.
    public func fetchOrder(for audience: Audience) -> [String] {
        var channels = audience.sessions.map { session($0, facility: audience.facility) }
        channels += audience.users.map { user($0, facility: audience.facility) }
        channels += audience.groups.map { group($0, facility: audience.facility) }
        if audience.broadcast { channels.append(broadcast(facility: audience.facility)) }
        return channels
    }

    /// The channels a connection subscribes to for its flags and identity.
    public func subscriptions(facility: String, flags: ChannelFlags, identity: Identity) -> [String] {
        channels(for: Audience(facility: facility, flags: flags, identity: identity, subscribing: true))
    }

    /// The channels a connection publishes its messages to for its flags and identity.
    public func publications(facility: String, flags: ChannelFlags, identity: Identity) -> [String] {
        channels(for: Audience(facility: facility, flags: flags, identity: identity, subscribing: false))
    }
}
