import Logging
import NIOCore
import WS4RedisCompression

/// The connections of one event loop and their channels. Confined to its loop: no locks.
/// The multiplexer hops here once per batch of messages, not once per client.
package final class LoopHub: SubscriptionPort {
    let eventLoop: any EventLoop
    let index: Int
    private let counters: ServerCounters
    private let logger: Logger
    /// Messages at least this long are compressed for clients that negotiated permessage-deflate.
    private let compressionThreshold: Int
    unowned let multiplexer: ChannelMultiplexer
    private let publisher: ChannelPublisher
    private var connections: [any FanoutSubscriber] = []
    private var subscribers: [String: SubscriberList] = [:]
    /// Requests to the multiplexer per channel that it has not answered yet.
    private var unansweredRequests: [String: Int] = [:]
    /// Connections whose channels Redis has not all confirmed yet (few, and briefly).
    private var awaitingConfirmation: [any FanoutSubscriber] = []
    private var pendingFlush: [any FanoutSubscriber] = []
    /// Connections of this loop with the same channels share one list of them, and so one copy of
    /// each name (a name over 15 bytes is an allocation): idle subscribers of a facility keep one
    /// list, not one each. Counted, so that the lists of connections that are gone are dropped.
    private var channelLists: [[String]: (list: [String], users: Int)] = [:]
    /// Compresses for this loop's clients; messages are compressed at most once per loop.
    private let deflater = MessageDeflater()
    private let storedMessages: StoredMessageFetches

    package init(
        eventLoop: any EventLoop, index: Int, counters: ServerCounters, logger: Logger, compressionThreshold: Int,
        multiplexer: ChannelMultiplexer, publisher: ChannelPublisher
    ) {
        self.eventLoop = eventLoop
        self.index = index
        self.counters = counters
        self.logger = logger
        self.compressionThreshold = compressionThreshold
        self.multiplexer = multiplexer
        self.publisher = publisher
        storedMessages = StoredMessageFetches(eventLoop: eventLoop, publisher: publisher)
    }

    // MARK: the port of this loop's connections

    package func join(_ subscriber: any FanoutSubscriber, channels: [String]) -> [String] {
        subscriber.hubSlot = connections.count
        connections.append(subscriber)
        guard !channels.isEmpty else { return channels }
        let shared = sharedChannelList(channels)
        subscribe(shared, of: subscriber)
        return shared
    }

    package func leave(_ subscriber: any FanoutSubscriber) {
        guard subscriber.hubSlot >= 0 else { return }
        connections.swapRemove(at: subscriber.hubSlot) { $0.hubSlot = $1 }
        subscriber.hubSlot = -1
        let channels = subscriber.channels
        for channel in channels { subscribers[channel]?.remove(subscriber) }
        if let waiting = awaitingConfirmation.firstIndex(where: { $0 === subscriber }) { awaitingConfirmation.remove(at: waiting) }
        unsubscribe(channels)
        releaseChannelList(channels)
    }

    package func fetchStored(_ channels: [String], then deliver: @escaping ([ByteBuffer]) -> Void) {
        storedMessages.fetch(channels, then: deliver)
    }

    /// Publishes as the original does: PUBLISH to each channel, and SET ... EX.
    package func publish(_ payload: ByteBuffer, to channels: [String], failed: @escaping (PublicationFailure) -> Void) {
        guard !channels.isEmpty else { return }
        publisher.publish(payload, to: channels).hop(to: eventLoop).whenSuccess { [logger] result in
            guard case .failure(let failure) = result else { return }
            switch failure {
            case .refused(let replies):
                logger.error("Redis refused a client's publication", metadata: ["replies": "\(replies)"])
            case .unavailable(let error):
                logger.warning("client message may not have been published; its sender is closed with 1013", metadata: ["error": "\(error)"])
            }
            failed(failure)
        }
    }

    package func compressedFrame(_ frame: ByteBuffer) -> ByteBuffer {
        let payload = FrameWriter.payload(of: frame)
        guard payload.count >= compressionThreshold else { return frame }
        var compressed = deflater.compress(payload, headroom: FrameWriter.maxHeaderSize, allocator: ByteBufferAllocator())
        FrameWriter.frameInPlace(&compressed, opcode: FrameWriter.opcode(of: frame), compressed: true)
        return compressed
    }

    // MARK: subscriptions

    /// Registers a connection's channels locally, and in Redis through the multiplexer only for the
    /// channels no other connection of this loop holds: a handshake on a loop that already listens to
    /// its channels needs no trip to the multiplexer's loop.
    private func subscribe(_ channels: [String], of subscriber: any FanoutSubscriber) {
        var requested: [String] = []
        var confirmed = true
        for channel in channels {
            let list = subscriberList(channel, requesting: &requested)
            list.add(subscriber)
            confirmed = confirmed && list.confirmed
        }
        if !requested.isEmpty {
            for channel in requested { unansweredRequests[channel, default: 0] += 1 }
            multiplexer.acquire(requested, hub: self)
        }
        if confirmed {
            subscriber.subscriptionConfirmed()
        } else {
            awaitingConfirmation.append(subscriber)
        }
    }

    private func subscriberList(_ channel: String, requesting requested: inout [String]) -> SubscriberList {
        if let list = subscribers[channel] { return list }
        let list = SubscriberList()
        subscribers[channel] = list
        requested.append(channel)
        return list
    }

    /// Drops channels from Redis (through the multiplexer) that no other connection of this loop holds.
    private func unsubscribe(_ channels: [String]) {
        let released = channels.filter { subscribers[$0]?.isEmpty == true }
        guard !released.isEmpty else { return }
        for channel in released { subscribers[channel] = nil }
        multiplexer.release(released, hub: self)
    }

    private func sharedChannelList(_ channels: [String]) -> [String] {
        guard let shared = channelLists[channels]?.list else {
            channelLists[channels] = (channels, 1)
            return channels
        }
        channelLists[channels]!.users += 1
        return shared
    }

    private func releaseChannelList(_ channels: [String]) {
        guard let users = channelLists[channels]?.users else { return }
        if users == 1 {
            channelLists[channels] = nil
        } else {
            channelLists[channels]!.users -= 1
        }
    }

    // MARK: called by the multiplexer, on this loop

    /// The multiplexer answers each request for a channel once, when Redis confirmed it (or when it
    /// was released before that). Only the answer to the latest request confirms: an earlier one
    /// may answer for a subscription this loop has since given up.
    func answered(_ channels: [String]) {
        for channel in channels {
            guard let unanswered = unansweredRequests[channel] else { continue }
            unansweredRequests[channel] = unanswered > 1 ? unanswered - 1 : nil
            if unanswered == 1 { subscribers[channel]?.confirmed = true }
        }
        // Taken off the list first: a confirmed connection goes on to fetch and publish.
        var confirmed: [any FanoutSubscriber] = []
        awaitingConfirmation.removeAll { subscriber in
            guard subscriber.channels.allSatisfy({ subscribers[$0]?.confirmed == true }) else { return false }
            confirmed.append(subscriber)
            return true
        }
        for subscriber in confirmed { subscriber.subscriptionConfirmed() }
    }

    /// The Redis connection carrying these channels was lost: new subscribers wait until the
    /// multiplexer has subscribed again. It answers once more for each channel, also for one this
    /// loop has released meanwhile, so each counts as a request.
    func lost(_ channels: [String]) {
        for channel in channels {
            subscribers[channel]?.confirmed = false
            unansweredRequests[channel, default: 0] += 1
        }
    }

    /// Writes a batch of messages to the local subscribers, then flushes each touched socket once.
    package func deliver(_ batch: [FanoutMessage]) {
        var deliveries = 0
        var bytes = 0
        for message in batch {
            guard let list = subscribers[message.channel] else { continue }
            var compressed: ByteBuffer?
            for subscriber in list.members {
                let wire = subscriber.takesCompressedFrames ? compressed ?? compress(message.frame, into: &compressed) : message.frame
                guard subscriber.enqueue(message, as: wire) else { continue }
                deliveries += 1
                bytes += wire.readableBytes
                if !subscriber.needsFlush {
                    subscriber.needsFlush = true
                    pendingFlush.append(subscriber)
                }
            }
        }
        for subscriber in pendingFlush { subscriber.flush() }
        pendingFlush.removeAll(keepingCapacity: true)
        counters.delivered(deliveries, bytes: bytes)
        let written = NIODeadline.now()
        for message in batch { counters.recordDeliveryLatency(nanoseconds: (written - message.receivedAt).nanoseconds) }
    }

    private func compress(_ frame: ByteBuffer, into cache: inout ByteBuffer?) -> ByteBuffer {
        let compressed = compressedFrame(frame)
        cache = compressed
        return compressed
    }

    // MARK: called by the server, on this loop

    /// Starts the close handshake on every connection (server shutdown); completes when all are closed.
    func closeAll(code: CloseCode, reason: String, timeout: TimeAmount) -> EventLoopFuture<Void> {
        let closed = connections.compactMap { $0.close(code: code, reason: reason, timeout: timeout) }
        return EventLoopFuture.andAllComplete(closed, on: eventLoop)
    }

    func livenessTick() {
        for connection in connections { connection.livenessTick() }
    }

    func heartbeatTick(_ frame: ByteBuffer) {
        for connection in connections { connection.heartbeatTick(frame) }
    }
}
