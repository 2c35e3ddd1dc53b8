/* same_origin.c: POST /publish is unauthenticated, so it takes requests from this server's own
   origin only: a web page elsewhere must not publish through a browser that can reach the host
   (a text/plain POST is a CORS simple request, sent without a preflight), nor through a name of its
   own that resolves to this host (DNS rebinding: then the browser sends that name as Host). */
#include "host.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The host part of a Host header value or of an origin's authority: "[v6]" with its brackets, or
   a name or IPv4 address without ":port". */
static size_t host_length(const char *authority, size_t length) {
    if (length > 0 && authority[0] == '[') {
        const char *close = memchr(authority, ']', length);
        return close != NULL ? (size_t)(close - authority) + 1 : length;
    }
    const char *colon = memchr(authority, ':', length);
    return colon != NULL ? (size_t)(colon - authority) : length;
}

static bool same_host(const char *host, size_t length, const char *name) {
    return name[0] != '\0' && strlen(name) == length && strncasecmp(host, name, length) == 0;
}

/* The authority of `origin` ("scheme://authority", nothing after it), or NULL. */
static const char *origin_authority(const char *origin, size_t *length) {
    const char *separator = strstr(origin, "://");
    if (separator == NULL)
        return NULL;
    const char *authority = separator + 3;
    *length = strcspn(authority, "/");
    return authority;
}

/* Calls `match` on each entry of a comma-separated list, spaces around entries trimmed; true as
   soon as one matches. */
static bool any_listed(const char *list, bool (*match)(const char *entry, size_t length, const void *context),
                       const void *context) {
    while (*list != '\0') {
        size_t length = strcspn(list, ",");
        const char *entry = list;
        size_t trimmed = length;
        while (trimmed > 0 && *entry == ' ') {
            entry++;
            trimmed--;
        }
        while (trimmed > 0 && entry[trimmed - 1] == ' ')
            trimmed--;
        if (trimmed > 0 && match(entry, trimmed, context))
            return true;
        list += length + (list[length] == ',');
    }
    return false;
}

struct host_name {
    const char *text;
    size_t length;
};

static bool origin_has_host(const char *entry, size_t length, const void *context) {
    const struct host_name *wanted = context;
    char origin[512];
    size_t authority_length;
    snprintf(origin, sizeof origin, "%.*s", (int)length, entry);
    const char *authority = origin_authority(origin, &authority_length);
    if (authority == NULL)
        return false;
    size_t host = host_length(authority, authority_length);
    return host == wanted->length && strncasecmp(authority, wanted->text, host) == 0;
}

static bool is_origin(const char *entry, size_t length, const void *context) {
    const char *origin = context;
    return strlen(origin) == length && strncasecmp(origin, entry, length) == 0;
}

/* The numeric address the connection was accepted on, "[v6]" bracketed, into `out`; "" if unknown. */
static void local_address(struct MHD_Connection *connection, char *out, size_t size) {
    out[0] = '\0';
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    char numeric[NI_MAXHOST];
    if (info == NULL || getsockname(info->connect_fd, (struct sockaddr *)&address, &length) != 0 ||
        getnameinfo((struct sockaddr *)&address, length, numeric, sizeof numeric, NULL, 0, NI_NUMERICHOST) != 0)
        return;
    snprintf(out, size, address.ss_family == AF_INET6 ? "[%s]" : "%s", numeric);
}

/* Whether `host` (a Host header's host part) names this server. A wildcard listen address
   ("0.0.0.0", "[::]") is no name: the socket's own address stands for it. */
static bool serves_host(const struct served_names *names, struct MHD_Connection *connection, const char *host, size_t length) {
    static const char *const loopback[] = { "localhost", "127.0.0.1", "[::1]" };
    for (size_t i = 0; i < sizeof loopback / sizeof loopback[0]; i++)
        if (same_host(host, length, loopback[i]))
            return true;
    bool wildcard = strcmp(names->listen_host, "0.0.0.0") == 0 || strcmp(names->listen_host, "[::]") == 0;
    if (!wildcard && same_host(host, length, names->listen_host))
        return true;
    char local[NI_MAXHOST + 2];
    local_address(connection, local, sizeof local);
    if (same_host(host, length, local))
        return true;
    struct host_name wanted = { host, length };
    return any_listed(names->allowed_origins, origin_has_host, &wanted);
}

const char *cross_origin_refusal(const struct served_names *names, struct MHD_Connection *connection, unsigned *status) {
    const char *host = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    *status = MHD_HTTP_MISDIRECTED_REQUEST;
    if (host == NULL)
        return "POST /publish needs a Host header\n";
    if (!serves_host(names, connection, host, host_length(host, strlen(host))))
        return "POST /publish refused: the Host header names no address of this server (DNS rebinding?); "
               "list the server's public origin in allowed_origins\n";
    *status = MHD_HTTP_FORBIDDEN;
    const char *origin = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_ORIGIN);
    if (origin != NULL) {
        char own[1024];
        snprintf(own, sizeof own, "%s://%s", names->tls ? "https" : "http", host);
        if (strcasecmp(origin, own) == 0 || any_listed(names->allowed_origins, is_origin, origin))
            return NULL;
        return "POST /publish refused: a cross-origin request (its Origin is not this server's nor in allowed_origins)\n";
    }
    const char *site = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Sec-Fetch-Site");
    if (site != NULL && (strcasecmp(site, "cross-site") == 0 || strcasecmp(site, "same-site") == 0))
        return "POST /publish refused: a cross-origin request (Sec-Fetch-Site)\n";
    return NULL;
}
