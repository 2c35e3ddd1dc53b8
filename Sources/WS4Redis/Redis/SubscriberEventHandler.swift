import NIOCore

/// Routes the subscriber channel's events to its owner.
final class SubscriberEventHandler: ChannelInboundHandler {
    typealias InboundIn = PubSubEvent
    private unowned let owner: RedisSubscriberConnection

    init(owner: RedisSubscriberConnection) {
        self.owner = owner
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        owner.received(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner.readComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
