import Logging
import NIOCore

#if canImport(Glibc)
    import WS4RedisCompression
    import Glibc
#endif

/// One websocket after the handshake: parses its client's frames, carries out what the assembler
/// and the state machine decide, takes fan-out frames from its event loop's subscriptions, and
/// publishes what its client sends. The only handler of an established websocket: every idle socket holds one.
final class WebSocketConnectionHandler: ChannelInboundHandler, FanoutSubscriber {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private(set) var plan: ConnectionPlan
    /// Read for every delivery: a constant, not a look into the plan (a variable, for its shared channel list).
    let takesCompressedFrames: Bool
    private let environment: ConnectionEnvironment
    private var subscriptions: any SubscriptionPort { environment.subscriptions }
    private var settings: ConnectionSettings { environment.settings }
    private var counters: ServerCounters { environment.counters }
    private var input: ClientInput?
    private var state = ConnectionStateMachine()
    private var context: ChannelHandlerContext?
    private var started = false
    /// Redis confirmed every channel; from then until the close its subscriptions count in the server's figures.
    private var subscriptionsConfirmed = false
    /// Live frames held back until the persisted messages have gone out; nil once they have.
    private var heldBack: [ByteBuffer]? = []
    var hubSlot = -1
    var needsFlush = false
    /// Heartbeat ticks since anything was sent (saturating): the heartbeat is due after more than a
    /// whole interval of them, so it follows the last frame by the interval plus at most one tick.
    private var quietTicks: UInt8 = 0
    /// Inline rather than with the occasional state: most browsers' clients send heartbeats.
    private var rateLimit = ClientRateLimit()
    /// With the close policy: the outbound buffer is over max_outbound_bytes.
    private var saturated = false
    /// For the closing log line: when the websocket opened.
    private let openedAt = NIODeadline.now()
    /// What only publishing, slow or closing clients need, allocated on first use.
    private var occasional: OccasionalState?
    private var ensuredOccasional: OccasionalState {
        if let occasional { return occasional }
        let created = OccasionalState()
        occasional = created
        return created
    }

    var channels: [String] { plan.subscriptions }
    /// For the tests of when the input is let go.
    var holdsClientInput: Bool { input != nil }

    init(plan: ConnectionPlan, environment: ConnectionEnvironment) {
        self.plan = plan
        self.takesCompressedFrames = plan.takesCompressedFrames
        self.environment = environment
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { start() }
    }

    func channelActive(context: ChannelHandlerContext) {
        start()
        context.fireChannelActive()
    }

    private func start() {
        guard !started else { return }
        started = true
        counters.connections.add(1)
        counters.loopConnections[environment.loop].add(1)
        counters.connectionsTotal.add(1)
        environment.logger.info("websocket opened", metadata: plan.logMetadata)
        if plan.subscriptions.isEmpty { heldBack = nil }
        plan.subscriptions = subscriptions.join(self, channels: plan.subscriptions)
    }

    /// Redis confirmed every channel (called once, while the socket is open): what is
    /// stored can be fetched, and anything published from now on arrives live.
    func subscriptionConfirmed() {
        guard state.canSendData else { return }
        subscriptionsConfirmed = true
        counters.subscriptions.add(plan.subscriptions.count)
        if let unpublished = occasional?.unpublished, !unpublished.isEmpty {
            occasional?.unpublished = []
            occasional?.unpublishedBytes = 0
            for payload in unpublished { publish(payload) }
        }
        subscriptions.fetchStored(plan.subscriptions) { [self] in releaseHeldBack(persisted: $0) }
    }

    /// Sends the persisted messages, then the live ones that arrived meanwhile, in order.
    private func releaseHeldBack(persisted: [ByteBuffer]) {
        guard let context, let frames = heldBack else { return }
        heldBack = nil
        let sentWhileHeldBack = occasional?.sentWhileHeldBack
        occasional?.sentWhileHeldBack = nil
        guard state.canSendData else { return }
        for payload in persisted where payload.readableBytes > 0 && payload != sentWhileHeldBack {
            let frame = FrameWriter.frame(opcode: FrameWriter.opcode(forPayload: payload), payload: payload, allocator: context.channel.allocator)
            context.write(wrapOutboundOut(wire(frame)), promise: nil)
        }
        deliverNow(frames, context: context)
    }

    /// Writes frames held for this client, flushes once, and counts them as delivered.
    private func deliverNow(_ frames: some Collection<ByteBuffer>, context: ChannelHandlerContext) {
        var bytes = 0
        for frame in frames {
            bytes += frame.readableBytes
            context.write(wrapOutboundOut(frame), promise: nil)
        }
        context.flush()
        quietTicks = 0
        counters.delivered(frames.count, bytes: bytes)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if started {
            counters.connections.subtract(1)
            counters.loopConnections[environment.loop].subtract(1)
            subscriptions.leave(self)
            logClosed()
        }
        if subscriptionsConfirmed { counters.subscriptions.subtract(plan.subscriptions.count) }
        subscriptionsConfirmed = false
        self.context = nil
        context.fireChannelInactive()
    }

    private func logClosed() {
        environment.logger.info(
            "websocket closed",
            metadata: plan.logMetadata.merging([
                "duration-ms": "\((NIODeadline.now() - openedAt).nanoseconds / 1_000_000)",
                // 1006: the socket ended without a close frame either way.
                "close-code": "\((occasional?.closeCode ?? .abnormalClosure).code)",
                "cause": "\(occasional?.dropCause ?? "-")",
            ]) { $1 })
    }

    private func noteClose(_ code: CloseCode) {
        if occasional?.closeCode == nil { ensuredOccasional.closeCode = code }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        state.receivedTraffic()
        var bytes = unwrapInboundIn(data)
        let input = input ?? ClientInput(settings: settings, inflater: plan.deflate != nil ? MessageInflater.self : nil)
        self.input = input
        if var start = input.headerStart {
            input.headerStart = nil
            start.writeBuffer(&bytes)
            bytes = start
        }
        do {
            while let part = try input.parser.nextPart(from: &bytes) { receive(part, into: input, context: context) }
        } catch {
            return refuse(error, context: context)
        }
        if bytes.readableBytes > 0 { input.headerStart = ByteBuffer(bytes: bytes.readableBytesView) }
        if input.isDisposable { self.input = nil }
    }

    private func receive(_ part: FramePart, into input: ClientInput, context: ChannelHandlerContext) {
        switch input.assembler.receive(part) {
        case .message(let opcode, let payload):
            input.sentData = true
            guard admitted(payload.readableBytes) else { return }
            received(opcode: opcode, payload: payload, context: context)
        case .ping(let payload):
            guard admitted(0) else { return }
            send(FrameWriter.frame(opcode: .pong, payload: payload, allocator: context.channel.allocator), context: context)
        case .pong, .none: break
        case .close(let code): receivedClose(code, context: context)
        case .failure(let code, let reason): fail(code, reason: reason, context: context)
        }
    }

    private func refuse(_ error: FrameParseError, context: ChannelHandlerContext) {
        switch error {
        case .tooLarge(let length): fail(.messageTooLarge, reason: "frame of \(length) bytes is larger than the limit", context: context)
        case .invalidLength: fail(.protocolError, reason: "invalid 64-bit frame length", context: context)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        switch (context.channel.isWritable, settings.slowClientPolicy) {
        case (false, .close):
            // One large frame may cross the limit on its own: the client is slow only if more must be queued now.
            saturated = true
        case (true, .close):
            saturated = false
        case (false, .keepNewest):
            ensuredOccasional.newestWhileSaturated = occasional?.newestWhileSaturated ?? []
        case (true, .keepNewest):
            guard let held = occasional?.newestWhileSaturated else { break }
            occasional?.newestWhileSaturated = nil
            if state.canSendData { deliverNow(held.map(\.frame), context: context) }
        }
        context.fireChannelWritabilityChanged()
    }

    /// The client did not read max_outbound_bytes and more is due: a close frame would queue behind
    /// the data it does not read, so the socket is dropped (it reconnects and gets the stored messages).
    private func dropSlowClient(_ context: ChannelHandlerContext) {
        guard state.canSendData else { return }
        counters.slowClientCloses.add(1)
        ensuredOccasional.dropCause = "slow client: more than \(settings.maxOutboundBytes) bytes queued"
        _ = state.fail()
        context.close(promise: nil)
    }

    /// Whether a facility's client is within its rates (the echo endpoint, for conformance suites,
    /// has none); over them, the socket closes with 1008 and what it sent is dropped.
    private func admitted(_ bytes: Int) -> Bool {
        guard case .facility = plan.endpoint, state.canSendData else { return state.canSendData }
        let settings = self.settings
        let now = Int64(NIODeadline.now().uptimeNanoseconds)
        let verdict = rateLimit.admit(bytes: bytes, now: now, messages: settings.clientMessageRate, bytes: settings.clientByteRate)
        guard verdict != .admitted else { return true }
        let reason =
            verdict == .tooManyMessages
            ? "more than \(settings.clientMessagesPerSecond) messages per second" : "more than \(settings.clientBytesPerSecond) bytes per second"
        counters.rateLimitedCloses.add(1)
        closeTelling(.policyViolation, reason: reason)
        return false
    }

    private func received(opcode: Opcode, payload: ByteBuffer, context: ChannelHandlerContext) {
        switch plan.endpoint {
        case .echo:
            send(wire(FrameWriter.frame(opcode: opcode, payload: payload, allocator: context.channel.allocator)), context: context)
        case .facility:
            guard payload.readableBytes > 0, !isHeartbeat(payload) else { return }
            counters.clientMessagesIn.add(1)
            counters.clientBytesIn.add(payload.readableBytes)
            if !plan.echo { ensuredOccasional.lastSent = payload }
            if heldBack != nil { ensuredOccasional.sentWhileHeldBack = payload }
            guard !awaitingConfirmation else { return keepUnpublished(payload) }
            publish(payload)
        }
    }

    /// Its channels are not all confirmed yet: what the client publishes meanwhile waits, so that
    /// it comes back live (with echo) rather than racing the SUBSCRIBE to Redis.
    private var awaitingConfirmation: Bool { heldBack != nil && !subscriptionsConfirmed }

    /// Redis may be down a while: at most max_message_size bytes wait, then the client is told
    /// (1013) rather than having its messages vanish.
    private func keepUnpublished(_ payload: ByteBuffer) {
        let occasional = ensuredOccasional
        guard occasional.unpublishedBytes + payload.readableBytes <= settings.maxMessageSize else {
            counters.publishFailures.add(1)
            return closeTelling(.tryAgainLater, reason: "Redis is unavailable: message not published; try again later")
        }
        occasional.unpublishedBytes += payload.readableBytes
        occasional.unpublished.append(payload)
    }

    /// A message Redis did not take is lost for every subscriber: its sender is told with a close
    /// (1013 while Redis is away or its queue is full, 1011 when Redis refused it) and reconnects.
    private func publish(_ payload: ByteBuffer) {
        subscriptions.publish(payload, to: plan.publications) { [weak self] failure in
            guard let self else { return }
            counters.publishFailures.add(1)
            switch failure {
            case .unavailable: closeTelling(.tryAgainLater, reason: "Redis is unavailable: the message may not have been published; try again later")
            case .refused: closeTelling(.unexpectedServerError, reason: "Redis refused the message: it may not have been published or stored")
            }
        }
    }

    /// Closes with a close handshake, so that the client reads the code and the reason: what it
    /// sends meanwhile is read and dropped (closing at once with unread bytes would send RST, and
    /// the client would lose the close frame), until its close frame or the close timeout.
    private func closeTelling(_ code: CloseCode, reason: String) {
        environment.logger.debug("websocket closed by the server", metadata: plan.logMetadata.merging(["code": "\(code)", "reason": "\(reason)"]) { $1 })
        _ = close(code: code, reason: reason, timeout: settings.closeTimeout)
    }

    private func isHeartbeat(_ payload: ByteBuffer) -> Bool {
        guard let heartbeat = settings.heartbeat else { return false }
        return payload.readableBytesView.elementsEqual(heartbeat)
    }

    private func receivedClose(_ code: CloseCode?, context: ChannelHandlerContext) {
        noteClose(code ?? .noStatusReceived)
        switch state.receivedClose(code) {
        case .replyAndClose(let code):
            let frame = FrameWriter.closeFrame(code: code, reason: "", allocator: context.channel.allocator)
            Self.holdSegmentsUntilClose(context.channel)
            context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in context.close(promise: nil) }
        case .closeSocket: context.close(promise: nil)
        case .ignore: break
        }
    }

    private func fail(_ code: CloseCode, reason: String, context: ChannelHandlerContext) {
        environment.logger.debug("websocket protocol failure", metadata: plan.logMetadata.merging(["code": "\(code)", "reason": "\(reason)"]) { $1 })
        guard state.fail() else { return context.close(promise: nil) }
        noteClose(code)
        let frame = FrameWriter.closeFrame(code: code, reason: reason, allocator: context.channel.allocator)
        context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in context.close(promise: nil) }
        closeLater(context.channel)
    }

    /// The close reply goes out in the segment that carries the FIN: one segment fewer per closed
    /// websocket (TCP_CORK holds partial segments until the socket is closed). Only on a clean
    /// close: a failing client may go on sending, and closing with unread bytes sends RST, which
    /// would drop a held close frame.
    private static func holdSegmentsUntilClose(_ channel: any Channel) {
        try? channel.syncOptions?.setOption(corkOption, value: 1)
    }

    private static let corkOption = ChannelOptions.Types.SocketOption(level: SocketOptionLevel(IPPROTO_TCP), name: SocketOptionName(TCP_CORK))

    /// The socket closes at the latest after the close timeout, even if a close frame never drains.
    private func closeLater(_ channel: any Channel) {
        channel.eventLoop.scheduleTask(in: settings.closeTimeout) { channel.close(promise: nil) }
    }

    private func send(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        guard state.canSendData else { return }
        guard !saturated else { return dropSlowClient(context) }
        quietTicks = 0
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    // MARK: FanoutSubscriber, on this connection's event loop

    /// A data frame as this client gets it: compressed when it negotiated permessage-deflate.
    private func wire(_ frame: ByteBuffer) -> ByteBuffer {
        takesCompressedFrames ? subscriptions.compressedFrame(frame) : frame
    }

    /// Queues a fan-out message (as `frame`: plain or compressed) without flushing; false when it is not
    /// written (closed, held back for the persisted messages, or the client's own message without `echo`).
    func enqueue(_ message: FanoutMessage, as frame: ByteBuffer) -> Bool {
        let channel = message.channel
        guard let context, state.canSendData, !isOwnMessage(message.frame) else { return false }
        guard heldBack == nil else {
            holdBack(frame)
            return false
        }
        if occasional?.newestWhileSaturated != nil {
            keepNewest(frame, channel: channel)
            return false
        }
        if saturated {
            dropSlowClient(context)
            return false
        }
        quietTicks = 0
        context.write(wrapOutboundOut(frame), promise: nil)
        return true
    }

    /// Until the stored messages are fetched, live ones wait: at most max_outbound_bytes of them, as
    /// for a client that does not read; past that, the client is told to come back (1013).
    private func holdBack(_ frame: ByteBuffer) {
        let occasional = ensuredOccasional
        guard occasional.heldBackBytes + frame.readableBytes <= settings.maxOutboundBytes else {
            heldBack = nil
            counters.slowClientCloses.add(1)
            return closeTelling(.tryAgainLater, reason: "messages arrived faster than the stored ones could be fetched; try again later")
        }
        occasional.heldBackBytes += frame.readableBytes
        heldBack!.append(frame)
    }

    private func keepNewest(_ frame: ByteBuffer, channel: String) {
        let newest = ensuredOccasional
        if let index = newest.newestWhileSaturated!.firstIndex(where: { $0.channel == channel }) {
            newest.newestWhileSaturated![index].frame = frame
            counters.messagesDropped.add(1)
        } else {
            newest.newestWhileSaturated!.append((channel, frame))
        }
    }

    private func isOwnMessage(_ frame: ByteBuffer) -> Bool {
        guard let lastSent = occasional?.lastSent else { return false }
        let payload = FrameWriter.payload(of: frame)
        return payload.count == lastSent.readableBytes && payload.elementsEqual(lastSent.readableBytesView)
    }

    func flush() {
        needsFlush = false
        context?.flush()
    }

    /// Starts the close handshake (shutdown: 1001); the socket is dropped if the client does not answer.
    /// Completes when the socket is closed.
    func close(code: CloseCode, reason: String, timeout: TimeAmount) -> EventLoopFuture<Void>? {
        guard let context else { return nil }
        let channel = context.channel
        if state.startClosing() {
            noteClose(code)
            let frame = FrameWriter.closeFrame(code: code, reason: reason, allocator: channel.allocator)
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        }
        return channel.closeFuture
    }

    func livenessTick() {
        guard let context else { return }
        switch state.livenessTick() {
        case .sendPing:
            context.writeAndFlush(wrapOutboundOut(FrameWriter.frame(opcode: .ping, payload: ByteBuffer(), allocator: context.channel.allocator)), promise: nil)
        case .closeDead:
            ensuredOccasional.dropCause = "unresponsive: no pong"
            context.close(promise: nil)
        case .none:
            break
        }
    }

    /// Sends the shared heartbeat frame once nothing was sent for a whole heartbeat interval.
    func heartbeatTick(_ frame: ByteBuffer) {
        guard case .facility = plan.endpoint else { return }
        if quietTicks <= ConnectionSettings.heartbeatTicksPerInterval { quietTicks += 1 }
        guard quietTicks > ConnectionSettings.heartbeatTicksPerInterval, let context, state.canSendData, heldBack == nil else { return }
        quietTicks = 0
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }
}
