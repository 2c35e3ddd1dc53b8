/// The one error type the core throws; the C ABI maps its kind to a `WS4R_E*` code in one place.
public struct WS4RedisError: Error, CustomStringConvertible, Sendable {
    /// Kinds mirror the C status codes; they are never renumbered there.
    public enum Kind: Sendable {
        case invalidArgument
        case configuration
        case state
        case bind
        case redis
        case io
        case limit
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    package static func configuration(_ message: String) -> WS4RedisError { .init(.configuration, message) }
    package static func redis(_ message: String) -> WS4RedisError { .init(.redis, message) }
}
