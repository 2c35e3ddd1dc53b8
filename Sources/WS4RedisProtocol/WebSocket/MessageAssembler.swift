import NIOCore

/// Turns client frame parts into messages and control events (RFC 6455 §5, RFC 7692): checks
/// masking, reserved bits and opcodes, reassembles fragments within the size limit, inflates
/// compressed messages and validates text as each chunk arrives, so that invalid text fails at the
/// first bad byte. A state machine: the handler carries out what it returns.
package struct MessageAssembler {
    package enum Event: Equatable {
        case message(Opcode, ByteBuffer)
        case ping(ByteBuffer)
        case pong
        case close(CloseCode?)
        /// A protocol violation: close the connection with this code.
        case failure(CloseCode, String)
        /// A part was absorbed; nothing to do yet.
        case none
    }

    /// The data message being assembled across frames.
    private struct Partial {
        let opcode: Opcode
        let compressed: Bool
        var buffer = ByteBuffer()
        var validator = UTF8Validator()
    }

    /// The frame being received.
    private enum Frame {
        case control(FrameHead, payload: ByteBuffer)
        case data(fin: Bool)
    }

    private var partial: Partial?
    private var frame: Frame?
    private var failed = false
    package let maxMessageSize: Int
    /// The inflater's type when permessage-deflate was negotiated, else nil.
    private let inflaterType: (any MessageInflating.Type)?
    /// Created with the first compressed message: zlib's state costs kilobytes, most clients never compress.
    private var inflater: (any MessageInflating)?

    package init(maxMessageSize: Int, inflater: (any MessageInflating.Type)? = nil) {
        self.maxMessageSize = maxMessageSize
        inflaterType = inflater
    }

    /// Between messages, not failed, and without an inflater's window to keep (context takeover):
    /// a new assembler would go on the same.
    package var isAtRest: Bool { partial == nil && frame == nil && inflater == nil && !failed }

    package mutating func receive(_ part: FramePart) -> Event {
        guard !failed else { return .none }
        let event: Event
        switch part {
        case .head(let head): event = begin(head)
        case .payload(let chunk): event = absorb(chunk)
        case .end: event = end()
        }
        if case .failure = event { failed = true }
        return event
    }

    private mutating func begin(_ head: FrameHead) -> Event {
        guard head.maskKey != nil else { return .failure(.protocolError, "client frames must be masked") }
        guard !head.rsv2, !head.rsv3 else { return .failure(.protocolError, "reserved bits set without a negotiated extension") }
        let startsMessage = head.opcode == .text || head.opcode == .binary
        guard !head.rsv1 || (startsMessage && inflaterType != nil) else {
            return .failure(.protocolError, "RSV1 set without permessage-deflate, or on a continuation or control frame")
        }
        switch head.opcode {
        case .ping, .pong, .connectionClose:
            guard head.fin else { return .failure(.protocolError, "fragmented control frame") }
            guard head.length <= 125 else { return .failure(.protocolError, "control frame longer than 125 bytes") }
            frame = .control(head, payload: ByteBuffer())
        case .text, .binary:
            guard partial == nil else { return .failure(.protocolError, "new message before the previous one ended") }
            partial = Partial(opcode: head.opcode, compressed: head.rsv1)
            frame = .data(fin: head.fin)
            return checkSize(adding: head)
        case .continuation:
            guard partial != nil else { return .failure(.protocolError, "continuation frame without a message to continue") }
            frame = .data(fin: head.fin)
            return checkSize(adding: head)
        default:
            return .failure(.protocolError, "reserved opcode")
        }
        return .none
    }

    /// Uncompressed sizes are known from the head; compressed ones are checked as they inflate.
    private func checkSize(adding head: FrameHead) -> Event {
        guard let partial, !partial.compressed, partial.buffer.readableBytes + head.length > maxMessageSize else { return .none }
        return .failure(.messageTooLarge, "message larger than \(maxMessageSize) bytes")
    }

    private mutating func absorb(_ chunk: ByteBuffer) -> Event {
        switch frame {
        case .control(let head, var payload):
            frame = nil  // releases the stored buffer so that appending does not copy it
            payload.writeImmutableBuffer(chunk)
            frame = .control(head, payload: payload)
            return .none
        case .data:
            return append(chunk, final: false)
        case nil:
            return .none
        }
    }

    private mutating func end() -> Event {
        defer { frame = nil }
        switch frame {
        case .control(let head, let payload):
            switch head.opcode {
            case .ping: return .ping(payload)
            case .pong: return .pong
            default: return Self.closeEvent(payload: payload)
            }
        case .data(let fin):
            guard fin else { return .none }
            if partial?.compressed == true, case .failure(let code, let reason) = append(ByteBuffer(), final: true) { return .failure(code, reason) }
            guard let message = partial else { return .none }
            partial = nil
            guard message.opcode != .text || message.validator.isAtBoundary else {
                return .failure(.dataInconsistentWithMessage, "text message ends inside a UTF-8 sequence")
            }
            return .message(message.opcode, message.buffer)
        case nil:
            return .none
        }
    }

    /// Adds payload (inflated when compressed) to the message, validating the new text bytes.
    private mutating func append(_ chunk: ByteBuffer, final: Bool) -> Event {
        guard var message = partial else { return .none }
        partial = nil  // releases the stored buffer so that appending does not copy it
        defer { partial = message }
        var start = message.buffer.writerIndex
        do {
            if message.compressed {
                if inflater == nil { inflater = inflaterType?.init() }
                try inflater?.inflate(chunk, final: final, into: &message.buffer, limit: maxMessageSize)
            } else if message.buffer.readableBytes == 0 {
                message.buffer = chunk  // the common single-chunk message: no copy
                start = message.buffer.readerIndex
            } else {
                message.buffer.writeImmutableBuffer(chunk)
            }
        } catch is InflatedMessageTooLarge {
            return .failure(.messageTooLarge, "message larger than \(maxMessageSize) bytes")
        } catch {
            return .failure(.dataInconsistentWithMessage, "\(error)")
        }
        guard message.opcode == .text else { return .none }
        let added = message.buffer.getSlice(at: start, length: message.buffer.writerIndex - start) ?? ByteBuffer()
        guard added.withUnsafeReadableBytes({ message.validator.consume($0) }) else {
            return .failure(.dataInconsistentWithMessage, "text message is not valid UTF-8")
        }
        return .none
    }

    /// RFC 6455 §5.5.1 and §7.4: an optional valid code (IANA's registry: 1012-1014 too), then an optional UTF-8 reason.
    package static func closeEvent(payload: ByteBuffer) -> Event {
        var payload = payload
        guard payload.readableBytes != 1 else { return .failure(.protocolError, "close frame with a 1-byte payload") }
        guard let raw = payload.readInteger(as: UInt16.self) else { return .close(nil) }
        guard isValidCloseCode(raw) else { return .failure(.protocolError, "invalid close code \(raw)") }
        guard UTF8Validator.isValid(payload) else { return .failure(.dataInconsistentWithMessage, "close reason is not valid UTF-8") }
        return .close(CloseCode(raw))
    }

    private static func isValidCloseCode(_ code: UInt16) -> Bool {
        switch code {
        case 1000...1003, 1007...1014, 3000...4999: true
        default: false
        }
    }
}
