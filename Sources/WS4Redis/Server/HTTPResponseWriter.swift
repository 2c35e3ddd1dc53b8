import NIOCore

/// The standalone listener's HTTP/1.x responses, each encoded into one buffer: one write.
enum HTTPResponseWriter {
    /// A status line, the headers, `Content-Length` when there is a body, and the body unless the
    /// request was HEAD (RFC 9110 §9.3.2: the headers still describe it).
    static func response(
        status: Int, headers: [(name: String, value: String)], body: String? = nil, omittingBody: Bool = false, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let statusLine = (code: String(status), reason: HandshakeRefusal.reasonPhrase(status))
        let contentLength = body.map { String($0.utf8.count) }
        let sentBody = omittingBody ? nil : body
        var length = 9 + statusLine.code.utf8.count + 1 + statusLine.reason.utf8.count + 2 + 2 + (sentBody?.utf8.count ?? 0)
        for (name, value) in headers { length += name.utf8.count + 2 + value.utf8.count + 2 }
        if let contentLength { length += 16 + contentLength.utf8.count + 2 }
        // One region of exactly the response's size, filled by copying bytes: a ByteBuffer write
        // per piece (bounds, uniqueness and capacity checks each time) costs several times more.
        var buffer = allocator.buffer(capacity: length)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { region in
            var out = ByteCursor(region)
            out.append("HTTP/1.1 ", statusLine.code, " ", statusLine.reason, "\r\n")
            for (name, value) in headers { out.append(name, ": ", value, "\r\n") }
            if let contentLength { out.append("Content-Length: ", contentLength, "\r\n") }
            out.append("\r\n")
            if let sentBody { out.append(sentBody) }
            return out.written
        }
        return buffer
    }
}

/// Appends UTF-8 text to a region known to be large enough.
private struct ByteCursor {
    private let region: UnsafeMutableRawBufferPointer
    private(set) var written = 0

    init(_ region: UnsafeMutableRawBufferPointer) {
        self.region = region
    }

    mutating func append(_ texts: String...) {
        for var text in texts {
            text.withUTF8 { bytes in
                UnsafeMutableRawBufferPointer(rebasing: region[written...]).copyMemory(from: UnsafeRawBufferPointer(bytes))
                written += bytes.count
            }
        }
    }
}
