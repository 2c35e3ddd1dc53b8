import Logging
import NIOCore
import NIOPosix

/// Publishes as django-websocket-redis's RedisPublisher does: for each channel of the audience,
/// PUBLISH, plus SET ... EX when expire > 0, all in one pipelined round trip; and fetches stored
/// messages. Blocking, for apps and the C ABI: one connection on a thread of its own, reconnected
/// when lost (a call waits for the next attempt). Safe to call from any thread but an event loop.
public final class RedisPublisher: @unchecked Sendable {
    public let endpoint: RedisEndpoint
    public let names: ChannelNames
    private let group: MultiThreadedEventLoopGroup
    private let client: any RedisCommands
    private let topology: ClusterTopology?

    /// Connects, and fails with the reason when the first attempt fails.
    public init(endpoint: RedisEndpoint, keyPrefix: String, logger: Logger = Logger(label: "ws4redis.publisher")) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let topology = endpoint.isCluster ? ClusterTopology(endpoint: endpoint, eventLoop: group.next(), logger: logger) : nil
        let client: any RedisCommands
        do {
            client = try endpoint.commands(on: group.next(), topology: topology, logger: logger, options: .defaults)
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        topology?.start()
        client.start()
        do {
            try client.readiness().wait()
        } catch {
            topology?.stop()
            try? client.stop().wait()
            try? group.syncShutdownGracefully()
            throw error
        }
        (self.endpoint, self.group, self.client, self.topology) = (endpoint, group, client, topology)
        names = ChannelNames(keyPrefix: keyPrefix)
    }

    deinit {
        topology?.stop()
        try? client.stop().wait()
        try? group.syncShutdownGracefully()
    }

    /// Returns how many subscribers Redis delivered the message to, summed over the channels.
    @discardableResult
    public func publish(_ message: [UInt8], to audience: Audience, expireSeconds: Int) throws -> Int {
        let channels = names.channels(for: audience)
        guard !channels.isEmpty else { throw WS4RedisError(.invalidArgument, "the audience names no channel") }
        return try run(ChannelPublisher.publication(of: message, to: channels, cluster: endpoint.isCluster, expireSeconds: expireSeconds)).reduce(0) { sum, reply in
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
            if case .bulk(let value?) = reply, value.readableBytes > 0 { return Array(value.readableBytesView) }
            return nil
        }.first
    }

    /// One pipelined round trip, waiting for a reconnection first if the connection was lost.
    private func run(_ commands: [[[UInt8]]]) throws -> [RESPReply] {
        let replies = try client.readiness().flatMap { self.client.send(commands) }.wait()
        for case .error(let message) in replies { throw WS4RedisError.redis("Redis refused: \(message)") }
        return replies
    }
}
