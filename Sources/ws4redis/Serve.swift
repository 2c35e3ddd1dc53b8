import ArgumentParser
import Logging
import WS4Redis

#if canImport(Glibc)
    import Glibc
#endif

/// `ws4redis serve`: the core on its own NIO listener.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the standalone websocket server.",
        discussion: Setting.helpText
    )

    @Argument(parsing: .captureForPassthrough, help: "Settings as --name value (see below); --listen defaults to 127.0.0.1:8080.")
    var settings: [String] = []

    func run() throws {
        if settings.contains("--help") || settings.contains("-h") {
            print(Serve.helpMessage())
            return
        }
        ShutdownSignal.blockInAllThreads()
        DescriptorTable.liftSoftLimit()
        var configuration = ServerConfiguration()
        configuration.listenAddress = HostAndPort(host: "127.0.0.1", port: 8080)
        try configuration.apply(SettingsLoader.settings(arguments: settings, environment: SettingsLoader.processEnvironment))
        if configuration.processes > 1 { try superviseWorkers(configuration) }
        let server = try WS4RedisServer(configuration: configuration)
        try server.start()
        let address = configuration.listenAddress.map { "\($0.host):\(server.listenAddress?.port ?? $0.port)" } ?? "nowhere"
        print("ws4redis listening on http://\(address) (standalone)")
        fflush(stdout)
        ShutdownSignal.wait()
        server.stop()
    }
}

extension Serve {
    private func superviseWorkers(_ configuration: ServerConfiguration) throws -> Never {
        guard let listen = configuration.listenAddress else { throw ValidationError("--processes needs a --listen address") }
        let (address, reserved) = try WorkerSupervisor.reserve(listen)
        var supervisor = WorkerSupervisor(workerCount: configuration.processes, settings: settings, listen: address)
        print("ws4redis listening on http://\(address.host):\(address.port) (standalone, \(configuration.processes) processes)")
        fflush(stdout)
        let status = supervisor.run()
        close(reserved)
        Serve.exit(withError: status == 0 ? nil : ExitCode(status))
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
