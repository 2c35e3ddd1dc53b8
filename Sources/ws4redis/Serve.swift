import ArgumentParser
import Logging
import WS4Redis

#if canImport(Glibc)
import Glibc
#endif

/// `ws4redis serve`: the core on its own NIO listener.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the standalone websocket server.")

    @Option(help: "Address to listen on, host:port.")
    var listen = "127.0.0.1:8080"

    @Option(help: "Redis URL: redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N&password=P].")
    var redis = ProcessEnvironment["WS4REDIS_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"

    @Option(help: "Prefix of Redis channels and keys (WS4REDIS_PREFIX); none by default.")
    var prefix = ""

    @Option(name: .customLong("url-prefix"), help: "URL prefix of websocket endpoints (WEBSOCKET_URL).")
    var urlPrefix = "/ws/"

    @Option(help: "Event-loop threads; 0 means one per core.")
    var threads = 0

    @Option(name: .customLong("echo-path"), help: "Path of a plain echo endpoint for conformance tests; off unless given.")
    var echoPath: String?

    @Option(name: .customLong("max-message-size"), help: "Largest client message in bytes.")
    var maxMessageSize = ServerConfiguration().maxMessageSize

    @Option(name: .customLong("max-connections"), help: "Most concurrent websockets; 0 means unlimited.")
    var maxConnections = 0

    @Option(name: .customLong("ping-interval"), help: "Milliseconds between pings to idle clients; 0 turns pings off.")
    var pingInterval = ServerConfiguration().pingIntervalMilliseconds

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    func run() throws {
        ShutdownSignal.blockInAllThreads()
        var configuration = ServerConfiguration()
        configuration.redis = try RedisEndpoint(url: redis)
        configuration.keyPrefix = prefix
        configuration.urlPrefix = urlPrefix
        configuration.listenAddress = try HostAndPort(parsing: listen)
        configuration.echoPath = echoPath
        configuration.ioThreads = threads
        configuration.maxMessageSize = maxMessageSize
        configuration.maxFrameSize = maxMessageSize
        configuration.maxConnections = maxConnections
        configuration.pingIntervalMilliseconds = pingInterval
        var logger = Logger(label: "ws4redis")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let server = try WS4RedisServer(configuration: configuration, logger: logger)
        try server.start()
        print("ws4redis listening on http://\(listen) (standalone)")
        fflush(stdout)
        ShutdownSignal.wait()
        server.stop()
    }
}

/// Blocks until SIGINT or SIGTERM arrives.
enum ShutdownSignal {
    static func wait() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        var received: Int32 = 0
        sigwait(&signals, &received)
    }

    /// Must run before any thread starts, so that every thread inherits the blocked mask.
    static func blockInAllThreads() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        signal(SIGPIPE, SIG_IGN)
    }
}

enum ProcessEnvironment {
    static subscript(name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
