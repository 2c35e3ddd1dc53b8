import NIOCore

/// What one websocket does, fixed at its handshake: the channels it listens to and publishes to.
struct ConnectionPlan: Sendable {
    let endpoint: WebSocketEndpoint
    let subscriptions: [String]
    let publications: [String]
    /// With the `echo` flag a client also receives what it published itself.
    let echo: Bool

    init(_ handshake: AcceptedHandshake, names: ChannelNames) {
        endpoint = handshake.endpoint
        echo = handshake.flags.contains(.echo)
        switch handshake.endpoint {
        case .facility(let facility):
            subscriptions = names.subscriptions(facility: facility, flags: handshake.flags, identity: handshake.identity)
            publications = names.publications(facility: facility, flags: handshake.flags, identity: handshake.identity)
        case .echo:
            (subscriptions, publications) = ([], [])
        }
    }

    init(endpoint: WebSocketEndpoint, subscriptions: [String], publications: [String] = [], echo: Bool = false) {
        self.endpoint = endpoint
        self.subscriptions = subscriptions
        self.publications = publications
        self.echo = echo
    }
}

/// What the connections of a server share, besides their hub's bookkeeping.
struct ConnectionSettings: Sendable {
    var maxMessageSize: Int
    var maxOutboundBytes: Int
    var slowClientPolicy: SlowClientPolicy
    var expireSeconds: Int
    /// The heartbeat string as raw bytes, to compare client messages with; nil when off.
    var heartbeat: [UInt8]?
    /// How long a close handshake may take before the socket is dropped.
    var closeTimeout: TimeAmount = .seconds(5)

    init(_ configuration: ServerConfiguration) {
        maxMessageSize = configuration.maxMessageSize
        maxOutboundBytes = configuration.maxOutboundBytes
        slowClientPolicy = configuration.slowClientPolicy
        expireSeconds = configuration.expireSeconds
        heartbeat = configuration.heartbeat.map { Array($0.utf8) }
    }
}
