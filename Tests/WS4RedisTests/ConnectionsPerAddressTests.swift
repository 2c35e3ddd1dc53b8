import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

final class ConnectionsPerAddressTests: XCTestCase {
    func testAnAddressGetsItsLimitAndASlotComesBackWhenReleased() {
        let limit = ConnectionsPerAddress(limit: 2)
        var first: AddressSlot? = limit.reserve("10.0.0.1")
        let second = limit.reserve("10.0.0.1")
        XCTAssertNotNil(first)
        XCTAssertNotNil(second)
        XCTAssertNil(limit.reserve("10.0.0.1"), "the third is refused")
        XCTAssertNotNil(limit.reserve("10.0.0.2"), "other addresses have their own count")
        first = nil
        XCTAssertNotNil(limit.reserve("10.0.0.1"), "a released slot can be taken again")
        _ = second
    }

    func testAddressesWithoutConnectionsAreForgotten() {
        let limit = ConnectionsPerAddress(limit: 1)
        var slots = (0..<100).compactMap { limit.reserve("10.0.0.\($0)") }
        XCTAssertEqual(limit.addresses, 100)
        slots.removeAll()
        XCTAssertEqual(limit.addresses, 0)
    }
}
