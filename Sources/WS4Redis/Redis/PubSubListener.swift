import NIOCore

/// What the subscriber connections report, to whoever routes the messages. Declared here so that
/// the Redis layer names nothing above it; called on `eventLoop` only.
protocol PubSubListener: AnyObject {
    var eventLoop: any EventLoop { get }
    /// A cluster's shards are known: channels can be routed to their subscriber connections.
    func use(_ map: ClusterMap)
    /// A shard's connection is logged in: its subscriptions can be (re)sent on it.
    func connected(_ connection: PubSubConnection, shard: Int)
    /// The shard's connection answered everything sent before its first PING.
    func ready(shard: Int)
    func connectionLost(shard: Int)
    func received(_ event: PubSubEvent)
    /// The end of one read from Redis: what it brought can go on as one batch.
    func readComplete()
}
