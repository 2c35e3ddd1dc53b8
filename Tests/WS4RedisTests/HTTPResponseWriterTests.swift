import NIOCore
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class HTTPResponseWriterTests: XCTestCase {
    private func text(_ buffer: ByteBuffer) -> String {
        String(buffer: buffer)
    }

    func testBodyGetsItsLengthAndFollowsTheHeaders() {
        let response = HTTPResponseWriter.response(status: 404, headers: [("Content-Type", "text/plain")], body: "not found: /x\n", allocator: .init())
        XCTAssertEqual(text(response), "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nnot found: /x\n")
    }

    func testHEADKeepsTheLengthOfTheBodyItOmits() {
        let response = HTTPResponseWriter.response(status: 404, headers: [], body: "é\n", omittingBody: true, allocator: .init())
        XCTAssertEqual(text(response), "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\n")
    }

    func testNoBodyNoLength() {
        let response = HTTPResponseWriter.response(
            status: 101, headers: [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")],
            allocator: .init())
        XCTAssertEqual(
            text(response),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    }
}
