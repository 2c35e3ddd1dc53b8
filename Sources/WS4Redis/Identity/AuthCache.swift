import NIOConcurrencyHelpers
import NIOCore

/// The auth request's granted answers, each for `lifetime`, at most `capacity` of them: the least
/// recently used goes first. Only grants are kept: a denial or an error may be passing (the app
/// restarting, a session store's hiccup), and a client that keeps being refused keeps asking.
/// Thread-safe: handshakes of every event loop share it.
final class AuthCache: Sendable {
    private let lifetime: TimeAmount
    private let capacity: Int
    /// A pthread lock rather than Synchronization's Mutex: ThreadSanitizer sees the former.
    private let entries = NIOLockedValueBox(Entries())

    init(lifetime: TimeAmount, capacity: Int) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    func grant(for key: String, now: NIODeadline = .now()) -> Authorization? {
        entries.withLockedValue { $0.take(key, now: now) }
    }

    func store(_ authorization: Authorization, for key: String, now: NIODeadline = .now()) {
        guard capacity > 0 else { return }
        entries.withLockedValue { $0.put(key, Entries.Entry(expiry: now + lifetime, authorization: authorization), capacity: capacity) }
    }

    var count: Int { entries.withLockedValue(\.count) }

    /// A dictionary for look-ups and a doubly linked list through its slots for recency.
    private struct Entries {
        struct Entry {
            var expiry: NIODeadline
            var authorization: Authorization
        }

        private struct Node {
            var key: String
            var entry: Entry
            var newer: Int?
            var older: Int?
        }

        private var slots: [String: Int] = [:]
        private var nodes: [Node] = []
        private var newest: Int?
        private var oldest: Int?

        var count: Int { slots.count }

        mutating func take(_ key: String, now: NIODeadline) -> Authorization? {
            guard let slot = slots[key] else { return nil }
            guard nodes[slot].entry.expiry > now else {
                remove(slot)
                return nil
            }
            unlink(slot)
            linkNewest(slot)
            return nodes[slot].entry.authorization
        }

        mutating func put(_ key: String, _ entry: Entry, capacity: Int) {
            if let slot = slots[key] {
                nodes[slot].entry = entry
                unlink(slot)
                linkNewest(slot)
                return
            }
            if slots.count >= capacity, let oldest { remove(oldest) }
            nodes.append(Node(key: key, entry: entry))
            slots[key] = nodes.count - 1
            linkNewest(nodes.count - 1)
        }

        /// Moves the last node into the freed slot, so that the array stays dense.
        private mutating func remove(_ slot: Int) {
            unlink(slot)
            slots[nodes[slot].key] = nil
            let last = nodes.count - 1
            if slot != last {
                let moved = nodes[last]
                nodes[slot] = moved
                slots[moved.key] = slot
                if let newer = moved.newer { nodes[newer].older = slot } else { newest = slot }
                if let older = moved.older { nodes[older].newer = slot } else { oldest = slot }
            }
            nodes.removeLast()
        }

        private mutating func unlink(_ slot: Int) {
            let node = nodes[slot]
            if let newer = node.newer { nodes[newer].older = node.older } else if newest == slot { newest = node.older }
            if let older = node.older { nodes[older].newer = node.newer } else if oldest == slot { oldest = node.newer }
            nodes[slot].newer = nil
            nodes[slot].older = nil
        }

        private mutating func linkNewest(_ slot: Int) {
            nodes[slot].older = newest
            nodes[slot].newer = nil
            if let newest { nodes[newest].newer = slot }
            newest = slot
            if oldest == nil { oldest = slot }
        }
    }
}
