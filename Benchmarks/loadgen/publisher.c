#include "publisher.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loadgen.h"

struct publisher {
    const struct options *opt;
    int window, pending;
    redisContext *redis;
    int http_fd;
    char *out; /* queued HTTP requests */
    size_t out_length, out_capacity;
    char in[16384]; /* HTTP answers not yet parsed */
    size_t in_length;
    char error[256];
};

static int failed(struct publisher *p, const char *what, const char *detail) {
    snprintf(p->error, sizeof p->error, "%s: %s", what, detail);
    return -1;
}

static int http_connect(struct publisher *p) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->opt->publish_url.port)};
    if (inet_pton(AF_INET, strcmp(p->opt->publish_url.host, "localhost") == 0 ? "127.0.0.1" : p->opt->publish_url.host,
                  &address.sin_addr) != 1)
        return failed(p, "publish url", "host must be an IPv4 address");
    p->http_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->http_fd < 0 || connect(p->http_fd, (struct sockaddr *)&address, sizeof address) != 0)
        return failed(p, "publish url connect", strerror(errno));
    int one = 1;
    setsockopt(p->http_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

struct publisher *publisher_open(const struct options *opt, int window) {
    struct publisher *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->opt = opt;
    p->window = window > 0 ? window : 1;
    p->http_fd = -1;
    if (opt->publish_http) {
        http_connect(p);
    } else {
        struct timeval timeout = {10, 0};
        p->redis = redisConnectWithTimeout(opt->redis.host, opt->redis.port, timeout);
        if (!p->redis || p->redis->err)
            failed(p, "redis connect", p->redis ? p->redis->errstr : "out of memory");
    }
    return p;
}

const char *publisher_error(const struct publisher *p) {
    return p->error[0] ? p->error : NULL;
}

static int queue_http(struct publisher *p, const uint8_t *payload, size_t length) {
    const struct endpoint *url = &p->opt->publish_url;
    size_t needed = p->out_length + length + strlen(url->path) + strlen(url->host) + 160;
    if (needed > p->out_capacity) {
        char *grown = realloc(p->out, needed * 2);
        if (!grown)
            return failed(p, "publish", "out of memory");
        p->out = grown;
        p->out_capacity = needed * 2;
    }
    p->out_length += (size_t)sprintf(p->out + p->out_length,
                                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n",
                                     url->path, url->host, url->port, length);
    memcpy(p->out + p->out_length, payload, length);
    p->out_length += length;
    return 0;
}

int publisher_send(struct publisher *p, const uint8_t *payload, size_t length) {
    if (p->error[0])
        return -1;
    int status = p->redis ? redisAppendCommand(p->redis, "PUBLISH %b %b", p->opt->channel, strlen(p->opt->channel), payload,
                                               length) == REDIS_OK ? 0 : failed(p, "redis", p->redis->errstr)
                          : queue_http(p, payload, length);
    if (status != 0)
        return -1;
    return ++p->pending >= p->window ? publisher_sync(p) : 0;
}

static int sync_redis(struct publisher *p) {
    for (; p->pending > 0; p->pending--) {
        redisReply *reply;
        if (redisGetReply(p->redis, (void **)&reply) != REDIS_OK)
            return failed(p, "redis", p->redis->errstr);
        int is_error = reply->type == REDIS_REPLY_ERROR;
        if (is_error)
            failed(p, "redis PUBLISH", reply->str);
        freeReplyObject(reply);
        if (is_error)
            return -1;
    }
    return 0;
}

/* One complete answer at the start of p->in: its length, 0 while incomplete, -1 when not a 2xx. */
static long parse_http_answer(struct publisher *p) {
    p->in[p->in_length] = 0;
    char *end = strstr(p->in, "\r\n\r\n");
    if (!end)
        return 0;
    int status = 0;
    if (sscanf(p->in, "HTTP/1.%*d %d", &status) != 1 || status < 200 || status > 299) {
        char line[80];
        snprintf(line, sizeof line, "%.*s", (int)strcspn(p->in, "\r\n"), p->in);
        return failed(p, "publish answer", line);
    }
    *end = 0;
    const char *length_header = strcasestr(p->in, "\r\ncontent-length:");
    *end = '\r';
    if (!length_header)
        return failed(p, "publish answer", "no Content-Length (chunked answers are not read)");
    long body = strtol(length_header + 17, NULL, 10);
    long total = (long)(end + 4 - p->in) + body;
    return total <= (long)p->in_length ? total : 0;
}

static int sync_http(struct publisher *p) {
    for (size_t sent = 0; sent < p->out_length;) {
        ssize_t written = write(p->http_fd, p->out + sent, p->out_length - sent);
        if (written <= 0)
            return failed(p, "publish write", strerror(errno));
        sent += (size_t)written;
    }
    p->out_length = 0;
    while (p->pending > 0) {
        long answer = parse_http_answer(p);
        if (answer < 0)
            return -1;
        if (answer > 0) {
            memmove(p->in, p->in + answer, p->in_length - (size_t)answer);
            p->in_length -= (size_t)answer;
            p->pending--;
            continue;
        }
        if (p->in_length >= sizeof p->in - 1)
            return failed(p, "publish answer", "too long");
        ssize_t got = read(p->http_fd, p->in + p->in_length, sizeof p->in - 1 - p->in_length);
        if (got <= 0)
            return failed(p, "publish read", got == 0 ? "connection closed" : strerror(errno));
        p->in_length += (size_t)got;
    }
    return 0;
}

int publisher_sync(struct publisher *p) {
    if (p->error[0])
        return -1;
    return p->redis ? sync_redis(p) : sync_http(p);
}

void publisher_close(struct publisher *p) {
    if (!p)
        return;
    if (p->redis)
        redisFree(p->redis);
    if (p->http_fd >= 0)
        close(p->http_fd);
    free(p->out);
    free(p);
}
