/* host.h: what the parts of ws4redis-host share. */
#ifndef WS4R_HOST_H
#define WS4R_HOST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "ws4redis.h"

struct MHD_Connection;
struct MHD_Daemon;
struct MHD_OptionItem;
struct pending;

/* The PEM text of --tls-cert and --tls-key (tls.c); both NULL: plain HTTP. Owned. */
struct tls_files {
    char *certificate;
    char *key;
};

/* The names this server answers for, against DNS rebinding and cross-origin requests to POST
   /publish (same_origin.c). The strings outlive the daemon (main() and the core own them). */
struct served_names {
    const char *listen_host;       /* --listen's host as given, e.g. "127.0.0.1" or "[::1]" */
    const char *allowed_origins;   /* the core's allowed_origins: comma-separated origins, or "" */
    bool tls;                      /* the server's own origin is https:// */
};

/* Everything a request handler needs. main() sets it up before the HTTP daemon starts and tears
   it down after the daemon stopped. In between MHD's thread is the only one that changes the
   publisher, so that needs no lock; calls on the server are serialized by the core. The core's
   threads (done callbacks of asynchronous handshake checks) touch only what `lock` guards. */
struct host {
    const ws4r_api *api;          /* every call into the core goes through this table */
    ws4r_server *server;
    ws4r_publisher *publisher;    /* for POST /publish; NULL until Redis could be reached */
    /* The core's effective settings (ws4r_server_setting(), owned by the server): */
    const char *redis_url;        /* for the publisher */
    const char *key_prefix;
    bool publish_endpoint;        /* POST /publish is served (publish_endpoint on) */
    bool serve_demo_page;         /* GET / is served (demo_page on) */
    bool serve_metrics;           /* GET /metrics is served here (metrics on, no metrics_listen) */
    size_t max_publish_body;      /* max_message_size: a POST /publish body is a message too */
    struct served_names served_names;
    char *demo_page;              /* the HTML served at "/", from demo_page_render(); owned; NULL when off */
    /* Handshakes waiting for the core's decision, their connections suspended in MHD. Lock order:
       `lock`, then MHD's internal locks (MHD_suspend/resume_connection() are called under it). */
    pthread_mutex_t lock;
    struct pending *suspended;    /* list of the waiting ones */
    bool stopping;                /* set by http_quiesce(): no more suspending */
    /* With TLS, MHD relays an upgraded connection through a socketpair for as long as the core
       holds the websocket: its upgrade handle is released only when the core is done (upgrade.c). */
    struct tls_files tls;
};

/* Creates host->publisher unless it exists. On failure returns the status, with the reason in
   `error`, and leaves host->publisher NULL, so that a later call tries again. */
int publisher_connect(struct host *host, char *error, size_t size);

/* Initializes and frees what upgrade.c keeps in struct host (the lock). */
void http_init(struct host *host);
void http_destroy(struct host *host);

/* 0 when the libmicrohttpd running (its MHD_get_version()) is one whose request layout the
   checks for NUL bytes (nul_checks.c) were verified against, as is the one the host was built with; else -1 with
   the reason in `reason`. */
int http_check_mhd_version(const char *running, char *reason, size_t size);

/* Starts the HTTP daemon (own polling thread) on `address` (routes.c); NULL on failure (MHD logged
   why). After ws4r_server_start(): each connection's request heads are watched by the core. */
struct MHD_Daemon *http_start(struct host *host, const struct sockaddr *address);

/* Before MHD_stop_daemon() (which must not meet a suspended connection): resumes every connection
   still waiting for a handshake decision (they get 503) and makes later handshakes answer 503 at
   once. Decisions that arrive afterwards are dropped. Any thread but MHD's. */
void http_quiesce(struct host *host);

/* Reads both PEM files; both paths NULL: plain HTTP (tls stays empty). 0, or -1 with the reason
   printed (a file unreadable, no TLS in libmicrohttpd). */
int tls_load(struct tls_files *tls, const char *certificate_path, const char *key_path);
/* Frees and clears; accepts an empty one. After the daemon stopped. */
void tls_free(struct tls_files *tls);
bool tls_enabled(const struct tls_files *tls);
/* Fills `options` (TLS_DAEMON_OPTIONS items, MHD_OPTION_END-terminated, for MHD_OPTION_ARRAY) and
   returns the daemon flags that serve HTTPS with `tls`; for plain HTTP no options and no flags. */
enum { TLS_DAEMON_OPTIONS = 3 };
unsigned tls_daemon_options(const struct tls_files *tls, struct MHD_OptionItem *options);

/* Why a request to POST /publish does not come from this server's own origin, or NULL when it
   does: a Host header this server does not answer for (the listen address, the socket's local
   address, localhost, the hosts of allowed_origins; *status 421: DNS rebinding), or an Origin
   other than the server's own or one of allowed_origins, or Sec-Fetch-Site cross-site or
   same-site without such an Origin (*status 403). Requests without Origin (not from a browser)
   pass the Origin check. The reason is static. */
const char *cross_origin_refusal(const struct served_names *names, struct MHD_Connection *connection, unsigned *status);

/* What the demo page needs of the core's settings. */
struct demo_settings {
    const char *url_prefix;
    const char *heartbeat;            /* the heartbeat string; empty: off */
    const char *heartbeat_interval;   /* ms, as validated by the core */
};

/* The demo page: a chat on a broadcast facility and, for a browser with an identity token, its
   user's notifications, with the JS client of static_assets.c. Free it with free(); NULL when out
   of memory. */
char *demo_page_render(const struct demo_settings *settings);

/* Builds the file at `path` into the binary's .rodata, between name##_start and name##_end: the
   assembler's .incbin copies it at build time (C has no #embed before C23). The path is relative to
   the repository root, which the build puts on the assembler's include path (-Wa,-I). The labels
   are local to the object, so they are hidden: references must not go through the GOT. */
#define HOST_EMBED(name, path)                                                                         \
    __asm__(".pushsection .rodata\n" #name "_start:\n.incbin \"" path "\"\n" #name "_end:\n.popsection\n"); \
    extern const char name##_start[] __attribute__((visibility("hidden")));                            \
    extern const char name##_end[] __attribute__((visibility("hidden")))

/* A file built into the binary (static_assets.c), served as it is. */
struct static_asset {
    const char *content_type;
    const char *bytes;
    size_t size;
};

/* Fills `asset` and returns true when a built-in file is served at `path`. */
bool static_asset_find(const char *path, struct static_asset *asset);

#endif /* WS4R_HOST_H */
