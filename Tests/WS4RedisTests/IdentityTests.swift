import NIOCore
import NIOHTTP1
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class IdentityTests: XCTestCase {
    let secret = Array("unit-test-secret-of-thirty-two-b".utf8)
    let alice = Identity(user: "alice", groups: ["staff", "admins"], sessionKey: "sess1")

    func testSHA256AndHMACVectors() {
        XCTAssertEqual(hex(SHA256.hash(Array("abc".utf8))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(hex(SHA256.hash([])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // RFC 4231 test case 2
        XCTAssertEqual(
            hex(SHA256.hmac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        )
    }

    func testTokenRoundTripAndKnownVectorPayload() throws {
        let token = try SignedToken.mint(alice, expiresAt: 4_102_444_800, secret: secret)
        XCTAssertTrue(token.hasPrefix("djEKYWxpY2UKc3RhZmYsYWRtaW5zCnNlc3MxCjQxMDI0NDQ4MDA."))
        XCTAssertEqual(try SignedToken.verify(token, secret: secret, now: 1_000), alice)
    }

    func testTamperedExpiredAndMalformedTokensAreRefusedWithReasons() throws {
        let token = try SignedToken.mint(alice, expiresAt: 2_000, secret: secret)
        var tampered = Array(token.utf8)
        tampered[3] = tampered[3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        XCTAssertThrowsError(try SignedToken.verify(String(decoding: tampered, as: UTF8.self), secret: secret, now: 1_000)) {
            XCTAssertTrue("\($0)".contains("signature") || "\($0)".contains("malformed"))
        }
        XCTAssertThrowsError(try SignedToken.verify(token, secret: Array("another-secret-of-thirty-two-byte".utf8), now: 1_000)) { XCTAssertTrue("\($0)".contains("signature")) }
        XCTAssertThrowsError(try SignedToken.verify(token, secret: secret, now: 3_000)) { XCTAssertTrue("\($0)".contains("expired")) }
        XCTAssertThrowsError(try SignedToken.verify("no-dot", secret: secret, now: 1_000)) { XCTAssertTrue("\($0)".contains("malformed")) }
    }

    func testNamesThatWouldBreakThePayloadAreRejected() {
        XCTAssertThrowsError(try SignedToken.mint(Identity(user: "a\nb"), expiresAt: 1, secret: secret))
        XCTAssertThrowsError(try SignedToken.mint(Identity(groups: ["a,b"]), expiresAt: 1, secret: secret))
    }

    func testNamesThatWouldMakeChannelNamesAmbiguousAreRefusedAtEverySource() throws {
        for identity in [Identity(user: "alice:chat"), Identity(groups: ["staff", "a:b"]), Identity(sessionKey: "s:1"), Identity(user: ""), Identity(groups: [""])] {
            XCTAssertNotNil(identity.unusableNames, "\(identity)")
            XCTAssertThrowsError(try SignedToken.mint(identity, expiresAt: 4_102_444_800, secret: secret), "minting \(identity)")
        }
        XCTAssertNil(alice.unusableNames)
        // A token minted elsewhere (an older minter) with such a name is refused when verified.
        let payload = Array("v1\nalice:chat\n\n\n4102444800".utf8)
        let forged = Base64.encodeURLSafe(payload) + "." + Base64.encodeURLSafe(SHA256.hmac(key: secret, message: payload))
        XCTAssertThrowsError(try SignedToken.verify(forged, secret: secret, now: 1_000)) { XCTAssertTrue("\($0)".contains("':'"), "\($0)") }
        var answer = HTTPResponseHead(version: .http1_1, status: .ok)
        answer.headers.add(name: "X-WS4Redis-User", value: "alice:chat")
        guard case .failure(let refusal) = AuthRequestClient.decision(answer) else { return XCTFail("granted alice:chat") }
        XCTAssertEqual(refusal.status, 502)
    }

    func testTokensAreDecodedOnlyInTheirCanonicalSpelling() throws {
        let token = try SignedToken.mint(alice, expiresAt: 4_102_444_800, secret: secret)
        let (payload, signature) = (token.split(separator: ".")[0], token.split(separator: ".")[1])
        for variant in ["\(payload)=.\(signature)", "\(payload).\(signature)=", "\(payload).=\(signature)", "\(payload)+.\(signature)"] {
            XCTAssertThrowsError(try SignedToken.verify(variant, secret: secret, now: 1_000), variant)
        }
        XCTAssertEqual(Base64.decodeURLSafe("YQ"), [0x61])
        XCTAssertNil(Base64.decodeURLSafe("YR"), "non-zero trailing bits: a second spelling of 'a'")
        XCTAssertNil(Base64.decodeURLSafe("YQ=="), "padding")
        XCTAssertNil(Base64.decodeURLSafe("a/b+"), "the standard alphabet")
        XCTAssertNil(Base64.decodeURLSafe("abcde"), "a length of 1 mod 4")
        XCTAssertEqual(Base64.decodeURLSafe("-_-_"), [0xFB, 0xFF, 0xBF])
    }

    func testShortSecretsAndLongLivedTokensAreRefused() throws {
        XCTAssertThrowsError(try SignedToken.mint(alice, expiresAt: 4_102_444_800, secret: Array("too short".utf8))) {
            XCTAssertTrue("\($0)".contains("at least 32"), "\($0)")
        }
        XCTAssertThrowsError(try ServerConfiguration(settings: [("token_secret", "short")]).validated()) { XCTAssertTrue("\($0)".contains("at least 32")) }
        let token = try SignedToken.mint(alice, expiresAt: 1_000 + 7200, secret: secret)
        XCTAssertEqual(try SignedToken.verify(token, secret: secret, now: 1_000, maxLifetime: 7200), alice)
        XCTAssertThrowsError(try SignedToken.verify(token, secret: secret, now: 1_000, maxLifetime: 3600)) { XCTAssertTrue("\($0)".contains("longer than")) }
    }

    func testTheAuthCacheKeepsItsMostRecentlyUsedGrantsUpToItsSize() {
        let cache = AuthCache(lifetime: .seconds(60), capacity: 3)
        let start = NIODeadline.now()
        for name in ["a", "b", "c"] { cache.store(Authorization(identity: Identity(user: name)), for: name, now: start) }
        XCTAssertEqual(cache.grant(for: "a", now: start)?.identity.user, "a", "a is now the most recently used")
        cache.store(Authorization(identity: Identity(user: "d")), for: "d", now: start)
        XCTAssertNil(cache.grant(for: "b", now: start), "b, the least recently used, made room")
        XCTAssertEqual(["a", "c", "d"].compactMap { cache.grant(for: $0, now: start)?.identity.user }, ["a", "c", "d"])
        XCTAssertEqual(cache.count, 3)
        XCTAssertNil(cache.grant(for: "a", now: start + .seconds(61)), "expired")
        XCTAssertEqual(cache.count, 2)
        for index in 0..<1000 { cache.store(Authorization(identity: .anonymous), for: "k\(index)", now: start) }
        XCTAssertEqual(cache.count, 3, "never more than its size")
        XCTAssertEqual(["k997", "k998", "k999"].compactMap { cache.grant(for: $0, now: start) }.count, 3)
    }

    func testCookiesAreParsed() {
        let request = HandshakeRequest(method: "GET", path: "/", query: nil, httpVersion: "HTTP/1.1", headers: [("Cookie", "a=1; sessionid=\"xyz\"; flag")])
        let cookies = AuthorizationRequest.cookies(in: request)
        XCTAssertEqual(cookies.map(\.name), ["a", "sessionid", "flag"])
        XCTAssertEqual(cookies.map(\.value), ["1", "xyz", ""])
    }

    func testAuthRequestAnswersMapToDecisions() {
        var granted = HTTPResponseHead(version: .http1_1, status: .ok)
        granted.headers.add(name: "X-WS4Redis-User", value: "bob")
        granted.headers.add(name: "X-WS4Redis-Groups", value: "a, b")
        granted.headers.add(name: "X-WS4Redis-Allow", value: "subscribe-user")
        guard case .success(let authorization) = AuthRequestClient.decision(granted) else { return XCTFail("not granted") }
        XCTAssertEqual(authorization.identity, Identity(user: "bob", groups: ["a", "b"]))
        XCTAssertEqual(authorization.allowedFlags, .subscribeUser)
        for (status, expected) in [(401, 401), (403, 403), (500, 502)] {
            guard case .failure(let refusal) = AuthRequestClient.decision(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status))) else {
                return XCTFail("\(status) granted")
            }
            XCTAssertEqual(refusal.status, expected)
        }
    }

    private func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}

import NIOHTTP1
