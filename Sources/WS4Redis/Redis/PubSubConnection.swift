import NIOCore

/// One subscriber connection as its listener uses it: SUBSCRIBE and UNSUBSCRIBE by channel name.
package struct PubSubConnection {
    private let channel: any Channel
    /// A cluster's shard: SSUBSCRIBE / SUNSUBSCRIBE, one channel per command (a command's channels must share a slot).
    private let sharded: Bool

    package init(_ channel: any Channel, sharded: Bool) {
        self.channel = channel
        self.sharded = sharded
    }

    package func subscribe(_ channels: [String]) {
        send(sharded ? "SSUBSCRIBE" : "SUBSCRIBE", channels)
    }

    package func unsubscribe(_ channels: [String]) {
        send(sharded ? "SUNSUBSCRIBE" : "UNSUBSCRIBE", channels)
    }

    private func send(_ command: String, _ channels: [String]) {
        guard !channels.isEmpty else { return }
        if sharded {
            for channel in channels { self.channel.write([[UInt8]](redisArguments: [command, channel]), promise: nil) }
            self.channel.flush()
        } else {
            channel.writeAndFlush([[UInt8]](redisArguments: [command] + channels), promise: nil)
        }
    }
}
