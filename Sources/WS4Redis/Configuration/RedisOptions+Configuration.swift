extension RedisOptions {
    init(_ configuration: ServerConfiguration) {
        self.init(
            pingIntervalMilliseconds: configuration.redisPingIntervalMilliseconds, timeoutMilliseconds: configuration.redisTimeoutMilliseconds,
            queueBytes: configuration.redisQueueBytes
        )
    }

    /// The settings' defaults, for connections made outside a server (publishers, tests).
    static let defaults = RedisOptions(ServerConfiguration())
}
