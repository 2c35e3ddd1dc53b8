import WS4Redis

#if canImport(Glibc)
    import Glibc
#endif

/// `ws4redis serve --processes N`: N worker processes, each a whole server with its own event loops
/// and its one Redis connection, sharing the listening port through SO_REUSEPORT (the kernel spreads
/// connections over them). A process may hold ~20,000 descriptors at most here; workers multiply
/// that. The supervisor restarts a worker that dies and forwards SIGTERM/SIGINT to all of them.
struct WorkerSupervisor {
    let workerCount: Int
    /// The worker's command line: this executable's `serve` with the user's settings, then the
    /// settings that make it a worker (later settings win).
    let workerArguments: [String]
    /// How long workers get to close their websockets (1001) and exit after SIGTERM.
    let stopDeadlineSeconds: Int32 = 15

    private var workers: [pid_t: Int] = [:]
    private var startedAt: [Int: timespec] = [:]

    init(workerCount: Int, settings: [String], listen: HostAndPort) {
        self.workerCount = workerCount
        workerArguments = ["serve"] + settings + ["--processes", "1", "--reuse-port", "on", "--listen", "\(listen.host):\(listen.port)"]
    }

    /// Binds the listen address once with SO_REUSEPORT to learn the port (when 0 was asked for) and
    /// keep it reserved; the socket never listens, so it takes no connections.
    static func reserve(_ address: HostAndPort) throws -> (HostAndPort, CInt) {
        var hints = addrinfo()
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address.host, String(address.port), &hints, &found) == 0, let info = found else {
            throw WS4RedisError(.configuration, "cannot listen on \(address.host):\(address.port): not a numeric address")
        }
        defer { freeaddrinfo(found) }
        let descriptor = socket(info.pointee.ai_family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw WS4RedisError(.bind, "cannot listen on \(address.host):\(address.port): \(String(cString: strerror(errno)))") }
        var on: CInt = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<CInt>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEPORT, &on, socklen_t(MemoryLayout<CInt>.size))
        guard bind(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw WS4RedisError(.bind, "cannot listen on \(address.host):\(address.port): \(reason)")
        }
        var bound = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        let port = withUnsafeBytes(of: &bound) { raw -> UInt16 in
            // sin_port and sin6_port both sit right after the 2-byte family, in network order.
            UInt16(raw[2]) << 8 | UInt16(raw[3])
        }
        return (HostAndPort(host: address.host, port: Int(port)), descriptor)
    }

    /// Runs the workers until SIGTERM or SIGINT; returns the exit status for the supervisor.
    mutating func run() -> Int32 {
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGINT, SIGTERM, SIGCHLD] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        for slot in 0..<workerCount { spawn(slot) }
        while true {
            var received: Int32 = 0
            sigwait(&signals, &received)
            if received == SIGCHLD {
                reapAndRestart()
            } else {
                return stopAll()
            }
        }
    }

    private mutating func spawn(_ slot: Int) {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The worker starts with the default signal mask, not the supervisor's blocked one.
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv = ([Self.executable] + workerArguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, Self.executable, nil, &attributes, argv, environ)
        guard result == 0 else {
            fputs("ws4redis: cannot start worker \(slot): \(String(cString: strerror(result)))\n", stderr)
            return
        }
        workers[pid] = slot
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        startedAt[slot] = now
    }

    /// Restarts every worker that died; one that dies within a second of its start waits a second
    /// first, so that a worker failing at once (a bad setting, Redis refusing) does not spin.
    private mutating func reapAndRestart() {
        var status: Int32 = 0
        while case let pid = waitpid(-1, &status, WNOHANG), pid > 0 {
            guard let slot = workers.removeValue(forKey: pid) else { continue }
            fputs("ws4redis: worker \(slot) (pid \(pid)) \(Self.describe(status)); restarting it\n", stderr)
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            if let started = startedAt[slot], now.tv_sec - started.tv_sec < 1 { sleep(1) }
            spawn(slot)
        }
    }

    /// Forwards SIGTERM, waits for every worker up to the deadline, kills the rest.
    private mutating func stopAll() -> Int32 {
        for pid in workers.keys { kill(pid, SIGTERM) }
        var clean = true
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        deadline.tv_sec += Int(stopDeadlineSeconds)
        while !workers.isEmpty {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid > 0 {
                clean = clean && Self.exitedCleanly(status)
                workers[pid] = nil
                continue
            }
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            if now.tv_sec >= deadline.tv_sec {
                for pid in workers.keys { kill(pid, SIGKILL) }
                clean = false
                deadline.tv_sec = Int.max
            }
            usleep(20_000)
        }
        return clean ? 0 : 1
    }

    /// This program's own path (so that workers show up under its name in ps).
    private static let executable: String = {
        guard let path = realpath("/proc/self/exe", nil) else { return "/proc/self/exe" }
        defer { free(path) }
        return String(cString: path)
    }()

    private static func exitedCleanly(_ status: Int32) -> Bool {
        status & 0x7F == 0 && (status >> 8) & 0xFF == 0
    }

    private static func describe(_ status: Int32) -> String {
        status & 0x7F == 0 ? "exited with \((status >> 8) & 0xFF)" : "was killed by signal \(status & 0x7F)"
    }
}
