#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

/// Finds out who a handshake is, from the first identity source that applies: a signed token in
/// the request, a registered callback (on worker threads, with a deadline), an HTTP auth request
/// to the app; otherwise the connection is anonymous.
final class HandshakeAuthorizer: Sendable {
    private let configuration: IdentityConfiguration
    private let callback: AuthorizationCallback?
    private let workers: NIOThreadPool?
    private let authRequest: AuthRequestClient?

    init(configuration: IdentityConfiguration, callback: AuthorizationCallback?) {
        self.configuration = configuration
        self.callback = callback
        workers = callback.map { _ in NIOThreadPool(numberOfThreads: max(1, configuration.authorizerThreads)) }
        authRequest = configuration.authURL.map {
            AuthRequestClient(url: $0, timeoutMilliseconds: configuration.authTimeoutMilliseconds, cacheMilliseconds: configuration.authCacheMilliseconds)
        }
        workers?.start()
    }

    func shutdown() {
        try? workers?.syncShutdownGracefully()
    }

    /// The authorization when no identity source has to be asked (the echo endpoint, a signed token,
    /// or no source configured); nil when the callback or the app must answer (`authorize`).
    func immediateAuthorization(_ upgrade: ValidUpgrade) -> Result<Authorization, HandshakeRefusal>? {
        guard case .facility = upgrade.endpoint else { return .success(Authorization(identity: .anonymous)) }
        if let secret = configuration.tokenSecret, let token = token(in: upgrade.request) {
            do {
                return .success(Authorization(identity: try SignedToken.verify(token, secret: secret, now: Self.now())))
            } catch let invalid as SignedToken.Invalid {
                return .failure(HandshakeRefusal(status: 403, body: "\(invalid.description)\n"))
            } catch {
                return .failure(HandshakeRefusal(status: 500, body: "authorization failed: \(error)\n"))
            }
        }
        return callback == nil && authRequest == nil ? .success(Authorization(identity: .anonymous)) : nil
    }

    /// Asks the identity source that applies; completes on `eventLoop`.
    func authorize(_ upgrade: ValidUpgrade, on eventLoop: any EventLoop) -> EventLoopFuture<Authorization> {
        if let immediate = immediateAuthorization(upgrade) { return eventLoop.makeCompletedFuture(immediate.mapError { $0 }) }
        guard case .facility(let facility) = upgrade.endpoint else { preconditionFailure("the echo endpoint is authorized at once") }
        if let callback, let workers {
            return runCallback(callback, AuthorizationRequest(upgrade.request, facility: facility, requestedFlags: upgrade.flags), workers, eventLoop)
        }
        return authRequest!.authorize(upgrade.request, on: eventLoop)
    }

    private func runCallback(
        _ callback: @escaping AuthorizationCallback, _ request: AuthorizationRequest, _ workers: NIOThreadPool, _ eventLoop: any EventLoop
    ) -> EventLoopFuture<Authorization> {
        let answer = eventLoop.makePromise(of: Authorization.self)
        let timeout = TimeAmount.milliseconds(Int64(configuration.authorizerTimeoutMilliseconds))
        let deadline = eventLoop.scheduleTask(in: timeout) {
            answer.fail(HandshakeRefusal(status: 504, body: "the authorization callback did not answer within \(timeout.nanoseconds / 1_000_000) ms\n"))
        }
        workers.runIfActive(eventLoop: eventLoop) { try callback(request) }.whenComplete { result in
            deadline.cancel()
            answer.completeWith(result.mapError { $0 as? HandshakeRefusal ?? HandshakeRefusal(status: 500, body: "authorization failed: \($0)\n") })
        }
        return answer.futureResult
    }

    /// The token from the query parameter or, failing that, the cookie.
    private func token(in request: HandshakeRequest) -> String? {
        let fromQuery = request.query?.split(separator: "&").lazy.compactMap { parameter -> String? in
            let parts = parameter.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, String(parts[0]).removingPercentEncoding(plusAsSpace: true) == self.configuration.tokenParameter else { return nil }
            return String(parts[1]).removingPercentEncoding(plusAsSpace: true)
        }.first
        return fromQuery ?? AuthorizationRequest.cookies(in: request).first { $0.name == configuration.tokenCookie }?.value
    }

    /// Tokens carry Unix times.
    static func now() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec)
    }
}
