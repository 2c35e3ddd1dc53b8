import Logging
import NIOCore

/// The server's connection for commands (GET, PUBLISH, SET): pipelined, replies matched to requests
/// in order. Confined to its event loop; `send` may be called from any loop.
final class RedisCommandClient {
    private let endpoint: RedisEndpoint
    private let logger: Logger
    private var link: RedisLink!
    private var channel: (any Channel)?
    private var pending = CircularBuffer<EventLoopPromise<RESPReply>>()

    var eventLoop: any EventLoop { link.eventLoop }

    init(endpoint: RedisEndpoint, eventLoop: any EventLoop, logger: Logger) {
        self.endpoint = endpoint
        self.logger = logger
        link = RedisLink(
            endpoint: endpoint, eventLoop: eventLoop, logger: logger,
            handlers: { [unowned self] in [RESPReplyDecoder(), MessageToByteHandler(RedisCommandEncoder()), CommandReplyHandler(owner: self)] },
            up: { [unowned self] in established($0) }, down: { [unowned self] _ in lost() }
        )
    }

    func start() { link.start() }

    func stop() -> EventLoopFuture<Void> { link.stop() }

    /// Sends commands in one write; the replies come back in order. Fails at once while Redis is away.
    func send(_ commands: [[[UInt8]]]) -> EventLoopFuture<[RESPReply]> {
        eventLoop.flatSubmit { [self] in
            guard let channel else { return eventLoop.makeFailedFuture(WS4RedisError.redis("Redis is not connected")) }
            let replies = commands.map { command in
                let promise = eventLoop.makePromise(of: RESPReply.self)
                pending.append(promise)
                channel.write(command, promise: nil)
                return promise.futureResult
            }
            channel.flush()
            return EventLoopFuture.whenAllSucceed(replies, on: eventLoop)
        }
    }

    private func established(_ channel: any Channel) {
        self.channel = channel
        guard !endpoint.loginCommands.isEmpty else { return link.healthy() }
        send(endpoint.loginCommands.map { [[UInt8]](redisArguments: $0) }).whenComplete { [self] result in
            if case .success(let replies) = result, let refusal = replies.first(where: \.isError) {
                logger.error("Redis refused the command connection's login", metadata: ["reply": "\(refusal)"])
                channel.close(promise: nil)
            } else {
                link.healthy()
            }
        }
    }

    private func lost() {
        channel = nil
        while let promise = pending.popFirst() { promise.fail(WS4RedisError.redis("Redis connection lost")) }
    }

    fileprivate func received(_ reply: RESPReply) {
        pending.popFirst()?.succeed(reply)
    }
}

extension RESPReply {
    var isError: Bool {
        if case .error = self { return true }
        return false
    }
}

/// Hands each reply to the client.
private final class CommandReplyHandler: ChannelInboundHandler {
    typealias InboundIn = RESPReply
    private unowned let owner: RedisCommandClient

    init(owner: RedisCommandClient) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
