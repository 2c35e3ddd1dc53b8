/* publish.c: POST /publish?facility=F, the demo's publisher (publish_endpoint on), on MHD's
   polling thread; publisher_connect() also at start-up. */
#include "http.h"

#include <inttypes.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends a chunk of the body; false when out of memory. Past `limit` (the core's max_message_size,
   the limit of a client's websocket message) it only notes that the body is too large and lets
   MHD drain the rest. */
static bool collect_body(struct request *request, const char *data, size_t size, size_t limit) {
    if (request->body_too_large)
        return true;
    if (size > limit - request->body_length) {
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
enum MHD_Result serve_publish(struct host *host, struct MHD_Connection *connection, struct request *request,
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
        bool stored = collect_body(request, upload_data, *upload_data_size, host->max_publish_body);
        *upload_data_size = 0;
        return stored ? MHD_YES : MHD_NO;
    }
    if (request->body_too_large)
        return reply(connection, MHD_HTTP_CONTENT_TOO_LARGE, TEXT, "message too large\n");
    return publish(host, connection, facility, request);
}
