import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Finds out who a handshake is, from the first identity source that applies: a signed token in
/// the request, a registered callback (on worker threads, with a deadline), an HTTP auth request
/// to the app; otherwise the connection is anonymous.
final class HandshakeAuthorizer: Sendable {
    private let configuration: IdentityConfiguration
    private let callback: AuthorizationCallback?
    private let workers: NIOThreadPool?
    private let authRequest: AuthRequestClient?
    /// Callbacks running or waiting for a worker thread.
    private let callbacksUnderWay = Atomic<Int>(0)

    init(configuration: IdentityConfiguration, callback: AuthorizationCallback?) {
        self.configuration = configuration
        self.callback = callback
        workers = callback.map { _ in NIOThreadPool(numberOfThreads: max(1, configuration.authorizerThreads)) }
        authRequest = configuration.authURL.map {
            AuthRequestClient(
                url: $0, timeoutMilliseconds: configuration.authTimeoutMilliseconds, cacheMilliseconds: configuration.authCacheMilliseconds,
                cacheSize: configuration.authCacheSize, maxConcurrent: configuration.authConcurrency
            )
        }
        workers?.start()
    }

    func shutdown() {
        try? workers?.syncShutdownGracefully()
        authRequest?.shutdown()
    }

    /// The authorization when no identity source has to be asked (the echo endpoint, a signed token,
    /// or no source configured); nil when the callback or the app must answer (`authorize`).
    func immediateAuthorization(_ upgrade: ValidUpgrade) -> Result<Authorization, HandshakeRefusal>? {
        guard case .facility = upgrade.endpoint else { return .success(Authorization(identity: .anonymous)) }
        if let secret = configuration.tokenSecret, let token = token(in: upgrade.request) {
            do {
                let maxLifetime = Int64(configuration.tokenMaxLifetimeSeconds)
                return .success(Authorization(identity: try SignedToken.verify(token, secret: secret, now: Self.now(), maxLifetime: maxLifetime)))
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

    /// Runs the callback on a worker thread, at most `authorizer_threads + authorizer_queue` handshakes
    /// at a time (then 503), and not at all for a handshake whose deadline passed while it waited.
    private func runCallback(
        _ callback: @escaping AuthorizationCallback, _ request: AuthorizationRequest, _ workers: NIOThreadPool, _ eventLoop: any EventLoop
    ) -> EventLoopFuture<Authorization> {
        let capacity = max(1, configuration.authorizerThreads) + configuration.authorizerQueue
        guard callbacksUnderWay.add(1, ordering: .relaxed).newValue <= capacity else {
            callbacksUnderWay.subtract(1, ordering: .relaxed)
            return eventLoop.makeFailedFuture(
                HandshakeRefusal(status: 503, body: "\(capacity) handshakes wait for the authorization callback already; try again later\n"))
        }
        let answer = eventLoop.makePromise(of: Authorization.self)
        let expired = ExpiryFlag()
        let timeout = TimeAmount.milliseconds(Int64(configuration.authorizerTimeoutMilliseconds))
        let deadline = eventLoop.scheduleTask(in: timeout) {
            expired.set()
            answer.fail(HandshakeRefusal(status: 504, body: "the authorization callback did not answer within \(timeout.nanoseconds / 1_000_000) ms\n"))
        }
        workers.runIfActive(eventLoop: eventLoop) { () throws -> Authorization? in
            expired.isSet ? nil : try callback(request)
        }.whenComplete { [self] result in
            callbacksUnderWay.subtract(1, ordering: .relaxed)
            deadline.cancel()
            answer.completeWith(Self.checked(result).mapError { $0 })
        }
        return answer.futureResult
    }

    /// A callback's answer as a handshake takes it: its errors as refusals, its identity checked.
    private static func checked(_ result: Result<Authorization?, any Error>) -> Result<Authorization, HandshakeRefusal> {
        switch result {
        case .success(let authorization?):
            if let unusable = authorization.identity.unusableNames {
                return .failure(HandshakeRefusal(status: 500, body: "the authorization callback answered an identity that cannot name channels: \(unusable)\n"))
            }
            return .success(authorization)
        case .success(nil):
            return .failure(HandshakeRefusal(status: 504, body: "the authorization callback was not run: its handshake had timed out\n"))
        case .failure(let error):
            return .failure(error as? HandshakeRefusal ?? HandshakeRefusal(status: 500, body: "authorization failed: \(error)\n"))
        }
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
