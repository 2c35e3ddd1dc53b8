import NIOCore

/// What the connections of a server share, besides their hub's bookkeeping.
package struct ConnectionSettings: Sendable {
    /// Heartbeat ticks per heartbeat interval: a heartbeat comes at most an eighth of the interval
    /// later than the interval after the last frame.
    static let heartbeatTicksPerInterval: UInt8 = 8

    var maxFrameSize: Int
    var maxMessageSize: Int
    var maxOutboundBytes: Int
    var slowClientPolicy: SlowClientPolicy
    /// The heartbeat string as raw bytes, to compare client messages with; nil when off.
    var heartbeat: [UInt8]?
    /// How long a close handshake may take before the socket is dropped.
    var closeTimeout: TimeAmount = .seconds(5)
    /// How fast a client may send; nil rates are unlimited.
    var clientMessageRate: ClientRateLimit.Rate?
    var clientByteRate: ClientRateLimit.Rate?
    /// The rates as configured, for the close reason.
    var clientMessagesPerSecond: Int
    var clientBytesPerSecond: Int
}
