/* A log-linear histogram of microseconds: 64 sub-buckets per power of two (under 1.6 % error),
 * fixed size, so workers fill one each in shared memory and the coordinator adds them up. */
#ifndef LOADGEN_HISTOGRAM_H
#define LOADGEN_HISTOGRAM_H

#include <stdint.h>

#define HISTOGRAM_SUB_BITS 6
#define HISTOGRAM_BUCKETS (38 << HISTOGRAM_SUB_BITS) /* up to 2^43 us: more than a day */

struct histogram {
    uint64_t count;
    uint64_t max;
    uint64_t buckets[HISTOGRAM_BUCKETS];
};

void histogram_record(struct histogram *h, uint64_t value);
void histogram_merge(struct histogram *into, const struct histogram *from);
/* The value under which `fraction` (0..1) of the recorded values lie; 0 when empty. */
uint64_t histogram_percentile(const struct histogram *h, double fraction);

#endif
