import NIOCore

/// Publishes messages and reads stored ones as the original does, over the shared command
/// connection: PUBLISH (SPUBLISH in a cluster) to each channel, and SET ... EX to store a message
/// when `expireSeconds` > 0; GET to read it back.
package struct ChannelPublisher {
    private let commands: any RedisCommands
    private let cluster: Bool
    private let expireSeconds: Int

    package init(commands: any RedisCommands, cluster: Bool, expireSeconds: Int) {
        self.commands = commands
        self.cluster = cluster
        self.expireSeconds = expireSeconds
    }

    /// Succeeds when every command reached Redis and Redis took it; otherwise says why it failed.
    package func publish(_ message: ByteBuffer, to channels: [String]) -> EventLoopFuture<Result<Void, PublicationFailure>> {
        commands.send(Self.publication(of: Array(message.readableBytesView), to: channels, cluster: cluster, expireSeconds: expireSeconds)).map { replies in
            replies.contains(where: \.isError) ? .failure(.refused(replies.filter(\.isError))) : .success(())
        }.recover { .failure(.unavailable($0)) }
    }

    /// The commands of one publication: the same as the original's RedisPublisher's.
    static func publication(of message: [UInt8], to channels: [String], cluster: Bool, expireSeconds: Int) -> [[[UInt8]]] {
        let publish = Array((cluster ? "SPUBLISH" : "PUBLISH").utf8)
        return channels.flatMap { channel -> [[[UInt8]]] in
            let name = Array(channel.utf8)
            let store = [Array("SET".utf8), name, message, Array("EX".utf8), Array(String(expireSeconds).utf8)]
            return expireSeconds > 0 ? [[publish, name, message], store] : [[publish, name, message]]
        }
    }

    /// The stored message of each channel, in order (nil where nothing is stored), in one pipelined
    /// write; empty while Redis is away.
    package func storedMessages(of channels: [String]) -> EventLoopFuture<[ByteBuffer?]> {
        commands.send(channels.map { [[UInt8]](redisArguments: ["GET", $0]) }).map { replies in
            replies.map { reply in
                if case .bulk(let value) = reply { return value }
                return nil
            }
        }.recover { _ in [] }
    }
}
