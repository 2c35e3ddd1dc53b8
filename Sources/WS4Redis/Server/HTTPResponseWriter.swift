import NIOCore

/// The standalone listener's HTTP/1.x responses, each encoded into one buffer: one write.
enum HTTPResponseWriter {
    /// A status line, the headers, `Content-Length` when there is a body, and the body unless the
    /// request was HEAD (RFC 9110 §9.3.2: the headers still describe it).
    static func response(
        status: Int, headers: [(name: String, value: String)], body: String? = nil, omittingBody: Bool = false, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let contentLength = body.map { String($0.utf8.count) }
        let reason = HandshakeRefusal.reasonPhrase(status)
        func pieces(_ put: (String) -> Void) {
            put("HTTP/1.1 ")
            put(String(status))
            put(" ")
            put(reason)
            put("\r\n")
            for (name, value) in headers {
                put(name)
                put(": ")
                put(value)
                put("\r\n")
            }
            if let contentLength {
                put("Content-Length: ")
                put(contentLength)
                put("\r\n")
            }
            put("\r\n")
            if let body, !omittingBody { put(body) }
        }
        // One region of exactly the response's size, filled by copying bytes: a ByteBuffer write
        // per piece (bounds, uniqueness and capacity checks each time) costs several times more.
        var length = 0
        pieces { length += $0.utf8.count }
        var buffer = allocator.buffer(capacity: length)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { region in
            var written = 0
            pieces { piece in
                var piece = piece
                piece.withUTF8 { bytes in
                    UnsafeMutableRawBufferPointer(rebasing: region[written...]).copyMemory(from: UnsafeRawBufferPointer(bytes))
                    written += bytes.count
                }
            }
            return written
        }
        return buffer
    }
}
