import NIOCore

/// Incremental UTF-8 validation (RFC 3629), so that a text message split across frames fails on
/// the first invalid byte instead of after reassembly.
package struct UTF8Validator: Sendable {
    /// Continuation bytes still expected for the current code point.
    private var remaining = 0
    /// The range the next continuation byte must fall in (narrower after E0, ED, F0, F4).
    private var lower: UInt8 = 0x80
    private var upper: UInt8 = 0xBF

    /// Whether the bytes consumed so far end on a code point boundary.
    package var isAtBoundary: Bool { remaining == 0 }

    /// Consumes bytes; false as soon as they cannot be part of valid UTF-8.
    package mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for byte in bytes {
            if remaining == 0 {
                if byte < 0x80 { continue }
                guard startSequence(byte) else { return false }
            } else {
                guard byte >= lower, byte <= upper else { return false }
                remaining -= 1
                (lower, upper) = (0x80, 0xBF)
            }
        }
        return true
    }

    private mutating func startSequence(_ byte: UInt8) -> Bool {
        switch byte {
        case 0xC2...0xDF: (remaining, lower, upper) = (1, 0x80, 0xBF)
        case 0xE0: (remaining, lower, upper) = (2, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (remaining, lower, upper) = (2, 0x80, 0xBF)
        case 0xED: (remaining, lower, upper) = (2, 0x80, 0x9F)
        case 0xF0: (remaining, lower, upper) = (3, 0x90, 0xBF)
        case 0xF1...0xF3: (remaining, lower, upper) = (3, 0x80, 0xBF)
        case 0xF4: (remaining, lower, upper) = (3, 0x80, 0x8F)
        default: return false
        }
        return true
    }

    /// Whether a complete buffer is valid UTF-8.
    package static func isValid(_ buffer: ByteBuffer) -> Bool {
        var validator = UTF8Validator()
        return buffer.withUnsafeReadableBytes { validator.consume($0) } && validator.isAtBoundary
    }
}
