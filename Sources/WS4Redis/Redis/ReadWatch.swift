import Logging
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
    import Glibc
#endif

/// Notes that the connection heard something since the link last looked.
final class ReadWatch: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var heard = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        heard = true
        context.fireChannelRead(data)
    }
}
