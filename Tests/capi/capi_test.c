/*
 * capi_test.c: checks the C ABI of libws4redis (include/ws4redis.h) as a C program sees it.
 * Needs a private Redis: REDIS_URL and REDIS_PORT (scripts/with-redis.sh sets both); it verifies
 * what the library did there with its own hiredis connections.
 * Prints every check and ends with "N passed, M failed" (tests, not checks); exit status 1 when
 * a test failed, 2 when the environment is missing.
 */
#include <ws4redis.h>

#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct env {
    const char *redis_url;
    int redis_port;
    char facility[64];   /* unique per run, so that keys of earlier runs cannot make a check pass */
};

static int failed_checks; /* of the test running now */

__attribute__((format(printf, 2, 3)))
static bool check(bool ok, const char *format, ...) {
    va_list args;
    va_start(args, format);
    printf("  %s ", ok ? "ok  " : "FAIL");
    vprintf(format, args);
    putchar('\n');
    va_end(args);
    if (!ok)
        failed_checks++;
    return ok;
}

/* ---- Redis helpers (hiredis 0.14) ---- */

static redisContext *redis_connect(const struct env *env) {
    struct timeval timeout = { .tv_sec = 5 };
    redisContext *redis = redisConnectWithTimeout("127.0.0.1", env->redis_port, timeout);
    if (!check(redis != NULL && redis->err == 0, "hiredis connects to 127.0.0.1:%d", env->redis_port)) {
        redisFree(redis);
        return NULL;
    }
    /* Also bounds the wait for a pub/sub message. */
    redisSetTimeout(redis, timeout);
    return redis;
}

/* Checks that `key` holds `message` and expires within (0, max_ttl] seconds. */
static void check_stored(redisContext *redis, const char *key, const void *message, size_t length, long long max_ttl) {
    redisReply *value = redisCommand(redis, "GET %s", key);
    check(value != NULL && value->type == REDIS_REPLY_STRING && (size_t)value->len == length &&
              memcmp(value->str, message, length) == 0,
          "GET %s is the message", key);
    freeReplyObject(value);
    redisReply *ttl = redisCommand(redis, "TTL %s", key);
    check(ttl != NULL && ttl->type == REDIS_REPLY_INTEGER && ttl->integer > 0 && ttl->integer <= max_ttl,
          "TTL %s is in (0, %lld]: %lld", key, max_ttl, ttl != NULL ? ttl->integer : -99);
    freeReplyObject(ttl);
}

static bool is_message(const redisReply *reply, const char *channel, const void *message, size_t length) {
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3)
        return false;
    for (size_t i = 0; i < 3; i++)
        if (reply->element[i]->type != REDIS_REPLY_STRING)
            return false;
    return strcmp(reply->element[0]->str, "message") == 0 && strcmp(reply->element[1]->str, channel) == 0 &&
           (size_t)reply->element[2]->len == length && memcmp(reply->element[2]->str, message, length) == 0;
}

/* ---- Tests ---- */

static void test_version(const struct env *env) {
    (void)env;
    check(ws4r_version_number() == WS4R_VERSION_NUMBER, "ws4r_version_number() 0x%06x == WS4R_VERSION_NUMBER 0x%06x",
          ws4r_version_number(), WS4R_VERSION_NUMBER);
    check(strcmp(ws4r_version_string(), WS4R_VERSION_STRING) == 0, "ws4r_version_string() \"%s\" == \"%s\"",
          ws4r_version_string(), WS4R_VERSION_STRING);
}

static void test_strerror(const struct env *env) {
    (void)env;
    for (int code = WS4R_OK; code <= WS4R_ELIMIT; code++) {
        const char *name = ws4r_strerror(code);
        if (!check(name != NULL && name[0] != '\0', "ws4r_strerror(%d) = \"%s\"", code, name != NULL ? name : "(null)"))
            continue;
        for (int other = WS4R_OK; other < code; other++)
            if (strcmp(name, ws4r_strerror(other)) == 0)
                check(false, "ws4r_strerror(%d) differs from ws4r_strerror(%d)", code, other);
    }
    const int unknown[] = { -1, WS4R_ELIMIT + 1, 9999 };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *name = ws4r_strerror(unknown[i]);
        check(name != NULL && name[0] != '\0', "ws4r_strerror(%d) (unknown) = \"%s\"", unknown[i],
              name != NULL ? name : "(null)");
    }
}

static void test_api_table(const struct env *env) {
    (void)env;
    const ws4r_api *api = ws4r_get_api(WS4R_ABI_VERSION);
    if (!check(api != NULL, "ws4r_get_api(WS4R_ABI_VERSION) is not NULL"))
        return;
    check(api->struct_size == sizeof(ws4r_api), "struct_size %zu == sizeof(ws4r_api) %zu", api->struct_size,
          sizeof(ws4r_api));
    check(api->abi_version == WS4R_ABI_VERSION, "abi_version %u == %d", api->abi_version, WS4R_ABI_VERSION);
    check(api->version_number() == ws4r_version_number(), "calls through the table reach the library");
    check(ws4r_get_api(WS4R_ABI_VERSION + 1) == NULL, "ws4r_get_api(WS4R_ABI_VERSION + 1) is NULL");
    check(ws4r_get_api(0) == NULL, "ws4r_get_api(0) is NULL");
}

static void test_publisher_bad_url(const struct env *env) {
    (void)env;
    ws4r_publisher *publisher = NULL;
    int status = ws4r_publisher_create("bogus://nowhere", NULL, &publisher);
    check(status == WS4R_ECONFIG || status == WS4R_EINVAL, "publisher_create(\"bogus://nowhere\") fails: %d (%s)", status,
          ws4r_strerror(status));
    if (check(publisher != NULL, "a handle comes back anyway, for the error message")) {
        const char *message = ws4r_publisher_errmsg(publisher);
        check(message != NULL && message[0] != '\0', "errmsg: \"%s\"", message != NULL ? message : "(null)");
    }
    ws4r_publisher_destroy(publisher);
}

/* Publishes `message` through a new publisher; returns the status, *receivers the count. */
static int publish(const struct env *env, const char *key_prefix, const ws4r_audience *audience, const void *message,
                   size_t length, uint64_t *receivers) {
    ws4r_publisher *publisher = NULL;
    int status = ws4r_publisher_create(env->redis_url, key_prefix, &publisher);
    if (check(status == WS4R_OK, "publisher_create(%s, %s): %s", env->redis_url, key_prefix ? key_prefix : "NULL",
              status == WS4R_OK || publisher == NULL ? ws4r_strerror(status) : ws4r_publisher_errmsg(publisher))) {
        status = ws4r_publisher_publish(publisher, audience, message, length, 10, receivers);
        check(status == WS4R_OK, "publisher_publish with expire 10: %s",
              status == WS4R_OK ? ws4r_strerror(status) : ws4r_publisher_errmsg(publisher));
    }
    ws4r_publisher_destroy(publisher);
    return status;
}

static void test_publish_audiences(const struct env *env) {
    redisContext *redis = redis_connect(env);
    redisContext *subscriber = redis_connect(env);
    char channel[128];
    snprintf(channel, sizeof channel, "broadcast:%s", env->facility);
    redisReply *subscribed = subscriber != NULL ? redisCommand(subscriber, "SUBSCRIBE %s", channel) : NULL;
    check(subscribed != NULL && subscribed->type == REDIS_REPLY_ARRAY, "a second connection SUBSCRIBEs to %s", channel);
    freeReplyObject(subscribed);

    /* Binary-safe: the length counts, not a NUL. */
    static const char message[] = "hello \xc3\xa9\x00 world";
    const char *const users[] = { "alice" }, *const groups[] = { "g" }, *const sessions[] = { "s" };
    ws4r_audience audience;
    ws4r_audience_init(&audience);
    check(audience.struct_size == sizeof audience, "ws4r_audience_init sets struct_size");
    audience.facility = env->facility;
    audience.broadcast = 1;
    audience.users = users;
    audience.user_count = 1;
    audience.groups = groups;
    audience.group_count = 1;
    audience.sessions = sessions;
    audience.session_count = 1;
    uint64_t receivers = 0;
    if (publish(env, NULL, &audience, message, sizeof message - 1, &receivers) == WS4R_OK)
        check(receivers == 1, "receivers counts the one subscriber: %llu", (unsigned long long)receivers);

    if (redis != NULL) {
        const char *const formats[] = { "broadcast:%s", "user:alice:%s", "group:g:%s", "session:s:%s" };
        for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
            char key[128];
            snprintf(key, sizeof key, formats[i], env->facility);
            check_stored(redis, key, message, sizeof message - 1, 10);
        }
    }
    redisReply *delivered = NULL;
    if (subscriber != NULL && redisGetReply(subscriber, (void **)&delivered) != REDIS_OK)
        delivered = NULL;
    check(is_message(delivered, channel, message, sizeof message - 1), "the subscriber receives the message on %s",
          channel);
    freeReplyObject(delivered);
    redisFree(subscriber);
    redisFree(redis);
}

static void test_key_prefix(const struct env *env) {
    redisContext *redis = redis_connect(env);
    char facility[80], key[128], unprefixed[128];
    snprintf(facility, sizeof facility, "%s-prefixed", env->facility);
    snprintf(key, sizeof key, "pfx:broadcast:%s", facility);
    snprintf(unprefixed, sizeof unprefixed, "broadcast:%s", facility);
    static const char message[] = "with a prefix";
    ws4r_audience audience;
    ws4r_audience_init(&audience);
    audience.facility = facility;
    audience.broadcast = 1;
    uint64_t receivers = 0;
    if (publish(env, "pfx", &audience, message, sizeof message - 1, &receivers) == WS4R_OK && redis != NULL) {
        check_stored(redis, key, message, sizeof message - 1, 10);
        redisReply *exists = redisCommand(redis, "EXISTS %s", unprefixed);
        check(exists != NULL && exists->type == REDIS_REPLY_INTEGER && exists->integer == 0, "%s does not exist",
              unprefixed);
        freeReplyObject(exists);
    }
    redisFree(redis);
}

static const char *find_header(const ws4r_handshake *handshake, const char *wanted) {
    for (size_t i = 0; i < ws4r_handshake_header_count(handshake); i++) {
        const char *name, *value;
        if (ws4r_handshake_header(handshake, i, &name, &value) == WS4R_OK && strcasecmp(name, wanted) == 0)
            return value;
    }
    return NULL;
}

/* Checks GET /ws/chat?subscribe-broadcast with `headers`; returns the handshake (caller frees). */
static ws4r_handshake *handshake(ws4r_server *server, const ws4r_header *headers, size_t count, int expected_status,
                                 const char *what) {
    ws4r_request request;
    ws4r_request_init(&request);
    request.method = "GET";
    request.path = "/ws/chat";
    request.query = "subscribe-broadcast";
    request.http_version = "HTTP/1.1";
    request.headers = headers;
    request.header_count = count;
    request.remote_address = "127.0.0.1:40000";
    ws4r_handshake *result = NULL;
    int status = ws4r_server_check_handshake(server, &request, &result);
    int expected = expected_status == 101 ? WS4R_OK : WS4R_EHANDSHAKE;
    check(status == expected && result != NULL, "%s: check_handshake returns %s: %s", what, ws4r_strerror(expected),
          ws4r_strerror(status));
    if (result != NULL)
        check(ws4r_handshake_status(result) == expected_status, "%s: status %d == %d (%s)", what,
              ws4r_handshake_status(result), expected_status, ws4r_handshake_reason(result));
    return result;
}

static void check_handshakes(ws4r_server *server) {
    const ws4r_header valid[] = {
        { "Host", "127.0.0.1" },
        { "Upgrade", "websocket" },
        { "Connection", "Upgrade" },
        { "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==" },
        { "Sec-WebSocket-Version", "13" },
    };
    enum { COUNT = sizeof valid / sizeof valid[0] };
    ws4r_handshake *accepted = handshake(server, valid, COUNT, 101, "valid request");
    const char *accept = accepted != NULL ? find_header(accepted, "Sec-WebSocket-Accept") : NULL;
    check(accept != NULL && strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
          "Sec-WebSocket-Accept: %s (RFC 6455 example)", accept != NULL ? accept : "(missing)");
    ws4r_handshake_free(accepted);

    ws4r_header version8[COUNT];
    memcpy(version8, valid, sizeof valid);
    version8[4].value = "8";
    ws4r_handshake *refused = handshake(server, version8, COUNT, 426, "version 8");
    const char *version = refused != NULL ? find_header(refused, "Sec-WebSocket-Version") : NULL;
    check(version != NULL && strcmp(version, "13") == 0, "version 8: Sec-WebSocket-Version: %s",
          version != NULL ? version : "(missing)");
    ws4r_handshake_free(refused);

    /* Everything but Upgrade. */
    const ws4r_header no_upgrade[] = { valid[0], valid[2], valid[3], valid[4] };
    ws4r_handshake_free(handshake(server, no_upgrade, sizeof no_upgrade / sizeof no_upgrade[0], 400, "no Upgrade"));
}

/* The Prometheus text after check_handshakes(): its handshakes are counted by status. */
static void check_metrics(ws4r_server *server) {
    char small[8];
    size_t length = 0;
    int status = ws4r_server_metrics(server, small, sizeof small, &length);
    check(status == WS4R_ELIMIT && length > sizeof small, "server_metrics into 8 bytes: %s, needs %zu", ws4r_strerror(status), length);
    char *text = malloc(length + 1);
    size_t written = 0;
    status = ws4r_server_metrics(server, text, length + 1, &written);
    check(status == WS4R_OK && written == length && strlen(text) == length, "server_metrics with length + 1 bytes: %s", ws4r_strerror(status));
    check(strstr(text, "ws4redis_handshakes_total{status=\"101\"}") != NULL, "metrics count accepted handshakes:\n%s", text);
    check(strstr(text, "ws4redis_handshakes_total{status=\"426\"} 1") != NULL, "metrics count refused handshakes by status");
    check(strstr(text, "ws4redis_connections 0") != NULL, "metrics report 0 connections");
    check(strstr(text, "# TYPE ws4redis_delivery_latency_seconds histogram") != NULL, "metrics carry the latency histogram");
    check(ws4r_get_api(WS4R_ABI_VERSION)->server_metrics == ws4r_server_metrics, "server_metrics is in the function table");
    free(text);
}

static void test_server(const struct env *env) {
    ws4r_config config;
    ws4r_config_init(&config);
    check(config.struct_size == sizeof config, "ws4r_config_init sets struct_size");
    config.redis_url = env->redis_url;
    config.echo_path = "/echo";
    config.io_threads = 1;
    ws4r_server *server = NULL;
    int status = ws4r_server_create(&config, &server);
    if (!check(status == WS4R_OK && server != NULL, "server_create (no listener, echo path): %s",
               status == WS4R_OK || server == NULL ? ws4r_strerror(status) : ws4r_server_errmsg(server))) {
        ws4r_server_destroy(server);
        return;
    }
    status = ws4r_server_start(server);
    check(status == WS4R_OK, "server_start: %s", status == WS4R_OK ? ws4r_strerror(status) : ws4r_server_errmsg(server));
    check(ws4r_server_start(server) == WS4R_ESTATE, "a second server_start is WS4R_ESTATE");

    ws4r_stats stats;
    ws4r_stats_init(&stats);
    check(stats.struct_size == sizeof stats, "ws4r_stats_init sets struct_size");
    status = ws4r_server_stats(server, &stats);
    check(status == WS4R_OK && stats.connections == 0 && stats.connections_total == 0,
          "server_stats: %s, connections %llu, connections_total %llu", ws4r_strerror(status),
          (unsigned long long)stats.connections, (unsigned long long)stats.connections_total);

    check_handshakes(server);
    check_metrics(server);
    check(ws4r_server_stop(server, 2000) == WS4R_OK, "server_stop");
    ws4r_server_destroy(server);
}

/* ---- Settings, tokens, authorization, asynchronous checks, fetch ---- */

static void test_settings_help(const struct env *env) {
    (void)env;
    const char *text = ws4r_settings_help("text");
    check(text != NULL && strstr(text, "--token-secret") != NULL && strstr(text, "--redis-url") != NULL,
          "settings_help(\"text\") lists --token-secret and --redis-url");
    const char *markdown = ws4r_settings_help("markdown");
    check(markdown != NULL && strchr(markdown, '|') != NULL && strstr(markdown, "token_secret") != NULL,
          "settings_help(\"markdown\") is a table naming token_secret");
}

/* The secret of the tokens below: 32 bytes, the least the core accepts. */
#define TOKEN_SECRET "known-vector-secret-of-32-bytes!"

/* The token of the known vector: base64url("v1\nalice\nstaff,admins\nsess1\n4102444800") "."
   base64url(HMAC-SHA256(TOKEN_SECRET, that payload)), computed with Python's hmac and base64. */
static const char known_token[] =
    "djEKYWxpY2UKc3RhZmYsYWRtaW5zCnNlc3MxCjQxMDI0NDQ4MDA.ZiRo-R0LfI-hLMbiKdsNWhbRWhrp0QkmaYriLZMvbEc";
/* The same identity, expired at 1000. */
static const char expired_token[] = "djEKYWxpY2UKc3RhZmYsYWRtaW5zCnNlc3MxCjEwMDA.MLNNKXf9iWwiDNnZHI6ACbEBsAvFAA97WppD1HBvOLg";

/* Mints alice's token (groups staff, admins; session sess1) into `out`; returns the status. */
static int mint_alice(int64_t expires_at, char *out, size_t capacity, size_t *length) {
    static const char *const groups[] = { "staff", "admins" };
    return ws4r_token_mint(TOKEN_SECRET, strlen(TOKEN_SECRET), "alice", groups, 2, "sess1", expires_at, out, capacity, length);
}

static void test_token_mint(const struct env *env) {
    (void)env;
    char small[8];
    size_t length = 0;
    int status = mint_alice(4102444800, small, sizeof small, &length);
    check(status == WS4R_ELIMIT && length == sizeof known_token - 1,
          "a %zu-byte buffer: %s (WS4R_ELIMIT), length %zu == %zu", sizeof small, ws4r_strerror(status), length,
          sizeof known_token - 1);
    /* Exactly the length is one byte short: the NUL needs room too. */
    char exact[sizeof known_token - 1];
    status = mint_alice(4102444800, exact, sizeof exact, &length);
    check(status == WS4R_ELIMIT, "a buffer without room for the NUL: %s (WS4R_ELIMIT)", ws4r_strerror(status));

    char token[256];
    length = 0;
    status = mint_alice(4102444800, token, sizeof token, &length);
    check(status == WS4R_OK && strcmp(token, known_token) == 0 && length == strlen(known_token),
          "the known vector: %s, \"%s\" (length %zu)", ws4r_strerror(status), status == WS4R_OK ? token : "", length);
    status = mint_alice(1000, token, sizeof token, NULL);
    check(status == WS4R_OK && strcmp(token, expired_token) == 0, "expires_at 1000, length NULL: %s, \"%s\"",
          ws4r_strerror(status), status == WS4R_OK ? token : "");

    status = ws4r_token_mint(TOKEN_SECRET, strlen(TOKEN_SECRET), NULL, NULL, 0, NULL, 4102444800, token, sizeof token, &length);
    check(status == WS4R_OK && length == strlen(token) && strchr(token, '.') != NULL,
          "no user, groups or session: %s, \"%s\"", ws4r_strerror(status), status == WS4R_OK ? token : "");
    status = ws4r_token_mint(NULL, 0, "alice", NULL, 0, NULL, 4102444800, token, sizeof token, &length);
    check(status == WS4R_EINVAL, "no secret: %s (WS4R_EINVAL)", ws4r_strerror(status));
    status = ws4r_token_mint("s3cret", 6, "alice", NULL, 0, NULL, 4102444800, token, sizeof token, &length);
    check(status == WS4R_EINVAL, "a 6-byte secret: %s (WS4R_EINVAL: at least 32 bytes)", ws4r_strerror(status));
    status = ws4r_token_mint(TOKEN_SECRET, strlen(TOKEN_SECRET), "alice:chat", NULL, 0, NULL, 4102444800, token, sizeof token, &length);
    check(status == WS4R_EINVAL, "user alice:chat: %s (WS4R_EINVAL: ':' makes channel names ambiguous)", ws4r_strerror(status));
}

/* A request for an accepted websocket handshake on `path`?`query`, with `extra` headers appended. */
struct probe {
    ws4r_header headers[8];
    ws4r_request request;
};

static const ws4r_request *probe_request(struct probe *probe, const char *path, const char *query,
                                         const ws4r_header *extra, size_t extra_count) {
    static const ws4r_header valid[] = {
        { "Host", "127.0.0.1" },
        { "Upgrade", "websocket" },
        { "Connection", "Upgrade" },
        { "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==" },
        { "Sec-WebSocket-Version", "13" },
    };
    size_t count = sizeof valid / sizeof valid[0];
    memcpy(probe->headers, valid, sizeof valid);
    for (size_t i = 0; i < extra_count && count < sizeof probe->headers / sizeof probe->headers[0]; i++)
        probe->headers[count++] = extra[i];
    ws4r_request_init(&probe->request);
    probe->request.method = "GET";
    probe->request.path = path;
    probe->request.query = query;
    probe->request.http_version = "HTTP/1.1";
    probe->request.headers = probe->headers;
    probe->request.header_count = count;
    probe->request.remote_address = "127.0.0.1:40001";
    return &probe->request;
}

/* Checks a handshake synchronously: the status (101 or a refusal) and, for a refusal, that the
   body contains `body_part` (unless NULL). */
static void expect_handshake(ws4r_server *server, const char *query, const ws4r_header *extra, size_t extra_count,
                             int expected_status, const char *body_part, const char *what) {
    struct probe probe;
    ws4r_handshake *result = NULL;
    int status = ws4r_server_check_handshake(server, probe_request(&probe, "/ws/chat", query, extra, extra_count), &result);
    int expected = expected_status == 101 ? WS4R_OK : WS4R_EHANDSHAKE;
    check(status == expected && result != NULL, "%s: check_handshake returns %s: %s", what, ws4r_strerror(expected),
          ws4r_strerror(status));
    if (result == NULL)
        return;
    const char *body = ws4r_handshake_body(result);
    if (body == NULL)
        body = "(null)";
    int shown = (int)strcspn(body, "\n"); /* the first line */
    check(ws4r_handshake_status(result) == expected_status, "%s: status %d == %d (%s) %.*s", what,
          ws4r_handshake_status(result), expected_status, ws4r_handshake_reason(result), shown, body);
    if (body_part != NULL)
        check(strstr(body, body_part) != NULL, "%s: the body mentions \"%s\": %.*s", what, body_part, shown, body);
    ws4r_handshake_free(result);
}

/* Creates and starts a server from command-line arguments plus the test's Redis and one thread. */
static ws4r_server *server_with_args(const struct env *env, const char *const *args, int count,
                                     ws4r_authorize_fn authorize, void *context) {
    const char *argv[16] = { "--redis-url", env->redis_url, "--threads", "1" };
    int argc = 4;
    for (int i = 0; i < count && argc < 16; i++)
        argv[argc++] = args[i];
    ws4r_server *server = NULL;
    int status = ws4r_server_create_with_args(NULL, argc, argv, &server);
    if (!check(status == WS4R_OK && server != NULL, "server_create_with_args: %s",
               status == WS4R_OK || server == NULL ? ws4r_strerror(status) : ws4r_server_errmsg(server))) {
        ws4r_server_destroy(server);
        return NULL;
    }
    if (authorize != NULL) {
        status = ws4r_server_set_authorizer(server, authorize, context);
        check(status == WS4R_OK, "server_set_authorizer before start: %s", ws4r_strerror(status));
    }
    status = ws4r_server_start(server);
    if (!check(status == WS4R_OK, "server_start: %s", status == WS4R_OK ? "ok" : ws4r_server_errmsg(server))) {
        ws4r_server_destroy(server);
        return NULL;
    }
    return server;
}

static void test_token_handshakes(const struct env *env) {
    ws4r_server *bad = NULL;
    const char *const unknown[] = { "--no-such-setting", "x" };
    int status = ws4r_server_create_with_args(NULL, 2, unknown, &bad);
    const char *message = bad != NULL ? ws4r_server_errmsg(bad) : "(no handle)";
    check(status == WS4R_ECONFIG, "--no-such-setting x: %s (WS4R_ECONFIG)", ws4r_strerror(status));
    check(strstr(message, "no-such-setting") != NULL, "the errmsg names it: \"%s\"", message);
    ws4r_server_destroy(bad);

    const char *const args[] = { "--token-secret", TOKEN_SECRET, "--echo-path", "/echo", "--missing-identity", "refuse" };
    ws4r_server *server = server_with_args(env, args, 6, NULL, NULL);
    if (server == NULL)
        return;
    char query[512];
    snprintf(query, sizeof query, "subscribe-user&ws4redis-token=%s", known_token);
    expect_handshake(server, query, NULL, 0, 101, NULL, "subscribe-user with alice's token");

    /* Change a character in the middle of the signature (the last one may carry padding bits only). */
    char tampered[sizeof known_token];
    memcpy(tampered, known_token, sizeof known_token);
    char *signature = strchr(tampered, '.') + 1;
    signature[10] = signature[10] == 'A' ? 'B' : 'A';
    snprintf(query, sizeof query, "subscribe-user&ws4redis-token=%s", tampered);
    expect_handshake(server, query, NULL, 0, 403, "signature", "a tampered token");

    char token[256];
    status = mint_alice(1000, token, sizeof token, NULL);
    check(status == WS4R_OK, "mint a token that expired at 1000: %s", ws4r_strerror(status));
    snprintf(query, sizeof query, "subscribe-user&ws4redis-token=%s", token);
    expect_handshake(server, query, NULL, 0, 403, "expired", "an expired token");

    expect_handshake(server, "subscribe-user", NULL, 0, 403, NULL, "subscribe-user without a token");
    expect_handshake(server, "subscribe-broadcast", NULL, 0, 101, NULL, "subscribe-broadcast without a token");

    /* The token in the cookie the token_cookie setting names. */
    char cookie[512];
    snprintf(cookie, sizeof cookie, "other=1; ws4redis_token=%s", known_token);
    const ws4r_header cookie_header[] = { { "Cookie", cookie } };
    expect_handshake(server, "subscribe-user", cookie_header, 1, 101, NULL, "subscribe-user with the token in a cookie");
    check(ws4r_server_stop(server, 2000) == WS4R_OK, "server_stop");
    ws4r_server_destroy(server);
}

/* What the authorization callback does, chosen per handshake, and what it saw. */
enum authorizer_mode { ALLOW_BOB, DENY, SLOW };

struct authorizer_log {
    pthread_mutex_t lock;
    enum authorizer_mode mode;
    int calls;
    unsigned requested_flags;
    char facility[64], method[16], path[64];
    char cookie_a[16], cookie_session[16];
    int setter_failures;
};

static struct authorizer_log authorizer_log = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void copy_string(char *to, size_t size, const char *from) {
    snprintf(to, size, "%s", from != NULL ? from : "(null)");
}

static void authorize(void *context, const ws4r_auth_request *request, ws4r_auth_result *result) {
    struct authorizer_log *log = context;
    pthread_mutex_lock(&log->lock);
    enum authorizer_mode mode = log->mode;
    log->calls++;
    log->requested_flags = request->requested_flags;
    copy_string(log->facility, sizeof log->facility, request->facility);
    copy_string(log->method, sizeof log->method, request->method);
    copy_string(log->path, sizeof log->path, request->path);
    copy_string(log->cookie_a, sizeof log->cookie_a, NULL);
    copy_string(log->cookie_session, sizeof log->cookie_session, NULL);
    for (size_t i = 0; i < request->cookie_count; i++) {
        if (strcmp(request->cookies[i].name, "a") == 0)
            copy_string(log->cookie_a, sizeof log->cookie_a, request->cookies[i].value);
        if (strcmp(request->cookies[i].name, "sessionid") == 0)
            copy_string(log->cookie_session, sizeof log->cookie_session, request->cookies[i].value);
    }
    pthread_mutex_unlock(&log->lock);

    int failures = 0;
    switch (mode) {
    case ALLOW_BOB:
        failures += ws4r_auth_result_set_user(result, "bob") != WS4R_OK;
        failures += ws4r_auth_result_add_group(result, "g") != WS4R_OK;
        failures += ws4r_auth_result_set_allowed_flags(result, WS4R_FLAG_SUBSCRIBE_BROADCAST | WS4R_FLAG_SUBSCRIBE_USER) != WS4R_OK;
        break;
    case DENY:
        failures += ws4r_auth_result_deny(result, 403, "nope") != WS4R_OK;
        break;
    case SLOW: {
        /* Longer than --authorizer-timeout 300; what it sets afterwards must not count. */
        struct timespec pause = { .tv_sec = 1 };
        nanosleep(&pause, NULL);
        ws4r_auth_result_set_user(result, "late");
        break;
    }
    }
    pthread_mutex_lock(&log->lock);
    log->setter_failures += failures;
    pthread_mutex_unlock(&log->lock);
}

static void set_mode(enum authorizer_mode mode) {
    pthread_mutex_lock(&authorizer_log.lock);
    authorizer_log.mode = mode;
    authorizer_log.calls = 0;
    authorizer_log.requested_flags = 0;
    pthread_mutex_unlock(&authorizer_log.lock);
}

/* The outcome of one check_handshake_async(). */
struct async_outcome {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int calls;
    int status;
    char body[128];
};

static void async_done(void *context, ws4r_handshake *handshake) {
    struct async_outcome *outcome = context;
    pthread_mutex_lock(&outcome->lock);
    outcome->calls++;
    outcome->status = handshake != NULL ? ws4r_handshake_status(handshake) : -1;
    copy_string(outcome->body, sizeof outcome->body, handshake != NULL ? ws4r_handshake_body(handshake) : NULL);
    outcome->body[strcspn(outcome->body, "\n")] = '\0';
    pthread_cond_broadcast(&outcome->changed);
    pthread_mutex_unlock(&outcome->lock);
    ws4r_handshake_free(handshake);
}

/* check_handshake_async() for `query`: done is called exactly once, with `expected_status`. */
static void expect_async(ws4r_server *server, const char *query, const ws4r_header *extra, size_t extra_count,
                         int expected_status, const char *what) {
    struct async_outcome *outcome = calloc(1, sizeof *outcome);
    if (outcome == NULL)
        return;
    pthread_mutex_init(&outcome->lock, NULL);
    pthread_cond_init(&outcome->changed, NULL);
    struct probe probe;
    const ws4r_request *request = probe_request(&probe, "/ws/chat", query, extra, extra_count);
    int status = ws4r_server_check_handshake_async(server, request, async_done, outcome);
    /* The request is borrowed for the call only: scribble over it. */
    memset(&probe, 0, sizeof probe);
    if (!check(status == WS4R_OK, "%s: check_handshake_async: %s", what, ws4r_strerror(status)))
        return; /* leaks `outcome` rather than risk a late callback */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    pthread_mutex_lock(&outcome->lock);
    while (outcome->calls == 0 && pthread_cond_timedwait(&outcome->changed, &outcome->lock, &deadline) == 0)
        continue;
    pthread_mutex_unlock(&outcome->lock);
    /* A second call would come soon after the first. */
    struct timespec pause = { .tv_nsec = 200 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    pthread_mutex_lock(&outcome->lock);
    check(outcome->calls == 1, "%s: done called exactly once: %d", what, outcome->calls);
    check(outcome->status == expected_status, "%s: async status %d == %d (the sync decision) %s", what, outcome->status,
          expected_status, outcome->body);
    pthread_mutex_unlock(&outcome->lock);
    if (outcome->calls == 1) {
        pthread_mutex_destroy(&outcome->lock);
        pthread_cond_destroy(&outcome->changed);
        free(outcome);
    }
}

static void test_authorizer(const struct env *env) {
    const char *const args[] = { "--authorizer-timeout", "300" };
    ws4r_server *server = server_with_args(env, args, 2, authorize, &authorizer_log);
    if (server == NULL)
        return;
    check(ws4r_server_set_authorizer(server, authorize, &authorizer_log) == WS4R_ESTATE,
          "server_set_authorizer after start is WS4R_ESTATE");
    const ws4r_header cookie[] = { { "Cookie", "a=1; sessionid=xyz" } };

    set_mode(ALLOW_BOB);
    expect_handshake(server, "subscribe-user&publish-broadcast", cookie, 1, 101, NULL,
                     "bob, allowed subscribe-broadcast and subscribe-user only");
    pthread_mutex_lock(&authorizer_log.lock);
    unsigned wanted = WS4R_FLAG_SUBSCRIBE_USER | WS4R_FLAG_PUBLISH_BROADCAST;
    check(authorizer_log.calls == 1, "the callback ran once: %d", authorizer_log.calls);
    check(authorizer_log.requested_flags == wanted, "requested_flags 0x%x == 0x%x (subscribe-user, publish-broadcast)",
          authorizer_log.requested_flags, wanted);
    check(strcmp(authorizer_log.facility, "chat") == 0, "facility \"%s\" == \"chat\"", authorizer_log.facility);
    check(strcmp(authorizer_log.method, "GET") == 0 && strcmp(authorizer_log.path, "/ws/chat") == 0,
          "method and path: %s %s", authorizer_log.method, authorizer_log.path);
    check(strcmp(authorizer_log.cookie_a, "1") == 0 && strcmp(authorizer_log.cookie_session, "xyz") == 0,
          "cookies parsed: a=%s, sessionid=%s", authorizer_log.cookie_a, authorizer_log.cookie_session);
    check(authorizer_log.setter_failures == 0, "every ws4r_auth_result_* setter returned WS4R_OK");
    pthread_mutex_unlock(&authorizer_log.lock);
    /* Without the callback's user this would be 403: the identity counts. */
    expect_async(server, "subscribe-user&publish-broadcast", cookie, 1, 101, "async, bob");

    set_mode(DENY);
    expect_handshake(server, "subscribe-broadcast", NULL, 0, 403, "nope", "a callback that denies with 403 \"nope\"");
    expect_async(server, "subscribe-broadcast", NULL, 0, 403, "async, denied");

    set_mode(SLOW);
    expect_handshake(server, "subscribe-broadcast", NULL, 0, 504, NULL, "a callback slower than --authorizer-timeout 300");
    expect_async(server, "subscribe-broadcast", NULL, 0, 504, "async, too slow");
    /* Let the slow callbacks end before the server goes. */
    struct timespec pause = { .tv_sec = 1 };
    nanosleep(&pause, NULL);

    check(ws4r_server_stop(server, 2000) == WS4R_OK, "server_stop");
    ws4r_server_destroy(server);
}

static void test_async_without_identity(const struct env *env) {
    const char *const args[] = { "--echo-path", "/echo" };
    ws4r_server *server = server_with_args(env, args, 2, NULL, NULL);
    if (server == NULL)
        return;
    expect_handshake(server, "subscribe-broadcast", NULL, 0, 101, NULL, "sync, subscribe-broadcast");
    expect_async(server, "subscribe-broadcast", NULL, 0, 101, "async, subscribe-broadcast");
    /* Dropped, as the original drops it for an anonymous visitor (missing_identity = drop). */
    expect_handshake(server, "subscribe-user", NULL, 0, 101, NULL, "sync, subscribe-user without identity");
    expect_async(server, "subscribe-user", NULL, 0, 101, "async, subscribe-user without identity");
    check(ws4r_server_stop(server, 2000) == WS4R_OK, "server_stop");
    /* Static: a callback that came after the destroy would still find it. */
    static struct async_outcome stopped = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };
    struct probe probe;
    int status = ws4r_server_check_handshake_async(server, probe_request(&probe, "/ws/chat", "subscribe-broadcast", NULL, 0),
                                                   async_done, &stopped);
    check(status == WS4R_ESTATE || status == WS4R_OK, "check_handshake_async on a stopped server: %s",
          ws4r_strerror(status));
    ws4r_server_destroy(server);
    pthread_mutex_lock(&stopped.lock);
    check(status == WS4R_OK ? stopped.calls == 1 && stopped.status != 101 : stopped.calls == 0,
          "on a stopped server: done called %d times (once with a refusal when OK, else never), status %d",
          stopped.calls, stopped.status);
    pthread_mutex_unlock(&stopped.lock);
}

/* fetch into a buffer of `capacity` bytes; checks the status, *found and the message. */
static void expect_fetch(ws4r_publisher *publisher, const ws4r_audience *audience, size_t capacity, int expected_status,
                         int expected_found, const char *expected, const char *what) {
    char buffer[256];
    size_t length = 12345;
    int found = -1;
    int status = ws4r_publisher_fetch(publisher, audience, buffer, capacity, &length, &found);
    size_t expected_length = expected != NULL ? strlen(expected) : 0;
    check(status == expected_status, "%s: %s == %s %s", what, ws4r_strerror(status), ws4r_strerror(expected_status),
          status == WS4R_OK || status == WS4R_ELIMIT ? "" : ws4r_publisher_errmsg(publisher));
    check(length == expected_length, "%s: length %zu == %zu", what, length, expected_length);
    if (expected_status == WS4R_OK) {
        check(found == expected_found, "%s: found %d == %d", what, found, expected_found);
        if (expected != NULL)
            check(length == expected_length && memcmp(buffer, expected, expected_length) == 0, "%s: \"%.*s\"", what,
                  (int)(length < sizeof buffer ? length : 0), buffer);
    }
}

static void test_publisher_fetch(const struct env *env) {
    ws4r_publisher *publisher = NULL;
    int status = ws4r_publisher_create(env->redis_url, NULL, &publisher);
    if (!check(status == WS4R_OK, "publisher_create: %s",
               status == WS4R_OK || publisher == NULL ? ws4r_strerror(status) : ws4r_publisher_errmsg(publisher))) {
        ws4r_publisher_destroy(publisher);
        return;
    }
    char facility[80];
    snprintf(facility, sizeof facility, "%s-fetch", env->facility);
    const char *const users[] = { "u" }, *const sessions[] = { "s" };
    static const char to_both[] = "for u and everyone", to_broadcast[] = "for everyone";
    ws4r_audience both;
    ws4r_audience_init(&both);
    both.facility = facility;
    both.broadcast = 1;
    both.users = users;
    both.user_count = 1;
    ws4r_audience broadcast;
    ws4r_audience_init(&broadcast);
    broadcast.facility = facility;
    broadcast.broadcast = 1;
    /* The user's key and the broadcast key end up holding different messages. */
    status = ws4r_publisher_publish(publisher, &both, to_both, strlen(to_both), 60, NULL);
    check(status == WS4R_OK, "publish to {broadcast, user u}, expire 60: %s", ws4r_strerror(status));
    status = ws4r_publisher_publish(publisher, &broadcast, to_broadcast, strlen(to_broadcast), 60, NULL);
    check(status == WS4R_OK, "then publish to {broadcast}, expire 60: %s", ws4r_strerror(status));

    ws4r_audience wide = both;
    wide.sessions = sessions;
    wide.session_count = 1;
    expect_fetch(publisher, &wide, 256, WS4R_OK, 1, to_both, "fetch {session s, user u, broadcast}: the user's");
    expect_fetch(publisher, &broadcast, 256, WS4R_OK, 1, to_broadcast, "fetch {broadcast}");
    expect_fetch(publisher, &wide, 2, WS4R_ELIMIT, 1, to_both, "fetch into 2 bytes");

    char empty_facility[96];
    snprintf(empty_facility, sizeof empty_facility, "%s-nothing", env->facility);
    ws4r_audience nothing = wide;
    nothing.facility = empty_facility;
    expect_fetch(publisher, &nothing, 256, WS4R_OK, 0, NULL, "fetch where nothing is stored");
    ws4r_publisher_destroy(publisher);
}

/* ws4r_server_setting(): the effective values after the command line and ws4r_config, defaults
   for the rest, NULL for unknown names; one pointer per setting, through the table too. */
static void test_server_setting(const struct env *env) {
    const char *const args[] = { "--publish-endpoint", "on", "--heartbeat-interval=2500", "--metrics", "off" };
    const char *argv[] = { "--redis-url", env->redis_url, args[0], args[1], args[2], args[3], args[4] };
    ws4r_config base;
    ws4r_config_init(&base);
    base.key_prefix = "from-config";
    ws4r_server *server = NULL;
    int status = ws4r_server_create_with_args(&base, sizeof argv / sizeof argv[0], argv, &server);
    if (!check(status == WS4R_OK, "server_create_with_args: %s", server != NULL ? ws4r_server_errmsg(server) : ws4r_strerror(status))) {
        ws4r_server_destroy(server);
        return;
    }
    const struct { const char *name, *expected; } cases[] = {
        { "publish_endpoint", "on" },        /* the command line */
        { "publish-endpoint", "on" },        /* '-' and '_' alike */
        { "HEARTBEAT_INTERVAL", "2500" },    /* any case; --name=value */
        { "metrics", "off" },
        { "prefix", "from-config" },         /* a ws4r_config field */
        { "redis_url", env->redis_url },
        { "demo_page", "off" },              /* defaults */
        { "metrics_listen", "" },
        { "handshake_timeout", "10000" },
        { "url_prefix", "/ws/" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *value = ws4r_server_setting(server, cases[i].name);
        check(value != NULL && strcmp(value, cases[i].expected) == 0, "setting %s = \"%s\" (\"%s\")", cases[i].name,
              value != NULL ? value : "(null)", cases[i].expected);
    }
    check(ws4r_server_setting(server, "demo_page") == ws4r_server_setting(server, "demo-page"), "one pointer per setting");
    check(ws4r_server_setting(server, "no_such_setting") == NULL, "an unknown name gives NULL");
    check(ws4r_server_setting(server, NULL) == NULL && ws4r_server_setting(NULL, "metrics") == NULL, "NULL arguments give NULL");
    const ws4r_api *api = ws4r_get_api(WS4R_ABI_VERSION);
    check(api->server_setting == ws4r_server_setting, "server_setting is in the function table");
    ws4r_server_destroy(server);

    const char *const broken[] = { "--metrics", "maybe" };
    status = ws4r_server_create_with_args(NULL, 2, broken, &server);
    check(status == WS4R_ECONFIG && ws4r_server_setting(server, "metrics") == NULL,
          "a server whose create failed has no settings: %s", ws4r_strerror(status));
    ws4r_server_destroy(server);
}

/* One thread of test_errmsg_per_thread(): refusals of its own paths on the shared server, each
   message read back after the refusal while the other threads refuse theirs. */
struct refusing_thread {
    ws4r_server *server;
    int index;
    int mismatches;
    char last_seen[256];
};

enum { REFUSALS_PER_THREAD = 2000, REFUSING_THREADS = 4 };

static void *refuse_own_paths(void *context) {
    struct refusing_thread *thread = context;
    for (int i = 0; i < REFUSALS_PER_THREAD; i++) {
        char path[64];
        snprintf(path, sizeof path, "/not-a-websocket/thread-%d/%d", thread->index, i);
        struct probe probe;
        ws4r_handshake *result = NULL;
        int status = ws4r_server_check_handshake(thread->server, probe_request(&probe, path, NULL, NULL, 0), &result);
        ws4r_handshake_free(result);
        const char *message = ws4r_server_errmsg(thread->server);
        /* The message names the path: "handshake refused: 404 no websocket endpoint at /not-a-websocket/...". */
        char expected[80];
        snprintf(expected, sizeof expected, "%s\n", path);
        if (status != WS4R_EHANDSHAKE || strstr(message, expected) == NULL) {
            thread->mismatches++;
            snprintf(thread->last_seen, sizeof thread->last_seen, "%s", message);
        }
    }
    return NULL;
}

/* ws4r_server_errmsg() is the calling thread's own: threads refused on one server at once each
   read the message of their own last refusal, never another thread's (nor a freed one). */
static void test_errmsg_per_thread(const struct env *env) {
    ws4r_server *server = server_with_args(env, NULL, 0, NULL, NULL);
    if (server == NULL)
        return;
    struct refusing_thread threads[REFUSING_THREADS];
    pthread_t ids[REFUSING_THREADS];
    for (int i = 0; i < REFUSING_THREADS; i++) {
        threads[i] = (struct refusing_thread){ .server = server, .index = i };
        pthread_create(&ids[i], NULL, refuse_own_paths, &threads[i]);
    }
    for (int i = 0; i < REFUSING_THREADS; i++) {
        pthread_join(ids[i], NULL);
        check(threads[i].mismatches == 0, "thread %d read its own message after each of %d refusals (%d others, e.g. \"%s\")", i,
              REFUSALS_PER_THREAD, threads[i].mismatches, threads[i].last_seen);
    }
    const char *main_message = ws4r_server_errmsg(server);
    check(main_message != NULL && main_message[0] == '\0', "a thread without a failure on this server reads \"\": \"%s\"", main_message);
    ws4r_server_destroy(server);
}

/* The health document /healthz serves, copied out as the metrics text is. */
static void test_server_health(const struct env *env) {
    ws4r_server *server = server_with_args(env, NULL, 0, NULL, NULL);
    if (server == NULL)
        return;
    size_t length = 0;
    char none[1];
    int status = ws4r_server_health(server, none, 0, &length);
    check(status == WS4R_ELIMIT && length > 0, "capacity 0: %s, length %zu", ws4r_strerror(status), length);
    char *text = malloc(length + 1);
    size_t written = 0;
    status = ws4r_server_health(server, text, length + 1, &written);
    check(status == WS4R_OK && written == length && strlen(text) == length, "length + 1: %s, %zu bytes", ws4r_strerror(status), written);
    check(strncmp(text, "{\"status\":\"", 11) == 0 && strstr(text, "\"redis_connected\":") != NULL &&
              strstr(text, "\"connections\":0") != NULL && text[length - 1] == '\n',
          "a line of JSON with status, redis_connected and the figures: %s", text);
    free(text);
    check(ws4r_server_health(NULL, none, sizeof none, NULL) == WS4R_EINVAL, "NULL server: EINVAL");
    check(ws4r_get_api(WS4R_ABI_VERSION)->server_health == ws4r_server_health, "server_health is in the function table");
    ws4r_server_destroy(server);
}

static void test_lift_descriptor_limit(const struct env *env) {
    (void)env;
    struct rlimit before, after;
    getrlimit(RLIMIT_NOFILE, &before);
    if (before.rlim_cur > 64 && before.rlim_cur == before.rlim_max) {
        /* Lower it first, so that the lift has something to do. */
        struct rlimit lowered = { .rlim_cur = 64, .rlim_max = before.rlim_max };
        setrlimit(RLIMIT_NOFILE, &lowered);
    }
    uint64_t lifted = ws4r_get_api(WS4R_ABI_VERSION)->lift_descriptor_limit();
    getrlimit(RLIMIT_NOFILE, &after);
    check(after.rlim_cur == after.rlim_max && lifted == (uint64_t)after.rlim_cur,
          "the soft limit is the hard one (%llu), and that is returned (%llu)", (unsigned long long)after.rlim_max,
          (unsigned long long)lifted);
}

/* Whether the peer of a watched socket has seen it shut down (EOF), waiting at most `ms`. */
static bool shut_down_within(int peer, int ms) {
    struct pollfd event = { .fd = peer, .events = POLLIN };
    char byte;
    return poll(&event, 1, ms) == 1 && recv(peer, &byte, 1, MSG_DONTWAIT) == 0;
}

/* Connections a host holds while it reads request heads: the core shuts down those whose head
   did not arrive within handshake_timeout, never one whose head arrived, and never one handed over. */
static void test_arrivals(const struct env *env) {
    const char *const args[] = { "--handshake-timeout", "300" };
    ws4r_server *server = server_with_args(env, args, 2, NULL, NULL);
    if (server == NULL)
        return;
    enum { SILENT, HEAD_READ, NEXT_REQUEST, HANDED_OVER, COUNT };
    int pairs[COUNT][2];
    ws4r_arrival *arrivals[COUNT] = { 0 };
    for (int i = 0; i < COUNT; i++) {
        socketpair(AF_UNIX, SOCK_STREAM, 0, pairs[i]);
        int status = ws4r_server_watch_arrival(server, pairs[i][0], &arrivals[i]);
        check(status == WS4R_OK && arrivals[i] != NULL, "watch_arrival %d: %s", i, ws4r_strerror(status));
    }
    ws4r_arrival_head_read(arrivals[HEAD_READ]);
    ws4r_arrival_head_read(arrivals[NEXT_REQUEST]);
    ws4r_arrival_awaiting_head(arrivals[NEXT_REQUEST]);
    ws4r_arrival_head_read(arrivals[HANDED_OVER]);
    ws4r_arrival_handed_over(arrivals[HANDED_OVER]);
    ws4r_arrival_awaiting_head(arrivals[HANDED_OVER]);
    check(shut_down_within(pairs[SILENT][1], 5000), "no request head: shut down");
    check(shut_down_within(pairs[NEXT_REQUEST][1], 5000), "a kept-alive connection without its next head: shut down");
    /* Both deadlines above passed, so these two would have been shut down by now. */
    check(!shut_down_within(pairs[HEAD_READ][1], 0), "its head arrived: left alone");
    check(!shut_down_within(pairs[HANDED_OVER][1], 0), "handed over (then awaiting_head): left alone");
    for (int i = 0; i < COUNT; i++) {
        ws4r_arrival_destroy(arrivals[i]);
        close(pairs[i][0]);
        close(pairs[i][1]);
    }
    ws4r_arrival_destroy(NULL);
    ws4r_arrival_head_read(NULL);

    /* Destroyed before its deadline: its descriptor is the host's again, never shut down. */
    int pair[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, pair);
    ws4r_arrival *released = NULL;
    ws4r_server_watch_arrival(server, pair[0], &released);
    ws4r_arrival_destroy(released);
    int canary[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, canary);
    ws4r_arrival *later = NULL;
    ws4r_server_watch_arrival(server, canary[0], &later);
    check(shut_down_within(canary[1], 5000), "a later silent one is shut down ...");
    check(!shut_down_within(pair[1], 0), "... while the destroyed one is left alone");
    ws4r_arrival_destroy(later);
    close(pair[0]), close(pair[1]), close(canary[0]), close(canary[1]);

    check(ws4r_server_stop(server, 2000) == WS4R_OK, "server_stop");
    ws4r_arrival *stopped = (ws4r_arrival *)1;
    check(ws4r_server_watch_arrival(server, 0, &stopped) == WS4R_ESTATE && stopped == NULL, "a stopped server: ESTATE, *out NULL");
    ws4r_server_destroy(server);

    const char *const off[] = { "--handshake-timeout", "0" };
    server = server_with_args(env, off, 2, NULL, NULL);
    if (server == NULL)
        return;
    ws4r_arrival *none = (ws4r_arrival *)1;
    check(ws4r_server_watch_arrival(server, 0, &none) == WS4R_OK && none == NULL, "handshake_timeout 0: OK and nothing to watch");
    ws4r_server_destroy(server);
    const ws4r_api *api = ws4r_get_api(WS4R_ABI_VERSION);
    check(api->server_watch_arrival == ws4r_server_watch_arrival && api->arrival_destroy == ws4r_arrival_destroy,
          "the arrival functions are in the function table");
}

int main(void) {
    static const struct {
        const char *name;
        void (*run)(const struct env *env);
    } tests[] = {
        { "version", test_version },
        { "strerror", test_strerror },
        { "function table", test_api_table },
        { "publisher with a bad URL", test_publisher_bad_url },
        { "publish to every audience", test_publish_audiences },
        { "key prefix", test_key_prefix },
        { "server and handshakes", test_server },
        { "settings help", test_settings_help },
        { "token_mint", test_token_mint },
        { "create_with_args and identity tokens", test_token_handshakes },
        { "authorization callback", test_authorizer },
        { "check_handshake_async without identity", test_async_without_identity },
        { "publisher_fetch", test_publisher_fetch },
        { "server_setting", test_server_setting },
        { "errmsg per thread", test_errmsg_per_thread },
        { "server_health", test_server_health },
        { "lift_descriptor_limit", test_lift_descriptor_limit },
        { "arrivals under handshake_timeout", test_arrivals },
    };
    struct env env = { .redis_url = getenv("REDIS_URL") };
    const char *port = getenv("REDIS_PORT");
    if (env.redis_url == NULL || port == NULL) {
        fputs("capi_test: REDIS_URL and REDIS_PORT must be set (run it under scripts/with-redis.sh)\n", stderr);
        return 2;
    }
    env.redis_port = atoi(port);
    snprintf(env.facility, sizeof env.facility, "capi-%ld", (long)getpid());
    /* Keep the output in order even when a library thread writes to stderr. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        printf("%s\n", tests[i].name);
        failed_checks = 0;
        tests[i].run(&env);
        if (failed_checks == 0)
            passed++;
        else
            failed++;
        printf("%s %s\n", failed_checks == 0 ? "PASS" : "FAIL", tests[i].name);
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
