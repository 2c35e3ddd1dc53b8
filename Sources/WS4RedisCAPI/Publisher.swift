import CWS4Redis
import WS4Redis

/// What a `ws4r_publisher *` points to.
final class PublisherHandle: ErrorMessageHolder, @unchecked Sendable {
    var publisher: RedisPublisher?
}

private func publisherHandle(_ pointer: OpaquePointer?) -> PublisherHandle? {
    pointer.map { Unmanaged<PublisherHandle>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

@_cdecl("ws4r_publisher_create")
public func cPublisherCreate(_ url: UnsafePointer<CChar>?, _ prefix: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let out else { return WS4R_EINVAL }
    let handle = PublisherHandle()
    out.pointee = OpaquePointer(Unmanaged.passRetained(handle).toOpaque())
    return handle.recording {
        let endpoint = try optionalString(url).map { try RedisEndpoint(url: $0) } ?? .defaultEndpoint
        handle.publisher = try RedisPublisher(endpoint: endpoint, keyPrefix: optionalString(prefix) ?? "")
    }
}

private func strings(_ list: UnsafePointer<UnsafePointer<CChar>?>?, count: Int) throws -> [String] {
    guard count > 0 else { return [] }
    guard let list else { throw WS4RedisError(.invalidArgument, "a list with a count but no array") }
    return try (0..<count).map { index in
        guard let string = optionalString(list[index]) else { throw WS4RedisError(.invalidArgument, "empty or NULL name in an audience list") }
        return string
    }
}

extension Audience {
    init(_ pointer: UnsafePointer<ws4r_audience>) throws {
        var defaults = ws4r_audience()
        defaults.struct_size = MemoryLayout<ws4r_audience>.size
        let audience = versioned(pointer, structSize: pointer.pointee.struct_size, defaults: defaults)
        guard let facility = optionalString(audience.facility) else { throw WS4RedisError(.invalidArgument, "the audience needs a facility") }
        self.init(
            facility: facility, broadcast: audience.broadcast != 0, users: try strings(audience.users, count: audience.user_count),
            groups: try strings(audience.groups, count: audience.group_count), sessions: try strings(audience.sessions, count: audience.session_count)
        )
    }
}

@_cdecl("ws4r_publisher_publish")
public func cPublisherPublish(
    _ pointer: OpaquePointer?, _ audience: UnsafePointer<ws4r_audience>?, _ message: UnsafeRawPointer?, _ length: Int, _ expire: Int64,
    _ receivers: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    guard let handle = publisherHandle(pointer) else { return WS4R_EINVAL }
    return handle.recording {
        guard let publisher = handle.publisher else { throw WS4RedisError(.state, "the publisher was not created successfully") }
        guard let audience, length == 0 || message != nil else { throw WS4RedisError(.invalidArgument, "audience or message is NULL") }
        let bytes = length > 0 ? Array(UnsafeRawBufferPointer(start: message, count: length)) : []
        let count = try publisher.publish(bytes, to: Audience(audience), expireSeconds: Int(expire))
        receivers?.pointee = UInt64(count)
    }
}

@_cdecl("ws4r_publisher_fetch")
public func cPublisherFetch(
    _ pointer: OpaquePointer?, _ audience: UnsafePointer<ws4r_audience>?, _ buffer: UnsafeMutableRawPointer?, _ capacity: Int,
    _ length: UnsafeMutablePointer<Int>?, _ found: UnsafeMutablePointer<Int32>?
) -> Int32 {
    guard let handle = publisherHandle(pointer) else { return WS4R_EINVAL }
    var tooSmall = false
    let status = handle.recording {
        guard let publisher = handle.publisher else { throw WS4RedisError(.state, "the publisher was not created successfully") }
        guard let audience, capacity == 0 || buffer != nil else { throw WS4RedisError(.invalidArgument, "audience or buffer is NULL") }
        let message = try publisher.fetch(Audience(audience))
        found?.pointee = message == nil ? 0 : 1
        length?.pointee = message?.count ?? 0
        guard let message else { return }
        if let buffer { message.prefix(capacity).withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        tooSmall = message.count > capacity
    }
    return status == WS4R_OK && tooSmall ? WS4R_ELIMIT : status
}

@_cdecl("ws4r_publisher_errmsg")
public func cPublisherErrmsg(_ pointer: OpaquePointer?) -> UnsafePointer<CChar> {
    publisherHandle(pointer)?.cMessage ?? cStaticString("no publisher handle")
}

@_cdecl("ws4r_publisher_destroy")
public func cPublisherDestroy(_ pointer: OpaquePointer?) {
    guard let pointer else { return }
    Unmanaged<PublisherHandle>.fromOpaque(UnsafeRawPointer(pointer)).release()
}
