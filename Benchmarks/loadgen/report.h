/* The run's output: one human line and one JSON object (the runner reads the last line). */
#ifndef LOADGEN_REPORT_H
#define LOADGEN_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "histogram.h"

struct run;

struct json {
    char text[8192];
    size_t length;
    bool need_comma;
};

void json_open(struct json *j, const char *key); /* key NULL: the top-level object */
void json_close(struct json *j);
void json_list(struct json *j, const char *key); /* items: json_open(j, NULL) ... json_close(j) */
void json_close_list(struct json *j);
void json_int(struct json *j, const char *key, long value);
void json_number(struct json *j, const char *key, double value); /* not finite: null */
void json_string(struct json *j, const char *key, const char *value); /* NULL: null */
/* {"p50":..,"p99":..,"max":..,"count":..} in milliseconds */
void json_percentiles_ms(struct json *j, const char *key, const struct histogram *h);

/* The fields every mode has: sockets, failures, connect times, the server's and our own CPU. */
void report_common(const struct run *run, struct json *j);
/* Server CPU seconds between the before and after samples. */
double report_server_cpu_s(const struct run *run);
double report_window_s(const struct run *run);
/* The connection figures for the human line: "opened X/N (failed F: ...)". */
void report_print_connections(const struct run *run);
void report_print_tail(const struct run *run);

#endif
