/*
 * push_server.c: a push server embedded in a C program through the public API of libws4redis.
 *
 * It serves websockets on the core's own listener, decides who each client is with an
 * authorization callback (a session cookie looked up in the program's session table), and
 * publishes what it reads on standard input:
 *
 *     alice Your order has shipped      -> the websockets of user alice (facility "notifications")
 *     * The shop closes at 6 pm         -> every subscriber of the broadcast channel
 *
 * After each message it prints the live figures. SIGINT or SIGTERM (or the end of the input)
 * stops it: every websocket is closed with 1001, then it exits 0.
 *
 * Build against an installed ws4redis (make install PREFIX=...):
 *     cc -std=c11 -o push_server push_server.c $(pkg-config --cflags --libs ws4redis)
 * Run (every setting of `ws4redis serve` is accepted, see --help of ws4redis serve):
 *     ./push_server --listen 127.0.0.1:8080 --redis-url redis://127.0.0.1:6379/0
 * Browse with the cookie sessionid=alice-session (or bob-session) to
 *     ws://127.0.0.1:8080/ws/notifications?subscribe-user&subscribe-broadcast
 */
#define _GNU_SOURCE /* ppoll() */

#include <ws4redis.h>

#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FACILITY "notifications"
#define STOP_TIMEOUT_MS 5000
/* Published messages stay in Redis this long, for clients that connect later. */
#define EXPIRE_SECONDS 60

/* The program's session store; a real one asks the web application's session database (the
   callback runs on a worker thread, so it may block). */
static const struct {
    const char *session;
    const char *user;
} sessions[] = {
    { "alice-session", "alice" },
    { "bob-session", "bob" },
};

static volatile sig_atomic_t stop_requested;

static void request_stop(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

static const char *find_cookie(const ws4r_auth_request *request, const char *name) {
    for (size_t i = 0; i < request->cookie_count; i++)
        if (strcmp(request->cookies[i].name, name) == 0)
            return request->cookies[i].value;
    return NULL;
}

/* ws4r_authorize_fn: the user of the session cookie may subscribe to its own channel and the
   broadcast; publishing is the server's business, so clients may not. */
static void authorize(void *context, const ws4r_auth_request *request, ws4r_auth_result *result) {
    (void)context;
    const char *session = find_cookie(request, "sessionid");
    for (size_t i = 0; session != NULL && i < sizeof sessions / sizeof sessions[0]; i++) {
        if (strcmp(sessions[i].session, session) == 0) {
            ws4r_auth_result_set_user(result, sessions[i].user);
            ws4r_auth_result_set_allowed_flags(result, WS4R_FLAG_SUBSCRIBE_USER | WS4R_FLAG_SUBSCRIBE_BROADCAST);
            return;
        }
    }
    ws4r_auth_result_deny(result, 403, "no valid session: log in first");
}

static void print_stats(ws4r_server *server) {
    ws4r_stats stats;
    ws4r_stats_init(&stats);
    if (ws4r_server_stats(server, &stats) != WS4R_OK)
        return;
    printf("stats: connections=%" PRIu64 " subscriptions=%" PRIu64 " messages_out=%" PRIu64 " redis=%s\n",
           stats.connections, stats.subscriptions, stats.messages_out, stats.redis_connected ? "up" : "down");
    fflush(stdout);
}

/* Publishes one input line "RECIPIENT MESSAGE" ("*" for everyone), without its newline. */
static void publish_line(ws4r_publisher *publisher, char *line) {
    line[strcspn(line, "\r")] = '\0';
    char *message = strchr(line, ' ');
    if (message == NULL) {
        fputs("push_server: want \"RECIPIENT MESSAGE\" (RECIPIENT: a user name, or * for everyone)\n", stderr);
        return;
    }
    *message++ = '\0';
    const char *users[] = { line };
    ws4r_audience audience;
    ws4r_audience_init(&audience);
    audience.facility = FACILITY;
    if (strcmp(line, "*") == 0) {
        audience.broadcast = 1;
    } else {
        audience.users = users;
        audience.user_count = 1;
    }
    uint64_t receivers = 0;
    if (ws4r_publisher_publish(publisher, &audience, message, strlen(message), EXPIRE_SECONDS, &receivers) != WS4R_OK)
        fprintf(stderr, "push_server: cannot publish: %s\n", ws4r_publisher_errmsg(publisher));
    else
        printf("published to %s: %" PRIu64 " receiving server(s)\n", line, receivers);
}

/* Publishes every complete line at the start of `buffer` and moves the rest to its start; a full
   buffer without a newline counts as one line. Returns the bytes kept. */
static size_t publish_lines(ws4r_server *server, ws4r_publisher *publisher, char *buffer, size_t used, size_t capacity) {
    char *start = buffer, *end = buffer + used, *newline;
    while ((newline = memchr(start, '\n', (size_t)(end - start))) != NULL || (start == buffer && used == capacity)) {
        char *line_end = newline != NULL ? newline : end;
        *line_end = '\0';
        publish_line(publisher, start);
        print_stats(server);
        start = newline != NULL ? newline + 1 : end;
    }
    memmove(buffer, start, (size_t)(end - start));
    return (size_t)(end - start);
}

/* Reads and publishes lines until the input ends or a stop signal arrives. The stop signals are
   blocked except inside ppoll(), so one arriving at any other moment is not lost. */
static void serve(ws4r_server *server, ws4r_publisher *publisher, const sigset_t *unblocked) {
    char buffer[4096];
    size_t used = 0;
    while (!stop_requested) {
        struct pollfd input = { .fd = STDIN_FILENO, .events = POLLIN };
        if (ppoll(&input, 1, NULL, unblocked) < 0)
            continue; /* EINTR: a stop signal ran request_stop() */
        ssize_t n = read(STDIN_FILENO, buffer + used, sizeof buffer - 1 - used);
        if (n <= 0)
            return; /* the end of the input */
        used = publish_lines(server, publisher, buffer, used + (size_t)n, sizeof buffer - 1);
    }
}

/* Installs request_stop() for SIGINT and SIGTERM and blocks both in this thread and in every
   thread the library starts later; *unblocked gets the mask serve() waits with. */
static void handle_stop_signals(sigset_t *unblocked) {
    struct sigaction action = { .sa_handler = request_stop };
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, unblocked);
    sigdelset(unblocked, SIGINT);
    sigdelset(unblocked, SIGTERM);
}

/* The Redis URL of the server's settings, for the publisher: --redis-url URL or --redis-url=URL,
   else WS4REDIS_REDIS_URL, else NULL (the library's default). */
static const char *redis_url_setting(int argc, char **argv) {
    const char *url = getenv("WS4REDIS_REDIS_URL");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--redis-url") == 0 && i + 1 < argc)
            url = argv[++i];
        else if (strncmp(argv[i], "--redis-url=", 12) == 0)
            url = argv[i] + 12;
    }
    return url;
}

int main(int argc, char **argv) {
    sigset_t unblocked;
    handle_stop_signals(&unblocked);
    ws4r_config config;
    ws4r_config_init(&config);
    config.listen_address = "127.0.0.1:8080"; /* the core's own listener; --listen overrides it */

    ws4r_server *server = NULL;
    int status = ws4r_server_create_with_args(&config, argc - 1, (const char *const *)(argv + 1), &server);
    if (status != WS4R_OK) {
        fprintf(stderr, "push_server: %s\n", server != NULL ? ws4r_server_errmsg(server) : ws4r_strerror(status));
        ws4r_server_destroy(server);
        return 2;
    }
    ws4r_server_set_authorizer(server, authorize, NULL);
    if (ws4r_server_start(server) != WS4R_OK) {
        fprintf(stderr, "push_server: cannot start: %s\n", ws4r_server_errmsg(server));
        ws4r_server_destroy(server);
        return 1;
    }

    /* The same Redis as the server's (a --config file aside, which this example does not read). */
    ws4r_publisher *publisher = NULL;
    status = ws4r_publisher_create(redis_url_setting(argc, argv), NULL, &publisher);
    if (status != WS4R_OK) {
        fprintf(stderr, "push_server: cannot connect the publisher: %s\n",
                publisher != NULL ? ws4r_publisher_errmsg(publisher) : ws4r_strerror(status));
    } else {
        printf("push_server ready (libws4redis %s)\n", ws4r_version_string());
        fflush(stdout);
        serve(server, publisher, &unblocked);
    }

    ws4r_server_stop(server, STOP_TIMEOUT_MS);
    print_stats(server);
    ws4r_publisher_destroy(publisher);
    ws4r_server_destroy(server);
    return status == WS4R_OK ? 0 : 1;
}
