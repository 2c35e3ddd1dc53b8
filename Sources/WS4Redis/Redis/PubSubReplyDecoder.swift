import CHiredis
import NIOCore

/// What the subscriber connection hears from Redis.
package enum PubSubEvent: Equatable {
    /// A published message; the payload keeps `FrameWriter.maxHeaderSize` bytes of headroom.
    case message(channel: String, payload: ByteBuffer)
    case subscribed(channel: String)
    case unsubscribed(channel: String)
    case pong
    case status(String)
    case error(String)
}

/// Parses the subscriber connection's replies into pub/sub events.
final class PubSubReplyDecoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = PubSubEvent
    private let reader = HiredisReader()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reader.read(unwrapInboundIn(data), context: context) { reply in
            if let event = Self.event(from: reply, allocator: context.channel.allocator) { context.fireChannelRead(wrapInboundOut(event)) }
        }
    }

    static func event(from reply: redisReply, allocator: ByteBufferAllocator) -> PubSubEvent? {
        switch reply.type {
        case REDIS_REPLY_STATUS: return reply.text.uppercased() == "PONG" ? .pong : .status(reply.text)
        case REDIS_REPLY_ERROR: return .error(reply.text)
        case REDIS_REPLY_ARRAY: return arrayEvent(reply, allocator: allocator)
        default: return nil
        }
    }

    private static func arrayEvent(_ reply: redisReply, allocator: ByteBufferAllocator) -> PubSubEvent? {
        guard reply.elements >= 2 else { return nil }
        switch reply.element(0).text {
        case "message" where reply.elements == 3, "smessage" where reply.elements == 3:
            return .message(channel: reply.element(1).text, payload: payloadWithHeadroom(reply.element(2), allocator: allocator))
        case "subscribe", "ssubscribe": return .subscribed(channel: reply.element(1).text)
        case "unsubscribe", "sunsubscribe": return .unsubscribed(channel: reply.element(1).text)
        case "pong": return .pong
        default: return nil
        }
    }

    private static func payloadWithHeadroom(_ reply: redisReply, allocator: ByteBufferAllocator) -> ByteBuffer {
        let payload = reply.bytes
        var buffer = allocator.buffer(capacity: FrameWriter.maxHeaderSize + payload.count)
        buffer.moveWriterIndex(forwardBy: FrameWriter.maxHeaderSize)
        buffer.moveReaderIndex(forwardBy: FrameWriter.maxHeaderSize)
        buffer.writeBytes(payload)
        return buffer
    }
}

/// Writes Redis commands (argument lists) in RESP via hiredis's formatter.
final class RedisCommandEncoder: MessageToByteEncoder {
    typealias OutboundIn = [[UInt8]]

    func encode(data: [[UInt8]], out: inout ByteBuffer) {
        out.writeBytes(RedisCommandFormat.encode(data))
    }
}
