// nio-floor: the least a SwiftNIO server does per websocket handshake, measured beside ws4redis,
// Nchan and the C floor (Benchmarks/run.py, handshakes scenario), so that the part of ws4redis's
// handshake cost that is NIO's own channel machinery shows: one ServerBootstrap per event loop on
// one SO_REUSEPORT port (as ws4redis listens), one handler added synchronously, which answers the
// request head with a 101 (the real Sec-WebSocket-Accept), a close frame with a close frame, and
// closes. No parsing beyond the key, no Redis, no subscription.
//
//   nio-floor --listen HOST:PORT [--threads N]
//
// Not a server to deploy: a request split over two reads, or anything but a close frame after the
// upgrade, closes the connection. GET /healthz answers 200 once it listens (it has no Redis).
import NIOCore
import NIOPosix
import WS4Redis

#if canImport(Glibc)
import Glibc
#endif

final class HandshakeOnlyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var upgraded = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if upgraded { return answerClose(bytes, context: context) }
        let found = bytes.withUnsafeReadableBytes { head -> (isHealthCheck: Bool, key: String?)? in
            guard head.count >= 4, head[head.count - 4] == 13, head[head.count - 3] == 10, head[head.count - 2] == 13, head[head.count - 1] == 10
            else { return nil }
            return (head.starts(with: Self.healthCheck), Self.key(in: head))
        }
        guard let found else { return context.close(promise: nil) }
        if found.isHealthCheck { return respondHealthy(context: context) }
        guard let key = found.key else { return context.close(promise: nil) }
        upgraded = true
        var response = context.channel.allocator.buffer(capacity: 129)
        response.writeStaticString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
        response.writeString(HandshakeValidator.acceptValue(forKey: key))
        response.writeStaticString("\r\n\r\n")
        context.writeAndFlush(wrapOutboundOut(response), promise: nil)
    }

    /// A masked close frame from the client: the same status code back, unmasked, then close.
    private func answerClose(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        guard frame.readableBytes >= 8, frame.getInteger(at: frame.readerIndex, as: UInt8.self) == 0x88,
            let mask = frame.getInteger(at: frame.readerIndex + 2, as: UInt16.self), let code = frame.getInteger(at: frame.readerIndex + 6, as: UInt16.self)
        else { return context.close(promise: nil) }
        var reply = context.channel.allocator.buffer(capacity: 4)
        reply.writeInteger(UInt16(0x8802))
        reply.writeInteger(code ^ mask)
        context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in context.close(promise: nil) }
    }

    private func respondHealthy(context: ChannelHandlerContext) {
        var response = context.channel.allocator.buffer(capacity: 96)
        response.writeStaticString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        context.writeAndFlush(wrapOutboundOut(response)).whenComplete { _ in context.close(promise: nil) }
    }

    private static let healthCheck = Array("GET /healthz ".utf8)
    private static let keyHeader = Array("sec-websocket-key:".utf8)

    /// The value of the Sec-WebSocket-Key line, found on the bytes (no String per line).
    private static func key(in head: UnsafeRawBufferPointer) -> String? {
        var lineStart = 0
        while lineStart < head.count {
            let lineEnd = head[lineStart...].firstIndex(of: 10) ?? head.count
            if lineEnd - lineStart > keyHeader.count,
                zip(head[lineStart..<(lineStart + keyHeader.count)], keyHeader).allSatisfy({ ($0 | 0x20) == $1 || $0 == $1 })
            {
                let value = head[(lineStart + keyHeader.count)..<lineEnd].drop { $0 == 32 }.prefix { $0 != 13 && $0 != 32 }
                return String(decoding: value, as: UTF8.self)
            }
            lineStart = lineEnd + 1
        }
        return nil
    }
}

struct Options {
    var host = "127.0.0.1"
    var port = 8080
    var threads = 2

    init(_ arguments: [String]) {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { Self.usage("\(flag) needs a value") }
            switch flag {
            case "--listen":
                guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]) else { Self.usage("--listen HOST:PORT") }
                host = String(value[..<colon])
                self.port = port
            case "--threads":
                guard let threads = Int(value), threads > 0 else { Self.usage("--threads N") }
                self.threads = threads
            default:
                Self.usage("unknown option \(flag)")
            }
        }
    }

    static func usage(_ problem: String) -> Never {
        fputs("nio-floor: \(problem)\nusage: nio-floor --listen HOST:PORT [--threads N]\n", stderr)
        exit(2)
    }
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
let reusePort = ChannelOptions.Types.SocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_REUSEPORT))
var listeners: [any Channel] = []
for loop in group.makeIterator() {
    let listener = try ServerBootstrap(group: loop)
        .serverChannelOption(.backlog, value: 1024)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .serverChannelOption(reusePort, value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                // Like ws4redis's sockets: a small receive buffer, one read per wake-up.
                let options = channel.syncOptions!
                try options.setOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 1024))
                try options.setOption(.maxMessagesPerRead, value: 1)
                try channel.pipeline.syncOperations.addHandler(HandshakeOnlyHandler())
            }
        }
        .bind(host: options.host, port: options.port).wait()
    listeners.append(listener)
}
try listeners[0].closeFuture.wait()
