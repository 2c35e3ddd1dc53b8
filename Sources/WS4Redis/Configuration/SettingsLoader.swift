#if canImport(Glibc)
    import Glibc
#endif

/// Collects named settings from the environment, a config file and a command line, in that order
/// (later ones win), against the one table of `Setting.all`.
public enum SettingsLoader {
    /// Names the command line may use besides the settings' own.
    static let aliases = ["redis": "redis_url"]

    public static func settings(arguments: [String], environment: [String: String]) throws -> [(name: String, value: String)] {
        var settings = Setting.all.compactMap { setting in environment[setting.environmentVariable].map { (setting.name, $0) } }
        let options = try parse(arguments)
        if let file = options.last(where: { $0.name == "config" })?.value { settings += try read(file: file) }
        settings += options.filter { $0.name != "config" }
        return settings
    }

    /// `--name value` and `--name=value` pairs; every name must be a setting (or `config`).
    static func parse(_ arguments: [String]) throws -> [(name: String, value: String)] {
        var pairs: [(name: String, value: String)] = []
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            guard argument.hasPrefix("--") else { throw WS4RedisError.configuration("unexpected argument '\(argument)'; options look like --name value") }
            let option = argument.dropFirst(2)
            let (flag, inlineValue) = option.firstIndex(of: "=").map { (String(option[..<$0]), String(option[option.index(after: $0)...])) } ?? (String(option), nil)
            let name = try settingName(forFlag: flag)
            guard let value = inlineValue ?? remaining.popFirst() else { throw WS4RedisError.configuration("option --\(flag) needs a value") }
            pairs.append((name, value))
        }
        return pairs
    }

    private static func settingName(forFlag flag: String) throws -> String {
        let name = flag.replacingUnderscores(with: "_", from: "-")
        if name == "config" { return name }
        if let alias = aliases[name] { return alias }
        guard Setting.named(name) != nil else { throw WS4RedisError.configuration("unknown option '--\(flag)' (see --help for the settings)") }
        return name
    }

    /// `name = value` lines; `#` starts a comment; values may be quoted.
    static func read(file path: String) throws -> [(name: String, value: String)] {
        var settings: [(name: String, value: String)] = []
        for (index, line) in try contents(of: path).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let text = String(line).trimmingWhitespace()
            guard !text.isEmpty, !text.hasPrefix("#") else { continue }
            guard let equals = text.firstIndex(of: "=") else { throw WS4RedisError.configuration("\(path):\(number): expected name = value") }
            let name = String(text[..<equals]).trimmingWhitespace()
            var value = String(text[text.index(after: equals)...]).trimmingWhitespace()
            if value.count >= 2, let quote = value.first, quote == "\"" || quote == "'", value.last == quote { value = String(value.dropFirst().dropLast()) }
            guard Setting.named(name) != nil else { throw WS4RedisError.configuration("\(path):\(number): unknown setting '\(name)'") }
            settings.append((name, value))
        }
        return settings
    }

    /// A whole (small) file as text. Read with fread: glibc's getline allocates where sanitizers cannot see.
    private static func contents(of path: String) throws -> String {
        guard let handle = fopen(path, "r") else { throw WS4RedisError.configuration("cannot read config file \(path)") }
        defer { fclose(handle) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while case let count = fread(&chunk, 1, chunk.count, handle), count > 0 {
            bytes += chunk[..<count]
        }
        guard ferror(handle) == 0 else { throw WS4RedisError.configuration("cannot read config file \(path)") }
        return String(decoding: bytes, as: UTF8.self)
    }

    public static var processEnvironment: [String: String] {
        var environment: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let pair = String(cString: pointer)
            if let equals = pair.firstIndex(of: "=") { environment[String(pair[..<equals])] = String(pair[pair.index(after: equals)...]) }
            entry += 1
        }
        return environment
    }
}

extension Setting {
    /// The settings for a --help screen.
    public static var helpText: String {
        let width = all.map(\.flag.count).max() ?? 0
        return "Settings (--name value, or WS4REDIS_NAME in the environment, or name = value in --config FILE):\n"
            + all.map { setting in
                let padding = String(repeating: " ", count: width - setting.flag.count + 2)
                let fallback = setting.defaultValue.isEmpty ? "" : " (default: \(setting.defaultValue))"
                return "  \(setting.flag)\(padding)\(setting.help)\(fallback)"
            }.joined(separator: "\n") + "\n"
    }

    /// The settings as the Markdown table of docs/configuration.md.
    public static var markdownTable: String {
        "| setting | CLI flag | environment | default | meaning | replaces |\n|---|---|---|---|---|---|\n"
            + all.map { setting in
                let fallback = setting.defaultValue.isEmpty ? "(none)" : "`\(setting.defaultValue)`"
                return
                    "| `\(setting.name)` | `\(setting.flag)` | `\(setting.environmentVariable)` | \(fallback) | \(setting.help) | \(setting.original.map { "`\($0)`" } ?? "") |"
            }.joined(separator: "\n") + "\n"
    }
}
