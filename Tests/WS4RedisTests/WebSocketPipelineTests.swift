import Logging
import NIOCore
import NIOEmbedded
import XCTest

@testable import WS4Redis
import WS4RedisCompression
@testable import WS4RedisProtocol

/// The websocket pipeline on an EmbeddedChannel: client frames in, server frames out.
final class WebSocketPipelineTests: XCTestCase {
    var channel: EmbeddedChannel!
    var hub: LoopHub!
    var multiplexer: ChannelMultiplexer!
    var counters: ServerCounters!
    var environment: ConnectionEnvironment!

    var redis: RedisCommandClient!

    /// A connection on an EmbeddedChannel; its hub's Redis connections are never started, so the
    /// persisted-message lookup fails at once and live messages flow right away.
    func makeChannel(
        endpoint: WebSocketEndpoint, flags: ChannelFlags = [], maxMessageSize: Int = 1 << 20, deflate: DeflateParameters? = nil,
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) throws {
        channel = EmbeddedChannel()
        counters = ServerCounters()
        let logger = Logger(label: "test")
        var configuration = ServerConfiguration()
        configuration.maxMessageSize = maxMessageSize
        configure(&configuration)
        multiplexer = ChannelMultiplexer(eventLoop: channel.embeddedEventLoop, hubCount: 1, sharded: false, counters: counters, logger: logger)
        redis = try RedisCommandClient(endpoint: configuration.redis, eventLoop: channel.embeddedEventLoop, logger: logger, options: .defaults)
        hub = LoopHub(
            eventLoop: channel.embeddedEventLoop, index: 0, counters: counters, logger: logger, compressionThreshold: configuration.compressionThreshold,
            multiplexer: multiplexer, publisher: ChannelPublisher(commands: redis, cluster: false, expireSeconds: configuration.expireSeconds)
        )
        multiplexer.attach([hub])
        environment = ConnectionEnvironment(settings: ConnectionSettings(configuration), counters: counters, logger: logger, subscriptions: hub)
        let handshake = AcceptedHandshake(endpoint: endpoint, flags: flags, identity: .anonymous, deflate: deflate, responseHeaders: [], remoteAddress: nil)
        let plan = ConnectionPlan(handshake, names: ChannelNames(keyPrefix: ""))
        try channel.pipeline.syncOperations.addHandler(WebSocketConnectionHandler(plan: plan, environment: environment))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    /// Connects the multiplexer to a stand-in Redis channel and confirms the subscription as Redis
    /// would, so that held-back delivery ends.
    func confirmSubscriptions() throws {
        channel.embeddedEventLoop.run()
        let redisChannel = EmbeddedChannel(handler: MessageToByteHandler(RedisCommandEncoder()), loop: channel.embeddedEventLoop)
        multiplexer.connected(PubSubConnection(redisChannel, sharded: false), shard: 0)
        let subscribe = try redisChannel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }
        XCTAssertEqual(subscribe, "*2\r\n$9\r\nSUBSCRIBE\r\n$11\r\nbroadcast:f\r\n")
        multiplexer.received(.subscribed(channel: "broadcast:f"))
        // As the subscriber connection does at the end of each read.
        multiplexer.readComplete()
        channel.embeddedEventLoop.run()
    }

    func frame(_ text: String) -> ByteBuffer {
        var payload = ByteBufferAllocator().buffer(capacity: 32)
        payload.moveWriterIndex(forwardBy: FrameWriter.maxHeaderSize)
        payload.moveReaderIndex(forwardBy: FrameWriter.maxHeaderSize)
        payload.writeString(text)
        FrameWriter.frameInPlace(&payload, opcode: .text)
        return payload
    }

    override func tearDown() {
        _ = try? channel?.finish()
    }

    /// A client frame as RFC 6455 §5.2 lays it out, masked unless told otherwise.
    func clientFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv1: Bool = false) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode)
        let maskBit: UInt8 = masked ? 0x80 : 0
        switch payload.count {
        case ..<126: buffer.writeInteger(maskBit | UInt8(payload.count))
        case ..<65536:
            buffer.writeInteger(maskBit | 126)
            buffer.writeInteger(UInt16(payload.count))
        default:
            buffer.writeInteger(maskBit | 127)
            buffer.writeInteger(UInt64(payload.count))
        }
        guard masked else {
            buffer.writeBytes(payload)
            return buffer
        }
        let key: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
        buffer.writeBytes(key)
        buffer.writeBytes(payload.enumerated().map { $1 ^ key[$0 % 4] })
        return buffer
    }

    func readFrame() throws -> (opcode: UInt8, payload: [UInt8])? {
        guard var buffer = try channel.readOutbound(as: ByteBuffer.self) else { return nil }
        let first = buffer.readInteger(as: UInt8.self)!
        var length = Int(buffer.readInteger(as: UInt8.self)! & 0x7F)
        if length == 126 { length = Int(buffer.readInteger(as: UInt16.self)!) } else if length == 127 { length = Int(buffer.readInteger(as: UInt64.self)!) }
        XCTAssertEqual(first & 0x80, 0x80, "server frames are never fragmented")
        XCTAssertEqual(buffer.readableBytes, length)
        return (first & 0x0F, buffer.readBytes(length: length)!)
    }

    func closeCode(_ frame: (opcode: UInt8, payload: [UInt8])?) -> UInt16? {
        guard let frame, frame.opcode == 0x8, frame.payload.count >= 2 else { return nil }
        return UInt16(frame.payload[0]) << 8 | UInt16(frame.payload[1])
    }

    func testEchoKeepsTheOpcode() throws {
        try makeChannel(endpoint: .echo)
        try channel.writeInbound(clientFrame(0x1, Array("héllo".utf8)))
        try channel.writeInbound(clientFrame(0x2, [0xFF, 0x00]))
        let text = try readFrame()
        XCTAssertEqual(text?.opcode, 0x1)
        XCTAssertEqual(text?.payload, Array("héllo".utf8))
        let binary = try readFrame()
        XCTAssertEqual(binary?.opcode, 0x2)
        XCTAssertEqual(binary?.payload, [0xFF, 0x00])
    }

    func testFragmentsAreReassembledAroundControlFrames() throws {
        try makeChannel(endpoint: .echo)
        try channel.writeInbound(clientFrame(0x1, Array("Hel".utf8), fin: false))
        try channel.writeInbound(clientFrame(0x9, Array("p".utf8)))
        try channel.writeInbound(clientFrame(0x0, Array("lo".utf8)))
        let pong = try readFrame()
        XCTAssertEqual(pong?.opcode, 0xA)
        XCTAssertEqual(pong?.payload, Array("p".utf8))
        let message = try readFrame()
        XCTAssertEqual(message?.payload, Array("Hello".utf8))
    }

    func testLargeMessageUses64BitLength() throws {
        try makeChannel(endpoint: .echo)
        let payload = [UInt8](repeating: 0x61, count: 70_000)
        try channel.writeInbound(clientFrame(0x1, payload))
        XCTAssertEqual(try readFrame()?.payload.count, 70_000)
    }

    func testUnmaskedFrameIsAProtocolError() throws {
        try makeChannel(endpoint: .echo)
        try channel.writeInbound(clientFrame(0x1, Array("x".utf8), masked: false))
        XCTAssertEqual(closeCode(try readFrame()), 1002)
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
    }

    func testInvalidUTF8FailsFastWith1007() throws {
        try makeChannel(endpoint: .echo)
        try channel.writeInbound(clientFrame(0x1, [0x61, 0xC0, 0x80], fin: false))
        XCTAssertEqual(closeCode(try readFrame()), 1007)
    }

    func testTextEndingInsideACodePointFails() throws {
        try makeChannel(endpoint: .echo)
        try channel.writeInbound(clientFrame(0x1, [0xE2, 0x82]))
        XCTAssertEqual(closeCode(try readFrame()), 1007)
    }

    func testOversizedMessageGets1009() throws {
        try makeChannel(endpoint: .echo, maxMessageSize: 10)
        try channel.writeInbound(clientFrame(0x2, Array(repeating: 1, count: 6), fin: false))
        try channel.writeInbound(clientFrame(0x0, Array(repeating: 1, count: 6)))
        XCTAssertEqual(closeCode(try readFrame()), 1009)
    }

    func testContinuationWithoutStartAndReservedOpcodeAreProtocolErrors() throws {
        try makeChannel(endpoint: .echo)
        try channel.writeInbound(clientFrame(0x0, Array("x".utf8)))
        XCTAssertEqual(closeCode(try readFrame()), 1002)
        try makeChannel(endpoint: .echo)
        try channel.writeInbound(clientFrame(0x3, []))
        XCTAssertEqual(closeCode(try readFrame()), 1002)
    }

    func testClientCloseIsAnsweredWithItsCodeThenTheSocketCloses() throws {
        try makeChannel(endpoint: .echo)
        try channel.writeInbound(clientFrame(0x8, [0x03, 0xE8] + Array("bye".utf8)))
        XCTAssertEqual(closeCode(try readFrame()), 1000)
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
    }

    func testInvalidCloseCodeIsAProtocolError() throws {
        try makeChannel(endpoint: .echo)
        try channel.writeInbound(clientFrame(0x8, [0x03, 0xED]))  // 1005 must not be sent
        XCTAssertEqual(closeCode(try readFrame()), 1002)
    }

    /// Where a buffer's bytes are: equal for buffers that share one storage.
    func storageAddress(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) }
    }

    func testFanoutWritesTheSameFrameBufferToEverySubscriber() throws {
        try makeChannel(endpoint: .facility("f"), flags: .subscribeBroadcast)
        try confirmSubscriptions()
        let others = [try makeSecondSubscriber(), try makeSecondSubscriber()]
        let payload = frame("pushed")
        hub.deliver([FanoutMessage(channel: "broadcast:f", frame: payload), FanoutMessage(channel: "broadcast:other", frame: payload)])
        let written = try ([channel!] + others).map { try XCTUnwrap(try $0.readOutbound(as: ByteBuffer.self)) }
        for (index, buffer) in written.enumerated() {
            XCTAssertEqual(buffer, payload, "subscriber \(index)")
            XCTAssertEqual(storageAddress(buffer), storageAddress(payload), "subscriber \(index) got a copy")
        }
        for subscriber in [channel!] + others {
            XCTAssertNil(try subscriber.readOutbound(as: ByteBuffer.self), "a message on another channel is not delivered")
        }
        XCTAssertEqual(counters.messagesOut.current, 3)
        for other in others { _ = try other.finish() }
    }

    func testServerShutdownSends1001() throws {
        try makeChannel(endpoint: .echo)
        _ = hub.closeAll(code: .goingAway, reason: "bye", timeout: .seconds(1))
        XCTAssertEqual(closeCode(try readFrame()), 1001)
    }

    func testQuietClientIsPingedThenClosedWhenItDoesNotAnswer() throws {
        try makeChannel(endpoint: .echo)
        hub.livenessTick()  // traffic flag from the start
        hub.livenessTick()
        XCTAssertEqual(try readFrame()?.opcode, 0x9)
        hub.livenessTick()
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
    }

    func testAnsweredPingKeepsTheClient() throws {
        try makeChannel(endpoint: .echo)
        hub.livenessTick()
        hub.livenessTick()
        XCTAssertEqual(try readFrame()?.opcode, 0x9)
        try channel.writeInbound(clientFrame(0xA, []))
        hub.livenessTick()
        XCTAssertTrue(channel.isActive)
    }

    func testLiveMessagesWaitForTheSubscriptionAndPersistedLookup() throws {
        try makeChannel(endpoint: .facility("f"), flags: .subscribeBroadcast)
        hub.deliver([FanoutMessage(channel: "broadcast:f", frame: frame("early"))])
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "held back until the persisted messages are out")
        try confirmSubscriptions()
        XCTAssertEqual(try readFrame()?.payload, Array("early".utf8))
    }

    /// A second connection on the same channel of one loop.
    func makeSecondSubscriber() throws -> EmbeddedChannel {
        let second = EmbeddedChannel(loop: channel.embeddedEventLoop)
        let handshake = AcceptedHandshake(endpoint: .facility("f"), flags: .subscribeBroadcast, identity: .anonymous, deflate: nil, responseHeaders: [], remoteAddress: nil)
        try second.pipeline.syncOperations.addHandler(WebSocketConnectionHandler(plan: ConnectionPlan(handshake, names: ChannelNames(keyPrefix: "")), environment: environment))
        try second.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        channel.embeddedEventLoop.run()
        return second
    }

    func testASecondSubscriberOfAConfirmedChannelNeedsNoNewSubscribe() throws {
        try makeChannel(endpoint: .facility("f"), flags: .subscribeBroadcast)
        try confirmSubscriptions()
        let second = try makeSecondSubscriber()
        hub.deliver([FanoutMessage(channel: "broadcast:f", frame: frame("live"))])
        XCTAssertEqual(try readFrame()?.payload, Array("live".utf8))
        XCTAssertNotNil(try second.readOutbound(as: ByteBuffer.self), "confirmed at once: not held back")
        _ = try second.finish()
    }

    func testAfterRedisIsLostNewSubscribersWaitForTheResubscription() throws {
        try makeChannel(endpoint: .facility("f"), flags: .subscribeBroadcast)
        try confirmSubscriptions()
        multiplexer.connectionLost(shard: 0)
        channel.embeddedEventLoop.run()
        let second = try makeSecondSubscriber()
        hub.deliver([FanoutMessage(channel: "broadcast:f", frame: frame("during"))])
        XCTAssertEqual(try readFrame()?.payload, Array("during".utf8), "the first subscriber keeps getting messages")
        XCTAssertNil(try second.readOutbound(as: ByteBuffer.self), "held back until Redis confirms again")
        try confirmSubscriptions()
        XCTAssertNotNil(try second.readOutbound(as: ByteBuffer.self), "released once confirmed")
        _ = try second.finish()
    }

    // Without publish flags: this hub's Redis is never connected, so a publication would fail and close.
    func testOwnMessageIsNotEchoedWithoutTheEchoFlag() throws {
        try makeChannel(endpoint: .facility("f"), flags: [.subscribeBroadcast])
        try confirmSubscriptions()
        try channel.writeInbound(clientFrame(0x1, Array("mine".utf8)))
        hub.deliver([FanoutMessage(channel: "broadcast:f", frame: frame("mine")), FanoutMessage(channel: "broadcast:f", frame: frame("theirs"))])
        XCTAssertEqual(try readFrame()?.payload, Array("theirs".utf8))
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
    }

    func testOwnMessageIsEchoedWithTheEchoFlag() throws {
        try makeChannel(endpoint: .facility("f"), flags: [.subscribeBroadcast, .echo])
        try confirmSubscriptions()
        try channel.writeInbound(clientFrame(0x1, Array("mine".utf8)))
        hub.deliver([FanoutMessage(channel: "broadcast:f", frame: frame("mine"))])
        XCTAssertEqual(try readFrame()?.payload, Array("mine".utf8))
    }

    func testHeartbeatGoesToIdleConnectionsOnlyAndIsSwallowedWhenReceived() throws {
        try makeChannel(endpoint: .facility("f"), flags: [.subscribeBroadcast]) { $0.heartbeat = "--hb--" }
        try confirmSubscriptions()
        let heartbeat = FrameWriter.frame(opcode: .text, payload: ByteBuffer(string: "--hb--"), allocator: ByteBufferAllocator())
        let ticksPerInterval = Int(ConnectionSettings.heartbeatTicksPerInterval)
        hub.deliver([FanoutMessage(channel: "broadcast:f", frame: frame("busy"))])
        XCTAssertEqual(try readFrame()?.payload, Array("busy".utf8))
        for _ in 0..<ticksPerInterval { hub.heartbeatTick(heartbeat) }
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "a whole interval has not passed since the last frame")
        hub.heartbeatTick(heartbeat)
        XCTAssertEqual(try readFrame()?.payload, Array("--hb--".utf8), "due one tick past the interval")
        for _ in 0..<ticksPerInterval { hub.heartbeatTick(heartbeat) }
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "the heartbeat itself counts as sent")
        hub.heartbeatTick(heartbeat)
        XCTAssertEqual(try readFrame()?.payload, Array("--hb--".utf8))
        try channel.writeInbound(clientFrame(0x1, Array("--hb--".utf8)))
        XCTAssertEqual(counters.clientMessagesIn.current, 0, "a received heartbeat is not a message")
        try channel.writeInbound(clientFrame(0x1, Array("hello".utf8)))
        XCTAssertEqual(counters.clientMessagesIn.current, 1)
    }

    func testAClientOverItsMessageRateIsClosedWith1008AndNothingMoreIsTaken() throws {
        try makeChannel(endpoint: .facility("f"), flags: [.subscribeBroadcast]) {
            $0.clientMessageRate = 1
            $0.clientMessageBurst = 3
        }
        try confirmSubscriptions()
        for index in 0..<10 { try channel.writeInbound(clientFrame(0x1, Array("m\(index)".utf8))) }
        let close = try readFrame()
        XCTAssertEqual(closeCode(close), 1008)
        XCTAssertTrue(String(decoding: close?.payload.dropFirst(2) ?? [], as: UTF8.self).contains("messages per second"))
        XCTAssertEqual(counters.clientMessagesIn.current, 4, "the burst and the first message pass; what follows the close is not taken")
        XCTAssertEqual(counters.rateLimitedCloses.current, 1)
    }

    func testAClientOverItsByteRateIsClosedWith1008() throws {
        try makeChannel(endpoint: .facility("f"), flags: [.subscribeBroadcast], maxMessageSize: 1000) {
            $0.clientByteRate = 100
            $0.clientByteBurst = 1000
        }
        try confirmSubscriptions()
        try channel.writeInbound(clientFrame(0x1, [UInt8](repeating: 0x61, count: 900)))
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "within the burst")
        try channel.writeInbound(clientFrame(0x1, [UInt8](repeating: 0x61, count: 900)))
        XCTAssertEqual(closeCode(try readFrame()), 1008)
    }

    func testTheByteBurstIsAtLeastTheLargestMessage() throws {
        try makeChannel(endpoint: .facility("f"), flags: [.subscribeBroadcast], maxMessageSize: 2000) {
            $0.clientByteRate = 100
            $0.clientByteBurst = 10
        }
        try confirmSubscriptions()
        try channel.writeInbound(clientFrame(0x1, [UInt8](repeating: 0x61, count: 2000)))
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "a message of max_message_size passes on a fresh allowance")
        XCTAssertEqual(counters.clientMessagesIn.current, 1)
    }

    func testTheEchoEndpointHasNoRateLimit() throws {
        try makeChannel(endpoint: .echo) {
            $0.clientMessageRate = 1
            $0.clientMessageBurst = 1
        }
        for _ in 0..<5 { try channel.writeInbound(clientFrame(0x1, Array("x".utf8))) }
        for _ in 0..<5 { XCTAssertEqual(try readFrame()?.payload, Array("x".utf8)) }
    }

    func testAMessageRedisDoesNotTakeClosesItsSenderWith1013() throws {
        try makeChannel(endpoint: .facility("f"), flags: [.subscribeBroadcast, .publishBroadcast])
        try confirmSubscriptions()
        try channel.writeInbound(clientFrame(0x1, Array("lost?".utf8)))
        channel.embeddedEventLoop.run()
        let close = try readFrame()
        XCTAssertEqual(closeCode(close), 1013, "Redis is not connected: the sender is told")
        XCTAssertTrue(String(decoding: close?.payload.dropFirst(2) ?? [], as: UTF8.self).contains("may not have been published"))
        XCTAssertEqual(counters.publishFailures.current, 1)
    }

    func testWhatWaitsForRedisIsBoundedInBytes() throws {
        try makeChannel(endpoint: .facility("f"), flags: [.subscribeBroadcast, .publishBroadcast], maxMessageSize: 100)
        try channel.writeInbound(clientFrame(0x1, [UInt8](repeating: 0x61, count: 60)))
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "waits for the subscription to be confirmed")
        try channel.writeInbound(clientFrame(0x1, [UInt8](repeating: 0x62, count: 60)))
        XCTAssertEqual(closeCode(try readFrame()), 1013, "more than max_message_size bytes would wait")
    }

    func testLiveMessagesHeldForTheStoredOnesAreBoundedInBytes() throws {
        try makeChannel(endpoint: .facility("f"), flags: .subscribeBroadcast) { $0.maxOutboundBytes = 100 }
        channel.embeddedEventLoop.run()
        let big = frame(String(repeating: "z", count: 60))
        hub.deliver([FanoutMessage(channel: "broadcast:f", frame: big)])
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "held back until the stored messages are fetched")
        hub.deliver([FanoutMessage(channel: "broadcast:f", frame: big)])
        XCTAssertEqual(closeCode(try readFrame()), 1013, "past max_outbound_bytes held back, the client is told")
    }

    func testSaturatedClientIsClosedByDefaultWhenMoreIsDue() throws {
        try makeChannel(endpoint: .facility("f"), flags: .subscribeBroadcast)
        try confirmSubscriptions()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.run()
        XCTAssertTrue(channel.isActive, "one large frame over the limit is not yet a slow client")
        hub.deliver([FanoutMessage(channel: "broadcast:f", frame: frame("more"))])
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive)
        XCTAssertEqual(counters.slowClientCloses.current, 1)
    }

    func testClientThatDrainsIsNotSlow() throws {
        try makeChannel(endpoint: .facility("f"), flags: .subscribeBroadcast)
        try confirmSubscriptions()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        hub.deliver([FanoutMessage(channel: "broadcast:f", frame: frame("more"))])
        XCTAssertEqual(try readFrame()?.payload, Array("more".utf8))
        XCTAssertEqual(counters.slowClientCloses.current, 0)
    }

    func testSaturatedClientKeepsOnlyTheNewestMessagePerChannelWithKeepNewest() throws {
        try makeChannel(endpoint: .facility("f"), flags: .subscribeBroadcast) { $0.slowClientPolicy = .keepNewest }
        try confirmSubscriptions()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        for text in ["1", "2", "3"] { hub.deliver([FanoutMessage(channel: "broadcast:f", frame: frame(text))]) }
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        XCTAssertEqual(try readFrame()?.payload, Array("3".utf8))
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(counters.messagesDropped.current, 2)
        XCTAssertTrue(channel.isActive)
    }

    func testCompressedMessagesAreInflatedAndEchoedCompressed() throws {
        let deflate = DeflateNegotiation.negotiate(offers: ["permessage-deflate; client_max_window_bits"])
        try makeChannel(endpoint: .echo, deflate: deflate)
        let text = String(repeating: "compress me please ", count: 20)
        let compressed = Array(MessageDeflater().compress(ByteBuffer(string: text).readableBytesView, headroom: 0, allocator: ByteBufferAllocator()).readableBytesView)
        try channel.writeInbound(clientFrame(0x1, Array(compressed.prefix(10)), fin: false, rsv1: true))
        try channel.writeInbound(clientFrame(0x0, Array(compressed.dropFirst(10))))
        var reply = try XCTUnwrap(try channel.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(reply.getInteger(at: reply.readerIndex, as: UInt8.self), 0xC1, "FIN, RSV1 (compressed), text")
        let inflater = MessageInflater()
        var payload = ByteBuffer()
        reply.moveReaderIndex(forwardBy: FrameWriter.headerSize(payloadLength: reply.readableBytes - 2))
        try inflater.inflate(reply, final: true, into: &payload, limit: 1 << 20)
        XCTAssertEqual(String(buffer: payload), text)
    }

    func testRSV1WithoutNegotiationIsAProtocolError() throws {
        try makeChannel(endpoint: .echo)
        try channel.writeInbound(clientFrame(0x1, [1, 2, 3], rsv1: true))
        XCTAssertEqual(closeCode(try readFrame()), 1002)
    }

    func testADeflateBombStopsAtTheMessageLimit() throws {
        try makeChannel(endpoint: .echo, maxMessageSize: 10_000, deflate: DeflateNegotiation.negotiate(offers: ["permessage-deflate"]))
        let zeros = ByteBuffer(bytes: [UInt8](repeating: 0, count: 1_000_000))
        let bomb = Array(MessageDeflater().compress(zeros.readableBytesView, headroom: 0, allocator: ByteBufferAllocator()).readableBytesView)
        try channel.writeInbound(clientFrame(0x2, bomb, rsv1: true))
        XCTAssertEqual(closeCode(try readFrame()), 1009)
    }

    func testInvalidTextFailsBeforeTheRestOfItsFrameArrives() throws {
        try makeChannel(endpoint: .echo)
        let frame = clientFrame(0x1, Array("valid start ".utf8) + [0xF4, 0x90] + Array(repeating: 0x61, count: 1000))
        try channel.writeInbound(frame.getSlice(at: 0, length: 30)!)
        XCTAssertEqual(closeCode(try readFrame()), 1007, "the frame is not complete yet, but the text is already invalid")
    }

    func testFrameLengthsAreCheckedAtTheHeader() throws {
        try makeChannel(endpoint: .echo, maxMessageSize: 1000) { $0.maxFrameSize = 1000 }
        var header = ByteBuffer(bytes: [0x82, 0xFF])
        header.writeInteger(UInt64(1 << 40))
        try channel.writeInbound(header)
        XCTAssertEqual(closeCode(try readFrame()), 1009, "no payload needed to refuse it")
        try makeChannel(endpoint: .echo)
        var invalid = ByteBuffer(bytes: [0x82, 0xFF])
        invalid.writeInteger(UInt64(1) << 63)
        try channel.writeInbound(invalid)
        XCTAssertEqual(closeCode(try readFrame()), 1002)
    }

    func testLongControlFrameIsAProtocolError() throws {
        try makeChannel(endpoint: .echo)
        try channel.writeInbound(clientFrame(0x9, Array(repeating: 0x70, count: 126)))
        XCTAssertEqual(closeCode(try readFrame()), 1002)
    }

    func testFramesSplitAtEveryByteAreParsedAsWhole() throws {
        try makeChannel(endpoint: .echo)
        var frames = clientFrame(0x1, Array(repeating: 0x62, count: 300))
        var second = clientFrame(0x2, [1, 2, 3])
        frames.writeBuffer(&second)
        while let byte = frames.readSlice(length: 1) { try channel.writeInbound(byte) }
        XCTAssertEqual(try readFrame()?.payload, Array(repeating: 0x62, count: 300))
        let binary = try readFrame()
        XCTAssertEqual(binary?.opcode, 0x2)
        XCTAssertEqual(binary?.payload, [1, 2, 3])
    }

    func handler() throws -> WebSocketConnectionHandler {
        try channel.pipeline.syncOperations.handler(type: WebSocketConnectionHandler.self)
    }

    func testAClientThatOnlyAnswersPingsHoldsNoInputBetweenReads() throws {
        try makeChannel(endpoint: .echo)
        XCTAssertFalse(try handler().holdsClientInput)
        try channel.writeInbound(clientFrame(0xA, []))
        XCTAssertFalse(try handler().holdsClientInput, "a pong leaves nothing to carry over")
        var ping = clientFrame(0x9, [1, 2, 3])
        try channel.writeInbound(ping.readSlice(length: 3)!)
        XCTAssertTrue(try handler().holdsClientInput, "a read that ends inside a header keeps its start")
        try channel.writeInbound(ping)
        XCTAssertEqual(try readFrame()?.payload, [1, 2, 3], "the ping, whole, is answered")
        XCTAssertFalse(try handler().holdsClientInput)
    }

    func testAClientInsideAMessageOrThatSentDataKeepsItsInput() throws {
        try makeChannel(endpoint: .echo)
        try channel.writeInbound(clientFrame(0x1, Array("he".utf8), fin: false))
        try channel.writeInbound(clientFrame(0xA, []))
        XCTAssertTrue(try handler().holdsClientInput, "a message is still being assembled")
        try channel.writeInbound(clientFrame(0x0, Array("llo".utf8)))
        XCTAssertEqual(try readFrame()?.payload, Array("hello".utf8))
        XCTAssertTrue(try handler().holdsClientInput, "a client that sends data keeps it: no allocation per message")
    }

    func testNothingIsParsedAfterARefusedFrame() throws {
        try makeChannel(endpoint: .echo, maxMessageSize: 1000) { $0.maxFrameSize = 1000 }
        var input = ByteBuffer(bytes: [0x82, 0xFE])
        input.writeInteger(UInt16(2000))
        var ping = clientFrame(0x9, [7])
        input.writeBuffer(&ping)
        try channel.writeInbound(input)
        XCTAssertEqual(closeCode(try readFrame()), 1009)
        XCTAssertNil(try readFrame(), "the ping after the refused frame is not answered")
    }
}
