import NIOCore
import NIOWebSocket

/// Turns client frames into messages and control events (RFC 6455 §5): checks masking, reserved
/// bits and opcodes, reassembles fragments within the size limit and validates text as it arrives.
/// A pure state machine: the connection handler carries out what it returns.
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

    private enum State {
        case idle
        case assembling(opcode: WebSocketOpcode, buffer: ByteBuffer, validator: UTF8Validator)
    }

    private var state = State.idle
    let maxMessageSize: Int

    init(maxMessageSize: Int) {
        self.maxMessageSize = maxMessageSize
    }

    mutating func receive(_ frame: WebSocketFrame) -> Event {
        guard frame.maskKey != nil else { return .failure(.protocolError, "client frames must be masked") }
        guard frame.reservedBits.isEmpty else { return .failure(.protocolError, "reserved bits set without a negotiated extension") }
        switch frame.opcode {
        case .text, .binary: return startMessage(frame)
        case .continuation: return continueMessage(frame)
        case .ping: return frame.fin ? .ping(frame.unmaskedData) : .failure(.protocolError, "fragmented control frame")
        case .pong: return frame.fin ? .pong : .failure(.protocolError, "fragmented control frame")
        case .connectionClose: return frame.fin ? Self.closeEvent(payload: frame.unmaskedData) : .failure(.protocolError, "fragmented control frame")
        default: return .failure(.protocolError, "reserved opcode")
        }
    }

    private mutating func startMessage(_ frame: WebSocketFrame) -> Event {
        guard case .idle = state else { return .failure(.protocolError, "new message before the previous one ended") }
        guard frame.length <= maxMessageSize else { return .failure(.messageTooLarge, "message larger than \(maxMessageSize) bytes") }
        let payload = frame.unmaskedData
        var validator = UTF8Validator()
        if frame.opcode == .text, !payload.withUnsafeReadableBytes({ validator.consume($0) }) {
            return .failure(.dataInconsistentWithMessage, "text message is not valid UTF-8")
        }
        if frame.fin { return finish(opcode: frame.opcode, payload: payload, validator: validator) }
        state = .assembling(opcode: frame.opcode, buffer: payload, validator: validator)
        return .none
    }

    private mutating func continueMessage(_ frame: WebSocketFrame) -> Event {
        guard case .assembling(let opcode, var buffer, var validator) = state else {
            return .failure(.protocolError, "continuation frame without a message to continue")
        }
        guard buffer.readableBytes + frame.length <= maxMessageSize else { return .failure(.messageTooLarge, "message larger than \(maxMessageSize) bytes") }
        let payload = frame.unmaskedData
        if opcode == .text, !payload.withUnsafeReadableBytes({ validator.consume($0) }) {
            return .failure(.dataInconsistentWithMessage, "text message is not valid UTF-8")
        }
        state = .idle  // releases the stored buffer so that appending does not copy it
        buffer.writeImmutableBuffer(payload)
        if frame.fin { return finish(opcode: opcode, payload: buffer, validator: validator) }
        state = .assembling(opcode: opcode, buffer: buffer, validator: validator)
        return .none
    }

    private mutating func finish(opcode: WebSocketOpcode, payload: ByteBuffer, validator: UTF8Validator) -> Event {
        state = .idle
        if opcode == .text, !validator.isAtBoundary { return .failure(.dataInconsistentWithMessage, "text message ends inside a UTF-8 sequence") }
        return .message(opcode, payload)
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
