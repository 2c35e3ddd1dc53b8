/// Redis channel and key names, byte-for-byte those of django-websocket-redis: the pub/sub channel
/// and the key of the persisted message are the same string.
public struct ChannelNames: Sendable, Equatable {
    /// `"<prefix>:"`, or empty without a prefix.
    let prefix: String

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

/// Who a connection is. Empty until an identity source (token, callback, auth request) fills it.
public struct Identity: Sendable, Equatable {
    public var user: String?
    public var groups: [String]
    public var sessionKey: String?

    public init(user: String? = nil, groups: [String] = [], sessionKey: String? = nil) {
        self.user = user
        self.groups = groups
        self.sessionKey = sessionKey
    }

    public static let anonymous = Identity()
}

/// Who receives a published message: a facility and any mix of broadcast, users, groups, sessions.
public struct Audience: Sendable, Equatable {
    public var facility: String
    public var broadcast: Bool
    public var users: [String]
    public var groups: [String]
    public var sessions: [String]

    public init(facility: String, broadcast: Bool = false, users: [String] = [], groups: [String] = [], sessions: [String] = []) {
        self.facility = facility
        self.broadcast = broadcast
        self.users = users
        self.groups = groups
        self.sessions = sessions
    }

    init(facility: String, flags: ChannelFlags, identity: Identity, subscribing: Bool) {
        let (broadcast, user, group, session): (ChannelFlags, ChannelFlags, ChannelFlags, ChannelFlags) =
            subscribing
            ? (.subscribeBroadcast, .subscribeUser, .subscribeGroup, .subscribeSession)
            : (.publishBroadcast, .publishUser, .publishGroup, .publishSession)
        self.init(
            facility: facility,
            broadcast: flags.contains(broadcast),
            users: flags.contains(user) ? identity.user.map { [$0] } ?? [] : [],
            groups: flags.contains(group) ? identity.groups : [],
            sessions: flags.contains(session) ? identity.sessionKey.map { [$0] } ?? [] : []
        )
    }
}
