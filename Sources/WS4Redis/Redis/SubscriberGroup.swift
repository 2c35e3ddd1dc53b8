import Logging
import NIOCore

/// The subscriber connections of a server, reporting to one listener: one, or one per shard once a cluster's map is known.
final class SubscriberGroup {
    private let endpoint: RedisEndpoint
    private let topology: ClusterTopology?
    private unowned let listener: any PubSubListener
    private let headroom: Int
    private let counters: ServerCounters
    private let logger: Logger
    private let options: RedisOptions
    private var connections: [RedisSubscriberConnection] = []
    private var stopped = false

    init(
        endpoint: RedisEndpoint, topology: ClusterTopology?, listener: any PubSubListener, headroom: Int, counters: ServerCounters, logger: Logger,
        options: RedisOptions
    ) throws {
        self.endpoint = endpoint
        self.options = options
        self.topology = topology
        self.listener = listener
        self.headroom = headroom
        self.counters = counters
        self.logger = logger
        if topology == nil {
            connections = [
                try RedisSubscriberConnection(endpoint: endpoint, listener: listener, headroom: headroom, counters: counters, logger: logger, options: options)
            ]
        }
    }

    func start() {
        guard let topology else { return connections.forEach { $0.start() } }
        topology.whenKnown { [self] map in
            guard !stopped else { return }
            listener.use(map)
            do {
                connections = try map.shards.enumerated().map { shard, served in
                    try RedisSubscriberConnection(
                        endpoint: endpoint, shard: shard, slot: served.slots[0].lowerBound, listener: listener, headroom: headroom, counters: counters, logger: logger,
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
        listener.eventLoop.flatSubmit { [self] in
            stopped = true
            return EventLoopFuture.andAllComplete(connections.map { $0.stop() }, on: listener.eventLoop)
        }
    }
}
