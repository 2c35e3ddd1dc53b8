import NIOCore

/// When the sockets that have not finished a request must be dropped (slowloris), kept without a
/// timer per socket: every socket gets the same timeout, so deadlines are armed in order and a
/// queue holds them; one repeated sweep drops the expired ones. A socket that answers or upgrades
/// only empties its slot, and empty slots leave from the front. `Target` is what a slot holds: a
/// channel of the core's own listener, or a descriptor a host reads from (`ArrivalDeadlines`).
/// Not thread-safe: confined to its event loop, or to its owner's lock.
final class HandshakeDeadlines<Target> {
    let timeout: TimeAmount
    private let expire: (Target) -> Void
    private var queue = CircularBuffer<Slot>()
    /// The ticket of the slot at the front of the queue: tickets count every arming.
    private var frontTicket: UInt64 = 0

    private struct Slot {
        var target: Target?
        let deadline: NIODeadline
    }

    /// What a socket keeps to disarm its deadline.
    struct Ticket {
        fileprivate let number: UInt64
    }

    init(timeout: TimeAmount, expire: @escaping (Target) -> Void) {
        self.timeout = timeout
        self.expire = expire
    }

    /// How often the sweep runs: a socket is dropped between `timeout` and `timeout` + this.
    var sweepInterval: TimeAmount {
        min(max(.nanoseconds(timeout.nanoseconds / 10), .milliseconds(50)), .seconds(1))
    }

    func arm(_ target: Target, now: NIODeadline = .now()) -> Ticket {
        queue.append(Slot(target: target, deadline: now + timeout))
        return Ticket(number: frontTicket + UInt64(queue.count - 1))
    }

    func disarm(_ ticket: Ticket) {
        guard ticket.number >= frontTicket, ticket.number - frontTicket < UInt64(queue.count) else { return }
        queue[queue.index(queue.startIndex, offsetBy: Int(ticket.number - frontTicket))].target = nil
        while let front = queue.first, front.target == nil { dropFront() }
    }

    /// Drops the sockets whose deadline has passed.
    func sweep(now: NIODeadline = .now()) {
        while let front = queue.first, front.target == nil || front.deadline <= now {
            dropFront()
            front.target.map(expire)
        }
    }

    /// The slots held: armed ones and the empty ones behind the oldest armed one.
    var queued: Int { queue.count }

    private func dropFront() {
        queue.removeFirst()
        frontTicket += 1
    }
}

/// The deadlines of one loop's sockets on the core's own listeners: an expired one is closed.
typealias ChannelDeadlines = HandshakeDeadlines<any Channel>

extension HandshakeDeadlines where Target == any Channel {
    convenience init(timeout: TimeAmount) {
        self.init(timeout: timeout) { $0.close(promise: nil) }
    }
}
