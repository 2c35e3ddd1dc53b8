import NIOCore

/// Encodes server-to-client frames (unmasked, unfragmented, no extensions) straight into
/// ByteBuffers, so that a fan-out frame is built once and the same buffer goes to every socket.
package enum FrameWriter {
    /// Room to leave in front of a payload so that its header can be written in place.
    package static let maxHeaderSize = 10

    package static func headerSize(payloadLength: Int) -> Int {
        switch payloadLength {
        case ..<126: 2
        case ..<65536: 4
        default: 10
        }
    }

    /// A frame around `payload`, copying it.
    package static func frame(opcode: Opcode, payload: ByteBuffer, allocator: ByteBufferAllocator, compressed: Bool = false) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: headerSize(payloadLength: payload.readableBytes) + payload.readableBytes)
        writeHeader(into: &buffer, opcode: opcode, payloadLength: payload.readableBytes, compressed: compressed)
        var payload = payload
        buffer.writeBuffer(&payload)
        return buffer
    }

    /// Turns a payload that has at least `maxHeaderSize` bytes of headroom before its reader index
    /// into a frame without copying it.
    package static func frameInPlace(_ buffer: inout ByteBuffer, opcode: Opcode, compressed: Bool = false) {
        let length = buffer.readableBytes
        let start = buffer.readerIndex - headerSize(payloadLength: length)
        precondition(start >= 0, "payload without headroom for a frame header")
        var header = ByteBuffer()
        writeHeader(into: &header, opcode: opcode, payloadLength: length, compressed: compressed)
        buffer.setBuffer(header, at: start)
        buffer.moveReaderIndex(to: start)
    }

    package static func closeFrame(code: CloseCode, reason: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        let payloadLength = 2 + reason.utf8.count
        var frame = allocator.buffer(capacity: headerSize(payloadLength: payloadLength) + payloadLength)
        writeHeader(into: &frame, opcode: .connectionClose, payloadLength: payloadLength, compressed: false)
        frame.writeInteger(code.code)
        frame.writeString(reason)
        return frame
    }

    /// The payload of a frame this writer made.
    package static func payload(of frame: ByteBuffer) -> ByteBufferView {
        let lengthByte = frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) ?? 0
        let headerSize = lengthByte == 127 ? 10 : lengthByte == 126 ? 4 : 2
        return frame.readableBytesView.dropFirst(headerSize)
    }

    /// Text for valid UTF-8, binary otherwise: browsers drop connections on invalid text frames.
    package static func opcode(forPayload payload: ByteBuffer) -> Opcode {
        UTF8Validator.isValid(payload) ? .text : .binary
    }

    /// The opcode of a frame this writer made.
    package static func opcode(of frame: ByteBuffer) -> Opcode {
        Opcode(encoded: (frame.getInteger(at: frame.readerIndex, as: UInt8.self) ?? 0) & 0x0F) ?? .binary
    }

    /// RSV1 marks a compressed message (RFC 7692 §6).
    private static func writeHeader(into buffer: inout ByteBuffer, opcode: Opcode, payloadLength: Int, compressed: Bool = false) {
        buffer.writeInteger(0x80 | (compressed ? 0x40 : 0) | opcode.rawValue)
        switch payloadLength {
        case ..<126:
            buffer.writeInteger(UInt8(payloadLength))
        case ..<65536:
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(payloadLength))
        default:
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(payloadLength))
        }
    }
}
