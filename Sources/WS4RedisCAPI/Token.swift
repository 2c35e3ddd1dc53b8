import CWS4Redis
import WS4Redis

@_cdecl("ws4r_token_mint")
public func cTokenMint(
    _ secret: UnsafeRawPointer?, _ secretLength: Int, _ user: UnsafePointer<CChar>?, _ groups: UnsafePointer<UnsafePointer<CChar>?>?,
    _ groupCount: Int, _ session: UnsafePointer<CChar>?, _ expiresAt: Int64, _ out: UnsafeMutablePointer<CChar>?, _ capacity: Int,
    _ length: UnsafeMutablePointer<Int>?
) -> Int32 {
    guard let secret, secretLength > 0, groupCount == 0 || groups != nil else { return WS4R_EINVAL }
    let groupNames = (0..<groupCount).compactMap { optionalString(groups?[$0]) }
    guard groupNames.count == groupCount else { return WS4R_EINVAL }
    let identity = Identity(user: optionalString(user), groups: groupNames, sessionKey: optionalString(session))
    guard let token = try? SignedToken.mint(identity, expiresAt: expiresAt, secret: Array(UnsafeRawBufferPointer(start: secret, count: secretLength))) else {
        return WS4R_EINVAL
    }
    return copyOut(token, to: out, capacity: capacity, length: length)
}
