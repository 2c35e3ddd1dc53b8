import Logging
import NIOCore
import NIOPosix
import NIOSSL

#if canImport(Glibc)
    import Glibc
#endif

/// Capped exponential back-off with jitter, so that many servers do not reconnect in step.
struct Backoff {
    let initial: TimeAmount
    let maximum: TimeAmount
    private var attempt = 0

    init(initial: TimeAmount, maximum: TimeAmount) {
        self.initial = initial
        self.maximum = maximum
    }

    mutating func next() -> TimeAmount {
        let ceiling = min(maximum.nanoseconds, initial.nanoseconds << min(attempt, 20))
        attempt += 1
        return .nanoseconds(Int64.random(in: ceiling / 2...ceiling))
    }

    mutating func reset() {
        attempt = 0
    }

    /// No retry since the last reset.
    var isFresh: Bool { attempt == 0 }
}
