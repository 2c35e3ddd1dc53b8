/* The load generator's shared types: options, the results each worker process writes into shared
 * memory, the websocket connection, the worker's event loop and the hooks of a mode. */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histogram.h"
#include "procstat.h"

enum { MAX_SERVER_PIDS = 32 };

struct endpoint {
    char host[64];
    int port;
    char path[512];
};

struct options {
    const struct mode *mode;
    struct endpoint target;  /* ws://host:port/path of every websocket */
    int connections;         /* subscribers, idle sockets, echo sockets, or concurrent handshakes */
    int workers;             /* worker processes; 0: as many as per_worker requires */
    int per_worker;          /* most sockets one worker holds (the fd limit is per process) */
    char source_prefix[16];  /* worker i binds source_prefix + (source_first + i); empty: no bind */
    int source_first;
    double open_rate;        /* sockets opened per second over all workers; 0: as fast as in_flight allows */
    int in_flight;           /* handshakes under way per worker at most */
    double timeout_s;        /* longest handshake */
    double settle_s, hold_s; /* idle: wait before sampling the server, then hold the sockets */
    double duration_s;       /* connect, echo */
    int messages, size;      /* fanout: M messages of B bytes; echo: message size */
    double publish_rate;     /* fanout messages per second; 0: as fast as the publisher goes */
    int pipeline;            /* publishes in flight at full speed */
    double drain_s;          /* fanout: end this long after the last delivery once all is published */
    struct endpoint redis;   /* fanout via PUBLISH channel on this Redis ... */
    char channel[256];
    bool publish_http;       /* ... or via HTTP POST to publish_url (Nchan) */
    struct endpoint publish_url;
    int server_pids[MAX_SERVER_PIDS];
    int server_pid_count;
};

enum phase { PHASE_OPENING, PHASE_RUN, PHASE_PUBLISHED, PHASE_STOP };

enum failure {
    FAIL_CONNECT,   /* connect() refused or errored */
    FAIL_HANDSHAKE, /* an answer other than a valid 101 */
    FAIL_CLOSED,    /* the server closed or reset before the 101 */
    FAIL_TIMEOUT,   /* no 101 within timeout_s */
    FAIL_KINDS
};

struct worker_result {
    _Atomic long opened, failed, probed, handshakes, round_trips;
    _Atomic int finished;
    long failures[FAIL_KINDS];
    char first_refusal[80]; /* the status line of the first answer that was not a valid 101 */
    _Atomic long closed_after_open; /* open sockets the server closed or reset */
    long deliveries, lost, duplicated, reordered;
    int64_t first_rx_ns, last_rx_ns;
    double cpu_s;
    struct histogram connect_us, latency_us;
};

struct shared {
    _Atomic int phase;
    _Atomic int64_t run_started_ns, published_ns;
    struct worker_result results[];
};

/* The first bytes of each fan-out and echo message: sequence number and send time (CLOCK_MONOTONIC),
 * both 16 hex digits; readiness probes start with 'p' instead. */
enum { STAMP_BYTES = 32, CONTROL_MAX = 125 };

enum conn_state { CONN_FREE, CONN_CONNECTING, CONN_HANDSHAKE, CONN_OPEN, CONN_CLOSING };

struct conn {
    int fd;
    uint8_t state;
    uint8_t header_length, opcode, message_opcode;
    bool fin, in_payload;
    uint8_t header[14];
    uint64_t remaining;     /* payload bytes of the current frame still to come */
    uint64_t message_bytes; /* payload bytes of the current message so far */
    uint8_t stamp_length, control_length;
    uint8_t stamp[STAMP_BYTES];
    uint8_t control[CONTROL_MAX];
    char *response; /* the HTTP answer while the handshake is under way */
    uint16_t response_length;
    uint8_t *outbox; /* bytes the socket did not take at once */
    uint32_t outbox_length;
    int64_t started_ns;
    /* per mode */
    bool probed, complete;
    uint32_t received;
    int64_t max_seq;
    uint64_t *seen; /* fanout: one bit per sequence number */
};

struct worker;
struct json;

/* The coordinator's view of one run. */
struct run {
    const struct options *opt;
    struct shared *shared;
    int workers;
    struct worker_result total; /* the workers' results added up, once they have exited */
    struct proc_sample server_before, server_held, server_after;
    int64_t window_start_ns, window_end_ns; /* what rates are computed over */
    long window_count;                      /* connect, echo: handshakes or round trips in the window */
    const char *error;                      /* why the run stopped short, or NULL */
};

struct mode {
    const char *name;
    bool cycles_sockets; /* sockets are opened and closed again and again (connect) rather than held */
    /* In the worker process. */
    void (*worker_tick)(struct worker *, int64_t now_ns);
    bool (*worker_done)(struct worker *, int64_t now_ns);
    void (*worker_finish)(struct worker *); /* the last figures, before the process exits */
    void (*on_open)(struct worker *, struct conn *);
    void (*on_message)(struct worker *, struct conn *, int64_t now_ns);
    void (*on_closed)(struct worker *, struct conn *); /* an open socket closed by the server */
    /* In the coordinator, after the workers are forked: drives the phases, samples the server. */
    int (*coordinate)(struct run *);
    /* The mode's figures: one human line and its fields of the JSON object. */
    void (*report)(const struct run *, struct json *);
};

struct worker {
    int index;
    const struct options *opt;
    struct shared *shared;
    struct worker_result *result;
    int epoll_fd;
    struct conn *conns;
    int share;   /* sockets this worker opens (idle, fanout, echo) or keeps cycling (connect) */
    int started; /* sockets started so far */
    int in_flight, open_count;
    int completed; /* fanout: sockets that got every message */
    struct sockaddr_in target, source;
    bool bind_source;
    uint16_t next_port; /* the source port of the next held socket */
    int64_t next_open_ns, open_interval_ns;
    char *request;
    size_t request_length;
    uint64_t mask_state;
};

/* ws.c: the websocket client */
int conn_start(struct worker *w, struct conn *c);
void conn_event(struct worker *w, struct conn *c, uint32_t events, uint8_t *buffer, size_t capacity);
int conn_send(struct worker *w, struct conn *c, uint8_t opcode, const void *payload, size_t length);
void conn_send_close(struct worker *w, struct conn *c);
void conn_release(struct worker *w, struct conn *c);
void conn_check_timeout(struct worker *w, struct conn *c, int64_t now_ns);

/* worker.c */
int64_t now_ns(void);
int worker_run(int index, int workers, const struct options *opt, struct shared *shared);
/* Starts sockets while under the worker's share, its in-flight bound and the open rate. */
void worker_open_due(struct worker *w, int64_t now_ns);

/* stamp.c: the sequence-and-time prefix */
void stamp_write(uint8_t *payload, size_t size, uint64_t seq, int64_t sent_ns);
bool stamp_read(const uint8_t *stamp, size_t length, uint64_t *seq, int64_t *sent_ns);
bool stamp_is_probe(const uint8_t *stamp, size_t length);

extern const struct mode mode_idle, mode_fanout, mode_connect, mode_echo;

#endif
