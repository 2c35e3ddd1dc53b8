import CWS4Redis
import WS4Redis

#if canImport(Glibc)
    import Glibc
#endif

/// What a `ws4r_auth_result *` points to during a callback: the answer being filled in.
final class AuthResultHandle {
    var identity = Identity()
    var allowedFlags = ChannelFlags.all
    var refusal: HandshakeRefusal?
}

private func authResult(_ pointer: OpaquePointer?) -> AuthResultHandle? {
    pointer.map { Unmanaged<AuthResultHandle>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

/// The host's callback and context, called from the core's worker threads.
private struct CAuthorizer: @unchecked Sendable {
    let function: ws4r_authorize_fn
    let context: UnsafeMutableRawPointer?

    func callAsFunction(_ request: AuthorizationRequest) throws -> Authorization {
        let result = AuthResultHandle()
        CStrings.with(request) { cRequest in
            var cRequest = cRequest
            function(context, &cRequest, OpaquePointer(Unmanaged.passUnretained(result).toOpaque()))
        }
        if let refusal = result.refusal { throw refusal }
        return Authorization(identity: result.identity, allowedFlags: result.allowedFlags)
    }
}

@_cdecl("ws4r_server_set_authorizer")
public func cServerSetAuthorizer(_ pointer: OpaquePointer?, _ function: ws4r_authorize_fn?, _ context: UnsafeMutableRawPointer?) -> Int32 {
    guard let handle = serverHandle(pointer), let server = handle.server else { return WS4R_EINVAL }
    let authorizer = function.map { CAuthorizer(function: $0, context: context) }
    return handle.recording { try server.setAuthorizer(authorizer.map { authorizer in { try authorizer($0) } }) }
}

@_cdecl("ws4r_auth_result_set_user")
public func cAuthResultSetUser(_ pointer: OpaquePointer?, _ user: UnsafePointer<CChar>?) -> Int32 {
    guard let result = authResult(pointer) else { return WS4R_EINVAL }
    result.identity.user = optionalString(user)
    return WS4R_OK
}

@_cdecl("ws4r_auth_result_add_group")
public func cAuthResultAddGroup(_ pointer: OpaquePointer?, _ group: UnsafePointer<CChar>?) -> Int32 {
    guard let result = authResult(pointer), let group = optionalString(group) else { return WS4R_EINVAL }
    result.identity.groups.append(group)
    return WS4R_OK
}

@_cdecl("ws4r_auth_result_set_session")
public func cAuthResultSetSession(_ pointer: OpaquePointer?, _ session: UnsafePointer<CChar>?) -> Int32 {
    guard let result = authResult(pointer) else { return WS4R_EINVAL }
    result.identity.sessionKey = optionalString(session)
    return WS4R_OK
}

@_cdecl("ws4r_auth_result_set_allowed_flags")
public func cAuthResultSetAllowedFlags(_ pointer: OpaquePointer?, _ flags: UInt32) -> Int32 {
    guard let result = authResult(pointer), flags & ~UInt32(ChannelFlags.all.rawValue) == 0 else { return WS4R_EINVAL }
    result.allowedFlags = ChannelFlags(rawValue: UInt16(flags))
    return WS4R_OK
}

@_cdecl("ws4r_auth_result_deny")
public func cAuthResultDeny(_ pointer: OpaquePointer?, _ status: Int32, _ reason: UnsafePointer<CChar>?) -> Int32 {
    guard let result = authResult(pointer) else { return WS4R_EINVAL }
    // A denial must never turn into a grant, even with a status that is not an error.
    guard (400...599).contains(status) else {
        result.refusal = HandshakeRefusal(status: 500, body: "the authorization callback denied with an invalid status \(status)\n")
        return WS4R_EINVAL
    }
    result.refusal = HandshakeRefusal(status: Int(status), body: (optionalString(reason) ?? "denied") + "\n")
    return WS4R_OK
}

/// C copies of an authorization request's strings, alive for one callback.
private enum CStrings {
    static func with(_ request: AuthorizationRequest, _ body: (ws4r_auth_request) -> Void) {
        var owned: [UnsafeMutablePointer<CChar>] = []
        defer { owned.forEach { free($0) } }
        func c(_ text: String?) -> UnsafePointer<CChar>? {
            guard let text, let copy = strdup(text) else { return nil }
            owned.append(copy)
            return UnsafePointer(copy)
        }
        let headers = request.headers.map { ws4r_header(name: c($0.name), value: c($0.value)) }
        let cookies = request.cookies.map { ws4r_header(name: c($0.name), value: c($0.value)) }
        headers.withUnsafeBufferPointer { headerBuffer in
            cookies.withUnsafeBufferPointer { cookieBuffer in
                var cRequest = ws4r_auth_request()
                cRequest.struct_size = MemoryLayout<ws4r_auth_request>.size
                cRequest.method = c(request.method)
                cRequest.path = c(request.path)
                cRequest.facility = c(request.facility)
                cRequest.query = c(request.query)
                cRequest.headers = headerBuffer.baseAddress
                cRequest.header_count = headers.count
                cRequest.cookies = cookieBuffer.baseAddress
                cRequest.cookie_count = cookies.count
                cRequest.remote_address = c(request.remoteAddress)
                cRequest.requested_flags = UInt32(request.requestedFlags.rawValue)
                body(cRequest)
            }
        }
    }
}
