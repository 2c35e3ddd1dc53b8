import CWS4Redis
import NIOConcurrencyHelpers
import NIOCore
import WS4Redis

#if canImport(Glibc)
    import Glibc
#endif

/// What a `ws4r_server *` points to.
final class ServerHandle: ErrorMessageHolder, @unchecked Sendable {
    var server: WS4RedisServer?
    /// The C strings ws4r_server_setting() handed out, by setting name: one per setting at most,
    /// valid as long as the handle (the configuration never changes after create).
    private let settingTexts = NIOLockedValueBox<[String: UnsafeMutablePointer<CChar>]>([:])

    func settingText(_ name: String) -> UnsafePointer<CChar>? {
        guard let configuration = server?.configuration, let setting = Setting.named(name),
            let text = configuration.text(ofSetting: setting.name)
        else { return nil }
        return UnsafePointer(
            settingTexts.withLockedValue { texts -> UnsafeMutablePointer<CChar> in
                if let known = texts[setting.name] { return known }
                let copy = strdup(text)!
                texts[setting.name] = copy
                return copy
            })
    }

    deinit {
        settingTexts.withLockedValue { $0.values.forEach { free($0) } }
    }
}

func serverHandle(_ pointer: OpaquePointer?) -> ServerHandle? {
    pointer.map { Unmanaged<ServerHandle>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

@_cdecl("ws4r_server_create")
public func cServerCreate(_ config: UnsafePointer<ws4r_config>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let out else { return WS4R_EINVAL }
    let handle = ServerHandle()
    out.pointee = OpaquePointer(Unmanaged.passRetained(handle).toOpaque())
    return handle.recording {
        guard let config else { throw WS4RedisError(.invalidArgument, "config is NULL") }
        handle.server = try WS4RedisServer(configuration: ServerConfiguration(config))
    }
}

@_cdecl("ws4r_server_create_with_args")
public func cServerCreateWithArgs(
    _ base: UnsafePointer<ws4r_config>?, _ argc: Int32, _ argv: UnsafePointer<UnsafePointer<CChar>?>?, _ out: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    guard let out else { return WS4R_EINVAL }
    let handle = ServerHandle()
    out.pointee = OpaquePointer(Unmanaged.passRetained(handle).toOpaque())
    return handle.recording {
        var configuration = try base.map { try ServerConfiguration($0) } ?? ServerConfiguration()
        let arguments = try (0..<Int(max(argc, 0))).map { index in
            guard let argument = argv?[index] else { throw WS4RedisError(.invalidArgument, "argv[\(index)] is NULL") }
            return String(cString: argument)
        }
        try configuration.apply(SettingsLoader.settings(arguments: arguments, environment: SettingsLoader.processEnvironment))
        handle.server = try WS4RedisServer(configuration: configuration)
    }
}

@_cdecl("ws4r_server_start")
public func cServerStart(_ pointer: OpaquePointer?) -> Int32 {
    guard let handle = serverHandle(pointer) else { return WS4R_EINVAL }
    return handle.recording {
        guard let server = handle.server else { throw WS4RedisError(.state, "the server was not created successfully") }
        try server.start()
    }
}

@_cdecl("ws4r_server_stop")
public func cServerStop(_ pointer: OpaquePointer?, _ timeoutMilliseconds: UInt32) -> Int32 {
    guard let handle = serverHandle(pointer) else { return WS4R_EINVAL }
    handle.server?.stop(timeout: .milliseconds(Int64(timeoutMilliseconds)))
    return WS4R_OK
}

@_cdecl("ws4r_server_destroy")
public func cServerDestroy(_ pointer: OpaquePointer?) {
    guard let pointer else { return }
    let handle = Unmanaged<ServerHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeRetainedValue()
    handle.server?.stop()
}

@_cdecl("ws4r_server_errmsg")
public func cServerErrmsg(_ pointer: OpaquePointer?) -> UnsafePointer<CChar> {
    guard let handle = serverHandle(pointer) else { return cStaticString("no server handle") }
    return handle.cMessage
}

@_cdecl("ws4r_server_setting")
public func cServerSetting(_ pointer: OpaquePointer?, _ name: UnsafePointer<CChar>?) -> UnsafePointer<CChar>? {
    guard let name = optionalString(name) else { return nil }
    return serverHandle(pointer)?.settingText(name)
}

@_cdecl("ws4r_server_stats")
public func cServerStats(_ pointer: OpaquePointer?, _ out: UnsafeMutablePointer<ws4r_stats>?) -> Int32 {
    guard let server = serverHandle(pointer)?.server, let out, out.pointee.struct_size > 0 else { return WS4R_EINVAL }
    let stats = server.stats()
    var filled = ws4r_stats()
    filled.struct_size = out.pointee.struct_size
    filled.connections = stats.connections
    filled.connections_total = stats.connectionsTotal
    filled.subscriptions = stats.subscriptions
    filled.channels = stats.channels
    filled.messages_in = stats.messagesIn
    filled.messages_out = stats.messagesOut
    filled.client_messages_in = stats.clientMessagesIn
    filled.slow_client_closes = stats.slowClientCloses
    filled.redis_connected = stats.redisConnected ? 1 : 0
    filled.messages_dropped = stats.messagesDropped
    withUnsafeBytes(of: &filled) { source in
        UnsafeMutableRawPointer(out).copyMemory(from: source.baseAddress!, byteCount: min(source.count, out.pointee.struct_size))
    }
    return WS4R_OK
}

@_cdecl("ws4r_server_metrics")
public func cServerMetrics(_ pointer: OpaquePointer?, _ out: UnsafeMutablePointer<CChar>?, _ capacity: Int, _ length: UnsafeMutablePointer<Int>?) -> Int32 {
    guard let server = serverHandle(pointer)?.server else { return WS4R_EINVAL }
    return copyOut(server.metricsText(), to: out, capacity: capacity, length: length)
}

func cStaticString(_ text: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

@_cdecl("ws4r_server_health")
public func cServerHealth(_ pointer: OpaquePointer?, _ out: UnsafeMutablePointer<CChar>?, _ capacity: Int, _ length: UnsafeMutablePointer<Int>?) -> Int32 {
    guard let server = serverHandle(pointer)?.server else { return WS4R_EINVAL }
    return copyOut(server.stats().healthJSON, to: out, capacity: capacity, length: length)
}

@_cdecl("ws4r_lift_descriptor_limit")
public func cLiftDescriptorLimit() -> UInt64 {
    DescriptorTable.liftSoftLimit().map { UInt64($0) } ?? 0
}
