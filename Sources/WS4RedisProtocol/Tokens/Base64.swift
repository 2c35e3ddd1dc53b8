/// Base64 (RFC 4648): standard with padding for the handshake's key and accept values, URL-safe
/// without padding for signed tokens.
package enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    package static func encodeURLSafe(_ bytes: [UInt8]) -> String {
        String(
            encode(bytes).compactMap { character -> Character? in
                switch character {
                case "+": "-"
                case "/": "_"
                case "=": nil
                default: character
                }
            })
    }

    /// Decodes URL-safe base64 as `encodeURLSafe` writes it, and nothing else: no padding, no other
    /// alphabet, no stray trailing bits. A token then has one spelling, so no variant of a signed
    /// token passes for it.
    package static func decodeURLSafe(_ text: Substring) -> [UInt8]? {
        var values: [UInt8] = []
        values.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            guard let value = urlSafeValue(of: byte) else { return nil }
            values.append(value)
        }
        let tail = values.count % 4
        guard tail != 1 else { return nil }
        // The bits of the last character past the bytes it completes must be zero.
        if tail == 2, values.last! & 0x0F != 0 { return nil }
        if tail == 3, values.last! & 0x03 != 0 { return nil }
        var bytes: [UInt8] = []
        for start in stride(from: 0, to: values.count, by: 4) {
            let chunk = values[start..<min(start + 4, values.count)]
            let bits = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << UInt32(18 - 6 * $1.offset) }
            for index in 0..<(chunk.count - 1) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt32(16 - 8 * index))) }
        }
        return bytes
    }

    private static func urlSafeValue(of byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: nil
        }
    }

    /// Written straight into the string's storage: every handshake encodes its accept value.
    package static func encode(_ bytes: [UInt8]) -> String {
        String(unsafeUninitializedCapacity: (bytes.count + 2) / 3 * 4) { output in
            alphabet.withUnsafeBufferPointer { alphabet in
                var written = 0
                for start in stride(from: 0, to: bytes.count, by: 3) {
                    let count = min(3, bytes.count - start)
                    var value = UInt32(bytes[start]) << 16
                    if count > 1 { value |= UInt32(bytes[start + 1]) << 8 }
                    if count > 2 { value |= UInt32(bytes[start + 2]) }
                    for index in 0..<4 {
                        output[written] = index <= count ? alphabet[Int(value >> UInt32(18 - 6 * index) & 0x3F)] : UInt8(ascii: "=")
                        written += 1
                    }
                }
                return written
            }
        }
    }

    /// The decoded length of a well-formed padded base64 string, or nil when it is not one.
    package static func decodedLength(_ text: Substring) -> Int? {
        text.utf8.withContiguousBytes(decodedLength)
    }

    private static func decodedLength(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard bytes.count % 4 == 0 else { return nil }
        let padding = bytes.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        guard padding <= 2, bytes.dropLast(padding).allSatisfy(isAlphabetByte) else { return nil }
        return bytes.count / 4 * 3 - padding
    }

    private static func isAlphabetByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
            true
        default: false
        }
    }
}
