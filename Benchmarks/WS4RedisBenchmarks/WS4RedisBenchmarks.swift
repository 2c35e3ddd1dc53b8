import Benchmark
import Foundation
import NIOCore
import WS4Redis

/// The micro benchmarks of ws4redis's hot paths, run by the benchmark plugin (`make bench-micro`,
/// Benchmarks/README.md). Every benchmark reports per operation (its scaling factor divides the
/// counts): throughput, wall clock and, above all, mallocs.
///
/// WS4R_BENCH_SMOKE=1 runs each benchmark for a few iterations only (`make bench-micro-smoke`):
/// a check that they build and run, not a measurement.
let smoke = ProcessInfo.processInfo.environment["WS4R_BENCH_SMOKE"].map { !$0.isEmpty && $0 != "0" } ?? false

let benchmarks: @Sendable () -> Void = {
    reportingDescriptor = dup(STDERR_FILENO)
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        warmupIterations: smoke ? 1 : 10,
        maxDuration: smoke ? .milliseconds(20) : .seconds(1),
        maxIterations: smoke ? 3 : 10_000
    )
    frameEncodeBenchmarks()
    frameDecodeBenchmarks()
    utf8Benchmarks()
    subscriptionTableBenchmarks()
    fanoutBenchmarks()
}

/// The suite's defaults with `scaling` operations per measured iteration (reported per operation).
func perOperation(_ scaling: BenchmarkScalingFactor = .kilo) -> Benchmark.Configuration {
    var configuration = Benchmark.defaultConfiguration
    configuration.scalingFactor = scaling
    return configuration
}

/// Ends the suite with a failed check. `benchmark.error(_:)` prints its reason, but the plugin
/// (1.38.1) still exits 0 after it; a benchmark process that exits non-zero fails the run. The
/// runner sends stdout and stderr to /dev/null while a benchmark runs: the reason goes to a copy
/// of stderr taken when the benchmarks are registered.
func failRun(_ benchmark: Benchmark, _ reason: String) -> Never {
    let line = "error: \(benchmark.name): \(reason)\n"
    _ = line.withCString { write(reportingDescriptor, $0, strlen($0)) }
    exit(1)
}

nonisolated(unsafe) var reportingDescriptor = STDERR_FILENO

/// Mutable benchmark state that its iterations change in place (no copy-on-write of a shared copy).
final class Box<Value> {
    var value: Value
    init(_ value: Value) { self.value = value }
}

// MARK: 1. frame encode

func frameEncodeBenchmarks() {
    for size in [64, 4096] {
        let payload = ByteBuffer(bytes: textPayload(size))
        let allocator = ByteBufferAllocator()
        Benchmark("FrameWriter.frame text \(sizeName(size))", configuration: perOperation()) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(FrameWriter.frame(opcode: .text, payload: identity(payload), allocator: allocator))
            }
        }
    }
}

// MARK: 3. UTF-8 validation

func utf8Benchmarks() {
    for (name, bytes) in [("ASCII", asciiText(4096)), ("mixed multi-byte", mixedText(4096))] {
        let buffer = ByteBuffer(bytes: bytes)
        precondition(UTF8Validator.isValid(buffer), "the \(name) fixture must be valid UTF-8")
        Benchmark("UTF8Validator 4 KiB \(name)", configuration: perOperation()) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(UTF8Validator.isValid(identity(buffer)))
            }
        }
    }
}

// MARK: 4. channel registry

/// The Redis channel bookkeeping a websocket's connect and disconnect cost: its 3 channels
/// acquired and released again, among 10,000 channels other connections hold.
func subscriptionTableBenchmarks() {
    let hubCount = 2
    let existing = (0..<10_000).map { "group:team-\($0):chat" }
    func table() -> Box<SubscriptionTable> {
        var table = SubscriptionTable(hubCount: hubCount)
        for (index, channel) in existing.enumerated() { _ = table.acquire([channel], hub: index % hubCount) }
        return Box(table)
    }
    // A connection with subscribe-broadcast, subscribe-user and subscribe-session.
    let own = ["broadcast:chat", "user:alice:chat", "session:0123456789abcdef0123456789abcdef:chat"]
    let shared = [existing[17], existing[4_711], existing[9_999]]

    for (kind, channels) in [("new", own), ("held", shared)] {
        Benchmark("SubscriptionTable acquire+release 3 \(kind) channels (10k held)", configuration: perOperation()) { benchmark, table in
            for _ in benchmark.scaledIterations {
                blackHole(table.value.acquire(channels, hub: 1))
                blackHole(table.value.remove(table.value.release(channels, hub: 1)))
            }
        } setup: {
            table()
        }
    }

    Benchmark("SubscriptionTable isWanted x3 (10k held)", configuration: perOperation()) { benchmark, table in
        for _ in benchmark.scaledIterations {
            for channel in shared { blackHole(table.value.isWanted(channel)) }
        }
    } setup: {
        table()
    }
}
