import CZlib
import NIOCore

/// zlib's raw DEFLATE (RFC 1951) as RFC 7692 uses it: each message ends with an empty stored block
/// (`00 00 ff ff`) that the sender strips and the receiver puts back.
enum RawDeflate {
    static let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The inflated message grew past the limit.
    struct TooLarge: Error {}
}

/// Compresses whole messages without context takeover: every message stands alone, so one
/// compressed frame can go to every client that negotiated permessage-deflate.
final class MessageDeflater {
    private var stream = z_stream()

    init() {
        // Window 15 and memLevel 8 are zlib's defaults; level 6 trades little size for much speed over 9.
        let status = deflateInit2_(&stream, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "zlib refused its default parameters")
    }

    deinit {
        deflateEnd(&stream)
    }

    /// The compressed payload with `headroom` free bytes before it (for a frame header).
    func compress(_ payload: ByteBufferView, headroom: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var output = allocator.buffer(capacity: headroom + Int(deflateBound(&stream, uLong(payload.count))) + 8)
        output.moveWriterIndex(forwardBy: headroom)
        output.moveReaderIndex(forwardBy: headroom)
        payload.withContiguousStorageIfAvailable { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = uInt(input.count)
            repeat {
                output.reserveCapacity(minimumWritableBytes: 256)
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 256) { space in
                    stream.next_out = space.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    stream.avail_out = uInt(space.count)
                    deflate(&stream, Z_SYNC_FLUSH)
                    return space.count - Int(stream.avail_out)
                }
            } while stream.avail_out == 0
        }
        deflateReset(&stream)
        output.moveWriterIndex(to: output.writerIndex - RawDeflate.tail.count)
        return output
    }
}

/// Decompresses a client's messages, keeping the window across messages (clients may use context
/// takeover), with a limit on the output so that a small bomb cannot grow past the message limit.
final class MessageInflater {
    private var stream = z_stream()

    init() {
        let status = inflateInit2_(&stream, -15, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "zlib refused a raw inflate stream")
    }

    deinit {
        inflateEnd(&stream)
    }

    /// Inflates one fragment of a message (with `final`, the end of it) and appends to `output`.
    func inflate(_ input: ByteBuffer, final: Bool, into output: inout ByteBuffer, limit: Int) throws {
        try feed(input.readableBytesView, into: &output, limit: limit)
        if final { try feed(ByteBuffer(bytes: RawDeflate.tail).readableBytesView, into: &output, limit: limit) }
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
                guard output.readableBytes <= limit else { throw RawDeflate.TooLarge() }
                // Done when all input is in and zlib left output space unused (nothing more pending).
                if status != Z_OK || (stream.avail_in == 0 && stream.avail_out > 0) { break }
            }
        }
    }
}
