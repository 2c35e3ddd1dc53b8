// swift-tools-version:6.1
import PackageDescription

/// The Swift runtime is linked in statically, so the library and the CLI run where no Swift is
/// installed. `make sanitize` (ThreadSanitizer) sets WS4R_DYNAMIC_STDLIB: the sanitizer's runtime
/// must see the toolchain's shared libdispatch, not a static copy.
let staticStdlib = Context.environment["WS4R_DYNAMIC_STDLIB"] == nil

/// Exports only the `ws4r_*` C ABI from libws4redis.so and carries the Swift runtime inside it,
/// so the library loads into processes (C hosts, Python) that have no Swift installed.
/// Its soname carries the ABI major (WS4R_ABI_VERSION of include/ws4redis.h; Tests/packaging checks
/// that they agree): programs linked against it keep loading it across minor updates.
let cABILinkerFlags: [String] = (staticStdlib ? ["-static-stdlib"] : []) + [
    "-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/WS4RedisCAPI/exports.map",
    "-Xlinker", "-soname=libws4redis.so.1",
]

/// ArgumentParser pulls in Foundation's static parts, which need their own support libraries.
let cliLinkerFlags: [String] = staticStdlib ? ["-static-stdlib", "-Xlinker", "-l_FoundationCollections", "-Xlinker", "-l_FoundationCShims"] : []

let package = Package(
    name: "ws4redis",
    products: [
        .library(name: "ws4redis", type: .dynamic, targets: ["WS4RedisCAPI"]),
        .executable(name: "ws4redis-cli", targets: ["ws4redis-cli"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // The micro benchmarks (Benchmarks/WS4RedisBenchmarks). Only the MallocInterposer trait: malloc
        // counts come from its LD_PRELOADed interposer, and the default RuntimeInterposer trait (ARC
        // counts on Swift 6.3) would pull in a package that is not needed here.
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        // The fan-out benchmark's own malloc count (per recipient), from the same interposer.
        .package(url: "https://github.com/ordo-one/malloc-interposer.git", from: "1.6.1"),
    ],
    targets: [
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "CWS4Redis"),
        // The pure protocol: frame codec, assembler, UTF-8, handshake validation, channel names and
        // flags, tokens. NIOCore only (its ByteBuffer): no I/O and no C library, reusable, and fast
        // to build and test. Opcodes and close codes are its own, since NIOWebSocket pulls in NIOPosix.
        .target(
            name: "WS4RedisProtocol",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // zlib's raw DEFLATE for permessage-deflate: the inflater the protocol's assembler is given.
        .target(
            name: "WS4RedisCompression",
            dependencies: ["WS4RedisProtocol", "CZlib", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // The server on top: Redis, fan-out, connections, listeners, identity sources, metrics.
        .target(
            name: "WS4Redis",
            dependencies: [
                "WS4RedisProtocol",
                "WS4RedisCompression",
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "WS4RedisCAPI",
            dependencies: ["WS4Redis", "CWS4Redis"],
            linkerSettings: [.unsafeFlags(cABILinkerFlags)]
        ),
        .executableTarget(
            name: "ws4redis-cli",
            dependencies: [
                "WS4Redis",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/ws4redis",
            linkerSettings: [.unsafeFlags(cliLinkerFlags)]
        ),
        .executableTarget(
            name: "ws4redis-fuzz",
            dependencies: [
                "WS4RedisProtocol",
                "WS4RedisCompression",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "WS4RedisTests",
            dependencies: [
                "WS4Redis",
                "WS4RedisProtocol",
                "WS4RedisCompression",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // The benchmark's plain-SwiftNIO handshake peer (Benchmarks/peers/nio-floor).
        .executableTarget(
            name: "nio-floor",
            dependencies: [
                "WS4Redis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/peers/nio-floor",
            // Linked as ws4redis is, so that the two differ by what they do, not by how they call the runtime.
            linkerSettings: [.unsafeFlags(staticStdlib ? ["-static-stdlib"] : [])]
        ),
        // Run by the benchmark plugin: `make bench-micro` (Benchmarks/README.md).
        .executableTarget(
            name: "WS4RedisBenchmarks",
            // The codec's benchmarks need only the protocol; the fan-out's needs the server's hub.
            dependencies: [
                "WS4RedisProtocol",
                "WS4Redis",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            path: "Benchmarks/WS4RedisBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    // Tools 6.1 for the benchmark package's traits; the code stays in the Swift 5 language mode.
    swiftLanguageModes: [.v5]
)
