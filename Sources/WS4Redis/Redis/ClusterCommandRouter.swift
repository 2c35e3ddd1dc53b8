import Logging
import NIOCore

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
