/// A frame's opcode (RFC 6455 §5.2): four bits, of which RFC 6455 names six; the others are
/// reserved and refused by the assembler.
package struct Opcode: Hashable, Sendable {
    package let rawValue: UInt8

    /// nil for a value past four bits.
    package init?(encoded: UInt8) {
        guard encoded <= 0x0F else { return nil }
        rawValue = encoded
    }

    private init(_ rawValue: UInt8) {
        self.rawValue = rawValue
    }

    package static let continuation = Opcode(0x0)
    package static let text = Opcode(0x1)
    package static let binary = Opcode(0x2)
    package static let connectionClose = Opcode(0x8)
    package static let ping = Opcode(0x9)
    package static let pong = Opcode(0xA)
}
