import CZlib
import NIOCore

/// zlib's raw DEFLATE (RFC 1951) as RFC 7692 uses it: each message ends with an empty stored block
/// (`00 00 ff ff`) that the sender strips and the receiver puts back.
package enum RawDeflate {
    package static let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }
}
