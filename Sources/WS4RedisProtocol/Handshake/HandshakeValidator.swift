/// Decides an upgrade request: RFC 6455 §4.2.1 strictly, then the server's own rules.
/// Pure: the same decision for the standalone listener and for a C host.
public struct HandshakeValidator: Sendable {
    package static let acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    public let urlPrefix: String
    public let echoPath: String?
    public let allowedFlags: ChannelFlags
    public let allowedOrigins: [String]
    public let compression: Bool
    public let maxHeaderSize: Int
    public let maxFacilityLength: Int
    public let missingIdentity: MissingIdentityPolicy

    public init(
        urlPrefix: String, echoPath: String?, allowedFlags: ChannelFlags = .all, allowedOrigins: [String] = [], compression: Bool = true,
        maxHeaderSize: Int = 16_384, maxFacilityLength: Int = 255, missingIdentity: MissingIdentityPolicy = .drop
    ) {
        self.urlPrefix = urlPrefix
        self.echoPath = echoPath
        self.allowedFlags = allowedFlags
        self.allowedOrigins = allowedOrigins
        self.compression = compression
        self.maxHeaderSize = maxHeaderSize
        self.maxFacilityLength = maxFacilityLength
        self.missingIdentity = missingIdentity
    }

    /// Whether a path belongs to a websocket endpoint of this server at all.
    public func isWebSocketPath(_ path: String) -> Bool {
        path == echoPath || path.hasPrefix(urlPrefix)
    }

    /// The first step: RFC 6455, the endpoint, the origin; the flags narrowed to the allowed ones.
    package func validate(_ request: HandshakeRequest) -> Result<ValidUpgrade, HandshakeRefusal> {
        do {
            let endpoint = try endpoint(for: request)
            let key = try validateUpgrade(request)
            try checkOrigin(request)
            let flags = ChannelFlags(query: request.query.map { Substring($0) }).intersection(allowedFlags)
            let deflate = compression ? DeflateNegotiation.negotiate(offers: request.headers(named: "sec-websocket-extensions")) : nil
            var headers = responseHeaders(key: key, request: request)
            if let deflate { headers.append(("Sec-WebSocket-Extensions", deflate.responseValue)) }
            return .success(ValidUpgrade(request: request, endpoint: endpoint, flags: flags, deflate: deflate, responseHeaders: headers))
        } catch let refusal as HandshakeRefusal {
            return .failure(refusal)
        } catch {
            return .failure(HandshakeRefusal(status: 400, body: "\(error)\n"))
        }
    }

    /// The last step, once the identity is known: flags narrowed by the authorization, identity
    /// flags without an identity dropped or refused, the connection limit.
    package func finish(_ upgrade: ValidUpgrade, authorization: Authorization, atCapacity: Bool) -> HandshakeDecision {
        var flags = upgrade.flags.intersection(authorization.allowedFlags)
        var dropped: ChannelFlags = []
        if case .facility = upgrade.endpoint {
            let lacking = Self.lackingIdentity(flags, identity: authorization.identity)
            if !lacking.isEmpty, missingIdentity == .refuse {
                return .refused(HandshakeRefusal(status: 403, body: "flags that need an identity, and this connection has none: \(lacking.names)\n"))
            }
            flags.subtract(lacking)
            dropped = lacking
        }
        if atCapacity { return .refused(HandshakeRefusal(status: 503, body: "the server is at its connection limit; try again later\n")) }
        return .accepted(
            AcceptedHandshake(
                endpoint: upgrade.endpoint, flags: flags, identity: authorization.identity, deflate: upgrade.deflate,
                responseHeaders: upgrade.responseHeaders,
                remoteAddress: upgrade.request.remoteAddress, droppedFlags: dropped
            )
        )
    }

    /// Both steps with a known identity (tests, and servers without identity sources).
    public func decide(_ request: HandshakeRequest, identity: Identity = .anonymous, atCapacity: Bool = false) -> HandshakeDecision {
        switch validate(request) {
        case .success(let upgrade): finish(upgrade, authorization: Authorization(identity: identity), atCapacity: atCapacity)
        case .failure(let refusal): .refused(refusal)
        }
    }

    /// `Sec-WebSocket-Accept` for a client key (RFC 6455 §4.2.2).
    public static func acceptValue(forKey key: String) -> String {
        var message = key + acceptGUID
        return message.withUTF8 { Base64.encode(SHA1.hash($0)) }
    }

    private func endpoint(for request: HandshakeRequest) throws -> WebSocketEndpoint {
        let path = request.path
        if path == echoPath { return .echo }
        guard path.hasPrefix(urlPrefix) else { throw HandshakeRefusal(status: 404, body: "no websocket endpoint at \(path.escapingControlCharacters())\n") }
        let facility = String(path.dropFirst(urlPrefix.count))
        try checkFacility(facility, isUTF8: request.pathIsUTF8)
        return .facility(facility)
    }

    /// A facility names Redis channels and keys and shows in logs: bounded, printable, UTF-8.
    private func checkFacility(_ facility: String, isUTF8: Bool) throws {
        guard isUTF8 else { throw HandshakeRefusal(status: 400, body: "the facility is not valid UTF-8\n") }
        guard facility.utf8.count <= maxFacilityLength else {
            throw HandshakeRefusal(status: 400, body: "the facility is \(facility.utf8.count) bytes long; at most \(maxFacilityLength) are allowed\n")
        }
        guard !facility.unicodeScalars.contains(where: \.isControlCharacter) else {
            throw HandshakeRefusal(status: 400, body: "the facility contains a control character\n")
        }
    }

    private func validateUpgrade(_ request: HandshakeRequest) throws -> String {
        let headerBytes = request.headers.reduce(request.path.utf8.count + (request.query?.utf8.count ?? 0)) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
        guard headerBytes <= maxHeaderSize else {
            throw HandshakeRefusal(status: 431, body: "the request's headers exceed \(maxHeaderSize) bytes\n")
        }
        guard request.method == "GET" else { throw HandshakeRefusal(status: 400, body: "websocket handshakes use GET, not \(request.method)\n") }
        guard request.httpVersion == "HTTP/1.1" else { throw HandshakeRefusal(status: 400, body: "websocket handshakes need HTTP/1.1\n") }
        guard request.header("host") != nil else { throw HandshakeRefusal(status: 400, body: "missing Host header\n") }
        guard request.headerLists("upgrade", token: "websocket") else {
            throw HandshakeRefusal(status: 400, body: "this is a websocket endpoint: the request must carry 'Upgrade: websocket'\n")
        }
        guard request.headerLists("connection", token: "upgrade") else { throw HandshakeRefusal(status: 400, body: "the request must carry 'Connection: Upgrade'\n") }
        guard request.header("sec-websocket-version")?.trimmingWhitespace() == "13" else {
            throw HandshakeRefusal(status: 426, body: "unsupported websocket version; this server speaks version 13\n", headers: [("Sec-WebSocket-Version", "13")])
        }
        // RFC 6455 §4.1: the key and the version must not appear more than once.
        guard request.headerCount(named: "sec-websocket-key") == 1, request.headerCount(named: "sec-websocket-version") == 1,
            let key = request.header("sec-websocket-key")?.trimmingWhitespace(), Base64.decodedLength(Substring(key)) == 16
        else {
            throw HandshakeRefusal(status: 400, body: "exactly one Sec-WebSocket-Key of 16 bytes in base64 is required\n")
        }
        return key
    }

    private func checkOrigin(_ request: HandshakeRequest) throws {
        guard !allowedOrigins.isEmpty else { return }
        let origin = request.header("origin") ?? ""
        guard allowedOrigins.contains(origin) else {
            throw HandshakeRefusal(status: 403, body: "origin '\(origin)' is not allowed to open websockets here\n")
        }
    }

    /// The flags among `flags` whose part of the identity is missing.
    package static func lackingIdentity(_ flags: ChannelFlags, identity: Identity) -> ChannelFlags {
        var lacking: ChannelFlags = []
        if identity.user == nil { lacking.formUnion([.subscribeUser, .publishUser]) }
        if identity.groups.isEmpty { lacking.formUnion([.subscribeGroup, .publishGroup]) }
        if identity.sessionKey == nil { lacking.formUnion([.subscribeSession, .publishSession]) }
        return flags.intersection(lacking)
    }

    private func responseHeaders(key: String, request: HandshakeRequest) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", Self.acceptValue(forKey: key)),
        ]
        if let offered = request.header("sec-websocket-protocol"), let first = offered.split(separator: ",").first {
            headers.append(("Sec-WebSocket-Protocol", String(first).trimmingWhitespace()))
        }
        return headers
    }
}
