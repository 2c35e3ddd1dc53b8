import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class HandshakeValidatorTests: XCTestCase {
    let validator = HandshakeValidator(urlPrefix: "/ws/", echoPath: "/echo")

    func request(path: String = "/ws/chat", query: String? = "subscribe-broadcast", replacing: [String: String?] = [:]) -> HandshakeRequest {
        var headers: [String: String?] = [
            "Host": "example.com", "Upgrade": "websocket", "Connection": "keep-alive, Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
        ]
        headers.merge(replacing) { $1 }
        return HandshakeRequest(
            method: "GET", path: path, query: query, httpVersion: "HTTP/1.1",
            headers: headers.compactMap { name, value in value.map { (name, $0) } }
        )
    }

    func refusal(_ decision: HandshakeDecision, file: StaticString = #filePath, line: UInt = #line) -> HandshakeRefusal? {
        guard case .refused(let refusal) = decision else {
            XCTFail("expected a refusal", file: file, line: line)
            return nil
        }
        return refusal
    }

    func testRFCExampleIsAcceptedWithItsAcceptValue() throws {
        guard case .accepted(let accepted) = validator.decide(request()) else { return XCTFail("refused") }
        XCTAssertEqual(accepted.endpoint, .facility("chat"))
        XCTAssertEqual(accepted.flags, .subscribeBroadcast)
        XCTAssertTrue(accepted.responseHeaders.contains { $0 == ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") })
        XCTAssertTrue(accepted.responseHeaders.contains { $0 == ("Upgrade", "websocket") })
    }

    func testFacilityKeepsSlashesAndMayBeEmpty() {
        guard case .accepted(let nested) = validator.decide(request(path: "/ws/a/b")) else { return XCTFail("refused") }
        XCTAssertEqual(nested.endpoint, .facility("a/b"))
        guard case .accepted(let empty) = validator.decide(request(path: "/ws/")) else { return XCTFail("refused") }
        XCTAssertEqual(empty.endpoint, .facility(""))
    }

    func testEchoPath() {
        guard case .accepted(let accepted) = validator.decide(request(path: "/echo", query: nil)) else { return XCTFail("refused") }
        XCTAssertEqual(accepted.endpoint, .echo)
    }

    func testWrongVersionGets426WithSupportedVersion() {
        let refused = refusal(validator.decide(request(replacing: ["Sec-WebSocket-Version": "8"])))
        XCTAssertEqual(refused?.status, 426)
        XCTAssertTrue(refused?.headers.contains { $0 == ("Sec-WebSocket-Version", "13") } ?? false)
    }

    func testMalformedRequestsGet400() {
        for replacing: [String: String?] in [
            ["Upgrade": nil], ["Upgrade": "h2c"], ["Connection": "keep-alive"], ["Sec-WebSocket-Key": nil],
            ["Sec-WebSocket-Key": "short"], ["Host": nil],
        ] {
            XCTAssertEqual(refusal(validator.decide(request(replacing: replacing)))?.status, 400, "\(replacing)")
        }
        var post = request()
        post.method = "POST"
        XCTAssertEqual(refusal(validator.decide(post))?.status, 400)
        var http10 = request()
        http10.httpVersion = "HTTP/1.0"
        XCTAssertEqual(refusal(validator.decide(http10))?.status, 400)
    }

    func testRepeatedKeyAndOversizedHeadersAreRefused() {
        var twice = request()
        twice.headers.append(("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAA=="))
        XCTAssertEqual(refusal(validator.decide(twice))?.status, 400)
        XCTAssertEqual(refusal(validator.decide(request(replacing: ["Cookie": String(repeating: "c", count: 20_000)])))?.status, 431)
    }

    func testPathOutsideThePrefixGets404() {
        XCTAssertEqual(refusal(validator.decide(request(path: "/other")))?.status, 404)
    }

    func testIdentityFlagsWithoutIdentityAreDroppedAsByTheOriginal() {
        guard case .accepted(let accepted) = validator.decide(request(query: "subscribe-broadcast&subscribe-user&publish-session")) else {
            return XCTFail("refused")
        }
        XCTAssertEqual(accepted.flags, .subscribeBroadcast)
        XCTAssertEqual(accepted.droppedFlags, [.subscribeUser, .publishSession])
        let withUser = validator.decide(request(query: "subscribe-user&subscribe-group"), identity: Identity(user: "alice"))
        guard case .accepted(let partly) = withUser else { return XCTFail("refused") }
        XCTAssertEqual(partly.flags, .subscribeUser)
        XCTAssertEqual(partly.droppedFlags, .subscribeGroup)
    }

    func testIdentityFlagsWithoutIdentityGet403NamingThemWhenRefusing() {
        let refusing = HandshakeValidator(urlPrefix: "/ws/", echoPath: nil, missingIdentity: .refuse)
        let refused = refusal(refusing.decide(request(query: "subscribe-user&publish-session")))
        XCTAssertEqual(refused?.status, 403)
        XCTAssertTrue(refused?.body.contains("subscribe-user") ?? false)
        XCTAssertTrue(refused?.body.contains("publish-session") ?? false)
    }

    func testFacilityNamesAreBoundedPrintableUTF8() {
        let limited = HandshakeValidator(urlPrefix: "/ws/", echoPath: nil, maxFacilityLength: 12)
        guard case .accepted(let accepted) = limited.decide(request(path: "/ws/chat:room1")) else { return XCTFail("':' is allowed") }
        XCTAssertEqual(accepted.endpoint, .facility("chat:room1"))
        let tooLong = refusal(limited.decide(request(path: "/ws/chat:room1234")))
        XCTAssertEqual(tooLong?.status, 400)
        XCTAssertTrue(tooLong?.body.contains("at most 12") ?? false)
        XCTAssertEqual(refusal(validator.decide(request(path: "/ws/a\nb")))?.status, 400)
        XCTAssertEqual(refusal(validator.decide(request(path: "/ws/a\u{85}b")))?.status, 400, "C1 controls too")
        var invalid = request(path: "/ws/a\u{FFFD}")
        invalid.pathIsUTF8 = false
        XCTAssertEqual(refusal(validator.decide(invalid))?.body, "the facility is not valid UTF-8\n")
        guard case .accepted = validator.decide(request(path: "/ws/" + String(repeating: "é", count: 127))) else { return XCTFail("254 bytes fit 255") }
        XCTAssertEqual(refusal(validator.decide(request(path: "/ws/" + String(repeating: "é", count: 128))))?.status, 400, "bytes, not characters")
    }

    func testAtCapacityGets503() {
        XCTAssertEqual(refusal(validator.decide(request(), atCapacity: true))?.status, 503)
    }

    func testFirstOfferedSubprotocolIsEchoed() {
        guard case .accepted(let accepted) = validator.decide(request(replacing: ["Sec-WebSocket-Protocol": "chat, superchat"])) else {
            return XCTFail("refused")
        }
        XCTAssertTrue(accepted.responseHeaders.contains { $0 == ("Sec-WebSocket-Protocol", "chat") })
    }

    func testFlagsParseLikeTheOriginal() {
        XCTAssertEqual(ChannelFlags(query: " Subscribe-Broadcast =x&PUBLISH-user&echo&bogus&&"), [.subscribeBroadcast, .publishUser, .echo])
        XCTAssertEqual(ChannelFlags(query: nil), [])
        XCTAssertEqual(ChannelFlags(query: "subscribe%2Dbroadcast"), [.subscribeBroadcast])
        XCTAssertEqual(ChannelFlags(query: "é=1&+subscribe-user+&publish-broadcast=ü"), [.subscribeUser, .publishBroadcast])
    }

    func testWhitespaceIsTrimmedOnBothEndsOnly() {
        XCTAssertEqual(" \theader value\r\n".trimmingWhitespace(), "header value")
        XCTAssertEqual("  héllo wörld ".trimmingWhitespace(), "héllo wörld")
        XCTAssertEqual("unchanged".trimmingWhitespace(), "unchanged")
        XCTAssertEqual(" \r\n\t ".trimmingWhitespace(), "")
        XCTAssertEqual("".trimmingWhitespace(), "")
    }

    func testSHA1AndBase64() {
        XCTAssertEqual(Base64.encode(SHA1.hash(Array("abc".utf8))), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=")
        XCTAssertEqual(Base64.encode(SHA1.hash([UInt8]())), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=")
        XCTAssertEqual(Base64.encode(Array("fo".utf8)), "Zm8=")
        XCTAssertEqual(Base64.decodedLength("Zm8="), 2)
        XCTAssertNil(Base64.decodedLength("Zm8"))
    }

    func testOriginOutsideTheAllowedListGets403() {
        let strict = HandshakeValidator(urlPrefix: "/ws/", echoPath: nil, allowedOrigins: ["https://app.example"])
        XCTAssertEqual(refusal(strict.decide(request(replacing: ["Origin": "https://evil.example"])))?.status, 403)
        XCTAssertEqual(refusal(strict.decide(request()))?.status, 403, "no Origin at all")
        guard case .accepted = strict.decide(request(replacing: ["Origin": "https://app.example"])) else { return XCTFail("refused") }
    }

    func testFlagsAreNarrowedSilentlyByPolicyAndAuthorization() {
        let narrow = HandshakeValidator(urlPrefix: "/ws/", echoPath: nil, allowedFlags: [.subscribeBroadcast, .subscribeUser])
        guard case .success(let upgrade) = narrow.validate(request(query: "subscribe-broadcast&publish-broadcast&subscribe-user")) else {
            return XCTFail("refused")
        }
        XCTAssertEqual(upgrade.flags, [.subscribeBroadcast, .subscribeUser])
        let authorization = Authorization(identity: Identity(user: "u"), allowedFlags: .subscribeUser)
        guard case .accepted(let accepted) = narrow.finish(upgrade, authorization: authorization, atCapacity: false) else { return XCTFail("refused") }
        XCTAssertEqual(accepted.flags, .subscribeUser)
    }
}
