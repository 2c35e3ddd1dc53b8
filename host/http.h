/* http.h: what the HTTP parts of ws4redis-host share (routes.c, upgrade.c, publish.c,
   responses.c, nul_checks.c), all on MHD's polling thread unless a declaration says otherwise. */
#ifndef WS4R_HOST_HTTP_H
#define WS4R_HOST_HTTP_H

#include "host.h"

#include <microhttpd.h>

#define TEXT "text/plain; charset=utf-8"
#define HTML "text/html; charset=utf-8"
#define JSON "application/json"

/* One per HTTP request: created by begin_request() (MHD's URI log callback, the only place that
   sees the raw query string) and freed by end_request() (MHD's request-completed callback). */
struct request {
    char *query;                 /* raw query without '?', NULL when the URI has none */
    struct pending *pending;     /* a handshake the core is deciding or decided (upgrade.c) */
    bool resumed;                /* the access handler ran again after `pending` was resumed */
    int check_status;            /* WS4R_OK, or why the core could not take the check */
    bool head_complete;          /* the access handler ran: the request head's deadline is met */
    bool nul_in_target;          /* a NUL byte in the target, or %00 in its path: refused with 400 */
    bool nul_in_head;            /* a NUL byte in a header (or a head laid out otherwise): 400 */
    ws4r_handshake *handshake;   /* accepted, from the queued 101 until hand_over() takes it */
    bool receiving;              /* POST /publish: headers accepted, collecting the body */
    bool body_too_large;
    char *body;
    size_t body_length;
};

/* The core's watch of the connection's request heads (routes.c: track_connection()), or NULL. */
ws4r_arrival *connection_arrival(struct MHD_Connection *connection);

/* responses.c. A response carrying `size` bytes of `body` (copied or not, by `mode`), or NULL when
   out of memory. */
struct MHD_Response *typed_response(const char *content_type, const void *body, size_t size, enum MHD_ResponseMemoryMode mode);
/* A response carrying a copy of `body`, or NULL when out of memory. */
struct MHD_Response *text_response(const char *content_type, const char *body);
/* Queues `response` and drops our reference. NULL (out of memory) closes the connection. */
enum MHD_Result send_response(struct MHD_Connection *connection, unsigned status, struct MHD_Response *response);
enum MHD_Result reply(struct MHD_Connection *connection, unsigned status, const char *content_type, const char *body);
enum MHD_Result reply_method_not_allowed(struct MHD_Connection *connection, const char *allow);
/* GET or HEAD (MHD leaves out the body of a HEAD response itself). */
bool is_get(const char *method);

/* nul_checks.c. Whether the raw request target (as MHD's URI log callback sees it) holds a NUL
   byte, or "%00" in its path (which MHD decodes to a NUL that ends the path the handler gets). */
bool target_has_nul(const char *uri);
/* Whether a header holds a NUL byte (or the head is not laid out as libmicrohttpd 0.9.75 does:
   a folded line). */
bool head_has_nul(struct MHD_Connection *connection, const char *method, const char *version);

/* publish.c: POST /publish; MHD calls it once for the headers, once per body chunk, once at the end. */
enum MHD_Result serve_publish(struct host *host, struct MHD_Connection *connection, struct request *request,
                              const char *method, const char *upload_data, size_t *upload_data_size);

/* upgrade.c: any other path, a websocket handshake for the core to decide (it answers 404 outside
   its endpoints). The first call may suspend the connection; the next one sends the decision. */
enum MHD_Result serve_handshake(struct host *host, struct MHD_Connection *connection, struct request *request,
                                const char *path, const char *method, const char *version);
/* end_request(): frees what the handshake left on the request (a decision, a pending check). */
void handshake_request_ended(struct host *host, struct request *request);

#endif /* WS4R_HOST_HTTP_H */
