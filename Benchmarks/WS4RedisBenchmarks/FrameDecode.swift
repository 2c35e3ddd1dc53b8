import Benchmark
import NIOCore
import WS4RedisProtocol

// MARK: 2. frame decode

/// Client frames parsed out of one buffer that holds 1,000 of them (a scaled iteration is one
/// frame): the parser alone, then the parser feeding the assembler, which reassembles and
/// validates the text as the connection handler does.
func frameDecodeBenchmarks() {
    let framesPerBuffer = BenchmarkScalingFactor.kilo.rawValue
    for size in [64, 4096] {
        let wire = clientTextFrames(count: framesPerBuffer, payloadSize: size)

        Benchmark("FrameParser masked text \(sizeName(size))", configuration: perOperation()) { benchmark in
            var parser = FrameParser(maxFrameSize: 1 << 20)
            var buffer = wire
            var parts = 0
            do {
                while let part = try parser.nextPart(from: &buffer) {
                    parts += 1
                    blackHole(part)
                }
            } catch {
                failRun(benchmark, "the parser refused a frame: \(error)")
            }
            guard parts == 3 * framesPerBuffer else { failRun(benchmark, "\(parts) parts for \(framesPerBuffer) frames") }
        }

        Benchmark("FrameParser+MessageAssembler masked text \(sizeName(size))", configuration: perOperation()) { benchmark in
            var parser = FrameParser(maxFrameSize: 1 << 20)
            var assembler = MessageAssembler(maxMessageSize: 1 << 20)
            var buffer = wire
            var messages = 0
            do {
                while let part = try parser.nextPart(from: &buffer) {
                    switch assembler.receive(part) {
                    case .message(_, let payload):
                        messages += 1
                        blackHole(payload)
                    case .none: break
                    case let event: failRun(benchmark, "unexpected \(event)")
                    }
                }
            } catch {
                failRun(benchmark, "the parser refused a frame: \(error)")
            }
            guard messages == framesPerBuffer else { failRun(benchmark, "\(messages) messages for \(framesPerBuffer) frames") }
        }
    }
}
