import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Why a request head was refused, with the status to answer.
package struct HTTPRequestError: Error, Equatable {
    package let status: Int
    package let detail: String

    package static func malformed(_ detail: String) -> HTTPRequestError { HTTPRequestError(status: 400, detail: detail) }
}
