import NIOCore

/// Parses client frames as a state machine over the bytes it is given: header, extended length,
/// mask, then payload chunks. The frame size limit is checked as soon as the length is known. The
/// connection handler drives it directly (no decoder handler of its own: an idle websocket keeps
/// one handler, not two).
package struct FrameParser {
    private enum State {
        case header
        case payload(remaining: Int, maskKey: UInt32?, maskOffset: Int)
        /// The frame after `head` has no payload: `.end` is due next.
        case endDue
        /// A frame was refused: nothing more is parsed (or kept).
        case failed
    }

    private var state = State.header
    package let maxFrameSize: Int

    package init(maxFrameSize: Int) {
        self.maxFrameSize = maxFrameSize
    }

    /// Between frames: the next byte read starts a frame header.
    package var isAtRest: Bool {
        if case .header = state { return true }
        return false
    }

    /// The next part of the frames in `buffer` (consuming its bytes), or nil when more bytes are
    /// needed. Bytes of an incomplete header stay unread in `buffer`. After it throws, it discards
    /// what it is given and returns nil.
    package mutating func nextPart(from buffer: inout ByteBuffer) throws(FrameParseError) -> FramePart? {
        switch state {
        case .header:
            let head: FrameHead?
            do {
                head = try parseHead(&buffer)
            } catch {
                state = .failed
                throw error
            }
            guard let head else { return nil }
            state = head.length == 0 ? .endDue : .payload(remaining: head.length, maskKey: head.maskKey, maskOffset: 0)
            return .head(head)
        case .endDue:
            state = .header
            return .end
        case .payload(let remaining, let maskKey, let maskOffset):
            guard buffer.readableBytes > 0 else { return nil }
            var chunk = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
            if let maskKey { Self.unmask(&chunk, key: maskKey, offset: maskOffset) }
            let left = remaining - chunk.readableBytes
            state = left == 0 ? .endDue : .payload(remaining: left, maskKey: maskKey, maskOffset: maskOffset + chunk.readableBytes)
            return .payload(chunk)
        case .failed:
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return nil
        }
    }

    /// The head once all of it is buffered (consuming it), else nil (consuming nothing).
    private func parseHead(_ buffer: inout ByteBuffer) throws(FrameParseError) -> FrameHead? {
        let start = buffer.readerIndex
        guard let first = buffer.readInteger(as: UInt8.self), let second = buffer.readInteger(as: UInt8.self) else {
            buffer.moveReaderIndex(to: start)
            return nil
        }
        let masked = second & 0x80 != 0
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let extended = buffer.readInteger(as: UInt16.self) else { return rewind(&buffer, to: start) }
            length = Int(extended)
        } else if length == 127 {
            guard let extended = buffer.readInteger(as: UInt64.self) else { return rewind(&buffer, to: start) }
            guard extended >> 63 == 0 else { throw FrameParseError.invalidLength }
            guard extended <= UInt64(maxFrameSize) else { throw FrameParseError.tooLarge(Int(clamping: extended)) }
            length = Int(extended)
        }
        guard length <= maxFrameSize else { throw FrameParseError.tooLarge(length) }
        var maskKey: UInt32?
        if masked {
            // One integer: NIO's WebSocketMaskingKey takes the bytes through an unspecialised generic
            // initialiser, which cost five allocations per frame.
            guard let key = buffer.readInteger(as: UInt32.self) else { return rewind(&buffer, to: start) }
            maskKey = key
        }
        return FrameHead(
            fin: first & 0x80 != 0, rsv1: first & 0x40 != 0, rsv2: first & 0x20 != 0, rsv3: first & 0x10 != 0,
            opcode: Opcode(encoded: first & 0x0F)!, length: length, maskKey: maskKey
        )
    }

    /// XORs payload bytes with the key, the first of them being byte `offset` of the payload.
    private static func unmask(_ chunk: inout ByteBuffer, key: UInt32, offset: Int) {
        chunk.withUnsafeMutableReadableBytes { bytes in
            for index in bytes.indices {
                bytes[index] ^= UInt8(truncatingIfNeeded: key >> (24 - 8 * ((index + offset) & 3)))
            }
        }
    }

    private func rewind(_ buffer: inout ByteBuffer, to index: Int) -> FrameHead? {
        buffer.moveReaderIndex(to: index)
        return nil
    }
}
