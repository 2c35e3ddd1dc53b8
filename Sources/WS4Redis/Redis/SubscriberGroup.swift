import Logging
import NIOCore

/// The multiplexer's subscriber connections: one, or one per shard once a cluster's map is known.
final class SubscriberGroup {
    private let endpoint: RedisEndpoint
    private let topology: ClusterTopology?
    private let multiplexer: ChannelMultiplexer
    private let counters: ServerCounters
    private let logger: Logger
    private let options: RedisOptions
    private var connections: [RedisSubscriberConnection] = []
    private var stopped = false

    init(
        endpoint: RedisEndpoint, topology: ClusterTopology?, multiplexer: ChannelMultiplexer, counters: ServerCounters, logger: Logger,
        options: RedisOptions = .defaults
    ) throws {
        self.endpoint = endpoint
        self.options = options
        self.topology = topology
        self.multiplexer = multiplexer
        self.counters = counters
        self.logger = logger
        if topology == nil {
            connections = [try RedisSubscriberConnection(endpoint: endpoint, multiplexer: multiplexer, counters: counters, logger: logger, options: options)]
        }
    }

    func start() {
        guard let topology else { return connections.forEach { $0.start() } }
        topology.whenKnown { [self] map in
            guard !stopped else { return }
            multiplexer.use(map)
            do {
                connections = try map.shards.enumerated().map { shard, served in
                    try RedisSubscriberConnection(
                        endpoint: endpoint, shard: shard, slot: served.slots[0].lowerBound, multiplexer: multiplexer, counters: counters, logger: logger,
                        options: options
                    )
                }
                connections.forEach { $0.start() }
            } catch {
                logger.error("cannot set up the cluster's subscriber connections", metadata: ["error": "\(error)"])
            }
        }
    }

    func stop() -> EventLoopFuture<Void> {
        multiplexer.eventLoop.flatSubmit { [self] in
            stopped = true
            return EventLoopFuture.andAllComplete(connections.map { $0.stop() }, on: multiplexer.eventLoop)
        }
    }
}
