/// Where a connection's identity comes from: a signed token, a registered authorization callback,
/// or an HTTP auth request to the app, tried in that order.
public struct IdentityConfiguration: Sendable {
    /// Tokens are accepted only when a secret is set.
    public var tokenSecret: [UInt8]? = nil
    public var tokenParameter = "ws4redis-token"
    public var tokenCookie = "ws4redis_token"
    /// 0: a token is good until its expiry, however far away.
    public var tokenMaxLifetimeSeconds = 0
    /// The app's endpoint asked about each handshake (the nginx auth_request pattern).
    public var authURL: HTTPURL? = nil
    public var authTimeoutMilliseconds = 5000
    /// 0: every handshake asks the app.
    public var authCacheMilliseconds = 0
    /// Granted answers kept at most (a cache must not grow with every cookie a client invents).
    public var authCacheSize = 10_000
    /// Auth requests under way at once: a slow app must not pile up connections without bound.
    public var authConcurrency = 64
    /// A callback may hit a database; it gets its own threads and a deadline.
    public var authorizerTimeoutMilliseconds = 5000
    public var authorizerThreads = 4
    /// Handshakes waiting for a callback thread beyond those the threads run.
    public var authorizerQueue = 256

    public init() {}
}
