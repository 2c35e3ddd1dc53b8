/// What the server answers to an upgrade request.
public enum HandshakeDecision: Sendable {
    case accepted(AcceptedHandshake)
    case refused(HandshakeRefusal)

    /// The HTTP status of the answer: 101 when accepted.
    public var status: Int {
        switch self {
        case .accepted: 101
        case .refused(let refusal): refusal.status
        }
    }
}
