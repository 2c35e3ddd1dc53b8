import NIOCore
import NIOEmbedded
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class ClusterTests: XCTestCase {
    func testSlotsAreRedisClusterSlots() {
        // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
        XCTAssertEqual(ClusterSlots.slot(of: Array("123456789".utf8)), 0x31C3)
        XCTAssertEqual(ClusterSlots.slot(of: Array("foo".utf8)), 12182)
        XCTAssertEqual(ClusterSlots.slot(of: Array("{user1000}.following".utf8)), ClusterSlots.slot(of: Array("{user1000}.followers".utf8)))
        XCTAssertEqual(ClusterSlots.slot(of: Array("foo{}{bar}".utf8)), ClusterSlots.slot(of: Array("foo{}{bar}".utf8)))
        XCTAssertNotEqual(ClusterSlots.slot(of: Array("foo{}{bar}".utf8)), ClusterSlots.slot(of: Array("bar".utf8)), "an empty {} hashes the whole key")
    }

    private func node(_ host: String, _ port: Int) -> RESPReply {
        .array([.bulk(ByteBuffer(string: host)), .integer(port), .bulk(ByteBuffer(string: "id"))])
    }

    func testTheSlotMapGroupsRangesByMaster() throws {
        let reply = RESPReply.array([
            .array([.integer(0), .integer(5460), node("10.0.0.1", 7000), node("10.0.0.4", 7003)]),
            .array([.integer(5461), .integer(10922), node("10.0.0.2", 7001)]),
            .array([.integer(10923), .integer(16383), node("10.0.0.1", 7000)]),
        ])
        let map = try ClusterMap(slotsReply: reply)
        XCTAssertEqual(map.shards.count, 2)
        XCTAssertEqual(map.shards[0].slots, [0...5460, 10923...16383])
        XCTAssertEqual(map.shards[0].replicas, [HostAndPort(host: "10.0.0.4", port: 7003)])
        XCTAssertEqual(map.master(ofSlot: 12000), HostAndPort(host: "10.0.0.1", port: 7000))
        XCTAssertEqual(map.master(ofSlot: 6000), HostAndPort(host: "10.0.0.2", port: 7001))
        XCTAssertThrowsError(try ClusterMap(slotsReply: .array([])))
        XCTAssertThrowsError(try ClusterMap(slotsReply: .error("ERR This instance has cluster support disabled")))
    }

    func testShardedChannelsAreSubscribedOnTheirShardOneByOne() throws {
        let loop = EmbeddedEventLoop()
        let multiplexer = ChannelMultiplexer(eventLoop: loop, hubCount: 1, sharded: true, counters: ServerCounters(), logger: .init(label: "test"))
        let channels = ["broadcast:a", "broadcast:b", "broadcast:c", "broadcast:d"]
        let low = ClusterMap.Shard(slots: [0...8191], master: HostAndPort(host: "h", port: 1), replicas: [])
        let high = ClusterMap.Shard(slots: [8192...16383], master: HostAndPort(host: "h", port: 2), replicas: [])
        multiplexer.use(ClusterMap(shards: [low, high]))
        let connections = (0..<2).map { _ in EmbeddedChannel(handler: MessageToByteHandler(RedisCommandEncoder()), loop: loop) }
        for (shard, connection) in connections.enumerated() { multiplexer.connected(PubSubConnection(connection, sharded: true), shard: shard) }
        let commands = try RedisCommandClient(endpoint: .defaultEndpoint, eventLoop: loop, logger: .init(label: "test"), options: .defaults)
        let hub = LoopHub(
            eventLoop: loop, index: 0, counters: ServerCounters(), logger: .init(label: "test"), compressionThreshold: 64, multiplexer: multiplexer,
            publisher: ChannelPublisher(commands: commands, cluster: true, expireSeconds: 0)
        )
        _ = multiplexer.acquire(channels, hub: hub)
        loop.run()
        for (shard, connection) in connections.enumerated() {
            var sent: [String] = []
            while let buffer = try connection.readOutbound(as: ByteBuffer.self) { sent.append(String(buffer: buffer)) }
            let expected = channels.filter { (ClusterSlots.slot(of: Array($0.utf8)) < 8192) == (shard == 0) }
            XCTAssertEqual(sent, expected.map { "*2\r\n$10\r\nSSUBSCRIBE\r\n$\($0.utf8.count)\r\n\($0)\r\n" }, "shard \(shard)")
        }
    }
}
