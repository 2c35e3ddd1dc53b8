/// A refused upgrade: an HTTP error response.
public struct HandshakeRefusal: Sendable, Error {
    public let status: Int
    public let reason: String
    public let body: String
    public let headers: [(name: String, value: String)]

    public init(status: Int, body: String, headers: [(name: String, value: String)] = []) {
        self.status = status
        self.reason = HandshakeRefusal.reasonPhrase(status)
        self.body = body
        self.headers = headers
    }

    package static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 101: "Switching Protocols"
        case 200: "OK"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 401: "Unauthorized"
        case 426: "Upgrade Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Error"
        }
    }
}
