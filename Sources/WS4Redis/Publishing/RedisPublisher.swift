import CHiredis
import NIOConcurrencyHelpers

/// Publishes as django-websocket-redis's RedisPublisher does: for each channel of the audience,
/// PUBLISH, plus SET ... EX when expire > 0, all in one pipelined round trip. Blocking, for apps
/// and the C ABI; one connection, serialized by a lock.
public final class RedisPublisher: @unchecked Sendable {
    public let endpoint: RedisEndpoint
    public let names: ChannelNames
    private let lock = NIOLock()
    private var context: UnsafeMutablePointer<redisContext>?

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
        return try lock.withLock {
            do {
                return try pipeline(commands)
            } catch let error as WS4RedisError where error.kind == .io {
                try connect()
                return try pipeline(commands)
            }
        }
    }

    /// Sends every command, then reads every reply; returns the sum of integer replies of PUBLISH.
    private func pipeline(_ commands: [[[UInt8]]]) throws -> Int {
        guard let context else { throw WS4RedisError(.io, "not connected to Redis") }
        for command in commands {
            let appended = RedisCommandFormat.withArgv(command) { redisAppendCommandArgv(context, $0, $1, $2) }
            guard appended == REDIS_OK else { throw connectionError() }
        }
        var receivers = 0
        var firstError: String?
        for command in commands {
            let reply = try nextReply(context)
            defer { freeReplyObject(reply) }
            switch reply.pointee.type {
            case REDIS_REPLY_INTEGER where command[0] == Array("PUBLISH".utf8): receivers += Int(reply.pointee.integer)
            case REDIS_REPLY_ERROR: firstError = firstError ?? String(cString: reply.pointee.str)
            default: break
            }
        }
        if let firstError { throw WS4RedisError.redis("Redis refused: \(firstError)") }
        return receivers
    }

    private func nextReply(_ context: UnsafeMutablePointer<redisContext>) throws -> UnsafeMutablePointer<redisReply> {
        var reply: UnsafeMutableRawPointer?
        guard redisGetReply(context, &reply) == REDIS_OK, let reply else { throw connectionError() }
        return reply.assumingMemoryBound(to: redisReply.self)
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
        for command in endpoint.loginCommands {
            let reply = try pipelineReply(command, context: context)
            defer { freeReplyObject(reply) }
            if reply.pointee.type == REDIS_REPLY_ERROR { throw WS4RedisError.redis("Redis refused \(command[0]): \(String(cString: reply.pointee.str))") }
        }
    }

    private func pipelineReply(_ command: [String], context: UnsafeMutablePointer<redisContext>) throws -> UnsafeMutablePointer<redisReply> {
        let appended = RedisCommandFormat.withArgv([[UInt8]](redisArguments: command)) { redisAppendCommandArgv(context, $0, $1, $2) }
        guard appended == REDIS_OK else { throw WS4RedisError.redis(connectionError().message) }
        return try nextReply(context)
    }
}
