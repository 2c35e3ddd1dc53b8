/// SHA-1 (FIPS 180-4), needed only for `Sec-WebSocket-Accept`; NIO keeps its own copy internal.
/// Runs once per handshake: the message schedule and the padded tail live on the stack.
package struct SHA1 {
    private var state: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)

    package static func hash(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var sha = SHA1()
        bytes.withContiguousBytes { sha.consume($0) }
        let words = sha.state
        return [UInt8](unsafeUninitializedCapacity: 20) { digest, count in
            for (index, word) in [words.0, words.1, words.2, words.3, words.4].enumerated() {
                digest[index * 4] = UInt8(truncatingIfNeeded: word >> 24)
                digest[index * 4 + 1] = UInt8(truncatingIfNeeded: word >> 16)
                digest[index * 4 + 2] = UInt8(truncatingIfNeeded: word >> 8)
                digest[index * 4 + 3] = UInt8(truncatingIfNeeded: word)
            }
            count = 20
        }
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
            // A loop per round function rather than a switch in every round: a fifth fewer instructions per block.
            func round(_ f: UInt32, _ k: UInt32, _ word: UInt32) {
                let temp = rotateLeft(a, 5) &+ f &+ e &+ k &+ word
                (e, d, c, b, a) = (d, c, rotateLeft(b, 30), a, temp)
            }
            for i in 0..<20 { round((b & c) | (~b & d), 0x5A82_7999, w[i]) }
            for i in 20..<40 { round(b ^ c ^ d, 0x6ED9_EBA1, w[i]) }
            for i in 40..<60 { round((b & c) | (b & d) | (c & d), 0x8F1B_BCDC, w[i]) }
            for i in 60..<80 { round(b ^ c ^ d, 0xCA62_C1D6, w[i]) }
            state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d, state.4 &+ e)
        }
    }

    private func rotateLeft(_ value: UInt32, _ count: UInt32) -> UInt32 { value << count | value >> (32 - count) }
}
