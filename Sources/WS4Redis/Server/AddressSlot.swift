import NIOConcurrencyHelpers

/// One websocket's place in its address's count; freed when the last reference goes.
public final class AddressSlot: Sendable {
    let address: String
    private let owner: ConnectionsPerAddress

    init(address: String, owner: ConnectionsPerAddress) {
        self.address = address
        self.owner = owner
    }

    deinit {
        owner.release(address)
    }
}
