import ArgumentParser
import WS4Redis

/// `ws4redis publish`: what the original's RedisPublisher does, from a shell.
struct Publish: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Publish a message to a facility's audience and print the receiver count.")

    @Option(help: "Redis URL.")
    var redis = ProcessEnvironment["WS4REDIS_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"

    @Option(help: "Prefix of Redis channels and keys.")
    var prefix = ""

    @Option(help: "The facility.")
    var facility: String

    @Flag(help: "Publish on the facility's broadcast channel.")
    var broadcast = false

    @Option(name: .customLong("user"), help: "A user to publish to (repeatable).")
    var users: [String] = []

    @Option(name: .customLong("group"), help: "A group to publish to (repeatable).")
    var groups: [String] = []

    @Option(name: .customLong("session"), help: "A session key to publish to (repeatable).")
    var sessions: [String] = []

    @Option(help: "Seconds to keep the message for clients that connect later (WS4REDIS_EXPIRE); 0 does not store it.")
    var expire = 3600

    @Argument(help: "The message.")
    var message: String

    func validate() throws {
        guard broadcast || !(users.isEmpty && groups.isEmpty && sessions.isEmpty) else {
            throw ValidationError("name an audience: --broadcast, --user, --group or --session")
        }
    }

    func run() throws {
        let publisher = try RedisPublisher(endpoint: try RedisEndpoint(url: redis), keyPrefix: prefix)
        let audience = Audience(facility: facility, broadcast: broadcast, users: users, groups: groups, sessions: sessions)
        print(try publisher.publish(Array(message.utf8), to: audience, expireSeconds: expire))
    }
}
