/* idle: open N websockets at a rate, hold them, measure the server's memory per socket. */
#include <math.h>
#include <stdio.h>

#include "coordinator.h"
#include "report.h"

static void tick(struct worker *w, int64_t now) {
    worker_open_due(w, now);
}

static bool done(struct worker *w, int64_t now) {
    (void)now;
    return w->started == w->share && w->in_flight == 0;
}

static void finish(struct worker *w) {
    (void)w;
}

static void opened(struct worker *w, struct conn *c) {
    (void)w;
    (void)c;
}

static void message(struct worker *w, struct conn *c, int64_t now) {
    (void)w;
    (void)c;
    (void)now; /* heartbeats, persisted messages: an idle socket takes them and holds on */
}

static void closed(struct worker *w, struct conn *c) {
    (void)c;
    w->result->closed_after_open++;
}

static int coordinate(struct run *run) {
    run->server_before = coordinator_sample_server(run);
    run->window_start_ns = now_ns();
    long opened = coordinator_await_settled(run, coordinator_opening_timeout(run->opt));
    run->window_end_ns = now_ns();
    if (opened < run->opt->connections)
        run->error = "not every socket opened";
    sleep_seconds(run->opt->settle_s); /* lets allocations from the handshakes settle into steady state */
    run->server_held = coordinator_sample_server(run);
    sleep_seconds(run->opt->hold_s);
    run->server_after = coordinator_sample_server(run);
    return 0;
}

static double rss_per_socket_kib(const struct run *run) {
    return run->total.opened ? (double)(run->server_held.rss_kib - run->server_before.rss_kib) / (double)run->total.opened
                              : NAN;
}

static void report(const struct run *run, struct json *j) {
    double window = report_window_s(run);
    printf("idle: ");
    report_print_connections(run);
    printf(" in %.2f s (%.0f/s); connect p50 %.2f ms p99 %.2f ms max %.2f ms; server RSS %ld -> %ld KiB (%.2f KiB per socket)",
           window, (double)run->total.opened / window, histogram_percentile(&run->total.connect_us, 0.5) / 1000.0,
           histogram_percentile(&run->total.connect_us, 0.99) / 1000.0, run->total.connect_us.max / 1000.0,
           run->server_before.rss_kib, run->server_held.rss_kib, rss_per_socket_kib(run));
    report_print_tail(run);
    json_number(j, "opened_per_s", (double)run->total.opened / window);
    json_number(j, "rss_kib_per_connection", rss_per_socket_kib(run));
}

const struct mode mode_idle = {
    .name = "idle",
    .worker_tick = tick,
    .worker_done = done,
    .worker_finish = finish,
    .on_open = opened,
    .on_message = message,
    .on_closed = closed,
    .coordinate = coordinate,
    .report = report,
};
