import Benchmark
import Foundation
import Logging
import MallocInterposerSwift
import NIOCore
import NIOEmbedded
import WS4Redis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: 5. fan-out

/// One published message delivered by an event loop's hub to its N local subscribers
/// (`LoopHub.deliver`): the subscriber-list walk, each connection's `enqueue` and a write through
/// its channel pipeline, then one flush per socket. The connections are real
/// `WebSocketConnectionHandler`s on EmbeddedChannels, subscribed through the multiplexer as the
/// server does; a handler in front of each pipeline's head drops the writes, so the socket's own
/// write path (and EmbeddedChannel's bookkeeping) is left out.
func fanoutBenchmarks() {
    let payloadSize = 64
    for (connections, scaling) in [(1, BenchmarkScalingFactor.kilo), (1_000, .one)] {
        Benchmark("LoopHub.deliver 64 B to \(connections) connection(s)", configuration: perOperation(scaling)) { benchmark, fixture in
            for _ in benchmark.scaledIterations {
                fixture.hub.deliver(fixture.batch)
            }
        } setup: {
            try FanoutFixture(connections: connections, payloadSize: payloadSize)
        }
    }

    // m(N) = mallocs of one deliver to N connections; (m(1000) - m(1)) / 999 per recipient must be 0.
    let perThousand = BenchmarkMetric.custom("Mallocs per 1k recipients", polarity: .prefersSmaller, useScalingFactor: false)
    var configuration = perOperation(.one)
    configuration.metrics = [perThousand]
    configuration.maxIterations = min(configuration.maxIterations, 10)
    Benchmark("LoopHub.deliver per-recipient mallocs (check: 0)", configuration: configuration) { benchmark, fixtures in
        guard let counts = PerRecipientMallocs.measure(one: fixtures.one, many: fixtures.many, rounds: 100) else {
            // The plugin preloads the interposer; a binary run by hand has none, and nothing to check.
            if ProcessInfo.processInfo.environment["LD_PRELOAD"]?.contains("MallocInterposer") == true {
                failRun(benchmark, "the malloc interposer is preloaded but counts no allocation")
            }
            return
        }
        benchmark.measurement(perThousand, counts.perThousandRecipients)
        if counts.extra != 0 {
            failRun(
                benchmark,
                "LoopHub.deliver allocates per recipient: \(counts.extra) more mallocs over \(counts.rounds) delivers to "
                    + "\(fixtures.many.connections) connections than to 1 (\(counts.perThousandRecipients) per 1,000 recipients)"
            )
        }
    } setup: {
        (one: try FanoutFixture(connections: 1, payloadSize: payloadSize), many: try FanoutFixture(connections: 1_000, payloadSize: payloadSize))
    }
}

/// The mallocs of delivering to many connections beyond those of delivering to one, counted by the
/// malloc interposer the benchmark plugin preloads.
enum PerRecipientMallocs {
    struct Counts {
        let rounds: Int
        let recipients: Int
        /// Mallocs of `rounds` delivers to `recipients` connections minus those of `rounds` delivers to 1.
        let extra: Int
        /// Rounded away from zero: any malloc per recipient shows.
        var perThousandRecipients: Int {
            let deliveries = rounds * (recipients - 1)
            return extra > 0 ? (extra * 1_000 + deliveries - 1) / deliveries : -((-extra * 1_000 + deliveries - 1) / deliveries)
        }
    }

    /// Nil when no interposer counts allocations. Counting is switched on here only: the check's
    /// benchmark measures no malloc metric, so the framework leaves the interposer off.
    static func measure(one: FanoutFixture, many: FanoutFixture, rounds: Int) -> Counts? {
        let oneBatch = one.batch
        let manyBatch = many.batch
        // Warm up: capacities (the hub's pending-flush list) grow once.
        for _ in 0..<3 {
            one.hub.deliver(oneBatch)
            many.hub.deliver(manyBatch)
        }
        MallocInterposerSwift.hook()
        defer { MallocInterposerSwift.unhook() }
        let probeStart = MallocInterposerSwift.getStatistics().mallocCount
        let probe = malloc(64)
        blackHole(probe)
        free(probe)
        guard MallocInterposerSwift.getStatistics().mallocCount > probeStart else { return nil }

        let start = MallocInterposerSwift.getStatistics().mallocCount
        for _ in 0..<rounds { one.hub.deliver(oneBatch) }
        let middle = MallocInterposerSwift.getStatistics().mallocCount
        for _ in 0..<rounds { many.hub.deliver(manyBatch) }
        let end = MallocInterposerSwift.getStatistics().mallocCount
        return Counts(rounds: rounds, recipients: many.connections, extra: (end - middle) - (middle - start))
    }
}

/// A hub with `connections` websockets subscribed to one broadcast channel, and a message for it.
final class FanoutFixture {
    let connections: Int
    let loop = EmbeddedEventLoop()
    let hub: LoopHub
    /// One message for the fixture's channel: what one read from Redis hands the hub.
    let batch: [FanoutMessage]
    private let multiplexer: ChannelMultiplexer
    private let channels: [EmbeddedChannel]
    private let writes = WriteCount()

    init(connections: Int, payloadSize: Int) throws {
        self.connections = connections
        let logger = Logger(label: "ws4redis-benchmarks", factory: { _ in SwiftLogNoOpLogHandler() })
        let counters = ServerCounters()
        let configuration = ServerConfiguration()
        multiplexer = ChannelMultiplexer(eventLoop: loop, hubCount: 1, sharded: false, counters: counters, logger: logger)
        hub = LoopHub(
            eventLoop: loop, index: 0, counters: counters, logger: logger, compressionThreshold: configuration.compressionThreshold,
            multiplexer: multiplexer, publisher: ChannelPublisher(commands: NoRedis(eventLoop: loop), cluster: false, expireSeconds: 0)
        )
        multiplexer.attach([hub])
        let environment = ConnectionEnvironment(settings: ConnectionSettings(configuration), counters: counters, logger: logger, subscriptions: hub)

        let request = HandshakeRequest(
            method: "GET", path: "/ws/chat", query: "subscribe-broadcast", httpVersion: "HTTP/1.1",
            headers: [
                ("Host", "localhost"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13"),
            ]
        )
        guard case .accepted(let handshake) = HandshakeValidator(urlPrefix: "/ws/", echoPath: nil).decide(request) else {
            throw FixtureError("the benchmark's handshake was refused")
        }
        let plan = ConnectionPlan(handshake, names: ChannelNames(keyPrefix: ""))
        var channels: [EmbeddedChannel] = []
        for _ in 0..<connections {
            let channel = EmbeddedChannel(loop: loop)
            try channel.pipeline.syncOperations.addHandler(DropWrites(count: writes))
            try channel.pipeline.syncOperations.addHandler(environment.handler(for: plan))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            channels.append(channel)
        }
        self.channels = channels

        // Redis confirms the subscription; the persisted-message lookup fails at once (no Redis),
        // so every connection takes live messages from here on.
        loop.run()
        multiplexer.connected(PubSubConnection(EmbeddedChannel(loop: loop), sharded: false), shard: 0)
        multiplexer.received(.subscribed(channel: "broadcast:chat"))
        // As the subscriber connection does at the end of each read: the hub hears of the confirmation.
        multiplexer.readComplete()
        loop.run()

        let payload = ByteBuffer(bytes: textPayload(payloadSize))
        batch = [FanoutMessage(channel: "broadcast:chat", frame: FrameWriter.frame(opcode: .text, payload: payload, allocator: ByteBufferAllocator()))]
        let before = writes.value
        hub.deliver(batch)
        guard writes.value - before == connections else {
            throw FixtureError("a delivery reached \(writes.value - before) of \(connections) connections")
        }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

final class WriteCount {
    var value = 0
}

/// Stands in for the socket: counts the frames written and drops them, and ignores flushes.
final class DropWrites: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    private let count: WriteCount

    init(count: WriteCount) { self.count = count }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        count.value += 1
        promise?.succeed()
    }

    func flush(context: ChannelHandlerContext) {}
}

/// No Redis behind the hub: commands fail at once (the persisted-message lookup included).
final class NoRedis: RedisCommands {
    struct Unavailable: Error {}
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func start() {}
    func stop() -> EventLoopFuture<Void> { eventLoop.makeSucceededVoidFuture() }
    func send(_ commands: [[[UInt8]]]) -> EventLoopFuture<[RESPReply]> { eventLoop.makeFailedFuture(Unavailable()) }
    func readiness() -> EventLoopFuture<Void> { eventLoop.makeFailedFuture(Unavailable()) }
}
