import NIOCore

/// Everything a server needs to know, with the defaults the C ABI's `ws4r_config_init` also reports.
public struct ServerConfiguration: Sendable {
    /// Off: a server starts without Redis, reports degraded and connects when Redis comes up.
    public var requireRedis = false
    /// Where Redis is; `redis://127.0.0.1:6379/0` as the original's `WS4REDIS_CONNECTION` default.
    public var redis: RedisEndpoint = .defaultEndpoint
    /// A quiet Redis connection is PINGed this often (milliseconds; 0: never), so that a peer gone
    /// without a word is noticed within about this plus `redisTimeoutMilliseconds`.
    public var redisPingIntervalMilliseconds: Int = 1000
    /// How long Redis may owe a reply before its connection counts as lost (0: no limit). A healthy
    /// Redis answers in well under a millisecond; 3 s rides out a slow command or a fork for a save.
    public var redisTimeoutMilliseconds: Int = 3000
    /// Unanswered command bytes on the command connection: room for some 30 of the largest
    /// publications (a 1 MiB message PUBLISHed and SET) while Redis is slow, memory bounded when it stalls.
    public var redisQueueBytes: Int = 64 << 20
    /// Prefix of channels and keys (`WS4REDIS_PREFIX`); none by default, as in the original.
    public var keyPrefix: String = ""
    /// The URL prefix of websocket endpoints (`WEBSOCKET_URL`).
    public var urlPrefix: String = "/ws/"
    /// The standalone listener; nil when a host adopts connections instead.
    public var listenAddress: HostAndPort? = nil
    /// Path of the plain echo endpoint for conformance tests; off unless set.
    public var echoPath: String? = nil
    /// ws4redis-host's `POST /publish` (the demo's publisher, unauthenticated): off unless asked for.
    public var publishEndpoint = false
    /// ws4redis-host's demo chat at `/`: off unless asked for.
    public var demoPage = false
    /// `GET /metrics` (the Prometheus figures).
    public var metrics = true
    /// A listener of its own for `/metrics` and `/healthz` (e.g. an internal address); nil: the main listener.
    public var metricsListenAddress: HostAndPort? = nil
    /// Event loops for websocket I/O; 0 means one per core.
    public var ioThreads: Int = 0
    /// Worker processes of `ws4redis serve` (a supervisor starts them; each is a whole server).
    public var processes: Int = 1
    /// Bind the standalone listener with SO_REUSEPORT (set for the workers of `processes`).
    public var reusePort = false
    /// The original drops clients sending more than 1 MiB; we refuse with 1009 instead.
    public var maxMessageSize: Int = 1 << 20
    /// One frame may carry a whole message.
    public var maxFrameSize: Int = 1 << 20
    /// 0 means unlimited; the fd limit of the process is the real bound then.
    public var maxConnections: Int = 0
    /// Websockets from one client address; 0 means unlimited (nginx's limit_conn may do it instead).
    public var maxConnectionsPerAddress: Int = 0
    /// A client's messages per second and bytes per second, each with a burst; a rate of 0 is off.
    /// Far above what a person typing or a page's own timers send, low enough to stop a flood.
    public var clientMessageRate: Int = 100
    public var clientMessageBurst: Int = 200
    public var clientByteRate: Int = 1 << 20
    public var clientByteBurst: Int = 8 << 20
    /// Enough for a few hundred typical messages queued towards one client.
    public var maxOutboundBytes: Int = 4 << 20
    /// Idle clients are pinged this often (milliseconds); proxies commonly cut idle streams at 60 s.
    public var pingIntervalMilliseconds: Int = 30_000
    /// permessage-deflate (RFC 7692) when the client offers it, as browsers do.
    public var compression = true
    /// Smaller messages go uncompressed: deflate's overhead outweighs the gain on short texts.
    public var compressionThreshold = 128
    /// ms a channel stays subscribed in Redis after its last local subscriber left; 0: not at all.
    public var subscriptionLingerMilliseconds = 0
    /// Request line and headers together; browsers send a few KiB, cookies included.
    public var maxHeaderSize = 16_384
    /// A connection must complete its HTTP request within this (slowloris); also the idle limit between requests.
    public var handshakeTimeoutMilliseconds: Int = 10_000
    /// What to do with a client whose outbound buffer is full.
    public var slowClientPolicy: SlowClientPolicy = .close
    /// How long client-published messages stay stored (`WS4REDIS_EXPIRE`); 0 does not store them.
    public var expireSeconds: Int = 3600
    /// The magic heartbeat string (`WS4REDIS_HEARTBEAT`); nil turns heartbeats off, as in the original.
    public var heartbeat: String? = nil
    /// Idleness after which the heartbeat is sent; the original sent it about every 4 s.
    public var heartbeatIntervalMilliseconds: Int = 4000
    /// The flags clients may use; others are dropped silently (`WS4REDIS_ALLOWED_CHANNELS`).
    public var allowedFlags: ChannelFlags = .all
    /// Accepted `Origin` values against cross-site websocket hijacking; empty accepts any.
    public var allowedOrigins: [String] = []
    /// Pages of the original open `?subscribe-broadcast&subscribe-user` for every visitor: by default
    /// an anonymous one gets the broadcast, as there.
    public var missingIdentity = MissingIdentityPolicy.drop
    /// Centrifugo's channel limit; facilities name Redis channels and keys.
    public var maxFacilityLength = 255
    /// Where identities come from.
    public var identity = IdentityConfiguration()
    public var logLevel = "info"
    public var logFormat = LogFormat.text
    /// Peers whose X-Forwarded-For / X-Real-IP name the client (for logs and identity sources).
    public var trustedProxies = TrustedProxies.none
    /// The text each setting was last given, by name (what `text(ofSetting:)` reports).
    private var settingTexts: [String: String] = [:]

    public init() {}

    /// Applies named settings in order (later ones win), as the CLI, config files and the C ABI give them.
    public init(settings: [(name: String, value: String)]) throws {
        self.init()
        try apply(settings)
    }

    /// Applies named settings on top of this configuration.
    public mutating func apply(_ settings: [(name: String, value: String)]) throws {
        for (name, value) in settings {
            guard let setting = Setting.named(name) else { throw WS4RedisError.configuration("unknown setting '\(name)'") }
            try setting.apply(&self, value)
            settingTexts[setting.name] = value
        }
    }

    /// A setting's text as it applies here: the last value given, else its default; nil for an unknown name.
    public func text(ofSetting name: String) -> String? {
        guard let setting = Setting.named(name) else { return nil }
        return settingTexts[setting.name] ?? setting.defaultValue
    }

    /// Checks the values that have no safe interpretation.
    public func validated() throws -> ServerConfiguration {
        guard urlPrefix.hasPrefix("/") else { throw WS4RedisError.configuration("url prefix must start with '/': \(urlPrefix)") }
        if let echoPath, !echoPath.hasPrefix("/") { throw WS4RedisError.configuration("echo path must start with '/': \(echoPath)") }
        guard metrics || metricsListenAddress == nil else { throw WS4RedisError.configuration("metrics_listen needs metrics on") }
        guard ioThreads >= 0, ioThreads <= 1024 else { throw WS4RedisError.configuration("io threads out of range: \(ioThreads)") }
        guard maxMessageSize > 0, maxFrameSize > 0 else { throw WS4RedisError.configuration("message and frame limits must be positive") }
        guard maxOutboundBytes > 0 else { throw WS4RedisError.configuration("max outbound bytes must be positive") }
        guard redisQueueBytes > 0 else { throw WS4RedisError.configuration("redis_queue_bytes must be positive") }
        guard maxConnections >= 0, pingIntervalMilliseconds >= 0 else { throw WS4RedisError.configuration("limits must not be negative") }
        if let secret = identity.tokenSecret, secret.count < SignedToken.minimumSecretLength {
            throw WS4RedisError.configuration("token_secret has \(secret.count) bytes; at least \(SignedToken.minimumSecretLength) are needed")
        }
        guard maxFacilityLength > 0 else { throw WS4RedisError.configuration("max_facility_length must be positive") }
        guard clientMessageRate == 0 || clientMessageBurst > 0 else { throw WS4RedisError.configuration("client_message_burst must be positive") }
        // A zero interval would make the heartbeat timer spin.
        guard heartbeat == nil || heartbeatIntervalMilliseconds > 0 else { throw WS4RedisError.configuration("heartbeat_interval must be positive") }
        return self
    }

    var effectiveIOThreads: Int { ioThreads > 0 ? ioThreads : System.coreCount }
}
