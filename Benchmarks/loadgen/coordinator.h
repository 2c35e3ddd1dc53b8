/* What every mode's coordinator does: wait for the workers, sum their live counters, set phases. */
#ifndef LOADGEN_COORDINATOR_H
#define LOADGEN_COORDINATOR_H

#include <stddef.h>

#include "loadgen.h"

#define COUNTER(field) offsetof(struct worker_result, field)

/* The sum over the workers of one of their _Atomic long counters. */
long coordinator_sum(const struct run *run, size_t counter);
/* Lets the workers run for --duration s, counting `counter` over that window and sampling the
 * server before and after (the window, count and samples land in `run`). */
void coordinator_count_over_duration(struct run *run, size_t counter);
/* Waits until every requested socket is open or has failed (or timeout_s); returns the open ones. */
long coordinator_await_settled(struct run *run, double timeout_s);
/* Waits until every worker says its part is done (or timeout_s); 0 or -1. */
int coordinator_await_finished(struct run *run, double timeout_s);
void coordinator_set_phase(struct run *run, enum phase phase);
struct proc_sample coordinator_sample_server(const struct run *run);
void sleep_seconds(double seconds);
/* How long opening all sockets may take: at the open rate, plus handshake timeouts. */
double coordinator_opening_timeout(const struct options *opt);

#endif
