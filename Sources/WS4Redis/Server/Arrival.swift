import NIOCore

/// One connection a host holds, from its arrival until the host closes it or hands it over: its
/// deadline runs while a request head is awaited. Calls come from one host thread at a time.
package final class Arrival: @unchecked Sendable {
    private let descriptor: CInt
    private let deadlines: ArrivalDeadlines
    private var ticket: HandshakeDeadlines<CInt>.Ticket?
    private var handedOver = false

    init(descriptor: CInt, deadlines: ArrivalDeadlines) {
        self.descriptor = descriptor
        self.deadlines = deadlines
        ticket = deadlines.arm(descriptor)
    }

    /// A complete request head arrived: no deadline while the request is answered.
    package func headRead() {
        ticket.map(deadlines.disarm)
        ticket = nil
    }

    /// The request was answered and the connection kept alive: the next head has the whole
    /// timeout again. Not once watching stopped: a websocket's socket has no deadline.
    package func awaitingHead() {
        guard !handedOver else { return }
        headRead()
        ticket = deadlines.arm(descriptor)
    }

    /// The socket became a websocket, or the host is about to close it: never touched again.
    package func stopWatching() {
        headRead()
        handedOver = true
    }
}
