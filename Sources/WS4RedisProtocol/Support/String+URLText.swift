/// Text helpers for URL parts and header values; Foundation is kept out of the core. They work on
/// UTF-8 bytes: walking Characters segments graphemes, which cost a tenth of a handshake's instructions.
extension String {
    /// Without leading and trailing spaces, tabs, CRs and LFs.
    package func trimmingWhitespace() -> String {
        let trimmed = self[...].utf8.trimmingWhitespace()
        guard trimmed.count != utf8.count else { return self }
        // Cut next to ASCII bytes, so on scalar boundaries: the slice is valid UTF-8.
        return String(decoding: trimmed, as: UTF8.self)
    }

    /// Decodes `%XX` escapes (and `+` as a space in query strings); malformed escapes stay as written.
    /// Bytes that do not form UTF-8 become U+FFFD.
    package func removingPercentEncoding(plusAsSpace: Bool = false) -> String {
        guard needsPercentDecoding(plusAsSpace: plusAsSpace) else { return self }
        return String(decoding: percentDecodedBytes(plusAsSpace: plusAsSpace), as: UTF8.self)
    }

    /// Decodes `%XX` escapes as `removingPercentEncoding` does; nil when the bytes they give are not UTF-8.
    package func removingPercentEncodingIfUTF8() -> String? {
        guard needsPercentDecoding(plusAsSpace: false) else { return self }
        return String(validating: percentDecodedBytes(plusAsSpace: false), as: UTF8.self)
    }

    private func needsPercentDecoding(plusAsSpace: Bool) -> Bool {
        utf8.contains(UInt8(ascii: "%")) || (plusAsSpace && utf8.contains(UInt8(ascii: "+")))
    }

    private func percentDecodedBytes(plusAsSpace: Bool) -> [UInt8] {
        var bytes: [UInt8] = []
        var utf8 = Array(self.utf8)[...]
        while let byte = utf8.popFirst() {
            if plusAsSpace, byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return bytes
    }
}

extension BidirectionalCollection<UInt8> where SubSequence == Self {
    /// Without the leading and trailing bytes that `isTrimmed` picks.
    package func trimming(while isTrimmed: (UInt8) -> Bool) -> Self {
        var view = self
        while let first = view.first, isTrimmed(first) { view = view.dropFirst() }
        while let last = view.last, isTrimmed(last) { view = view.dropLast() }
        return view
    }

    /// Without leading and trailing spaces, tabs, CRs and LFs.
    package func trimmingWhitespace() -> Self {
        trimming { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
    }
}

extension Collection<UInt8> {
    /// Whether this comma-separated value (of Connection, Upgrade) lists `token` (in lowercase),
    /// whitespace and ASCII case aside.
    package func listsToken(_ token: String) -> Bool {
        withContiguousBytes { Self.list($0, hasToken: token) }
    }

    private static func list(_ list: UnsafeBufferPointer<UInt8>, hasToken token: String) -> Bool {
        var start = 0
        while start <= list.count {
            let end = list[start...].firstIndex(of: UInt8(ascii: ",")) ?? list.count
            if list[start..<end].trimmingWhitespace().equalsIgnoringASCIICase(token) { return true }
            start = end + 1
        }
        return false
    }
}

extension Collection<UInt8> {
    /// Compares UTF-8 with `lowercase` (lowercase ASCII), ignoring ASCII case: a handshake looks
    /// headers up a dozen times, and lowercasing every name would allocate every time. Most names
    /// differ in length, which a string's UTF-8 view knows at once.
    package func equalsIgnoringASCIICase(_ lowercase: String) -> Bool {
        guard count == lowercase.utf8.count else { return false }
        // Over both strings' contiguous bytes: a UTF-8 view's iterator costs about ten times more per byte.
        let compared = withContiguousStorageIfAvailable { bytes in
            lowercase.utf8.withContiguousStorageIfAvailable { expected in
                for index in 0..<bytes.count where Self.lowered(bytes[index]) != expected[index] { return false }
                return true
            }
        }
        if let compared = compared ?? nil { return compared }
        return zip(self, lowercase.utf8).allSatisfy { Self.lowered($0) == $1 }
    }

    private static func lowered(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }
}
