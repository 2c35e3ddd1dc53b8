import NIOCore

/// A published message on its way to the sockets of one event loop: the frame is encoded once and
/// the same buffer is written to every local subscriber.
package struct FanoutMessage {
    package let channel: String
    package let frame: ByteBuffer
    /// When the message was read from Redis: the start of its delivery latency.
    let receivedAt: NIODeadline

    package init(channel: String, frame: ByteBuffer, receivedAt: NIODeadline = .now()) {
        self.channel = channel
        self.frame = frame
        self.receivedAt = receivedAt
    }
}
