import Logging
import NIOCore
import NIOWebSocket

/// A published message on its way to the sockets of one event loop: the frame is encoded once and
/// the same buffer is written to every local subscriber.
struct FanoutMessage {
    let channel: String
    let frame: ByteBuffer
}

/// The connections of one event loop and their channels. Confined to its loop: no locks.
/// The multiplexer hops here once per batch of messages, not once per client.
final class LoopHub {
    let eventLoop: any EventLoop
    let index: Int
    let counters: ServerCounters
    let logger: Logger
    let maxOutboundBytes: Int
    /// How long a close handshake may take before the socket is dropped.
    let closeTimeout: TimeAmount = .seconds(5)
    unowned let multiplexer: ChannelMultiplexer
    private var connections: [WebSocketConnectionHandler] = []
    private var subscribers: [String: SubscriberList] = [:]
    private var pendingFlush: [WebSocketConnectionHandler] = []

    init(eventLoop: any EventLoop, index: Int, counters: ServerCounters, logger: Logger, maxOutboundBytes: Int, multiplexer: ChannelMultiplexer) {
        self.eventLoop = eventLoop
        self.index = index
        self.counters = counters
        self.logger = logger
        self.maxOutboundBytes = maxOutboundBytes
        self.multiplexer = multiplexer
    }

    var connectionCount: Int { connections.count }

    func add(_ connection: WebSocketConnectionHandler) {
        connection.hubSlot = connections.count
        connections.append(connection)
    }

    func remove(_ connection: WebSocketConnectionHandler) {
        guard connection.hubSlot >= 0 else { return }
        swapRemove(&connections, at: connection.hubSlot) { $0.hubSlot = $1 }
        connection.hubSlot = -1
        for channel in connection.channels { subscribers[channel]?.remove(connection) }
    }

    /// Registers a connection's channels locally and in Redis; succeeds once Redis confirmed them.
    func subscribe(_ channels: [String], of connection: WebSocketConnectionHandler) -> EventLoopFuture<Void> {
        for channel in channels { subscriberList(channel).add(connection) }
        return multiplexer.acquire(channels, hub: self)
    }

    private func subscriberList(_ channel: String) -> SubscriberList {
        if let list = subscribers[channel] { return list }
        let list = SubscriberList()
        subscribers[channel] = list
        return list
    }

    func unsubscribe(_ channels: [String]) {
        for channel in channels where subscribers[channel]?.isEmpty == true { subscribers[channel] = nil }
        multiplexer.release(channels, hub: self)
    }

    /// Writes a batch of messages to the local subscribers, then flushes each touched socket once.
    func deliver(_ batch: [FanoutMessage]) {
        var deliveries = 0
        for message in batch {
            guard let list = subscribers[message.channel] else { continue }
            for connection in list.members where connection.enqueue(message.frame) {
                deliveries += 1
                if !connection.needsFlush {
                    connection.needsFlush = true
                    pendingFlush.append(connection)
                }
            }
        }
        for connection in pendingFlush { connection.flush() }
        pendingFlush.removeAll(keepingCapacity: true)
        counters.messagesOut.add(deliveries)
    }

    /// Starts the close handshake on every connection (server shutdown); completes when all are closed.
    func closeAll(code: WebSocketErrorCode, reason: String, timeout: TimeAmount) -> EventLoopFuture<Void> {
        let closed = connections.compactMap { $0.close(code: code, reason: reason, timeout: timeout) }
        return EventLoopFuture.andAllComplete(closed, on: eventLoop)
    }

    func livenessTick() {
        for connection in connections { connection.livenessTick() }
    }
}

/// The local subscribers of one channel, with O(1) removal.
final class SubscriberList {
    private(set) var members: [WebSocketConnectionHandler] = []
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
