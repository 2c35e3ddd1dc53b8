import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class SettingsTests: XCTestCase {
    func testCommandLineOverridesEnvironmentAndBothApply() throws {
        let settings = try SettingsLoader.settings(
            arguments: ["--prefix", "cli", "--heartbeat=--hb--", "--redis", "redis://h:7000/1"],
            environment: ["WS4REDIS_PREFIX": "env", "WS4REDIS_EXPIRE": "60", "UNRELATED": "x"]
        )
        let configuration = try ServerConfiguration(settings: settings)
        XCTAssertEqual(configuration.keyPrefix, "cli")
        XCTAssertEqual(configuration.expireSeconds, 60)
        XCTAssertEqual(configuration.heartbeat, "--hb--")
        XCTAssertEqual(configuration.redis, RedisEndpoint(address: .tcp(host: "h", port: 7000), database: 1))
    }

    func testUnknownAndMalformedOptionsAreNamed() {
        XCTAssertThrowsError(try SettingsLoader.settings(arguments: ["--no-such-setting", "x"], environment: [:])) {
            XCTAssertTrue("\($0)".contains("no-such-setting"))
        }
        XCTAssertThrowsError(try SettingsLoader.settings(arguments: ["--prefix"], environment: [:]))
        XCTAssertThrowsError(try ServerConfiguration(settings: [("threads", "many")])) { XCTAssertTrue("\($0)".contains("threads")) }
        XCTAssertThrowsError(try ServerConfiguration(settings: [("allowed_flags", "subscribe-everything")]))
        XCTAssertThrowsError(try ServerConfiguration(settings: [("heartbeat", "--hb--"), ("heartbeat_interval", "0")]).validated())
    }

    func testConfigFile() throws {
        let path = "/tmp/ws4redis-settings-test-\(getpid()).conf"
        let file = fopen(path, "w")
        fputs("# comment\nprefix = 'filed'\nallowed_flags = subscribe-broadcast, echo\n\n", file)
        fclose(file)
        defer { unlink(path) }
        let configuration = try ServerConfiguration(settings: SettingsLoader.settings(arguments: ["--config", path, "--expire", "5"], environment: [:]))
        XCTAssertEqual(configuration.keyPrefix, "filed")
        XCTAssertEqual(configuration.allowedFlags, [.subscribeBroadcast, .echo])
        XCTAssertEqual(configuration.expireSeconds, 5)
    }

    func testDefaultsInTheTableMatchTheConfiguration() throws {
        let fromTable = try ServerConfiguration(settings: Setting.all.filter { !$0.defaultValue.isEmpty }.map { ($0.name, $0.defaultValue) })
        let defaults = ServerConfiguration()
        XCTAssertEqual(fromTable.maxMessageSize, defaults.maxMessageSize)
        XCTAssertEqual(fromTable.pingIntervalMilliseconds, defaults.pingIntervalMilliseconds)
        XCTAssertEqual(fromTable.expireSeconds, defaults.expireSeconds)
        XCTAssertEqual(fromTable.heartbeatIntervalMilliseconds, defaults.heartbeatIntervalMilliseconds)
        XCTAssertEqual(fromTable.maxOutboundBytes, defaults.maxOutboundBytes)
        XCTAssertEqual(fromTable.allowedFlags, defaults.allowedFlags)
        XCTAssertEqual(fromTable.identity.authTimeoutMilliseconds, defaults.identity.authTimeoutMilliseconds)
        XCTAssertEqual(fromTable.identity.tokenParameter, defaults.identity.tokenParameter)
        XCTAssertEqual(fromTable.urlPrefix, defaults.urlPrefix)
        XCTAssertEqual(fromTable.redis, defaults.redis)
    }

    func testDocsTableIsGeneratedFromTheSettings() throws {
        let docs = try String(contentsOfFile: "docs/configuration.md")
        XCTAssertTrue(docs.contains(Setting.markdownTable), "docs/configuration.md is stale: regenerate with `ws4redis settings --markdown`")
    }
}

#if canImport(Glibc)
import Glibc
#endif
