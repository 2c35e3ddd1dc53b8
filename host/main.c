/* main.c: ws4redis-host, a libmicrohttpd server hosting the ws4redis core.
   The host's own options, the choice of the core (linked or plugin), start-up, and the orderly
   shutdown. Every other option is the core's: main() forwards it unchanged. */
#include "host.h"
#include "ws4r_plugin.h"

#include <ctype.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How long the core may take to close every websocket at shutdown. */
#define STOP_TIMEOUT_MS 5000

struct options {
    char listen_host[256];       /* as given, e.g. "127.0.0.1" or "[::1]", for the listening line */
    const char *listen_port;
    const char *plugin_path;     /* NULL: use the linked libws4redis */
    const char *tls_certificate; /* PEM files of --tls-cert and --tls-key: both or neither */
    const char *tls_key;
    bool help;
    /* What goes to the core's server_create_with_args(): argv without the program name and the
       host's own options, --redis translated. Points into argv. */
    const char **core_argv;
    int core_argc;
};

static void usage(const ws4r_api *api) {
    fputs("usage: ws4redis-host [--listen HOST:PORT] [--plugin PATH] [--tls-cert FILE --tls-key FILE] [core settings...]\n"
          "Serves websockets fed from Redis pub/sub (the ws4redis core) behind libmicrohttpd, plus a demo chat.\n"
          "\n"
          "Options of the host:\n"
          "  --listen HOST:PORT     address to listen on (default 127.0.0.1:8080; [::1]:8080 for IPv6)\n"
          "  --plugin PATH          load the core from PATH (libws4redis.so) with dlopen instead of the linked one\n"
          "  --redis URL            the same as --redis-url URL\n"
          "  --tls-cert FILE        serve https:// and wss:// with this PEM certificate (chain) ...\n"
          "  --tls-key FILE         ... and this PEM private key (WS4REDIS_TLS_CERT, WS4REDIS_TLS_KEY)\n"
          "  --help                 show this text\n"
          "\n"
          "Routes: GET /ws4redis.js (the browser client), GET /healthz, GET /metrics (Prometheus; --metrics off,\n"
          "or --metrics-listen HOST:PORT for a listener of its own), and for the demo only, off by default:\n"
          "GET / (--demo-page on) and POST /publish?facility=F (--publish-endpoint on: unauthenticated, so\n"
          "same-origin requests only, to a Host this server answers for); every other path goes to the core\n"
          "(websockets under the URL prefix).\n"
          "Every other option goes to the core, whose own listener (its --listen) stays off. The host asks\n"
          "the core for the effective values of the settings it needs itself (command line, WS4REDIS_*,\n"
          "--config): the endpoint switches, --redis-url and --prefix (the demo's publisher), --url-prefix,\n"
          "--heartbeat and --heartbeat-interval (the demo page), --allowed-origins and --max-message-size\n"
          "(POST /publish). The core watches MHD's connections for --handshake-timeout (a request head's\n"
          "deadline) and lifts the descriptor limit, as for its own listener.\n",
          stdout);
    if (api != NULL) {
        fputs("\n", stdout);
        fputs(api->settings_help("text"), stdout);
    } else {
        fputs("(the core's settings are listed when its library can be loaded)\n", stdout);
    }
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

/* Whether `arg` is the option `--name` (then *value is NULL: the value is the next argument) or
   `--name=value`. Names compare as the core compares them: '-' and '_' alike, any case. */
static bool is_option(const char *arg, const char *name, const char **value) {
    if (strncmp(arg, "--", 2) != 0)
        return false;
    const char *a = arg + 2;
    for (; *name != '\0'; a++, name++) {
        char c = *a == '_' ? '-' : (char)tolower((unsigned char)*a);
        if (c != (*name == '_' ? '-' : *name))
            return false;
    }
    if (*a != '\0' && *a != '=')
        return false;
    *value = *a == '=' ? a + 1 : NULL;
    return true;
}

/* The TLS files from the command line, else the environment; a certificate wants a key. */
static int check_tls_options(struct options *options) {
    if (options->tls_certificate == NULL)
        options->tls_certificate = getenv("WS4REDIS_TLS_CERT");
    if (options->tls_key == NULL)
        options->tls_key = getenv("WS4REDIS_TLS_KEY");
    if ((options->tls_certificate == NULL) != (options->tls_key == NULL)) {
        fputs("ws4redis-host: --tls-cert and --tls-key go together\n", stderr);
        return -1;
    }
    return 0;
}

/* Takes out the host's options and forwards the rest. Every core setting takes a value, so an
   option `--name` without '=' takes the next argument along (that is how the core reads it too).
   Returns 0, or -1 on a usage error (printed). */
static int parse_options(int argc, char **argv, struct options *options) {
    *options = (struct options){ .listen_host = "127.0.0.1", .listen_port = "8080" };
    /* --redis=URL becomes two arguments, and "--listen=" comes last. */
    options->core_argv = calloc(2 * (size_t)argc + 1, sizeof *options->core_argv);
    if (options->core_argv == NULL) {
        fputs("ws4redis-host: out of memory\n", stderr);
        return -1;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0) {
            options->help = true;
            continue;
        }
        const char *equals = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        const char *value = equals != NULL ? equals + 1 : NULL, *ignored;
        bool host_option = is_option(arg, "listen", &ignored) || is_option(arg, "plugin", &ignored) ||
                           is_option(arg, "redis", &ignored) || is_option(arg, "tls_cert", &ignored) ||
                           is_option(arg, "tls_key", &ignored);
        if (!host_option) {
            options->core_argv[options->core_argc++] = arg;
            if (equals == NULL && strncmp(arg, "--", 2) == 0 && i + 1 < argc)
                options->core_argv[options->core_argc++] = argv[++i];
            continue;
        }
        if (equals == NULL && i + 1 < argc)
            value = argv[++i];
        if (value == NULL) {
            fprintf(stderr, "ws4redis-host: %s wants a value\n", arg);
            return -1;
        }
        if (is_option(arg, "listen", &ignored)) {
            if (parse_listen(value, options) != 0)
                return -1;
        } else if (is_option(arg, "plugin", &ignored)) {
            options->plugin_path = value;
        } else if (is_option(arg, "tls_cert", &ignored)) {
            options->tls_certificate = value;
        } else if (is_option(arg, "tls_key", &ignored)) {
            options->tls_key = value;
        } else { /* --redis, the host's alias of the core's --redis-url */
            options->core_argv[options->core_argc++] = "--redis-url";
            options->core_argv[options->core_argc++] = value;
        }
    }
    /* Last, so that it wins over WS4REDIS_LISTEN and --config: the core's own listener stays off,
       connections arrive from MHD through server_adopt(). */
    options->core_argv[options->core_argc++] = "--listen=";
    return check_tls_options(options);
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

/* The effective value of a core setting the host's own code depends on. The core knows every
   setting it defines, so NULL would be a core older than this host: its table check refused that. */
static const char *core_setting(const struct host *host, const char *name) {
    const char *value = host->api->server_setting(host->server, name);
    return value != NULL ? value : "";
}

static bool setting_on(const struct host *host, const char *name) {
    return strcmp(core_setting(host, name), "on") == 0;
}

/* What the routes need of the core's settings; the strings are the server's, valid until it is destroyed. */
static void take_settings(struct host *host, const struct options *options) {
    host->redis_url = core_setting(host, "redis_url");
    host->key_prefix = core_setting(host, "prefix");
    host->publish_endpoint = setting_on(host, "publish_endpoint");
    host->serve_demo_page = setting_on(host, "demo_page");
    /* With a metrics listener of its own (the core's), /metrics leaves this one. */
    host->serve_metrics = setting_on(host, "metrics") && core_setting(host, "metrics_listen")[0] == '\0';
    host->served_names.listen_host = options->listen_host;
    host->served_names.allowed_origins = core_setting(host, "allowed_origins");
    host->max_publish_body = (size_t)strtoull(core_setting(host, "max_message_size"), NULL, 10);
}

/* Creates the core server from the forwarded options and the environment. Returns 0, 2 when the
   configuration is wrong (a usage error: the core's message names the option), 1 otherwise. */
static int create_server(struct host *host, const struct options *options) {
    int status = host->api->server_create_with_args(NULL, options->core_argc, options->core_argv, &host->server);
    if (status == WS4R_OK) {
        take_settings(host, options);
        return 0;
    }
    fprintf(stderr, "ws4redis-host: %s\n",
            host->server != NULL ? host->api->server_errmsg(host->server) : host->api->strerror(status));
    if (status == WS4R_ECONFIG || status == WS4R_EINVAL) {
        fputs("Try 'ws4redis-host --help'.\n", stderr);
        return 2;
    }
    return 1;
}

static int start_server(struct host *host) {
    int status = host->api->server_start(host->server);
    if (status != WS4R_OK) {
        fprintf(stderr, "ws4redis-host: cannot start the server: %s\n", host->api->server_errmsg(host->server));
        return -1;
    }
    return 0;
}

/* Creates the publisher of POST /publish, when that is on. An unreachable Redis is not fatal, as for
   the server: publish tries again and answers 502 until Redis is back. */
static int create_publisher(struct host *host) {
    if (!host->publish_endpoint)
        return 0;
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
        fprintf(stderr, "ws4redis-host: cannot listen on %s:%s%s\n", options->listen_host, options->listen_port,
                tls_enabled(&host->tls) ? " with the TLS certificate and key given" : "");
        return NULL;
    }
    /* The bound port, which differs from the option for port 0. */
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    printf("ws4redis-host listening on %s://%s:%u (core %s, %s)\n", tls_enabled(&host->tls) ? "https" : "http",
           options->listen_host,
           info != NULL ? (unsigned)info->port : 0u, host->api->version_string(),
           options->plugin_path != NULL ? "plugin" : "linked");
    fflush(stdout);
    return daemon;
}

/* The demo page, when it is on (rendered once: the settings it shows never change). */
static int render_demo_page(struct host *host) {
    if (!host->serve_demo_page)
        return 0;
    struct demo_settings demo = { core_setting(host, "url_prefix"), core_setting(host, "heartbeat"),
                                  core_setting(host, "heartbeat_interval") };
    host->demo_page = demo_page_render(&demo);
    if (host->demo_page == NULL) {
        fputs("ws4redis-host: out of memory\n", stderr);
        return -1;
    }
    return 0;
}

/* Refuses a libmicrohttpd other than the one the host was built with, where http.c's checks of NUL
   bytes in requests lean on how MHD lays a request out (http.c: has_nul(), head_has_nul()). */
static int check_mhd_version(void) {
    char reason[256];
    if (http_check_mhd_version(MHD_get_version(), reason, sizeof reason) == 0)
        return 0;
    fprintf(stderr, "ws4redis-host: %s\n", reason);
    return -1;
}

/* Sets everything up once the server exists; prints why and returns -1 on failure (shut_down()
   cleans up either way). */
static int start(struct host *host, const struct options *options, struct MHD_Daemon **daemon) {
    if (check_mhd_version() != 0 || render_demo_page(host) != 0)
        return -1;
    if (tls_load(&host->tls, options->tls_certificate, options->tls_key) != 0)
        return -1;
    host->served_names.tls = tls_enabled(&host->tls);
    if (start_server(host) != 0 || create_publisher(host) != 0)
        return -1;
    *daemon = start_http(host, options);
    return *daemon != NULL ? 0 : -1;
}

/* Tears down whatever was set up. The core stops first: it closes every websocket (1001) while
   MHD still answers HTTP (and still relays TLS websockets, each released to MHD by its release
   callback), and the stopped server refuses handshakes meanwhile. Then handshakes
   still waiting for an identity are answered (MHD must not stop with suspended connections),
   and MHD stops before the server is destroyed because MHD's thread calls into the server.
   Then the handles (server_destroy() stops a server that MHD never fed), then the library
   their code lives in. */
static void shut_down(struct host *host, struct MHD_Daemon *daemon, void *plugin) {
    if (daemon != NULL) {
        host->api->server_stop(host->server, STOP_TIMEOUT_MS);
        http_quiesce(host);
        MHD_stop_daemon(daemon);
    }
    tls_free(&host->tls);
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
    if (parse_options(argc, argv, &options) != 0) {
        fputs("Try 'ws4redis-host --help'.\n", stderr);
        free(options.core_argv);
        return 2; /* a usage error, as getopt tools do */
    }
    void *plugin = NULL;
    struct host host = { 0 };
    host.api = load_api(options.plugin_path, &plugin);
    if (options.help) {
        usage(host.api);
        ws4r_plugin_unload(plugin);
        free(options.core_argv);
        return EXIT_SUCCESS;
    }
    if (host.api == NULL) {
        free(options.core_argv);
        return EXIT_FAILURE;
    }
    /* Each websocket holds a descriptor in this process. */
    host.api->lift_descriptor_limit();
    http_init(&host);

    struct MHD_Daemon *daemon = NULL;
    int status = create_server(&host, &options);
    if (status == 0) {
        status = EXIT_FAILURE;
        if (start(&host, &options, &daemon) == 0) {
            wait_for_stop_signal(&stop_signals);
            status = EXIT_SUCCESS;
        }
    }
    shut_down(&host, daemon, plugin);
    http_destroy(&host);
    free(options.core_argv);
    return status;
}
