import NIOCore

/// A frame's header (RFC 6455 §5.2).
package struct FrameHead: Equatable {
    package var fin: Bool
    package var rsv1: Bool
    package var rsv2: Bool
    package var rsv3: Bool
    package var opcode: Opcode
    package var length: Int
    /// The masking key in network byte order (RFC 6455 §5.3); nil for an unmasked frame.
    package var maskKey: UInt32?
}
