import NIOCore

/// Pieces of a frame as they arrive: its head, its payload in chunks (unmasked) as the bytes come
/// in, then its end. Streaming the payload lets text be validated, and refused, before a large
/// frame has arrived in full.
package enum FramePart: Equatable {
    case head(FrameHead)
    case payload(ByteBuffer)
    case end
}
