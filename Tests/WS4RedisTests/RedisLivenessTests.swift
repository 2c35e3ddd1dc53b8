#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

/// The command client against a real redis-server that the tests freeze (SIGSTOP: its kernel still
/// accepts and acknowledges, the process answers nothing) and thaw, and against a listener that never
/// answers. Bounds are generous; what is asserted is the outcome, never how long it took.
final class RedisLivenessTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private let logger = Logger(label: "test")

    override func setUp() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() {
        try? group.syncShutdownGracefully()
    }

    private func options(pingMilliseconds: Int, timeoutMilliseconds: Int, queueBytes: Int = 1 << 20) -> RedisOptions {
        var configuration = ServerConfiguration()
        configuration.redisPingIntervalMilliseconds = pingMilliseconds
        configuration.redisTimeoutMilliseconds = timeoutMilliseconds
        configuration.redisQueueBytes = queueBytes
        return RedisOptions(configuration)
    }

    private func client(port: Int, _ options: RedisOptions, counters: ServerCounters) throws -> RedisCommandClient {
        let endpoint = RedisEndpoint(address: .tcp(host: "127.0.0.1", port: port), database: 0)
        let client = try RedisCommandClient(endpoint: endpoint, eventLoop: group.next(), logger: logger, options: options, timeouts: counters.redisTimeouts)
        client.start()
        addTeardownBlock { try? client.stop().wait() }
        return client
    }

    /// The outcome of `future`, or a failure of the test once `seconds` passed without one.
    private func outcome<T>(of future: EventLoopFuture<T>, within seconds: Int64) -> Result<T, any Error> {
        let bounded = future.eventLoop.makePromise(of: T.self)
        let limit = future.eventLoop.scheduleTask(in: .seconds(seconds)) { bounded.fail(NoOutcome(seconds: seconds)) }
        future.cascade(to: bounded)
        bounded.futureResult.whenComplete { _ in limit.cancel() }
        do {
            return .success(try bounded.futureResult.wait())
        } catch {
            return .failure(error)
        }
    }

    private struct NoOutcome: Error, CustomStringConvertible {
        let seconds: Int64
        var description: String { "no outcome within \(seconds) s" }
    }

    private func set(_ key: String, _ value: String) -> [[[UInt8]]] {
        [[Array("SET".utf8), Array(key.utf8), Array(value.utf8)]]
    }

    func testACommandToAFrozenRedisFailsWithATimeoutAndTheClientRecoversAfterTheThaw() throws {
        let redis = try RedisTestServer.start()
        let counters = ServerCounters()
        let client = try client(port: redis.port, options(pingMilliseconds: 100, timeoutMilliseconds: 300), counters: counters)
        try outcome(of: client.readiness(), within: 10).get()
        redis.freeze()
        defer { redis.thaw() }
        guard case .failure(let error as WS4RedisError) = outcome(of: client.send(set("k", "frozen")), within: 20) else {
            return XCTFail("a command to a frozen Redis did not fail with a WS4RedisError")
        }
        XCTAssertEqual(error.kind, .redis)
        XCTAssertFalse(error.isRedisQueueFull)
        XCTAssertTrue(error.message.contains("no reply from Redis within 300 ms"), error.message)
        XCTAssertGreaterThan(counters.redisTimeouts.current, 0)
        redis.thaw()
        try waitUntil("a command succeeds after the thaw") {
            if case .success(let replies) = self.outcome(of: client.send(self.set("k", "thawed")), within: 10) { return replies == [.status("OK")] }
            return false
        }
    }

    func testAnIdleConnectionToAFrozenRedisIsFoundByItsPings() throws {
        let redis = try RedisTestServer.start()
        let counters = ServerCounters()
        let client = try client(port: redis.port, options(pingMilliseconds: 100, timeoutMilliseconds: 300), counters: counters)
        try outcome(of: client.readiness(), within: 10).get()
        redis.freeze()
        defer { redis.thaw() }
        // Nothing is sent: only the client's own PINGs can tell that Redis stopped answering.
        try waitUntil("the idle connection to be given up") { counters.redisTimeouts.current > 0 }
    }

    func testPingsWaitForSilence() throws {
        let redis = try RedisTestServer.start()
        let client = try client(port: redis.port, options(pingMilliseconds: 400, timeoutMilliseconds: 1000), counters: ServerCounters())
        try outcome(of: client.readiness(), within: 10).get()
        let before = redis.commandCount("ping")
        // Replies at least every 50 ms: the connection is never quiet for a whole ping interval.
        for index in 0..<40 {
            _ = try outcome(of: client.send(set("busy", "\(index)")), within: 10).get()
            usleep(50_000)
        }
        XCTAssertEqual(redis.commandCount("ping"), before, "PINGs went out on a connection that kept hearing replies")
        try waitUntil("a PING once the connection is quiet") { redis.commandCount("ping") > before }
    }

    func testTheSetUpTimesOutAgainstAPeerThatNeverAnswers() throws {
        // Accepts and reads, never writes: what a frozen Redis looks like to a new connection.
        let silent = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? silent.close().wait() }
        let counters = ServerCounters()
        let client = try client(port: silent.localAddress!.port!, options(pingMilliseconds: 0, timeoutMilliseconds: 300), counters: counters)
        guard case .failure(let error as WS4RedisError) = outcome(of: client.readiness(), within: 20) else {
            return XCTFail("readiness did not fail against a peer that never answers")
        }
        XCTAssertTrue(error.message.contains("no reply from Redis"), error.message)
        XCTAssertGreaterThan(counters.redisTimeouts.current, 0)
    }

    func testTheQueueIsBoundedInBytesAndFreedByReplies() throws {
        let redis = try RedisTestServer.start()
        // No timeouts: the frozen Redis keeps the first command unanswered for as long as the test wants.
        let client = try client(port: redis.port, options(pingMilliseconds: 0, timeoutMilliseconds: 0, queueBytes: 1000), counters: ServerCounters())
        try outcome(of: client.readiness(), within: 10).get()
        let large = String(repeating: "x", count: 600)
        guard case .failure(let alone as WS4RedisError) = outcome(of: client.send(set("k", large + large)), within: 10) else {
            return XCTFail("a send larger than the bound was not refused")
        }
        XCTAssertTrue(alone.isRedisQueueFull, alone.message)
        redis.freeze()
        defer { redis.thaw() }
        let first = client.send(set("first", large))
        guard case .failure(let full as WS4RedisError) = outcome(of: client.send(set("second", large)), within: 10) else {
            return XCTFail("a send past the bound while the first is unanswered was not refused")
        }
        XCTAssertTrue(full.isRedisQueueFull, full.message)
        XCTAssertTrue(full.message.contains("redis_queue_bytes 1000"), full.message)
        redis.thaw()
        XCTAssertEqual(try outcome(of: first, within: 10).get(), [.status("OK")])
        XCTAssertEqual(try outcome(of: client.send(set("second", large)), within: 10).get(), [.status("OK")], "the answered command's bytes were not given back")
    }

    private func waitUntil(_ what: String, within seconds: Double = 20, _ condition: () throws -> Bool) throws {
        let deadline = NIODeadline.now() + .milliseconds(Int64(seconds * 1000))
        while try !condition() {
            guard NIODeadline.now() < deadline else { return XCTFail("timed out waiting for \(what)") }
            usleep(20_000)
        }
    }
}

/// A private redis-server on a free loopback port, without persistence; stopped (and thawed first)
/// when released.
final class RedisTestServer {
    let port: Int
    private let pid: pid_t

    private init(port: Int, pid: pid_t) {
        self.port = port
        self.pid = pid
    }

    static func start() throws -> RedisTestServer {
        let port = try freePort()
        let arguments = ["redis-server", "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"]
        var pid: pid_t = 0
        var argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let spawned = posix_spawnp(&pid, "redis-server", nil, nil, &argv, environ)
        guard spawned == 0 else { throw XCTSkip("cannot start redis-server: \(String(cString: strerror(spawned)))") }
        let server = RedisTestServer(port: port, pid: pid)
        for _ in 0..<500 where server.commandCount("ping") < 0 { usleep(10_000) }
        return server
    }

    deinit {
        thaw()
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }

    func freeze() { kill(pid, SIGSTOP) }
    func thaw() { kill(pid, SIGCONT) }

    /// How often Redis ran `command` (INFO commandstats, asked on a connection of its own), -1 while
    /// it does not answer yet.
    func commandCount(_ command: String) -> Int {
        guard let info = query("INFO commandstats\r\n") else { return -1 }
        guard let line = info.split(separator: "\r\n").first(where: { $0.hasPrefix("cmdstat_\(command):calls=") }) else { return 0 }
        return Int(line.dropFirst("cmdstat_\(command):calls=".count).prefix { $0.isNumber }) ?? 0
    }

    /// One inline command on a fresh blocking connection: its whole reply, or nil if there was none.
    private func query(_ command: String) -> String? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0, write(descriptor, command, command.utf8.count) == command.utf8.count else { return nil }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        // A bulk reply: `$length\r\n` then the text; read until all of it arrived.
        while true {
            let count = read(descriptor, &chunk, chunk.count)
            guard count > 0 else { return nil }
            reply += chunk[..<count]
            let text = String(decoding: reply, as: UTF8.self)
            if let header = text.split(separator: "\r\n", maxSplits: 1).first, let length = Int(header.dropFirst()),
                reply.count >= header.utf8.count + 2 + length {
                return text
            }
        }
    }

    private static func freePort() throws -> Int {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let listener = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? listener.close().wait() }
        return listener.localAddress!.port!
    }
}
