import ArgumentParser
import WS4Redis

#if canImport(Glibc)
    import Glibc
#endif

/// `ws4redis token`: mints a signed identity token, as apps do with clients/python's mint_token.
struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Mint a signed identity token for the server's token_secret.")

    // Read from the environment in run(), not as the option's default: --help prints defaults.
    @Option(help: "The shared secret, at least 32 bytes (or WS4REDIS_TOKEN_SECRET).")
    var secret: String?

    @Option(help: "The user name.")
    var user: String?

    @Option(name: .customLong("group"), help: "A group (repeatable).")
    var groups: [String] = []

    @Option(help: "The session key.")
    var session: String?

    @Option(name: .customLong("expires-in"), help: "Seconds the token stays valid.")
    var expiresIn = 3600

    func run() throws {
        guard let secret = secret ?? SettingsLoader.processEnvironment["WS4REDIS_TOKEN_SECRET"], !secret.isEmpty else {
            throw ValidationError("give --secret or set WS4REDIS_TOKEN_SECRET")
        }
        let identity = Identity(user: user, groups: groups, sessionKey: session)
        print(try SignedToken.mint(identity, expiresAt: Int64(time(nil)) + Int64(expiresIn), secret: Array(secret.utf8)))
    }
}

/// `ws4redis settings`: every setting, as help text or as the Markdown of docs/configuration.md.
struct Settings: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List every setting with its flag, environment variable and default.")

    @Flag(help: "Print the Markdown table of docs/configuration.md.")
    var markdown = false

    func run() {
        print(markdown ? Setting.markdownTable : Setting.helpText, terminator: "")
    }
}
