/// The close handshake and liveness of one websocket (RFC 6455 §7), without I/O: each event
/// returns what the handler must do.
package struct ConnectionStateMachine {
    package enum State: Equatable {
        case open
        /// We sent a close frame and wait for the client's.
        case closing
        case closed
    }

    package enum CloseAction: Equatable {
        /// Send a close frame with this code, then close the socket.
        case replyAndClose(CloseCode)
        /// The handshake is complete: close the socket.
        case closeSocket
        case ignore
    }

    package enum LivenessAction: Equatable {
        case sendPing
        /// The client did not answer the last ping: it is gone.
        case closeDead
        case none
    }

    package private(set) var state = State.open
    private var awaitingPong = false
    private var sawTrafficSinceTick = true

    package init() {}

    package var canSendData: Bool { state == .open }

    package mutating func receivedClose(_ code: CloseCode?) -> CloseAction {
        switch state {
        case .open:
            state = .closed
            return .replyAndClose(code ?? .normalClosure)
        case .closing:
            state = .closed
            return .closeSocket
        case .closed:
            return .ignore
        }
    }

    /// Whether a close frame should be sent now (only once, only while open).
    package mutating func startClosing() -> Bool {
        guard state == .open else { return false }
        state = .closing
        return true
    }

    /// A protocol failure: send a close frame if we still may, and close the socket either way.
    package mutating func fail() -> Bool {
        defer { state = .closed }
        return state == .open
    }

    package mutating func receivedTraffic() {
        sawTrafficSinceTick = true
        awaitingPong = false
    }

    /// Called every ping interval: ping a quiet client, give up on one that ignored the last ping.
    package mutating func livenessTick() -> LivenessAction {
        guard state == .open else { return .none }
        if awaitingPong { return .closeDead }
        guard !sawTrafficSinceTick else {
            sawTrafficSinceTick = false
            return .none
        }
        awaitingPong = true
        return .sendPing
    }
}
