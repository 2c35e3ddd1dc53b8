import NIOCore

/// The stored messages that new connections of one event loop ask for, fetched together: what is
/// asked during one loop tick goes to Redis as one pipelined write with one GET per distinct channel,
/// and the replies come back to the loop in one hop. A burst of handshakes then costs Redis round
/// trips per tick, not per handshake. Confined to its event loop.
final class StoredMessageFetches {
    private let eventLoop: any EventLoop
    private let publisher: ChannelPublisher
    private var asked: [Request] = []

    private struct Request {
        let channels: [String]
        let deliver: ([ByteBuffer]) -> Void
    }

    init(eventLoop: any EventLoop, publisher: ChannelPublisher) {
        self.eventLoop = eventLoop
        self.publisher = publisher
    }

    /// Hands `deliver` the stored messages of `channels`, in their order, on this loop; channels
    /// with nothing stored are left out, and nothing comes while Redis is away.
    func fetch(_ channels: [String], then deliver: @escaping ([ByteBuffer]) -> Void) {
        // Tasks run after the tick's I/O events: every handshake of this tick is asked by then.
        if asked.isEmpty { eventLoop.execute { [self] in sendAsked() } }
        asked.append(Request(channels: channels, deliver: deliver))
    }

    private func sendAsked() {
        let requests = asked
        asked = []
        var channels: [String] = []
        var positions: [String: Int] = [:]
        for request in requests {
            for channel in request.channels where positions[channel] == nil {
                positions[channel] = channels.count
                channels.append(channel)
            }
        }
        let eventLoop = eventLoop
        publisher.storedMessages(of: channels).whenSuccess { stored in
            let answer = { Self.answer(requests, stored: stored, positions: positions) }
            if eventLoop.inEventLoop {
                answer()
            } else {
                eventLoop.execute(answer)
            }
        }
    }

    private static func answer(_ requests: [Request], stored: [ByteBuffer?], positions: [String: Int]) {
        for request in requests {
            request.deliver(
                request.channels.compactMap { channel in
                    positions[channel].flatMap { $0 < stored.count ? stored[$0] : nil }
                })
        }
    }
}
