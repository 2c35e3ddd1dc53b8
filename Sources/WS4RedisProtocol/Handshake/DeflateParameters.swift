/// The outcome of negotiating permessage-deflate (RFC 7692) for one connection.
public struct DeflateParameters: Sendable, Equatable {
    /// The `Sec-WebSocket-Extensions` value of the response.
    public let responseValue: String
    /// Whether the client allows the server its full 15-bit window: only then may it get the shared
    /// compressed frames; otherwise its messages go uncompressed, which RFC 7692 always permits.
    public let acceptsSharedFrames: Bool
}
