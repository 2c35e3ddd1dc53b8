import NIOCore

/// Replays the bytes a host read past the request headers before anything from the socket.
final class PrefaceHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    private var preface: ByteBuffer?

    init(preface: ByteBuffer) {
        self.preface = preface
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        if let preface, preface.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(preface))
            context.fireChannelReadComplete()
        }
        preface = nil
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
