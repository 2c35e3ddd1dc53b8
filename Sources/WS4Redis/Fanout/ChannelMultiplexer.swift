import Logging
import NIOCore

/// Routes between the server's Redis subscriber connections (one per shard in a cluster) and its
/// event loops' hubs: keeps the subscription table, confirms subscriptions to the hubs, frames each
/// message once and hands it to the hubs that want it in batches. Confined to its event loop.
package final class ChannelMultiplexer: PubSubListener {
    package let eventLoop: any EventLoop
    private let counters: ServerCounters
    private let logger: Logger
    private var table: SubscriptionTable
    private var hubs: [LoopHub] = []
    /// The hubs (by index) waiting for Redis to confirm a channel, once per request.
    private var waiters: [String: [Int]] = [:]
    private var batches: [[FanoutMessage]]
    /// Channels answered per hub since the last flush: sent along with the message batches.
    private var answers: [[String]]
    /// The subscriber connection of each shard that is up (one shard, 0, outside a cluster).
    private var connections: [Int: PubSubConnection] = [:]
    private var readyShards: Set<Int> = []
    /// A cluster's map once known; nil outside a cluster.
    private var cluster: ClusterMap?
    private let sharded: Bool
    /// How long a channel stays subscribed after its last subscriber left (subscription_linger):
    /// a page reload then pays no UNSUBSCRIBE and SUBSCRIBE. Zero: unsubscribed at once.
    private let linger: TimeAmount
    /// The idle channels still subscribed, until when.
    private var lingering: [String: NIODeadline] = [:]

    package init(
        eventLoop: any EventLoop, hubCount: Int, sharded: Bool, counters: ServerCounters, logger: Logger, linger: TimeAmount = .zero
    ) {
        self.eventLoop = eventLoop
        self.sharded = sharded
        self.linger = linger
        self.counters = counters
        self.logger = logger
        table = SubscriptionTable(hubCount: hubCount)
        batches = Array(repeating: [], count: hubCount)
        answers = Array(repeating: [], count: hubCount)
    }

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

    /// A hub's first subscriber of each of `channels`: the hub hears back (`answered`) once Redis
    /// confirmed each one.
    func acquire(_ channels: [String], hub: LoopHub) {
        eventLoop.execute { [self] in
            send(subscribe: true, table.acquire(channels, hub: hub.index))
            if !lingering.isEmpty { takeLingering(channels) }
            publishChannelCount()
            for channel in channels {
                if table.isConfirmed(channel, connected: shard(of: channel).flatMap { connections[$0] } != nil) {
                    answers[hub.index].append(channel)
                } else {
                    waiters[channel, default: []].append(hub.index)
                }
            }
            flushAnswers()
        }
    }

    /// A hub's last subscriber of each of `channels` left.
    func release(_ channels: [String], hub: LoopHub) {
        eventLoop.execute { [self] in
            let idle = table.release(channels, hub: hub.index)
            if linger > .zero {
                let until = NIODeadline.now() + linger
                for channel in idle { lingering[channel] = until }
                counters.lingeringChannels.set(lingering.count)
            } else {
                unsubscribe(idle)
            }
            flushAnswers()
        }
    }

    /// Idle channels a hub takes again stop lingering: still subscribed, they cost Redis nothing.
    private func takeLingering(_ channels: [String]) {
        for channel in channels where lingering.removeValue(forKey: channel) != nil { counters.lingeringChannelsTaken.add(1) }
        counters.lingeringChannels.set(lingering.count)
    }

    /// How often sweepLingering() must run: a channel leaves Redis between `linger` and `linger` +
    /// this; nil when channels do not linger.
    package var lingerSweepInterval: TimeAmount? {
        linger > .zero ? min(max(.nanoseconds(linger.nanoseconds / 4), .milliseconds(50)), .seconds(1)) : nil
    }

    /// Unsubscribes the channels whose linger has passed.
    package func sweepLingering(now: NIODeadline = .now()) {
        let expired = lingering.compactMap { $0.value <= now ? $0.key : nil }
        guard !expired.isEmpty else { return }
        endLingering(expired)
        flushAnswers()
    }

    private func endLingering(_ channels: [String]) {
        for channel in channels { lingering[channel] = nil }
        counters.lingeringChannels.set(lingering.count)
        unsubscribe(channels)
    }

    private func unsubscribe(_ idle: [String]) {
        let gone = table.remove(idle)
        // A hub that asked for a channel and left before Redis confirmed it is answered all the same.
        for channel in gone { answerWaiters(of: channel) }
        send(subscribe: false, gone)
        publishChannelCount()
    }

    private func answerWaiters(of channel: String) {
        for hub in waiters.removeValue(forKey: channel) ?? [] { answers[hub].append(channel) }
    }

    // MARK: events from the Redis connection (this loop)

    package func connected(_ connection: PubSubConnection, shard: Int) {
        connections[shard] = connection
        send(subscribe: true, table.channelNames.filter { self.shard(of: $0) == shard })
    }

    /// Redis counts as connected once every shard's connection answers.
    package func ready(shard: Int) {
        readyShards.insert(shard)
        counters.redisConnected.store(readyShards.count == shardCount && (!sharded || cluster != nil), ordering: .relaxed)
    }

    package func connectionLost(shard: Int) {
        connections[shard] = nil
        readyShards.remove(shard)
        counters.redisConnected.store(false, ordering: .relaxed)
        // Idle channels are not worth subscribing to again (nothing is sent: the connection is gone).
        endLingering(lingering.keys.filter { self.shard(of: $0) == shard })
        let lost = table.channelNames.filter { self.shard(of: $0) == shard }
        table.connectionLost(of: lost)
        batches = Array(repeating: [], count: batches.count)
        tellHubs(lost: lost)
    }

    /// Each hub holding a lost channel waits for it to be confirmed again, and is answered then.
    private func tellHubs(lost channels: [String]) {
        var lostByHub = Array(repeating: [String](), count: hubs.count)
        for channel in channels {
            table.forEachHub(of: channel) { hub in
                lostByHub[hub].append(channel)
                waiters[channel, default: []].append(hub)
            }
        }
        for (index, channels) in lostByHub.enumerated() where !channels.isEmpty {
            let hub = hubs[index]
            hub.eventLoop.execute { hub.lost(channels) }
        }
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
            if table.confirmationReceived(channel) { answerWaiters(of: channel) }
        case .unsubscribed(let channel) where sharded && table.isWanted(channel):
            // Redis drops sharded subscriptions of slots that moved to another shard.
            logger.error("Redis Cluster moved a wanted channel's slot to another shard; restart to follow resharding", metadata: ["channel": "\(channel)"])
        case .unsubscribed, .pong, .status:
            break
        case .error(let message):
            logger.error("Redis refused a command", metadata: ["error": "\(message)"])
        }
    }

    /// One hop per hub carries everything a read from Redis brought.
    package func readComplete() {
        for (index, batch) in batches.enumerated() where !batch.isEmpty {
            let hub = hubs[index]
            batches[index] = []
            hub.eventLoop.execute { hub.deliver(batch) }
        }
        flushAnswers()
    }

    private func flushAnswers() {
        for (index, channels) in answers.enumerated() where !channels.isEmpty {
            let hub = hubs[index]
            answers[index] = []
            hub.eventLoop.execute { hub.answered(channels) }
        }
    }

    /// SUBSCRIBE / UNSUBSCRIBE on the connection of each channel's shard.
    private func send(subscribe: Bool, _ channels: [String]) {
        var byShard: [Int: [String]] = [:]
        for channel in channels {
            if let shard = shard(of: channel), connections[shard] != nil { byShard[shard, default: []].append(channel) }
        }
        for (shard, channels) in byShard {
            if subscribe {
                table.subscribeSent(channels)
                connections[shard]!.subscribe(channels)
            } else {
                connections[shard]!.unsubscribe(channels)
            }
        }
    }

    private func publishChannelCount() {
        counters.channels.set(table.channelCount)
    }
}
