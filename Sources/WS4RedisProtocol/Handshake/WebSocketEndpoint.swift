/// Which kind of websocket an accepted handshake opens.
public enum WebSocketEndpoint: Sendable, Equatable {
    /// A ws4redis facility: subscriptions and publishing per the flags.
    case facility(String)
    /// The plain echo endpoint used for conformance testing.
    case echo
}
