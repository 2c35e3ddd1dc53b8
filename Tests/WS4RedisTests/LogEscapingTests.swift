import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class LogEscapingTests: XCTestCase {
    func testControlCharactersAreWrittenAsEscapes() {
        XCTAssertEqual("a\nb\rc\td".escapingControlCharacters(), "a\\nb\\rc\\td")
        XCTAssertEqual("x\u{1B}[31my\u{7F}".escapingControlCharacters(), "x\\x1b[31my\\x7f")
        XCTAssertEqual("next\u{85}line".escapingControlCharacters(), "next\\u{85}line")
        XCTAssertEqual("back\\slash".escapingControlCharacters(), "back\\\\slash", "so that an escape in the text cannot pass for one of ours")
        XCTAssertEqual("chat:room é".escapingControlCharacters(), "chat:room é")
    }
}
