/// The one definition of every setting: its name (`--name` on command lines, `name = value` in
/// config files, `WS4REDIS_NAME` in the environment), default, meaning, and how it applies to a
/// `ServerConfiguration`. The CLI, the C host, the C ABI and docs/configuration.md all come from here.
public struct Setting: Sendable {
    public let name: String
    public let defaultValue: String
    public let help: String
    /// The setting of the original django-websocket-redis this one replaces, if any.
    public let original: String?
    let apply: @Sendable (inout ServerConfiguration, String) throws -> Void

    public var flag: String { "--" + name.replacingUnderscores(with: "-") }
    public var environmentVariable: String { "WS4REDIS_" + name.uppercased() }
}

extension Setting {
    public static let all: [Setting] = [
        Setting(
            name: "redis_url", defaultValue: "redis://127.0.0.1:6379/0", help: "Redis: redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N&password=P]",
            original: "WS4REDIS_CONNECTION"
        ) { $0.redis = try RedisEndpoint(url: $1) },
        Setting(
            name: "require_redis", defaultValue: "off", help: "on: fail at start when Redis cannot be reached; off: start degraded and reconnect",
            original: nil
        ) {
            guard $1 == "on" || $1 == "off" else { throw WS4RedisError.configuration("require_redis is on or off, got '\($1)'") }
            $0.requireRedis = $1 == "on"
        },
        .integer("redis_ping_interval", 1000, "ms of silence after which a Redis connection (commands or pub/sub) is sent a PING; 0: no pings") {
            $0.redisPingIntervalMilliseconds = $1
        },
        .integer(
            "redis_timeout", 3000,
            "ms Redis may leave a connect, the login, a command or a PING unanswered before the connection counts as lost (/healthz degraded, commands fail, reconnect and resubscribe); also shortens TCP keepalive; 0: off"
        ) {
            $0.redisTimeoutMilliseconds = $1
        },
        .integer("redis_queue_bytes", 64 << 20, "bytes of commands (client publications, stored-message GETs) Redis may leave unanswered; a send beyond fails at once") {
            $0.redisQueueBytes = $1
        },
        Setting(name: "prefix", defaultValue: "", help: "prefix of every Redis channel and key, joined with ':'", original: "WS4REDIS_PREFIX") { $0.keyPrefix = $1 },
        Setting(name: "url_prefix", defaultValue: "/ws/", help: "URL prefix of websocket endpoints", original: "WEBSOCKET_URL") { $0.urlPrefix = $1 },
        Setting(name: "listen", defaultValue: "", help: "standalone listener host:port (hosts listen themselves)", original: nil) {
            $0.listenAddress = $1.isEmpty ? nil : try HostAndPort(parsing: $1)
        },
        Setting(name: "echo_path", defaultValue: "", help: "path of a plain echo endpoint for conformance tests; off when empty", original: nil) {
            $0.echoPath = $1.isEmpty ? nil : $1
        },
        Setting(
            name: "publish_endpoint", defaultValue: "off",
            help: "ws4redis-host: on serves POST /publish?facility=F, the demo's unauthenticated publisher, to same-origin requests only; off: 404",
            original: nil
        ) {
            guard $1 == "on" || $1 == "off" else { throw WS4RedisError.configuration("publish_endpoint is on or off, got '\($1)'") }
            $0.publishEndpoint = $1 == "on"
        },
        Setting(name: "demo_page", defaultValue: "off", help: "ws4redis-host: on serves the demo chat at /; off: 404", original: nil) {
            guard $1 == "on" || $1 == "off" else { throw WS4RedisError.configuration("demo_page is on or off, got '\($1)'") }
            $0.demoPage = $1 == "on"
        },
        Setting(name: "metrics", defaultValue: "on", help: "on: GET /metrics serves the Prometheus figures; off: 404", original: nil) {
            guard $1 == "on" || $1 == "off" else { throw WS4RedisError.configuration("metrics is on or off, got '\($1)'") }
            $0.metrics = $1 == "on"
        },
        Setting(
            name: "metrics_listen", defaultValue: "",
            help: "host:port of a listener of its own for /metrics and /healthz (then /metrics leaves the main listener); empty: the main listener",
            original: nil
        ) {
            $0.metricsListenAddress = $1.isEmpty ? nil : try HostAndPort(parsing: $1)
        },
        .integer("threads", 0, "event-loop threads; 0: one per core") { $0.ioThreads = $1 },
        .integer("processes", 1, "ws4redis serve: worker processes sharing the port (SO_REUSEPORT), restarted when they die; each has its own Redis connection") {
            $0.processes = max($1, 1)
        },
        Setting(
            name: "reuse_port", defaultValue: "off",
            help: "on: other processes may join the standalone listener's port (SO_REUSEPORT); off: a port another server listens on is refused", original: nil
        ) {
            guard $1 == "on" || $1 == "off" else { throw WS4RedisError.configuration("reuse_port is on or off, got '\($1)'") }
            $0.reusePort = $1 == "on"
        },
        .integer(
            "max_message_size", 1 << 20,
            "largest client message in bytes; larger ones close with 1009 (the original's limit); also the largest POST /publish body of ws4redis-host (413)"
        ) { $0.maxMessageSize = $1 },
        .integer(
            "subscription_linger", 0,
            "ms a channel stays subscribed in Redis after its last local subscriber left, so that a page reload pays no UNSUBSCRIBE and SUBSCRIBE; meanwhile PUBLISH counts this server as a receiver; 0: unsubscribe at once (the original's behaviour)"
        ) {
            $0.subscriptionLingerMilliseconds = $1
        },
        .integer(
            "client_message_rate", 100,
            "messages per second a client may send (data and pings), on average; past it and its burst the socket closes with 1008; 0: unlimited"
        ) {
            $0.clientMessageRate = $1
        },
        .integer("client_message_burst", 200, "messages a client may send at once beyond client_message_rate") { $0.clientMessageBurst = $1 },
        .integer(
            "client_byte_rate", 1 << 20, "bytes per second a client may send in messages, on average; past it and its burst the socket closes with 1008; 0: unlimited"
        ) {
            $0.clientByteRate = $1
        },
        .integer("client_byte_burst", 8 << 20, "bytes a client may send at once beyond client_byte_rate; raised to max_message_size when smaller") {
            $0.clientByteBurst = $1
        },
        .integer("max_frame_size", 1 << 20, "largest client frame in bytes, checked when its header arrives") { $0.maxFrameSize = $1 },
        .integer("max_header_size", 16_384, "bytes of request line and headers a handshake may have; more gets 431") { $0.maxHeaderSize = $1 },
        .integer("max_connections", 0, "most concurrent websockets, further handshakes get 503; 0: unlimited") { $0.maxConnections = $1 },
        .integer("max_connections_per_ip", 0, "most concurrent websockets from one client address (as trusted_proxies tell it), further handshakes get 429; 0: unlimited")
        {
            $0.maxConnectionsPerAddress = $1
        },
        .integer("max_outbound_bytes", 4 << 20, "bytes queued towards one client before it counts as slow and is dropped") { $0.maxOutboundBytes = $1 },
        .integer("handshake_timeout", 10_000, "ms a connection may take to send its HTTP request (slowloris); also the idle limit between requests; 0: off") {
            $0.handshakeTimeoutMilliseconds = $1
        },
        Setting(
            name: "slow_client_policy", defaultValue: "close", help: "for a client whose outbound buffer is full: close, or keep-newest (one message per channel)",
            original: nil
        ) {
            guard let policy = SlowClientPolicy(rawValue: $1) else { throw WS4RedisError.configuration("slow_client_policy is close or keep-newest, got '\($1)'") }
            $0.slowClientPolicy = policy
        },
        Setting(name: "compression", defaultValue: "on", help: "permessage-deflate when the client offers it: on or off", original: nil) {
            guard $1 == "on" || $1 == "off" else { throw WS4RedisError.configuration("compression is on or off, got '\($1)'") }
            $0.compression = $1 == "on"
        },
        .integer("compression_threshold", 128, "messages shorter than this many bytes are sent uncompressed") { $0.compressionThreshold = $1 },
        .integer("ping_interval", 30_000, "ms between protocol pings to quiet clients; no pong by the next one closes them; 0: off") {
            $0.pingIntervalMilliseconds = $1
        },
        .integer("expire", 3600, "seconds a client-published message stays stored for later subscribers; 0: not stored", original: "WS4REDIS_EXPIRE") {
            $0.expireSeconds = $1
        },
        Setting(name: "heartbeat", defaultValue: "", help: "magic string sent to idle clients and dropped when received; off when empty", original: "WS4REDIS_HEARTBEAT")
        {
            $0.heartbeat = $1.isEmpty ? nil : $1
        },
        .integer("heartbeat_interval", 4000, "ms of idleness after which the heartbeat is sent (the original: about 4 s)") { $0.heartbeatIntervalMilliseconds = $1 },
        Setting(
            name: "allowed_flags", defaultValue: "all", help: "comma-separated flags clients may use (others are dropped silently), or 'all'",
            original: "WS4REDIS_ALLOWED_CHANNELS"
        ) { $0.allowedFlags = try ChannelFlags(list: $1) },
        Setting(name: "allowed_origins", defaultValue: "", help: "comma-separated Origin values accepted (others get 403); empty: any", original: nil) {
            $0.allowedOrigins = $1.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        },
        Setting(
            name: "missing_identity", defaultValue: "drop",
            help:
                "flags that need an identity the handshake lacks (subscribe-user without a user, ...): drop them, as the original does, or refuse the handshake with 403",
            original: nil
        ) {
            guard let policy = MissingIdentityPolicy(rawValue: $1) else { throw WS4RedisError.configuration("missing_identity is drop or refuse, got '\($1)'") }
            $0.missingIdentity = policy
        },
        .integer("max_facility_length", 255, "longest facility name in bytes; longer ones get 400, as do control characters and invalid UTF-8") {
            $0.maxFacilityLength = $1
        },
        Setting(name: "token_secret", defaultValue: "", help: "secret of signed identity tokens, at least 32 bytes; tokens are not accepted when empty", original: nil) {
            $0.identity.tokenSecret = $1.isEmpty ? nil : Array($1.utf8)
        },
        .integer("token_max_lifetime", 0, "seconds a token may still be valid for when presented; tokens valid longer get 403; 0: any") {
            $0.identity.tokenMaxLifetimeSeconds = $1
        },
        Setting(name: "token_parameter", defaultValue: "ws4redis-token", help: "query parameter carrying a signed identity token", original: nil) {
            $0.identity.tokenParameter = $1
        },
        Setting(name: "token_cookie", defaultValue: "ws4redis_token", help: "cookie carrying a signed identity token", original: nil) { $0.identity.tokenCookie = $1 },
        Setting(
            name: "auth_url", defaultValue: "", help: "http://host:port/path asked about each handshake (auth request); off when empty",
            original: "WS4REDIS_PROCESS_REQUEST"
        ) { $0.identity.authURL = $1.isEmpty ? nil : try HTTPURL(parsing: $1) },
        .integer("auth_timeout", 5000, "ms the auth request may take; then the handshake fails with 504") { $0.identity.authTimeoutMilliseconds = $1 },
        .integer(
            "auth_cache", 0, "ms a granting auth-request answer is reused for the same forwarded headers (cookies, authorization, URI, method, client address); 0: never"
        ) {
            $0.identity.authCacheMilliseconds = $1
        },
        .integer("authorizer_timeout", 5000, "ms a registered authorization callback may take; then the handshake fails with 504") {
            $0.identity.authorizerTimeoutMilliseconds = $1
        },
        .integer("authorizer_threads", 4, "worker threads for authorization callbacks (which may block)") { $0.identity.authorizerThreads = $1 },
        .integer("authorizer_queue", 256, "handshakes that may wait for a free authorizer thread; further ones get 503") { $0.identity.authorizerQueue = $1 },
        .integer("auth_concurrency", 64, "auth requests to auth_url under way at once; further handshakes get 503") { $0.identity.authConcurrency = $1 },
        .integer("auth_cache_size", 10_000, "granted auth-request answers kept for auth_cache ms (least recently used dropped first)") {
            $0.identity.authCacheSize = $1
        },
        Setting(name: "log_level", defaultValue: "info", help: "trace, debug, info, notice, warning, error or critical", original: nil) {
            guard LogLevelName.isValid($1) else { throw WS4RedisError.configuration("unknown log level '\($1)'") }
            $0.logLevel = $1
        },
        Setting(name: "log_format", defaultValue: "text", help: "text (one line per event, key=value) or json (one JSON object per line)", original: nil) {
            guard let format = LogFormat(rawValue: $1) else { throw WS4RedisError.configuration("log_format is text or json, got '\($1)'") }
            $0.logFormat = format
        },
        Setting(
            name: "trusted_proxies", defaultValue: "", help: "comma-separated addresses/CIDRs of proxies whose X-Forwarded-For or X-Real-IP name the client",
            original: nil
        ) { $0.trustedProxies = try TrustedProxies(parsing: $1) },
    ]

    static func integer(
        _ name: String, _ defaultValue: Int, _ help: String, original: String? = nil, apply: @escaping @Sendable (inout ServerConfiguration, Int) -> Void
    ) -> Setting {
        Setting(name: name, defaultValue: String(defaultValue), help: help, original: original) { configuration, text in
            guard let value = Int(text), value >= 0 else { throw WS4RedisError.configuration("\(name) needs a whole number >= 0, got '\(text)'") }
            apply(&configuration, value)
        }
    }

    public static func named(_ name: String) -> Setting? {
        let normalized = name.replacingUnderscores(with: "_", from: "-").lowercased()
        return all.first { $0.name == normalized }
    }
}
