import Foundation
import XCTest

@testable import WS4Redis
@testable import WS4RedisProtocol

/// The descriptor table sized up front, as /proc/self/status reports it (FDSize: slots allocated).
final class DescriptorTableTests: XCTestCase {
    func testReservingSizesTheTableForTheLimit() throws {
        let limit = try XCTUnwrap(DescriptorTable.limit())
        let expected = Int(min(limit.rlim_cur, rlim_t(DescriptorTable.largestReserved)))
        DescriptorTable.reserveUpToLimit()
        XCTAssertGreaterThanOrEqual(try tableSize(), expected, "the table holds every descriptor the limit allows")
    }

    func testReservingKeepsNoDescriptorOpen() throws {
        let before = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
        DescriptorTable.reserve(upTo: 512)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count, before)
    }

    private func tableSize() throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("FDSize:") })
        return try XCTUnwrap(Int(line.dropFirst("FDSize:".count).trimmingCharacters(in: .whitespaces)))
    }
}
