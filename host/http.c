/* http.c: the HTTP side of ws4redis-host on libmicrohttpd (MHD): routing, the demo endpoints, and
   the websocket handshake with the hand-over of upgraded sockets to the core.
   Except http_start() and publisher_connect() at start-up, http_quiesce() at shutdown and
   handshake_decided() (a core thread), everything here runs on MHD's polling thread. */
#include "host.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TEXT "text/plain; charset=utf-8"
#define HTML "text/html; charset=utf-8"
#define JSON "application/json"

enum {
    /* MHD's default limit is FD_SETSIZE - 4. MHD holds a socket only until the handshake is done
       (see hand_over()), so this bounds concurrent plain HTTP requests, not websockets (with
       TLS it holds every websocket's connection too: TLS websockets count). */
    CONNECTION_LIMIT = 100000,
    /* Idle HTTP connections (e.g. a stalled POST body) are closed after this; a request head
       must be complete within the core's handshake_timeout (deadline.c). */
    HTTP_TIMEOUT_SECONDS = 30,
    /* Largest POST /publish body: the core's default limit for a websocket message. */
    MAX_PUBLISH_BODY = 1 << 20,
};

/*
 * A handshake the core decides asynchronously (an identity source may take seconds), shared by
 * the request (MHD's thread) and the core's done callback (a core thread); freed when both let go.
 * While it waits, MHD has the connection suspended: out of its poll set and its timeout lists,
 * so MHD neither times it out nor notices a client that hangs up, and never frees it (in
 * libmicrohttpd 0.9.75 only MHD_stop_daemon() could, and that panics on a suspended connection:
 * http_quiesce() resumes them first). MHD_resume_connection() is safe on any thread (it takes
 * MHD's cleanup mutex and wakes MHD's thread through its inter-thread channel). Still, the done
 * callback resumes the connection only under host->lock and only while `connection` is set, and
 * whoever clears `connection` (the callback, end_request(), http_quiesce()) does so under that
 * lock: so no code path can touch a connection that MHD completed.
 */
struct pending {
    atomic_int references;              /* the request's and the done callback's */
    struct host *host;
    /* Under host->lock: */
    struct MHD_Connection *connection;  /* suspended and waiting; NULL once resumed or gone */
    bool asking;                        /* start_check() is still in server_check_handshake_async() */
    ws4r_handshake *handshake;          /* the decision, from the callback until the request takes it */
    struct pending *previous, *next;    /* in host->suspended while `connection` is set */
};

/* One per HTTP request: created by begin_request() (MHD's URI log callback, the only place that
   sees the raw query string) and freed by end_request() (MHD's request-completed callback). */
struct request {
    char *query;                 /* raw query without '?', NULL when the URI has none */
    struct pending *pending;     /* a handshake the core is deciding or decided */
    bool resumed;                /* the access handler ran again after `pending` was resumed */
    int check_status;            /* WS4R_OK, or why the core could not take the check */
    bool head_complete;          /* the access handler ran: the handshake deadline is met */
    bool nul_in_target;          /* a NUL byte in the target, or %00 in its path: refused with 400 */
    bool nul_in_head;            /* a NUL byte in a header (or a head laid out otherwise): 400 */
    ws4r_handshake *handshake;   /* accepted, from the queued 101 until hand_over() takes it */
    bool receiving;              /* POST /publish: headers accepted, collecting the body */
    bool body_too_large;
    char *body;
    size_t body_length;
};

/* The deadline entry of the TCP connection (see deadline.c), or NULL. */
static struct arrival *connection_arrival(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info != NULL ? info->socket_context : NULL;
}

/* ---- Responses ---- */

/* A response carrying `size` bytes of `body` (copied or not, by `mode`), or NULL when out of memory. */
static struct MHD_Response *typed_response(const char *content_type, const void *body, size_t size,
                                           enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *response = MHD_create_response_from_buffer(size, (void *)body, mode);
    if (response != NULL && MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES) {
        MHD_destroy_response(response);
        return NULL;
    }
    return response;
}

/* A response carrying a copy of `body`, or NULL when out of memory. */
static struct MHD_Response *text_response(const char *content_type, const char *body) {
    return typed_response(content_type, body, strlen(body), MHD_RESPMEM_MUST_COPY);
}

/* Queues `response` and drops our reference. NULL (out of memory) closes the connection. */
static enum MHD_Result send_response(struct MHD_Connection *connection, unsigned status, struct MHD_Response *response) {
    if (response == NULL)
        return MHD_NO;
    enum MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

static enum MHD_Result reply(struct MHD_Connection *connection, unsigned status, const char *content_type,
                             const char *body) {
    return send_response(connection, status, text_response(content_type, body));
}

static enum MHD_Result reply_method_not_allowed(struct MHD_Connection *connection, const char *allow) {
    struct MHD_Response *response = text_response(TEXT, "method not allowed\n");
    if (response != NULL && MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES) {
        MHD_destroy_response(response);
        response = NULL;
    }
    return send_response(connection, MHD_HTTP_METHOD_NOT_ALLOWED, response);
}

static bool is_get(const char *method) {
    /* MHD leaves out the body of a HEAD response itself. */
    return strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}

/* ---- GET /metrics: the core's Prometheus text ---- */

static enum MHD_Result serve_metrics(struct host *host, struct MHD_Connection *connection) {
    size_t length = 0;
    char *text = NULL;
    int status;
    /* A new series (e.g. a first handshake with some status) may lengthen the text between calls. */
    do {
        free(text);
        text = malloc(length + 1);
        status = text != NULL ? host->api->server_metrics(host->server, text, length + 1, &length) : WS4R_ENOMEM;
    } while (status == WS4R_ELIMIT);
    if (status != WS4R_OK) {
        free(text);
        return reply(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT, "cannot read the server's figures\n");
    }
    return send_response(connection, MHD_HTTP_OK, typed_response(WS4R_METRICS_CONTENT_TYPE, text, length, MHD_RESPMEM_MUST_FREE));
}

/* ---- GET /healthz ---- */

static enum MHD_Result serve_health(struct host *host, struct MHD_Connection *connection) {
    ws4r_stats stats;
    host->api->stats_init(&stats);
    if (host->api->server_stats(host->server, &stats) != WS4R_OK)
        return reply(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT, "cannot read the server's figures\n");
    char json[640];
    snprintf(json, sizeof json,
             "{\"status\":\"%s\",\"redis_connected\":%s,\"connections\":%" PRIu64 ",\"connections_total\":%" PRIu64
             ",\"subscriptions\":%" PRIu64 ",\"channels\":%" PRIu64 ",\"messages_in\":%" PRIu64
             ",\"messages_out\":%" PRIu64 ",\"client_messages_in\":%" PRIu64 ",\"slow_client_closes\":%" PRIu64 ",\"messages_dropped\":%" PRIu64 "}\n",
             stats.redis_connected ? "ok" : "degraded", stats.redis_connected ? "true" : "false", stats.connections,
             stats.connections_total, stats.subscriptions, stats.channels, stats.messages_in, stats.messages_out,
             stats.client_messages_in, stats.slow_client_closes, stats.messages_dropped);
    /* 200 even when degraded: the host serves, and the core reconnects to Redis by itself. */
    return reply(connection, MHD_HTTP_OK, JSON, json);
}

/* ---- POST /publish?facility=F ---- */

/* Appends a chunk of the body; false when out of memory. Past MAX_PUBLISH_BODY it only notes
   that the body is too large and lets MHD drain the rest. */
static bool collect_body(struct request *request, const char *data, size_t size) {
    if (request->body_too_large)
        return true;
    if (size > MAX_PUBLISH_BODY - request->body_length) {
        request->body_too_large = true;
        return true;
    }
    char *body = realloc(request->body, request->body_length + size);
    if (body == NULL)
        return false;
    memcpy(body + request->body_length, data, size);
    request->body = body;
    request->body_length += size;
    return true;
}

/* Redis failed: 502 with the reason. */
static enum MHD_Result reply_bad_gateway(struct MHD_Connection *connection, const char *reason) {
    char body[1100];
    snprintf(body, sizeof body, "%s\n", reason);
    return reply(connection, MHD_HTTP_BAD_GATEWAY, TEXT, body);
}

int publisher_connect(struct host *host, char *error, size_t size) {
    if (host->publisher != NULL)
        return WS4R_OK;
    ws4r_publisher *publisher = NULL;
    int status = host->api->publisher_create(host->redis_url, host->key_prefix, &publisher);
    if (status == WS4R_OK) {
        host->publisher = publisher;
        return WS4R_OK;
    }
    /* A handle from a failed create only explains the failure; it cannot publish. */
    snprintf(error, size, "%s", publisher != NULL ? host->api->publisher_errmsg(publisher) : host->api->strerror(status));
    host->api->publisher_destroy(publisher);
    return status;
}

/* Publishes the collected body to the broadcast channel of `facility`. */
static enum MHD_Result publish(struct host *host, struct MHD_Connection *connection, const char *facility,
                               const struct request *request) {
    char error[1024];
    if (publisher_connect(host, error, sizeof error) != WS4R_OK)
        return reply_bad_gateway(connection, error);
    ws4r_audience audience;
    host->api->audience_init(&audience);
    audience.facility = facility;
    audience.broadcast = 1;
    uint64_t receivers = 0;
    /* Expire 0: the demo chat is live only; nothing is stored for later subscribers. */
    if (host->api->publisher_publish(host->publisher, &audience, request->body != NULL ? request->body : "",
                                     request->body_length, 0, &receivers) != WS4R_OK)
        return reply_bad_gateway(connection, host->api->publisher_errmsg(host->publisher));
    char json[64];
    snprintf(json, sizeof json, "{\"receivers\":%" PRIu64 "}\n", receivers);
    return reply(connection, MHD_HTTP_OK, JSON, json);
}

/* MHD calls this once for the headers, once per body chunk, and once more at the end. */
static enum MHD_Result serve_publish(struct host *host, struct MHD_Connection *connection, struct request *request,
                                     const char *method, const char *upload_data, size_t *upload_data_size) {
    const char *facility = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "facility");
    if (!request->receiving) {
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            return reply_method_not_allowed(connection, MHD_HTTP_METHOD_POST);
        unsigned status;
        const char *refusal = cross_origin_refusal(&host->served_names, connection, &status);
        if (refusal != NULL)
            return reply(connection, status, TEXT, refusal);
        if (facility == NULL || facility[0] == '\0')
            return reply(connection, MHD_HTTP_BAD_REQUEST, TEXT, "missing query parameter: facility\n");
        request->receiving = true;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        bool stored = collect_body(request, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return stored ? MHD_YES : MHD_NO;
    }
    if (request->body_too_large)
        return reply(connection, MHD_HTTP_CONTENT_TOO_LARGE, TEXT, "message too large\n");
    return publish(host, connection, facility, request);
}

/* ---- Websocket handshake and hand-over ---- */

struct header_list {
    ws4r_header *items;
    size_t count;
    size_t capacity;
};

/* MHD_KeyValueIterator collecting the request headers, in their order. */
static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *name, const char *value) {
    (void)kind;
    struct header_list *list = cls;
    if (list->count == list->capacity)
        return MHD_NO;
    list->items[list->count++] = (ws4r_header){ .name = name, .value = value != NULL ? value : "" };
    return MHD_YES;
}

/* "address:port" of the client for the core's logs, or NULL. */
static const char *describe_peer(struct MHD_Connection *connection, char *buffer, size_t size) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (info == NULL || info->client_addr == NULL)
        return NULL;
    const struct sockaddr *address = info->client_addr;
    bool v6 = address->sa_family == AF_INET6;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    if (getnameinfo(address, v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in), host, sizeof host, port,
                    sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return NULL;
    snprintf(buffer, size, v6 ? "[%s]:%s" : "%s:%s", host, port);
    return buffer;
}

/* Whether MHD sets this header itself: Content-Length always (and refuses it from the
   application), "Connection: Upgrade" in MHD_create_response_for_upgrade() (adding it again would
   send "Connection: Upgrade, Upgrade"). */
static bool set_by_mhd(struct MHD_Response *response, const char *name, const char *value) {
    const char *existing = MHD_get_response_header(response, name);
    return strcasecmp(name, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0 || (existing != NULL && strcasecmp(existing, value) == 0);
}

/* Copies the handshake's response headers onto `response`; false if MHD refuses one. */
static bool add_handshake_headers(const ws4r_api *api, const ws4r_handshake *handshake, struct MHD_Response *response) {
    size_t count = api->handshake_header_count(handshake);
    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        if (api->handshake_header(handshake, i, &name, &value) != WS4R_OK)
            return false;
        if (!set_by_mhd(response, name, value) && MHD_add_response_header(response, name, value) != MHD_YES)
            return false;
    }
    return true;
}

/* Gives the upgraded socket to the core as a descriptor of its own; consumes `handshake`.
   `release` (may be NULL) runs once the core closed that descriptor, at once if it never got it. */
static void adopt(struct host *host, ws4r_handshake *handshake, MHD_socket sock, const char *extra_in,
                  size_t extra_in_size, ws4r_release_fn release, void *context) {
    /* Close-on-exec like MHD's own sockets. */
    int fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        perror("ws4redis-host: cannot duplicate an upgraded socket");
        host->api->handshake_free(handshake);
        if (release != NULL)
            release(context);
        return;
    }
    int status = host->api->server_adopt(host->server, handshake, fd, extra_in, extra_in_size, release, context);
    /* On failure the core closed `fd` already, and the client sees the connection end. WS4R_ESTATE
       means main() is stopping the server: nothing to report. strerror(), not server_errmsg(),
       because that stop runs on another thread and may replace the message meanwhile. */
    if (status != WS4R_OK && status != WS4R_ESTATE)
        fprintf(stderr, "ws4redis-host: cannot hand a websocket over: %s\n", host->api->strerror(status));
}

/*
 * MHD's upgrade handler: MHD calls it on its thread once the 101 went out. The core gets its own
 * descriptor (a dup) and MHD is told at once that we are done with its one: for a plain (non-TLS)
 * connection MHD then only close()s its descriptor, never shutdown()s the socket, so the
 * connection lives on through the core's descriptor while MHD forgets it. That keeps one
 * descriptor per websocket in this process instead of two, and MHD's connection limit counts
 * HTTP requests only. libmicrohttpd 0.9.75: MHD_upgrade_action(CLOSE) -> MHD_resume_connection();
 * resume_suspended_connections() puts the connection on the cleanup list, and
 * MHD_cleanup_connections() -> cleanup_upgraded_connection() (TLS-only work) + close(). The socket
 * already left MHD's epoll set when MHD suspended the connection for the upgrade, so MHD sees no
 * events of the core's descriptor.
 * With TLS, `sock` is the application's end of a socketpair whose other end MHD's thread relays
 * to and from the TLS session, and MHD_upgrade_action(CLOSE) shutdown()s that socket, ending the
 * relay. So the handle is released only when the core is done with the websocket
 * (release_upgrade(), from the core's release callback); ws4r_server_stop() runs every release
 * callback, which main() calls before MHD_stop_daemon(). Such a websocket costs four descriptors
 * here: the TCP socket, both ends of the pair, and the core's dup.
 */
static void release_upgrade(void *urh) {
    /* Any thread: MHD_upgrade_action(CLOSE) wakes MHD's thread through MHD_resume_connection(). */
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static void hand_over(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in,
                      size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
    struct host *host = cls;
    struct request *request = con_cls;
    ws4r_handshake *handshake = request->handshake;
    request->handshake = NULL;
    /* The socket is the core's from now on: the watcher must never shut it down. */
    deadline_hand_over(&host->deadlines, connection_arrival(connection));
    if (tls_enabled(&host->tls)) {
        adopt(host, handshake, sock, extra_in, extra_in_size, release_upgrade, urh);
        return;
    }
    adopt(host, handshake, sock, extra_in, extra_in_size, NULL, NULL);
    /* After adopt(): extra_in lives in the connection's memory, which MHD frees after the close. */
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static enum MHD_Result accept_upgrade(struct host *host, struct MHD_Connection *connection, struct request *request,
                                      ws4r_handshake *handshake) {
    /* Kept on the request until hand_over() takes it; end_request() frees it if the 101 never
       goes out (e.g. the client hung up first). */
    request->handshake = handshake;
    struct MHD_Response *response = MHD_create_response_for_upgrade(hand_over, host);
    if (response != NULL && !add_handshake_headers(host->api, handshake, response)) {
        MHD_destroy_response(response);
        response = NULL;
    }
    return send_response(connection, MHD_HTTP_SWITCHING_PROTOCOLS, response);
}

static enum MHD_Result refuse_upgrade(struct host *host, struct MHD_Connection *connection, ws4r_handshake *handshake) {
    const ws4r_api *api = host->api;
    const char *body = api->handshake_body(handshake);
    struct MHD_Response *response = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    bool complete = response != NULL && add_handshake_headers(api, handshake, response) &&
                    (MHD_get_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE) != NULL ||
                     MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, TEXT) == MHD_YES);
    if (response != NULL && !complete) {
        MHD_destroy_response(response);
        response = NULL;
    }
    /* The status line gets MHD's reason phrase: MHD has no way to send handshake_reason(). */
    enum MHD_Result queued = send_response(connection, (unsigned)api->handshake_status(handshake), response);
    api->handshake_free(handshake);
    return queued;
}

/* ---- Asynchronous decisions ---- */

static void pending_release(struct pending *pending) {
    if (atomic_fetch_sub(&pending->references, 1) != 1)
        return;
    /* A decision nobody took: the request ended first. */
    pending->host->api->handshake_free(pending->handshake);
    free(pending);
}

/* Takes `pending` off the waiting list and returns its connection for resuming. Under host->lock. */
static struct MHD_Connection *detach(struct host *host, struct pending *pending) {
    struct MHD_Connection *connection = pending->connection;
    if (connection == NULL)
        return NULL;
    if (pending->previous != NULL)
        pending->previous->next = pending->next;
    else
        host->suspended = pending->next;
    if (pending->next != NULL)
        pending->next->previous = pending->previous;
    pending->previous = pending->next = NULL;
    pending->connection = NULL;
    return connection;
}

/* The core's done callback (ws4r_handshake_fn): on a core thread, or on MHD's thread before
   server_check_handshake_async() returns. Keeps the decision; a suspended connection is woken,
   and its next access-handler call answers it, one not suspended yet is answered by start_check(). */
static void handshake_decided(void *context, ws4r_handshake *handshake) {
    struct pending *pending = context;
    struct host *host = pending->host;
    pthread_mutex_lock(&host->lock);
    struct MHD_Connection *connection = detach(host, pending);
    if (connection != NULL || pending->asking) {
        pending->handshake = handshake;
        handshake = NULL;
    }
    if (connection != NULL)
        MHD_resume_connection(connection);
    pthread_mutex_unlock(&host->lock);
    /* Nobody waits any more (the request ended, or http_quiesce() answered it). */
    host->api->handshake_free(handshake);
    pending_release(pending);
}

static enum MHD_Result answer_check(struct host *host, struct MHD_Connection *connection, struct request *request);

/* Asks the core, and answers at once when it decides during the call (no identity source to ask:
   the common case, without a suspend and a wake-up); otherwise suspends the connection, and the
   handler runs again when the decision is in. */
static enum MHD_Result start_check(struct host *host, struct MHD_Connection *connection, struct request *request,
                                   const ws4r_request *websocket) {
    struct pending *pending = calloc(1, sizeof *pending);
    if (pending == NULL)
        return MHD_NO;
    atomic_init(&pending->references, 2);
    pending->host = host;
    pthread_mutex_lock(&host->lock);
    if (host->stopping) {
        pthread_mutex_unlock(&host->lock);
        free(pending);
        return reply(connection, MHD_HTTP_SERVICE_UNAVAILABLE, TEXT, "the server is shutting down\n");
    }
    pending->asking = true;
    pthread_mutex_unlock(&host->lock);
    request->pending = pending;

    int status = host->api->server_check_handshake_async(host->server, websocket, handshake_decided, pending);
    pthread_mutex_lock(&host->lock);
    pending->asking = false;
    /* Also when http_quiesce() ran meanwhile: it resumed whom it found suspended, and a connection
       suspended after it would stay so (MHD_stop_daemon() panics on that). answer_check() says 503. */
    if (status != WS4R_OK || pending->handshake != NULL || host->stopping) {
        pthread_mutex_unlock(&host->lock);
        request->check_status = status;
        if (status != WS4R_OK)
            pending_release(pending); /* the callback will not run: drop its reference */
        request->resumed = true;
        return answer_check(host, connection, request);
    }
    /* Suspended under the lock: a callback on a core thread wakes it only once it is. */
    MHD_suspend_connection(connection);
    pending->connection = connection;
    pending->next = host->suspended;
    if (host->suspended != NULL)
        host->suspended->previous = pending;
    host->suspended = pending;
    pthread_mutex_unlock(&host->lock);
    return MHD_YES;
}

/* The access handler's call after the resume: sends the decision. */
static enum MHD_Result answer_check(struct host *host, struct MHD_Connection *connection, struct request *request) {
    struct pending *pending = request->pending;
    pthread_mutex_lock(&host->lock);
    ws4r_handshake *handshake = pending->handshake;
    pending->handshake = NULL;
    bool stopping = host->stopping;
    pthread_mutex_unlock(&host->lock);
    if (handshake == NULL) {
        if (request->check_status == WS4R_ESTATE || (request->check_status == WS4R_OK && stopping))
            return reply(connection, MHD_HTTP_SERVICE_UNAVAILABLE, TEXT, "the server is shutting down\n");
        char body[128];
        snprintf(body, sizeof body, "cannot check the handshake: %s\n", host->api->strerror(request->check_status));
        return reply(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT, body);
    }
    if (host->api->handshake_status(handshake) == MHD_HTTP_SWITCHING_PROTOCOLS)
        return accept_upgrade(host, connection, request, handshake);
    return refuse_upgrade(host, connection, handshake);
}

void http_init(struct host *host) {
    pthread_mutex_init(&host->lock, NULL);
    host->suspended = NULL;
    host->stopping = false;
}

void http_destroy(struct host *host) {
    pthread_mutex_destroy(&host->lock);
}

void http_quiesce(struct host *host) {
    pthread_mutex_lock(&host->lock);
    host->stopping = true;
    while (host->suspended != NULL)
        MHD_resume_connection(detach(host, host->suspended));
    pthread_mutex_unlock(&host->lock);
}

/* Every path outside the fixed routes goes to the core, which knows its URL prefix and echo path
   (from whatever source configured them) and answers 404 for other paths. The first call
   suspends the connection while the core decides; the next one sends the decision. */
static enum MHD_Result serve_handshake(struct host *host, struct MHD_Connection *connection, struct request *request,
                                       const char *path, const char *method, const char *version) {
    if (request->pending != NULL) {
        if (request->resumed)
            return MHD_YES; /* a body chunk of a refused request: MHD discards it */
        request->resumed = true;
        return answer_check(host, connection, request);
    }
    int count = MHD_get_connection_values(connection, MHD_HEADER_KIND, NULL, NULL);
    struct header_list headers = { calloc((size_t)count + 1, sizeof(ws4r_header)), 0, (size_t)count };
    if (headers.items == NULL)
        return MHD_NO;
    MHD_get_connection_values(connection, MHD_HEADER_KIND, add_header, &headers);
    char peer[NI_MAXHOST + NI_MAXSERV + 4];
    ws4r_request websocket;
    host->api->request_init(&websocket);
    websocket.method = method;
    websocket.path = path;
    websocket.query = request->query;
    websocket.http_version = version;
    websocket.headers = headers.items;
    websocket.header_count = headers.count;
    websocket.remote_address = describe_peer(connection, peer, sizeof peer);
    enum MHD_Result result = start_check(host, connection, request, &websocket);
    free(headers.items);
    return result;
}

/* ---- Request life cycle and routing ---- */

/*
 * NUL bytes. libmicrohttpd before 1.0 passes C strings and does not look for NUL bytes: a path,
 * query or header value would silently end at one, while MHD's own parsers read past it, and
 * whatever sits in front of the host may read the whole value: two views of one request. MHD 1.0
 * refuses a NUL in the request line and in headers itself (400, at its default client discipline).
 * For 0.9.75 the checks below lean on how it lays a request out in its read buffer, in place:
 * the method starts the head, which is MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE bytes long; the
 * space after the method and the one before the version, each line's CR and LF and each header's
 * colon became NULs; names and values stay where they were (a folded line moves its header
 * elsewhere). Other versions are refused at build time, and at start (http_check_mhd_version()).
 */
#if MHD_VERSION == 0x00097500
#define MHD_LEAVES_NUL_TO_US 1
#elif MHD_VERSION < 0x01000000
#error "libmicrohttpd before 1.0 other than 0.9.75: http.c's NUL checks were not verified against its request layout"
#else
#define MHD_LEAVES_NUL_TO_US 0
#endif

int http_check_mhd_version(const char *running, char *reason, size_t size) {
    unsigned major = 0, minor = 0, patch = 0;
    /* MHD_VERSION writes each decimal part in hex digits: 0.9.75 is 0x00097500. */
    sscanf(running != NULL ? running : "", "%x.%x.%x", &major, &minor, &patch);
    unsigned version = major << 24 | minor << 16 | patch << 8;
    bool verified = MHD_LEAVES_NUL_TO_US ? version == (MHD_VERSION & ~0xffu) : version >= 0x01000000;
    if (verified)
        return 0;
    snprintf(reason, size, "libmicrohttpd %s is running, but this host was built against 0x%08x and %s", running,
             (unsigned)MHD_VERSION, MHD_LEAVES_NUL_TO_US ? "checks NUL bytes in requests by that version's request layout only: rebuild it"
                                                         : "needs libmicrohttpd 1.0 or later, which refuses NUL bytes in requests");
    return -1;
}

/*
 * Whether the raw request target `uri` holds a NUL byte (0.9.75; 1.0 refuses it before). MHD calls
 * the URI log callback with the target, in place and unmodified, ended by a NUL where the space
 * before the version was, then the version, which MHD has already checked to be "HTTP/d.d", then
 * a NUL. So the string after the first NUL is exactly that version unless the target went on past
 * a NUL of its own (every read stays within the NUL-terminated line).
 */
static bool has_nul(const char *uri) {
#if MHD_LEAVES_NUL_TO_US
    const char *after = uri + strlen(uri) + 1;
    return !(strncmp(after, "HTTP/", 5) == 0 && strlen(after) == 8);
#else
    (void)uri;
    return false;
#endif
}

/* The walk of the head's lines for head_has_nul(): where the previous line's text ended. */
struct line_walk {
    const char *text_end;   /* the version's end, then each header value's */
    const char *head_end;
    bool broken;
};

/* Whether only the NULs of one line end (1 or 2 bytes, bare LF or CRLF; `lines` more for the
   empty line after the last header) lie between `from` and `to`, both within the head. */
static bool only_line_ends(const char *from, const char *to, const char *head_end, int lines) {
    if (from == NULL || to == NULL || to < from || to > head_end || to - from < lines || to - from > 2 * lines)
        return false;
    for (const char *c = from; c < to; c++)
        if (*c != '\0')
            return false;
    return true;
}

/* MHD_KeyValueIterator: each header must start right after the previous line's end. */
static enum MHD_Result walk_header(void *cls, enum MHD_ValueKind kind, const char *name, const char *value) {
    (void)kind;
    struct line_walk *walk = cls;
    if (value == NULL || !only_line_ends(walk->text_end, name, walk->head_end, 1)) {
        walk->broken = true;
        return MHD_NO;
    }
    walk->text_end = value + strlen(value);
    return MHD_YES;
}

/* Whether a header holds a NUL byte (or the head is not laid out as 0.9.75 does: a folded line). */
static bool head_has_nul(struct MHD_Connection *connection, const char *method, const char *version) {
#if MHD_LEAVES_NUL_TO_US
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (info == NULL)
        return true;
    struct line_walk walk = { .text_end = version + strlen(version), .head_end = method + info->header_size };
    if (version < method || walk.text_end > walk.head_end)
        return true;
    MHD_get_connection_values(connection, MHD_HEADER_KIND, walk_header, &walk);
    return walk.broken || !only_line_ends(walk.text_end, walk.head_end, walk.head_end, 2);
#else
    (void)connection, (void)method, (void)version;
    return false;
#endif
}

/* Whether the path of the raw target has "%00", which MHD decodes to a NUL that ends the path
   the handler gets (the query goes to the core undecoded). */
static bool has_encoded_nul(const char *uri) {
    const char *encoded = strstr(uri, "%00");
    return encoded != NULL && (size_t)(encoded - uri) < strcspn(uri, "?");
}

static void *begin_request(void *cls, const char *uri, struct MHD_Connection *connection) {
    (void)cls;
    (void)connection;
    struct request *request = calloc(1, sizeof *request);
    if (request == NULL)
        return NULL;
    request->nul_in_target = has_nul(uri) || has_encoded_nul(uri);
    const char *mark = strchr(uri, '?');
    if (mark != NULL && (request->query = strdup(mark + 1)) == NULL) {
        free(request);
        return NULL;
    }
    return request;
}

static void end_request(void *cls, struct MHD_Connection *connection, void **con_cls,
                        enum MHD_RequestTerminationCode reason) {
    (void)reason;
    struct host *host = cls;
    /* A kept-alive connection has handshake_timeout for its next request head. */
    deadline_restart(&host->deadlines, connection_arrival(connection));
    struct request *request = *con_cls;
    if (request == NULL)
        return;
    host->api->handshake_free(request->handshake);
    if (request->pending != NULL) {
        /* Still waiting only if MHD gave up the connection while it was suspended, which
           libmicrohttpd 0.9.75 never does; then the callback must not resume it. MHD calls this
           under its cleanup mutex for upgraded connections, which were resumed: no lock then. */
        if (!request->resumed) {
            pthread_mutex_lock(&host->lock);
            detach(host, request->pending);
            pthread_mutex_unlock(&host->lock);
        }
        pending_release(request->pending);
    }
    free(request->query);
    free(request->body);
    free(request);
    *con_cls = NULL;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *connection, const char *url,
                                      const char *method, const char *version, const char *upload_data,
                                      size_t *upload_data_size, void **con_cls) {
    struct host *host = cls;
    struct request *request = *con_cls;
    if (request == NULL) /* begin_request() ran out of memory */
        return MHD_NO;
    if (!request->head_complete) {
        request->head_complete = true;
        request->nul_in_head = head_has_nul(connection, method, version);
        deadline_met(&host->deadlines, connection_arrival(connection));
    }
    if (request->nul_in_target)
        return reply(connection, MHD_HTTP_BAD_REQUEST, TEXT, "the request target holds a NUL byte (or %00 in its path)\n");
    if (request->nul_in_head)
        return reply(connection, MHD_HTTP_BAD_REQUEST, TEXT, "a request header holds a NUL byte (or is folded)\n");
    /* The fixed routes first, so that even a URL prefix of "/" leaves them reachable. Switched off,
       they go to the core like any path (404). */
    if (host->serve_demo_page && strcmp(url, "/") == 0)
        return is_get(method) ? reply(connection, MHD_HTTP_OK, HTML, host->demo_page)
                              : reply_method_not_allowed(connection, "GET, HEAD");
    if (strcmp(url, "/healthz") == 0)
        return is_get(method) ? serve_health(host, connection) : reply_method_not_allowed(connection, "GET, HEAD");
    if (host->serve_metrics && strcmp(url, "/metrics") == 0)
        return is_get(method) ? serve_metrics(host, connection) : reply_method_not_allowed(connection, "GET, HEAD");
    struct static_asset asset;
    if (static_asset_find(url, &asset))
        return is_get(method) ? send_response(connection, MHD_HTTP_OK,
                                              typed_response(asset.content_type, asset.bytes, asset.size, MHD_RESPMEM_PERSISTENT))
                              : reply_method_not_allowed(connection, "GET, HEAD");
    if (host->publish_endpoint && strcmp(url, "/publish") == 0)
        return serve_publish(host, connection, request, method, upload_data, upload_data_size);
    /* Any method and path: the core answers a non-GET handshake with 400, as the original
       does, and a path outside its endpoints with 404. */
    return serve_handshake(host, connection, request, url, method, version);
}

/* MHD_NotifyConnectionCallback: a TCP connection starts or ends (MHD closes its descriptor after). */
static void track_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                             enum MHD_ConnectionNotificationCode code) {
    struct host *host = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = info != NULL ? deadline_add(&host->deadlines, info->connect_fd) : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        deadline_remove(&host->deadlines, *socket_context);
        *socket_context = NULL;
    }
}

struct MHD_Daemon *http_start(struct host *host, const struct sockaddr *address) {
    /* MHD_ALLOW_SUSPEND_RESUME: handshakes wait suspended for the core's decision, and it brings
       the wake-up channel that MHD_resume_connection() and MHD_upgrade_action() need. */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_UPGRADE | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (address->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6; /* MHD sizes MHD_OPTION_SOCK_ADDR by this flag */
    struct MHD_OptionItem tls_options[TLS_DAEMON_OPTIONS];
    flags |= tls_daemon_options(&host->tls, tls_options);
    return MHD_start_daemon(flags, 0, NULL, NULL, handle_request, host,
                            MHD_OPTION_SOCK_ADDR, address,
                            MHD_OPTION_ARRAY, tls_options,
                            MHD_OPTION_URI_LOG_CALLBACK, begin_request, host,
                            MHD_OPTION_NOTIFY_COMPLETED, end_request, host,
                            MHD_OPTION_NOTIFY_CONNECTION, track_connection, host,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_SECONDS,
                            MHD_OPTION_END);
}
