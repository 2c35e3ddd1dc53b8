import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A connection ended before any byte of its answer: on a reused one, the app closed it while it
/// was idle, and the request may be sent again on a new connection.
struct AuthConnectionClosedEarly: Error, CustomStringConvertible {
    var description: String { "the app closed the connection without answering" }
}
