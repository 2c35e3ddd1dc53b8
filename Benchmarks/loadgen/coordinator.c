#include "coordinator.h"

#include <time.h>

enum { POLL_MS = 5 };

long coordinator_sum(const struct run *run, size_t counter) {
    long sum = 0;
    for (int i = 0; i < run->workers; i++)
        sum += atomic_load_explicit((_Atomic long *)((char *)&run->shared->results[i] + counter), memory_order_relaxed);
    return sum;
}

void sleep_seconds(double seconds) {
    if (seconds <= 0)
        return;
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}

long coordinator_await_settled(struct run *run, double timeout_s) {
    int64_t deadline = now_ns() + (int64_t)(timeout_s * 1e9);
    long opened;
    while ((opened = coordinator_sum(run, COUNTER(opened))) + coordinator_sum(run, COUNTER(failed)) <
               run->opt->connections &&
           now_ns() < deadline)
        sleep_seconds(POLL_MS / 1000.0);
    return opened;
}

int coordinator_await_finished(struct run *run, double timeout_s) {
    int64_t deadline = now_ns() + (int64_t)(timeout_s * 1e9);
    for (;;) {
        int finished = 0;
        for (int i = 0; i < run->workers; i++)
            finished += atomic_load_explicit(&run->shared->results[i].finished, memory_order_acquire);
        if (finished == run->workers)
            return 0;
        if (now_ns() >= deadline)
            return -1;
        sleep_seconds(POLL_MS / 1000.0);
    }
}

void coordinator_set_phase(struct run *run, enum phase phase) {
    atomic_store_explicit(&run->shared->phase, (int)phase, memory_order_release);
}

struct proc_sample coordinator_sample_server(const struct run *run) {
    return proc_sample_trees(run->opt->server_pids, run->opt->server_pid_count);
}

double coordinator_opening_timeout(const struct options *opt) {
    double at_rate = opt->open_rate > 0 ? opt->connections / opt->open_rate : 0;
    return at_rate * 1.5 + opt->timeout_s + 30;
}

void coordinator_count_over_duration(struct run *run, size_t counter) {
    run->server_before = coordinator_sample_server(run);
    long before = coordinator_sum(run, counter);
    run->window_start_ns = now_ns();
    coordinator_set_phase(run, PHASE_RUN);
    sleep_seconds(run->opt->duration_s);
    run->window_count = coordinator_sum(run, counter) - before;
    run->window_end_ns = now_ns();
    run->server_after = coordinator_sample_server(run);
    run->server_held = run->server_after;
}
