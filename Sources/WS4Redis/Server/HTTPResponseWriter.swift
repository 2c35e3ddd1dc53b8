import NIOCore

/// The standalone listener's HTTP/1.x responses, each encoded into one buffer: one write.
enum HTTPResponseWriter {
    /// A status line, the headers, `Content-Length` when there is a body, and the body unless the
    /// request was HEAD (RFC 9110 §9.3.2: the headers still describe it).
    static func response(
        status: Int, headers: [(name: String, value: String)], body: String? = nil, omittingBody: Bool = false, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256 + (body?.utf8.count ?? 0))
        buffer.writeStaticString("HTTP/1.1 ")
        buffer.writeString(String(status))
        buffer.writeStaticString(" ")
        buffer.writeString(HandshakeRefusal.reasonPhrase(status))
        buffer.writeStaticString("\r\n")
        for (name, value) in headers { writeHeader(name, value, into: &buffer) }
        if let body { writeHeader("Content-Length", String(body.utf8.count), into: &buffer) }
        buffer.writeStaticString("\r\n")
        if let body, !omittingBody { buffer.writeString(body) }
        return buffer
    }

    private static func writeHeader(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }
}
