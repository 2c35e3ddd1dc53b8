import Logging
import NIOCore

/// Learns a Redis Cluster's shards once (`CLUSTER SLOTS` from the first node that answers, retried
/// with back-off) and hands the map to whoever waits for it. The shards stay fixed from then on: a
/// failover is followed by each shard's links, which ask for their slot's master at every connect;
/// moving slots between shards (resharding) needs a restart. Confined to its event loop.
final class ClusterTopology {
    let eventLoop: any EventLoop
    private let endpoint: RedisEndpoint
    private let logger: Logger
    private var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(5))
    private var map: ClusterMap?
    private var waiters: [(ClusterMap) -> Void] = []
    private var retry: Scheduled<Void>?
    private var stopped = false

    init(endpoint: RedisEndpoint, eventLoop: any EventLoop, logger: Logger) {
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.logger = logger
    }

    func start() {
        eventLoop.execute { self.discover() }
    }

    func stop() {
        eventLoop.execute { [self] in
            stopped = true
            retry?.cancel()
        }
    }

    /// Runs `body` on this loop with the map, at once if it is known.
    func whenKnown(_ body: @escaping (ClusterMap) -> Void) {
        eventLoop.execute { [self] in
            if let map { body(map) } else { waiters.append(body) }
        }
    }

    private func discover() {
        guard !stopped, case .cluster(let nodes) = endpoint.address else { return }
        NodeLookup.clusterMap(asking: nodes, login: endpoint.loginCommands, on: eventLoop) { !self.stopped }.whenComplete { [self] result in
            switch result {
            case .success(let map):
                self.map = map
                logger.info("Redis Cluster", metadata: ["shards": "\(map.shards.map { "\($0.master.host):\($0.master.port)" })"])
                waiters.forEach { $0(map) }
                waiters.removeAll()
            case .failure where stopped:
                break
            case .failure(let error):
                if backoff.isFresh { logger.warning("cannot read the Redis Cluster's slots; retrying with back-off", metadata: ["reason": "\(error)"]) }
                retry = eventLoop.scheduleTask(in: backoff.next()) { self.discover() }
            }
        }
    }
}
