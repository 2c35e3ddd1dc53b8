import CZlib
import NIOCore

/// Compresses whole messages without context takeover: every message stands alone, so one
/// compressed frame can go to every client that negotiated permessage-deflate.
package final class MessageDeflater {
    private var stream = z_stream()

    package init() {
        // Window 15 and memLevel 8 are zlib's defaults; level 6 trades little size for much speed over 9.
        let status = deflateInit2_(&stream, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "zlib refused its default parameters")
    }

    deinit {
        deflateEnd(&stream)
    }

    /// The compressed payload with `headroom` free bytes before it (for a frame header).
    package func compress(_ payload: ByteBufferView, headroom: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
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
