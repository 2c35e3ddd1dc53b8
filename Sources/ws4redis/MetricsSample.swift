/// The figures of one scrape of `/metrics` (Prometheus text format), keyed by `name{labels}`.
struct MetricsSample {
    private(set) var values: [String: Double] = [:]

    init(prometheusText text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
    }

    subscript(_ key: String) -> Double { values[key] ?? 0 }

    /// Every series of a metric with one label, e.g. handshakes by status: [("101", 40), ("403", 2)].
    func series(_ name: String, label: String) -> [(String, Double)] {
        let prefix = "\(name){\(label)=\""
        return values.compactMap { key, value in
            guard key.hasPrefix(prefix), let end = key.dropFirst(prefix.count).firstIndex(of: "\"") else { return nil }
            return (String(key[key.index(key.startIndex, offsetBy: prefix.count)..<end]), value)
        }.sorted { $0.0 < $1.0 }
    }

    /// The upper bound of the histogram bucket holding quantile `q`, in seconds; nil without observations.
    func quantile(_ q: Double, of histogram: String) -> Double? {
        let total = self["\(histogram)_count"]
        guard total > 0 else { return nil }
        let buckets = series("\(histogram)_bucket", label: "le").compactMap { bound, count in Double(bound).map { ($0, count) } }
        return buckets.sorted { $0.0 < $1.0 }.first { $0.1 >= q * total }?.0 ?? .infinity
    }
}
