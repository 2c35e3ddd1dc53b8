import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class ChannelNamesTests: XCTestCase {
    func testNamesWithoutAndWithPrefix() {
        let plain = ChannelNames(keyPrefix: "")
        XCTAssertEqual(plain.broadcast(facility: "chat"), "broadcast:chat")
        XCTAssertEqual(plain.user("john", facility: "chat"), "user:john:chat")
        XCTAssertEqual(plain.group("admins", facility: "chat"), "group:admins:chat")
        XCTAssertEqual(plain.session("abc", facility: "chat"), "session:abc:chat")
        XCTAssertEqual(ChannelNames(keyPrefix: "app").broadcast(facility: "chat"), "app:broadcast:chat")
    }

    func testAudienceOrderIsBroadcastGroupsUsersSessions() {
        let audience = Audience(facility: "f", broadcast: true, users: ["u"], groups: ["g1", "g2"], sessions: ["s"])
        XCTAssertEqual(
            ChannelNames(keyPrefix: "").channels(for: audience),
            ["broadcast:f", "group:g1:f", "group:g2:f", "user:u:f", "session:s:f"]
        )
    }

    func testSubscriptionsFollowFlagsAndIdentity() {
        let names = ChannelNames(keyPrefix: "")
        let identity = Identity(user: "u", groups: ["g"], sessionKey: "s")
        XCTAssertEqual(names.subscriptions(facility: "f", flags: [.subscribeBroadcast, .subscribeUser, .publishGroup], identity: identity), ["broadcast:f", "user:u:f"])
        XCTAssertEqual(names.publications(facility: "f", flags: [.subscribeBroadcast, .publishGroup], identity: identity), ["group:g:f"])
    }

    func testRedisURLs() throws {
        XCTAssertEqual(try RedisEndpoint(url: "redis://127.0.0.1:6380/2"), RedisEndpoint(address: .tcp(host: "127.0.0.1", port: 6380), database: 2))
        XCTAssertEqual(try RedisEndpoint(url: "redis://:s%40cret@host"), RedisEndpoint(address: .tcp(host: "host", port: 6379), database: 0, password: "s@cret"))
        XCTAssertEqual(try RedisEndpoint(url: "redis://me:pw@[::1]:7000/1"), RedisEndpoint(address: .tcp(host: "::1", port: 7000), database: 1, username: "me", password: "pw"))
        XCTAssertEqual(
            try RedisEndpoint(url: "unix:///run/redis.sock?db=3&password=pw"),
            RedisEndpoint(address: .unixSocket(path: "/run/redis.sock"), database: 3, password: "pw")
        )
        XCTAssertEqual(
            try RedisEndpoint(url: "rediss://:pw@redis.example:6380/0?ssl_ca_certs=/etc/ca.pem"),
            RedisEndpoint(address: .tcp(host: "redis.example", port: 6380), database: 0, password: "pw", tls: .init(caFile: "/etc/ca.pem"))
        )
        XCTAssertEqual(try RedisEndpoint(url: "rediss://h?ssl_cert_reqs=none").tls, .init(caFile: nil, verifyCertificate: false))
        XCTAssertThrowsError(try RedisEndpoint(url: "rediss://h?ssl_cert_reqs=maybe"))
        XCTAssertThrowsError(try RedisEndpoint(url: "http://x"))
        XCTAssertThrowsError(try RedisEndpoint(url: "redis://host:99999"))
    }

    func testSentinelURLs() throws {
        let endpoint = try RedisEndpoint(url: "redis+sentinel://:pw@s1,s2:26380,[::1]:5000/mymaster/2?sentinel_password=sp")
        XCTAssertEqual(endpoint.address, .sentinel(
            nodes: [HostAndPort(host: "s1", port: 26379), HostAndPort(host: "s2", port: 26380), HostAndPort(host: "::1", port: 5000)], masterName: "mymaster"
        ))
        XCTAssertEqual(endpoint.database, 2)
        XCTAssertEqual(endpoint.password, "pw")
        XCTAssertEqual(endpoint.sentinelPassword, "sp")
        XCTAssertEqual(try RedisEndpoint(url: "redis+sentinel://127.0.0.1/ha").description, "redis+sentinel://127.0.0.1:26379/ha/0")
        for bad in ["redis+sentinel://s1", "redis+sentinel://s1/", "redis+sentinel:///name", "redis+sentinel://s1/name/x", "redis+sentinel://s1/name/0/extra"] {
            XCTAssertThrowsError(try RedisEndpoint(url: bad), bad)
        }
        XCTAssertEqual(try RedisEndpoint(url: "redis://h/0").loginCommands, [])
        XCTAssertEqual(try RedisEndpoint(url: "redis://u:p@h/4").loginCommands, [["AUTH", "u", "p"], ["SELECT", "4"]])
    }
}
