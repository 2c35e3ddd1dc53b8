import NIOCore

/// Hands each reply to the client.
final class CommandReplyHandler: ChannelInboundHandler {
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
