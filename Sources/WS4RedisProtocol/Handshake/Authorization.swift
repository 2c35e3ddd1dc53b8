/// Who a connection is and which flags it may use, as an identity source decided.
public struct Authorization: Sendable {
    public var identity: Identity
    public var allowedFlags: ChannelFlags

    public init(identity: Identity, allowedFlags: ChannelFlags = .all) {
        self.identity = identity
        self.allowedFlags = allowedFlags
    }
}
