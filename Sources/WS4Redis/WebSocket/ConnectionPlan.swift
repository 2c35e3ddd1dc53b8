import NIOCore

/// What one websocket does, fixed at its handshake: the channels it listens to and publishes to.
struct ConnectionPlan: Sendable {
    let endpoint: WebSocketEndpoint
    let subscriptions: [String]
    let publications: [String]
    /// With the `echo` flag a client also receives what it published itself.
    let echo: Bool
    let deflate: DeflateParameters?

    init(_ handshake: AcceptedHandshake, names: ChannelNames) {
        endpoint = handshake.endpoint
        echo = handshake.flags.contains(.echo)
        deflate = handshake.deflate
        switch handshake.endpoint {
        case .facility(let facility):
            subscriptions = names.subscriptions(facility: facility, flags: handshake.flags, identity: handshake.identity)
            publications = names.publications(facility: facility, flags: handshake.flags, identity: handshake.identity)
        case .echo:
            (subscriptions, publications) = ([], [])
        }
    }

    /// Whether this client gets the shared compressed frames.
    var takesCompressedFrames: Bool { deflate?.acceptsSharedFrames ?? false }
}

/// What the connections of a server share, besides their hub's bookkeeping.
struct ConnectionSettings: Sendable {
    var maxMessageSize: Int
    var maxOutboundBytes: Int
    var slowClientPolicy: SlowClientPolicy
    var expireSeconds: Int
    /// Messages at least this long are compressed for clients that negotiated permessage-deflate.
    var compressionThreshold: Int
    /// The heartbeat string as raw bytes, to compare client messages with; nil when off.
    var heartbeat: [UInt8]?
    /// How long a close handshake may take before the socket is dropped.
    var closeTimeout: TimeAmount = .seconds(5)

    init(_ configuration: ServerConfiguration) {
        maxMessageSize = configuration.maxMessageSize
        maxOutboundBytes = configuration.maxOutboundBytes
        slowClientPolicy = configuration.slowClientPolicy
        expireSeconds = configuration.expireSeconds
        compressionThreshold = configuration.compressionThreshold
        heartbeat = configuration.heartbeat.map { Array($0.utf8) }
    }
}
