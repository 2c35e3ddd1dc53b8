import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The handshake timeout for connections a host holds while its own HTTP stack reads request heads
/// (ws4redis-host on libmicrohttpd), the same rule as for the core's own listener. The host's
/// thread arms and disarms; a repeated sweep on one event loop shuts the expired ones down:
/// shutdown(2), never close(2), so the host sees the end of the stream on its own thread and closes
/// the descriptor itself. Disarming and the sweep take one lock, so a descriptor the host has let go
/// of (and whose number may be reused) is never touched.
final class ArrivalDeadlines: @unchecked Sendable {
    private let lock = NIOLock()
    private let deadlines: HandshakeDeadlines<CInt>

    init(timeout: TimeAmount) {
        deadlines = HandshakeDeadlines(timeout: timeout) { descriptor in _ = shutdown(descriptor, CInt(SHUT_RDWR)) }
    }

    var sweepInterval: TimeAmount { deadlines.sweepInterval }

    func arm(_ descriptor: CInt) -> HandshakeDeadlines<CInt>.Ticket {
        lock.withLock { deadlines.arm(descriptor) }
    }

    func disarm(_ ticket: HandshakeDeadlines<CInt>.Ticket) {
        lock.withLock { deadlines.disarm(ticket) }
    }

    func sweep() {
        lock.withLock { deadlines.sweep() }
    }
}
