import NIOCore

/// What a connection may ask of its event loop's hub: declared here and handed to the connection,
/// so that it depends on this small port rather than on the hub. Called on the hub's loop only.
package protocol SubscriptionPort: AnyObject {
    /// Adds the subscriber to this loop and subscribes it to `channels` (Redis only for those no
    /// other connection of the loop holds); returns the loop's shared copy of the list, which the
    /// subscriber keeps. `subscriptionConfirmed()` follows once Redis confirmed every channel, at
    /// once when they all are.
    func join(_ subscriber: any FanoutSubscriber, channels: [String]) -> [String]
    /// Removes the subscriber and its channels (from Redis those no other connection holds).
    func leave(_ subscriber: any FanoutSubscriber)
    /// Hands `deliver` the stored messages of `channels`, in their order, on this loop; channels
    /// with nothing stored are left out, and nothing comes while Redis is away.
    func fetchStored(_ channels: [String], then deliver: @escaping ([ByteBuffer]) -> Void)
    /// Publishes a client's message to `channels`; `failed` runs on this loop when it did not reach Redis whole.
    func publish(_ payload: ByteBuffer, to channels: [String], failed: @escaping (PublicationFailure) -> Void)
    /// The compressed variant of a plain frame when it is worth compressing, else the frame itself.
    func compressedFrame(_ frame: ByteBuffer) -> ByteBuffer
}
