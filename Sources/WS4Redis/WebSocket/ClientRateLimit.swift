import NIOCore

/// How fast one client may send: messages per second and bytes per second, each with a burst.
/// The generic cell rate algorithm (a token bucket without a timer): each message moves the
/// client's theoretical arrival time on by its cost, and a client that runs further ahead of the
/// clock than its burst is over its rate. Two integers of state, no timer, no allocation.
struct ClientRateLimit {
    /// A rate in nanoseconds of allowance per unit (message or byte) and the burst as a head start.
    struct Rate {
        let nanosecondsPerUnit: Int64
        let burstNanoseconds: Int64

        /// nil when the rate is 0 (unlimited).
        init?(perSecond: Int, burst: Int) {
            guard perSecond > 0 else { return nil }
            nanosecondsPerUnit = 1_000_000_000 / Int64(perSecond)
            burstNanoseconds = Int64(burst) * 1_000_000_000 / Int64(perSecond)
        }

        func cost(of units: Int) -> Int64 {
            Int64(units) * nanosecondsPerUnit
        }
    }

    enum Verdict: Equatable {
        case admitted
        case tooManyMessages
        case tooManyBytes
    }

    /// The only state, kept in each connection (16 bytes): the rates are the server's.
    private var messagesDue: Int64 = 0
    private var bytesDue: Int64 = 0

    /// Counts one message of `count` bytes received at `now` (uptime nanoseconds) against the rates
    /// (nil: unlimited); over a rate, nothing is counted and the verdict names the rate.
    mutating func admit(bytes count: Int, now: Int64, messages: Rate?, bytes: Rate?) -> Verdict {
        let messagesAfter = messages.map { max(messagesDue, now) + $0.nanosecondsPerUnit }
        if let messages, let messagesAfter, messagesAfter - now > messages.burstNanoseconds + messages.nanosecondsPerUnit { return .tooManyMessages }
        let bytesAfter = bytes.map { max(bytesDue, now) + $0.cost(of: count) }
        if let bytes, let bytesAfter, bytesAfter - now > bytes.burstNanoseconds { return .tooManyBytes }
        messagesDue = messagesAfter ?? messagesDue
        bytesDue = bytesAfter ?? bytesDue
        return .admitted
    }
}
