/// An accepted upgrade: the 101 headers to send and what the connection subscribes to.
public struct AcceptedHandshake: Sendable {
    public let endpoint: WebSocketEndpoint
    public let flags: ChannelFlags
    public let identity: Identity
    /// Present when permessage-deflate was negotiated.
    public let deflate: DeflateParameters?
    public let responseHeaders: [(name: String, value: String)]
    public let remoteAddress: String?
    /// Flags the client asked for that need an identity it lacks (missing_identity = drop).
    public var droppedFlags: ChannelFlags = []
    /// What the server holds for the connection as long as it is open, released with it (its place
    /// in the count of its address's websockets, max_connections_per_ip).
    package var heldWhileOpen: (any AnyObject & Sendable)? = nil
}
