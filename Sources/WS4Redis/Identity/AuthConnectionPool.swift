import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Keep-alive connections to the auth URL, a few idle ones per event loop: a handshake asks the
/// app over a connection an earlier one left open instead of a TCP handshake of its own (the app
/// sees one connection per loop under steady load, not one per websocket).
final class AuthConnectionPool: Sendable {
    private let url: HTTPURL
    /// Idle connections per event loop, beyond which an answered one is closed.
    private let maxIdlePerLoop = 8
    /// A pthread lock rather than Synchronization's Mutex: ThreadSanitizer sees the former.
    private let idle = NIOLockedValueBox<[ObjectIdentifier: [any Channel]]>([:])

    init(url: HTTPURL) {
        self.url = url
    }

    /// Sends one request and completes with the response head once the whole response arrived, or
    /// fails with `AuthRequestTimeout` at `deadline` (closing that connection: its answer is no use).
    /// A reused connection that the app closed while it was idle is retried once on a new one.
    func ask(_ headers: [(name: String, value: String)], on eventLoop: any EventLoop, deadline: NIODeadline) -> EventLoopFuture<HTTPResponseHead> {
        if let reused = takeIdle(on: eventLoop) {
            return send(headers, on: reused, deadline: deadline).flatMapError { [self] error in
                guard error is AuthConnectionClosedEarly else { return eventLoop.makeFailedFuture(error) }
                return connect(on: eventLoop, deadline: deadline).flatMap { [self] in send(headers, on: $0, deadline: deadline) }
            }
        }
        return connect(on: eventLoop, deadline: deadline).flatMap { [self] in send(headers, on: $0, deadline: deadline) }
    }

    private func send(_ headers: [(name: String, value: String)], on channel: any Channel, deadline: NIODeadline) -> EventLoopFuture<HTTPResponseHead> {
        let answer = channel.eventLoop.makePromise(of: HTTPResponseHead.self)
        let timer = channel.eventLoop.scheduleTask(deadline: deadline) {
            answer.fail(AuthRequestTimeout())
            channel.close(promise: nil)
        }
        do {
            try channel.pipeline.syncOperations.handler(type: AuthResponseHandler.self).expect(answer)
        } catch {
            answer.fail(error)
            return answer.futureResult
        }
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.path)
        head.headers.add(name: "Host", value: "\(url.host):\(url.port)")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        answer.futureResult.whenComplete { [self] result in
            timer.cancel()
            if case .success(let response) = result, response.isKeepAlive, channel.isActive {
                putIdle(channel)
            } else {
                channel.close(promise: nil)
            }
        }
        return answer.futureResult
    }

    private func connect(on eventLoop: any EventLoop, deadline: NIODeadline) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: eventLoop)
            .connectTimeout(max(deadline - .now(), .milliseconds(1)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(AuthResponseHandler())
                }
            }
            .connect(host: url.host, port: url.port)
    }

    private func takeIdle(on eventLoop: any EventLoop) -> (any Channel)? {
        idle.withLockedValue { idle in
            let key = ObjectIdentifier(eventLoop as AnyObject)
            while let channel = idle[key]?.popLast() {
                if channel.isActive { return channel }
            }
            return nil
        }
    }

    private func putIdle(_ channel: any Channel) {
        let kept = idle.withLockedValue { idle in
            let key = ObjectIdentifier(channel.eventLoop as AnyObject)
            idle[key, default: []].removeAll { !$0.isActive }
            guard idle[key, default: []].count < maxIdlePerLoop else { return false }
            idle[key, default: []].append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    /// Closes the idle connections (the server stops).
    func close() {
        let channels = idle.withLockedValue { idle in
            defer { idle = [:] }
            return idle.values.flatMap { $0 }
        }
        for channel in channels { channel.close(promise: nil) }
    }
}
