import CoreMetrics
import NIOConcurrencyHelpers
import Prometheus
import Synchronization

/// A running total: read for `ws4r_stats` and `/healthz`, exported to Prometheus as a counter.
/// Callers batch their adds (once per message per event loop, not once per client).
final class Total: Sendable {
    private let value = Atomic<Int64>(0)
    private let exported: CoreMetrics.Counter

    init(_ name: String, dimensions: [(String, String)] = [], factory: any MetricsFactory) {
        exported = CoreMetrics.Counter(label: name, dimensions: dimensions, factory: factory)
    }

    func add(_ amount: Int) {
        guard amount > 0 else { return }
        value.add(Int64(amount), ordering: .relaxed)
        exported.increment(by: amount)
    }

    var current: UInt64 { UInt64(value.load(ordering: .relaxed)) }
}
