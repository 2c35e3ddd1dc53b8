/* upgrade.c: the websocket handshake of ws4redis-host: the core's decision (the connection
   suspended in MHD while it is asynchronous), the 101 or the refusal, and the hand-over of the
   upgraded socket to the core. Everything runs on MHD's polling thread except http_init(),
   http_destroy() and http_quiesce() (main()) and handshake_decided() (a core thread). */
#include "http.h"

#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * A handshake the core decides asynchronously (an identity source may take seconds), shared by
 * the request (MHD's thread) and the core's done callback (a core thread); freed when both let go.
 * While it waits, MHD has the connection suspended: out of its poll set and its timeout lists,
 * so MHD neither times it out nor notices a client that hangs up, and never frees it (in
 * libmicrohttpd 0.9.75 only MHD_stop_daemon() could, and that panics on a suspended connection:
 * http_quiesce() resumes them first). MHD_resume_connection() is safe on any thread (it takes
 * MHD's cleanup mutex and wakes MHD's thread through its inter-thread channel). Still, the done
 * callback resumes the connection only under host->lock and only while `connection` is set, and
 * whoever clears `connection` (the callback, handshake_request_ended(), http_quiesce()) does so
 * under that lock: so no code path can touch a connection that MHD completed.
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
    /* The socket is the core's from now on: its request deadline must never shut it down. */
    host->api->arrival_handed_over(connection_arrival(connection));
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

void handshake_request_ended(struct host *host, struct request *request) {
    host->api->handshake_free(request->handshake);
    request->handshake = NULL;
    if (request->pending == NULL)
        return;
    /* Still waiting only if MHD gave up the connection while it was suspended, which
       libmicrohttpd 0.9.75 never does; then the callback must not resume it. MHD calls this
       under its cleanup mutex for upgraded connections, which were resumed: no lock then. */
    if (!request->resumed) {
        pthread_mutex_lock(&host->lock);
        detach(host, request->pending);
        pthread_mutex_unlock(&host->lock);
    }
    pending_release(request->pending);
    request->pending = NULL;
}

/* Every path outside the fixed routes goes to the core, which knows its URL prefix and echo path
   (from whatever source configured them) and answers 404 for other paths. The first call
   suspends the connection while the core decides; the next one sends the decision. */
enum MHD_Result serve_handshake(struct host *host, struct MHD_Connection *connection, struct request *request,
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
