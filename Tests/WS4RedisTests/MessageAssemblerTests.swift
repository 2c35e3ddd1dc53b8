import NIOCore
import XCTest

import WS4RedisCompression
@testable import WS4RedisProtocol

/// The assembler on its own, given frame parts as FrameParser hands them over: one event per part.
final class MessageAssemblerTests: XCTestCase {
    private var assembler = MessageAssembler(maxMessageSize: 100)

    private func head(
        _ opcode: Opcode, length: Int, fin: Bool = true, rsv1: Bool = false, rsv2: Bool = false, rsv3: Bool = false, masked: Bool = true
    ) -> FrameHead {
        FrameHead(fin: fin, rsv1: rsv1, rsv2: rsv2, rsv3: rsv3, opcode: opcode, length: length, maskKey: masked ? 0x37FA_213D : nil)
    }

    /// One frame: its head, its payload in `chunks`, its end (no payload part when it is empty, as the parser does).
    private func send(_ opcode: Opcode, _ chunks: [UInt8]..., fin: Bool = true, rsv1: Bool = false) -> [MessageAssembler.Event] {
        send(head(opcode, length: chunks.reduce(0) { $0 + $1.count }, fin: fin, rsv1: rsv1), chunks)
    }

    private func send(_ head: FrameHead, _ chunks: [[UInt8]] = []) -> [MessageAssembler.Event] {
        [assembler.receive(.head(head))] + chunks.map { assembler.receive(.payload(ByteBuffer(bytes: $0))) } + [assembler.receive(.end)]
    }

    /// The failure code of each event (nil for the others): shows which part a failure came at.
    private func codes(_ events: [MessageAssembler.Event]) -> [CloseCode?] {
        events.map { event in
            guard case .failure(let code, _) = event else { return nil }
            return code
        }
    }

    private func text(_ string: String) -> MessageAssembler.Event {
        .message(.text, ByteBuffer(string: string))
    }

    /// `bytes` as one stored (uncompressed) DEFLATE block (RFC 1951 §3.2.4): compressed data whose
    /// inflated form is exactly `bytes`, and which is 5 bytes longer.
    private func stored(_ bytes: [UInt8]) -> [UInt8] {
        let length = UInt16(bytes.count)
        return [0x00, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)] + bytes
    }

    // MARK: single frames

    func testASingleTextFrameIsAMessageAtItsEnd() {
        XCTAssertEqual(send(.text, Array("héllo".utf8)), [.none, .none, text("héllo")])
    }

    func testASingleBinaryFrameIsAMessageAndItsBytesAreNotCheckedAsText() {
        XCTAssertEqual(send(.binary, [0xFF, 0xC0, 0x00]), [.none, .none, .message(.binary, ByteBuffer(bytes: [0xFF, 0xC0, 0x00]))])
    }

    func testAnEmptyFrameIsAnEmptyMessage() {
        XCTAssertEqual(send(.text), [.none, text("")])
        XCTAssertEqual(send(.binary), [.none, .message(.binary, ByteBuffer())])
    }

    func testAFrameInSeveralChunksIsOneMessage() {
        XCTAssertEqual(send(.binary, [1, 2], [3], [4, 5]), [.none, .none, .none, .none, .message(.binary, ByteBuffer(bytes: [1, 2, 3, 4, 5]))])
    }

    func testAOneChunkMessageIsTheChunkItselfNotACopy() {
        let chunk = ByteBuffer(string: "shared")
        XCTAssertEqual(assembler.receive(.head(head(.text, length: 6))), .none)
        XCTAssertEqual(assembler.receive(.payload(chunk)), .none)
        guard case .message(_, let message) = assembler.receive(.end) else { return XCTFail("message expected") }
        XCTAssertEqual(message.withUnsafeReadableBytes { $0.baseAddress }, chunk.withUnsafeReadableBytes { $0.baseAddress })
    }

    func testMessagesFollowOneAnother() {
        XCTAssertEqual(send(.text, Array("one".utf8)).last, text("one"))
        XCTAssertEqual(send(.binary, [2]).last, .message(.binary, ByteBuffer(bytes: [2])))
        XCTAssertEqual(send(.text, Array("three".utf8)).last, text("three"))
    }

    // MARK: fragmented messages

    func testFragmentedTextIsOneMessageAtTheLastFragment() {
        XCTAssertEqual(send(.text, Array("Hel".utf8), fin: false), [.none, .none, .none])
        XCTAssertEqual(send(.continuation, Array("l".utf8), fin: false), [.none, .none, .none])
        XCTAssertEqual(send(.continuation, Array("o".utf8)), [.none, .none, text("Hello")])
    }

    func testFragmentedBinaryKeepsItsOpcode() {
        _ = send(.binary, [1, 2], fin: false)
        XCTAssertEqual(send(.continuation, [3]).last, .message(.binary, ByteBuffer(bytes: [1, 2, 3])))
    }

    func testEmptyFragmentsAddNothing() {
        _ = send(.text, fin: false)
        _ = send(.continuation, Array("ab".utf8), fin: false)
        XCTAssertEqual(send(.continuation), [.none, text("ab")])
    }

    func testAContinuationWithoutAMessageIsAProtocolError() {
        XCTAssertEqual(codes(send(.continuation, Array("x".utf8))), [.protocolError, nil, nil])
    }

    func testAContinuationAfterTheLastFragmentIsAProtocolError() {
        _ = send(.text, Array("a".utf8), fin: false)
        XCTAssertEqual(send(.continuation, Array("b".utf8)).last, text("ab"))
        XCTAssertEqual(codes(send(.continuation, Array("c".utf8))), [.protocolError, nil, nil])
    }

    func testANewDataFrameInsideAFragmentedMessageIsAProtocolError() {
        for opcode in [Opcode.text, .binary] {
            assembler = MessageAssembler(maxMessageSize: 100)
            _ = send(.text, Array("a".utf8), fin: false)
            XCTAssertEqual(codes(send(opcode, Array("b".utf8))), [.protocolError, nil, nil], "\(opcode)")
        }
    }

    // MARK: control frames

    func testPingCarriesItsPayloadJoinedFromItsChunks() {
        XCTAssertEqual(send(.ping, Array("ab".utf8), Array("cd".utf8)), [.none, .none, .none, .ping(ByteBuffer(string: "abcd"))])
        XCTAssertEqual(send(.ping), [.none, .ping(ByteBuffer())])
    }

    func testPongIsReportedWithoutItsPayload() {
        XCTAssertEqual(send(.pong, Array("ignored".utf8)), [.none, .none, .pong])
    }

    func testControlFramesInsideAFragmentedMessageLeaveItIntact() {
        _ = send(.text, Array("Hel".utf8), fin: false)
        XCTAssertEqual(send(.ping, Array("p".utf8)).last, .ping(ByteBuffer(string: "p")))
        XCTAssertEqual(send(.pong).last, .pong)
        XCTAssertEqual(send(.continuation, Array("lo".utf8)).last, text("Hello"))
    }

    func testACloseInsideAFragmentedMessageIsReportedAtOnce() {
        _ = send(.text, Array("unfinished".utf8), fin: false)
        XCTAssertEqual(send(.connectionClose, [0x03, 0xE8]).last, .close(.normalClosure))
    }

    func testAFragmentedControlFrameIsAProtocolError() {
        for opcode in [Opcode.ping, .pong, .connectionClose] {
            assembler = MessageAssembler(maxMessageSize: 100)
            XCTAssertEqual(codes(send(opcode, [0x03, 0xE8], fin: false)), [.protocolError, nil, nil], "\(opcode)")
        }
    }

    func testAControlFrameMayCarry125BytesNotMore() {
        XCTAssertEqual(send(.ping, [UInt8](repeating: 0x70, count: 125)).last, .ping(ByteBuffer(bytes: [UInt8](repeating: 0x70, count: 125))))
        XCTAssertEqual(codes(send(.ping, [UInt8](repeating: 0x70, count: 126))), [.protocolError, nil, nil])
    }

    func testAControlFrameDoesNotCountTowardsTheMessageSize() {
        assembler = MessageAssembler(maxMessageSize: 10)
        _ = send(.binary, [UInt8](repeating: 1, count: 6), fin: false)
        XCTAssertEqual(send(.ping, [UInt8](repeating: 2, count: 100)).last, .ping(ByteBuffer(bytes: [UInt8](repeating: 2, count: 100))))
        XCTAssertEqual(send(.continuation, [UInt8](repeating: 1, count: 4)).last, .message(.binary, ByteBuffer(bytes: [UInt8](repeating: 1, count: 10))))
    }

    // MARK: close frames

    func testACloseWithoutPayloadHasNoCode() {
        XCTAssertEqual(send(.connectionClose), [.none, .close(nil)])
    }

    func testACloseWithAOneBytePayloadIsAProtocolError() {
        XCTAssertEqual(codes(send(.connectionClose, [0x03])), [nil, nil, .protocolError])
    }

    func testValidCloseCodesAreReported() {
        for code: UInt16 in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999] {
            XCTAssertEqual(send(.connectionClose, [UInt8(code >> 8), UInt8(code & 0xFF)]).last, .close(CloseCode(code)), "\(code)")
        }
    }

    func testCloseCodesThatMustNotBeSentAreProtocolErrors() {
        for code: UInt16 in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assembler = MessageAssembler(maxMessageSize: 100)
            XCTAssertEqual(codes(send(.connectionClose, [UInt8(code >> 8), UInt8(code & 0xFF)])), [nil, nil, .protocolError], "\(code)")
        }
    }

    func testACloseReasonMustBeUTF8EvenWhenSplitAcrossChunks() {
        XCTAssertEqual(send(.connectionClose, [0x0F, 0xA0, 0xE2], [0x82, 0xAC]).last, .close(CloseCode(4000)), "4000 and '€' in two chunks")
        assembler = MessageAssembler(maxMessageSize: 100)
        XCTAssertEqual(codes(send(.connectionClose, [0x03, 0xE8, 0xE2, 0x82])), [nil, nil, .dataInconsistentWithMessage], "a reason ending inside a code point")
        assembler = MessageAssembler(maxMessageSize: 100)
        XCTAssertEqual(codes(send(.connectionClose, [0x03, 0xE8, 0xFF])), [nil, nil, .dataInconsistentWithMessage])
    }

    // MARK: header checks

    func testUnmaskedFramesAreProtocolErrors() {
        for opcode in [Opcode.text, .ping] {
            assembler = MessageAssembler(maxMessageSize: 100)
            XCTAssertEqual(codes(send(head(opcode, length: 1, masked: false), [[0x61]])), [.protocolError, nil, nil], "\(opcode)")
        }
    }

    func testReservedBitsTwoAndThreeAreProtocolErrorsEvenWithDeflate() {
        for (rsv2, rsv3) in [(true, false), (false, true)] {
            assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
            XCTAssertEqual(codes(send(head(.text, length: 1, rsv2: rsv2, rsv3: rsv3), [[0x61]])), [.protocolError, nil, nil])
        }
    }

    func testRSV1WithoutDeflateIsAProtocolError() {
        XCTAssertEqual(codes(send(.text, [0x61], rsv1: true)), [.protocolError, nil, nil])
    }

    func testRSV1OnAContinuationOrAControlFrameIsAProtocolError() {
        assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
        _ = send(.text, Array(stored(Array("ab".utf8)).prefix(3)), fin: false, rsv1: true)
        XCTAssertEqual(codes(send(.continuation, Array(stored(Array("ab".utf8)).dropFirst(3)), rsv1: true)), [.protocolError, nil, nil])
        assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
        XCTAssertEqual(codes(send(.ping, rsv1: true)), [.protocolError, nil])
    }

    func testReservedOpcodesAreProtocolErrors() {
        for raw: UInt8 in [0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assembler = MessageAssembler(maxMessageSize: 100)
            XCTAssertEqual(codes(send(Opcode(encoded: raw)!)), [.protocolError, nil], "opcode \(raw)")
        }
    }

    func testNothingIsReportedAfterAFailure() {
        XCTAssertEqual(codes(send(.continuation)), [.protocolError, nil])
        XCTAssertEqual(send(.text, Array("fine".utf8)), [.none, .none, .none])
        XCTAssertEqual(send(.ping), [.none, .none])
        XCTAssertEqual(send(.connectionClose), [.none, .none])
    }

    func testPayloadAndEndOutsideAFrameAreIgnored() {
        XCTAssertEqual(assembler.receive(.payload(ByteBuffer(string: "stray"))), .none)
        XCTAssertEqual(assembler.receive(.end), .none)
        XCTAssertEqual(send(.text, Array("ok".utf8)).last, text("ok"), "the stray parts neither failed nor joined the next message")
    }

    // MARK: the message size limit

    func testAMessageOfExactlyTheLimitPassesOneByteMoreFailsAtTheHead() {
        assembler = MessageAssembler(maxMessageSize: 10)
        XCTAssertEqual(send(.binary, [UInt8](repeating: 1, count: 10)).last, .message(.binary, ByteBuffer(bytes: [UInt8](repeating: 1, count: 10))))
        XCTAssertEqual(codes(send(.binary, [UInt8](repeating: 1, count: 11))), [.messageTooLarge, nil, nil])
    }

    func testTheLimitCountsEveryFragment() {
        assembler = MessageAssembler(maxMessageSize: 10)
        _ = send(.text, Array("123456".utf8), fin: false)
        XCTAssertEqual(send(.continuation, Array("7890".utf8)).last, text("1234567890"))
        _ = send(.text, Array("123456".utf8), fin: false)
        XCTAssertEqual(codes(send(.continuation, Array("78901".utf8))), [.messageTooLarge, nil, nil])
    }

    func testTheLimitIsPerMessage() {
        assembler = MessageAssembler(maxMessageSize: 10)
        for _ in 0..<3 { XCTAssertEqual(send(.text, Array("1234567890".utf8)).last, text("1234567890")) }
    }

    // MARK: UTF-8 across fragments

    func testACodePointSplitAcrossFragmentsIsValid() {
        _ = send(.text, [0x61, 0xE2], fin: false)
        XCTAssertEqual(send(.continuation, [0x82], fin: false), [.none, .none, .none], "a fragment may end inside a code point")
        XCTAssertEqual(send(.continuation, [0xAC]).last, text("a€"))
    }

    func testACodePointSplitAcrossChunksOfOneFrameIsValid() {
        XCTAssertEqual(send(.text, [0xF0, 0x9F], [0x98], [0x80]).last, text("😀"))
    }

    func testInvalidTextFailsAtTheChunkThatHoldsIt() {
        XCTAssertEqual(codes(send(.text, [0x61], [0xC0, 0x80], [0x62])), [nil, nil, .dataInconsistentWithMessage, nil, nil])
    }

    func testAContinuationThatBreaksACodePointFailsAtOnce() {
        _ = send(.text, [0xE2, 0x82], fin: false)
        XCTAssertEqual(codes(send(.continuation, [0x41], fin: false)), [nil, .dataInconsistentWithMessage, nil])
    }

    func testTextEndingInsideACodePointFailsAtItsEnd() {
        XCTAssertEqual(codes(send(.text, [0x61, 0xE2, 0x82])), [nil, nil, .dataInconsistentWithMessage])
        assembler = MessageAssembler(maxMessageSize: 100)
        _ = send(.text, [0xF0, 0x9F, 0x98], fin: false)
        XCTAssertEqual(codes(send(.continuation)), [nil, .dataInconsistentWithMessage], "an empty last fragment does not complete it")
    }

    func testSequencesThatAreNotUTF8Fail() {
        let invalid: [String: [UInt8]] = [
            "overlong NUL": [0xC0, 0x80], "overlong three-byte": [0xE0, 0x80, 0x80], "surrogate": [0xED, 0xA0, 0x80],
            "above U+10FFFF": [0xF4, 0x90, 0x80, 0x80], "F5 lead byte": [0xF5, 0x80, 0x80, 0x80], "lone continuation": [0x80],
        ]
        for (name, bytes) in invalid {
            assembler = MessageAssembler(maxMessageSize: 100)
            _ = send(.text, [0x61], fin: false)
            XCTAssertEqual(codes(send(.continuation, bytes)).compactMap { $0 }, [.dataInconsistentWithMessage], name)
        }
    }

    func testEachTextMessageIsValidatedOnItsOwn() {
        XCTAssertEqual(send(.binary, [0xE2, 0x82]).last, .message(.binary, ByteBuffer(bytes: [0xE2, 0x82])))
        XCTAssertEqual(codes(send(.text, [0xAC])), [nil, .dataInconsistentWithMessage, nil], "a binary message's bytes do not start a code point")
    }

    // MARK: compressed messages (permessage-deflate)

    func testACompressedMessageIsInflated() {
        assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
        // RFC 7692 §7.2.3.1: "Hello" with one compressed DEFLATE block, the empty block at its end removed.
        XCTAssertEqual(send(.text, [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00], rsv1: true).last, text("Hello"))
    }

    func testTheWindowIsKeptAcrossMessagesForClientsWithContextTakeover() {
        assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
        XCTAssertEqual(send(.text, [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00], rsv1: true).last, text("Hello"))
        // RFC 7692 §7.2.3.2: the second "Hello" only refers back to the first.
        XCTAssertEqual(send(.text, [0xF2, 0x00, 0x11, 0x00, 0x00], rsv1: true).last, text("Hello"))
    }

    func testAMessageAfterOneWithAFinalDeflateBlockIsInflatedToo() {
        assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
        // RFC 7692 §7.2.3.4: a sender may end a message with a BFINAL block; its next message starts a new DEFLATE stream.
        XCTAssertEqual(send(.text, [0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00], rsv1: true).last, text("Hello"))
        XCTAssertEqual(send(.text, [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00], rsv1: true).last, text("Hello"))
    }

    func testACompressedMessageMayBeFragmentedAnywhere() {
        assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
        let compressed = stored(Array("fragmented €".utf8))
        XCTAssertEqual(send(.text, Array(compressed.prefix(2)), fin: false, rsv1: true), [.none, .none, .none])
        XCTAssertEqual(send(.continuation, Array(compressed[2..<18]), fin: false), [.none, .none, .none], "ends inside the €")
        XCTAssertEqual(send(.continuation, Array(compressed.dropFirst(18))).last, text("fragmented €"))
    }

    func testAnEmptyCompressedMessageIsEmpty() {
        assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
        XCTAssertEqual(send(.binary, rsv1: true), [.none, .message(.binary, ByteBuffer())])
    }

    func testUncompressedMessagesStillPassWithDeflate() {
        assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
        XCTAssertEqual(send(.text, stored(Array("x".utf8)), rsv1: true).last, text("x"))
        XCTAssertEqual(send(.text, Array("plain".utf8)).last, text("plain"))
    }

    func testTheLimitAppliesToTheInflatedSizeToTheByte() {
        assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
        let limit = [UInt8](repeating: 0x61, count: 100)
        XCTAssertEqual(send(.text, stored(limit), rsv1: true).last, text(String(repeating: "a", count: 100)), "105 compressed bytes: only the inflated size counts")
        XCTAssertEqual(codes(send(.text, stored(limit + [0x61]), rsv1: true)).compactMap { $0 }, [.messageTooLarge])
    }

    func testInvalidCompressedDataIs1007() {
        assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
        XCTAssertEqual(codes(send(.binary, [0xFF], rsv1: true)).compactMap { $0 }, [.dataInconsistentWithMessage], "block type 3 is reserved")
    }

    func testInflatedTextIsValidated() {
        assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
        XCTAssertEqual(codes(send(.text, stored([0x61, 0xC0, 0x80]), rsv1: true)).compactMap { $0 }, [.dataInconsistentWithMessage])
        assembler = MessageAssembler(maxMessageSize: 100, inflater: MessageInflater.self)
        XCTAssertEqual(codes(send(.text, stored([0x61, 0xE2, 0x82]), rsv1: true)), [nil, nil, .dataInconsistentWithMessage], "ends inside a code point")
    }
}
