import CWS4Redis
import WS4Redis

#if canImport(Glibc)
    import Glibc
#endif

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
    /// Reads a caller's `ws4r_config`, only as far as its struct_size reaches. The fields apply as the
    /// settings of the same meaning, so that ws4r_server_setting() reports them too.
    init(_ pointer: UnsafePointer<ws4r_config>) throws {
        let config = versioned(pointer, structSize: pointer.pointee.struct_size, defaults: defaultCConfig)
        let strings: [(name: String, value: String?)] = [
            ("redis_url", optionalString(config.redis_url)), ("prefix", optionalString(config.key_prefix)),
            ("url_prefix", optionalString(config.url_prefix)), ("listen", optionalString(config.listen_address)),
            ("echo_path", optionalString(config.echo_path)),
        ]
        let numbers: [(name: String, value: UInt32)] = [
            ("threads", config.io_threads), ("max_message_size", config.max_message_size), ("max_frame_size", config.max_frame_size),
            ("max_connections", config.max_connections), ("max_outbound_bytes", config.max_outbound_bytes), ("ping_interval", config.ping_interval_ms),
        ]
        var settings = strings.compactMap { name, value in value.map { (name, $0) } } + numbers.map { ($0.name, String($0.value)) }
        for index in 0..<(config.settings == nil ? 0 : config.setting_count) {
            let setting = config.settings[index]
            guard let name = optionalString(setting.name) else { throw WS4RedisError(.invalidArgument, "a setting without a name") }
            settings.append((name, optionalString(setting.value) ?? ""))
        }
        try self.init(settings: settings)
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
