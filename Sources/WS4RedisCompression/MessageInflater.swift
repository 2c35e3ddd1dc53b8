import CZlib
import NIOCore
import WS4RedisProtocol

/// Decompresses a client's messages, keeping the window across messages (clients may use context
/// takeover), with a limit on the output so that a small bomb cannot grow past the message limit.
package final class MessageInflater: MessageInflating {
    private var stream = z_stream()
    /// The message ended its DEFLATE stream with a final block (RFC 7692 §7.2.3.4): the stream was
    /// reset for the next message, and the tail that ends a non-final block does not apply.
    private var streamEnded = false

    package init() {
        let status = inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "zlib refused a raw inflate stream")
    }

    deinit {
        inflateEnd(&stream)
    }

    /// Inflates one fragment of a message (with `final`, the end of it) and appends to `output`.
    package func inflate(_ input: ByteBuffer, final: Bool, into output: inout ByteBuffer, limit: Int) throws {
        try feed(input.readableBytesView, into: &output, limit: limit)
        guard final else { return }
        if !streamEnded { try feed(ByteBuffer(bytes: RawDeflate.tail).readableBytesView, into: &output, limit: limit) }
        streamEnded = false
    }

    private func feed(_ input: ByteBufferView, into output: inout ByteBuffer, limit: Int) throws {
        try input.withContiguousStorageIfAvailable { bytes in
            stream.next_in = UnsafeMutablePointer(mutating: bytes.baseAddress)
            stream.avail_in = uInt(bytes.count)
            while true {
                var status = Z_OK
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 16_384) { space in
                    stream.next_out = space.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(space.count)
                    status = CZlib.inflate(&stream, Z_SYNC_FLUSH)
                    return space.count - Int(stream.avail_out)
                }
                guard status == Z_OK || status == Z_BUF_ERROR || status == Z_STREAM_END else {
                    throw RawDeflate.Failure(description: "invalid compressed data")
                }
                guard output.readableBytes <= limit else { throw InflatedMessageTooLarge() }
                // The next message starts a new stream, which zlib only reads after a reset.
                if status == Z_STREAM_END {
                    inflateReset(&stream)
                    streamEnded = true
                    break
                }
                // Done when all input is in and zlib left output space unused (nothing more pending).
                if status != Z_OK || (stream.avail_in == 0 && stream.avail_out > 0) { break }
            }
        }
    }
}
