import NIOCore

/// A connection's state that most idle subscribers never need: kept out of line so that an idle
/// websocket costs less memory.
final class OccasionalState {
    /// The last message this client sent, so that Redis does not echo it back (without `echo`).
    var lastSent: ByteBuffer?
    /// What the client published while its stored messages were being fetched: the fetch may find it
    /// stored already, and the client gets its own message live (with echo) or not at all.
    var sentWhileHeldBack: ByteBuffer?
    /// What the client published before Redis confirmed its channels, published at confirmation.
    var unpublished: [ByteBuffer] = []
    var unpublishedBytes = 0
    /// Bytes of the live frames held back while the stored messages are fetched.
    var heldBackBytes = 0
    /// With the keep-newest policy, while the socket is saturated: the newest frame per channel, in first-held order.
    var newestWhileSaturated: [(channel: String, frame: ByteBuffer)]?
    /// For the closing log line: the first close code sent or received, and why the server dropped
    /// the socket without a close handshake.
    var closeCode: CloseCode?
    var dropCause: String?
}
