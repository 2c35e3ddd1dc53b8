/* routes.c: the HTTP side of ws4redis-host on libmicrohttpd (MHD): the daemon, each request's life
   cycle, and routing: the fixed routes (the demo page, /healthz, /metrics, the JS client,
   POST /publish) and every other path to the websocket handshake (upgrade.c). Except
   http_start(), everything here runs on MHD's polling thread. */
#include "http.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

enum {
    /* MHD's default limit is FD_SETSIZE - 4. MHD holds a socket only until the handshake is done
       (see hand_over()), so this bounds concurrent plain HTTP requests, not websockets (with
       TLS it holds every websocket's connection too: TLS websockets count). */
    CONNECTION_LIMIT = 100000,
    /* Idle HTTP connections (e.g. a stalled POST body) are closed after this, MHD's own timeout;
       a request head must be complete within the core's handshake_timeout (track_connection()). */
    HTTP_TIMEOUT_SECONDS = 30,
};

ws4r_arrival *connection_arrival(struct MHD_Connection *connection) {
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info != NULL ? info->socket_context : NULL;
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
    char json[1024];
    size_t length;
    if (host->api->server_health(host->server, json, sizeof json, &length) != WS4R_OK)
        return reply(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, TEXT, "cannot read the server's figures\n");
    /* 200 even when degraded: the host serves, and the core reconnects to Redis by itself. */
    return reply(connection, MHD_HTTP_OK, WS4R_HEALTH_CONTENT_TYPE, json);
}

/* ---- Request life cycle and routing ---- */

static void *begin_request(void *cls, const char *uri, struct MHD_Connection *connection) {
    (void)cls;
    (void)connection;
    struct request *request = calloc(1, sizeof *request);
    if (request == NULL)
        return NULL;
    request->nul_in_target = target_has_nul(uri);
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
    host->api->arrival_awaiting_head(connection_arrival(connection));
    struct request *request = *con_cls;
    if (request == NULL)
        return;
    handshake_request_ended(host, request);
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
        host->api->arrival_head_read(connection_arrival(connection));
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

/* MHD_NotifyConnectionCallback: a TCP connection starts or ends (MHD closes its descriptor after).
   MHD's own timeout only measures idleness, so a client sending a header byte a second would hold
   a connection forever: the core watches each one until its request head is complete, within
   handshake_timeout (slowloris). Without a watch (no timeout, or the core could not take it) only
   MHD's idle timeout applies. */
static void track_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                             enum MHD_ConnectionNotificationCode code) {
    struct host *host = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        ws4r_arrival *arrival = NULL;
        if (info != NULL)
            host->api->server_watch_arrival(host->server, info->connect_fd, &arrival);
        *socket_context = arrival;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        host->api->arrival_destroy(*socket_context);
        *socket_context = NULL;
    }
}

struct MHD_Daemon *http_start(struct host *host, const struct sockaddr *address) {
    /* MHD_ALLOW_SUSPEND_RESUME: handshakes wait suspended for the core's decision, and it brings
       the wake-up channel that MHD_resume_connection() and MHD_upgrade_action() need.
       MHD_USE_TURBO: reads, writes and accepts are tried before epoll says they are ready, and the
       shutdown() before a close is left out; 64 concurrent open+close cycles went from about 6,100
       to 6,700 handshakes/s with it (Benchmarks/loadgen connect, 3 rounds of 5 s, 2 cores). */
    unsigned flags = MHD_USE_TURBO | MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_UPGRADE | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
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
