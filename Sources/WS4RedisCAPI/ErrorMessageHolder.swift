import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// The per-handle detail of the last failure, as a C string valid until the next call on the handle.
class ErrorMessageHolder: @unchecked Sendable {
    private let lock = NIOLock()
    private var message: UnsafeMutablePointer<CChar> = strdup("")

    deinit {
        free(message)
    }

    var cMessage: UnsafePointer<CChar> { lock.withLock { UnsafePointer(message) } }

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
        lock.withLock {
            free(message)
            message = strdup(text)
        }
    }
}
