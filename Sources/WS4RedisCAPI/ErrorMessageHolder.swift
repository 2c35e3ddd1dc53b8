import NIOConcurrencyHelpers
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The detail of a handle's last failure, kept per thread: a thread reads the message of its own last
/// failed call, which no call on another thread can replace or free (handles are shared by threads).
class ErrorMessageHolder: @unchecked Sendable {
    /// Handles are told apart by a number that is never reused, not by an address that may be.
    private static let lastID = NIOLockedValueBox<UInt64>(0)
    private static let failures = ThreadSpecificVariable<ThreadFailure>()
    private let id = lastID.withLockedValue { id in
        id += 1
        return id
    }

    /// This thread's message when its last failed call was on this handle, else "".
    var cMessage: UnsafePointer<CChar> {
        guard let failure = Self.failures.currentValue, failure.handle == id else { return cStaticString("") }
        return UnsafePointer(failure.message)
    }

    /// Runs `body`, recording the error's message when it throws; returns the C status.
    func recording(_ body: () throws -> Void) -> Int32 {
        do {
            try body()
            return 0
        } catch {
            record("\(error)")
            return status(of: error)
        }
    }

    func record(_ text: String) {
        let failure = Self.failures.currentValue ?? ThreadFailure()
        Self.failures.currentValue = failure
        failure.replace(handle: id, message: text)
    }
}

/// A thread's last failure: one message per thread, freed when the thread ends or fails again.
private final class ThreadFailure {
    private(set) var handle: UInt64 = 0
    private(set) var message: UnsafeMutablePointer<CChar> = strdup("")

    func replace(handle: UInt64, message text: String) {
        free(message)
        message = strdup(text)
        self.handle = handle
    }

    deinit {
        free(message)
    }
}
