import Logging
import NIOCore
import NIOWebSocket

/// A published message on its way to the sockets of one event loop: the frame is encoded once and
/// the same buffer is written to every local subscriber.
package struct FanoutMessage {
    let channel: String
    let frame: ByteBuffer
    /// When the message was read from Redis: the start of its delivery latency.
    let receivedAt: NIODeadline

    package init(channel: String, frame: ByteBuffer, receivedAt: NIODeadline = .now()) {
        self.channel = channel
        self.frame = frame
        self.receivedAt = receivedAt
    }
}

/// The connections of one event loop and their channels. Confined to its loop: no locks.
/// The multiplexer hops here once per batch of messages, not once per client.
package final class LoopHub {
    let eventLoop: any EventLoop
    let index: Int
    let counters: ServerCounters
    let logger: Logger
    let settings: ConnectionSettings
    unowned let multiplexer: ChannelMultiplexer
    private let redis: any RedisCommands
    private var connections: [WebSocketConnectionHandler] = []
    private var subscribers: [String: SubscriberList] = [:]
    /// Requests to the multiplexer per channel that it has not answered yet.
    private var unansweredRequests: [String: Int] = [:]
    /// Connections whose channels Redis has not all confirmed yet (few, and briefly).
    private var awaitingConfirmation: [WebSocketConnectionHandler] = []
    private var pendingFlush: [WebSocketConnectionHandler] = []
    /// Connections of this loop with the same channels share one list of them, and so one copy of
    /// each name (a name over 15 bytes is an allocation): idle subscribers of a facility keep one
    /// list, not one each. Counted, so that the lists of connections that are gone are dropped.
    private var channelLists: [[String]: (list: [String], users: Int)] = [:]
    /// Compresses for this loop's clients; messages are compressed at most once per loop.
    private let deflater = MessageDeflater()
    let storedMessages: StoredMessageFetches

    package init(
        eventLoop: any EventLoop, index: Int, counters: ServerCounters, logger: Logger, settings: ConnectionSettings,
        multiplexer: ChannelMultiplexer, redis: any RedisCommands
    ) {
        self.eventLoop = eventLoop
        self.index = index
        self.counters = counters
        self.logger = logger
        self.settings = settings
        self.multiplexer = multiplexer
        self.redis = redis
        storedMessages = StoredMessageFetches(eventLoop: eventLoop, redis: redis)
    }

    func add(_ connection: WebSocketConnectionHandler) {
        connection.hubSlot = connections.count
        connections.append(connection)
    }

    func remove(_ connection: WebSocketConnectionHandler) {
        guard connection.hubSlot >= 0 else { return }
        swapRemove(&connections, at: connection.hubSlot) { $0.hubSlot = $1 }
        connection.hubSlot = -1
        for channel in connection.channels { subscribers[channel]?.remove(connection) }
        if let waiting = awaitingConfirmation.firstIndex(where: { $0 === connection }) { awaitingConfirmation.remove(at: waiting) }
    }

    /// Registers a connection's channels locally, and in Redis through the multiplexer only for the
    /// channels no other connection of this loop holds: a handshake on a loop that already listens to
    /// its channels needs no trip to the multiplexer's loop. Calls `subscriptionConfirmed()` on the
    /// connection once Redis confirmed every channel (at once when they all are).
    func subscribe(_ channels: [String], of connection: WebSocketConnectionHandler) {
        var requested: [String] = []
        var confirmed = true
        for channel in channels {
            let list = subscriberList(channel, requesting: &requested)
            list.add(connection)
            confirmed = confirmed && list.confirmed
        }
        if !requested.isEmpty {
            for channel in requested { unansweredRequests[channel, default: 0] += 1 }
            multiplexer.acquire(requested, hub: self)
        }
        if confirmed {
            connection.subscriptionConfirmed()
        } else {
            awaitingConfirmation.append(connection)
        }
    }

    private func subscriberList(_ channel: String, requesting requested: inout [String]) -> SubscriberList {
        if let list = subscribers[channel] { return list }
        let list = SubscriberList()
        subscribers[channel] = list
        requested.append(channel)
        return list
    }

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
        var confirmed: [WebSocketConnectionHandler] = []
        awaitingConfirmation.removeAll { connection in
            guard connection.channels.allSatisfy({ subscribers[$0]?.confirmed == true }) else { return false }
            confirmed.append(connection)
            return true
        }
        for connection in confirmed { connection.subscriptionConfirmed() }
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

    func sharedChannelList(_ channels: [String]) -> [String] {
        guard let shared = channelLists[channels]?.list else {
            channelLists[channels] = (channels, 1)
            return channels
        }
        channelLists[channels]!.users += 1
        return shared
    }

    func releaseChannelList(_ channels: [String]) {
        guard let users = channelLists[channels]?.users else { return }
        if users == 1 {
            channelLists[channels] = nil
        } else {
            channelLists[channels]!.users -= 1
        }
    }

    /// Drops a connection's channels: from Redis (through the multiplexer) those that no other
    /// connection of this loop holds.
    func unsubscribe(_ channels: [String]) {
        let released = channels.filter { subscribers[$0]?.isEmpty == true }
        guard !released.isEmpty else { return }
        for channel in released { subscribers[channel] = nil }
        multiplexer.release(released, hub: self)
    }

    /// Publishes a client's message as the original does: PUBLISH to each channel, and SET ... EX.
    /// `failed` runs on this loop when the message did not reach Redis whole.
    func publish(_ payload: ByteBuffer, to channels: [String], failed: @escaping (PublicationFailure) -> Void) {
        guard !channels.isEmpty else { return }
        let commands = settings.redis.publication(of: Array(payload.readableBytesView), to: channels, expireSeconds: settings.expireSeconds)
        redis.send(commands).hop(to: eventLoop).whenComplete { [logger] result in
            switch result {
            case .success(let replies) where !replies.contains(where: \.isError):
                break
            case .success(let replies):
                logger.error("Redis refused a client's publication", metadata: ["replies": "\(replies.filter(\.isError))"])
                failed(.refused)
            case .failure(let error):
                logger.warning("client message may not have been published; its sender is closed with 1013", metadata: ["error": "\(error)"])
                failed(.unavailable)
            }
        }
    }

    /// Writes a batch of messages to the local subscribers, then flushes each touched socket once.
    package func deliver(_ batch: [FanoutMessage]) {
        var deliveries = 0
        var bytes = 0
        for message in batch {
            guard let list = subscribers[message.channel] else { continue }
            var compressed: ByteBuffer?
            for connection in list.members {
                let wire = connection.takesCompressedFrames ? compressed ?? compress(message.frame, into: &compressed) : message.frame
                guard connection.enqueue(message, as: wire) else { continue }
                deliveries += 1
                bytes += wire.readableBytes
                if !connection.needsFlush {
                    connection.needsFlush = true
                    pendingFlush.append(connection)
                }
            }
        }
        for connection in pendingFlush { connection.flush() }
        pendingFlush.removeAll(keepingCapacity: true)
        counters.delivered(deliveries, bytes: bytes)
        let written = NIODeadline.now()
        for message in batch { counters.recordDeliveryLatency(nanoseconds: (written - message.receivedAt).nanoseconds) }
    }

    /// The compressed variant of a plain frame when it is worth compressing, else the frame itself.
    func compressedFrame(_ frame: ByteBuffer) -> ByteBuffer {
        let payload = FrameWriter.payload(of: frame)
        guard payload.count >= settings.compressionThreshold else { return frame }
        var compressed = deflater.compress(payload, headroom: FrameWriter.maxHeaderSize, allocator: ByteBufferAllocator())
        FrameWriter.frameInPlace(&compressed, opcode: FrameWriter.opcode(of: frame), compressed: true)
        return compressed
    }

    private func compress(_ frame: ByteBuffer, into cache: inout ByteBuffer?) -> ByteBuffer {
        let compressed = compressedFrame(frame)
        cache = compressed
        return compressed
    }

    /// Starts the close handshake on every connection (server shutdown); completes when all are closed.
    func closeAll(code: WebSocketErrorCode, reason: String, timeout: TimeAmount) -> EventLoopFuture<Void> {
        let closed = connections.compactMap { $0.close(code: code, reason: reason, timeout: timeout) }
        return EventLoopFuture.andAllComplete(closed, on: eventLoop)
    }

    func livenessTick() {
        for connection in connections { connection.livenessTick() }
    }

    /// Heartbeat ticks per heartbeat interval: a heartbeat comes at most an eighth of the interval
    /// later than the interval after the last frame.
    static let heartbeatTicksPerInterval: UInt8 = 8

    func heartbeatTick(_ frame: ByteBuffer) {
        for connection in connections { connection.heartbeatTick(frame) }
    }
}

/// The local subscribers of one channel, with O(1) removal.
final class SubscriberList {
    private(set) var members: [WebSocketConnectionHandler] = []
    /// Redis confirmed the channel for this loop: a new member may fetch the stored messages at once.
    var confirmed = false
    private var slots: [ObjectIdentifier: Int] = [:]

    var isEmpty: Bool { members.isEmpty }

    func add(_ connection: WebSocketConnectionHandler) {
        guard slots[ObjectIdentifier(connection)] == nil else { return }
        slots[ObjectIdentifier(connection)] = members.count
        members.append(connection)
    }

    func remove(_ connection: WebSocketConnectionHandler) {
        guard let slot = slots.removeValue(forKey: ObjectIdentifier(connection)) else { return }
        swapRemove(&members, at: slot) { self.slots[ObjectIdentifier($0)] = $1 }
    }
}

/// Removes an element by moving the last one into its place, telling the mover its new index.
private func swapRemove<Element>(_ array: inout [Element], at index: Int, moved: (Element, Int) -> Void) {
    let last = array.removeLast()
    guard index < array.count else { return }
    array[index] = last
    moved(last, index)
}
