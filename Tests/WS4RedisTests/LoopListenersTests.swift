import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class LoopListenersTests: XCTestCase {
    private var serverGroup: MultiThreadedEventLoopGroup!
    private var clientGroup: MultiThreadedEventLoopGroup!

    override func setUp() {
        serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() {
        try? clientGroup.syncShutdownGracefully()
        try? serverGroup.syncShutdownGracefully()
    }

    private var loops: [any EventLoop] { Array(serverGroup.makeIterator()) }

    private func bind(port: Int, shared: Bool, onAccept: @escaping @Sendable (Acceptance) -> Void = { _ in }) throws -> LoopListeners {
        let loops = self.loops
        return try LoopListeners.bind(HostAndPort(host: "127.0.0.1", port: port), loops: loops, sharedWithOtherProcesses: shared) { channel, index in
            onAccept(Acceptance(listener: index, onItsLoop: channel.eventLoop === loops[index]))
            return channel.eventLoop.makeSucceededVoidFuture()
        }
    }

    func testEveryLoopListensOnOnePortAndServesWhatItAccepts() throws {
        let accepted = NIOLockedValueBox<[Acceptance]>([])
        let allAccepted = expectation(description: "every connection accepted")
        allAccepted.expectedFulfillmentCount = 64
        let listeners = try bind(port: 0, shared: false) { acceptance in
            accepted.withLockedValue { $0.append(acceptance) }
            allAccepted.fulfill()
        }
        defer { listeners.close() }
        let ports = Set(listeners.channels.map { $0.localAddress?.port })
        XCTAssertEqual(listeners.channels.count, 2)
        XCTAssertEqual(ports.count, 1, "port 0: the second loop joins the port the first was given")
        let port = try XCTUnwrap(listeners.localAddress?.port)

        // The kernel hashes each connection's addresses to a listener: 64 connections all landing on one
        // of two listeners would happen once in 2^63 runs.
        let clients = try (0..<allAccepted.expectedFulfillmentCount).map { _ in
            try ClientBootstrap(group: clientGroup).connect(host: "127.0.0.1", port: port).wait()
        }
        defer { clients.forEach { try? $0.close().wait() } }
        wait(for: [allAccepted], timeout: 10)

        let acceptances = accepted.withLockedValue { $0 }
        XCTAssertEqual(Set(acceptances.map(\.listener)), [0, 1], "both loops accept")
        XCTAssertTrue(acceptances.allSatisfy(\.onItsLoop), "a socket is served on the loop that accepted it")
    }

    func testAPortAnotherServerListensOnIsRefusedUnlessShared() throws {
        let first = try bind(port: 0, shared: true)
        defer { first.close() }
        let port = try XCTUnwrap(first.localAddress?.port)

        XCTAssertThrowsError(try bind(port: port, shared: false)) { error in
            let failure = error as? WS4RedisError
            XCTAssertEqual(failure?.kind, .bind)
            XCTAssertTrue(failure?.message.hasPrefix("cannot listen on 127.0.0.1:\(port): ") ?? false, "\(error)")
        }
        let joined = try bind(port: port, shared: true)
        joined.close()
    }
}

private struct Acceptance: Sendable {
    let listener: Int
    let onItsLoop: Bool
}
