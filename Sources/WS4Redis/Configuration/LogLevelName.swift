enum LogLevelName {
    static let names = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
    static func isValid(_ name: String) -> Bool { names.contains(name) }
}
