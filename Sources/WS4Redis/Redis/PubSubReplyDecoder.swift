import CHiredis
import NIOCore

/// Parses the subscriber connection's replies into pub/sub events. Each message's payload gets
/// `headroom` free bytes in front, so that whoever passes it on can prepend its own header (a
/// websocket frame's) without copying the payload.
final class PubSubReplyDecoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = PubSubEvent
    private let reader = HiredisReader()
    private let headroom: Int

    init(headroom: Int) {
        self.headroom = headroom
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.read(unwrapInboundIn(data), context: context) { reply in
            if let event = Self.event(from: reply, headroom: headroom, allocator: context.channel.allocator) {
                context.fireChannelRead(wrapInboundOut(event))
            }
        }
    }

    static func event(from reply: redisReply, headroom: Int, allocator: ByteBufferAllocator) -> PubSubEvent? {
        switch reply.type {
        case REDIS_REPLY_STATUS: return reply.text.uppercased() == "PONG" ? .pong : .status(reply.text)
        case REDIS_REPLY_ERROR: return .error(reply.text)
        case REDIS_REPLY_ARRAY: return arrayEvent(reply, headroom: headroom, allocator: allocator)
        default: return nil
        }
    }

    private static func arrayEvent(_ reply: redisReply, headroom: Int, allocator: ByteBufferAllocator) -> PubSubEvent? {
        guard reply.elements >= 2 else { return nil }
        switch reply.element(0).text {
        case "message" where reply.elements == 3, "smessage" where reply.elements == 3:
            return .message(channel: reply.element(1).text, payload: payload(reply.element(2), headroom: headroom, allocator: allocator))
        case "subscribe", "ssubscribe": return .subscribed(channel: reply.element(1).text)
        case "unsubscribe", "sunsubscribe": return .unsubscribed(channel: reply.element(1).text)
        case "pong": return .pong
        default: return nil
        }
    }

    private static func payload(_ reply: redisReply, headroom: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        let payload = reply.bytes
        var buffer = allocator.buffer(capacity: headroom + payload.count)
        buffer.moveWriterIndex(forwardBy: headroom)
        buffer.moveReaderIndex(forwardBy: headroom)
        buffer.writeBytes(payload)
        return buffer
    }
}
