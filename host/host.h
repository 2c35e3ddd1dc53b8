/* host.h: what the parts of ws4redis-host share. */
#ifndef WS4R_HOST_H
#define WS4R_HOST_H

#include <stddef.h>
#include <sys/socket.h>

#include "ws4redis.h"

struct MHD_Daemon;

/* Everything a request handler needs. main() sets it up before the HTTP daemon starts and tears
   it down after the daemon stopped; in between only MHD's thread changes it (the publisher), so it
   needs no lock. Calls on the server itself are serialized by the core. */
struct host {
    const ws4r_api *api;          /* every call into the core goes through this table */
    ws4r_server *server;
    ws4r_publisher *publisher;    /* for POST /publish; NULL until Redis could be reached */
    const char *redis_url;        /* for the publisher: NULL is the core's default */
    const char *key_prefix;
    const char *url_prefix;       /* websocket paths start with this, e.g. "/ws/" */
    const char *echo_path;        /* the core's echo endpoint, or NULL */
    char *demo_page;              /* the HTML served at "/", from demo_page_render(); owned */
};

/* Creates host->publisher unless it exists. On failure returns the status, with the reason in
   `error`, and leaves host->publisher NULL, so that a later call tries again. */
int publisher_connect(struct host *host, char *error, size_t size);

/* Starts the HTTP daemon (own polling thread) on `address`; NULL on failure (MHD logged why). */
struct MHD_Daemon *http_start(struct host *host, const struct sockaddr *address);

/* The demo chat page talking to websockets under `url_prefix`. Free it with free(); NULL when
   out of memory. */
char *demo_page_render(const char *url_prefix);

#endif /* WS4R_HOST_H */
