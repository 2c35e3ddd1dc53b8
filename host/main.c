/* main.c: ws4redis-host, a libmicrohttpd server hosting the ws4redis core.
   Options, the choice of the core (linked or plugin), start-up, and the orderly shutdown. */
#include "host.h"
#include "ws4r_plugin.h"

#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* How long the core may take to close every websocket at shutdown. */
#define STOP_TIMEOUT_MS 5000

struct options {
    char listen_host[256];       /* as given, e.g. "127.0.0.1" or "[::1]", for the listening line */
    const char *listen_port;
    const char *redis_url;       /* NULL: the core's default */
    const char *key_prefix;
    const char *url_prefix;
    const char *echo_path;
    const char *plugin_path;     /* NULL: use the linked libws4redis */
    uint32_t io_threads;         /* 0: the core's default */
};

static void usage(void) {
    fputs("usage: ws4redis-host [options]\n"
          "Serves websockets fed from Redis pub/sub (the ws4redis core) behind libmicrohttpd, plus a demo chat.\n"
          "\n"
          "  --listen HOST:PORT     address to listen on (default 127.0.0.1:8080; [::1]:8080 for IPv6)\n"
          "  --redis URL            redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]\n"
          "                         (default redis://127.0.0.1:6379/0)\n"
          "  --prefix P             prefix of Redis channels and keys (WS4REDIS_PREFIX; default none)\n"
          "  --url-prefix PATH      URL prefix of websocket endpoints (default /ws/)\n"
          "  --threads N            core event-loop threads (default: one per CPU core)\n"
          "  --echo-path PATH       serve a plain websocket echo endpoint at PATH (default off)\n"
          "  --plugin PATH          load the core from PATH (libws4redis.so) with dlopen instead of the linked one\n"
          "  --help                 show this text\n"
          "\n"
          "Routes: GET / (demo), GET /healthz, POST /publish?facility=F, websockets under the URL prefix.\n",
          stdout);
}

/* Splits "HOST:PORT" at its last colon; an empty host means every IPv4 address. */
static int parse_listen(const char *value, struct options *options) {
    const char *colon = strrchr(value, ':');
    if (colon == NULL || colon[1] == '\0' || (size_t)(colon - value) >= sizeof options->listen_host) {
        fprintf(stderr, "ws4redis-host: --listen wants HOST:PORT, not \"%s\"\n", value);
        return -1;
    }
    if (colon == value)
        strcpy(options->listen_host, "0.0.0.0");
    else
        snprintf(options->listen_host, sizeof options->listen_host, "%.*s", (int)(colon - value), value);
    options->listen_port = colon + 1;
    return 0;
}

static int parse_threads(const char *value, uint32_t *threads) {
    char *end;
    errno = 0;
    unsigned long parsed = strtoul(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || parsed > UINT32_MAX) {
        fprintf(stderr, "ws4redis-host: --threads wants a number, not \"%s\"\n", value);
        return -1;
    }
    *threads = (uint32_t)parsed;
    return 0;
}

/* Returns -1 to exit with success (--help), 0 to run, 1 on a usage error. */
static int parse_options(int argc, char **argv, struct options *options) {
    enum { LISTEN = 256, REDIS, PREFIX, URL_PREFIX, THREADS, ECHO_PATH, PLUGIN, HELP };
    static const struct option long_options[] = {
        { "listen", required_argument, NULL, LISTEN },       { "redis", required_argument, NULL, REDIS },
        { "prefix", required_argument, NULL, PREFIX },       { "url-prefix", required_argument, NULL, URL_PREFIX },
        { "threads", required_argument, NULL, THREADS },     { "echo-path", required_argument, NULL, ECHO_PATH },
        { "plugin", required_argument, NULL, PLUGIN },       { "help", no_argument, NULL, HELP },
        { NULL, 0, NULL, 0 },
    };
    *options = (struct options){ .listen_host = "127.0.0.1", .listen_port = "8080", .url_prefix = "/ws/" };
    int option;
    while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        int invalid = 0;
        switch (option) {
        case LISTEN: invalid = parse_listen(optarg, options); break;
        case REDIS: options->redis_url = optarg; break;
        case PREFIX: options->key_prefix = optarg; break;
        case URL_PREFIX: options->url_prefix = optarg; break;
        case THREADS: invalid = parse_threads(optarg, &options->io_threads); break;
        case ECHO_PATH: options->echo_path = optarg; break;
        case PLUGIN: options->plugin_path = optarg; break;
        case HELP: usage(); return -1;
        default: invalid = 1; break;
        }
        if (invalid != 0) {
            fputs("Try 'ws4redis-host --help'.\n", stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ws4redis-host: unexpected argument \"%s\"; try --help\n", argv[optind]);
        return 1;
    }
    return 0;
}

/* The function table of the linked library, or of the one at `plugin_path` (then *plugin is set). */
static const ws4r_api *load_api(const char *plugin_path, void **plugin) {
    const ws4r_api *api = NULL;
    char error[512];
    int status;
    if (plugin_path != NULL) {
        status = ws4r_plugin_load(plugin_path, &api, plugin, error, sizeof error);
    } else {
        api = ws4r_get_api(WS4R_ABI_VERSION);
        /* The same checks as for a plugin, in case the library found at run time is older. */
        status = ws4r_plugin_check(api, error, sizeof error);
    }
    if (status != WS4R_OK) {
        fprintf(stderr, "ws4redis-host: %s\n", error);
        return NULL;
    }
    return api;
}

/* Creates and starts the core server; prints why and returns -1 on failure. */
static int start_server(struct host *host, const struct options *options) {
    ws4r_config config;
    host->api->config_init(&config);
    config.redis_url = options->redis_url;
    config.key_prefix = options->key_prefix;
    config.url_prefix = options->url_prefix;
    config.echo_path = options->echo_path;
    config.io_threads = options->io_threads;
    /* listen_address stays NULL: connections arrive from MHD through server_adopt(). */
    int status = host->api->server_create(&config, &host->server);
    if (status == WS4R_OK)
        status = host->api->server_start(host->server);
    if (status != WS4R_OK) {
        fprintf(stderr, "ws4redis-host: cannot start the server: %s\n",
                host->server != NULL ? host->api->server_errmsg(host->server) : host->api->strerror(status));
        return -1;
    }
    return 0;
}

/* Creates the publisher of POST /publish. An unreachable Redis is not fatal, as for the server:
   publish tries again and answers 502 until Redis is back. */
static int create_publisher(struct host *host) {
    char error[1024];
    int status = publisher_connect(host, error, sizeof error);
    if (status == WS4R_OK)
        return 0;
    if (status == WS4R_EREDIS) {
        fprintf(stderr, "ws4redis-host: warning: publisher: %s\n", error);
        return 0;
    }
    fprintf(stderr, "ws4redis-host: cannot create the publisher: %s\n", error);
    return -1;
}

static int resolve(const struct options *options, struct sockaddr_storage *address) {
    /* getaddrinfo() wants an IPv6 literal without its brackets. */
    char host[sizeof options->listen_host];
    size_t length = strlen(options->listen_host);
    if (length >= 2 && options->listen_host[0] == '[' && options->listen_host[length - 1] == ']')
        snprintf(host, sizeof host, "%.*s", (int)length - 2, options->listen_host + 1);
    else
        snprintf(host, sizeof host, "%s", options->listen_host);
    struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM };
    struct addrinfo *found;
    int status = getaddrinfo(host, options->listen_port, &hints, &found);
    if (status != 0) {
        fprintf(stderr, "ws4redis-host: cannot resolve %s:%s: %s\n", options->listen_host, options->listen_port,
                gai_strerror(status));
        return -1;
    }
    memcpy(address, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    return 0;
}

/* Each websocket holds a descriptor in this process: lift the soft limit (often 1024) to the hard one. */
static void raise_descriptor_limit(void) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

/* Blocks SIGINT and SIGTERM in this thread and, by inheritance, in every thread started later (MHD's,
   the core's), so that only wait_for_stop_signal() receives them. SIGPIPE is ignored because a
   client that hangs up must cost a failed write, not the process. */
static void take_over_signals(sigset_t *stop_signals) {
    sigemptyset(stop_signals);
    sigaddset(stop_signals, SIGINT);
    sigaddset(stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void wait_for_stop_signal(const sigset_t *stop_signals) {
    int signal_number;
    while (sigwait(stop_signals, &signal_number) != 0)
        continue;
}

/* Starts MHD and prints the line the tests wait for. */
static struct MHD_Daemon *start_http(struct host *host, const struct options *options) {
    struct sockaddr_storage address;
    if (resolve(options, &address) != 0)
        return NULL;
    struct MHD_Daemon *daemon = http_start(host, (const struct sockaddr *)&address);
    if (daemon == NULL) {
        fprintf(stderr, "ws4redis-host: cannot listen on %s:%s\n", options->listen_host, options->listen_port);
        return NULL;
    }
    /* The bound port, which differs from the option for port 0. */
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    printf("ws4redis-host listening on http://%s:%u (core %s, %s)\n", options->listen_host,
           info != NULL ? (unsigned)info->port : 0u, host->api->version_string(),
           options->plugin_path != NULL ? "plugin" : "linked");
    fflush(stdout);
    return daemon;
}

/* Sets everything up; prints why and returns -1 on failure (shut_down() cleans up either way). */
static int start(struct host *host, const struct options *options, struct MHD_Daemon **daemon) {
    host->demo_page = demo_page_render(options->url_prefix);
    if (host->demo_page == NULL) {
        fputs("ws4redis-host: out of memory\n", stderr);
        return -1;
    }
    if (start_server(host, options) != 0 || create_publisher(host) != 0)
        return -1;
    *daemon = start_http(host, options);
    return *daemon != NULL ? 0 : -1;
}

/* Tears down whatever was set up. The core stops first: it closes every websocket (1001) while
   MHD still answers HTTP, and the stopped server refuses handshakes meanwhile. MHD stops before
   the server is destroyed because MHD's thread calls into the server. Then the handles, then
   the library their code lives in. */
static void shut_down(struct host *host, struct MHD_Daemon *daemon, void *plugin) {
    if (host->server != NULL)
        host->api->server_stop(host->server, STOP_TIMEOUT_MS);
    if (daemon != NULL)
        MHD_stop_daemon(daemon);
    if (host->api != NULL) {
        host->api->server_destroy(host->server);
        host->api->publisher_destroy(host->publisher);
    }
    free(host->demo_page);
    ws4r_plugin_unload(plugin);
}

int main(int argc, char **argv) {
    sigset_t stop_signals;
    take_over_signals(&stop_signals);
    struct options options;
    int parsed = parse_options(argc, argv, &options);
    if (parsed != 0)
        return parsed < 0 ? EXIT_SUCCESS : 2; /* 2: a usage error, as getopt tools do */
    raise_descriptor_limit();

    void *plugin = NULL;
    struct MHD_Daemon *daemon = NULL;
    struct host host = { .url_prefix = options.url_prefix, .echo_path = options.echo_path,
                         .redis_url = options.redis_url, .key_prefix = options.key_prefix };
    host.api = load_api(options.plugin_path, &plugin);
    int status = EXIT_FAILURE;
    if (host.api != NULL && start(&host, &options, &daemon) == 0) {
        wait_for_stop_signal(&stop_signals);
        status = EXIT_SUCCESS;
    }
    shut_down(&host, daemon, plugin);
    return status;
}
