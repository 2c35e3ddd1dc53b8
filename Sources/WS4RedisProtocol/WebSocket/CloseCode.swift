/// A close frame's status code (RFC 6455 §7.4, IANA's registry), named where the server uses it.
package struct CloseCode: Hashable, Sendable {
    package let code: UInt16

    package init(_ code: UInt16) {
        self.code = code
    }

    package static let normalClosure = CloseCode(1000)
    package static let goingAway = CloseCode(1001)
    package static let protocolError = CloseCode(1002)
    /// Never sent: what a log says of a close frame without a code.
    package static let noStatusReceived = CloseCode(1005)
    /// Never sent: what a log says of a connection that ended without a close frame.
    package static let abnormalClosure = CloseCode(1006)
    /// A text message (or a close reason) that is not valid UTF-8.
    package static let dataInconsistentWithMessage = CloseCode(1007)
    package static let policyViolation = CloseCode(1008)
    package static let messageTooLarge = CloseCode(1009)
    package static let unexpectedServerError = CloseCode(1011)
    package static let tryAgainLater = CloseCode(1013)
}
