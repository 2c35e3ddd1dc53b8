import Logging
import NIOCore

/// The one Redis subscriber connection of a server, shared by all websockets: keeps the
/// subscription table, confirms subscriptions to the hubs, frames each message once and hands it
/// to the hubs that want it in batches. Confined to its event loop.
final class ChannelMultiplexer {
    let eventLoop: any EventLoop
    private let counters: ServerCounters
    private let logger: Logger
    private var table: SubscriptionTable
    private var hubs: [LoopHub] = []
    private var waiters: [String: [EventLoopPromise<Void>]] = [:]
    private var batches: [[FanoutMessage]]
    private var connection: (any Channel)?

    init(eventLoop: any EventLoop, hubCount: Int, counters: ServerCounters, logger: Logger) {
        self.eventLoop = eventLoop
        self.counters = counters
        self.logger = logger
        table = SubscriptionTable(hubCount: hubCount)
        batches = Array(repeating: [], count: hubCount)
    }

    func attach(_ hubs: [LoopHub]) {
        self.hubs = hubs
    }

    // MARK: requests from hubs (any loop)

    /// Succeeds on the hub's loop once Redis confirmed every one of `channels`.
    func acquire(_ channels: [String], hub: LoopHub) -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { [self] in
            send("SUBSCRIBE", table.acquire(channels, hub: hub.index))
            publishChannelCount()
            let pending = channels.filter { !table.isConfirmed($0, connected: connection != nil) }.map { channel in
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
            send("UNSUBSCRIBE", gone)
            publishChannelCount()
        }
    }

    // MARK: events from the Redis connection (this loop)

    func connected(_ channel: any Channel) {
        connection = channel
        send("SUBSCRIBE", table.channelNames)
    }

    func closeConnection() {
        connection?.close(promise: nil)
    }

    func connectionLost() {
        connection = nil
        table.connectionLost()
        batches = Array(repeating: [], count: batches.count)
    }

    func received(_ event: PubSubEvent) {
        switch event {
        case .message(let channel, var payload):
            counters.messagesIn.add(1)
            counters.bytesIn.add(payload.readableBytes)
            let receivedAt = NIODeadline.now()
            FrameWriter.frameInPlace(&payload, opcode: FrameWriter.opcode(forPayload: payload))
            table.forEachHub(of: channel) { batches[$0].append(FanoutMessage(channel: channel, frame: payload, receivedAt: receivedAt)) }
        case .subscribed(let channel):
            if table.confirmationReceived(channel) { waiters.removeValue(forKey: channel)?.forEach { $0.succeed() } }
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

    private func send(_ command: String, _ channels: [String]) {
        guard !channels.isEmpty, let connection else { return }
        if command == "SUBSCRIBE" { table.subscribeSent(channels) }
        connection.writeAndFlush([[UInt8]](redisArguments: [command] + channels), promise: nil)
    }

    private func publishChannelCount() {
        counters.channels.set(table.channelCount)
    }
}
