// A mutation fuzzer over the parsers that face the network: the frame parser with the message
// assembler (fed in random chunks, as TCP delivers), and the handshake, flag, token and extension
// parsers. Deterministic for a seed; a violated invariant or a crash fails the run.
//
//   ws4redis-fuzz [--seconds N] [--seed S]
import NIOCore
import WS4RedisCompression
import WS4RedisProtocol

#if canImport(Glibc)
    import Glibc
#endif

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func arguments() -> (seconds: Double, seed: UInt64) {
    var seconds = 10.0
    var seed = UInt64(time(nil))
    var remaining = CommandLine.arguments.dropFirst()
    while let flag = remaining.popFirst() {
        switch flag {
        case "--seconds": seconds = Double(remaining.popFirst() ?? "") ?? seconds
        case "--seed": seed = UInt64(remaining.popFirst() ?? "") ?? seed
        default: fatalError("usage: ws4redis-fuzz [--seconds N] [--seed S]")
        }
    }
    return (seconds, seed)
}

func maskedFrame(_ first: UInt8, _ payload: [UInt8], key: [UInt8] = [1, 2, 3, 4]) -> [UInt8] {
    var frame = [first]
    switch payload.count {
    case ..<126: frame.append(0x80 | UInt8(payload.count))
    case ..<65536: frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
    default: frame += [0x80 | 127] + (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload.count >> ($0 * 8)) }
    }
    return frame + key + payload.enumerated().map { $1 ^ key[$0 % 4] }
}

let frameSeeds: [[UInt8]] = [
    maskedFrame(0x81, Array("hello".utf8)),
    maskedFrame(0x01, Array("frag".utf8)) + maskedFrame(0x89, Array("ping".utf8)) + maskedFrame(0x80, Array("ment €".utf8)),
    maskedFrame(0x82, [UInt8](repeating: 0xAB, count: 300)),
    maskedFrame(0xC1, [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]),  // "Hello", compressed
    maskedFrame(0x88, [0x03, 0xE8] + Array("bye".utf8)),
    maskedFrame(0x8A, []),
]

let handshakeSeeds: [String] = [
    "GET /ws/chat?subscribe-broadcast&publish-user&echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nCookie: ws4redis_token=djEKYQoKCjk5OTk5OTk5OTk.AAAA\r\n\r\n",
    "GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 8\r\n\r\n",
]

func mutate(_ input: [UInt8], _ corpus: [[UInt8]], _ random: inout SplitMix64) -> [UInt8] {
    var bytes = input
    for _ in 0...Int.random(in: 0...4, using: &random) {
        let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &random)
        switch Int.random(in: 0..<6, using: &random) {
        case 0 where !bytes.isEmpty: bytes[position] ^= UInt8(1 << Int.random(in: 0..<8, using: &random))
        case 1: bytes.insert(UInt8.random(in: 0...255, using: &random), at: position)
        case 2 where !bytes.isEmpty: bytes.removeSubrange(position..<min(bytes.count, position + Int.random(in: 1...16, using: &random)))
        case 3: bytes = Array(bytes.prefix(position))
        case 4: bytes += corpus.randomElement(using: &random)!
        case 5 where !bytes.isEmpty: bytes[position] = [0x00, 0x7E, 0x7F, 0x80, 0xFF, 0x0A, 0x3A, 0x26][Int.random(in: 0..<8, using: &random)]
        default: break
        }
    }
    return bytes
}

/// Checks what the assembler makes of the parts the parser finds.
struct AssemblerProbe {
    var parser = FrameParser(maxFrameSize: 65536)
    var assembler = MessageAssembler(maxMessageSize: 65536, inflater: MessageInflater.self)
    var violations: [String] = []
    /// Whether the connection would be closed by now (a refused frame or a protocol failure).
    var closed = false

    /// Feeds one read's bytes as the connection handler does; the unread start of a header stays in `pending`.
    mutating func feed(_ pending: inout ByteBuffer) {
        do {
            while let part = try parser.nextPart(from: &pending) { check(assembler.receive(part)) }
        } catch {
            closed = true
        }
    }

    private mutating func check(_ event: MessageAssembler.Event) {
        switch event {
        case .message(let opcode, let payload):
            if payload.readableBytes > 65536 { violations.append("message over the limit") }
            if opcode == .text, payload.withUnsafeReadableBytes({ String(validating: $0, as: UTF8.self) }) == nil { violations.append("invalid UTF-8 accepted") }
        case .failure(let code, _):
            closed = true
            if ![.protocolError, .dataInconsistentWithMessage, .messageTooLarge].contains(code) { violations.append("unexpected close code \(code)") }
        case .ping(let payload) where payload.readableBytes > 125:
            violations.append("oversized ping accepted")
        case .ping, .pong, .close, .none:
            break
        }
    }
}

func fuzzFrames(_ input: [UInt8], _ random: inout SplitMix64) -> [String] {
    var probe = AssemblerProbe()
    var pending = ByteBuffer()
    var rest = input[...]
    while !rest.isEmpty, !probe.closed {
        let chunk = rest.prefix(Int.random(in: 1...64, using: &random))
        rest = rest.dropFirst(chunk.count)
        pending.writeBytes(chunk)
        probe.feed(&pending)
        pending.discardReadBytes()
    }
    return probe.violations
}

let validator = HandshakeValidator(urlPrefix: "/ws/", echoPath: "/echo")

/// The standalone listener's request parser, fed whole and in random chunks: both must end the same.
func parseHead(_ input: [UInt8], chunked: Bool, _ random: inout SplitMix64) -> Result<ParsedRequestHead?, HTTPRequestError> {
    var parser = HTTPRequestParser(maxHeadSize: 4096)
    var buffer = ByteBuffer()
    var rest = input[...]
    while !rest.isEmpty {
        let size = chunked ? Int.random(in: 1...max(1, rest.count), using: &random) : rest.count
        buffer.writeBytes(rest.prefix(size))
        rest = rest.dropFirst(size)
        do {
            if let head = try parser.nextHead(from: &buffer) { return .success(head) }
        } catch {
            return .failure(error)
        }
    }
    return .success(nil)
}

func fuzzHandshake(_ input: [UInt8], _ random: inout SplitMix64) -> [String] {
    let text = String(decoding: input, as: UTF8.self)
    let whole = parseHead(input, chunked: false, &random)
    let chunked = parseHead(input, chunked: true, &random)
    var violations: [String] = []
    switch (whole, chunked) {
    case (.success(let a), .success(let b)) where a?.target != b?.target || a?.headers.count != b?.headers.count:
        violations.append("whole and chunked parses differ")
    case (.failure(let a), .failure(let b)) where a.status != b.status && ![a.status, b.status].contains(431):
        violations.append("whole and chunked parses refuse differently: \(a) / \(b)")
    case (.failure(let error), _) where ![400, 431, 505].contains(error.status):
        violations.append("unexpected parse status \(error.status)")
    default:
        break
    }
    guard case .success(let parsed?) = whole else { return violations + fuzzTexts(text, query: nil) }
    let request = parsed.handshakeRequest(remoteAddress: "127.0.0.1")
    let query = request.query
    switch validator.decide(request) {
    case .accepted(let accepted):
        if !accepted.responseHeaders.contains(where: { $0.name == "Sec-WebSocket-Accept" }) { violations.append("accepted without Sec-WebSocket-Accept") }
    case .refused(let refusal):
        if ![400, 403, 404, 426, 431].contains(refusal.status) { violations.append("unexpected status \(refusal.status)") }
    }
    return violations + fuzzTexts(text, query: query)
}

func fuzzTexts(_ text: String, query: String?) -> [String] {
    _ = ChannelFlags(query: query.map { Substring($0) })
    _ = try? SignedToken.verify(text, secret: Array("secret".utf8), now: 0)
    _ = DeflateNegotiation.negotiate(offers: [text])
    return []
}

let (seconds, seed) = arguments()
var random = SplitMix64(state: seed)
let handshakeCorpus = handshakeSeeds.map { Array($0.utf8) }
let deadline = Double(time(nil)) + seconds
var executions = (frames: 0, handshakes: 0)
print("ws4redis-fuzz: seed \(seed), \(seconds) s")
while Double(time(nil)) < deadline {
    for _ in 0..<200 {
        let frames = mutate(frameSeeds.randomElement(using: &random)!, frameSeeds, &random)
        let handshake = mutate(handshakeCorpus.randomElement(using: &random)!, handshakeCorpus, &random)
        let violations = fuzzFrames(frames, &random) + fuzzHandshake(handshake, &random)
        executions.frames += 1
        executions.handshakes += 1
        guard violations.isEmpty else {
            print("violation: \(violations)\nframes input: \(frames)\nhandshake input: \(String(decoding: handshake, as: UTF8.self).debugDescription)")
            exit(1)
        }
    }
}
print("ws4redis-fuzz: \(executions.frames) frame inputs and \(executions.handshakes) handshake inputs, no violation (seed \(seed))")
