/*
 * ws4redis.h: the C ABI of libws4redis, server push from Redis to websockets.
 *
 * Conventions (they hold for every declaration below unless it says otherwise):
 *  - Handles are opaque. Each has a create/destroy pair; destroy accepts NULL.
 *  - Functions return an int status: WS4R_OK (0) or a WS4R_E* code. Codes are never renumbered.
 *    ws4r_strerror() names a code; ws4r_*_errmsg() gives the detail of the calling thread's last
 *    failed call on a handle. The message is the thread's own: calls on other threads never change
 *    or free it; it stays valid until the calling thread's next call into the library.
 *  - Strings are NUL-terminated UTF-8. Strings and buffers passed in are borrowed for the call only:
 *    the library copies what it keeps. Strings returned are owned by the library.
 *  - Structs passed in start with `struct_size`; fill them with the matching *_init() function, which
 *    sets struct_size and the defaults. Fields are only ever appended; the library reads only the
 *    fields that the caller's struct_size covers.
 *  - Threads: a ws4r_server may be used from any thread; calls on it are serialized internally.
 *    A ws4r_publisher may be used from any thread; calls on it are serialized internally (one Redis
 *    connection, so use one publisher per thread for parallel publishing).
 *  - Only symbols prefixed ws4r_ are exported.
 */
#ifndef WS4REDIS_H
#define WS4REDIS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WS4R_VERSION_MAJOR 0
#define WS4R_VERSION_MINOR 5
#define WS4R_VERSION_PATCH 0
#define WS4R_VERSION_STRING "0.5.0"
/** (major << 16) | (minor << 8) | patch, comparable with ws4r_version_number(). */
#define WS4R_VERSION_NUMBER ((WS4R_VERSION_MAJOR << 16) | (WS4R_VERSION_MINOR << 8) | WS4R_VERSION_PATCH)
/** The ABI major version: bumped on any incompatible change of this header. */
#define WS4R_ABI_VERSION 1

/* ---- Status codes: never renumbered; retired codes stay reserved. ---- */
#define WS4R_OK 0
#define WS4R_EINVAL 1       /* an argument is NULL, malformed or out of range */
#define WS4R_ECONFIG 2      /* the configuration is invalid (see errmsg) */
#define WS4R_ENOMEM 3       /* out of memory */
#define WS4R_ESTATE 4       /* the handle is in the wrong state for this call */
#define WS4R_EBIND 5        /* the listener could not bind its address */
#define WS4R_EREDIS 6       /* Redis failed, refused or is unreachable */
#define WS4R_EHANDSHAKE 7   /* the websocket handshake was refused (see ws4r_handshake_status) */
#define WS4R_EIO 8          /* a socket or descriptor operation failed */
#define WS4R_EVERSION 9     /* incompatible ABI version */
#define WS4R_ELIMIT 10      /* a configured limit was reached */

/** The name of a status code, e.g. "invalid argument". Static; never NULL. Any thread. */
const char *ws4r_strerror(int code);

/** The run-time library version as WS4R_VERSION_NUMBER computes it. Any thread. */
unsigned ws4r_version_number(void);
/** The run-time library version as "major.minor.patch". Static string. Any thread. */
const char *ws4r_version_string(void);

/* ======================================================================================= */
/* Configuration                                                                           */
/* ======================================================================================= */

/** An HTTP header (or a cookie) as name and value. */
typedef struct ws4r_header {
    const char *name;
    const char *value;
} ws4r_header;

/** One named setting, as on the command line (`--name value`) or in a config file (`name = value`). */
typedef struct ws4r_setting {
    const char *name;
    const char *value;
} ws4r_setting;

/**
 * Server configuration. Strings are borrowed: ws4r_server_create() copies them.
 * NULL string fields take the documented default.
 */
typedef struct ws4r_config {
    size_t struct_size;          /* set by ws4r_config_init() */
    /** Redis URL: redis://[[user]:password@]host[:port][/db] or unix:///path/to/socket[?db=N&password=P].
     *  Default "redis://127.0.0.1:6379/0". */
    const char *redis_url;
    /** Prefix of every Redis channel and key, joined with ':' (WS4REDIS_PREFIX). Default none (NULL or ""). */
    const char *key_prefix;
    /** The URL prefix of websocket endpoints (WEBSOCKET_URL). Default "/ws/". */
    const char *url_prefix;
    /** Standalone listener "host:port" (NIO accepts connections itself). Default NULL: no listener,
     *  connections arrive through ws4r_server_adopt() from a host. */
    const char *listen_address;
    /** Path of the plain echo endpoint for conformance tests, e.g. "/echo". Default NULL: off. */
    const char *echo_path;
    /** Event-loop threads for websocket I/O. Default 0: one per CPU core. */
    uint32_t io_threads;
    /** Largest websocket message accepted from a client, in bytes (reassembled). Default 1 MiB. */
    uint32_t max_message_size;
    /** Largest single frame accepted from a client, in bytes. Default 1 MiB. */
    uint32_t max_frame_size;
    /** Most concurrent websockets; further handshakes get 503. Default 0: unlimited. */
    uint32_t max_connections;
    /** Bytes queued towards one client before it counts as slow and is closed (1008). Default 4 MiB. */
    uint32_t max_outbound_bytes;
    /** Interval of protocol pings to idle clients, in milliseconds. Default 30000; 0: off. */
    uint32_t ping_interval_ms;
    /** Further settings by name (`ws4r_settings_help()` lists them all, e.g. {"heartbeat", "--heartbeat--"}),
     *  applied after the fields above. Borrowed. Default none. */
    const ws4r_setting *settings;
    size_t setting_count;
} ws4r_config;


/** Fills *config with the defaults and sets struct_size. Any thread. */
void ws4r_config_init(ws4r_config *config);

/**
 * Every setting with its CLI flag, environment variable, default and meaning, as text for a --help
 * screen (format "markdown" gives the table of docs/configuration.md instead). Static. Any thread.
 */
const char *ws4r_settings_help(const char *format);

/* ======================================================================================= */
/* Server                                                                                  */
/* ======================================================================================= */

typedef struct ws4r_server ws4r_server;

/** Live figures of a server. Fill struct_size (or call ws4r_stats_init) before ws4r_server_stats(). */
typedef struct ws4r_stats {
    size_t struct_size;
    uint64_t connections;           /* open websockets now */
    uint64_t connections_total;     /* websockets opened since start */
    uint64_t subscriptions;         /* (websocket, channel) pairs with a confirmed Redis subscription */
    uint64_t channels;              /* Redis channels this server is subscribed to now */
    uint64_t messages_in;           /* messages received from Redis */
    uint64_t messages_out;          /* messages written to websockets (one per recipient) */
    uint64_t client_messages_in;    /* data messages received from websocket clients */
    uint64_t slow_client_closes;    /* websockets closed because they stopped reading */
    uint32_t redis_connected;       /* 1 when the subscriber connection to Redis is up */
    uint64_t messages_dropped;      /* messages replaced by newer ones for saturated clients (keep-newest policy) */
} ws4r_stats;

/** Sets stats->struct_size. Any thread. */
void ws4r_stats_init(ws4r_stats *stats);

/* Connection flags (the query names of a websocket URL), as bits. */
#define WS4R_FLAG_SUBSCRIBE_BROADCAST (1u << 0)
#define WS4R_FLAG_SUBSCRIBE_USER      (1u << 1)
#define WS4R_FLAG_SUBSCRIBE_GROUP     (1u << 2)
#define WS4R_FLAG_SUBSCRIBE_SESSION   (1u << 3)
#define WS4R_FLAG_PUBLISH_BROADCAST   (1u << 4)
#define WS4R_FLAG_PUBLISH_USER        (1u << 5)
#define WS4R_FLAG_PUBLISH_GROUP       (1u << 6)
#define WS4R_FLAG_PUBLISH_SESSION     (1u << 7)
#define WS4R_FLAG_ECHO                (1u << 8)
#define WS4R_FLAGS_ALL                0x1FFu

/**
 * Constructor. Creates a server from *config (copied). Starts nothing: see ws4r_server_start().
 * Unless memory runs out, *out receives a handle even on failure so that ws4r_server_errmsg()
 * can explain it; the caller always destroys it with ws4r_server_destroy().
 * Returns WS4R_OK, WS4R_EINVAL, WS4R_ECONFIG or WS4R_ENOMEM.
 */
int ws4r_server_create(const ws4r_config *config, ws4r_server **out);

/**
 * Constructor, for programs with a command line: like ws4r_server_create() with `base` (NULL: the
 * defaults), then the environment (WS4REDIS_<NAME>), then `--config FILE` if among `argv`, then
 * `argv` itself (`--name value` or `--name=value`, names as ws4r_settings_help() lists them; options
 * only, no program name: pass argc - 1, argv + 1 from main).
 * An unknown or malformed option fails with WS4R_ECONFIG naming it. Same handle rules as
 * ws4r_server_create().
 */
int ws4r_server_create_with_args(const ws4r_config *base, int argc, const char *const *argv, ws4r_server **out);

/* ---- Authorization: who a connection is and what it may do ---- */

/** What an authorization callback is asked. Everything is borrowed for the call. */
typedef struct ws4r_auth_request {
    size_t struct_size;
    const char *method;
    const char *path;
    const char *facility;
    const char *query;              /* raw query string, or NULL */
    const ws4r_header *headers;
    size_t header_count;
    const ws4r_header *cookies;     /* parsed from the Cookie headers */
    size_t cookie_count;
    const char *remote_address;     /* or NULL */
    unsigned requested_flags;       /* WS4R_FLAG_* bits from the query, within the server's allowed_flags */
} ws4r_auth_request;

/** The answer an authorization callback fills in through the ws4r_auth_result_* setters. */
typedef struct ws4r_auth_result ws4r_auth_result;

/**
 * Decides a handshake: fill `result` (identity, allowed flags) or deny it. Runs on a worker thread
 * of the core (never on an event loop), so it may block, e.g. on a session database; a call that
 * outlasts the configured `authorizer_timeout` fails that handshake with 504. May run on several
 * worker threads at once. `result` is valid only during the call.
 */
typedef void (*ws4r_authorize_fn)(void *context, const ws4r_auth_request *request, ws4r_auth_result *result);

/** Registers the authorization callback; only before ws4r_server_start(). NULL removes it. */
int ws4r_server_set_authorizer(ws4r_server *server, ws4r_authorize_fn authorize, void *context);

/** Setters for a callback's result; strings are copied. Return WS4R_OK or WS4R_EINVAL. */
int ws4r_auth_result_set_user(ws4r_auth_result *result, const char *user);
int ws4r_auth_result_add_group(ws4r_auth_result *result, const char *group);
int ws4r_auth_result_set_session(ws4r_auth_result *result, const char *session_key);
/** Narrows the flags: requested flags outside `flags` are dropped silently. Default WS4R_FLAGS_ALL. */
int ws4r_auth_result_set_allowed_flags(ws4r_auth_result *result, unsigned flags);
/** Refuses the handshake with an HTTP status (4xx/5xx) and a reason sent as the body; another status
 *  still refuses it, with 500, and returns WS4R_EINVAL. */
int ws4r_auth_result_deny(ws4r_auth_result *result, int status, const char *reason);

/**
 * Mints a signed identity token (HMAC-SHA256 with `secret`) that the server accepts in the query
 * parameter or cookie its `token_*` settings name, until `expires_at` (Unix seconds). `groups` may be
 * NULL when group_count is 0; user and session_key may be NULL. Writes a NUL-terminated token to
 * `out` when `capacity` suffices, else returns WS4R_ELIMIT; *length (may be NULL) gets the token's
 * length either way. WS4R_EINVAL for an empty secret, a newline in a name, or a comma in (or an
 * empty) group name. Any thread.
 */
int ws4r_token_mint(const void *secret, size_t secret_len, const char *user, const char *const *groups, size_t group_count,
                    const char *session_key, int64_t expires_at, char *out, size_t capacity, size_t *length);

/**
 * Starts the event loops, the Redis connections and, if configured, the standalone listener.
 * Returns when the listener is bound; Redis connects in the background (an unreachable Redis makes
 * the server degraded, not failed: it reconnects with back-off). Returns WS4R_OK, WS4R_ESTATE
 * (already started), WS4R_EBIND or WS4R_ECONFIG.
 */
int ws4r_server_start(ws4r_server *server);

/**
 * Closes every websocket with status 1001 (going away), waits until each is closed (at most
 * `timeout_ms`, then they are dropped), closes the listener and Redis, and stops the event loops.
 * Every release callback of adopted connections has run when this returns.
 * Idempotent. Must not be called from a release callback. Returns WS4R_OK.
 */
int ws4r_server_stop(ws4r_server *server, uint32_t timeout_ms);

/** Destructor. Stops the server if running, then frees it. Accepts NULL. */
void ws4r_server_destroy(ws4r_server *server);

/** Detail of the calling thread's last failed call on `server` ("" when that thread's last failure
 *  was on another handle, or none); valid until the calling thread's next call into the library,
 *  whatever other threads do. Never NULL. Any thread. */
const char *ws4r_server_errmsg(ws4r_server *server);

/**
 * The effective value of the setting `name` (as ws4r_settings_help() lists it; '-' and '_' alike,
 * any case) for this server, after ws4r_config, the environment, --config and the command line:
 * the text it was last given, else its default, e.g. "off" or "10000". Secrets (token_secret, the
 * password in redis_url) are included: never log the value of those. NULL for an unknown name, a
 * NULL argument or a server whose create failed. The string is owned by the server and valid
 * until ws4r_server_destroy(); the same name gives the same pointer. Any thread.
 */
const char *ws4r_server_setting(const ws4r_server *server, const char *name);

/** Copies the live figures into *stats (up to stats->struct_size). Returns WS4R_OK or WS4R_EINVAL. */
int ws4r_server_stats(ws4r_server *server, ws4r_stats *stats);

/** Content type of ws4r_server_metrics()'s text, for an HTTP response. */
#define WS4R_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/**
 * The server's figures in the Prometheus text exposition format (what `/metrics` serves): live
 * connections, handshakes by status, subscriptions, channels, messages and bytes in and out, drops,
 * slow-client closes, Redis state and reconnects, and the Redis-to-socket delivery latency histogram.
 * Writes NUL-terminated text to `out` when `capacity` suffices, else returns WS4R_ELIMIT; *length
 * (may be NULL) gets the text's length either way (call again with length + 1). Any thread.
 */
int ws4r_server_metrics(ws4r_server *server, char *out, size_t capacity, size_t *length);

/** Content type of ws4r_server_health()'s text. Since 0.5.0. */
#define WS4R_HEALTH_CONTENT_TYPE "application/json"

/**
 * The health document `/healthz` serves, one line of JSON: "status" ("ok", or "degraded" while the
 * Redis subscriber connection is down), "redis_connected", and the live figures of ws4r_stats.
 * Serve it with 200 either way: the server keeps serving and reconnects to Redis by itself.
 * Copied out as by ws4r_server_metrics(). Any thread. Since 0.5.0.
 */
int ws4r_server_health(ws4r_server *server, char *out, size_t capacity, size_t *length);

/**
 * Lifts the process's soft RLIMIT_NOFILE to its hard limit, as `ws4redis serve` does at start:
 * every websocket holds a descriptor, and the usual soft limit of 1,024 would refuse sockets long
 * before any other limit. Process-wide, so the library never does it unasked; call it before
 * ws4r_server_start() (which sizes the descriptor table by the limit). Returns the soft limit now
 * in force, 0 when it cannot be read. Any thread. Since 0.5.0.
 */
uint64_t ws4r_lift_descriptor_limit(void);

/* ---- Hosting: a host (e.g. on libmicrohttpd) parses HTTP and hands upgraded sockets over. ---- */

/**
 * A connection a host holds while its own HTTP stack reads request heads, under the server's
 * handshake_timeout (slowloris): unless ws4r_arrival_head_read() is called within that time from
 * ws4r_server_watch_arrival() (or from the last ws4r_arrival_awaiting_head()), the core shuts the
 * socket down (shutdown(2), SHUT_RDWR, from a core thread; never close(2)) and the host sees the
 * end of the stream and closes the connection as usual. Since 0.5.0.
 */
typedef struct ws4r_arrival ws4r_arrival;

/**
 * Starts watching `fd`, a connection the host has just accepted. *out gets NULL, with WS4R_OK,
 * when handshake_timeout is 0 (nothing to watch); every ws4r_arrival_* function accepts NULL.
 * WS4R_ESTATE before ws4r_server_start() or after ws4r_server_stop(). Once the server stopped,
 * no socket is shut down any more, but the arrival stays valid until destroyed. Any thread.
 */
int ws4r_server_watch_arrival(ws4r_server *server, int fd, ws4r_arrival **out);
/** A complete request head arrived: the deadline stops while the host answers the request. */
void ws4r_arrival_head_read(ws4r_arrival *arrival);
/** The request was answered and the connection is kept alive: the next head has the whole
 *  handshake_timeout again. No effect after ws4r_arrival_handed_over(). */
void ws4r_arrival_awaiting_head(ws4r_arrival *arrival);
/** The socket was handed to ws4r_server_adopt() (or otherwise left HTTP): never shut down again. */
void ws4r_arrival_handed_over(ws4r_arrival *arrival);
/** Stops watching and frees; call it before the host closes `fd`, so that the core never shuts down
 *  a descriptor number that was reused. Accepts NULL. The functions on one arrival must not be
 *  called concurrently; different arrivals may be used from different threads. */
void ws4r_arrival_destroy(ws4r_arrival *arrival);

/** An HTTP request as a host parsed it. All pointers are borrowed for the call. */
typedef struct ws4r_request {
    size_t struct_size;            /* set by ws4r_request_init() */
    const char *method;            /* "GET" */
    const char *path;              /* decoded path without the query, e.g. "/ws/chat" */
    const char *query;             /* raw query string without '?', or NULL */
    const char *http_version;      /* "HTTP/1.1" */
    const ws4r_header *headers;    /* the request headers, in order, names in any case */
    size_t header_count;
    const char *remote_address;    /* peer address for logs, or NULL */
} ws4r_request;

/** Sets request->struct_size and clears the other fields. Any thread. */
void ws4r_request_init(ws4r_request *request);

/** The outcome of checking a websocket handshake: accepted (101) or refused (4xx/5xx). */
typedef struct ws4r_handshake ws4r_handshake;

/**
 * Checks a websocket upgrade request against RFC 6455 and the server's rules (URL prefix, limits).
 * *out always receives a handle (unless memory runs out: WS4R_ENOMEM); the caller either passes it
 * to ws4r_server_adopt() after sending the 101 response, or frees it with ws4r_handshake_free().
 * Returns WS4R_OK when the upgrade is accepted (status 101), WS4R_EHANDSHAKE when refused: then
 * send the status, reason, headers and body the handle carries instead.
 */
int ws4r_server_check_handshake(ws4r_server *server, const ws4r_request *request, ws4r_handshake **out);

/** HTTP status to answer: 101 when accepted, else e.g. 400, 403, 404, 426, 503. */
int ws4r_handshake_status(const ws4r_handshake *handshake);
/** Reason phrase for the status line, e.g. "Switching Protocols". Owned by the handle. */
const char *ws4r_handshake_reason(const ws4r_handshake *handshake);
/** Plain-text response body for a refusal (empty for 101). Owned by the handle. */
const char *ws4r_handshake_body(const ws4r_handshake *handshake);
/** Number of response headers to send (e.g. Upgrade, Connection, Sec-WebSocket-Accept). */
size_t ws4r_handshake_header_count(const ws4r_handshake *handshake);
/** The index-th response header; *name and *value are owned by the handle. WS4R_EINVAL if out of range. */
int ws4r_handshake_header(const ws4r_handshake *handshake, size_t index, const char **name, const char **value);
/** Destructor. Accepts NULL. */
void ws4r_handshake_free(ws4r_handshake *handshake);

/** Receives the outcome of ws4r_server_check_handshake_async(); owns `handshake` from then on. */
typedef void (*ws4r_handshake_fn)(void *context, ws4r_handshake *handshake);

/**
 * Like ws4r_server_check_handshake() but never blocks (identity sources may take a while): `done`
 * is called exactly once with the handle, on a core thread, or on the caller's thread before this
 * returns when no identity source must be asked; it must not block or call ws4r_server_stop(). `*request` is copied before this returns. A check still pending
 * when the server stops may never call `done`: a host answers such requests itself (e.g. 503) before
 * it shuts down. Returns WS4R_OK when `done` will be called (unless the server stops first), or
 * WS4R_EINVAL/WS4R_ESTATE (then it will not).
 */
int ws4r_server_check_handshake_async(ws4r_server *server, const ws4r_request *request, ws4r_handshake_fn done, void *context);

/**
 * Called once when the core is done with an adopted connection and has closed its descriptor.
 * Runs on a core I/O thread; it must not block and must not call ws4r_server_stop().
 */
typedef void (*ws4r_release_fn)(void *context);

/**
 * Hands an upgraded connection to the core, after the host has sent the 101 response.
 * `fd`: a connected stream socket the core takes ownership of (with libmicrohttpd pass a dup() of
 * the upgraded socket); the core closes it when the websocket ends. `preface`: bytes the host
 * already read past the request headers (may be NULL when `preface_len` is 0), copied.
 * `handshake`: an accepted handle from ws4r_server_check_handshake(); always consumed, even on
 * failure. `release` (may be NULL) is called exactly once with `context` after the core closed `fd`,
 * also when this function fails (then before it returns). It does not wait for a core thread to
 * take the socket: should registering it fail there, the core closes `fd` and calls `release` on
 * that thread.
 * Returns WS4R_OK, WS4R_EINVAL or WS4R_ESTATE (server not running).
 */
int ws4r_server_adopt(ws4r_server *server, ws4r_handshake *handshake, int fd, const void *preface,
                      size_t preface_len, ws4r_release_fn release, void *context);

/* ======================================================================================= */
/* Publishing (what django-websocket-redis's RedisPublisher does)                          */
/* ======================================================================================= */

typedef struct ws4r_publisher ws4r_publisher;

/** Who receives a message. Lists are borrowed arrays of `*_count` strings. */
typedef struct ws4r_audience {
    size_t struct_size;            /* set by ws4r_audience_init() */
    const char *facility;          /* required */
    int broadcast;                 /* nonzero: the broadcast channel of the facility */
    const char *const *users;      /* user names */
    size_t user_count;
    const char *const *groups;     /* group names */
    size_t group_count;
    const char *const *sessions;   /* session keys */
    size_t session_count;
} ws4r_audience;

/** Sets audience->struct_size and clears the other fields. Any thread. */
void ws4r_audience_init(ws4r_audience *audience);

/**
 * Constructor. Connects to Redis at `redis_url` (same forms as ws4r_config.redis_url; NULL: the
 * default) with key prefix `key_prefix` (NULL or "": none). Unless memory runs out, *out receives a
 * handle even on failure, for ws4r_publisher_errmsg(); always destroy it.
 * Returns WS4R_OK, WS4R_EINVAL, WS4R_ECONFIG or WS4R_EREDIS.
 */
int ws4r_publisher_create(const char *redis_url, const char *key_prefix, ws4r_publisher **out);

/**
 * Publishes `message` to every channel of `audience`, in the original's order (broadcast, groups,
 * users, sessions): PUBLISH, and SET channel message EX expire when `expire_seconds` > 0; all in one
 * pipelined round trip. Blocks until Redis answered. *receivers (may be NULL) gets the sum of
 * PUBLISH replies. Reconnects once if the connection was lost.
 * Returns WS4R_OK, WS4R_EINVAL or WS4R_EREDIS.
 */
int ws4r_publisher_publish(ws4r_publisher *publisher, const ws4r_audience *audience, const void *message,
                           size_t message_len, int64_t expire_seconds, uint64_t *receivers);

/**
 * Reads the persisted message of an audience as the original's fetch_message: the first stored
 * value of, in order, its sessions, users, groups and broadcast channel. Copies up to `capacity`
 * bytes to `buffer`; *length gets the message's full length and *found 1 (also with WS4R_ELIMIT);
 * when none is stored, *length is 0 and *found 0.
 * Returns WS4R_OK, WS4R_ELIMIT when `capacity` was too small, WS4R_EREDIS, or WS4R_EINVAL (also when
 * the audience names no channel).
 */
int ws4r_publisher_fetch(ws4r_publisher *publisher, const ws4r_audience *audience, void *buffer, size_t capacity,
                         size_t *length, int *found);

/** Detail of the calling thread's last failed call on `publisher`, as ws4r_server_errmsg(). Never NULL. */
const char *ws4r_publisher_errmsg(ws4r_publisher *publisher);

/** Destructor. Closes the Redis connection. Accepts NULL. */
void ws4r_publisher_destroy(ws4r_publisher *publisher);

/* ======================================================================================= */
/* The function table, for loading the library with dlopen (see plugin/ws4r_plugin.h)     */
/* ======================================================================================= */

/** Every function above, for callers that look up one symbol. Functions are only appended. */
typedef struct ws4r_api {
    size_t struct_size;
    unsigned abi_version;
    const char *(*strerror)(int code);
    unsigned (*version_number)(void);
    const char *(*version_string)(void);
    void (*config_init)(ws4r_config *config);
    void (*stats_init)(ws4r_stats *stats);
    void (*request_init)(ws4r_request *request);
    void (*audience_init)(ws4r_audience *audience);
    int (*server_create)(const ws4r_config *config, ws4r_server **out);
    int (*server_start)(ws4r_server *server);
    int (*server_stop)(ws4r_server *server, uint32_t timeout_ms);
    void (*server_destroy)(ws4r_server *server);
    const char *(*server_errmsg)(ws4r_server *server);
    int (*server_stats)(ws4r_server *server, ws4r_stats *stats);
    int (*server_check_handshake)(ws4r_server *server, const ws4r_request *request, ws4r_handshake **out);
    int (*handshake_status)(const ws4r_handshake *handshake);
    const char *(*handshake_reason)(const ws4r_handshake *handshake);
    const char *(*handshake_body)(const ws4r_handshake *handshake);
    size_t (*handshake_header_count)(const ws4r_handshake *handshake);
    int (*handshake_header)(const ws4r_handshake *handshake, size_t index, const char **name, const char **value);
    void (*handshake_free)(ws4r_handshake *handshake);
    int (*server_adopt)(ws4r_server *server, ws4r_handshake *handshake, int fd, const void *preface,
                        size_t preface_len, ws4r_release_fn release, void *context);
    int (*publisher_create)(const char *redis_url, const char *key_prefix, ws4r_publisher **out);
    int (*publisher_publish)(ws4r_publisher *publisher, const ws4r_audience *audience, const void *message,
                             size_t message_len, int64_t expire_seconds, uint64_t *receivers);
    const char *(*publisher_errmsg)(ws4r_publisher *publisher);
    void (*publisher_destroy)(ws4r_publisher *publisher);
    const char *(*settings_help)(const char *format);
    int (*server_create_with_args)(const ws4r_config *base, int argc, const char *const *argv, ws4r_server **out);
    int (*server_set_authorizer)(ws4r_server *server, ws4r_authorize_fn authorize, void *context);
    int (*auth_result_set_user)(ws4r_auth_result *result, const char *user);
    int (*auth_result_add_group)(ws4r_auth_result *result, const char *group);
    int (*auth_result_set_session)(ws4r_auth_result *result, const char *session_key);
    int (*auth_result_set_allowed_flags)(ws4r_auth_result *result, unsigned flags);
    int (*auth_result_deny)(ws4r_auth_result *result, int status, const char *reason);
    int (*token_mint)(const void *secret, size_t secret_len, const char *user, const char *const *groups, size_t group_count,
                      const char *session_key, int64_t expires_at, char *out, size_t capacity, size_t *length);
    int (*server_check_handshake_async)(ws4r_server *server, const ws4r_request *request, ws4r_handshake_fn done, void *context);
    int (*publisher_fetch)(ws4r_publisher *publisher, const ws4r_audience *audience, void *buffer, size_t capacity,
                           size_t *length, int *found);
    int (*server_metrics)(ws4r_server *server, char *out, size_t capacity, size_t *length);
    /* Since 0.4.0. */
    const char *(*server_setting)(const ws4r_server *server, const char *name);
    /* Since 0.5.0. */
    int (*server_health)(ws4r_server *server, char *out, size_t capacity, size_t *length);
    uint64_t (*lift_descriptor_limit)(void);
    int (*server_watch_arrival)(ws4r_server *server, int fd, ws4r_arrival **out);
    void (*arrival_head_read)(ws4r_arrival *arrival);
    void (*arrival_awaiting_head)(ws4r_arrival *arrival);
    void (*arrival_handed_over)(ws4r_arrival *arrival);
    void (*arrival_destroy)(ws4r_arrival *arrival);
} ws4r_api;

/**
 * The function table for ABI major version `abi_version`, or NULL when this library does not
 * implement that version. The table is static: never freed. Any thread.
 * This is the one symbol a dlopen user needs; its type is ws4r_get_api_fn.
 */
const ws4r_api *ws4r_get_api(unsigned abi_version);
typedef const ws4r_api *(*ws4r_get_api_fn)(unsigned abi_version);

#ifdef __cplusplus
}
#endif

#endif /* WS4REDIS_H */
