#include "report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "loadgen.h"

static const char *const FAILURE_NAMES[FAIL_KINDS] = {"connect", "handshake", "closed", "timeout"};

static void append(struct json *j, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int written = vsnprintf(j->text + j->length, sizeof j->text - j->length, format, args);
    va_end(args);
    if (written > 0 && j->length + (size_t)written < sizeof j->text)
        j->length += (size_t)written;
}

static void key(struct json *j, const char *name) {
    if (j->need_comma)
        append(j, ",");
    if (name)
        append(j, "\"%s\":", name);
    j->need_comma = true;
}

static void open_with(struct json *j, const char *name, const char *bracket) {
    key(j, name);
    append(j, bracket);
    j->need_comma = false;
}

static void close_with(struct json *j, const char *bracket) {
    append(j, bracket);
    j->need_comma = true;
}

void json_open(struct json *j, const char *name) { open_with(j, name, "{"); }
void json_close(struct json *j) { close_with(j, "}"); }
void json_list(struct json *j, const char *name) { open_with(j, name, "["); }
void json_close_list(struct json *j) { close_with(j, "]"); }

void json_int(struct json *j, const char *name, long value) {
    key(j, name);
    append(j, "%ld", value);
}

void json_number(struct json *j, const char *name, double value) {
    key(j, name);
    if (isfinite(value))
        append(j, "%.6g", value);
    else
        append(j, "null");
}

void json_string(struct json *j, const char *name, const char *value) {
    key(j, name);
    if (!value) {
        append(j, "null");
        return;
    }
    append(j, "\"");
    for (const char *c = value; *c; c++)
        append(j, *c == '"' || *c == '\\' ? "\\%c" : (unsigned char)*c < 0x20 ? "?" : "%c", *c);
    append(j, "\"");
}

void json_percentiles_ms(struct json *j, const char *name, const struct histogram *h) {
    json_open(j, name);
    json_number(j, "p50", (double)histogram_percentile(h, 0.50) / 1000);
    json_number(j, "p99", (double)histogram_percentile(h, 0.99) / 1000);
    json_number(j, "max", (double)h->max / 1000);
    json_int(j, "count", (long)h->count);
    json_close(j);
}

double report_server_cpu_s(const struct run *run) {
    return run->server_after.cpu_s - run->server_before.cpu_s;
}

/* The CPU time of each event-loop thread over the run (by thread id, so a name shared by two
   processes' loops counts apart), as a JSON list of {"pid", "thread", "cpu_s"}. */
static void json_loop_cpu(struct json *j, const struct run *run) {
    json_list(j, "event_loops");
    for (int i = 0; i < run->server_after.loop_count; i++) {
        const struct loop_thread *after = &run->server_after.loops[i];
        double before = 0;
        for (int k = 0; k < run->server_before.loop_count; k++)
            if (run->server_before.loops[k].tid == after->tid)
                before = run->server_before.loops[k].cpu_s;
        json_open(j, NULL);
        json_int(j, "pid", after->pid);
        json_string(j, "thread", after->name);
        json_number(j, "cpu_s", after->cpu_s - before);
        json_close(j);
    }
    json_close_list(j);
}

double report_window_s(const struct run *run) {
    return (double)(run->window_end_ns - run->window_start_ns) / 1e9;
}

static long requested(const struct run *run) {
    return run->opt->connections;
}

void report_common(const struct run *run, struct json *j) {
    const struct worker_result *t = &run->total;
    json_string(j, "mode", run->opt->mode->name);
    json_string(j, "error", run->error);
    json_int(j, "workers", run->workers);
    json_open(j, "connections");
    json_int(j, "requested", requested(run));
    json_int(j, "opened", t->opened);
    json_int(j, "failed", t->failed);
    json_open(j, "failures");
    for (int kind = 0; kind < FAIL_KINDS; kind++)
        json_int(j, FAILURE_NAMES[kind], t->failures[kind]);
    json_close(j);
    json_string(j, "first_refusal", t->first_refusal[0] ? t->first_refusal : NULL);
    json_int(j, "closed_by_server", t->closed_after_open);
    json_close(j);
    json_percentiles_ms(j, "connect_ms", &t->connect_us);
    json_number(j, "window_s", report_window_s(run));
    json_number(j, "loadgen_cpu_s", t->cpu_s);
    json_open(j, "server");
    json_int(j, "processes", run->server_after.processes);
    json_int(j, "rss_kib_before", run->server_before.rss_kib);
    json_int(j, "rss_kib_held", run->server_held.rss_kib);
    json_int(j, "rss_kib_after", run->server_after.rss_kib);
    json_number(j, "cpu_s", report_server_cpu_s(run));
    json_loop_cpu(j, run);
    json_close(j);
}

void report_print_connections(const struct run *run) {
    const struct worker_result *t = &run->total;
    printf("opened %ld/%ld", t->opened, requested(run));
    if (t->failed) {
        printf(" (failed %ld:", t->failed);
        for (int kind = 0; kind < FAIL_KINDS; kind++)
            if (t->failures[kind])
                printf(" %s %ld", FAILURE_NAMES[kind], t->failures[kind]);
        if (t->first_refusal[0])
            printf(", first refusal \"%s\"", t->first_refusal);
        printf(")");
    }
    if (t->closed_after_open)
        printf(", %ld closed by the server", t->closed_after_open);
}

void report_print_tail(const struct run *run) {
    printf("; server CPU %.2f s (%d processes); loadgen CPU %.2f s (%d workers)", report_server_cpu_s(run),
           run->server_after.processes, run->total.cpu_s, run->workers);
    if (run->error)
        printf("; ERROR: %s", run->error);
    printf("\n");
}
