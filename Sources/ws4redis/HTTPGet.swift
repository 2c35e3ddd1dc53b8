import NIOCore
import NIOHTTP1
import NIOPosix
import WS4Redis

/// One plain HTTP GET, for asking a running server about itself.
enum HTTPGet {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The body of a 200 answer; anything else throws.
    static func body(of url: HTTPURL, group: any EventLoopGroup, timeout: TimeAmount = .seconds(5)) throws -> String {
        let promise = group.next().makePromise(of: (HTTPResponseStatus, String).self)
        let channel: any Channel
        do {
            channel = try ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(BodyCollector(answer: promise))
                    }
                }
                .connect(host: url.host, port: url.port).wait()
        } catch {
            promise.fail(error)
            throw error
        }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.path, headers: ["Host": url.host, "Connection": "close"])
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let timer = channel.eventLoop.scheduleTask(in: timeout) { promise.fail(Failure(description: "no answer from \(url.host):\(url.port) within \(timeout)")) }
        defer { timer.cancel() }
        let (status, body) = try promise.futureResult.wait()
        guard status == .ok else { throw Failure(description: "GET \(url.path) answered \(status.code): \(body)") }
        return body
    }
}

private final class BodyCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let answer: EventLoopPromise<(HTTPResponseStatus, String)>
    private var status = HTTPResponseStatus.ok
    private var body = ""

    init(answer: EventLoopPromise<(HTTPResponseStatus, String)>) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = head.status
        case .body(let chunk): body += String(buffer: chunk)
        case .end:
            answer.succeed((status, body))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer.fail(HTTPGet.Failure(description: "the server closed the connection before answering"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer.fail(error)
        context.close(promise: nil)
    }
}
