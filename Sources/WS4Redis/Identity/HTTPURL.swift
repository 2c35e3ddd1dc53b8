/// An `http://host[:port]/path` URL (the auth request target; TLS is for a proxy in front).
public struct HTTPURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var path: String

    public init(parsing text: String) throws {
        guard text.hasPrefix("http://") else { throw WS4RedisError.configuration("the URL must start with http://, got '\(text)'") }
        let rest = text.dropFirst("http://".count)
        let authority = rest.prefix { $0 != "/" }
        path = rest.count > authority.count ? String(rest.dropFirst(authority.count)) : "/"
        let address = try HostAndPort(parsing: authority.contains(":") && !authority.hasSuffix("]") ? String(authority) : "\(authority):80")
        guard !address.host.isEmpty, address.host != "0.0.0.0" || authority.hasPrefix("0.0.0.0") else {
            throw WS4RedisError.configuration("the URL needs a host: '\(text)'")
        }
        (host, port) = (address.host, address.port)
    }
}
