#include "histogram.h"

enum { SUB_BUCKETS = 1 << HISTOGRAM_SUB_BITS };

static unsigned bucket_of(uint64_t value) {
    if (value < 2 * SUB_BUCKETS)
        return (unsigned)value;
    unsigned shift = (unsigned)(63 - __builtin_clzll(value)) - HISTOGRAM_SUB_BITS;
    unsigned index = (shift + 1) * SUB_BUCKETS + (unsigned)(value >> shift) - SUB_BUCKETS;
    return index < HISTOGRAM_BUCKETS ? index : HISTOGRAM_BUCKETS - 1;
}

/* The middle of a bucket's range: what a percentile falling into it reports. */
static uint64_t bucket_value(unsigned index) {
    if (index < 2 * SUB_BUCKETS)
        return index;
    unsigned shift = index / SUB_BUCKETS - 1;
    uint64_t low = (uint64_t)(index % SUB_BUCKETS + SUB_BUCKETS) << shift;
    return low + ((1ull << shift) >> 1);
}

void histogram_record(struct histogram *h, uint64_t value) {
    h->buckets[bucket_of(value)]++;
    h->count++;
    if (value > h->max)
        h->max = value;
}

void histogram_merge(struct histogram *into, const struct histogram *from) {
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++)
        into->buckets[i] += from->buckets[i];
    into->count += from->count;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t histogram_percentile(const struct histogram *h, double fraction) {
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(fraction * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HISTOGRAM_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen > rank) {
            uint64_t value = bucket_value(i);
            return value < h->max ? value : h->max;
        }
    }
    return h->max;
}
