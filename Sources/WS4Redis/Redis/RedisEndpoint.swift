/// Where Redis listens and how to log in, parsed from the URL forms the original's
/// `WS4REDIS_CONNECTION` settings map to.
public struct RedisEndpoint: Sendable, Equatable {
    public enum Address: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    /// TLS to Redis (`rediss://`), with redis-py's query options `ssl_ca_certs` and `ssl_cert_reqs`.
    public struct TLS: Sendable, Equatable {
        /// PEM file of the CAs to trust; nil: the system's.
        public var caFile: String?
        /// false for `ssl_cert_reqs=none`: encrypted, but the server is not authenticated.
        public var verifyCertificate: Bool

        public init(caFile: String? = nil, verifyCertificate: Bool = true) {
            self.caFile = caFile
            self.verifyCertificate = verifyCertificate
        }
    }

    public var address: Address
    public var database: Int
    public var username: String?
    public var password: String?
    public var tls: TLS?

    public static let defaultEndpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6379), database: 0)

    public init(address: Address, database: Int, username: String? = nil, password: String? = nil, tls: TLS? = nil) {
        self.address = address
        self.database = database
        self.username = username
        self.password = password
        self.tls = tls
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`, the same with `rediss://` for TLS
    /// (`?ssl_ca_certs=PATH&ssl_cert_reqs=required|none`), or `unix:///path[?db=N&password=P&username=U]`.
    public init(url: String) throws {
        if url.hasPrefix("unix://") {
            try self.init(unixURL: String(url.dropFirst("unix://".count)))
        } else if url.hasPrefix("redis://") {
            try self.init(tcpURL: String(url.dropFirst("redis://".count)))
        } else if url.hasPrefix("rediss://") {
            try self.init(tcpURL: String(url.dropFirst("rediss://".count)))
            let options = Self.parameters(url.drop { $0 != "?" }.dropFirst())
            let verify = options["ssl_cert_reqs"] ?? "required"
            guard ["required", "none", "optional"].contains(verify) else { throw WS4RedisError.configuration("ssl_cert_reqs must be required or none, got '\(verify)'") }
            tls = TLS(caFile: options["ssl_ca_certs"], verifyCertificate: verify == "required")
        } else {
            throw WS4RedisError.configuration("Redis URL must start with redis://, rediss:// or unix://, got '\(url)'")
        }
    }

    private static func parameters(_ query: Substring) -> [String: String] {
        var parameters: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            parameters[String(parts[0])] = parts.count > 1 ? String(parts[1]).removingPercentEncoding(plusAsSpace: true) : ""
        }
        return parameters
    }

    private init(tcpURL rest: String) throws {
        var rest = Substring(rest)
        var (username, password): (String?, String?) = (nil, nil)
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                username = Self.nonEmpty(credentials[..<colon])
                password = Self.nonEmpty(credentials[credentials.index(after: colon)...])
            } else {
                password = Self.nonEmpty(credentials)
            }
        }
        let hostPort = rest.prefix { $0 != "/" && $0 != "?" }
        let database = try Self.database(rest.dropFirst(hostPort.count).drop { $0 == "/" }.prefix { $0 != "?" })
        let (host, port) = try Self.hostAndPort(hostPort)
        self.init(address: .tcp(host: host, port: port), database: database, username: username, password: password)
    }

    private init(unixURL rest: String) throws {
        let path = rest.prefix { $0 != "?" }
        guard path.hasPrefix("/") else { throw WS4RedisError.configuration("unix socket path must be absolute: unix://\(rest)") }
        let parameters = Self.parameters(rest.dropFirst(path.count + 1))
        let database = try Self.database(Substring(parameters["db"] ?? ""))
        self.init(address: .unixSocket(path: String(path)), database: database, username: parameters["username"], password: parameters["password"])
    }

    private static func nonEmpty(_ text: Substring) -> String? {
        text.isEmpty ? nil : String(text).removingPercentEncoding()
    }

    private static func database(_ text: Substring) throws -> Int {
        guard !text.isEmpty else { return 0 }
        guard let database = Int(text), database >= 0 else { throw WS4RedisError.configuration("invalid Redis database '\(text)'") }
        return database
    }

    private static func hostAndPort(_ text: Substring) throws -> (String, Int) {
        guard !text.isEmpty else { return ("127.0.0.1", 6379) }
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let host = String(text[text.index(after: text.startIndex)..<close])
            let portText = text[text.index(after: close)...].drop { $0 == ":" }
            return (host, try port(portText))
        }
        guard let colon = text.lastIndex(of: ":") else { return (String(text), 6379) }
        return (String(text[..<colon]), try port(text[text.index(after: colon)...]))
    }

    private static func port(_ text: Substring) throws -> Int {
        guard !text.isEmpty else { return 6379 }
        guard let port = Int(text), (1...65535).contains(port) else { throw WS4RedisError.configuration("invalid Redis port '\(text)'") }
        return port
    }

    /// The commands that log in and pick the database, sent first on every connection.
    var loginCommands: [[String]] {
        var commands: [[String]] = []
        if let password { commands.append(["AUTH"] + (username.map { [$0] } ?? []) + [password]) }
        if database != 0 { commands.append(["SELECT", String(database)]) }
        return commands
    }

    public var description: String {
        switch address {
        case .tcp(let host, let port): "\(tls == nil ? "redis" : "rediss")://\(host):\(port)/\(database)"
        case .unixSocket(let path): "unix://\(path)?db=\(database)"
        }
    }
}
