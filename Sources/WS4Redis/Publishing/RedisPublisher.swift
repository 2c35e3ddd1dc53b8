import CHiredis
import NIOConcurrencyHelpers

/// Publishes as django-websocket-redis's RedisPublisher does: for each channel of the audience,
/// PUBLISH, plus SET ... EX when expire > 0, all in one pipelined round trip; and fetches stored
/// messages. Blocking, for apps and the C ABI; one connection, serialized by a lock, reconnected
/// once when it was lost.
public final class RedisPublisher: @unchecked Sendable {
    public let endpoint: RedisEndpoint
    public let names: ChannelNames
    private let lock = NIOLock()
    private var context: UnsafeMutablePointer<redisContext>?

    /// A reply as far as publishing needs it.
    private enum Reply {
        case integer(Int)
        case value([UInt8]?)
        case error(String)
    }

    public init(endpoint: RedisEndpoint, keyPrefix: String) throws {
        self.endpoint = endpoint
        names = ChannelNames(keyPrefix: keyPrefix)
        try lock.withLock { try connect() }
    }

    deinit {
        redisFree(context)
    }

    /// Returns how many subscribers Redis delivered the message to, summed over the channels.
    @discardableResult
    public func publish(_ message: [UInt8], to audience: Audience, expireSeconds: Int) throws -> Int {
        let channels = names.channels(for: audience)
        guard !channels.isEmpty else { throw WS4RedisError(.invalidArgument, "the audience names no channel") }
        var commands: [[[UInt8]]] = []
        for channel in channels {
            commands.append([Array("PUBLISH".utf8), Array(channel.utf8), message])
            if expireSeconds > 0 { commands.append([Array("SET".utf8), Array(channel.utf8), message, Array("EX".utf8), Array(String(expireSeconds).utf8)]) }
        }
        return try run(commands).reduce(0) { sum, reply in
            if case .integer(let receivers) = reply { return sum + receivers }
            return sum
        }
    }

    /// The persisted message of an audience, as the original's fetch_message: the first stored value
    /// of its sessions, users, groups and broadcast channel, in that order.
    public func fetch(_ audience: Audience) throws -> [UInt8]? {
        let channels = names.fetchOrder(for: audience)
        guard !channels.isEmpty else { throw WS4RedisError(.invalidArgument, "the audience names no channel") }
        return try run(channels.map { [Array("GET".utf8), Array($0.utf8)] }).lazy.compactMap { reply -> [UInt8]? in
            if case .value(let value?) = reply, !value.isEmpty { return value }
            return nil
        }.first
    }

    /// One pipelined round trip, again on a new connection if the old one was lost.
    private func run(_ commands: [[[UInt8]]]) throws -> [Reply] {
        try lock.withLock {
            let replies: [Reply]
            do {
                replies = try pipeline(commands)
            } catch let error as WS4RedisError where error.kind == .io {
                try connect()
                replies = try pipeline(commands)
            }
            for case .error(let message) in replies { throw WS4RedisError.redis("Redis refused: \(message)") }
            return replies
        }
    }

    private func pipeline(_ commands: [[[UInt8]]]) throws -> [Reply] {
        guard let context else { throw WS4RedisError(.io, "not connected to Redis") }
        for command in commands {
            let appended = RedisCommandFormat.withArgv(command) { redisAppendCommandArgv(context, $0, $1, $2) }
            guard appended == REDIS_OK else { throw connectionError() }
        }
        return try commands.map { _ in try nextReply(context) }
    }

    private func nextReply(_ context: UnsafeMutablePointer<redisContext>) throws -> Reply {
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw connectionError() }
        defer { freeReplyObject(raw) }
        let reply = raw.assumingMemoryBound(to: redisReply.self).pointee
        switch reply.type {
        case REDIS_REPLY_INTEGER: return .integer(Int(reply.integer))
        case REDIS_REPLY_STRING: return .value(Array(reply.bytes))
        case REDIS_REPLY_ERROR: return .error(reply.text)
        default: return .value(nil)
        }
    }

    private func connectionError() -> WS4RedisError {
        var message = "no connection"
        if let context {
            message = withUnsafeBytes(of: context.pointee.errstr) { bytes in String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self) }
        }
        redisFree(context)
        context = nil
        return WS4RedisError(.io, "Redis connection to \(endpoint.description) failed: \(message)")
    }

    private func connect() throws {
        redisFree(context)
        let timeout = timeval(tv_sec: 5, tv_usec: 0)
        context =
            switch endpoint.address {
            case .tcp(let host, let port): redisConnectWithTimeout(host, Int32(port), timeout)
            case .unixSocket(let path): redisConnectUnixWithTimeout(path, timeout)
            }
        guard let context, context.pointee.err == 0 else { throw WS4RedisError.redis(connectionError().message) }
        redisSetTimeout(context, timeout)
        let login = endpoint.loginCommands.map { [[UInt8]](redisArguments: $0) }
        for case .error(let message) in try pipeline(login) { throw WS4RedisError.redis("Redis refused the login: \(message)") }
    }
}
