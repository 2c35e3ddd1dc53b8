/* nul_checks.c: NUL bytes in requests, which libmicrohttpd before 1.0 does not refuse itself.
   Everything here runs on MHD's polling thread, except http_check_mhd_version() at start-up. */
#include "http.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

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
#error "libmicrohttpd before 1.0 other than 0.9.75: nul_checks.c were not verified against its request layout"
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
static bool raw_target_has_nul(const char *uri) {
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
bool head_has_nul(struct MHD_Connection *connection, const char *method, const char *version) {
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

bool target_has_nul(const char *uri) {
    return raw_target_has_nul(uri) || has_encoded_nul(uri);
}
