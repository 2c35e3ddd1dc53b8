import NIOCore

/// The standalone listener's HTTP side, the only handler of a socket until its upgrade: parses
/// request heads itself, answers `/healthz`, `/metrics` and errors, and on an accepted upgrade
/// writes the 101, puts the websocket handler in its place and hands it what arrived after the head.
/// Also the whole of the metrics listener (`metrics_listen`), which answers no websockets.
/// Pipelined requests are answered while the client reads the answers: once more than
/// `maxOwedBytes` of them wait to be written, no more requests are read until they are.
final class HTTPFrontHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// What a listener serves besides `/healthz` and errors.
    struct Endpoints {
        var metrics: Bool
        var webSockets: Bool

        /// The main listener: /metrics unless it is off or has a listener of its own.
        static func main(_ configuration: ServerConfiguration) -> Endpoints {
            Endpoints(metrics: configuration.metrics && configuration.metricsListenAddress == nil, webSockets: true)
        }

        static let metricsOnly = Endpoints(metrics: true, webSockets: false)
    }

    private enum State {
        /// Reading a request head (keep-alive connections come back here after each response).
        case reading
        /// An identity source was asked about an upgrade; what arrives meanwhile waits in `received`.
        case deciding(ParsedRequestHead)
        /// A response that ends the connection is on its way, or the websocket took over.
        case done
    }

    private let server: WS4RedisServer
    /// What websockets upgraded here are given; nil on a listener of metrics only, which never upgrades.
    private let environment: ConnectionEnvironment?
    private let endpoints: Endpoints
    private var parser: HTTPRequestParser
    private var state = State.reading
    /// What arrived and is not consumed yet: part of a head, or what follows one.
    private var received: ByteBuffer?
    /// Drops connections that do not finish a request in time (slowloris) or idle between requests;
    /// nil without a handshake timeout.
    private let deadlines: ChannelDeadlines?
    private var deadline: ChannelDeadlines.Ticket?
    /// Responses owed beyond `maxOwedBytes`: requests are neither read nor answered until they are written.
    private var waitingForClientToRead = false

    init(server: WS4RedisServer, environment: ConnectionEnvironment?, deadlines: ChannelDeadlines?, endpoints: Endpoints) {
        self.server = server
        self.environment = environment
        self.endpoints = endpoints
        self.deadlines = deadlines
        // The head may hold what the validator allows (max_header_size) plus the request line.
        parser = HTTPRequestParser(maxHeadSize: server.validator.maxHeaderSize + 8192)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        armDeadline(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarmDeadline()
    }

    private func armDeadline(context: ChannelHandlerContext) {
        disarmDeadline()
        deadline = deadlines?.arm(context.channel)
    }

    private func disarmDeadline() {
        guard let deadline else { return }
        deadlines?.disarm(deadline)
        self.deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch state {
        case .done:
            return
        case .deciding where (received?.readableBytes ?? 0) + bytes.readableBytes > Self.maxEarlyBytes:
            // RFC 6455 §4.1: a client waits for the 101 before it sends frames.
            state = .done
            return context.close(promise: nil)
        case .reading, .deciding:
            break
        }
        if received == nil {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
        guard case .reading = state else { return }
        readRequests(context: context)
    }

    /// What a client may send while its upgrade is being decided, kept for the websocket handler.
    private static let maxEarlyBytes = 65_536
    /// Bytes of answers to pipelined requests a client may leave unread (a few /metrics texts).
    static let maxOwedBytes = 65_536

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Answers every complete request in `received`, in order, until one needs a decision that
    /// takes time or ends the connection.
    private func readRequests(context: ChannelHandlerContext) {
        while case .reading = state, !waitingForClientToRead, received != nil {
            let head: ParsedRequestHead
            do {
                guard let next = try parser.nextHead(from: &received!) else { return compactReceived() }
                head = next
            } catch {
                return refuseMalformed(error, context: context)
            }
            route(head, context: context)
        }
    }

    /// The unread rest of a head is kept; a fully read buffer is let go.
    private func compactReceived() {
        if received?.readableBytes == 0 { received = nil }
    }

    private func refuseMalformed(_ error: HTTPRequestError, context: ChannelHandlerContext) {
        respond(
            status: error.status, headers: [("Content-Type", "text/plain")], body: "malformed HTTP request: \(error.detail)\n", closing: true,
            omittingBody: false, context: context)
    }

    private func route(_ head: ParsedRequestHead, context: ChannelHandlerContext) {
        let request = head.handshakeRequest(remoteAddress: context.channel.remoteAddress?.ipAddress)
        let path = request.path
        let isGET = head.method == "GET"
        let keepAlive = head.keepAlive && !head.hasBody
        if path == "/healthz", isGET {
            return respond(
                status: 200, headers: [("Content-Type", "application/json")], body: server.stats().healthJSON, closing: !keepAlive,
                omittingBody: false, context: context)
        }
        if path == "/metrics", isGET, endpoints.metrics {
            return respond(
                status: 200, headers: [("Content-Type", WS4RedisServer.metricsContentType)], body: server.metricsText(),
                closing: !keepAlive, omittingBody: false, context: context)
        }
        guard endpoints.webSockets, server.validator.isWebSocketPath(path) else {
            return respond(
                status: 404, headers: [("Content-Type", "text/plain")], body: "not found: \(path)\n", closing: !keepAlive,
                omittingBody: head.method == "HEAD", context: context)
        }
        switch server.decide(request, on: context.eventLoop) {
        case .decided(let decision):
            carryOut(decision, for: head, context: context)
        case .awaiting(let decision):
            state = .deciding(head)
            decision.whenComplete { [self] result in
                guard case .deciding = state else { return }
                state = .reading
                carryOut((try? result.get()) ?? .refused(HandshakeRefusal(status: 503, body: "the server is shutting down\n")), for: head, context: context)
                readRequests(context: context)
            }
        }
    }

    private func carryOut(_ decision: HandshakeDecision, for head: ParsedRequestHead, context: ChannelHandlerContext) {
        switch decision {
        case .accepted(let handshake) where !head.hasBody:
            upgrade(handshake, context: context)
        case .accepted:
            refuse(HandshakeRefusal(status: 400, body: "a websocket handshake has no body\n"), for: head, context: context)
        case .refused(let refusal):
            refuse(refusal, for: head, context: context)
        }
    }

    private func refuse(_ refusal: HandshakeRefusal, for head: ParsedRequestHead, context: ChannelHandlerContext) {
        respond(
            status: refusal.status, headers: [("Content-Type", "text/plain")] + refusal.headers, body: refusal.body, closing: true,
            omittingBody: head.method == "HEAD", context: context)
    }

    private func respond(
        status: Int, headers: [(name: String, value: String)], body: String, closing: Bool, omittingBody: Bool, context: ChannelHandlerContext
    ) {
        let headers = closing ? headers + [("Connection", "close")] : headers
        let response = HTTPResponseWriter.response(status: status, headers: headers, body: body, omittingBody: omittingBody, allocator: context.channel.allocator)
        guard closing else {
            writeKeepingBound(response, context: context)
            return armDeadline(context: context)
        }
        state = .done
        received = nil
        context.writeAndFlush(wrapOutboundOut(response)).whenComplete { _ in context.close(promise: nil) }
    }

    /// Writes a response on a connection that stays open; when the client leaves too much unread,
    /// stops reading (and answering) its requests until this response is written.
    private func writeKeepingBound(_ response: ByteBuffer, context: ChannelHandlerContext) {
        let owed = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        guard owed + response.readableBytes > Self.maxOwedBytes else {
            return context.writeAndFlush(wrapOutboundOut(response), promise: nil)
        }
        waitingForClientToRead = true
        try? context.channel.syncOptions?.setOption(.autoRead, value: false)
        context.writeAndFlush(wrapOutboundOut(response)).whenSuccess { [self] in
            waitingForClientToRead = false
            if case .done = state { return }
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
            readRequests(context: context)
        }
    }

    /// Writes the 101, then puts the websocket handler in this one's place and hands it the bytes
    /// that followed the head (a client may send frames before it has read the 101).
    private func upgrade(_ handshake: AcceptedHandshake, context: ChannelHandlerContext) {
        state = .done
        disarmDeadline()
        let response = HTTPResponseWriter.response(status: 101, headers: handshake.responseHeaders, allocator: context.channel.allocator)
        // A failed write closes the channel: the websocket handler may take over at once.
        context.writeAndFlush(wrapOutboundOut(response), promise: nil)
        let pipeline = context.pipeline.syncOperations
        do {
            guard let environment else { throw ChannelError.inappropriateOperationForState }
            try pipeline.addHandler(server.webSocketHandler(for: handshake, environment: environment), position: .after(self))
        } catch {
            return context.close(promise: nil)
        }
        if let rest = received, rest.readableBytes > 0 {
            received = nil
            context.fireChannelRead(wrapInboundOut(rest))
            context.fireChannelReadComplete()
        }
        pipeline.removeHandler(context: context, promise: nil)
    }
}
