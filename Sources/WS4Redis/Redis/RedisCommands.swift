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
        on eventLoop: any EventLoop, topology: ClusterTopology?, logger: Logger, options: RedisOptions = .defaults, timeouts: Total? = nil
    ) throws -> any RedisCommands {
        guard let topology else { return try RedisCommandClient(endpoint: self, eventLoop: eventLoop, logger: logger, options: options, timeouts: timeouts) }
        return ClusterCommandRouter(endpoint: self, topology: topology, logger: logger, options: options, timeouts: timeouts)
    }

    /// What the original's publisher sends for a message: PUBLISH (SPUBLISH in a cluster) to each
    /// channel, and SET ... EX to store it when `expireSeconds` > 0.
    func publication(of message: [UInt8], to channels: [String], expireSeconds: Int) -> [[[UInt8]]] {
        let publish = Array((isCluster ? "SPUBLISH" : "PUBLISH").utf8)
        return channels.flatMap { channel -> [[[UInt8]]] in
            let name = Array(channel.utf8)
            let store = [Array("SET".utf8), name, message, Array("EX".utf8), Array(String(expireSeconds).utf8)]
            return expireSeconds > 0 ? [[publish, name, message], store] : [[publish, name, message]]
        }
    }
}

/// Commands to a Redis Cluster: each goes to the master of its key's slot (the key is a command's
/// first argument), through one connection per shard; replies are put back in the callers' order.
final class ClusterCommandRouter: RedisCommands {
    let eventLoop: any EventLoop
    private let endpoint: RedisEndpoint
    private let topology: ClusterTopology
    private let logger: Logger
    private let options: RedisOptions
    private let timeouts: Total?
    private var map: ClusterMap?
    private var shards: [RedisCommandClient] = []
    private var stopped = false

    init(endpoint: RedisEndpoint, topology: ClusterTopology, logger: Logger, options: RedisOptions, timeouts: Total?) {
        self.endpoint = endpoint
        self.topology = topology
        self.logger = logger
        self.options = options
        self.timeouts = timeouts
        eventLoop = topology.eventLoop
    }

    func start() {
        topology.whenKnown { [self] map in
            guard !stopped else { return }
            do {
                shards = try map.shards.map {
                    try RedisCommandClient(endpoint: endpoint, slot: $0.slots[0].lowerBound, eventLoop: eventLoop, logger: logger, options: options, timeouts: timeouts)
                }
                self.map = map
                shards.forEach { $0.start() }
            } catch {
                logger.error("cannot set up the cluster's command connections", metadata: ["error": "\(error)"])
            }
        }
    }

    func stop() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { [self] in
            stopped = true
            return EventLoopFuture.andAllComplete(shards.map { $0.stop() }, on: eventLoop)
        }
    }

    func send(_ commands: [[[UInt8]]]) -> EventLoopFuture<[RESPReply]> {
        eventLoop.flatSubmit { [self] in
            guard let map else { return eventLoop.makeFailedFuture(WS4RedisError.redis("the Redis Cluster's slots are not known yet")) }
            var byShard: [Int: [Int]] = [:]
            for (position, command) in commands.enumerated() {
                byShard[command.count > 1 ? map.shardIndex(of: command[1]) ?? 0 : 0, default: []].append(position)
            }
            let parts = byShard.map { shard, positions in
                shards[shard].send(positions.map { commands[$0] }).map { Array(zip(positions, $0)) }
            }
            return EventLoopFuture.whenAllSucceed(parts, on: eventLoop).map { parts in
                var replies = [RESPReply](repeating: .array(nil), count: commands.count)
                for (position, reply) in parts.joined() { replies[position] = reply }
                return replies
            }
        }
    }

    func readiness() -> EventLoopFuture<Void> {
        let known = eventLoop.makePromise(of: Void.self)
        topology.whenKnown { _ in known.succeed() }
        return known.futureResult.flatMap { [self] in
            EventLoopFuture.andAllSucceed(shards.map { $0.readiness() }, on: eventLoop)
        }
    }
}
