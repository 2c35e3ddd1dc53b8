import Logging
import NIOCore

/// Pipelined commands to Redis, replies in order: one connection, or one per cluster shard.
package protocol RedisCommands: AnyObject {
    var eventLoop: any EventLoop { get }
    func start()
    func stop() -> EventLoopFuture<Void>
    /// Sends commands; the replies come back in order. Fails with a `WS4RedisError` of kind `.redis`
    /// at once while Redis is away, and when the connection is lost or leaves them unanswered for
    /// `redis_timeout`; of kind `.limit` (`isRedisQueueFull`) at once, without sending anything, when
    /// they would take the unanswered commands past `redis_queue_bytes`.
    func send(_ commands: [[[UInt8]]]) -> EventLoopFuture<[RESPReply]>
    /// Succeeds once Redis can take commands, or fails with the reason of the next failed attempt.
    func readiness() -> EventLoopFuture<Void>
}

extension WS4RedisError {
    /// A send refused because the commands Redis has not answered yet, `held` bytes, and these
    /// `adding` bytes would exceed `redis_queue_bytes`: Redis is slower than what is sent to it.
    static func redisQueueFull(adding: Int, held: Int, limit: Int) -> WS4RedisError {
        .init(.limit, "Redis command queue full: \(held) bytes unanswered, \(adding) more would exceed redis_queue_bytes \(limit)")
    }

    /// Whether a `RedisCommands.send` failed because the command queue was full (nothing was sent;
    /// Redis is up but behind), rather than because Redis is away or did not answer.
    package var isRedisQueueFull: Bool { kind == .limit }
}

extension RedisEndpoint {
    /// The command connection(s) for this endpoint; in a cluster they follow `topology`.
    func commands(
        on eventLoop: any EventLoop, topology: ClusterTopology?, logger: Logger, options: RedisOptions, timeouts: Total? = nil
    ) throws -> any RedisCommands {
        guard let topology else { return try RedisCommandClient(endpoint: self, eventLoop: eventLoop, logger: logger, options: options, timeouts: timeouts) }
        return ClusterCommandRouter(endpoint: self, topology: topology, logger: logger, options: options, timeouts: timeouts)
    }
}
