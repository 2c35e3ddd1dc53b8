/// Identity tokens an app mints with a shared secret and a browser presents in the websocket URL
/// or a cookie: `base64url(payload) "." base64url(HMAC-SHA256(secret, payload))`, where the payload
/// is `v1`, user, comma-joined groups, session key and expiry (Unix seconds), one per line.
/// `clients/python/ws4redis/token.py` mints the same bytes.
public enum SignedToken {
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let description: String
    }

    private static let version = "v1"

    public static func mint(_ identity: Identity, expiresAt: Int64, secret: [UInt8]) throws -> String {
        let names = [identity.user ?? "", identity.sessionKey ?? ""] + identity.groups
        guard !names.contains(where: { $0.contains("\n") }), !identity.groups.contains(where: { $0.contains(",") || $0.isEmpty }) else {
            throw WS4RedisError(.invalidArgument, "token names may not contain newlines, group names no commas")
        }
        guard !secret.isEmpty else { throw WS4RedisError(.invalidArgument, "the token secret is empty") }
        let payload = Array(
            [version, identity.user ?? "", identity.groups.joined(separator: ","), identity.sessionKey ?? "", String(expiresAt)]
                .joined(separator: "\n").utf8)
        return Base64.encodeURLSafe(payload) + "." + Base64.encodeURLSafe(SHA256.hmac(key: secret, message: payload))
    }

    public static func verify(_ token: String, secret: [UInt8], now: Int64) throws -> Identity {
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
        return Identity(
            user: fields[1].isEmpty ? nil : fields[1],
            groups: fields[2].split(separator: ",").map(String.init),
            sessionKey: fields[3].isEmpty ? nil : fields[3]
        )
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
