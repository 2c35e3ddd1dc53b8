import Logging
import NIOCore

/// A connection for commands (GET, PUBLISH, SET): pipelined, replies matched to requests in order,
/// reconnected by its link. What it holds unanswered is bounded in bytes (`queueBytes`); a connection
/// that leaves a command unanswered for `timeout` is given up, failing every command it held.
/// Confined to its event loop; `send` may be called from any thread.
final class RedisCommandClient: RedisCommands {
    private let endpoint: RedisEndpoint
    private let logger: Logger
    private let queueBytes: Int
    private var link: RedisLink!
    private var channel: (any Channel)?
    /// Logged in and answering.
    private var ready = false
    /// What was written and is not fully answered yet, oldest first; the replies of the oldest so far.
    private var pending = CircularBuffer<PendingBatch>()
    private var repliesOfOldest: [RESPReply] = []
    /// The encoded size of `pending`'s commands: what NIO, the kernel and Redis hold for us.
    private var pendingBytes = 0
    private var readinessWaiters: [EventLoopPromise<Void>] = []

    var eventLoop: any EventLoop { link.eventLoop }

    init(
        endpoint: RedisEndpoint, slot: Int = 0, eventLoop: any EventLoop, logger: Logger, options: RedisOptions, timeouts: Total? = nil
    ) throws {
        self.endpoint = endpoint
        self.logger = logger
        queueBytes = options.queueBytes
        link = try RedisLink(
            endpoint: endpoint, slot: slot, eventLoop: eventLoop, logger: logger, options: options,
            probe: RedisLink.Probe(owesReply: { [unowned self] in !pending.isEmpty }, ping: { [unowned self] in _ = write([[Array("PING".utf8)]], to: $0) }),
            timeouts: timeouts,
            handlers: { [unowned self] in [RESPReplyDecoder(), MessageToByteHandler(RedisCommandEncoder()), CommandReplyHandler(owner: self)] },
            up: { [unowned self] in established($0) }, down: { [unowned self] in lost($0) }
        )
    }

    func start() { link.start() }

    func stop() -> EventLoopFuture<Void> { link.stop() }

    func send(_ commands: [[[UInt8]]]) -> EventLoopFuture<[RESPReply]> {
        // The hub of this event loop sends from here: no task to queue then.
        guard eventLoop.inEventLoop else { return eventLoop.flatSubmit { [self] in send(commands) } }
        guard ready, let channel else { return eventLoop.makeFailedFuture(WS4RedisError.redis("Redis is not connected")) }
        let bytes = commands.reduce(0) { $0 + RedisCommandFormat.encodedSize($1) }
        guard pendingBytes + bytes <= queueBytes else {
            return eventLoop.makeFailedFuture(WS4RedisError.redisQueueFull(adding: bytes, held: pendingBytes, limit: queueBytes))
        }
        return write(commands, to: channel, bytes: bytes)
    }

    func readiness() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { [self] in
            guard !ready else { return eventLoop.makeSucceededVoidFuture() }
            let promise = eventLoop.makePromise(of: Void.self)
            readinessWaiters.append(promise)
            return promise.futureResult
        }
    }

    /// The commands of one send, answered together: one promise however many commands it holds.
    private struct PendingBatch {
        let promise: EventLoopPromise<[RESPReply]>
        let count: Int
        let bytes: Int
    }

    private func write(_ commands: [[[UInt8]]], to channel: any Channel, bytes: Int? = nil) -> EventLoopFuture<[RESPReply]> {
        guard !commands.isEmpty else { return eventLoop.makeSucceededFuture([]) }
        let promise = eventLoop.makePromise(of: [RESPReply].self)
        let bytes = bytes ?? commands.reduce(0) { $0 + RedisCommandFormat.encodedSize($1) }
        pending.append(PendingBatch(promise: promise, count: commands.count, bytes: bytes))
        pendingBytes += bytes
        for command in commands { channel.write(command, promise: nil) }
        channel.flush()
        return promise.futureResult
    }

    /// Logs in and PINGs: ready means answering, even without login commands (a frozen Redis still
    /// accepts connections into its backlog).
    private func established(_ channel: any Channel) {
        self.channel = channel
        write((endpoint.loginCommands + [["PING"]]).map { [[UInt8]](redisArguments: $0) }, to: channel).whenComplete { [self] result in
            if case .success(let replies) = result, let refusal = replies.first(where: \.isError) {
                logger.error("Redis refused the login", metadata: ["reply": "\(refusal)"])
                channel.close(promise: nil)
            } else if case .success = result {
                becameReady()
            }
        }
    }

    private func becameReady() {
        ready = true
        link.healthy()
        readinessWaiters.forEach { $0.succeed() }
        readinessWaiters.removeAll()
    }

    private func lost(_ reason: String) {
        channel = nil
        ready = false
        let error = WS4RedisError.redis("Redis at \(endpoint.description) unavailable: \(reason)")
        repliesOfOldest = []
        pendingBytes = 0
        while let batch = pending.popFirst() { batch.promise.fail(error) }
        readinessWaiters.forEach { $0.fail(error) }
        readinessWaiters.removeAll()
    }

    func received(_ reply: RESPReply) {
        guard let oldest = pending.first else { return }
        repliesOfOldest.append(reply)
        guard repliesOfOldest.count == oldest.count else { return }
        let replies = repliesOfOldest
        repliesOfOldest = []
        pending.removeFirst()
        pendingBytes -= oldest.bytes
        oldest.promise.succeed(replies)
    }
}
