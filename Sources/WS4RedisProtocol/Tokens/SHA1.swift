/// SHA-1 (FIPS 180-4), needed only for `Sec-WebSocket-Accept`; NIO keeps its own copy internal.
/// Runs once per handshake: the message schedule and the padded tail live on the stack.
package struct SHA1 {
    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)

    package static func hash(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var sha = SHA1()
        bytes.withContiguousBytes { sha.consume($0) }
        var digest: [UInt8] = []
        digest.reserveCapacity(20)
        for word in [sha.state.0, sha.state.1, sha.state.2, sha.state.3, sha.state.4] {
            for shift: UInt32 in [24, 16, 8, 0] { digest.append(UInt8(truncatingIfNeeded: word >> shift)) }
        }
        return digest
    }

    /// Every whole block of the message, then the rest with its padding and bit length.
    private mutating func consume(_ message: UnsafeBufferPointer<UInt8>) {
        let whole = message.count / 64 * 64
        for start in stride(from: 0, to: whole, by: 64) { process(UnsafeBufferPointer(rebasing: message[start..<start + 64])) }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { tail in
            tail.initialize(repeating: 0)
            let rest = message.count - whole
            for index in 0..<rest { tail[index] = message[whole + index] }
            tail[rest] = 0x80
            let tailLength = rest < 56 ? 64 : 128
            let bitLength = UInt64(message.count) * 8
            for index in 0..<8 { tail[tailLength - 1 - index] = UInt8(truncatingIfNeeded: bitLength >> UInt64(8 * index)) }
            for start in stride(from: 0, to: tailLength, by: 64) { process(UnsafeBufferPointer(rebasing: tail[start..<start + 64])) }
        }
    }

    private mutating func process(_ block: UnsafeBufferPointer<UInt8>) {
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 80) { w in
            for i in 0..<16 {
                w[i] = UInt32(block[i * 4]) << 24 | UInt32(block[i * 4 + 1]) << 16 | UInt32(block[i * 4 + 2]) << 8 | UInt32(block[i * 4 + 3])
            }
            for i in 16..<80 { w[i] = rotateLeft(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1) }
            var (a, b, c, d, e) = state
            for i in 0..<80 {
                let (f, k): (UInt32, UInt32)
                switch i {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let temp = rotateLeft(a, 5) &+ f &+ e &+ k &+ w[i]
                (e, d, c, b, a) = (d, c, rotateLeft(b, 30), a, temp)
            }
            state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d, state.4 &+ e)
        }
    }

    private func rotateLeft(_ value: UInt32, _ count: UInt32) -> UInt32 { value << count | value >> (32 - count) }
}
