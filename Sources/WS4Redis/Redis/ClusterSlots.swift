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
