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

    package init(facility: String, flags: ChannelFlags, identity: Identity, subscribing: Bool) {
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
