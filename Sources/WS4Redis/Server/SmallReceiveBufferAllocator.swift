import NIOCore

/// Sizes a socket's receive buffer as NIO's adaptive allocator does (double after a read that
/// filled it, halve after two reads that used at most half), between 64 bytes and 64 KiB, starting
/// at 256: idle websockets are the common case and their clients send little.
///
/// Why not `AdaptiveRecvByteBufferAllocator` itself: a channel keeps its allocator as an
/// existential, and NIO's struct is too large to be stored inline there, so every socket carried a
/// boxed copy of it. This one is two bytes.
struct SmallReceiveBufferAllocator: RecvByteBufferAllocator {
    private static let minimumShift: UInt8 = 6
    private static let maximumShift: UInt8 = 16

    /// The next buffer holds 1 << shift bytes.
    private var shift: UInt8 = 8
    private var shrinkNext = false

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(capacity: 1 << shift)
    }

    func nextBufferSize() -> Int? {
        1 << shift
    }

    mutating func record(actualReadBytes: Int) -> Bool {
        let size = 1 << shift
        if actualReadBytes >= size, shift < Self.maximumShift {
            shift += 1
            shrinkNext = false
            return true
        }
        if actualReadBytes <= size / 2, shift > Self.minimumShift {
            if shrinkNext { shift -= 1 }
            shrinkNext.toggle()
        } else {
            shrinkNext = false
        }
        return false
    }
}
