import NIOCore
import NIOWebSocket

/// The handlers of an established websocket, the same whether NIO accepted the socket or a host
/// handed it over: the frame decoder (frame size checked at header time), then the connection.
enum WebSocketPipeline {
    static func handlers(for handshake: AcceptedHandshake, hub: LoopHub, configuration: ServerConfiguration, names: ChannelNames)
        -> [any ChannelHandler]
    {
        let channels: [String] =
            switch handshake.endpoint {
            case .facility(let facility): names.subscriptions(facility: facility, flags: handshake.flags, identity: handshake.identity)
            case .echo: []
            }
        return [
            ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: configuration.maxFrameSize)),
            WebSocketConnectionHandler(endpoint: handshake.endpoint, channels: channels, hub: hub, maxMessageSize: configuration.maxMessageSize),
        ]
    }
}

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
