extension Unicode.Scalar {
    /// C0 controls, DEL and C1 controls: what a terminal or a line-based log reader acts on.
    package var isControlCharacter: Bool {
        value < 0x20 || (0x7F...0x9F).contains(value)
    }
}

extension String {
    /// The text with control characters written as escapes (`\n`, `\r`, `\t`, `\x1b`, `\u{85}`), so
    /// that a value a client chose cannot start a forged log line or drive a terminal.
    package func escapingControlCharacters() -> String {
        guard unicodeScalars.contains(where: { $0.isControlCharacter || $0 == "\\" }) else { return self }
        var escaped = ""
        for scalar in unicodeScalars {
            switch scalar {
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case "\\": escaped += "\\\\"
            case _ where scalar.value < 0x80 && scalar.isControlCharacter: escaped += "\\x" + Self.twoHexDigits(scalar.value)
            case _ where scalar.isControlCharacter: escaped += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    private static func twoHexDigits(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }
}
