/* connect: handshakes per second. Each worker keeps its share of slots busy with open, 101, close
 * frame, the server's close, and again, for the duration; the handshake time is connect() to 101. */
#include <math.h>
#include <stdio.h>

#include "coordinator.h"
#include "report.h"

static void tick(struct worker *w, int64_t now) {
    (void)now;
    if (atomic_load_explicit(&w->shared->phase, memory_order_acquire) != PHASE_RUN)
        return;
    w->started = w->share; /* every slot is in use: the handshake timeout scan covers them all */
    for (int i = 0; i < w->share; i++)
        if (w->conns[i].state == CONN_FREE)
            conn_start(w, &w->conns[i]);
}

static bool done(struct worker *w, int64_t now) {
    (void)w;
    (void)now;
    return true; /* the coordinator ends the run when its time is up */
}

static void finish(struct worker *w) {
    (void)w;
}

static void opened(struct worker *w, struct conn *c) {
    atomic_fetch_add_explicit(&w->result->handshakes, 1, memory_order_relaxed);
    conn_send_close(w, c);
}

static void message(struct worker *w, struct conn *c, int64_t now) {
    (void)w;
    (void)c;
    (void)now;
}

static void closed(struct worker *w, struct conn *c) {
    (void)c;
    w->result->closed_after_open++;
}

static int coordinate(struct run *run) {
    coordinator_count_over_duration(run, COUNTER(handshakes));
    return 0;
}

static void report(const struct run *run, struct json *j) {
    double window = report_window_s(run);
    double per_s = (double)run->window_count / window;
    double cpu_us = run->window_count ? report_server_cpu_s(run) * 1e6 / (double)run->window_count : NAN;
    printf("connect (%d concurrent): %ld handshakes in %.2f s = %.0f/s; handshake p50 %.2f ms p99 %.2f ms max %.2f ms; "
           "failed %ld; server %.1f us per handshake",
           run->opt->connections, run->window_count, window, per_s, histogram_percentile(&run->total.connect_us, 0.5) / 1000.0,
           histogram_percentile(&run->total.connect_us, 0.99) / 1000.0, run->total.connect_us.max / 1000.0,
           run->total.failed, cpu_us);
    report_print_tail(run);
    json_int(j, "handshakes", run->window_count);
    json_number(j, "handshakes_per_s", per_s);
    json_number(j, "server_cpu_us_per_handshake", cpu_us);
}

const struct mode mode_connect = {
    .name = "connect",
    .cycles_sockets = true,
    .worker_tick = tick,
    .worker_done = done,
    .worker_finish = finish,
    .on_open = opened,
    .on_message = message,
    .on_closed = closed,
    .coordinate = coordinate,
    .report = report,
};
