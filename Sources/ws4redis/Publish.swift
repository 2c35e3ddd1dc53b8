import ArgumentParser
import WS4Redis

/// The Redis connection and audience shared by `publish` and `fetch`.
struct AudienceOptions: ParsableArguments {
    // No default value: --help would show the environment's URL, password and all.
    @Option(help: "Redis URL (default: WS4REDIS_REDIS_URL, else redis://127.0.0.1:6379/0).")
    var redis: String?

    @Option(help: "Prefix of Redis channels and keys (or WS4REDIS_PREFIX).")
    var prefix = SettingsLoader.processEnvironment["WS4REDIS_PREFIX"] ?? ""

    @Option(help: "The facility.")
    var facility: String

    @Flag(help: "The facility's broadcast channel.")
    var broadcast = false

    @Option(name: .customLong("user"), help: "A user (repeatable).")
    var users: [String] = []

    @Option(name: .customLong("group"), help: "A group (repeatable).")
    var groups: [String] = []

    @Option(name: .customLong("session"), help: "A session key (repeatable).")
    var sessions: [String] = []

    func validate() throws {
        guard broadcast || !(users.isEmpty && groups.isEmpty && sessions.isEmpty) else {
            throw ValidationError("name an audience: --broadcast, --user, --group or --session")
        }
    }

    var audience: Audience { Audience(facility: facility, broadcast: broadcast, users: users, groups: groups, sessions: sessions) }

    func publisher() throws -> RedisPublisher {
        let url = redis ?? SettingsLoader.processEnvironment["WS4REDIS_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"
        return try RedisPublisher(endpoint: RedisEndpoint(url: url), keyPrefix: prefix)
    }
}

/// `ws4redis publish`: what the original's RedisPublisher does, from a shell.
struct Publish: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Publish a message to an audience and print how many subscribers got it.")

    @OptionGroup var target: AudienceOptions

    @Option(help: "Seconds to keep the message for clients that connect later (WS4REDIS_EXPIRE); 0 does not store it.")
    var expire = 3600

    @Argument(help: "The message.")
    var message: String

    func run() throws {
        print(try target.publisher().publish(Array(message.utf8), to: target.audience, expireSeconds: expire))
    }
}

/// `ws4redis fetch`: the stored message of an audience (session, user, groups, broadcast first).
struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the persisted message of an audience; exit 1 when none is stored.")

    @OptionGroup var target: AudienceOptions

    func run() throws {
        guard let message = try target.publisher().fetch(target.audience) else { throw ExitCode(1) }
        print(String(decoding: message, as: UTF8.self))
    }
}
