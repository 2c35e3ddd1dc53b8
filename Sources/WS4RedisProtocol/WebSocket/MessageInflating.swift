import NIOCore

/// Inflates the compressed messages of one connection (permessage-deflate, RFC 7692) for the
/// assembler. Declared here so that the protocol needs no C library: the server's is zlib's
/// (`MessageInflater`, WS4RedisCompression).
package protocol MessageInflating: AnyObject {
    init()
    /// Inflates one fragment of a message (with `final`, the end of it) and appends to `output`;
    /// throws `InflatedMessageTooLarge` once the output would pass `limit` bytes, another error for
    /// data that does not inflate.
    func inflate(_ input: ByteBuffer, final: Bool, into output: inout ByteBuffer, limit: Int) throws
}
