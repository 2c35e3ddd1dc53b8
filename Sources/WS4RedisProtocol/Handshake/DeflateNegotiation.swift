/// Picks the first acceptable permessage-deflate offer. The server always answers with
/// `server_no_context_takeover`: each message is compressed on its own, so one compressed frame
/// serves every subscriber. Client messages are inflated with a full window, whatever the client uses.
package enum DeflateNegotiation {
    package static func negotiate(offers headerValues: [String]) -> DeflateParameters? {
        for offer in headerValues.flatMap({ $0.split(separator: ",") }) {
            let parts = offer.split(separator: ";").map { String($0).trimmingWhitespace() }
            guard parts.first?.lowercased() == "permessage-deflate", let accepted = accept(Array(parts.dropFirst())) else { continue }
            return accepted
        }
        return nil
    }

    /// The response to one offer, or nil when its parameters are invalid (then the next offer is tried).
    private static func accept(_ parameters: [String]) -> DeflateParameters? {
        var seen: Set<String> = []
        var response = ["permessage-deflate", "server_no_context_takeover"]
        var fullWindow = true
        for parameter in parameters {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { String($0).trimmingWhitespace() }
            guard let name = pair.first?.lowercased() else { return nil }
            let value = pair.count > 1 ? pair[1].trimmingCharacters(of: "\"") : nil
            guard seen.insert(name).inserted else { return nil }
            switch (name, value) {
            case ("server_no_context_takeover", nil):
                break
            case ("client_no_context_takeover", nil):
                response.append("client_no_context_takeover")
            case ("server_max_window_bits", let bits?):
                guard let window = windowBits(bits) else { return nil }
                fullWindow = window == 15
                response.append("server_max_window_bits=\(window)")
            case ("client_max_window_bits", nil):
                break
            case ("client_max_window_bits", let bits?):
                guard windowBits(bits) != nil else { return nil }
            default:
                return nil
            }
        }
        return DeflateParameters(responseValue: response.joined(separator: "; "), acceptsSharedFrames: fullWindow)
    }

    private static func windowBits(_ text: String) -> Int? {
        guard let bits = Int(text), (8...15).contains(bits), text.allSatisfy(\.isNumber) else { return nil }
        return bits
    }
}
