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
