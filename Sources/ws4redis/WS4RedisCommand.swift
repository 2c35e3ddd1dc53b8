import ArgumentParser
import WS4Redis

@main
struct WS4RedisCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ws4redis",
        abstract: "Server push from Redis to websockets.",
        subcommands: [Serve.self, Publish.self, Fetch.self, Token.self, Stats.self, Settings.self]
    )
}
