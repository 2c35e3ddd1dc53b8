import Logging
import NIOCore

/// What one websocket does, fixed at its handshake: the channels it listens to and publishes to.
package struct ConnectionPlan: Sendable {
    /// Names the connection in the log: unique per server.
    let id: UInt64
    let remoteAddress: String?
    let flags: ChannelFlags
    let endpoint: WebSocketEndpoint
    /// Shared with the loop's other connections of the same channels once the connection started.
    var subscriptions: [String]
    let publications: [String]
    /// With the `echo` flag a client also receives what it published itself.
    let echo: Bool
    let deflate: DeflateParameters?
    /// Held as long as the connection: its place in its address's count (max_connections_per_ip).
    let heldWhileOpen: (any AnyObject & Sendable)?

    package init(_ handshake: AcceptedHandshake, names: ChannelNames, id: UInt64 = 0) {
        self.id = id
        heldWhileOpen = handshake.heldWhileOpen
        remoteAddress = handshake.remoteAddress
        flags = handshake.flags
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

    /// What the connection's log lines share.
    var logMetadata: Logger.Metadata {
        let facility =
            switch endpoint {
            case .facility(let name): name
            case .echo: "(echo)"
            }
        return ["id": "\(id)", "address": "\(remoteAddress ?? "-")", "facility": "\(facility)", "flags": "\(flags.names)"]
    }

    /// Whether this client gets the shared compressed frames.
    var takesCompressedFrames: Bool { deflate?.acceptsSharedFrames ?? false }
}
