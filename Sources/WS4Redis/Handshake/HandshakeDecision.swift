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

/// Which kind of websocket an accepted handshake opens.
public enum WebSocketEndpoint: Sendable, Equatable {
    /// A ws4redis facility: subscriptions and publishing per the flags.
    case facility(String)
    /// The plain echo endpoint used for conformance testing.
    case echo
}

/// A request that passed the protocol checks, waiting for its identity.
struct ValidUpgrade: Sendable {
    let request: HandshakeRequest
    let endpoint: WebSocketEndpoint
    /// Requested and allowed by the server's policy.
    let flags: ChannelFlags
    let deflate: DeflateParameters?
    let responseHeaders: [(name: String, value: String)]
}

/// Who a connection is and which flags it may use, as an identity source decided.
public struct Authorization: Sendable {
    public var identity: Identity
    public var allowedFlags: ChannelFlags

    public init(identity: Identity, allowedFlags: ChannelFlags = .all) {
        self.identity = identity
        self.allowedFlags = allowedFlags
    }
}

/// An accepted upgrade: the 101 headers to send and what the connection subscribes to.
public struct AcceptedHandshake: Sendable {
    public let endpoint: WebSocketEndpoint
    public let flags: ChannelFlags
    public let identity: Identity
    /// Present when permessage-deflate was negotiated.
    public let deflate: DeflateParameters?
    public let responseHeaders: [(name: String, value: String)]
    public let remoteAddress: String?
    /// Flags the client asked for that need an identity it lacks (missing_identity = drop).
    public var droppedFlags: ChannelFlags = []
    /// Its place in the count of its address's websockets (max_connections_per_ip), held as long as the connection.
    var addressSlot: AddressSlot? = nil
}

/// A refused upgrade: an HTTP error response.
public struct HandshakeRefusal: Sendable, Error {
    public let status: Int
    public let reason: String
    public let body: String
    public let headers: [(name: String, value: String)]

    public init(status: Int, body: String, headers: [(name: String, value: String)] = []) {
        self.status = status
        self.reason = HandshakeRefusal.reasonPhrase(status)
        self.body = body
        self.headers = headers
    }

    static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 101: "Switching Protocols"
        case 200: "OK"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 401: "Unauthorized"
        case 426: "Upgrade Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Error"
        }
    }
}
