/// The local subscribers of one channel, with O(1) removal.
final class SubscriberList {
    private(set) var members: [any FanoutSubscriber] = []
    /// Redis confirmed the channel for this loop: a new member may fetch the stored messages at once.
    var confirmed = false
    private var slots: [ObjectIdentifier: Int] = [:]

    var isEmpty: Bool { members.isEmpty }

    func add(_ subscriber: any FanoutSubscriber) {
        guard slots[ObjectIdentifier(subscriber)] == nil else { return }
        slots[ObjectIdentifier(subscriber)] = members.count
        members.append(subscriber)
    }

    func remove(_ subscriber: any FanoutSubscriber) {
        guard let slot = slots.removeValue(forKey: ObjectIdentifier(subscriber)) else { return }
        members.swapRemove(at: slot) { self.slots[ObjectIdentifier($0)] = $1 }
    }
}
