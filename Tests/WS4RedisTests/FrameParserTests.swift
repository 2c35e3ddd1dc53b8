import NIOCore
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class FrameParserTests: XCTestCase {
    /// A masked client text frame of `payload`, as RFC 6455 §5.2 lays it out.
    private func maskedText(_ payload: [UInt8], key: [UInt8] = [1, 2, 3, 4]) -> ByteBuffer {
        var buffer = ByteBuffer(bytes: [0x81, 0x80 | UInt8(payload.count)] + key)
        buffer.writeBytes(payload.enumerated().map { $1 ^ key[$0 % 4] })
        return buffer
    }

    func testHeadThenUnmaskedPayloadThenEnd() throws {
        var parser = FrameParser(maxFrameSize: 1000)
        var buffer = maskedText(Array("hi!".utf8))
        guard case .head(let head) = try parser.nextPart(from: &buffer) else { return XCTFail("head expected") }
        XCTAssertEqual(head.opcode, .text)
        XCTAssertEqual(head.length, 3)
        XCTAssertEqual(try parser.nextPart(from: &buffer), .payload(ByteBuffer(string: "hi!")))
        XCTAssertEqual(try parser.nextPart(from: &buffer), .end)
        XCTAssertNil(try parser.nextPart(from: &buffer))
    }

    func testIncompleteHeaderIsLeftUnread() throws {
        var parser = FrameParser(maxFrameSize: 1000)
        var start = maskedText(Array("hello".utf8)).getSlice(at: 0, length: 4)!
        XCTAssertNil(try parser.nextPart(from: &start))
        XCTAssertEqual(start.readableBytes, 4, "the caller keeps the start of the header for the next read")
    }

    func testPayloadArrivesInChunksWithTheMaskContinued() throws {
        var parser = FrameParser(maxFrameSize: 1000)
        let frame = maskedText(Array("abcdefg".utf8))
        var first = frame.getSlice(at: 0, length: 9)!
        var rest = frame.getSlice(at: 9, length: frame.readableBytes - 9)!
        _ = try parser.nextPart(from: &first)
        XCTAssertEqual(try parser.nextPart(from: &first), .payload(ByteBuffer(string: "abc")))
        XCTAssertNil(try parser.nextPart(from: &first))
        XCTAssertEqual(try parser.nextPart(from: &rest), .payload(ByteBuffer(string: "defg")))
        XCTAssertEqual(try parser.nextPart(from: &rest), .end)
    }

    func testRefusedFrameStopsParsingAndDiscardsWhatFollows() throws {
        var parser = FrameParser(maxFrameSize: 10)
        var buffer = ByteBuffer(bytes: [0x82, 0x7E, 0x00, 0x20])
        XCTAssertThrowsError(try parser.nextPart(from: &buffer)) { XCTAssertEqual($0 as? FrameParseError, .tooLarge(32)) }
        var more = maskedText(Array("ok".utf8))
        XCTAssertNil(try parser.nextPart(from: &more))
        XCTAssertEqual(more.readableBytes, 0, "a failed connection keeps nothing of what it is still sent")
    }
}
