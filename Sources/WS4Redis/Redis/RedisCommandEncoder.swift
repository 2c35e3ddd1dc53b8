import NIOCore

/// Writes Redis commands (argument lists) in RESP via hiredis's formatter.
final class RedisCommandEncoder: MessageToByteEncoder {
    typealias OutboundIn = [[UInt8]]

    func encode(data: [[UInt8]], out: inout ByteBuffer) {
        out.writeBytes(RedisCommandFormat.encode(data))
    }
}
