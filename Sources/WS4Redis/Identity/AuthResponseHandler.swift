import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Completes each request's promise with the response head once the whole response has arrived.
final class AuthResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private var answer: EventLoopPromise<HTTPResponseHead>?
    private var head: HTTPResponseHead?
    private var receivedAny = false

    func expect(_ answer: EventLoopPromise<HTTPResponseHead>) {
        self.answer = answer
        head = nil
        receivedAny = false
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        receivedAny = true
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            let (answer, head) = (answer, head)
            self.answer = nil
            if let head { answer?.succeed(head) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        answer?.fail(receivedAny ? ChannelError.eof : AuthConnectionClosedEarly())
        answer = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        answer?.fail(error)
        answer = nil
        context.close(promise: nil)
    }
}
