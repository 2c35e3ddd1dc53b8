/* echo: round trips per second through an echo endpoint: every socket keeps one stamped message in
 * flight and sends the next when the echo of the last one arrives. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "coordinator.h"
#include "report.h"

enum { OP_TEXT = 1 };

static uint8_t *payload; /* one per worker process */
static uint64_t next_seq;
static bool running;

static void send_next(struct worker *w, struct conn *c) {
    stamp_write(payload, (size_t)w->opt->size, next_seq++, now_ns());
    conn_send(w, c, OP_TEXT, payload, (size_t)w->opt->size);
}

static void tick(struct worker *w, int64_t now) {
    worker_open_due(w, now);
    if (running || atomic_load_explicit(&w->shared->phase, memory_order_acquire) != PHASE_RUN)
        return;
    running = true;
    payload = malloc((size_t)w->opt->size);
    for (int i = 0; i < w->started && payload; i++)
        if (w->conns[i].state == CONN_OPEN)
            send_next(w, &w->conns[i]);
}

static bool done(struct worker *w, int64_t now) {
    (void)now;
    return w->started == w->share && w->in_flight == 0;
}

static void finish(struct worker *w) {
    (void)w;
    free(payload);
}

static void opened(struct worker *w, struct conn *c) {
    (void)w;
    (void)c;
}

static void message(struct worker *w, struct conn *c, int64_t now) {
    uint64_t seq;
    int64_t sent;
    if (!running || !stamp_read(c->stamp, c->stamp_length, &seq, &sent))
        return;
    histogram_record(&w->result->latency_us, (uint64_t)((now - sent) / 1000));
    atomic_fetch_add_explicit(&w->result->round_trips, 1, memory_order_relaxed);
    if (atomic_load_explicit(&w->shared->phase, memory_order_relaxed) == PHASE_RUN)
        send_next(w, c);
}

static void closed(struct worker *w, struct conn *c) {
    (void)c;
    w->result->closed_after_open++;
}

static int coordinate(struct run *run) {
    long opened = coordinator_await_settled(run, coordinator_opening_timeout(run->opt));
    if (opened == 0) {
        run->error = "no socket opened";
        return -1;
    }
    coordinator_count_over_duration(run, COUNTER(round_trips));
    return 0;
}

static void report(const struct run *run, struct json *j) {
    double window = report_window_s(run);
    double per_s = (double)run->window_count / window;
    double cpu_us = run->window_count ? report_server_cpu_s(run) * 1e6 / (double)run->window_count : NAN;
    printf("echo %d x %d B: ", run->opt->connections, run->opt->size);
    report_print_connections(run);
    printf("; %ld round trips in %.2f s = %.0f/s; round trip p50 %.2f ms p99 %.2f ms max %.2f ms; server %.2f us per round trip",
           run->window_count, window, per_s, histogram_percentile(&run->total.latency_us, 0.5) / 1000.0,
           histogram_percentile(&run->total.latency_us, 0.99) / 1000.0, run->total.latency_us.max / 1000.0, cpu_us);
    report_print_tail(run);
    json_int(j, "size", run->opt->size);
    json_int(j, "round_trips", run->window_count);
    json_number(j, "round_trips_per_s", per_s);
    json_percentiles_ms(j, "latency_ms", &run->total.latency_us);
    json_number(j, "server_cpu_us_per_round_trip", cpu_us);
}

const struct mode mode_echo = {
    .name = "echo",
    .worker_tick = tick,
    .worker_done = done,
    .worker_finish = finish,
    .on_open = opened,
    .on_message = message,
    .on_closed = closed,
    .coordinate = coordinate,
    .report = report,
};
