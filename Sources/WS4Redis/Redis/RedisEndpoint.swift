/// Where Redis listens and how to log in, parsed from the URL forms the original's
/// `WS4REDIS_CONNECTION` settings map to.
public struct RedisEndpoint: Sendable, Equatable {
    public enum Address: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
        /// Redis Sentinel: the master of `masterName`, as these sentinels know it (asked at every connect).
        case sentinel(nodes: [HostAndPort], masterName: String)
        /// Redis Cluster (any of these nodes tells the slot map): sharded pub/sub, keys on their slot's master.
        case cluster(nodes: [HostAndPort])
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
    /// The sentinels' own password (`sentinel_password`), when they require one.
    public var sentinelPassword: String?

    public static let defaultEndpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6379), database: 0)

    public init(address: Address, database: Int, username: String? = nil, password: String? = nil, tls: TLS? = nil) {
        self.address = address
        self.database = database
        self.username = username
        self.password = password
        self.tls = tls
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`, the same with `rediss://` for TLS
    /// (`?ssl_ca_certs=PATH&ssl_cert_reqs=required|none`), `unix:///path[?db=N&password=P&username=U]`,
    /// `redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db][?sentinel_password=P]`,
    /// or `redis+cluster://[[user]:password@]host[:port][,host[:port]...]` (sharded pub/sub, Redis 7).
    public init(url: String) throws {
        if url.hasPrefix("redis+sentinel://") {
            try self.init(sentinelURL: String(url.dropFirst("redis+sentinel://".count)))
        } else if url.hasPrefix("redis+cluster://") {
            try self.init(clusterURL: String(url.dropFirst("redis+cluster://".count)))
        } else if url.hasPrefix("unix://") {
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
            throw WS4RedisError.configuration(
                "Redis URL must start with redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://, got '\(Self.redacting(url: url))'"
            )
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
        let (username, password, rest) = Self.credentials(Substring(rest))
        let hostPort = rest.prefix { $0 != "/" && $0 != "?" }
        let database = try Self.database(rest.dropFirst(hostPort.count).drop { $0 == "/" }.prefix { $0 != "?" })
        let (host, port) = try Self.hostAndPort(hostPort, defaultPort: 6379)
        self.init(address: .tcp(host: host, port: port), database: database, username: username, password: password)
    }

    private init(sentinelURL text: String) throws {
        let (username, password, rest) = Self.credentials(Substring(text))
        let hosts = rest.prefix { $0 != "/" && $0 != "?" }
        let nodes = try hosts.split(separator: ",").map { try Self.hostAndPort($0, defaultPort: 26379) }.map { HostAndPort(host: $0.0, port: $0.1) }
        let path = rest.dropFirst(hosts.count).prefix { $0 != "?" }.split(separator: "/")
        guard !nodes.isEmpty, let masterName = path.first, path.count <= 2 else {
            throw WS4RedisError.configuration(
                "expected redis+sentinel://host[:port][,host[:port]...]/master-name[/db], got '\(Self.redacting(url: "redis+sentinel://" + text))'")
        }
        let database = try Self.database(path.count == 2 ? path[1] : "")
        self.init(address: .sentinel(nodes: nodes, masterName: String(masterName)), database: database, username: username, password: password)
        sentinelPassword = Self.parameters(rest.drop { $0 != "?" }.dropFirst())["sentinel_password"]
    }

    private init(clusterURL text: String) throws {
        let (username, password, rest) = Self.credentials(Substring(text))
        let hosts = rest.prefix { $0 != "/" && $0 != "?" }
        let nodes = try hosts.split(separator: ",").map { try Self.hostAndPort($0, defaultPort: 6379) }.map { HostAndPort(host: $0.0, port: $0.1) }
        guard !nodes.isEmpty, rest.dropFirst(hosts.count).allSatisfy({ $0 == "/" }) else {
            throw WS4RedisError.configuration(
                "expected redis+cluster://host[:port][,host[:port]...] (a cluster has only database 0), got '\(Self.redacting(url: "redis+cluster://" + text))'")
        }
        self.init(address: .cluster(nodes: nodes), database: 0, username: username, password: password)
    }

    /// Whether channels are sharded (Redis Cluster): SSUBSCRIBE and SPUBLISH on the channel's slot.
    var isCluster: Bool {
        if case .cluster = address { return true }
        return false
    }

    /// Splits `[[user]:password@]rest` into its parts.
    private static func credentials(_ text: Substring) -> (username: String?, password: String?, rest: Substring) {
        guard let at = text.lastIndex(of: "@") else { return (nil, nil, text) }
        let credentials = text[..<at]
        let rest = text[text.index(after: at)...]
        guard let colon = credentials.firstIndex(of: ":") else { return (nil, nonEmpty(credentials), rest) }
        return (nonEmpty(credentials[..<colon]), nonEmpty(credentials[credentials.index(after: colon)...]), rest)
    }

    private init(unixURL rest: String) throws {
        let path = rest.prefix { $0 != "?" }
        guard path.hasPrefix("/") else { throw WS4RedisError.configuration("unix socket path must be absolute: \(Self.redacting(url: "unix://" + rest))") }
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

    private static func hostAndPort(_ text: Substring, defaultPort: Int) throws -> (String, Int) {
        guard !text.isEmpty else { return ("127.0.0.1", defaultPort) }
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            let host = String(text[text.index(after: text.startIndex)..<close])
            let portText = text[text.index(after: close)...].drop { $0 == ":" }
            return (host, try port(portText, default: defaultPort))
        }
        guard let colon = text.lastIndex(of: ":") else { return (String(text), defaultPort) }
        return (String(text[..<colon]), try port(text[text.index(after: colon)...], default: defaultPort))
    }

    private static func port(_ text: Substring, default defaultPort: Int) throws -> Int {
        guard !text.isEmpty else { return defaultPort }
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

    /// The endpoint as a URL of the form it was given in, every password shown as `***`: what logs,
    /// errors and answers may show.
    public var description: String {
        switch address {
        case .tcp(let host, let port):
            return "\(tls == nil ? "redis" : "rediss")://\(credentials)\(Self.hostText(host)):\(port)/\(database)"
        case .unixSocket(let path):
            let login = (username.map { "&username=\($0)" } ?? "") + (password == nil ? "" : "&password=\(Self.hidden)")
            return "unix://\(path)?db=\(database)\(login)"
        case .sentinel(let nodes, let name):
            let sentinelLogin = sentinelPassword == nil ? "" : "?sentinel_password=\(Self.hidden)"
            return "redis+sentinel://\(credentials)\(Self.nodesText(nodes))/\(name)/\(database)\(sentinelLogin)"
        case .cluster(let nodes):
            return "redis+cluster://\(credentials)\(Self.nodesText(nodes))"
        }
    }

    /// What stands for a password wherever an endpoint is shown.
    static let hidden = "***"

    /// `user:***@`, `:***@` or nothing.
    private var credentials: String {
        guard password != nil else { return "" }
        return "\(username ?? ""):\(Self.hidden)@"
    }

    private static func hostText(_ host: String) -> String {
        host.contains(":") ? "[\(host)]" : host
    }

    private static func nodesText(_ nodes: [HostAndPort]) -> String {
        nodes.map { "\(hostText($0.host)):\($0.port)" }.joined(separator: ",")
    }

    /// A Redis URL as given (perhaps malformed, for an error message) with its passwords as `***`:
    /// what `init(url:)` would take as the password (after `user:` up to the last `@`, or all before
    /// that `@`; unix:// URLs have none), and the `password` and `sentinel_password` query parameters.
    public static func redacting(url: String) -> String {
        let scheme = url.firstIndex(of: ":").flatMap { colon in url[colon...].hasPrefix("://") ? url.index(colon, offsetBy: 3) : nil }
        let start = scheme ?? url.startIndex
        var text = url
        if !url.hasPrefix("unix://"), let at = url[start...].lastIndex(of: "@") {
            let user = url[start..<at].prefix { $0 != ":" }
            let kept = user.endIndex == at ? String(url[..<start]) : String(url[..<user.endIndex]) + ":"
            text = kept + hidden + String(url[at...])
        }
        guard let question = text.firstIndex(of: "?") else { return text }
        let parameters = text[text.index(after: question)...].split(separator: "&", omittingEmptySubsequences: false).map { pair in
            let name = pair.prefix { $0 != "=" }
            return name == "password" || name == "sentinel_password" ? "\(name)=\(hidden)" : String(pair)
        }
        return text[...question] + parameters.joined(separator: "&")
    }
}
