import CWS4Redis
import NIOCore
import WS4Redis

#if canImport(Glibc)
    import Glibc
#endif

/// What a `ws4r_handshake *` points to: the decision and its response, as C strings it owns, and
/// the event loop the decision chose for the socket.
final class HandshakeHandle {
    let decision: HandshakeDecision
    let loop: any EventLoop
    let status: Int32
    let reason: UnsafeMutablePointer<CChar>
    let body: UnsafeMutablePointer<CChar>
    let headers: [(name: UnsafeMutablePointer<CChar>, value: UnsafeMutablePointer<CChar>)]

    init(_ decision: HandshakeDecision, loop: any EventLoop) {
        self.decision = decision
        self.loop = loop
        switch decision {
        case .accepted(let accepted):
            (status, reason, body) = (101, strdup("Switching Protocols"), strdup(""))
            headers = accepted.responseHeaders.map { (strdup($0.name), strdup($0.value)) }
        case .refused(let refusal):
            (status, reason, body) = (Int32(refusal.status), strdup(refusal.reason), strdup(refusal.body))
            headers = refusal.headers.map { (strdup($0.name), strdup($0.value)) }
        }
    }

    deinit {
        free(reason)
        free(body)
        for header in headers {
            free(header.name)
            free(header.value)
        }
    }
}

private func handshakeHandle(_ pointer: OpaquePointer?) -> HandshakeHandle? {
    pointer.map { Unmanaged<HandshakeHandle>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

extension HandshakeRequest {
    init(_ pointer: UnsafePointer<ws4r_request>) throws {
        var request = ws4r_request()
        request.struct_size = MemoryLayout<ws4r_request>.size
        request = versioned(pointer, structSize: pointer.pointee.struct_size, defaults: request)
        guard let method = optionalString(request.method), let path = optionalString(request.path) else {
            throw WS4RedisError(.invalidArgument, "the request needs a method and a path")
        }
        let headers = (0..<request.header_count).compactMap { index -> (name: String, value: String)? in
            guard let name = optionalString(request.headers[index].name) else { return nil }
            return (name, optionalString(request.headers[index].value) ?? "")
        }
        self.init(
            method: method, path: path, query: optionalString(request.query), httpVersion: optionalString(request.http_version) ?? "HTTP/1.1",
            headers: headers, remoteAddress: optionalString(request.remote_address)
        )
        pathIsUTF8 = String(validatingCString: request.path) != nil
    }
}

@_cdecl("ws4r_server_check_handshake")
public func cServerCheckHandshake(_ pointer: OpaquePointer?, _ request: UnsafePointer<ws4r_request>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let handle = serverHandle(pointer), let server = handle.server, let request, let out else { return WS4R_EINVAL }
    do {
        let (progress, loop) = try server.decision(for: try HandshakeRequest(request))
        let decision: HandshakeDecision
        switch progress {
        case .decided(let decided): decision = decided
        case .awaiting(let awaited): decision = try awaited.wait()
        }
        out.pointee = OpaquePointer(Unmanaged.passRetained(HandshakeHandle(decision, loop: loop)).toOpaque())
        if case .refused(let refusal) = decision {
            handle.record("handshake refused: \(refusal.status) \(refusal.body)")
            return WS4R_EHANDSHAKE
        }
        return WS4R_OK
    } catch {
        handle.record("\(error)")
        return status(of: error)
    }
}

/// The host's completion callback and its context, carried to the loop that decides.
private struct HandshakeCompletion: @unchecked Sendable {
    let function: ws4r_handshake_fn
    let context: UnsafeMutableRawPointer?

    func callAsFunction(_ decision: HandshakeDecision, loop: any EventLoop) {
        function(context, OpaquePointer(Unmanaged.passRetained(HandshakeHandle(decision, loop: loop)).toOpaque()))
    }
}

@_cdecl("ws4r_server_check_handshake_async")
public func cServerCheckHandshakeAsync(
    _ pointer: OpaquePointer?, _ request: UnsafePointer<ws4r_request>?, _ done: ws4r_handshake_fn?, _ context: UnsafeMutableRawPointer?
) -> Int32 {
    guard let handle = serverHandle(pointer), let server = handle.server, let request, let done else { return WS4R_EINVAL }
    let completion = HandshakeCompletion(function: done, context: context)
    return handle.recording {
        let (progress, loop) = try server.decision(for: try HandshakeRequest(request))
        switch progress {
        case .decided(let decision):
            completion(decision, loop: loop)
        case .awaiting(let decision):
            decision.whenComplete { result in
                completion((try? result.get()) ?? .refused(HandshakeRefusal(status: 503, body: "the server is shutting down\n")), loop: loop)
            }
        }
    }
}

@_cdecl("ws4r_handshake_status")
public func cHandshakeStatus(_ pointer: OpaquePointer?) -> Int32 {
    handshakeHandle(pointer)?.status ?? 0
}

@_cdecl("ws4r_handshake_reason")
public func cHandshakeReason(_ pointer: OpaquePointer?) -> UnsafePointer<CChar> {
    handshakeHandle(pointer).map { UnsafePointer($0.reason) } ?? cStaticString("")
}

@_cdecl("ws4r_handshake_body")
public func cHandshakeBody(_ pointer: OpaquePointer?) -> UnsafePointer<CChar> {
    handshakeHandle(pointer).map { UnsafePointer($0.body) } ?? cStaticString("")
}

@_cdecl("ws4r_handshake_header_count")
public func cHandshakeHeaderCount(_ pointer: OpaquePointer?) -> Int {
    handshakeHandle(pointer)?.headers.count ?? 0
}

@_cdecl("ws4r_handshake_header")
public func cHandshakeHeader(
    _ pointer: OpaquePointer?, _ index: Int, _ name: UnsafeMutablePointer<UnsafePointer<CChar>?>?, _ value: UnsafeMutablePointer<UnsafePointer<CChar>?>?
) -> Int32 {
    guard let handle = handshakeHandle(pointer), handle.headers.indices.contains(index) else { return WS4R_EINVAL }
    name?.pointee = UnsafePointer(handle.headers[index].name)
    value?.pointee = UnsafePointer(handle.headers[index].value)
    return WS4R_OK
}

@_cdecl("ws4r_handshake_free")
public func cHandshakeFree(_ pointer: OpaquePointer?) {
    guard let pointer else { return }
    Unmanaged<HandshakeHandle>.fromOpaque(UnsafeRawPointer(pointer)).release()
}

/// The host's release callback and its context, carried to whichever loop closes the socket.
private struct ReleaseCallback: @unchecked Sendable {
    let function: ws4r_release_fn?
    let context: UnsafeMutableRawPointer?

    func callAsFunction() { function?(context) }
}

@_cdecl("ws4r_server_adopt")
public func cServerAdopt(
    _ pointer: OpaquePointer?, _ handshakePointer: OpaquePointer?, _ descriptor: Int32, _ preface: UnsafeRawPointer?, _ prefaceLength: Int,
    _ release: ws4r_release_fn?, _ context: UnsafeMutableRawPointer?
) -> Int32 {
    let onClose = ReleaseCallback(function: release, context: context)
    let handshake = handshakePointer.map { Unmanaged<HandshakeHandle>.fromOpaque(UnsafeRawPointer($0)).takeRetainedValue() }
    guard let handle = serverHandle(pointer), let server = handle.server, let handshake, case .accepted(let accepted) = handshake.decision,
        descriptor >= 0, prefaceLength == 0 || preface != nil
    else {
        if descriptor >= 0 { close(descriptor) }
        onClose()
        return WS4R_EINVAL
    }
    let prefaceBytes = prefaceLength > 0 ? Array(UnsafeRawBufferPointer(start: preface, count: prefaceLength)) : []
    return handle.recording {
        try server.adopt(accepted, descriptor: descriptor, preface: prefaceBytes, on: handshake.loop) { onClose() }
    }
}
