import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Asks the app about a handshake with an HTTP request (the pattern of nginx `auth_request` and
/// Nchan's `nchan_authorize_request`): the handshake's Cookie and Authorization headers and its URI
/// go to the configured URL; 2xx grants with `X-WS4Redis-*` headers, 401/403 deny.
final class AuthRequestClient: Sendable {
    private let url: HTTPURL
    private let timeout: TimeAmount
    private let cacheLifetime: TimeAmount
    private let cache = NIOLockedValueBox<[String: (expiry: NIODeadline, result: Result<Authorization, HandshakeRefusal>)]>([:])

    init(url: HTTPURL, timeoutMilliseconds: Int, cacheMilliseconds: Int) {
        self.url = url
        timeout = .milliseconds(Int64(timeoutMilliseconds))
        cacheLifetime = .milliseconds(Int64(cacheMilliseconds))
    }

    func authorize(_ request: HandshakeRequest, on eventLoop: any EventLoop) -> EventLoopFuture<Authorization> {
        let forwarded = forwardedHeaders(request)
        // The client's address is passed on but is not part of the question: the answer is the same from any port.
        let key = forwarded.filter { $0.name != "X-Forwarded-For" }.map { "\($0.name)=\($0.value)" }.joined(separator: "\n")
        if let cached = cached(key) { return eventLoop.makeCompletedFuture(cached.mapError { $0 as any Error }) }
        return ask(forwarded, on: eventLoop).flatMapResult { [self] answer in
            let result = Self.decision(answer)
            store(result, key: key)
            return result.mapError { $0 as any Error }
        }.flatMapErrorThrowing { error in
            throw error as? HandshakeRefusal ?? Self.refusal(for: error, timeout: self.timeout)
        }
    }

    private func forwardedHeaders(_ request: HandshakeRequest) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = request.headers.filter { ["cookie", "authorization"].contains($0.name.lowercased()) }
        headers.append(("X-Original-URI", request.path + (request.query.map { "?" + $0 } ?? "")))
        headers.append(("X-Original-Method", request.method))
        if let remote = request.remoteAddress { headers.append(("X-Forwarded-For", remote)) }
        return headers
    }

    private func cached(_ key: String) -> Result<Authorization, HandshakeRefusal>? {
        guard cacheLifetime > .zero else { return nil }
        return cache.withLockedValue { entries in
            guard let entry = entries[key] else { return nil }
            guard entry.expiry > .now() else {
                entries[key] = nil
                return nil
            }
            return entry.result
        }
    }

    private func store(_ result: Result<Authorization, HandshakeRefusal>, key: String) {
        guard cacheLifetime > .zero else { return }
        if case .failure(let refusal) = result, refusal.status != 401, refusal.status != 403 { return }
        let now = NIODeadline.now()
        cache.withLockedValue { entries in
            entries = entries.filter { $0.value.expiry > now }
            entries[key] = (now + cacheLifetime, result)
        }
    }

    private func ask(_ headers: [(name: String, value: String)], on eventLoop: any EventLoop) -> EventLoopFuture<HTTPResponseHead> {
        let answer = eventLoop.makePromise(of: HTTPResponseHead.self)
        let deadline = eventLoop.scheduleTask(in: timeout) { answer.fail(AuthRequestTimeout()) }
        answer.futureResult.whenComplete { _ in deadline.cancel() }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(AuthResponseHandler(answer: answer))
                }
            }
            .connect(host: url.host, port: url.port)
            .whenComplete { [url] result in
                switch result {
                case .success(let channel):
                    var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.path)
                    head.headers.add(name: "Host", value: "\(url.host):\(url.port)")
                    head.headers.add(name: "Connection", value: "close")
                    for (name, value) in headers { head.headers.add(name: name, value: value) }
                    channel.write(HTTPClientRequestPart.head(head), promise: nil)
                    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                    answer.futureResult.whenComplete { _ in channel.close(promise: nil) }
                case .failure(let error):
                    answer.fail(error)
                }
            }
        return answer.futureResult
    }

    static func decision(_ head: HTTPResponseHead) -> Result<Authorization, HandshakeRefusal> {
        switch head.status.code {
        case 200..<300:
            let header = { (name: String) in head.headers.first(name: name).map { $0.trimmingWhitespace() }.flatMap { $0.isEmpty ? nil : $0 } }
            let identity = Identity(
                user: header("X-WS4Redis-User"),
                groups: header("X-WS4Redis-Groups")?.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty } ?? [],
                sessionKey: header("X-WS4Redis-Session")
            )
            guard let allow = header("X-WS4Redis-Allow") else { return .success(Authorization(identity: identity)) }
            guard let flags = try? ChannelFlags(list: allow) else {
                return .failure(HandshakeRefusal(status: 502, body: "the auth request answered an invalid X-WS4Redis-Allow: \(allow)\n"))
            }
            return .success(Authorization(identity: identity, allowedFlags: flags))
        case 401, 403:
            return .failure(HandshakeRefusal(status: Int(head.status.code), body: "denied by the app's auth request (\(head.status.code))\n"))
        default:
            return .failure(HandshakeRefusal(status: 502, body: "the app's auth request answered \(head.status.code)\n"))
        }
    }

    static func refusal(for error: any Error, timeout: TimeAmount) -> HandshakeRefusal {
        if error is AuthRequestTimeout {
            return HandshakeRefusal(status: 504, body: "the app's auth request did not answer within \(timeout.nanoseconds / 1_000_000) ms\n")
        }
        return HandshakeRefusal(status: 503, body: "the app's auth request failed: \(error)\n")
    }
}

struct AuthRequestTimeout: Error {}

/// Completes with the response head once the whole response has arrived.
private final class AuthResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let answer: EventLoopPromise<HTTPResponseHead>
    private var head: HTTPResponseHead?

    init(answer: EventLoopPromise<HTTPResponseHead>) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end: head.map { answer.succeed($0) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }
}
