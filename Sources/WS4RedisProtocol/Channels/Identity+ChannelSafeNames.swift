extension Identity {
    /// Why this identity cannot name channels, or nil when it can. Channel names join a name and the
    /// facility with `:` (`user:<name>:<facility>`), so a name with a `:` is ambiguous: user
    /// `alice:chat` on facility `x` and user `alice` on facility `chat:x` would share a channel. An
    /// empty name or a control character is refused too: neither names anyone.
    public var unusableNames: String? {
        let named = [("user", user)] + groups.map { ("group", Optional($0)) } + [("session key", sessionKey)]
        for case let (kind, name?) in named {
            if name.isEmpty { return "an empty \(kind) name" }
            if name.utf8.contains(UInt8(ascii: ":")) { return "the \(kind) '\(name.escapingControlCharacters())' contains ':', which would make channel names ambiguous" }
            if name.unicodeScalars.contains(where: \.isControlCharacter) { return "the \(kind) '\(name.escapingControlCharacters())' contains a control character" }
        }
        return nil
    }
}
