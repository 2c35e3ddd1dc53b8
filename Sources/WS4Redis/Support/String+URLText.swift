/// Text helpers for URL parts and header values; Foundation is kept out of the core.
extension String {
    /// Without leading and trailing spaces, tabs, CRs and LFs. On UTF-8 bytes: walking Characters
    /// segments graphemes, which made this a tenth of a handshake's instructions.
    func trimmingWhitespace() -> String {
        let isSpace = { (byte: UInt8) in byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        guard let first = utf8.firstIndex(where: { !isSpace($0) }), let last = utf8.lastIndex(where: { !isSpace($0) }) else { return "" }
        let end = utf8.index(after: last)
        guard first != utf8.startIndex || end != utf8.endIndex else { return self }
        // Cut next to ASCII bytes, so on scalar boundaries: the slice is valid UTF-8.
        return String(decoding: utf8[first..<end], as: UTF8.self)
    }

    /// Decodes `%XX` escapes (and `+` as a space in query strings); malformed escapes stay as written.
    func removingPercentEncoding(plusAsSpace: Bool = false) -> String {
        guard utf8.contains(UInt8(ascii: "%")) || (plusAsSpace && utf8.contains(UInt8(ascii: "+"))) else { return self }
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
        return String(decoding: bytes, as: UTF8.self)
    }
}
