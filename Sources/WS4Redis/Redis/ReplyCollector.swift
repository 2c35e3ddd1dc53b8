import NIOCore
import NIOPosix

/// Completes `replies` once `expected` replies arrived, or fails it when the connection ends first.
final class ReplyCollector: ChannelInboundHandler {
    typealias InboundIn = RESPReply

    private let expected: Int
    private let replies: EventLoopPromise<[RESPReply]>
    private var received: [RESPReply] = []

    init(expected: Int, replies: EventLoopPromise<[RESPReply]>) {
        self.expected = expected
        self.replies = replies
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received.append(unwrapInboundIn(data))
        if received.count == expected { replies.succeed(received) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        replies.fail(NodeLookup.Failure(description: "connection closed after \(received.count) of \(expected) replies"))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        replies.fail(error)
        context.close(promise: nil)
    }
}
