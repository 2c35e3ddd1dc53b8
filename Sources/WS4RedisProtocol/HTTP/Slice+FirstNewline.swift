import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

extension Slice<UnsafeRawBufferPointer> {
    /// memchr: a head is scanned for line ends twice, and a generic search costs several
    /// instructions per byte.
    package func firstNewline() -> Int? {
        guard !isEmpty, let base = base.baseAddress else { return nil }
        guard let found = memchr(base + startIndex, Int32(UInt8(ascii: "\n")), count) else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }
}
