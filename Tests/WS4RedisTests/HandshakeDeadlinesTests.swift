import NIOCore
import NIOEmbedded
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

/// The per-loop queue of handshake deadlines: expired sockets closed by the sweep, disarmed ones never.
final class HandshakeDeadlinesTests: XCTestCase {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func testTheSweepClosesOnlyExpiredArmedSockets() throws {
        let deadlines = ChannelDeadlines(timeout: .seconds(10))
        let channels = try (0..<3).map { _ in try connectedChannel() }
        let tickets = channels.enumerated().map { deadlines.arm($1, now: start + .milliseconds(Int64($0))) }
        deadlines.disarm(tickets[1])

        deadlines.sweep(now: start + .seconds(10) - .nanoseconds(1))
        XCTAssertEqual(channels.map(\.isActive), [true, true, true], "nothing has expired yet")
        deadlines.sweep(now: start + .seconds(10) + .milliseconds(2))
        XCTAssertEqual(channels.map(\.isActive), [false, true, false], "the armed sockets expired; the disarmed one stays")
        XCTAssertEqual(deadlines.queued, 0)
    }

    func testDisarmedSlotsLeaveTheFrontAtOnce() throws {
        let deadlines = ChannelDeadlines(timeout: .seconds(10))
        let channels = try (0..<3).map { _ in try connectedChannel() }
        let tickets = channels.map { deadlines.arm($0, now: start) }
        deadlines.disarm(tickets[1])
        XCTAssertEqual(deadlines.queued, 3, "a slot behind an armed one waits for it")
        deadlines.disarm(tickets[0])
        XCTAssertEqual(deadlines.queued, 1, "the front and the empty slot behind it left")
        deadlines.disarm(tickets[0])
        XCTAssertEqual(deadlines.queued, 1, "disarming twice changes nothing")
        let rearmed = deadlines.arm(channels[0], now: start + .seconds(1))
        deadlines.sweep(now: start + .seconds(10))
        XCTAssertEqual(channels.map(\.isActive), [true, true, false], "the re-armed socket has its later deadline")
        deadlines.disarm(rearmed)
        XCTAssertEqual(deadlines.queued, 0)
    }

    func testTheSweepIntervalFollowsTheTimeoutWithinBounds() {
        XCTAssertEqual(ChannelDeadlines(timeout: .seconds(10)).sweepInterval, .seconds(1))
        XCTAssertEqual(ChannelDeadlines(timeout: .seconds(2)).sweepInterval, .milliseconds(200))
        XCTAssertEqual(ChannelDeadlines(timeout: .milliseconds(100)).sweepInterval, .milliseconds(50))
    }

    private func connectedChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }
}
