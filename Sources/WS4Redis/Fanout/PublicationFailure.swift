/// Why a client's message did not reach Redis.
enum PublicationFailure {
    /// Not connected, the command queue full, or no answer in time: it may go through later.
    case unavailable
    /// Redis answered with an error (out of memory, a wrong type at the key, ...).
    case refused
}
