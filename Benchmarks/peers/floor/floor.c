/* floor: the least work a websocket server for Redis pub/sub can do per delivery and per handshake,
 * measured beside ws4redis and Nchan (Benchmarks/run.py) so that a figure bounded by the kernel shows
 * as such. A Redis message becomes one frame, built once, then one write() per subscribed socket;
 * a handshake is one read, one SHA-1 and one write of the 101.
 *
 *   floor --listen HOST:PORT --redis HOST:PORT [--workers N]
 *
 * N forked workers, each with its own SO_REUSEPORT listening socket (bound by the parent before the
 * fork, so every accept queue exists before the first connection), one level-triggered epoll loop
 * and one hiredis connection that SUBSCRIBEs to a channel the first time a websocket asks for it.
 * Paths as ws4redis's: /ws/<facility>?subscribe-broadcast (Redis channel broadcast:<facility>),
 * /echo (every data frame back), GET /healthz (200 {"redis_connected":true} once Redis is connected).
 *
 * Not a server to deploy: no TLS, no deflate, no UTF-8 check, no unsubscribe, no reconnect to Redis
 * (a lost connection ends the worker and the parent ends the rest: a run fails loudly rather than
 * losing messages). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum { REQUEST_MAX = 1024, CLIENT_FRAME_MAX = 1 << 20, READ_CHUNK = 64 * 1024, EVENTS = 256, MAX_WORKERS = 64,
       ACCEPTS_PER_WAKEUP = 64, FD_TABLE_MAX = 1 << 20 };
enum { OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

/* ---- Sec-WebSocket-Accept: base64(SHA-1(key + GUID)), RFC 6455 section 4.2.2 ---- */

static uint32_t rol(uint32_t x, int n) { return x << n | x >> (32 - n); }

static void sha1_block(uint32_t h[5], const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f = i < 20 ? (b & c) | (~b & d) : i < 40 ? b ^ c ^ d : i < 60 ? (b & c) | (b & d) | (c & d) : b ^ c ^ d;
        uint32_t k = i < 20 ? 0x5a827999 : i < 40 ? 0x6ed9eba1 : i < 60 ? 0x8f1bbcdc : 0xca62c1d6;
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d, d = c, c = rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

static void sha1(const uint8_t *data, size_t length, uint8_t out[20]) {
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    size_t full = length / 64 * 64;
    for (size_t i = 0; i < full; i += 64)
        sha1_block(h, data + i);
    uint8_t tail[128] = {0}; /* the last partial block, 0x80, zeros, the length in bits (big-endian) */
    size_t rest = length - full, tail_length = rest < 56 ? 64 : 128;
    memcpy(tail, data + full, rest);
    tail[rest] = 0x80;
    for (int i = 0; i < 8; i++)
        tail[tail_length - 1 - i] = (uint8_t)((uint64_t)length * 8 >> (8 * i));
    for (size_t i = 0; i < tail_length; i += 64)
        sha1_block(h, tail + i);
    for (int i = 0; i < 20; i++)
        out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const uint8_t *in, size_t length, char *out) {
    static const char TABLE[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < length; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < length ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < length ? in[i + 2] : 0);
        *out++ = TABLE[v >> 18 & 63];
        *out++ = TABLE[v >> 12 & 63];
        *out++ = i + 1 < length ? TABLE[v >> 6 & 63] : '=';
        *out++ = i + 2 < length ? TABLE[v & 63] : '=';
    }
    *out = 0;
}

/* out: 29 bytes. Returns -1 for a key no client sends (they are 24 characters). */
static int websocket_accept(const char *key, size_t key_length, char *out) {
    static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char joined[128];
    uint8_t digest[20];
    if (key_length == 0 || key_length > sizeof joined - sizeof GUID)
        return -1;
    memcpy(joined, key, key_length);
    memcpy(joined + key_length, GUID, sizeof GUID - 1);
    sha1((const uint8_t *)joined, key_length + sizeof GUID - 1, digest);
    base64(digest, sizeof digest, out);
    return 0;
}

/* ---- the worker's state: one process, one loop, so plain globals ---- */

struct bytes { uint8_t *data; size_t start, length, capacity; }; /* data[start, start + length) */

enum kind { HANDSHAKE, ECHO, SUBSCRIBER };

struct conn {
    int fd;
    enum kind kind;
    bool closing;            /* answered for the last time: close once the outbox is written */
    size_t channel, slot;    /* SUBSCRIBER: index of its channel, and its own index in the channel's list */
    struct bytes in, out;    /* a partial request or frame; what the socket did not take yet */
};

/* The benchmark uses one channel per server: a list searched linearly is all it needs. */
struct channel { char *name; struct conn **conns; size_t count, capacity; };

static struct {
    int epoll_fd, listen_fd, spare_fd;
    redisContext *redis;
    bool redis_up, redis_wants_out;
    struct conn **by_fd;
    size_t fd_limit;
    struct channel *channels;
    size_t channel_count;
    struct bytes scratch; /* the frame being sent */
    uint8_t chunk[READ_CHUNK];
} W;

static volatile sig_atomic_t stopping;

static void fatal(const char *what, const char *detail) {
    fprintf(stderr, "floor worker %d: %s: %s\n", (int)getpid(), what, detail);
    exit(1);
}

static void *grow(void *pointer, size_t size) {
    void *grown = realloc(pointer, size);
    if (!grown)
        fatal("out of memory", "realloc");
    return grown;
}

static void bytes_append(struct bytes *b, const uint8_t *data, size_t length) {
    if (b->start + b->length + length > b->capacity) { /* move to the front first, grow only if still short */
        if (b->length > 0)
            memmove(b->data, b->data + b->start, b->length);
        b->start = 0;
        if (b->length + length > b->capacity) {
            b->capacity = (b->length + length) * 2;
            b->data = grow(b->data, b->capacity);
        }
    }
    memcpy(b->data + b->start + b->length, data, length);
    b->length += length;
}

/* Drops what was used; an empty buffer is freed, so an idle socket holds no buffer at all. */
static void bytes_drop(struct bytes *b, size_t used) {
    b->start += used;
    b->length -= used;
    if (b->length == 0) {
        free(b->data);
        *b = (struct bytes){0};
    }
}

static void watch(int fd, uint32_t events) {
    struct epoll_event event = {.events = events, .data.fd = fd};
    epoll_ctl(W.epoll_fd, EPOLL_CTL_MOD, fd, &event);
}

/* ---- sockets ---- */

static void conn_close(struct conn *c) {
    if (c->kind == SUBSCRIBER) { /* swap-remove from the channel's list: order among sockets does not matter */
        struct channel *ch = &W.channels[c->channel];
        struct conn *last = ch->conns[--ch->count];
        ch->conns[c->slot] = last;
        last->slot = c->slot;
    }
    W.by_fd[c->fd] = NULL;
    close(c->fd); /* also leaves the epoll set */
    free(c->in.data);
    free(c->out.data);
    free(c);
}

/* One write; what the socket does not take waits in the outbox for EPOLLOUT (after anything already
 * waiting there: bytes go out in order). -1: the socket is broken; its EPOLLERR/EPOLLHUP closes it. */
static int send_bytes(struct conn *c, const uint8_t *data, size_t length) {
    if (c->out.length == 0) {
        ssize_t written = write(c->fd, data, length);
        if (written < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (written == (ssize_t)length)
            return 0;
        if (written > 0)
            data += written, length -= (size_t)written;
        watch(c->fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    }
    bytes_append(&c->out, data, length);
    return 0;
}

/* Writes what waits in the outbox; returns true when that closed the socket. */
static bool flush_out(struct conn *c) {
    if (c->out.length == 0)
        return false; /* a stale event: the fd was closed and reused within one batch */
    ssize_t written = write(c->fd, c->out.data + c->out.start, c->out.length);
    if (written < 0 && errno != EAGAIN && errno != EINTR) {
        conn_close(c);
        return true;
    }
    bytes_drop(&c->out, written > 0 ? (size_t)written : 0);
    if (c->out.length > 0)
        return false;
    if (c->closing) { /* the last answer is out */
        conn_close(c);
        return true;
    }
    watch(c->fd, EPOLLIN | EPOLLRDHUP);
    return false;
}

/* A server frame (never masked) in W.scratch; returns its length. */
static size_t build_frame(uint8_t first_byte, const void *payload, size_t length) {
    if (W.scratch.capacity < length + 10) {
        W.scratch.capacity = length + 10;
        W.scratch.data = grow(W.scratch.data, W.scratch.capacity);
    }
    uint8_t *h = W.scratch.data;
    size_t header = 2;
    h[0] = first_byte;
    if (length < 126) {
        h[1] = (uint8_t)length;
    } else if (length <= 0xffff) {
        h[1] = 126, h[2] = (uint8_t)(length >> 8), h[3] = (uint8_t)length, header = 4;
    } else {
        h[1] = 127, header = 10;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)length >> (56 - 8 * i));
    }
    memcpy(h + header, payload, length);
    return header + length;
}

static void send_frame(struct conn *c, uint8_t first_byte, const void *payload, size_t length) {
    send_bytes(c, W.scratch.data, build_frame(first_byte, payload, length));
}

static void send_close(struct conn *c, uint16_t code) {
    uint8_t payload[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    send_frame(c, 0x80 | OP_CLOSE, payload, sizeof payload);
    c->closing = true;
}

/* ---- Redis ---- */

/* Writes hiredis's output buffer; what the socket does not take is written on EPOLLOUT. */
static void redis_flush(void) {
    int done = 0;
    if (!W.redis_up)
        return; /* still connecting: the connect's EPOLLOUT flushes */
    if (redisBufferWrite(W.redis, &done) != REDIS_OK)
        fatal("redis write", W.redis->errstr);
    if (W.redis_wants_out != !done) {
        W.redis_wants_out = !done;
        watch(W.redis->fd, EPOLLIN | (done ? 0 : EPOLLOUT));
    }
}

static void subscribe(struct conn *c, const char *facility, size_t facility_length) {
    char name[REQUEST_MAX + 16]; /* a facility is part of a request head: never truncated */
    int name_length = snprintf(name, sizeof name, "broadcast:%.*s", (int)facility_length, facility);
    size_t index = 0;
    while (index < W.channel_count && strcmp(W.channels[index].name, name) != 0)
        index++;
    if (index == W.channel_count) {
        W.channels = grow(W.channels, (W.channel_count + 1) * sizeof *W.channels);
        W.channels[W.channel_count++] = (struct channel){.name = strdup(name)};
        const char *argv[] = {"SUBSCRIBE", name};
        size_t lengths[] = {9, (size_t)name_length};
        redisAppendCommandArgv(W.redis, 2, argv, lengths);
        redis_flush();
    }
    struct channel *ch = &W.channels[index];
    if (ch->count == ch->capacity) {
        ch->capacity = ch->capacity ? ch->capacity * 2 : 1024;
        ch->conns = grow(ch->conns, ch->capacity * sizeof *ch->conns);
    }
    c->kind = SUBSCRIBER;
    c->channel = index;
    c->slot = ch->count;
    ch->conns[ch->count++] = c;
}

/* The point of the floor: the frame is built once, then each socket costs one write(). */
static void deliver(const char *channel, const char *payload, size_t length) {
    size_t index = 0;
    while (index < W.channel_count && strcmp(W.channels[index].name, channel) != 0)
        index++;
    if (index == W.channel_count)
        return;
    struct channel *ch = &W.channels[index];
    size_t frame_length = build_frame(0x80 | OP_TEXT, payload, length);
    for (size_t i = 0; i < ch->count; i++)
        send_bytes(ch->conns[i], W.scratch.data, frame_length);
}

static void on_reply(redisReply *r) {
    if (r->type == REDIS_REPLY_ERROR)
        fatal("redis replied", r->str);
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[0]->str, "message") == 0)
        deliver(r->element[1]->str, r->element[2]->str, (size_t)r->element[2]->len);
    /* else a SUBSCRIBE confirmation */
}

static void on_redis(uint32_t events) {
    if (!W.redis_up && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) { /* the non-blocking connect ended */
        int error = 0;
        socklen_t size = sizeof error;
        getsockopt(W.redis->fd, SOL_SOCKET, SO_ERROR, &error, &size);
        if (error)
            fatal("redis connect", strerror(error));
        W.redis_up = true;
        W.redis_wants_out = true; /* the connect's registration */
    }
    if (events & EPOLLOUT)
        redis_flush();
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return;
    if (redisBufferRead(W.redis) != REDIS_OK)
        fatal("redis read", W.redis->errstr);
    void *reply;
    while (redisGetReply(W.redis, &reply) == REDIS_OK && reply) {
        on_reply(reply);
        freeReplyObject(reply);
    }
    if (W.redis->err)
        fatal("redis reply", W.redis->errstr);
}

/* ---- HTTP: the upgrade request, or /healthz ---- */

/* The value of header `name` (lowercase) in the request head, without surrounding blanks, or NULL. */
static const char *header_value(const char *head, size_t head_length, const char *name, size_t *length) {
    size_t name_length = strlen(name);
    const char *end = head + head_length;
    for (const char *line = head, *eol; (eol = memmem(line, (size_t)(end - line), "\r\n", 2)); line = eol + 2) {
        if ((size_t)(eol - line) <= name_length || line[name_length] != ':' || strncasecmp(line, name, name_length) != 0)
            continue;
        const char *value = line + name_length + 1, *stop = eol;
        while (value < stop && (*value == ' ' || *value == '\t'))
            value++;
        while (stop > value && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        *length = (size_t)(stop - value);
        return value;
    }
    return NULL;
}

static void respond(struct conn *c, const char *status, const char *body) {
    char text[256];
    int length = snprintf(text, sizeof text,
                          "HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                          status, strlen(body), body);
    send_bytes(c, (const uint8_t *)text, (size_t)length);
    c->closing = true;
}

/* A complete request head at data: answers it and returns its length; 0: more bytes needed. */
static ssize_t on_request(struct conn *c, const uint8_t *data, size_t length) {
    const char *head = (const char *)data, *end = memmem(head, length, "\r\n\r\n", 4);
    if (!end)
        return length >= REQUEST_MAX ? -1 : 0;
    size_t head_length = (size_t)(end - head) + 4;
    const char *path = head + 4, *path_end = strncmp(head, "GET ", 4) == 0 ? memchr(path, ' ', (size_t)(end - path)) : NULL;
    if (!path_end) {
        respond(c, "400 Bad Request", "{}");
        return (ssize_t)head_length;
    }
    size_t path_length = (size_t)(path_end - path);
    if (path_length == 8 && memcmp(path, "/healthz", 8) == 0) {
        respond(c, W.redis_up ? "200 OK" : "503 Service Unavailable",
                W.redis_up ? "{\"redis_connected\":true}" : "{\"redis_connected\":false}");
        return (ssize_t)head_length;
    }
    const char *query = memchr(path, '?', path_length), *facility = path + 4;
    bool echo = path_length == 5 && memcmp(path, "/echo", 5) == 0;
    bool broadcast = path_length > 4 && memcmp(path, "/ws/", 4) == 0 && query && query > facility &&
                     memmem(query, (size_t)(path_end - query), "subscribe-broadcast", 19);
    size_t key_length = 0;
    const char *key = header_value(head, head_length, "sec-websocket-key", &key_length);
    char accept[29], answer[160];
    if (!echo && !broadcast) {
        respond(c, "404 Not Found", "{}");
    } else if (!key || websocket_accept(key, key_length, accept) != 0) {
        respond(c, "400 Bad Request", "{}");
    } else {
        int answer_length = snprintf(answer, sizeof answer, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
        send_bytes(c, (const uint8_t *)answer, (size_t)answer_length);
        if (echo)
            c->kind = ECHO;
        else
            subscribe(c, facility, (size_t)(query - facility));
    }
    return (ssize_t)head_length;
}

/* ---- websocket frames from the client ---- */

/* One complete client frame at data, unmasked in place and answered; returns its length, or 0 when
 * more bytes are needed or the frame broke the protocol (then answered with a close frame). */
static ssize_t on_frame(struct conn *c, uint8_t *data, size_t length) {
    if (length < 2)
        return 0;
    uint8_t first = data[0], opcode = first & 0x0f, short_length = data[1] & 0x7f;
    bool control = opcode >= OP_CLOSE;
    /* Unmasked, reserved bits (no extension is agreed), opcodes 3-7 and 11-15, a long or fragmented control frame. */
    if (!(data[1] & 0x80) || (first & 0x70) || (opcode > OP_BINARY && !control) || opcode > OP_PONG ||
        (control && (short_length > 125 || !(first & 0x80)))) {
        send_close(c, 1002);
        return 0;
    }
    size_t header = 2 + (short_length == 126 ? 2 : short_length == 127 ? 8 : 0) + 4;
    if (length < header)
        return 0;
    uint64_t payload_length = short_length;
    if (short_length >= 126) {
        payload_length = 0;
        for (size_t i = 2; i < header - 4; i++)
            payload_length = payload_length << 8 | data[i];
    }
    if (payload_length > CLIENT_FRAME_MAX) {
        send_close(c, 1009);
        return 0;
    }
    if (length < header + payload_length)
        return 0;
    uint8_t *mask = data + header - 4, *payload = data + header;
    for (size_t i = 0; i < payload_length; i++)
        payload[i] ^= mask[i & 3];
    if (opcode == OP_CLOSE) { /* answer with its status code (RFC 6455 section 5.5.1), then close */
        send_frame(c, 0x80 | OP_CLOSE, payload, payload_length >= 2 ? 2 : 0);
        c->closing = true;
    } else if (opcode == OP_PING) {
        send_frame(c, 0x80 | OP_PONG, payload, payload_length);
    } else if (opcode != OP_PONG && c->kind == ECHO) { /* a data frame, echoed as it came (fragments as fragments) */
        send_frame(c, first, payload, payload_length);
    }
    return (ssize_t)(header + payload_length);
}

/* Takes what it can of data; returns how much, or -1 to close the socket now. */
static ssize_t consume(struct conn *c, uint8_t *data, size_t length) {
    size_t used = 0;
    while (used < length && !c->closing) {
        ssize_t step = c->kind == HANDSHAKE ? on_request(c, data + used, length - used) : on_frame(c, data + used, length - used);
        if (step < 0)
            return -1;
        if (step == 0)
            break;
        used += (size_t)step;
    }
    return (ssize_t)used;
}

/* Reads into the worker's chunk and parses from there; only a partial request or frame is copied
 * into the socket's own buffer. */
static void on_readable(struct conn *c) {
    ssize_t got = read(c->fd, W.chunk, sizeof W.chunk);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got <= 0) {
        conn_close(c);
        return;
    }
    if (c->closing)
        return; /* the outbox is draining before the close: nothing more is answered */
    bool stashed = c->in.length > 0;
    if (stashed)
        bytes_append(&c->in, W.chunk, (size_t)got);
    uint8_t *data = stashed ? c->in.data + c->in.start : W.chunk;
    size_t length = stashed ? c->in.length : (size_t)got;
    ssize_t used = consume(c, data, length);
    if (used < 0 || (c->closing && c->out.length == 0)) {
        conn_close(c);
    } else if (!c->closing) {
        if (stashed)
            bytes_drop(&c->in, (size_t)used);
        else if ((size_t)used < length)
            bytes_append(&c->in, data + used, length - (size_t)used);
    }
}

static void on_accept(void) {
    for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
        int fd = accept4(W.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
            /* Out of descriptors: accept and close one with the spare descriptor, so that the client
             * sees a close (not a timeout) and the level-triggered listening socket does not spin. */
            close(W.spare_fd);
            fd = accept4(W.listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0)
                close(fd);
            W.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            return;
        }
        if (fd < 0)
            return; /* EAGAIN: the queue is empty */
        if ((size_t)fd >= W.fd_limit) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c)
            fatal("out of memory", "calloc");
        c->fd = fd;
        W.by_fd[fd] = c;
        struct epoll_event event = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
        epoll_ctl(W.epoll_fd, EPOLL_CTL_ADD, fd, &event);
    }
}

static void on_conn_event(struct conn *c, uint32_t events) {
    if ((events & EPOLLOUT) && flush_out(c))
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        on_readable(c);
}

/* ---- processes ---- */

static void on_stop_signal(int signal_number) {
    (void)signal_number;
    stopping = 1;
}

static int worker(int listen_fd, const char *redis_host, int redis_port, const sigset_t *run_mask) {
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* no orphan holding the port if the parent is killed */
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max < FD_TABLE_MAX ? limit.rlim_max : FD_TABLE_MAX;
    setrlimit(RLIMIT_NOFILE, &limit);
    W.fd_limit = limit.rlim_cur;
    W.by_fd = calloc(W.fd_limit, sizeof *W.by_fd);
    W.listen_fd = listen_fd;
    W.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    W.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    W.redis = redisConnectNonBlock(redis_host, redis_port);
    if (!W.by_fd || W.epoll_fd < 0 || !W.redis || W.redis->err)
        fatal("start", W.redis ? W.redis->errstr : "out of memory");
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT, .data.fd = W.redis->fd};
    epoll_ctl(W.epoll_fd, EPOLL_CTL_ADD, W.redis->fd, &event);
    event = (struct epoll_event){.events = EPOLLIN, .data.fd = listen_fd};
    epoll_ctl(W.epoll_fd, EPOLL_CTL_ADD, listen_fd, &event);

    struct epoll_event events[EVENTS];
    while (!stopping) {
        /* SIGTERM is blocked except while waiting, so it cannot slip in between the check and the wait. */
        int count = epoll_pwait(W.epoll_fd, events, EVENTS, -1, run_mask);
        if (count < 0 && errno != EINTR)
            fatal("epoll_wait", strerror(errno));
        for (int i = 0; i < count; i++) {
            int fd = events[i].data.fd;
            if (fd == listen_fd)
                on_accept();
            else if (fd == W.redis->fd)
                on_redis(events[i].events);
            else if (W.by_fd[fd])
                on_conn_event(W.by_fd[fd], events[i].events);
        }
    }
    redisFree(W.redis);
    return 0;
}

/* A listening socket of its own per worker: the kernel spreads connections over them. */
static int listen_on(const struct sockaddr_in *address) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)address, sizeof *address) != 0 || listen(fd, 4096) != 0)
        return -1;
    return fd;
}

/* "HOST:PORT" into host (at most size bytes) and port. */
static int split_address(const char *text, char *host, size_t size, int *port) {
    const char *colon = strrchr(text, ':');
    if (!colon || (size_t)(colon - text) >= size || (*port = atoi(colon + 1)) <= 0 || *port > 65535)
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = 0;
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: floor --listen HOST:PORT --redis HOST:PORT [--workers N (1..%d, default 2)]\n", MAX_WORKERS);
    return 2;
}

int main(int argc, char **argv) {
    const char *listen_text = NULL, *redis_text = NULL;
    int workers = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0)
            listen_text = argv[i + 1];
        else if (strcmp(argv[i], "--redis") == 0)
            redis_text = argv[i + 1];
        else if (strcmp(argv[i], "--workers") == 0)
            workers = atoi(argv[i + 1]);
        else
            return usage();
    }
    char listen_host[64], redis_host[256];
    int listen_port, redis_port;
    struct sockaddr_in address = {.sin_family = AF_INET};
    if (argc % 2 == 0 || !listen_text || !redis_text || workers < 1 || workers > MAX_WORKERS ||
        split_address(listen_text, listen_host, sizeof listen_host, &listen_port) != 0 ||
        split_address(redis_text, redis_host, sizeof redis_host, &redis_port) != 0 ||
        inet_pton(AF_INET, listen_host, &address.sin_addr) != 1)
        return usage();
    address.sin_port = htons((uint16_t)listen_port);

    signal(SIGPIPE, SIG_IGN); /* a write to a reset socket is an error return, not a signal */
    struct sigaction stop = {.sa_handler = on_stop_signal};
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGINT, &stop, NULL);
    sigset_t blocked, run_mask;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGCHLD); /* blocked, it stays pending for sigwaitinfo below */
    sigprocmask(SIG_BLOCK, &blocked, &run_mask);

    int listen_fds[MAX_WORKERS];
    for (int i = 0; i < workers; i++)
        if ((listen_fds[i] = listen_on(&address)) < 0) {
            fprintf(stderr, "floor: listen on %s: %s\n", listen_text, strerror(errno));
            return 1;
        }
    pid_t pids[MAX_WORKERS];
    for (int i = 0; i < workers; i++) {
        if ((pids[i] = fork()) == 0) {
            for (int j = 0; j < workers; j++)
                if (j != i)
                    close(listen_fds[j]);
            return worker(listen_fds[i], redis_host, redis_port, &run_mask);
        }
        if (pids[i] < 0) { /* fewer workers would measure something else */
            fprintf(stderr, "floor: fork: %s\n", strerror(errno));
            for (int j = 0; j < i; j++)
                kill(pids[j], SIGTERM);
            while (wait(NULL) > 0)
                continue;
            return 1;
        }
    }
    printf("floor: %d workers on %s, Redis %s\n", workers, listen_text, redis_text);
    fflush(stdout);

    /* Until SIGTERM (forwarded to the workers) or a worker's end (the others are stopped: a server
     * missing a worker would measure something else). */
    int status = 0;
    for (int running = workers; running > 0;) {
        int signal_number = sigwaitinfo(&blocked, NULL);
        if (signal_number == SIGCHLD) {
            status = 1;
            fprintf(stderr, "floor: a worker ended; stopping the others\n");
        } else if (signal_number < 0) {
            continue;
        }
        for (int i = 0; i < workers; i++)
            kill(pids[i], SIGTERM);
        for (; running > 0; running--)
            if (wait(NULL) < 0)
                break;
    }
    return status;
}
