import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Finds and parses request heads (RFC 9112 §2-§6) in the bytes a connection received: a state
/// machine over one cumulation buffer that remembers how far it looked, so a head dripped in byte
/// by byte is scanned once. Strict where a lax reading would let requests be smuggled: header
/// names without whitespace before the colon, no obs-fold, one Content-Length, no controls.
package struct HTTPRequestParser {
    /// Refuses (431) a head that has not ended within this many bytes.
    package let maxHeadSize: Int
    /// Bytes of the buffer's readable part already searched for the end of the head.
    private var scanned = 0

    package init(maxHeadSize: Int) {
        self.maxHeadSize = maxHeadSize
    }

    /// Takes the next complete head off the front of `buffer`; nil while it is incomplete.
    package mutating func nextHead(from buffer: inout ByteBuffer) throws(HTTPRequestError) -> ParsedRequestHead? {
        let found = buffer.withUnsafeReadableBytes { Self.endOfHead(in: $0, from: scanned) }
        guard let length = found else {
            scanned = max(0, buffer.readableBytes - 3)
            if buffer.readableBytes > maxHeadSize { throw headTooLarge }
            return nil
        }
        scanned = 0
        guard length <= maxHeadSize else { throw headTooLarge }
        let head = buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(HTTPRequestError) in try Self.parse(UnsafeRawBufferPointer(rebasing: bytes[..<length])) }
        }
        buffer.moveReaderIndex(forwardBy: length)
        return try head.get()
    }

    private var headTooLarge: HTTPRequestError { HTTPRequestError(status: 431, detail: "the request head exceeds \(maxHeadSize) bytes") }

    /// The length of the head including its empty line, if it has ended: lines end in CRLF or LF.
    private static func endOfHead(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var index = start
        while let newline = bytes[index...].firstNewline() {
            let next = newline + 1
            if next < bytes.count, bytes[next] == UInt8(ascii: "\n") { return next + 1 }
            if next + 1 < bytes.count, bytes[next] == UInt8(ascii: "\r"), bytes[next + 1] == UInt8(ascii: "\n") { return next + 2 }
            index = next
        }
        return nil
    }

    private static func parse(_ head: UnsafeRawBufferPointer) throws(HTTPRequestError) -> ParsedRequestHead {
        var lines = Lines(head)
        // RFC 9112 §2.2: empty lines before the request line are ignored.
        var requestLine = lines.next()
        while let line = requestLine, line.isEmpty { requestLine = lines.next() }
        guard let requestLine else { throw .malformed("no request line") }
        var request = try parseRequestLine(requestLine)
        // A browser's upgrade request has about a dozen headers: room for them at once, not by doubling.
        request.headers.reserveCapacity(16)
        var contentLength: Int?
        var (asksToClose, asksToKeepAlive) = (false, false)
        while let line = lines.next(), !line.isEmpty {
            let (name, value) = try parseHeaderLine(line)
            if name.equalsIgnoringASCIICase("content-length") {
                let length = try parseContentLength(value)
                guard contentLength == nil || contentLength == length else { throw .malformed("conflicting Content-Length headers") }
                contentLength = length
            } else if name.equalsIgnoringASCIICase("transfer-encoding") {
                request.hasBody = true
            } else if name.equalsIgnoringASCIICase("connection") {
                asksToClose = asksToClose || value.listsToken("close")
                asksToKeepAlive = asksToKeepAlive || value.listsToken("keep-alive")
            }
            request.headers.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        if let contentLength, contentLength > 0 { request.hasBody = true }
        request.keepAlive = request.minorVersion == 0 ? asksToKeepAlive : !asksToClose
        return request
    }

    /// `method SP request-target SP HTTP-version`, exactly.
    private static func parseRequestLine(_ line: UnsafeRawBufferPointer.SubSequence) throws(HTTPRequestError) -> ParsedRequestHead {
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")),
            let secondSpace = line[(firstSpace + 1)...].firstIndex(of: UInt8(ascii: " "))
        else { throw .malformed("malformed request line") }
        let method = line[..<firstSpace]
        let target = line[(firstSpace + 1)..<secondSpace]
        guard !method.isEmpty, method.allSatisfy(isTokenByte) else { throw .malformed("malformed request line") }
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .malformed("malformed request target") }
        let version = line[(secondSpace + 1)...]
        guard version.count == 8, version.starts(with: "HTTP/".utf8), version[version.startIndex + 6] == UInt8(ascii: "."),
            case let major = version[version.startIndex + 5], case let minor = version[version.startIndex + 7],
            isDigit(major), isDigit(minor)
        else { throw .malformed("malformed HTTP version") }
        // RFC 9112 §2.3: a later HTTP/1 minor version is answered as HTTP/1.1.
        guard major == UInt8(ascii: "1") else {
            throw HTTPRequestError(status: 505, detail: "HTTP/\(Character(Unicode.Scalar(major))).\(Character(Unicode.Scalar(minor))) is not supported")
        }
        return ParsedRequestHead(
            method: String(decoding: method, as: UTF8.self), target: String(decoding: target, as: UTF8.self),
            minorVersion: min(minor - UInt8(ascii: "0"), 1), headers: [], keepAlive: true, hasBody: false
        )
    }

    /// `field-name ":" OWS field-value OWS`.
    private static func parseHeaderLine(
        _ line: UnsafeRawBufferPointer.SubSequence
    ) throws(HTTPRequestError) -> (name: UnsafeRawBufferPointer.SubSequence, value: UnsafeRawBufferPointer.SubSequence) {
        guard let first = line.first, first != UInt8(ascii: " "), first != UInt8(ascii: "\t") else {
            throw .malformed("obsolete line folding in the header section")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .malformed("header line without a colon") }
        let name = line[..<colon]
        guard !name.isEmpty, name.allSatisfy(isTokenByte) else { throw .malformed("malformed header name") }
        // OWS (RFC 9110 §5.6.3): spaces and tabs only; a CR left in the value is refused below.
        let value = line[(colon + 1)...].trimming { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        guard value.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == UInt8(ascii: "\t") }) else { throw .malformed("control character in a header value") }
        return (name, value)
    }

    private static func parseContentLength(_ value: UnsafeRawBufferPointer.SubSequence) throws(HTTPRequestError) -> Int {
        guard !value.isEmpty, value.count <= 18, value.allSatisfy(isDigit) else { throw .malformed("malformed Content-Length") }
        return value.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// tchar (RFC 9110 §5.6.2).
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"),
            UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"),
            UInt8(ascii: "~"):
            true
        default: false
        }
    }
}
