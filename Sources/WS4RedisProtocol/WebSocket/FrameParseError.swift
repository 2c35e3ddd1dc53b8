import NIOCore

/// A frame the parser refuses before reading its payload.
package enum FrameParseError: Error, Equatable {
    /// Longer than the configured maximum frame size: close with 1009.
    case tooLarge(Int)
    /// A 64-bit length with the most significant bit set: close with 1002.
    case invalidLength
}
