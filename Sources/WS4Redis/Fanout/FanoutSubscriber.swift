import NIOCore

/// What a hub needs of one of its loop's connections: declared here, so that the fan-out names no
/// websocket type. Called on the connection's event loop only.
package protocol FanoutSubscriber: AnyObject {
    /// The hub's bookkeeping, kept in the subscriber so that it needs no table of its own: where it
    /// sits in the hub's list (-1 when in none), and whether it has unflushed writes.
    var hubSlot: Int { get set }
    var needsFlush: Bool { get set }
    /// The channels it listens to: the list the hub shared when it joined.
    var channels: [String] { get }
    /// Whether it takes the shared compressed frames (permessage-deflate).
    var takesCompressedFrames: Bool { get }
    /// Redis confirmed every one of its channels: called once, while it is open.
    func subscriptionConfirmed()
    /// Queues a message (as `frame`: plain or compressed) without flushing; false when it was not written.
    func enqueue(_ message: FanoutMessage, as frame: ByteBuffer) -> Bool
    func flush()
    /// Starts the close handshake; completes when the socket is closed (nil when it is already gone).
    func close(code: CloseCode, reason: String, timeout: TimeAmount) -> EventLoopFuture<Void>?
    /// The periodic ticks of the loop: pings of the liveness check, and the heartbeat.
    func livenessTick()
    func heartbeatTick(_ frame: ByteBuffer)
}
