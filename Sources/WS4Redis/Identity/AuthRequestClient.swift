import NIOCore
import NIOHTTP1
import Synchronization

/// Asks the app about a handshake with an HTTP request (the pattern of nginx `auth_request` and
/// Nchan's `nchan_authorize_request`): the handshake's Cookie and Authorization headers and its URI
/// go to the configured URL; 2xx grants with `X-WS4Redis-*` headers, 401/403 deny.
final class AuthRequestClient: Sendable {
    private let timeout: TimeAmount
    private let cache: AuthCache?
    private let connections: AuthConnectionPool
    private let maxConcurrent: Int
    private let underWay = Atomic<Int>(0)

    init(url: HTTPURL, timeoutMilliseconds: Int, cacheMilliseconds: Int, cacheSize: Int, maxConcurrent: Int) {
        timeout = .milliseconds(Int64(timeoutMilliseconds))
        cache = cacheMilliseconds > 0 && cacheSize > 0 ? AuthCache(lifetime: .milliseconds(Int64(cacheMilliseconds)), capacity: cacheSize) : nil
        connections = AuthConnectionPool(url: url)
        self.maxConcurrent = maxConcurrent
    }

    func shutdown() {
        connections.close()
    }

    func authorize(_ request: HandshakeRequest, on eventLoop: any EventLoop) -> EventLoopFuture<Authorization> {
        let forwarded = forwardedHeaders(request)
        // Everything the app is told is what its answer may depend on, the client's address included.
        let key = forwarded.map { "\($0.name)=\($0.value)" }.joined(separator: "\n")
        if let granted = cache?.grant(for: key) { return eventLoop.makeSucceededFuture(granted) }
        guard underWay.add(1, ordering: .relaxed).newValue <= maxConcurrent else {
            underWay.subtract(1, ordering: .relaxed)
            return eventLoop.makeFailedFuture(
                HandshakeRefusal(status: 503, body: "\(maxConcurrent) auth requests to the app are under way, the most allowed; try again later\n"))
        }
        let asked = connections.ask(forwarded, on: eventLoop, deadline: .now() + timeout)
        asked.whenComplete { [self] _ in underWay.subtract(1, ordering: .relaxed) }
        return asked.flatMapResult { [self] answer in
            let result = Self.decision(answer)
            if case .success(let granted) = result { cache?.store(granted, for: key) }
            return result.mapError { $0 as any Error }
        }.flatMapErrorThrowing { [timeout] error in
            throw error as? HandshakeRefusal ?? Self.refusal(for: error, timeout: timeout)
        }
    }

    private func forwardedHeaders(_ request: HandshakeRequest) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = request.headers.filter { ["cookie", "authorization"].contains($0.name.lowercased()) }
        headers.append(("X-Original-URI", request.path + (request.query.map { "?" + $0 } ?? "")))
        headers.append(("X-Original-Method", request.method))
        if let remote = request.remoteAddress { headers.append(("X-Forwarded-For", remote)) }
        return headers
    }

    static func decision(_ head: HTTPResponseHead) -> Result<Authorization, HandshakeRefusal> {
        switch head.status.code {
        case 200..<300:
            let header = { (name: String) in head.headers.first(name: name).map { $0.trimmingWhitespace() }.flatMap { $0.isEmpty ? nil : $0 } }
            let identity = Identity(
                user: header("X-WS4Redis-User"),
                groups: header("X-WS4Redis-Groups")?.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty } ?? [],
                sessionKey: header("X-WS4Redis-Session")
            )
            if let unusable = identity.unusableNames {
                return .failure(HandshakeRefusal(status: 502, body: "the app's auth request answered an identity that cannot name channels: \(unusable)\n"))
            }
            guard let allow = header("X-WS4Redis-Allow") else { return .success(Authorization(identity: identity)) }
            guard let flags = try? ChannelFlags(list: allow) else {
                return .failure(HandshakeRefusal(status: 502, body: "the auth request answered an invalid X-WS4Redis-Allow: \(allow)\n"))
            }
            return .success(Authorization(identity: identity, allowedFlags: flags))
        case 401, 403:
            return .failure(HandshakeRefusal(status: Int(head.status.code), body: "denied by the app's auth request (\(head.status.code))\n"))
        default:
            return .failure(HandshakeRefusal(status: 502, body: "the app's auth request answered \(head.status.code)\n"))
        }
    }

    static func refusal(for error: any Error, timeout: TimeAmount) -> HandshakeRefusal {
        if error is AuthRequestTimeout {
            return HandshakeRefusal(status: 504, body: "the app's auth request did not answer within \(timeout.nanoseconds / 1_000_000) ms\n")
        }
        return HandshakeRefusal(status: 503, body: "the app's auth request failed: \(error)\n")
    }
}
