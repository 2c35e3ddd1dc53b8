/* http.c: the HTTP side of ws4redis-host on libmicrohttpd (MHD): routing, the demo endpoints, and
   the websocket handshake with the hand-over of upgraded sockets to the core.
   Except http_start() and publisher_connect() at start-up, everything here runs on MHD's
   polling thread, the only one that touches struct host while the daemon runs. */
#include "host.h"

#include <fcntl.h>
#include <inttypes.h>
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
       (see hand_over()), so this bounds concurrent plain HTTP requests, not websockets. */
    CONNECTION_LIMIT = 100000,
    /* Idle plain HTTP connections (keep-alive, slow requests) are closed after this. */
    HTTP_TIMEOUT_SECONDS = 30,
    /* Largest POST /publish body: the core's default limit for a websocket message. */
    MAX_PUBLISH_BODY = 1 << 20,
};

/* One per HTTP request: created by begin_request() (MHD's URI log callback, the only place that
   sees the raw query string) and freed by end_request() (MHD's request-completed callback). */
struct request {
    char *query;                 /* raw query without '?', NULL when the URI has none */
    ws4r_handshake *handshake;   /* accepted, from the queued 101 until hand_over() takes it */
    bool receiving;              /* POST /publish: headers accepted, collecting the body */
    bool body_too_large;
    char *body;
    size_t body_length;
};

/* ---- Responses ---- */

/* A response carrying a copy of `body`, or NULL when out of memory. */
static struct MHD_Response *text_response(const char *content_type, const char *body) {
    struct MHD_Response *response =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (response != NULL && MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES) {
        MHD_destroy_response(response);
        return NULL;
    }
    return response;
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
             ",\"messages_out\":%" PRIu64 ",\"client_messages_in\":%" PRIu64 ",\"slow_client_closes\":%" PRIu64 "}\n",
             stats.redis_connected ? "ok" : "degraded", stats.redis_connected ? "true" : "false", stats.connections,
             stats.connections_total, stats.subscriptions, stats.channels, stats.messages_in, stats.messages_out,
             stats.client_messages_in, stats.slow_client_closes);
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

static bool is_websocket_path(const struct host *host, const char *path) {
    return strncmp(path, host->url_prefix, strlen(host->url_prefix)) == 0 ||
           (host->echo_path != NULL && strcmp(path, host->echo_path) == 0);
}

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

/* Gives the upgraded socket to the core as a descriptor of its own; consumes `handshake`. */
static void adopt(struct host *host, ws4r_handshake *handshake, MHD_socket sock, const char *extra_in,
                  size_t extra_in_size) {
    /* Close-on-exec like MHD's own sockets. */
    int fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        perror("ws4redis-host: cannot duplicate an upgraded socket");
        host->api->handshake_free(handshake);
        return;
    }
    int status = host->api->server_adopt(host->server, handshake, fd, extra_in, extra_in_size, NULL, NULL);
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
 * events of the core's descriptor. With TLS this would be wrong (MHD shutdown()s its socketpair).
 */
static void hand_over(void *cls, struct MHD_Connection *connection, void *con_cls, const char *extra_in,
                      size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) {
    (void)connection;
    struct host *host = cls;
    struct request *request = con_cls;
    ws4r_handshake *handshake = request->handshake;
    request->handshake = NULL;
    adopt(host, handshake, sock, extra_in, extra_in_size);
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

static enum MHD_Result serve_handshake(struct host *host, struct MHD_Connection *connection, struct request *request,
                                       const char *path, const char *method, const char *version) {
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
    ws4r_handshake *handshake = NULL;
    int status = host->api->server_check_handshake(host->server, &websocket, &handshake);
    free(headers.items);
    if (handshake == NULL)
        return reply(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT, host->api->strerror(status));
    if (status == WS4R_OK)
        return accept_upgrade(host, connection, request, handshake);
    return refuse_upgrade(host, connection, handshake);
}

/* ---- Request life cycle and routing ---- */

static void *begin_request(void *cls, const char *uri, struct MHD_Connection *connection) {
    (void)cls;
    (void)connection;
    struct request *request = calloc(1, sizeof *request);
    const char *mark = strchr(uri, '?');
    if (request != NULL && mark != NULL && (request->query = strdup(mark + 1)) == NULL) {
        free(request);
        return NULL;
    }
    return request;
}

static void end_request(void *cls, struct MHD_Connection *connection, void **con_cls,
                        enum MHD_RequestTerminationCode reason) {
    (void)connection;
    (void)reason;
    struct host *host = cls;
    struct request *request = *con_cls;
    if (request == NULL)
        return;
    host->api->handshake_free(request->handshake);
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
    /* The fixed routes first, so that even a URL prefix of "/" leaves them reachable. */
    if (strcmp(url, "/") == 0)
        return is_get(method) ? reply(connection, MHD_HTTP_OK, HTML, host->demo_page)
                              : reply_method_not_allowed(connection, "GET, HEAD");
    if (strcmp(url, "/healthz") == 0)
        return is_get(method) ? serve_health(host, connection) : reply_method_not_allowed(connection, "GET, HEAD");
    if (strcmp(url, "/publish") == 0)
        return serve_publish(host, connection, request, method, upload_data, upload_data_size);
    /* Any method: the core answers a non-GET handshake with 400, as the original does. */
    if (is_websocket_path(host, url))
        return serve_handshake(host, connection, request, url, method, version);
    return reply(connection, MHD_HTTP_NOT_FOUND, TEXT, "not found\n");
}

struct MHD_Daemon *http_start(struct host *host, const struct sockaddr *address) {
    /* MHD_ALLOW_UPGRADE also enables suspend/resume and the wake-up channel that
       MHD_upgrade_action() needs. */
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG;
    if (address->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6; /* MHD sizes MHD_OPTION_SOCK_ADDR by this flag */
    return MHD_start_daemon(flags, 0, NULL, NULL, handle_request, host,
                            MHD_OPTION_SOCK_ADDR, address,
                            MHD_OPTION_URI_LOG_CALLBACK, begin_request, host,
                            MHD_OPTION_NOTIFY_COMPLETED, end_request, host,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_SECONDS,
                            MHD_OPTION_END);
}
