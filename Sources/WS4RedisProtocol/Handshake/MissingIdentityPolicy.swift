/// What a handshake gets when it asks for flags that need an identity it does not have.
public enum MissingIdentityPolicy: String, Sendable {
    /// The flags are dropped (logged at debug, counted); the rest of the connection works.
    case drop
    /// The handshake is refused with 403, naming the flags.
    case refuse
}
