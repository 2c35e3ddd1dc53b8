/*
 * capi_test.c: checks the C ABI of libws4redis (include/ws4redis.h) as a C program sees it.
 * Needs a private Redis: REDIS_URL and REDIS_PORT (scripts/with-redis.sh sets both); it verifies
 * what the library did there with its own hiredis connections.
 * Prints every check and ends with "N passed, M failed" (tests, not checks); exit status 1 when
 * a test failed, 2 when the environment is missing.
 */
#include <ws4redis.h>

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
    check(ws4r_server_stop(server, 2000) == WS4R_OK, "server_stop");
    ws4r_server_destroy(server);
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
