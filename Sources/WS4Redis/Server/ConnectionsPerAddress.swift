import NIOConcurrencyHelpers

/// The websockets of each client address (`max_connections_per_ip`), counted from the accepted
/// handshake until its connection is gone. A slot is held by an object whose release is its
/// deinit: every way an accepted handshake can end (closed websocket, a host that never adopts the
/// socket, a client gone before the 101) frees the slot without a path of its own.
final class ConnectionsPerAddress: Sendable {
    private let limit: Int
    /// A pthread lock rather than Synchronization's Mutex: ThreadSanitizer sees the former.
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    init(limit: Int) {
        self.limit = limit
    }

    /// A slot for one more websocket from `address`, or nil when it has `limit` already.
    func reserve(_ address: String) -> AddressSlot? {
        let reserved = counts.withLockedValue { counts in
            let count = counts[address, default: 0]
            guard count < limit else { return false }
            counts[address] = count + 1
            return true
        }
        return reserved ? AddressSlot(address: address, owner: self) : nil
    }

    func release(_ address: String) {
        counts.withLockedValue { counts in
            let count = counts[address, default: 1]
            counts[address] = count > 1 ? count - 1 : nil
        }
    }

    /// Addresses with at least one websocket (tests).
    var addresses: Int { counts.withLockedValue(\.count) }
}
