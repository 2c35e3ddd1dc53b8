import NIOCore
import XCTest

@testable import WS4Redis
import WS4RedisCompression
@testable import WS4RedisProtocol

final class DeflateNegotiationTests: XCTestCase {
    func testPlainOfferGetsServerNoContextTakeover() {
        let accepted = DeflateNegotiation.negotiate(offers: ["permessage-deflate; client_max_window_bits"])
        XCTAssertEqual(accepted?.responseValue, "permessage-deflate; server_no_context_takeover")
        XCTAssertEqual(accepted?.acceptsSharedFrames, true)
    }

    func testSmallServerWindowIsAcceptedButGetsNoSharedFrames() {
        let accepted = DeflateNegotiation.negotiate(offers: ["permessage-deflate; server_max_window_bits=10; client_no_context_takeover"])
        XCTAssertEqual(accepted?.responseValue, "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_no_context_takeover")
        XCTAssertEqual(accepted?.acceptsSharedFrames, false)
    }

    func testInvalidOffersAreSkippedForTheNextOne() {
        let accepted = DeflateNegotiation.negotiate(offers: ["permessage-deflate; server_max_window_bits=16, permessage-deflate; unknown=1", "permessage-deflate"])
        XCTAssertEqual(accepted?.responseValue, "permessage-deflate; server_no_context_takeover")
        XCTAssertNil(DeflateNegotiation.negotiate(offers: ["permessage-deflate; server_no_context_takeover; server_no_context_takeover"]))
        XCTAssertNil(DeflateNegotiation.negotiate(offers: ["x-webkit-deflate-frame"]))
    }

    func testEmptyParametersAreInvalidNotFatal() {
        // Found by ws4redis-fuzz: an empty parameter crashed the parser.
        XCTAssertNil(DeflateNegotiation.negotiate(offers: ["permessage-deflate; ; client_max_window_bits"]))
        XCTAssertNil(DeflateNegotiation.negotiate(offers: ["permessage-deflate;=;"]))
    }

    func testDeflateRoundTripsAcrossMessagesWithContextTakeoverOnTheInflateSide() throws {
        let deflater = MessageDeflater()
        let inflater = MessageInflater()
        for text in ["first message first message", "second", String(repeating: "x", count: 100_000)] {
            let compressed = deflater.compress(ByteBuffer(string: text).readableBytesView, headroom: 10, allocator: ByteBufferAllocator())
            XCTAssertEqual(compressed.readerIndex, 10)
            var output = ByteBuffer()
            try inflater.inflate(compressed, final: true, into: &output, limit: 1 << 20)
            XCTAssertEqual(String(buffer: output), text)
        }
    }
}
