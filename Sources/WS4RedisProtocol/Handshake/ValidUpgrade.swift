/// A request that passed the protocol checks, waiting for its identity.
package struct ValidUpgrade: Sendable {
    package let request: HandshakeRequest
    package let endpoint: WebSocketEndpoint
    /// Requested and allowed by the server's policy.
    package let flags: ChannelFlags
    package let deflate: DeflateParameters?
    package let responseHeaders: [(name: String, value: String)]
}
