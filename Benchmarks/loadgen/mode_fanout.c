/* fanout: N subscribers on one channel, M stamped messages published (PUBLISH or HTTP POST), at full
 * speed or at a steady rate. Each subscriber keeps one bit per sequence number: lost, duplicated and
 * reordered are exact. Latency is from the publisher's stamp to the frame's arrival. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "publisher.h"
#include "report.h"

enum { PROBE_INTERVAL_MS = 100, PROBE_TIMEOUT_S = 60 };

static void tick(struct worker *w, int64_t now) {
    worker_open_due(w, now);
}

static bool done(struct worker *w, int64_t now) {
    if (w->started == w->share && w->in_flight == 0 && w->completed == w->open_count && w->open_count > 0)
        return true;
    int phase = atomic_load_explicit(&w->shared->phase, memory_order_acquire);
    if (phase < PHASE_PUBLISHED)
        return false;
    int64_t quiet_since = atomic_load(&w->shared->published_ns);
    if (w->result->last_rx_ns > quiet_since)
        quiet_since = w->result->last_rx_ns;
    return now - quiet_since > (int64_t)(w->opt->drain_s * 1e9);
}

static void finish(struct worker *w) {
    for (int i = 0; i < w->started; i++)
        if (w->conns[i].seen)
            w->result->lost += w->opt->messages - (long)w->conns[i].received;
}

static void opened(struct worker *w, struct conn *c) {
    c->seen = calloc(((size_t)w->opt->messages + 63) / 64, sizeof *c->seen);
    c->max_seq = -1;
}

static void record(struct worker *w, struct conn *c, uint64_t seq, int64_t sent, int64_t now) {
    uint64_t bit = 1ull << (seq & 63);
    if (c->seen[seq / 64] & bit) {
        w->result->duplicated++;
        return;
    }
    c->seen[seq / 64] |= bit;
    if ((int64_t)seq < c->max_seq)
        w->result->reordered++;
    else
        c->max_seq = (int64_t)seq;
    struct worker_result *r = w->result;
    r->deliveries++;
    histogram_record(&r->latency_us, (uint64_t)(now > sent ? (now - sent) / 1000 : 0));
    if (r->first_rx_ns == 0)
        r->first_rx_ns = now;
    r->last_rx_ns = now;
    if (++c->received == (uint32_t)w->opt->messages)
        w->completed++;
}

static void message(struct worker *w, struct conn *c, int64_t now) {
    if (stamp_is_probe(c->stamp, c->stamp_length)) {
        if (!c->probed) {
            c->probed = true;
            atomic_fetch_add_explicit(&w->result->probed, 1, memory_order_relaxed);
        }
        return;
    }
    uint64_t seq;
    int64_t sent;
    if (c->seen && stamp_read(c->stamp, c->stamp_length, &seq, &sent) && seq < (uint64_t)w->opt->messages)
        record(w, c, seq, sent, now);
}

static void closed(struct worker *w, struct conn *c) {
    (void)c;
    w->result->closed_after_open++;
}

/* Publishes probes until every open subscriber got one: then the server has subscribed them all. */
static int await_probes(struct run *run, struct publisher *publisher, long subscribers) {
    uint8_t probe[STAMP_BYTES];
    memset(probe, 'p', sizeof probe);
    int64_t deadline = now_ns() + (int64_t)PROBE_TIMEOUT_S * 1000000000;
    while (coordinator_sum(run, COUNTER(probed)) < subscribers - coordinator_sum(run, COUNTER(closed_after_open))) {
        if (now_ns() > deadline || publisher_send(publisher, probe, sizeof probe) != 0 || publisher_sync(publisher) != 0)
            return -1;
        sleep_seconds(PROBE_INTERVAL_MS / 1000.0);
    }
    return 0;
}

static int publish_all(const struct options *opt, struct publisher *publisher, int64_t start) {
    uint8_t *payload = malloc((size_t)opt->size);
    if (!payload)
        return -1;
    int status = 0;
    for (int seq = 0; seq < opt->messages && status == 0; seq++) {
        if (opt->publish_rate > 0) {
            int64_t due = start + (int64_t)(seq * 1e9 / opt->publish_rate);
            int64_t wait = due - now_ns();
            sleep_seconds(wait > 0 ? (double)wait / 1e9 : 0);
        }
        stamp_write(payload, (size_t)opt->size, (uint64_t)seq, now_ns());
        status = publisher_send(publisher, payload, (size_t)opt->size);
        if (status == 0 && opt->publish_rate > 0)
            status = publisher_sync(publisher);
    }
    free(payload);
    return status == 0 ? publisher_sync(publisher) : status;
}

static int coordinate(struct run *run) {
    const struct options *opt = run->opt;
    long subscribers = coordinator_await_settled(run, coordinator_opening_timeout(opt));
    struct publisher *publisher = publisher_open(opt, opt->publish_rate > 0 ? 1 : opt->pipeline);
    if (!publisher || publisher_error(publisher)) {
        run->error = publisher ? strdup(publisher_error(publisher)) : "out of memory";
        publisher_close(publisher);
        return -1;
    }
    if (subscribers == 0 || await_probes(run, publisher, subscribers) != 0) {
        run->error = subscribers == 0 ? "no subscriber opened" : publisher_error(publisher) ? strdup(publisher_error(publisher))
                                                                                             : "subscribers never got a probe";
        publisher_close(publisher);
        return -1;
    }
    run->server_before = coordinator_sample_server(run);
    run->window_start_ns = now_ns();
    coordinator_set_phase(run, PHASE_RUN);
    if (publish_all(opt, publisher, run->window_start_ns) != 0)
        run->error = strdup(publisher_error(publisher));
    atomic_store(&run->shared->published_ns, now_ns());
    coordinator_set_phase(run, PHASE_PUBLISHED);
    publisher_close(publisher);
    double expected_s = opt->publish_rate > 0 ? opt->messages / opt->publish_rate : 0;
    if (coordinator_await_finished(run, expected_s + opt->drain_s + 600) != 0 && !run->error)
        run->error = "the workers did not finish";
    run->server_after = coordinator_sample_server(run);
    run->server_held = run->server_after;
    run->window_end_ns = run->window_start_ns;
    for (int i = 0; i < run->workers; i++)
        if (run->shared->results[i].last_rx_ns > run->window_end_ns)
            run->window_end_ns = run->shared->results[i].last_rx_ns;
    return 0;
}

static void report(const struct run *run, struct json *j) {
    const struct worker_result *t = &run->total;
    long expected = t->opened * (long)run->opt->messages;
    double window = report_window_s(run);
    double per_s = window > 0 ? (double)t->deliveries / window : NAN;
    double cpu_us = t->deliveries ? report_server_cpu_s(run) * 1e6 / (double)t->deliveries : NAN;
    printf("fanout %d x %d x %d B%s: ", run->opt->connections, run->opt->messages, run->opt->size,
           run->opt->publish_rate > 0 ? " (steady)" : "");
    report_print_connections(run);
    printf("; %ld/%ld deliveries in %.2f s = %.0f/s; latency p50 %.2f ms p99 %.2f ms max %.2f ms; lost %ld dup %ld reordered %ld; "
           "server %.2f us per delivery",
           t->deliveries, expected, window, per_s, histogram_percentile(&t->latency_us, 0.5) / 1000.0,
           histogram_percentile(&t->latency_us, 0.99) / 1000.0, t->latency_us.max / 1000.0, t->lost, t->duplicated,
           t->reordered, cpu_us);
    report_print_tail(run);
    json_int(j, "messages", run->opt->messages);
    json_int(j, "size", run->opt->size);
    json_number(j, "publish_rate", run->opt->publish_rate);
    json_int(j, "expected", expected);
    json_int(j, "deliveries", t->deliveries);
    json_number(j, "deliveries_per_s", per_s);
    json_percentiles_ms(j, "latency_ms", &t->latency_us);
    json_int(j, "lost", t->lost);
    json_int(j, "duplicated", t->duplicated);
    json_int(j, "reordered", t->reordered);
    json_number(j, "server_cpu_us_per_delivery", cpu_us);
}

const struct mode mode_fanout = {
    .name = "fanout",
    .worker_tick = tick,
    .worker_done = done,
    .worker_finish = finish,
    .on_open = opened,
    .on_message = message,
    .on_closed = closed,
    .coordinate = coordinate,
    .report = report,
};
