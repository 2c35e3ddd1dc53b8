#if canImport(Glibc)
import Glibc
#endif
import CWS4Redis
import WS4Redis

@_cdecl("ws4r_config_init")
public func cConfigInit(_ config: UnsafeMutablePointer<ws4r_config>?) {
    config?.pointee = defaultCConfig
}

/// The defaults of `ServerConfiguration`, in C form; strings left NULL mean "the default".
let defaultCConfig: ws4r_config = {
    let defaults = ServerConfiguration()
    var config = ws4r_config()
    config.struct_size = MemoryLayout<ws4r_config>.size
    config.io_threads = UInt32(defaults.ioThreads)
    config.max_message_size = UInt32(defaults.maxMessageSize)
    config.max_frame_size = UInt32(defaults.maxFrameSize)
    config.max_connections = UInt32(defaults.maxConnections)
    config.max_outbound_bytes = UInt32(defaults.maxOutboundBytes)
    config.ping_interval_ms = UInt32(defaults.pingIntervalMilliseconds)
    return config
}()

extension ServerConfiguration {
    /// Reads a caller's `ws4r_config`, only as far as its struct_size reaches.
    init(_ pointer: UnsafePointer<ws4r_config>) throws {
        let config = versioned(pointer, structSize: pointer.pointee.struct_size, defaults: defaultCConfig)
        self.init()
        if let url = optionalString(config.redis_url) { redis = try RedisEndpoint(url: url) }
        keyPrefix = optionalString(config.key_prefix) ?? keyPrefix
        urlPrefix = optionalString(config.url_prefix) ?? urlPrefix
        listenAddress = try optionalString(config.listen_address).map { try HostAndPort(parsing: $0) }
        echoPath = optionalString(config.echo_path)
        ioThreads = Int(config.io_threads)
        maxMessageSize = Int(config.max_message_size)
        maxFrameSize = Int(config.max_frame_size)
        maxConnections = Int(config.max_connections)
        maxOutboundBytes = Int(config.max_outbound_bytes)
        pingIntervalMilliseconds = Int(config.ping_interval_ms)
        for index in 0..<(config.settings == nil ? 0 : config.setting_count) {
            let setting = config.settings[index]
            guard let name = optionalString(setting.name) else { throw WS4RedisError(.invalidArgument, "a setting without a name") }
            try self.apply([(name, optionalString(setting.value) ?? "")])
        }
    }

}

private let settingsHelpText = strdup(Setting.helpText)!
private let settingsMarkdown = strdup(Setting.markdownTable)!

@_cdecl("ws4r_settings_help")
public func cSettingsHelp(_ format: UnsafePointer<CChar>?) -> UnsafePointer<CChar> {
    UnsafePointer(optionalString(format) == "markdown" ? settingsMarkdown : settingsHelpText)
}

@_cdecl("ws4r_stats_init")
public func cStatsInit(_ stats: UnsafeMutablePointer<ws4r_stats>?) {
    stats?.pointee = ws4r_stats()
    stats?.pointee.struct_size = MemoryLayout<ws4r_stats>.size
}

@_cdecl("ws4r_request_init")
public func cRequestInit(_ request: UnsafeMutablePointer<ws4r_request>?) {
    request?.pointee = ws4r_request()
    request?.pointee.struct_size = MemoryLayout<ws4r_request>.size
}

@_cdecl("ws4r_audience_init")
public func cAudienceInit(_ audience: UnsafeMutablePointer<ws4r_audience>?) {
    audience?.pointee = ws4r_audience()
    audience?.pointee.struct_size = MemoryLayout<ws4r_audience>.size
}
