import NIOCore

/// Decodes replies of the command connection.
final class RESPReplyDecoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = RESPReply
    private let reader = HiredisReader()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.read(unwrapInboundIn(data), context: context) {
            context.fireChannelRead(wrapInboundOut(RESPReply($0, allocator: context.channel.allocator)))
        }
    }
}
