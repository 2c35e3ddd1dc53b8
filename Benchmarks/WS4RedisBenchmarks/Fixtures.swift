import NIOCore

/// "64 B", "4 KiB".
func sizeName(_ bytes: Int) -> String {
    bytes >= 1024 && bytes % 1024 == 0 ? "\(bytes / 1024) KiB" : "\(bytes) B"
}

/// `count` bytes of printable ASCII, as a chat or JSON message mostly is.
func asciiText(_ count: Int) -> [UInt8] {
    let alphabet = Array(#"{"user":"alice","text":"Hello, world! 0123456789 abcdefghijklmnopqrstuvwxyz"}"#.utf8)
    return (0..<count).map { alphabet[$0 % alphabet.count] }
}

/// A text payload for the frame benchmarks.
func textPayload(_ count: Int) -> [UInt8] { asciiText(count) }

/// `count` bytes of valid UTF-8 mixing 1-, 2-, 3- and 4-byte sequences (Latin, Greek, CJK, emoji),
/// padded with ASCII to the exact length.
func mixedText(_ count: Int) -> [UInt8] {
    let pattern = Array("Grüße, Καλημέρα, 日本語のテキスト, 😀🎉 ok; ".utf8)
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count)
    var index = 0
    while true {
        // The length of the sequence starting at `index` in the pattern.
        let lead = pattern[index]
        let length = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
        guard bytes.count + length <= count else { break }
        bytes += pattern[index..<index + length]
        index = (index + length) % pattern.count
    }
    while bytes.count < count { bytes.append(0x2E) }
    return bytes
}

/// A masked client frame as RFC 6455 §5.2 lays it out.
func writeClientFrame(opcode: UInt8, payload: [UInt8], maskKey: [UInt8], into buffer: inout ByteBuffer) {
    buffer.writeInteger(0x80 | opcode)
    switch payload.count {
    case ..<126:
        buffer.writeInteger(0x80 | UInt8(payload.count))
    case ..<65536:
        buffer.writeInteger(UInt8(0x80 | 126))
        buffer.writeInteger(UInt16(payload.count))
    default:
        buffer.writeInteger(UInt8(0x80 | 127))
        buffer.writeInteger(UInt64(payload.count))
    }
    buffer.writeBytes(maskKey)
    buffer.writeBytes(payload.enumerated().map { $1 ^ maskKey[$0 % 4] })
}

/// `count` masked text frames of `payloadSize` bytes back to back, as one read could bring them.
func clientTextFrames(count: Int, payloadSize: Int) -> ByteBuffer {
    let payload = textPayload(payloadSize)
    var buffer = ByteBufferAllocator().buffer(capacity: count * (payloadSize + 14))
    for index in 0..<count {
        let maskKey: [UInt8] = [0x37, 0xFA, 0x21, UInt8(truncatingIfNeeded: index)]
        writeClientFrame(opcode: 0x1, payload: payload, maskKey: maskKey, into: &buffer)
    }
    return buffer
}
