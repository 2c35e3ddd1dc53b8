import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The standalone listener: one listening socket per event loop, all bound to one port with
/// SO_REUSEPORT, so the kernel spreads connections over the loops and each socket is accepted,
/// served and closed on one thread (one listener for all loops hands every other socket across
/// threads, a wake-up and a queued task each).
struct LoopListeners {
    let channels: [any Channel]

    /// `sharedWithOtherProcesses`: other processes may join the port (`reuse_port`); otherwise a
    /// port that is already listened on is refused, as a plain bind would.
    static func bind(
        _ address: HostAndPort, loops: [any EventLoop], sharedWithOtherProcesses: Bool,
        childInitializer: @escaping @Sendable (any Channel, Int) -> EventLoopFuture<Void>
    ) throws -> LoopListeners {
        var channels: [any Channel] = []
        do {
            if !sharedWithOtherProcesses { try refuseTakenPort(address) }
            var port = address.port
            for (index, loop) in loops.enumerated() {
                let channel = try ServerBootstrap(group: loop)
                    .serverChannelOption(.backlog, value: 1024)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .serverChannelOption(ChannelOptions.Types.SocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_REUSEPORT)), value: 1)
                    .childChannelInitializer { childInitializer($0, index) }
                    .bind(host: address.host, port: port).wait()
                channels.append(channel)
                // Port 0 asks for any port: the loops after the first join the one it was given.
                port = channel.localAddress?.port ?? port
            }
        } catch {
            channels.forEach { try? $0.close().wait() }
            throw WS4RedisError(.bind, "cannot listen on \(address.host):\(address.port): \(error)")
        }
        return LoopListeners(channels: channels)
    }

    var localAddress: SocketAddress? { channels.first?.localAddress }

    func close() {
        channels.forEach { try? $0.close().wait() }
    }

    /// SO_REUSEPORT would let these listeners join another server's on the same port and split its
    /// traffic; a bind without it (not listening, so no connection can reach it) finds such a port taken.
    private static func refuseTakenPort(_ address: HostAndPort) throws {
        guard address.port != 0 else { return }
        let socketAddress = try SocketAddress.makeAddressResolvingHost(address.host, port: address.port)
        let descriptor = socket(socketAddress.protocol.rawValue, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        defer { Glibc.close(descriptor) }
        var on: Int32 = 1
        guard setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw IOError(errnoCode: errno, reason: "setsockopt(SO_REUSEADDR)")
        }
        let bound = socketAddress.withSockAddr { Glibc.bind(descriptor, $0, socklen_t($1)) }
        guard bound == 0 else { throw IOError(errnoCode: errno, reason: "bind") }
    }
}
