import NIOCore

/// When the sockets of one event loop that have not finished a request must be dropped (slowloris),
/// kept without a timer per socket: every socket gets the same timeout, so deadlines are armed in
/// order and a queue holds them; one repeated sweep per loop closes the expired ones. A socket
/// that answers or upgrades only empties its slot, and empty slots leave from the front.
/// Confined to its event loop.
final class HandshakeDeadlines {
    let timeout: TimeAmount
    private var queue = CircularBuffer<Slot>()
    /// The ticket of the slot at the front of the queue: tickets count every arming.
    private var frontTicket: UInt64 = 0

    private struct Slot {
        var channel: (any Channel)?
        let deadline: NIODeadline
    }

    /// What a socket keeps to disarm its deadline.
    struct Ticket {
        fileprivate let number: UInt64
    }

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    /// How often the sweep runs: a socket is dropped between `timeout` and `timeout` + this.
    var sweepInterval: TimeAmount {
        min(max(.nanoseconds(timeout.nanoseconds / 10), .milliseconds(50)), .seconds(1))
    }

    func arm(_ channel: any Channel, now: NIODeadline = .now()) -> Ticket {
        queue.append(Slot(channel: channel, deadline: now + timeout))
        return Ticket(number: frontTicket + UInt64(queue.count - 1))
    }

    func disarm(_ ticket: Ticket) {
        guard ticket.number >= frontTicket, ticket.number - frontTicket < UInt64(queue.count) else { return }
        queue[queue.index(queue.startIndex, offsetBy: Int(ticket.number - frontTicket))].channel = nil
        while let front = queue.first, front.channel == nil { dropFront() }
    }

    /// Closes the sockets whose deadline has passed.
    func sweep(now: NIODeadline = .now()) {
        while let front = queue.first, front.channel == nil || front.deadline <= now {
            dropFront()
            front.channel?.close(promise: nil)
        }
    }

    /// The slots held: armed ones and the empty ones behind the oldest armed one.
    var queued: Int { queue.count }

    private func dropFront() {
        queue.removeFirst()
        frontTicket += 1
    }
}
