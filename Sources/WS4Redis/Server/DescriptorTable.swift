#if canImport(Glibc)
    import Glibc
#endif

/// The kernel sizes a process's descriptor table by doubling it as descriptors are opened, and in a
/// process with several threads each growth waits for an RCU grace period (`expand_fdtable`): the
/// event loop that accepts the 1,024th, 2,048th, 4,096th, ... socket is blocked in accept() for
/// 10-20 ms, and every handshake of that loop waits behind it. Sized once at start, the table
/// never grows while the server serves. The table is kernel memory, 8 bytes per descriptor.
package enum DescriptorTable {
    /// Past this the table grows as it would (1 MiB of kernel memory here).
    static let largestReserved = 1 << 17

    /// Grows the table to hold descriptors up to the soft RLIMIT_NOFILE (at most `largestReserved`).
    /// Best effort: a descriptor limit that cannot be read leaves the table as it is.
    static func reserveUpToLimit() {
        guard let limit = limit(), limit.rlim_cur > 0 else { return }
        reserve(upTo: Int(min(limit.rlim_cur, rlim_t(largestReserved))))
    }

    /// Lifts the soft descriptor limit (often 1,024) to the hard one, for a process whose every
    /// websocket holds a descriptor (`ws4redis serve`, and the C host through the C ABI). Returns
    /// the soft limit in force afterwards, nil when it cannot be read.
    @discardableResult
    package static func liftSoftLimit() -> rlim_t? {
        guard var limit = limit() else { return nil }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            setrlimit(resource, &limit)
        }
        return Self.limit()?.rlim_cur
    }

    /// The process's RLIMIT_NOFILE, nil when it cannot be read.
    static func limit() -> rlimit? {
        var limit = rlimit()
        return getrlimit(resource, &limit) == 0 ? limit : nil
    }

    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

    /// Sizes the table for `count` descriptors by duplicating one to number `count` - 1 and closing it.
    static func reserve(upTo count: Int) {
        let probe = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard probe >= 0 else { return }
        defer { close(probe) }
        let highest = fcntl(probe, F_DUPFD_CLOEXEC, Int32(count - 1))
        if highest >= 0 { close(highest) }
    }
}
