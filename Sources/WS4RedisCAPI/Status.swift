import CWS4Redis
import WS4Redis

/// The C status of an error: the one place Swift errors become `WS4R_E*` codes.
func status(of error: any Error) -> Int32 {
    guard let error = error as? WS4RedisError else { return WS4R_EINVAL }
    switch error.kind {
    case .invalidArgument: return WS4R_EINVAL
    case .configuration: return WS4R_ECONFIG
    case .state: return WS4R_ESTATE
    case .bind: return WS4R_EBIND
    case .redis: return WS4R_EREDIS
    case .io: return WS4R_EIO
    case .limit: return WS4R_ELIMIT
    }
}

/// Borrowed C string to Swift; nil and "" both mean "not set".
func optionalString(_ pointer: UnsafePointer<CChar>?) -> String? {
    guard let pointer, pointer.pointee != 0 else { return nil }
    return String(cString: pointer)
}

/// Writes `text` NUL-terminated into a caller's buffer when it fits, else WS4R_ELIMIT; `length`
/// (may be NULL) gets the text's length either way, so the caller can retry with enough room.
func copyOut(_ text: String, to out: UnsafeMutablePointer<CChar>?, capacity: Int, length: UnsafeMutablePointer<Int>?) -> Int32 {
    let bytes = Array(text.utf8)
    length?.pointee = bytes.count
    guard let out, capacity > bytes.count else { return WS4R_ELIMIT }
    bytes.withUnsafeBytes { UnsafeMutableRawPointer(out).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
    out[bytes.count] = 0
    return WS4R_OK
}

/// Copies a caller's versioned struct into a default-filled one, reading only the bytes the caller's
/// `struct_size` covers, so that callers built against an older header keep working.
func versioned<Struct>(_ pointer: UnsafePointer<Struct>, structSize: Int, defaults: Struct) -> Struct {
    var result = defaults
    withUnsafeMutableBytes(of: &result) { target in
        target.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: min(max(structSize, 0), target.count)))
    }
    return result
}
