import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus
import Synchronization

/// A figure that goes up and down (connections, subscriptions); exported as a gauge when scraped.
final class Level: Sendable {
    private let value = Atomic<Int64>(0)

    func add(_ amount: Int) { value.add(Int64(amount), ordering: .relaxed) }
    func subtract(_ amount: Int) { value.subtract(Int64(amount), ordering: .relaxed) }
    func set(_ amount: Int) { value.store(Int64(amount), ordering: .relaxed) }
    var current: UInt64 { UInt64(max(0, value.load(ordering: .relaxed))) }
}
