/* responses.c: the responses every route of ws4redis-host builds, on MHD's polling thread. */
#include "http.h"

#include <microhttpd.h>
#include <string.h>

struct MHD_Response *typed_response(const char *content_type, const void *body, size_t size, enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *response = MHD_create_response_from_buffer(size, (void *)body, mode);
    if (response != NULL && MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES) {
        MHD_destroy_response(response);
        return NULL;
    }
    return response;
}

struct MHD_Response *text_response(const char *content_type, const char *body) {
    return typed_response(content_type, body, strlen(body), MHD_RESPMEM_MUST_COPY);
}

enum MHD_Result send_response(struct MHD_Connection *connection, unsigned status, struct MHD_Response *response) {
    if (response == NULL)
        return MHD_NO;
    enum MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

enum MHD_Result reply(struct MHD_Connection *connection, unsigned status, const char *content_type, const char *body) {
    return send_response(connection, status, text_response(content_type, body));
}

enum MHD_Result reply_method_not_allowed(struct MHD_Connection *connection, const char *allow) {
    struct MHD_Response *response = text_response(TEXT, "method not allowed\n");
    if (response != NULL && MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES) {
        MHD_destroy_response(response);
        response = NULL;
    }
    return send_response(connection, MHD_HTTP_METHOD_NOT_ALLOWED, response);
}

bool is_get(const char *method) {
    /* MHD leaves out the body of a HEAD response itself. */
    return strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
}
