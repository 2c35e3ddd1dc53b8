import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// An HTTP/1.x request head as the standalone listener needs it.
package struct ParsedRequestHead {
    package var method: String
    package var target: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    package var minorVersion: UInt8
    package var headers: [(name: String, value: String)]
    /// Whether the connection stays open after the response (RFC 9112 §9.3).
    package var keepAlive: Bool
    /// A body follows (Content-Length over 0, or Transfer-Encoding). The listener reads no bodies:
    /// it answers such a request and closes.
    package var hasBody: Bool

    package var version: String { minorVersion == 0 ? "HTTP/1.0" : "HTTP/1.1" }

    /// The request as the handshake validator takes it: the path percent-decoded, the query raw.
    package func handshakeRequest(remoteAddress: String?) -> HandshakeRequest {
        let mark = target.utf8.firstIndex(of: UInt8(ascii: "?"))
        let path = mark.map { String(target[..<$0]) } ?? target
        let query = mark.map { String(target[target.index(after: $0)...]) }
        let decoded = path.removingPercentEncodingIfUTF8()
        var request = HandshakeRequest(
            method: method, path: decoded ?? path.removingPercentEncoding(), query: query, httpVersion: version, headers: headers, remoteAddress: remoteAddress
        )
        request.pathIsUTF8 = decoded != nil
        return request
    }
}
