import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The lines of a head, without their CRLF or LF.
package struct Lines {
    private var rest: UnsafeRawBufferPointer.SubSequence

    package init(_ head: UnsafeRawBufferPointer) {
        rest = head[...]
    }

    package mutating func next() -> UnsafeRawBufferPointer.SubSequence? {
        guard let newline = rest.firstNewline() else { return nil }
        var line = rest[..<newline]
        rest = rest[(newline + 1)...]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        return line
    }
}
