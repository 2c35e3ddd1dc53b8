import Logging
import NIOCore

/// The Redis subscriber connection of a server (one per shard in a cluster), shared by all
/// websockets: keeps the subscription table, confirms subscriptions to the hubs, frames each message
/// once and hands it to the hubs that want it in batches. Confined to its event loop.
package final class ChannelMultiplexer {
    let eventLoop: any EventLoop
    private let counters: ServerCounters
    private let logger: Logger
    private var table: SubscriptionTable
    private var hubs: [LoopHub] = []
    private var waiters: [String: [EventLoopPromise<Void>]] = [:]
    private var batches: [[FanoutMessage]]
    /// The subscriber connection of each shard that is up (one shard, 0, outside a cluster).
    private var connections: [Int: any Channel] = [:]
    private var readyShards: Set<Int> = []
    /// A cluster's map once known; nil outside a cluster.
    private var cluster: ClusterMap?
    private let sharded: Bool

    package init(eventLoop: any EventLoop, hubCount: Int, sharded: Bool, counters: ServerCounters, logger: Logger) {
        self.eventLoop = eventLoop
        self.sharded = sharded
        self.counters = counters
        self.logger = logger
        table = SubscriptionTable(hubCount: hubCount)
        batches = Array(repeating: [], count: hubCount)
    }

    /// The cluster's shards are known: channels can be routed to their subscriber connections.
    func use(_ map: ClusterMap) {
        cluster = map
    }

    /// The shard carrying `channel`: nil while a cluster's map is not known.
    private func shard(of channel: String) -> Int? {
        guard sharded else { return 0 }
        return cluster?.shardIndex(of: Array(channel.utf8))
    }

    private var shardCount: Int { sharded ? cluster?.shards.count ?? 1 : 1 }

    package func attach(_ hubs: [LoopHub]) {
        self.hubs = hubs
    }

    // MARK: requests from hubs (any loop)

    /// Succeeds on the hub's loop once Redis confirmed every one of `channels`.
    func acquire(_ channels: [String], hub: LoopHub) -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { [self] in
            send(subscribe: true, table.acquire(channels, hub: hub.index))
            publishChannelCount()
            let pending = channels.filter { !table.isConfirmed($0, connected: shard(of: $0).flatMap { connections[$0] } != nil) }.map { channel in
                let promise = eventLoop.makePromise(of: Void.self)
                waiters[channel, default: []].append(promise)
                return promise.futureResult
            }
            return EventLoopFuture.andAllSucceed(pending, on: eventLoop)
        }.hop(to: hub.eventLoop)
    }

    func release(_ channels: [String], hub: LoopHub) {
        eventLoop.execute { [self] in
            let gone = table.release(channels, hub: hub.index)
            for channel in gone { waiters.removeValue(forKey: channel)?.forEach { $0.succeed() } }
            send(subscribe: false, gone)
            publishChannelCount()
        }
    }

    // MARK: events from the Redis connection (this loop)

    package func connected(_ channel: any Channel, shard: Int) {
        connections[shard] = channel
        send(subscribe: true, table.channelNames.filter { self.shard(of: $0) == shard })
    }

    func closeConnection(shard: Int) {
        connections[shard]?.close(promise: nil)
    }

    /// A shard's connection answers: Redis counts as connected once every shard's does.
    func ready(shard: Int) {
        readyShards.insert(shard)
        counters.redisConnected.store(readyShards.count == shardCount && (!sharded || cluster != nil), ordering: .relaxed)
    }

    func connectionLost(shard: Int) {
        connections[shard] = nil
        readyShards.remove(shard)
        counters.redisConnected.store(false, ordering: .relaxed)
        table.connectionLost(of: table.channelNames.filter { self.shard(of: $0) == shard })
        batches = Array(repeating: [], count: batches.count)
    }

    package func received(_ event: PubSubEvent) {
        switch event {
        case .message(let channel, var payload):
            counters.messagesIn.add(1)
            counters.bytesIn.add(payload.readableBytes)
            let receivedAt = NIODeadline.now()
            FrameWriter.frameInPlace(&payload, opcode: FrameWriter.opcode(forPayload: payload))
            table.forEachHub(of: channel) { batches[$0].append(FanoutMessage(channel: channel, frame: payload, receivedAt: receivedAt)) }
        case .subscribed(let channel):
            if table.confirmationReceived(channel) { waiters.removeValue(forKey: channel)?.forEach { $0.succeed() } }
        case .unsubscribed(let channel) where sharded && table.isWanted(channel):
            // Redis drops sharded subscriptions of slots that moved to another shard.
            logger.error("Redis Cluster moved a wanted channel's slot to another shard; restart to follow resharding", metadata: ["channel": "\(channel)"])
        case .unsubscribed, .pong, .status:
            break
        case .error(let message):
            logger.error("Redis refused a command", metadata: ["error": "\(message)"])
        }
    }

    /// The end of one read from Redis: one hop per hub carries everything that read brought.
    func flushBatches() {
        for (index, batch) in batches.enumerated() where !batch.isEmpty {
            let hub = hubs[index]
            batches[index] = []
            hub.eventLoop.execute { hub.deliver(batch) }
        }
    }

    /// Fails every waiting subscription (server stopping).
    func failWaiters(_ error: any Error) {
        for promise in waiters.values.joined() { promise.fail(error) }
        waiters.removeAll()
    }

    /// SUBSCRIBE / UNSUBSCRIBE on the connection of each channel's shard; in a cluster SSUBSCRIBE /
    /// SUNSUBSCRIBE, one channel per command (a command's channels must share a slot).
    private func send(subscribe: Bool, _ channels: [String]) {
        var byShard: [Int: [String]] = [:]
        for channel in channels {
            if let shard = shard(of: channel), connections[shard] != nil { byShard[shard, default: []].append(channel) }
        }
        for (shard, channels) in byShard {
            if subscribe { table.subscribeSent(channels) }
            let connection = connections[shard]!
            if sharded {
                let command = subscribe ? "SSUBSCRIBE" : "SUNSUBSCRIBE"
                for channel in channels { connection.write([[UInt8]](redisArguments: [command, channel]), promise: nil) }
                connection.flush()
            } else {
                connection.writeAndFlush([[UInt8]](redisArguments: [subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE"] + channels), promise: nil)
            }
        }
    }

    private func publishChannelCount() {
        counters.channels.set(table.channelCount)
    }
}
