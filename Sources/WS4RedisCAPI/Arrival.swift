import CWS4Redis
import WS4Redis

private func arrival(_ pointer: OpaquePointer?) -> Arrival? {
    pointer.map { Unmanaged<Arrival>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

@_cdecl("ws4r_server_watch_arrival")
public func cServerWatchArrival(_ pointer: OpaquePointer?, _ descriptor: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guard let out else { return WS4R_EINVAL }
    out.pointee = nil
    guard let handle = serverHandle(pointer), let server = handle.server, descriptor >= 0 else { return WS4R_EINVAL }
    return handle.recording {
        out.pointee = try server.watchArrival(descriptor: descriptor).map { OpaquePointer(Unmanaged.passRetained($0).toOpaque()) }
    }
}

@_cdecl("ws4r_arrival_head_read")
public func cArrivalHeadRead(_ pointer: OpaquePointer?) {
    arrival(pointer)?.headRead()
}

@_cdecl("ws4r_arrival_awaiting_head")
public func cArrivalAwaitingHead(_ pointer: OpaquePointer?) {
    arrival(pointer)?.awaitingHead()
}

@_cdecl("ws4r_arrival_handed_over")
public func cArrivalHandedOver(_ pointer: OpaquePointer?) {
    arrival(pointer)?.stopWatching()
}

@_cdecl("ws4r_arrival_destroy")
public func cArrivalDestroy(_ pointer: OpaquePointer?) {
    guard let pointer else { return }
    let arrival = Unmanaged<Arrival>.fromOpaque(UnsafeRawPointer(pointer)).takeRetainedValue()
    arrival.stopWatching()
}
