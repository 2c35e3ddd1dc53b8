extension Collection<UInt8> {
    /// The bytes as one buffer: in place when they are contiguous (a native String's UTF-8, an
    /// array, a slice of either), else copied once. Byte scans over a buffer cost a fraction of a
    /// generic collection's index walk.
    package func withContiguousBytes<Result>(_ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        try withContiguousStorageIfAvailable(body) ?? Array(self).withUnsafeBufferPointer(body)
    }
}
