import NIOCore
import NIOWebSocket

/// A frame's header (RFC 6455 §5.2).
package struct FrameHead: Equatable {
    var fin: Bool
    var rsv1: Bool
    var rsv2: Bool
    var rsv3: Bool
    var opcode: WebSocketOpcode
    var length: Int
    var maskKey: WebSocketMaskingKey?
}

/// Pieces of a frame as they arrive: its head, its payload in chunks (unmasked) as the bytes come
/// in, then its end. Streaming the payload lets text be validated, and refused, before a large
/// frame has arrived in full.
package enum FramePart: Equatable {
    case head(FrameHead)
    case payload(ByteBuffer)
    case end
}

/// A frame the parser refuses before reading its payload.
package enum FrameParseError: Error, Equatable {
    /// Longer than the configured maximum frame size: close with 1009.
    case tooLarge(Int)
    /// A 64-bit length with the most significant bit set: close with 1002.
    case invalidLength
}

/// Parses client frames as a state machine over the bytes it has: header, extended length, mask,
/// then payload chunks. The frame size limit is checked as soon as the length is known.
package struct FrameParser: ByteToMessageDecoder {
    package typealias InboundOut = FramePart

    private enum State {
        case header
        case payload(remaining: Int, maskKey: WebSocketMaskingKey?, maskOffset: Int)
    }

    private var state = State.header
    let maxFrameSize: Int

    package init(maxFrameSize: Int) {
        self.maxFrameSize = maxFrameSize
    }

    package mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        switch state {
        case .header:
            guard let head = try parseHead(&buffer) else { return .needMoreData }
            context.fireChannelRead(wrapInboundOut(.head(head)))
            if head.length == 0 {
                context.fireChannelRead(wrapInboundOut(.end))
            } else {
                state = .payload(remaining: head.length, maskKey: head.maskKey, maskOffset: 0)
            }
            return .continue
        case .payload(let remaining, let maskKey, let maskOffset):
            guard buffer.readableBytes > 0 else { return .needMoreData }
            var chunk = buffer.readSlice(length: min(remaining, buffer.readableBytes))!
            if let maskKey { chunk.webSocketUnmask(maskKey, indexOffset: maskOffset) }
            context.fireChannelRead(wrapInboundOut(.payload(chunk)))
            let left = remaining - chunk.readableBytes
            if left == 0 {
                state = .header
                context.fireChannelRead(wrapInboundOut(.end))
            } else {
                state = .payload(remaining: left, maskKey: maskKey, maskOffset: maskOffset + chunk.readableBytes)
            }
            return .continue
        }
    }

    package mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        .needMoreData
    }

    /// The head once all of it is buffered (consuming it), else nil (consuming nothing).
    private func parseHead(_ buffer: inout ByteBuffer) throws -> FrameHead? {
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
        var maskKey: WebSocketMaskingKey?
        if masked {
            guard let bytes = buffer.readBytes(length: 4) else { return rewind(&buffer, to: start) }
            maskKey = WebSocketMaskingKey(bytes)
        }
        return FrameHead(
            fin: first & 0x80 != 0, rsv1: first & 0x40 != 0, rsv2: first & 0x20 != 0, rsv3: first & 0x10 != 0,
            opcode: WebSocketOpcode(encodedWebSocketOpcode: first & 0x0F)!, length: length, maskKey: maskKey
        )
    }

    private func rewind(_ buffer: inout ByteBuffer, to index: Int) -> FrameHead? {
        buffer.moveReaderIndex(to: index)
        return nil
    }
}
