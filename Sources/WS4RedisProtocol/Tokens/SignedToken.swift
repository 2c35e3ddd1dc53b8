/// Identity tokens an app mints with a shared secret and a browser presents in the websocket URL
/// or a cookie: `base64url(payload) "." base64url(HMAC-SHA256(secret, payload))`, where the payload
/// is `v1`, user, comma-joined groups, session key and expiry (Unix seconds), one per line.
/// `clients/python/ws4redis/token.py` mints the same bytes.
public enum SignedToken {
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    private static let version = "v1"
    /// A shorter HMAC key can be guessed offline from one token; 32 bytes is SHA-256's own size.
    public static let minimumSecretLength = 32

    public static func mint(_ identity: Identity, expiresAt: Int64, secret: [UInt8]) throws -> String {
        if let unusable = identity.unusableNames { throw WS4RedisError(.invalidArgument, "cannot mint a token for \(unusable)") }
        guard !identity.groups.contains(where: { $0.contains(",") }) else { throw WS4RedisError(.invalidArgument, "group names may not contain commas") }
        try checkSecret(secret)
        let payload = Array(
            [version, identity.user ?? "", identity.groups.joined(separator: ","), identity.sessionKey ?? "", String(expiresAt)]
                .joined(separator: "\n").utf8)
        return Base64.encodeURLSafe(payload) + "." + Base64.encodeURLSafe(SHA256.hmac(key: secret, message: payload))
    }

    /// Refuses a secret shorter than `minimumSecretLength` bytes.
    public static func checkSecret(_ secret: [UInt8]) throws {
        guard secret.count >= minimumSecretLength else {
            throw WS4RedisError(.invalidArgument, "the token secret has \(secret.count) bytes; at least \(minimumSecretLength) are needed")
        }
    }

    /// The identity a token names; `maxLifetime` (seconds, 0: any) refuses tokens valid for longer from now.
    public static func verify(_ token: String, secret: [UInt8], now: Int64, maxLifetime: Int64 = 0) throws -> Identity {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let payload = Base64.decodeURLSafe(parts[0]), let signature = Base64.decodeURLSafe(parts[1]) else {
            throw Invalid(description: "malformed identity token")
        }
        guard constantTimeEqual(signature, SHA256.hmac(key: secret, message: payload)) else {
            throw Invalid(description: "identity token signature does not match (tampered, or signed with another secret)")
        }
        let fields = String(decoding: payload, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard fields.count == 5, fields[0] == version, let expiry = Int64(fields[4]) else { throw Invalid(description: "malformed identity token") }
        guard expiry > now else { throw Invalid(description: "identity token expired at \(expiry) (now \(now))") }
        guard maxLifetime == 0 || expiry - now <= maxLifetime else {
            throw Invalid(description: "identity token is valid for \(expiry - now) s, longer than the \(maxLifetime) s this server accepts")
        }
        let identity = Identity(
            user: fields[1].isEmpty ? nil : fields[1],
            groups: fields[2].isEmpty ? [] : fields[2].split(separator: ",", omittingEmptySubsequences: false).map(String.init),
            sessionKey: fields[3].isEmpty ? nil : fields[3]
        )
        if let unusable = identity.unusableNames { throw Invalid(description: "identity token names \(unusable)") }
        return identity
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
