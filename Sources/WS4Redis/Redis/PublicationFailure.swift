/// Why a message did not reach Redis.
package enum PublicationFailure: Error {
    /// Not connected, the command queue full, or no answer in time: it may go through later.
    case unavailable(any Error)
    /// Redis answered with an error (out of memory, a wrong type at the key, ...).
    case refused([RESPReply])
}
