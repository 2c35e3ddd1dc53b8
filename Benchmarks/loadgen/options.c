#include "options.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct mode *const MODES[] = {&mode_idle, &mode_fanout, &mode_connect, &mode_echo};

void options_usage(FILE *out) {
    fputs("usage: loadgen MODE --url ws://HOST:PORT/PATH [options]\n"
          "modes:\n"
          "  idle     open --connections sockets at --rate, hold them --hold s; server RSS per socket\n"
          "  fanout   --connections subscribers at --url, --messages of --size bytes published with\n"
          "           --redis HOST:PORT --channel NAME (PUBLISH) or --publish-url http://HOST:PORT/PATH (POST),\n"
          "           at full speed or --publish-rate per second; deliveries/s, latency, lost/dup/reordered\n"
          "  connect  --connections concurrent open+close cycles for --duration s; handshakes/s\n"
          "  echo     --connections sockets, each with one --size message in flight, --duration s; round trips/s\n"
          "options (defaults):\n"
          "  --connections N (1000)   --workers W (as --per-worker needs)   --per-worker N (19000)\n"
          "  --source PREFIX (127.0.0.; worker i binds PREFIX(10+i); 'none': no bind)\n"
          "  --rate R (0: as fast as --in-flight allows)   --in-flight K (100 per worker)   --timeout S (30)\n"
          "  --settle S (2)   --hold S (0)   --duration S (10)   --messages M (100)   --size B (64, at least 32)\n"
          "  --publish-rate R (0: full speed)   --pipeline K (64)   --drain S (5)\n"
          "  --server-pid PID (repeatable; each with its descendants: sampled for RSS and CPU)\n"
          "output: one human line, then one JSON object on the last line\n",
          out);
}

/* ws://host:port/path or http://host:port/path */
static int parse_url(const char *url, const char *scheme, struct endpoint *endpoint) {
    size_t scheme_length = strlen(scheme);
    if (strncmp(url, scheme, scheme_length) != 0)
        return -1;
    const char *host = url + scheme_length, *colon = strchr(host, ':'), *slash = strchr(host, '/');
    if (!colon || (slash && slash < colon) || (size_t)(colon - host) >= sizeof endpoint->host)
        return -1;
    memcpy(endpoint->host, host, (size_t)(colon - host));
    endpoint->host[colon - host] = 0;
    endpoint->port = atoi(colon + 1);
    snprintf(endpoint->path, sizeof endpoint->path, "%s", slash ? slash : "/");
    return endpoint->port > 0 ? 0 : -1;
}

static int parse_host_port(const char *text, struct endpoint *endpoint) {
    char url[600];
    snprintf(url, sizeof url, "redis://%s", text);
    return parse_url(url, "redis://", endpoint);
}

static void set_defaults(struct options *opt) {
    memset(opt, 0, sizeof *opt);
    opt->connections = 1000;
    opt->per_worker = 19000;
    snprintf(opt->source_prefix, sizeof opt->source_prefix, "127.0.0.");
    opt->source_first = 10;
    opt->in_flight = 100;
    opt->timeout_s = 30;
    opt->settle_s = 2;
    opt->duration_s = 10;
    opt->messages = 100;
    opt->size = 64;
    opt->pipeline = 64;
    opt->drain_s = 5;
}

static int check(const struct options *opt, bool have_url) {
    const char *problem = !have_url                                    ? "--url is required"
                          : opt->connections < 1                       ? "--connections must be at least 1"
                          : opt->size < STAMP_BYTES                    ? "--size must be at least 32 (the stamp)"
                          : opt->per_worker < 1 || opt->in_flight < 1 ? "--per-worker and --in-flight must be positive"
                          : opt->mode == &mode_fanout && opt->messages < 1 ? "--messages must be at least 1"
                          : opt->mode == &mode_fanout && !opt->publish_http && !opt->channel[0]
                              ? "fanout needs --channel with --redis, or --publish-url"
                              : NULL;
    if (problem)
        fprintf(stderr, "loadgen: %s\n", problem);
    return problem ? -1 : 0;
}

int options_parse(struct options *opt, int argc, char **argv) {
    set_defaults(opt);
    if (argc < 2) {
        options_usage(stderr);
        return -1;
    }
    for (size_t i = 0; i < sizeof MODES / sizeof *MODES; i++)
        if (strcmp(argv[1], MODES[i]->name) == 0)
            opt->mode = MODES[i];
    if (!opt->mode) {
        fprintf(stderr, "loadgen: unknown mode '%s'\n", argv[1]);
        options_usage(stderr);
        return -1;
    }
    static const struct option long_options[] = {
        {"url", 1, 0, 'u'},         {"connections", 1, 0, 'n'}, {"workers", 1, 0, 'w'},      {"per-worker", 1, 0, 'W'},
        {"source", 1, 0, 's'},      {"rate", 1, 0, 'r'},        {"in-flight", 1, 0, 'k'},    {"timeout", 1, 0, 't'},
        {"settle", 1, 0, 'S'},      {"hold", 1, 0, 'H'},        {"duration", 1, 0, 'd'},     {"messages", 1, 0, 'm'},
        {"size", 1, 0, 'b'},        {"publish-rate", 1, 0, 'R'}, {"pipeline", 1, 0, 'P'},    {"drain", 1, 0, 'D'},
        {"redis", 1, 0, 'x'},       {"channel", 1, 0, 'c'},     {"publish-url", 1, 0, 'p'}, {"server-pid", 1, 0, 'i'},
        {"help", 0, 0, 'h'},        {0, 0, 0, 0}};
    bool have_url = false;
    snprintf(opt->redis.host, sizeof opt->redis.host, "127.0.0.1");
    opt->redis.port = 6379;
    optind = 2;
    int option;
    while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (option) {
        case 'u':
            if (parse_url(optarg, "ws://", &opt->target) != 0) {
                fprintf(stderr, "loadgen: --url must be ws://HOST:PORT/PATH\n");
                return -1;
            }
            have_url = true;
            break;
        case 'n': opt->connections = atoi(optarg); break;
        case 'w': opt->workers = atoi(optarg); break;
        case 'W': opt->per_worker = atoi(optarg); break;
        case 's':
            snprintf(opt->source_prefix, sizeof opt->source_prefix, "%s", strcmp(optarg, "none") == 0 ? "" : optarg);
            break;
        case 'r': opt->open_rate = atof(optarg); break;
        case 'k': opt->in_flight = atoi(optarg); break;
        case 't': opt->timeout_s = atof(optarg); break;
        case 'S': opt->settle_s = atof(optarg); break;
        case 'H': opt->hold_s = atof(optarg); break;
        case 'd': opt->duration_s = atof(optarg); break;
        case 'm': opt->messages = atoi(optarg); break;
        case 'b': opt->size = atoi(optarg); break;
        case 'R': opt->publish_rate = atof(optarg); break;
        case 'P': opt->pipeline = atoi(optarg); break;
        case 'D': opt->drain_s = atof(optarg); break;
        case 'x':
            if (parse_host_port(optarg, &opt->redis) != 0) {
                fprintf(stderr, "loadgen: --redis must be HOST:PORT\n");
                return -1;
            }
            break;
        case 'c': snprintf(opt->channel, sizeof opt->channel, "%s", optarg); break;
        case 'p':
            if (parse_url(optarg, "http://", &opt->publish_url) != 0) {
                fprintf(stderr, "loadgen: --publish-url must be http://HOST:PORT/PATH\n");
                return -1;
            }
            opt->publish_http = true;
            break;
        case 'i':
            if (opt->server_pid_count == MAX_SERVER_PIDS) {
                fprintf(stderr, "loadgen: at most %d --server-pid\n", MAX_SERVER_PIDS);
                return -1;
            }
            opt->server_pids[opt->server_pid_count++] = atoi(optarg);
            break;
        case 'h': options_usage(stdout); exit(0);
        default: options_usage(stderr); return -1;
        }
    }
    return check(opt, have_url);
}
