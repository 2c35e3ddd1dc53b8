import NIOCore
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class HTTPRequestParserTests: XCTestCase {
    let upgrade = "GET /ws/f?subscribe-broadcast HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version:   13 \r\n\r\n"

    func parse(_ text: String, maxHeadSize: Int = 1024) throws(HTTPRequestError) -> ParsedRequestHead? {
        var parser = HTTPRequestParser(maxHeadSize: maxHeadSize)
        var buffer = ByteBuffer(string: text)
        return try parser.nextHead(from: &buffer)
    }

    func refusal(_ text: String, maxHeadSize: Int = 1024) -> HTTPRequestError? {
        do {
            _ = try parse(text, maxHeadSize: maxHeadSize)
            return nil
        } catch {
            return error
        }
    }

    func testAPathWhoseDecodedBytesAreNotUTF8IsMarked() throws {
        let invalid = try XCTUnwrap(try parse("GET /ws/a%FFb?x HTTP/1.1\r\nHost: h\r\n\r\n"))
        XCTAssertFalse(invalid.handshakeRequest(remoteAddress: nil).pathIsUTF8)
        let valid = try XCTUnwrap(try parse("GET /ws/%C3%A9 HTTP/1.1\r\nHost: h\r\n\r\n")).handshakeRequest(remoteAddress: nil)
        XCTAssertEqual(valid.path, "/ws/é")
        XCTAssertTrue(valid.pathIsUTF8)
    }

    func testAnUpgradeRequestIsParsedWithTrimmedValues() throws {
        let head = try XCTUnwrap(try parse(upgrade))
        XCTAssertEqual(head.method, "GET")
        XCTAssertEqual(head.target, "/ws/f?subscribe-broadcast")
        XCTAssertEqual(head.version, "HTTP/1.1")
        XCTAssertEqual(head.headers.map(\.name), ["Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"])
        XCTAssertEqual(head.headers.last?.value, "13")
        XCTAssertTrue(head.keepAlive)
        XCTAssertFalse(head.hasBody)
    }

    func testAHeadDrippedByteByByteIsFoundOnceItEnds() throws {
        var parser = HTTPRequestParser(maxHeadSize: 1024)
        var buffer = ByteBuffer()
        for (index, byte) in upgrade.utf8.enumerated() {
            buffer.writeInteger(byte)
            let head = try parser.nextHead(from: &buffer)
            XCTAssertEqual(head != nil, index == upgrade.utf8.count - 1, "at byte \(index)")
        }
        XCTAssertEqual(buffer.readableBytes, 0)
    }

    func testPipelinedHeadsComeOneAtATimeAndWhatFollowsStays() throws {
        var parser = HTTPRequestParser(maxHeadSize: 1024)
        var buffer = ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\nHost: x\n\n")
        buffer.writeInteger(UInt8(0x81))
        XCTAssertEqual(try parser.nextHead(from: &buffer)?.target, "/a")
        XCTAssertEqual(try parser.nextHead(from: &buffer)?.target, "/b", "bare LF line ends are read too")
        XCTAssertNil(try parser.nextHead(from: &buffer))
        XCTAssertEqual(buffer.readableBytesView.first, 0x81)
    }

    func testKeepAliveFollowsTheVersionAndTheConnectionHeader() throws {
        XCTAssertEqual(try parse("GET / HTTP/1.0\r\n\r\n")?.keepAlive, false)
        XCTAssertEqual(try parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")?.keepAlive, true)
        XCTAssertEqual(try parse("GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n")?.keepAlive, false)
        XCTAssertEqual(try parse("GET / HTTP/1.1\r\n\r\n")?.keepAlive, true)
    }

    func testBodiesAreNoticed() throws {
        XCTAssertEqual(try parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")?.hasBody, false)
        XCTAssertEqual(try parse("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n")?.hasBody, true)
        XCTAssertEqual(try parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")?.hasBody, true)
    }

    func testMalformedHeadsAreRefusedWith400() {
        let malformed = [
            "GARBAGE\r\n\r\n", "GET /\r\n\r\n", "GET / HTTP/1.1 junk\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET /a\u{1}b HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "GET / HTTP/1.1\r\nName : value\r\n\r\n", "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\u{0}c\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n", "GET / HTTP/x.1\r\n\r\n",
        ]
        for text in malformed { XCTAssertEqual(refusal(text)?.status, 400, text.debugDescription) }
    }

    func testOtherHTTPVersionsAreRefusedWith505AndLaterHTTP1AnsweredAs11() throws {
        XCTAssertEqual(refusal("GET / HTTP/9.9\r\n\r\n")?.status, 505)
        XCTAssertEqual(refusal("GET / HTTP/2.0\r\n\r\n")?.status, 505)
        XCTAssertEqual(try parse("GET / HTTP/1.7\r\n\r\n")?.version, "HTTP/1.1")
    }

    func testAnOverlongHeadIsRefusedWith431BeforeItEnds() {
        let filler = String(repeating: "X-Filler: " + String(repeating: "a", count: 100) + "\r\n", count: 20)
        XCTAssertEqual(refusal("GET / HTTP/1.1\r\n" + filler, maxHeadSize: 1024)?.status, 431, "unfinished")
        XCTAssertEqual(refusal("GET / HTTP/1.1\r\n" + filler + "\r\n", maxHeadSize: 1024)?.status, 431, "finished")
    }
}
