/// Redis Cluster's key slots: CRC16 (XMODEM) of the key, or of its `{hash tag}`, modulo 16384.
enum ClusterSlots {
    static let count = 16384

    static func slot(of key: some Collection<UInt8>) -> Int {
        Int(crc16(hashed(Array(key)))) % count
    }

    /// The part of a key that is hashed: the first non-empty `{...}`, else the whole key.
    private static func hashed(_ key: [UInt8]) -> ArraySlice<UInt8> {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")),
              let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        else { return key[...] }
        return key[(open + 1)..<close]
    }

    private static func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes { crc = (crc << 8) ^ table[Int(UInt8(crc >> 8) ^ byte)] }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}

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
