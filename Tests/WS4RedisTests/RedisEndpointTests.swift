import Logging
import NIOPosix
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

/// Endpoints as logs, errors and answers show them: every password as `***`.
final class RedisEndpointTests: XCTestCase {
    func testDescriptionsHidePasswords() throws {
        let shown = [
            "redis://:s3cret@host:6380/2": "redis://:***@host:6380/2",
            "redis://me:s3cret@[::1]:7000/1": "redis://me:***@[::1]:7000/1",
            "redis://s3cret@host": "redis://:***@host:6379/0",
            "rediss://:s3cret@redis.example/0?ssl_ca_certs=/etc/ca.pem": "rediss://:***@redis.example:6379/0",
            "redis://host/3": "redis://host:6379/3",
            "unix:///run/redis.sock?db=3&password=s3cret": "unix:///run/redis.sock?db=3&password=***",
            "unix:///run/redis.sock?username=me&password=s3cret": "unix:///run/redis.sock?db=0&username=me&password=***",
            "redis+sentinel://:s3cret@s1,s2:26380/mymaster/2?sentinel_password=s3cret2": "redis+sentinel://:***@s1:26379,s2:26380/mymaster/2?sentinel_password=***",
            "redis+cluster://me:s3cret@n1:7000,n2": "redis+cluster://me:***@n1:7000,n2:6379",
        ]
        for (url, expected) in shown {
            let description = try RedisEndpoint(url: url).description
            XCTAssertEqual(description, expected, url)
            XCTAssertFalse(description.contains("s3cret"), url)
        }
    }

    func testURLsAreRedactedAsTheParserReadsThem() {
        let shown = [
            "redis://:p@ss:w@rd@host/0": "redis://:***@host/0",
            "redis://user:pw@host": "redis://user:***@host",
            "redis://pw@host": "redis://***@host",
            "http://user:pw@host": "http://user:***@host",
            "user:pw@host": "user:***@host",
            "unix:///s?db=1&password=pw&username=u": "unix:///s?db=1&password=***&username=u",
            "unix:///s?password=p@ss": "unix:///s?password=***",
            "redis+sentinel://:pw@h/m?sentinel_password=sp&x=1": "redis+sentinel://:***@h/m?sentinel_password=***&x=1",
            "redis://host:6379/0": "redis://host:6379/0",
        ]
        for (url, expected) in shown { XCTAssertEqual(RedisEndpoint.redacting(url: url), expected, url) }
    }

    func testErrorsAboutAURLDoNotRepeatItsPassword() {
        for url in ["http://:s3cret@host", "redis+sentinel://:s3cret@s1", "redis+cluster://:s3cret@n1/2", "unix://relative?password=s3cret", "rediss://:s3cret@h?ssl_cert_reqs=maybe"] {
            XCTAssertThrowsError(try RedisEndpoint(url: url), url) { error in
                XCTAssertFalse("\(error)".contains("s3cret"), "\(url): \(error)")
            }
        }
    }

    func testAClientThatCannotConnectReportsTheRedactedEndpoint() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        // Port 1 on loopback: refused at once.
        let client = try RedisCommandClient(endpoint: RedisEndpoint(url: "redis://:s3cret@127.0.0.1:1/0"), eventLoop: group.next(), logger: Logger(label: "test"), options: .defaults)
        client.start()
        defer { try? client.stop().wait() }
        XCTAssertThrowsError(try client.readiness().wait()) { error in
            XCTAssertTrue("\(error)".hasPrefix("Redis at redis://:***@127.0.0.1:1/0 unavailable"), "\(error)")
        }
    }
}
