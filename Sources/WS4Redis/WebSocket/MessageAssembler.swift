import NIOCore
import NIOWebSocket

/// Turns client frames into messages and control events (RFC 6455 §5, RFC 7692): checks masking,
/// reserved bits and opcodes, reassembles fragments within the size limit, inflates compressed
/// messages and validates text as it arrives. A state machine: the handler carries out what it returns.
struct MessageAssembler {
    enum Event: Equatable {
        case message(WebSocketOpcode, ByteBuffer)
        case ping(ByteBuffer)
        case pong
        case close(WebSocketErrorCode?)
        /// A protocol violation: close the connection with this code.
        case failure(WebSocketErrorCode, String)
        /// A fragment was absorbed; nothing to do yet.
        case none
    }

    private struct Partial {
        let opcode: WebSocketOpcode
        let compressed: Bool
        var buffer: ByteBuffer
        var validator = UTF8Validator()
    }

    private enum State {
        case idle
        case assembling(Partial)
    }

    private var state = State.idle
    let maxMessageSize: Int
    /// Whether permessage-deflate was negotiated.
    private let inflates: Bool
    /// Created with the first compressed message: zlib's state costs kilobytes, most clients never compress.
    private var inflater: MessageInflater?

    init(maxMessageSize: Int, inflates: Bool = false) {
        self.maxMessageSize = maxMessageSize
        self.inflates = inflates
    }

    mutating func receive(_ frame: WebSocketFrame) -> Event {
        guard frame.maskKey != nil else { return .failure(.protocolError, "client frames must be masked") }
        guard frame.rsv2 == false, frame.rsv3 == false else { return .failure(.protocolError, "reserved bits set without a negotiated extension") }
        let compressedStart = frame.rsv1 && (frame.opcode == .text || frame.opcode == .binary)
        guard !frame.rsv1 || (compressedStart && inflates) else {
            return .failure(.protocolError, "RSV1 set without permessage-deflate, or on a continuation or control frame")
        }
        switch frame.opcode {
        case .text, .binary: return startMessage(frame, compressed: compressedStart)
        case .continuation: return continueMessage(frame)
        case .ping: return frame.fin ? .ping(frame.unmaskedData) : .failure(.protocolError, "fragmented control frame")
        case .pong: return frame.fin ? .pong : .failure(.protocolError, "fragmented control frame")
        case .connectionClose: return frame.fin ? Self.closeEvent(payload: frame.unmaskedData) : .failure(.protocolError, "fragmented control frame")
        default: return .failure(.protocolError, "reserved opcode")
        }
    }

    private mutating func startMessage(_ frame: WebSocketFrame, compressed: Bool) -> Event {
        guard case .idle = state else { return .failure(.protocolError, "new message before the previous one ended") }
        var partial = Partial(opcode: frame.opcode, compressed: compressed, buffer: ByteBuffer())
        return absorb(frame, into: &partial)
    }

    private mutating func continueMessage(_ frame: WebSocketFrame) -> Event {
        guard case .assembling(var partial) = state else { return .failure(.protocolError, "continuation frame without a message to continue") }
        state = .idle  // releases the stored buffer so that appending does not copy it
        return absorb(frame, into: &partial)
    }

    /// Adds a fragment's payload (inflated when compressed), validating text as it grows.
    private mutating func absorb(_ frame: WebSocketFrame, into partial: inout Partial) -> Event {
        var start = partial.buffer.writerIndex
        do {
            if partial.compressed {
                if inflater == nil { inflater = MessageInflater() }
                try inflater!.inflate(frame.unmaskedData, final: frame.fin, into: &partial.buffer, limit: maxMessageSize)
            } else {
                guard partial.buffer.readableBytes + frame.length <= maxMessageSize else { throw RawDeflate.TooLarge() }
                if partial.buffer.readableBytes == 0 {
                    partial.buffer = frame.unmaskedData  // the common single-frame message: no copy
                    start = partial.buffer.readerIndex
                } else {
                    partial.buffer.writeImmutableBuffer(frame.unmaskedData)
                }
            }
        } catch is RawDeflate.TooLarge {
            return .failure(.messageTooLarge, "message larger than \(maxMessageSize) bytes")
        } catch {
            return .failure(.dataInconsistentWithMessage, "\(error)")
        }
        if partial.opcode == .text {
            let added = partial.buffer.getSlice(at: start, length: partial.buffer.writerIndex - start) ?? ByteBuffer()
            guard added.withUnsafeReadableBytes({ partial.validator.consume($0) }) else {
                return .failure(.dataInconsistentWithMessage, "text message is not valid UTF-8")
            }
        }
        guard frame.fin else {
            state = .assembling(partial)
            return .none
        }
        if partial.opcode == .text, !partial.validator.isAtBoundary { return .failure(.dataInconsistentWithMessage, "text message ends inside a UTF-8 sequence") }
        return .message(partial.opcode, partial.buffer)
    }

    /// RFC 6455 §5.5.1 and §7.4: an optional valid code, then an optional UTF-8 reason.
    static func closeEvent(payload: ByteBuffer) -> Event {
        var payload = payload
        guard payload.readableBytes != 1 else { return .failure(.protocolError, "close frame with a 1-byte payload") }
        guard let raw = payload.readInteger(as: UInt16.self) else { return .close(nil) }
        guard isValidCloseCode(raw) else { return .failure(.protocolError, "invalid close code \(raw)") }
        guard UTF8Validator.isValid(payload) else { return .failure(.dataInconsistentWithMessage, "close reason is not valid UTF-8") }
        return .close(WebSocketErrorCode(codeNumber: Int(raw)))
    }

    private static func isValidCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1011, 3000...4999: true
        default: false
        }
    }
}
