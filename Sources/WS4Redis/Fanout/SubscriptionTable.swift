/// Reference counts of Redis channels per event-loop hub (the TopicTree idea): Redis sees one
/// SUBSCRIBE per channel however many sockets want it, and one UNSUBSCRIBE when the last leaves.
/// A channel whose last subscriber left stays (idle, still subscribed) until it is removed, which
/// the multiplexer does at once or after subscription_linger. Pure bookkeeping; the multiplexer
/// sends what it returns.
package struct SubscriptionTable {
    struct Entry {
        /// Subscribers of the channel per hub index.
        var countsByHub: [Int]
        var total: Int
    }

    private(set) var entries: [String: Entry] = [:]
    /// SUBSCRIBEs sent per channel whose confirmation has not come back yet. Kept apart from the
    /// entries because it outlives them: after SUBSCRIBE, UNSUBSCRIBE, SUBSCRIBE the first reply
    /// must not confirm the second SUBSCRIBE.
    private var pendingConfirmations: [String: Int] = [:]
    let hubCount: Int

    package init(hubCount: Int) {
        self.hubCount = hubCount
    }

    var channelCount: Int { entries.count }
    var channelNames: [String] { Array(entries.keys) }

    /// Counts one more subscriber per channel; returns the channels Redis must now SUBSCRIBE to
    /// (an idle one is still subscribed).
    package mutating func acquire(_ channels: [String], hub: Int) -> [String] {
        var new: [String] = []
        for channel in channels {
            if entries[channel] == nil {
                entries[channel] = Entry(countsByHub: Array(repeating: 0, count: hubCount), total: 0)
                new.append(channel)
            }
            entries[channel]!.countsByHub[hub] += 1
            entries[channel]!.total += 1
        }
        return new
    }

    /// Counts one subscriber less per channel; returns the channels left without subscribers (idle).
    package mutating func release(_ channels: [String], hub: Int) -> [String] {
        var idle: [String] = []
        for channel in channels {
            // No copy of the entry held: it would make the in-place update below copy the per-hub counts.
            guard entries[channel]?.countsByHub[hub] ?? 0 > 0 else { continue }
            entries[channel]!.countsByHub[hub] -= 1
            entries[channel]!.total -= 1
            if entries[channel]!.total == 0 { idle.append(channel) }
        }
        return idle
    }

    /// Forgets the idle ones of `channels`; returns them: the channels Redis must now UNSUBSCRIBE from.
    package mutating func remove(_ channels: [String]) -> [String] {
        channels.filter { channel in
            guard entries[channel]?.total == 0 else { return false }
            entries[channel] = nil
            return true
        }
    }

    mutating func subscribeSent(_ channels: [String]) {
        for channel in channels { pendingConfirmations[channel, default: 0] += 1 }
    }

    /// Records Redis's confirmation; true when the channel is wanted and now fully confirmed.
    mutating func confirmationReceived(_ channel: String) -> Bool {
        guard let pending = pendingConfirmations[channel] else { return false }
        pendingConfirmations[channel] = pending > 1 ? pending - 1 : nil
        return pending == 1 && entries[channel] != nil
    }

    package func isWanted(_ channel: String) -> Bool {
        entries[channel] != nil
    }

    func isConfirmed(_ channel: String, connected: Bool) -> Bool {
        connected && entries[channel] != nil && pendingConfirmations[channel] == nil
    }

    /// The connection carrying `channels` is gone: nothing sent there is pending any more; all must
    /// be sent again.
    mutating func connectionLost(of channels: some Sequence<String>) {
        for channel in channels { pendingConfirmations[channel] = nil }
    }

    /// Calls `body` with each hub index that has subscribers of `channel`.
    func forEachHub(of channel: String, _ body: (Int) -> Void) {
        guard let entry = entries[channel] else { return }
        for (hub, count) in entry.countsByHub.enumerated() where count > 0 { body(hub) }
    }
}
