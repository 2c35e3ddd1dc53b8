import CHiredis
import NIOCore

/// What the subscriber connection hears from Redis.
enum PubSubEvent: Equatable {
    /// A published message; the payload keeps `FrameWriter.maxHeaderSize` bytes of headroom.
    case message(channel: String, payload: ByteBuffer)
    case subscribed(channel: String)
    case unsubscribed(channel: String)
    case pong
    case status(String)
    case error(String)
}

/// Parses RESP with hiredis's reader (no hand-written RESP) into pub/sub events.
final class PubSubReplyDecoder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = PubSubEvent

    struct ProtocolError: Error, CustomStringConvertible {
        let description: String
    }

    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        reader = redisReaderCreate()
    }

    deinit {
        redisReaderFree(reader)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        let fed = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard fed == REDIS_OK else { return failed(context: context) }
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else { return failed(context: context) }
            guard let reply else { return }
            defer { freeReplyObject(reply) }
            if let event = Self.event(from: reply.assumingMemoryBound(to: redisReply.self).pointee, allocator: context.channel.allocator) {
                context.fireChannelRead(wrapInboundOut(event))
            }
        }
    }

    private func failed(context: ChannelHandlerContext) {
        let message = withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        context.fireErrorCaught(ProtocolError(description: "Redis protocol error: \(message)"))
        context.close(promise: nil)
    }

    static func event(from reply: redisReply, allocator: ByteBufferAllocator) -> PubSubEvent? {
        switch reply.type {
        case REDIS_REPLY_STATUS: return text(reply).uppercased() == "PONG" ? .pong : .status(text(reply))
        case REDIS_REPLY_ERROR: return .error(text(reply))
        case REDIS_REPLY_ARRAY: return arrayEvent(reply, allocator: allocator)
        default: return nil
        }
    }

    private static func arrayEvent(_ reply: redisReply, allocator: ByteBufferAllocator) -> PubSubEvent? {
        guard reply.elements >= 2, let elements = reply.element else { return nil }
        let element = { (index: Int) in elements[index]!.pointee }
        switch text(element(0)) {
        case "message" where reply.elements == 3:
            return .message(channel: text(element(1)), payload: payloadWithHeadroom(element(2), allocator: allocator))
        case "subscribe": return .subscribed(channel: text(element(1)))
        case "unsubscribe": return .unsubscribed(channel: text(element(1)))
        case "pong": return .pong
        default: return nil
        }
    }

    private static func bytes(_ reply: redisReply) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: reply.str, count: reply.str == nil ? 0 : reply.len)
    }

    private static func text(_ reply: redisReply) -> String {
        String(decoding: bytes(reply), as: UTF8.self)
    }

    private static func payloadWithHeadroom(_ reply: redisReply, allocator: ByteBufferAllocator) -> ByteBuffer {
        let payload = bytes(reply)
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
