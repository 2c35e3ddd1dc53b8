/* One worker process: its share of the sockets on one epoll instance, bound to its own source
 * address, driven by the mode's hooks until the coordinator says stop. */
#include "loadgen.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

enum { READ_BUFFER = 256 * 1024, EVENTS = 512, TICK_MS = 10, TIMEOUT_SCAN_NS = 250 * 1000 * 1000 };

int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int resolve(const char *host, int port, struct sockaddr_in *address) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *found;
    if (getaddrinfo(host, NULL, &hints, &found) != 0)
        return -1;
    *address = *(struct sockaddr_in *)found->ai_addr;
    address->sin_port = htons((uint16_t)port);
    freeaddrinfo(found);
    return 0;
}

static int setup(struct worker *w, int index, int workers, const struct options *opt, struct shared *shared) {
    memset(w, 0, sizeof *w);
    w->index = index;
    w->opt = opt;
    w->shared = shared;
    w->result = &shared->results[index];
    w->share = opt->connections / workers + (index < opt->connections % workers);
    w->conns = calloc((size_t)w->share + 1, sizeof *w->conns);
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (!w->conns || w->epoll_fd < 0 || resolve(opt->target.host, opt->target.port, &w->target) != 0)
        return -1;
    for (int i = 0; i < w->share; i++)
        w->conns[i].fd = -1;
    if (opt->source_prefix[0]) {
        char source[32];
        snprintf(source, sizeof source, "%s%d", opt->source_prefix, opt->source_first + index);
        w->source.sin_family = AF_INET;
        if (inet_pton(AF_INET, source, &w->source.sin_addr) != 1)
            return -1;
        w->bind_source = true;
    }
    w->request_length = (size_t)asprintf(&w->request,
                                         "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                                         opt->target.path, opt->target.host, opt->target.port);
    w->open_interval_ns = opt->open_rate > 0 ? (int64_t)(1e9 * workers / opt->open_rate) : 0;
    w->next_open_ns = now_ns();
    w->next_port = (uint16_t)(1024 + (uint64_t)now_ns() % 60000); /* runs in a row start apart */
    w->mask_state = (uint64_t)now_ns() ^ ((uint64_t)index << 48);
    return 0;
}

void worker_open_due(struct worker *w, int64_t now) {
    while (w->started < w->share && w->in_flight < w->opt->in_flight && now >= w->next_open_ns) {
        conn_start(w, &w->conns[w->started++]);
        w->next_open_ns += w->open_interval_ns;
    }
}

static void check_timeouts(struct worker *w, int64_t now) {
    for (int i = 0; i < w->started && w->in_flight > 0; i++)
        conn_check_timeout(w, &w->conns[i], now);
}

static double own_cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_stime.tv_sec +
           ((double)usage.ru_utime.tv_usec + (double)usage.ru_stime.tv_usec) / 1e6;
}

/* Held sockets end with a reset, not a FIN: tens of thousands of explicitly bound ports would
 * otherwise sit in TIME_WAIT for a minute, and while they do the kernel gives no connect() on this
 * machine an ephemeral port (the next scenario's servers could not reach Redis). */
static void reset_held(struct worker *w) {
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    for (int i = 0; i < w->started; i++) {
        if (w->conns[i].fd < 0)
            continue;
        setsockopt(w->conns[i].fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        conn_release(w, &w->conns[i]);
    }
}

int worker_run(int index, int workers, const struct options *opt, struct shared *shared) {
    struct worker w;
    uint8_t *buffer = malloc(READ_BUFFER);
    if (!buffer || setup(&w, index, workers, opt, shared) != 0) {
        fprintf(stderr, "loadgen worker %d: cannot set up (target %s:%d, source %s%d)\n", index, opt->target.host,
                opt->target.port, opt->source_prefix, opt->source_first + index);
        atomic_store(&shared->results[index].finished, 1);
        return 1;
    }
    struct epoll_event events[EVENTS];
    int64_t next_timeout_scan = now_ns() + TIMEOUT_SCAN_NS;
    bool finished = false;
    while (atomic_load_explicit(&shared->phase, memory_order_acquire) != PHASE_STOP) {
        int count = epoll_wait(w.epoll_fd, events, EVENTS, TICK_MS);
        for (int i = 0; i < count; i++)
            conn_event(&w, events[i].data.ptr, events[i].events, buffer, READ_BUFFER);
        int64_t now = now_ns();
        if (now >= next_timeout_scan) {
            check_timeouts(&w, now);
            next_timeout_scan = now + TIMEOUT_SCAN_NS;
        }
        opt->mode->worker_tick(&w, now);
        if (!finished && opt->mode->worker_done(&w, now)) {
            finished = true;
            atomic_store_explicit(&w.result->finished, 1, memory_order_release);
        }
    }
    opt->mode->worker_finish(&w);
    reset_held(&w);
    w.result->cpu_s = own_cpu_seconds();
    return 0;
}
