import NIOCore
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class SmallReceiveBufferAllocatorTests: XCTestCase {
    func testFitsInlineInAnExistential() {
        // A channel stores its allocator as `any RecvByteBufferAllocator`: three words inline, else a box per socket.
        XCTAssertLessThanOrEqual(MemoryLayout<SmallReceiveBufferAllocator>.size, 3 * MemoryLayout<Int>.size)
    }

    func testStartsAt256AndDoublesAfterAFullRead() {
        var allocator = SmallReceiveBufferAllocator()
        XCTAssertEqual(allocator.nextBufferSize(), 256)
        XCTAssertEqual(allocator.buffer(allocator: ByteBufferAllocator()).capacity, 256)
        XCTAssertTrue(allocator.record(actualReadBytes: 256))
        XCTAssertEqual(allocator.nextBufferSize(), 512)
    }

    func testHalvesAfterTwoSmallReadsInARowOnly() {
        var allocator = SmallReceiveBufferAllocator()
        XCTAssertFalse(allocator.record(actualReadBytes: 100))
        XCTAssertEqual(allocator.nextBufferSize(), 256)
        XCTAssertFalse(allocator.record(actualReadBytes: 200))
        XCTAssertFalse(allocator.record(actualReadBytes: 100))
        XCTAssertEqual(allocator.nextBufferSize(), 256, "a read over half in between starts the count again")
        XCTAssertFalse(allocator.record(actualReadBytes: 100))
        XCTAssertEqual(allocator.nextBufferSize(), 128)
    }

    func testStaysWithin64BytesAnd64KiB() {
        var allocator = SmallReceiveBufferAllocator()
        for _ in 0..<20 { _ = allocator.record(actualReadBytes: 0) }
        XCTAssertEqual(allocator.nextBufferSize(), 64)
        for _ in 0..<20 { _ = allocator.record(actualReadBytes: 1 << 20) }
        XCTAssertEqual(allocator.nextBufferSize(), 65536)
        XCTAssertFalse(allocator.record(actualReadBytes: 1 << 20), "no growth past the maximum")
    }
}
