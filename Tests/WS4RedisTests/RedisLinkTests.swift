import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class RedisLinkTests: XCTestCase {
    /// An owner that waits for stop() and then goes away must not be called after it went: stopping
    /// a server that failed to start crashed on a `down` that came after stop() had completed.
    func testStopCompletesOnlyAfterTheOwnerWasToldOfTheLoss() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        // A plain TCP listener: the link only connects; what it speaks is its handlers' business.
        let listener = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? listener.close().wait() }
        let endpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: listener.localAddress!.port!), database: 0)
        let connected = group.next().makePromise(of: Void.self)
        let toldOfLoss = NIOLockedValueBox(false)
        let link = try RedisLink(
            endpoint: endpoint, eventLoop: group.next(), logger: Logger(label: "test"), options: .defaults, handlers: { [] },
            up: { _ in connected.succeed(()) },
            down: { _ in
                // Slow, so that a stop() that completed before it shows.
                usleep(100_000)
                toldOfLoss.withLockedValue { $0 = true }
            }
        )
        link.start()
        try connected.futureResult.wait()
        try link.stop().wait()
        XCTAssertTrue(toldOfLoss.withLockedValue { $0 }, "stop() completed before the owner was told the connection went")
    }
}
