import NIOCore
import NIOHTTP1

/// The standalone listener's HTTP side: `/healthz`, errors, and websocket upgrades, after which it
/// hands the socket to the websocket pipeline and leaves.
final class HTTPFrontHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case responding(HTTPResponseHead, body: String)
        /// The decision is pending (identity sources); the request may still be arriving.
        case deciding(requestEnded: Bool)
        case decided(HandshakeDecision, HTTPRequestHead)
        case upgraded
    }

    private let server: WS4RedisServer
    private let hub: LoopHub
    private let requestDecoder: any RemovableChannelHandler
    private let responseEncoder: any RemovableChannelHandler
    private var state = State.idle
    /// Drops connections that do not finish a request in time (slowloris) or idle between requests.
    private var deadline: Scheduled<Void>?
    /// A response to HEAD has headers only (RFC 9110 §9.3.2).
    private var answeringHEAD = false

    init(server: WS4RedisServer, hub: LoopHub, requestDecoder: any RemovableChannelHandler, responseEncoder: any RemovableChannelHandler) {
        self.server = server
        self.hub = hub
        self.requestDecoder = requestDecoder
        self.responseEncoder = responseEncoder
    }

    func handlerAdded(context: ChannelHandlerContext) {
        armDeadline(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    private func armDeadline(context: ChannelHandlerContext) {
        deadline?.cancel()
        guard server.handshakeTimeout > .zero else { return }
        let channel = context.channel
        deadline = channel.eventLoop.scheduleTask(in: server.handshakeTimeout) { channel.close(promise: nil) }
    }

    /// Malformed HTTP or a header section over the decoder's limit: a clear status, then close.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard case .idle = state, let parserError = error as? HTTPParserError else { return context.close(promise: nil) }
        let status: HTTPResponseStatus = parserError == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
        state = .upgraded  // nothing more is read from this connection
        var head = HTTPResponseHead(version: .http1_1, status: status, headers: ["Content-Type": "text/plain", "Connection": "close"])
        head.headers.add(name: "Content-Length", value: "\(("malformed HTTP request: \(parserError)\n").utf8.count)")
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "malformed HTTP request: \(parserError)\n")))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle): state = route(head, context: context)
        case (.body, _), (.head, _): break
        case (.end, .responding(let head, let body)): respond(head, body: body, context: context)
        case (.end, .deciding): state = .deciding(requestEnded: true)
        case (.end, .decided(let decision, let head)): carryOut(decision, for: head, context: context)
        case (.end, .idle), (.end, .upgraded): break
        }
    }

    /// The decision arrived; it is carried out once the whole request is in.
    private func decided(_ decision: HandshakeDecision, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard case .deciding(let requestEnded) = state else { return }
        if requestEnded {
            carryOut(decision, for: head, context: context)
        } else {
            state = .decided(decision, head)
        }
    }

    private func carryOut(_ decision: HandshakeDecision, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        switch decision {
        case .accepted(let handshake):
            upgrade(handshake, context: context)
        case .refused(let refusal):
            var response = Self.responseHead(HTTPResponseStatus(statusCode: refusal.status), for: head, contentType: "text/plain")
            for (name, value) in refusal.headers { response.headers.add(name: name, value: value) }
            response.headers.replaceOrAdd(name: "Connection", value: "close")
            respond(response, body: refusal.body, context: context)
        }
    }

    private func route(_ head: HTTPRequestHead, context: ChannelHandlerContext) -> State {
        answeringHEAD = head.method == .HEAD
        let (path, query) = Self.split(head.uri)
        if path == "/healthz", head.method == .GET {
            return .responding(Self.responseHead(.ok, for: head, contentType: "application/json"), body: server.stats().healthJSON)
        }
        if path == "/metrics", head.method == .GET {
            return .responding(Self.responseHead(.ok, for: head, contentType: WS4RedisServer.metricsContentType), body: server.metricsText())
        }
        guard server.validator.isWebSocketPath(path) else {
            return .responding(Self.responseHead(.notFound, for: head, contentType: "text/plain"), body: "not found: \(path)\n")
        }
        let request = HandshakeRequest(
            method: head.method.rawValue, path: path, query: query, httpVersion: "HTTP/\(head.version.major).\(head.version.minor)",
            headers: head.headers.map { ($0.name, $0.value) }, remoteAddress: context.channel.remoteAddress?.ipAddress
        )
        switch server.decide(request, on: context.eventLoop) {
        case .decided(let decision):
            return .decided(decision, head)
        case .awaiting(let decision):
            // A failed source may answer right here: state first.
            state = .deciding(requestEnded: false)
            decision.whenComplete { [self] result in
                decided((try? result.get()) ?? .refused(HandshakeRefusal(status: 503, body: "the server is shutting down\n")), for: head, context: context)
            }
            return state
        }
    }

    private func respond(_ head: HTTPResponseHead, body: String, context: ChannelHandlerContext) {
        state = .idle
        var head = head
        head.headers.replaceOrAdd(name: "Content-Length", value: "\(body.utf8.count)")
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !answeringHEAD { context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil) }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if head.headers["Connection"].contains("close") { done.whenComplete { _ in context.close(promise: nil) } }
        armDeadline(context: context)
    }

    private func upgrade(_ handshake: AcceptedHandshake, context: ChannelHandlerContext) {
        state = .upgraded
        deadline?.cancel()
        var headers = HTTPHeaders()
        for (name, value) in handshake.responseHeaders { headers.add(name: name, value: value) }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers))), promise: nil)
        // The 101 is encoded by now: the websocket handlers may take over at once (a failed write closes the channel).
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        do {
            try switchToWebSocket(handshake, context: context)
        } catch {
            context.close(promise: nil)
        }
    }

    /// Installs the websocket handlers behind this one, then removes the HTTP handlers; the request
    /// decoder forwards any bytes it already read past the headers to the frame decoder.
    private func switchToWebSocket(_ handshake: AcceptedHandshake, context: ChannelHandlerContext) throws {
        let pipeline = context.pipeline.syncOperations
        try pipeline.addHandlers(server.webSocketHandlers(for: handshake, hub: hub), position: .after(self))
        pipeline.removeHandler(context: context, promise: nil)
        pipeline.removeHandler(requestDecoder, promise: nil)
        pipeline.removeHandler(responseEncoder, promise: nil)
    }

    private static func split(_ uri: String) -> (path: String, query: String?) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri.removingPercentEncoding(), nil) }
        return (String(uri[..<mark]).removingPercentEncoding(), String(uri[uri.index(after: mark)...]))
    }

    private static func responseHead(_ status: HTTPResponseStatus, for request: HTTPRequestHead, contentType: String) -> HTTPResponseHead {
        var headers = HTTPHeaders([("Content-Type", contentType)])
        if !request.isKeepAlive { headers.add(name: "Connection", value: "close") }
        return HTTPResponseHead(version: request.version, status: status, headers: headers)
    }
}
