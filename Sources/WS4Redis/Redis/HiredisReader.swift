import CHiredis
import NIOCore

/// hiredis's RESP reader (no hand-written RESP): bytes in, reply trees out.
final class HiredisReader {
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

    private func feed(_ buffer: ByteBuffer) throws {
        let fed = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        guard fed == REDIS_OK else { throw error() }
    }

    /// Calls `body` with each complete reply, freeing it afterwards.
    private func forEachReply(_ body: (redisReply) -> Void) throws {
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else { throw error() }
            guard let reply else { return }
            defer { freeReplyObject(reply) }
            body(reply.assumingMemoryBound(to: redisReply.self).pointee)
        }
    }

    /// Feeds a read and hands on each complete reply; malformed RESP closes the connection.
    func read(_ data: ByteBuffer, context: ChannelHandlerContext, emit: (redisReply) -> Void) {
        do {
            try feed(data)
            try forEachReply(emit)
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    private func error() -> ProtocolError {
        let message = withUnsafeBytes(of: reader.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return ProtocolError(description: "Redis protocol error: \(message)")
    }
}

extension redisReply {
    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: str, count: str == nil ? 0 : len)
    }

    var text: String {
        String(decoding: bytes, as: UTF8.self)
    }

    func element(_ index: Int) -> redisReply {
        element[index]!.pointee
    }
}

/// A reply to a command, for the command connection.
package enum RESPReply: Equatable {
    case status(String)
    case error(String)
    case integer(Int)
    case bulk(ByteBuffer?)
    case array([RESPReply]?)

    init(_ reply: redisReply, allocator: ByteBufferAllocator) {
        switch reply.type {
        case REDIS_REPLY_STATUS: self = .status(reply.text)
        case REDIS_REPLY_ERROR: self = .error(reply.text)
        case REDIS_REPLY_INTEGER: self = .integer(Int(reply.integer))
        case REDIS_REPLY_STRING:
            var buffer = allocator.buffer(capacity: reply.len)
            buffer.writeBytes(reply.bytes)
            self = .bulk(buffer)
        case REDIS_REPLY_ARRAY: self = .array((0..<reply.elements).map { RESPReply(reply.element($0), allocator: allocator) })
        default: self = .bulk(nil)
        }
    }
}

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
