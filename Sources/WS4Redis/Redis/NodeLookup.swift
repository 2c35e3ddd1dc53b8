import NIOCore
import NIOPosix

/// Asks Redis where the master to connect to is now, one node after the other until one answers:
/// Sentinels (`SENTINEL get-master-addr-by-name`) or cluster nodes (`CLUSTER SLOTS`). Asked before
/// every connection, so a reconnect after a failover reaches the promoted replica.
enum NodeLookup {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// `proceeding` is asked before each node: a lookup stops when its owner stopped (no connection is
    /// tried on an event loop that is shutting down).
    static func sentinelMaster(
        named name: String, asking sentinels: [HostAndPort], password: String?, on eventLoop: any EventLoop, while proceeding: @escaping () -> Bool
    ) -> EventLoopFuture<HostAndPort> {
        var commands = [["SENTINEL", "get-master-addr-by-name", name]]
        if let password { commands.insert(["AUTH", password], at: 0) }
        let lookup = Lookup(commands: commands, what: "the master '\(name)'", eventLoop: eventLoop, proceeding: proceeding) { try masterAddress($0, name: name) }
        return lookup.ask(sentinels[...], failures: [])
    }

    /// The cluster's slot map, from the first node that answers (`login` are AUTH commands, if any).
    static func clusterMap(
        asking nodes: [HostAndPort], login: [[String]], on eventLoop: any EventLoop, while proceeding: @escaping () -> Bool
    ) -> EventLoopFuture<ClusterMap> {
        let lookup = Lookup(commands: login + [["CLUSTER", "SLOTS"]], what: "the cluster's slots", eventLoop: eventLoop, proceeding: proceeding) {
            try ClusterMap(slotsReply: $0)
        }
        return lookup.ask(nodes[...], failures: [])
    }

    /// One question put to nodes in turn.
    private struct Lookup<Answer> {
        let commands: [[String]]
        let what: String
        let eventLoop: any EventLoop
        let proceeding: () -> Bool
        let parse: (RESPReply) throws -> Answer

        func ask(_ nodes: ArraySlice<HostAndPort>, failures: [String]) -> EventLoopFuture<Answer> {
            guard proceeding() else { return eventLoop.makeFailedFuture(Failure(description: "stopped")) }
            guard let node = nodes.first else {
                return eventLoop.makeFailedFuture(Failure(description: "no node named \(what): \(failures.joined(separator: "; "))"))
            }
            return query(node, commands, on: eventLoop).flatMapThrowing { replies in
                if let refusal = replies.first(where: \.isError) { throw Failure(description: "\(refusal)") }
                return try parse(replies.last ?? .array(nil))
            }.flatMapError { error in
                ask(nodes.dropFirst(), failures: failures + ["\(node.host):\(node.port): \(error)"])
            }
        }
    }

    private static func masterAddress(_ reply: RESPReply, name: String) throws -> HostAndPort {
        switch reply {
        case .array(let parts?):
            guard parts.count == 2, case .bulk(let host?) = parts[0], case .bulk(let port?) = parts[1], let number = Int(String(buffer: port)) else {
                throw Failure(description: "unexpected answer \(parts)")
            }
            return HostAndPort(host: String(buffer: host), port: number)
        case .array(nil), .bulk(nil): throw Failure(description: "does not monitor a master named '\(name)'")
        case .error(let message): throw Failure(description: message)
        default: throw Failure(description: "unexpected answer \(reply)")
        }
    }

    /// One short connection: sends `commands`, collects as many replies, closes.
    private static func query(_ sentinel: HostAndPort, _ commands: [[String]], on eventLoop: any EventLoop) -> EventLoopFuture<[RESPReply]> {
        let replies = eventLoop.makePromise(of: [RESPReply].self)
        let timeout = eventLoop.scheduleTask(in: .seconds(2)) { replies.fail(Failure(description: "no answer within 2 s")) }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        RESPReplyDecoder(), MessageToByteHandler(RedisCommandEncoder()), ReplyCollector(expected: commands.count, replies: replies)
                    )
                }
            }
            .connect(host: sentinel.host, port: sentinel.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    for command in commands { channel.write([[UInt8]](redisArguments: command), promise: nil) }
                    channel.flush()
                    replies.futureResult.whenComplete { _ in channel.close(promise: nil) }
                case .failure(let error):
                    replies.fail(error)
                }
            }
        replies.futureResult.whenComplete { _ in timeout.cancel() }
        return replies.futureResult
    }
}
