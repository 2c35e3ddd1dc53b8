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
