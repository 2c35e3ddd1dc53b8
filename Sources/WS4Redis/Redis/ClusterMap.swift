/// Which master serves which slots, from `CLUSTER SLOTS`: one shard per master.
struct ClusterMap: Equatable {
    struct Shard: Equatable {
        var slots: [ClosedRange<Int>]
        var master: HostAndPort
        var replicas: [HostAndPort]
    }

    let shards: [Shard]

    init(shards: [Shard]) {
        self.shards = shards
    }

    /// Parses `CLUSTER SLOTS`: `[[start, end, [host, port, id...], [replica...]...]...]`.
    init(slotsReply reply: RESPReply) throws {
        guard case .array(let ranges?) = reply else { throw NodeLookup.Failure(description: "CLUSTER SLOTS answered \(reply)") }
        var shards: [Shard] = []
        for range in ranges {
            guard case .array(let parts?) = range, parts.count >= 3, case .integer(let start) = parts[0], case .integer(let end) = parts[1],
                start <= end, let master = Self.node(parts[2])
            else { throw NodeLookup.Failure(description: "unexpected CLUSTER SLOTS entry \(range)") }
            let replicas = parts.dropFirst(3).compactMap(Self.node)
            if let index = shards.firstIndex(where: { $0.master == master }) {
                shards[index].slots.append(start...end)
            } else {
                shards.append(Shard(slots: [start...end], master: master, replicas: replicas))
            }
        }
        guard !shards.isEmpty else { throw NodeLookup.Failure(description: "the cluster serves no slots") }
        self.shards = shards
    }

    private static func node(_ reply: RESPReply) -> HostAndPort? {
        guard case .array(let fields?) = reply, fields.count >= 2, case .bulk(let host?) = fields[0], case .integer(let port) = fields[1] else { return nil }
        return HostAndPort(host: String(buffer: host), port: port)
    }

    func shardIndex(ofSlot slot: Int) -> Int? {
        shards.firstIndex { $0.slots.contains { $0.contains(slot) } }
    }

    func shardIndex(of key: some Collection<UInt8>) -> Int? {
        shardIndex(ofSlot: ClusterSlots.slot(of: key))
    }

    func master(ofSlot slot: Int) -> HostAndPort? {
        shardIndex(ofSlot: slot).map { shards[$0].master }
    }
}
