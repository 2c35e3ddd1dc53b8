import NIOCore
import NIOEmbedded
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class RedisCodecTests: XCTestCase {
    func testRepliesSplitAcrossReadsBecomeEvents() throws {
        let channel = EmbeddedChannel(handler: PubSubReplyDecoder(headroom: 10))
        let bytes =
            Array("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhel".utf8) + [0xFF]
            + Array("o\r\n+PONG\r\n-ERR nope\r\n".utf8)
        try channel.writeInbound(ByteBuffer(bytes: bytes[..<30]))
        try channel.writeInbound(ByteBuffer(bytes: bytes[30...]))
        XCTAssertEqual(try channel.readInbound(as: PubSubEvent.self), .subscribed(channel: "ch"))
        guard case .message(let name, let payload) = try channel.readInbound(as: PubSubEvent.self) else { return XCTFail("no message") }
        XCTAssertEqual(name, "ch")
        XCTAssertEqual(Array(payload.readableBytesView), [0x68, 0x65, 0x6C, 0xFF, 0x6F], "binary-safe payload")
        XCTAssertEqual(payload.readerIndex, 10, "the headroom asked for, free for a header in front")
        XCTAssertEqual(try channel.readInbound(as: PubSubEvent.self), .pong)
        XCTAssertEqual(try channel.readInbound(as: PubSubEvent.self), .error("ERR nope"))
        _ = try channel.finish()
    }

    /// In subscribed mode Redis answers PING with `*2 pong ""`: an event of its own between messages.
    func testThePongOfSubscribedModeLeavesMessagesWhole() throws {
        let channel = EmbeddedChannel(handler: PubSubReplyDecoder(headroom: 10))
        let bytes = Array("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\na\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nb\r\n".utf8)
        for split in [bytes[..<40], bytes[40..<44], bytes[44...]] { try channel.writeInbound(ByteBuffer(bytes: split)) }
        var events: [String] = []
        while let event = try channel.readInbound(as: PubSubEvent.self) {
            switch event {
            case .message(_, let payload): events.append("message " + String(buffer: payload))
            case .pong: events.append("pong")
            default: events.append("\(event)")
            }
        }
        XCTAssertEqual(events, ["message a", "pong", "message b"])
        _ = try channel.finish()
    }

    func testTheEncodedSizeIsTheEncodingsLength() {
        for command in [[], [""], ["PING"], ["SET", "k", String(repeating: "v", count: 12345)], Array(repeating: "x", count: 10)] {
            let arguments = [[UInt8]](redisArguments: command)
            XCTAssertEqual(RedisCommandFormat.encodedSize(arguments), RedisCommandFormat.encode(arguments).count, "\(command.map(\.count))")
        }
    }

    func testGarbageIsAProtocolErrorAndClosesTheConnection() throws {
        let channel = EmbeddedChannel(handler: PubSubReplyDecoder(headroom: 10))
        XCTAssertThrowsError(try channel.writeInbound(ByteBuffer(string: "?what\r\n")))
        XCTAssertFalse(channel.isActive)
    }

    func testCommandsAreEncodedAsRESPArrays() throws {
        XCTAssertEqual(
            String(decoding: RedisCommandFormat.encode([[UInt8]](redisArguments: ["PUBLISH", "ch", ""])), as: UTF8.self),
            "*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$0\r\n\r\n"
        )
    }

    func testFrameHeaderSizes() {
        XCTAssertEqual(FrameWriter.headerSize(payloadLength: 125), 2)
        XCTAssertEqual(FrameWriter.headerSize(payloadLength: 126), 4)
        XCTAssertEqual(FrameWriter.headerSize(payloadLength: 65536), 10)
    }
}
