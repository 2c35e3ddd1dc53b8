import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// How log lines look on standard error.
public enum LogFormat: String, Sendable {
    /// swift-log's line: time, level, label, `key=value` metadata, message; control characters escaped.
    case text
    /// One JSON object per line, for log shippers (journald, Loki, Elasticsearch).
    case json

    /// A logger writing to standard error in this format. Each server builds its own, so the C
    /// library never touches the process-wide LoggingSystem of whoever loaded it.
    func logger(label: String, level: Logger.Level) -> Logger {
        var logger =
            switch self {
            case .text: Logger(label: label) { EscapingLogHandler(StreamLogHandler.standardError(label: $0)) }
            case .json: Logger(label: label) { JSONLogHandler(label: $0) }
            }
        logger.logLevel = level
        return logger
    }
}
