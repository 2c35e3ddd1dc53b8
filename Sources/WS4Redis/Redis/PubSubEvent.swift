import NIOCore

/// What the subscriber connection hears from Redis.
package enum PubSubEvent: Equatable {
    /// A published message; the payload keeps the headroom its decoder was given in front of it.
    case message(channel: String, payload: ByteBuffer)
    case subscribed(channel: String)
    case unsubscribed(channel: String)
    case pong
    case status(String)
    case error(String)
}
