import CHiredis
import NIOCore

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
