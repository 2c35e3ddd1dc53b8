/* The websocket client: a non-blocking connect, the upgrade, and a streaming frame parser that keeps
 * of each data message only its first STAMP_BYTES (all a mode reads) and of a control frame its
 * payload. Server frames are parsed straight out of the worker's read buffer: nothing is copied
 * per message beyond the stamp. */
#include "loadgen.h"

#include <errno.h>
#include <stdio.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { OP_CONTINUATION = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };
enum { RESPONSE_MAX = 2048, FIRST_PORT = 1024, LAST_PORT = 65535, PORT_ATTEMPTS = 1000 };

/* The RFC 6455 sample key and its accept value: servers do not check keys for randomness, and a
 * fixed key spares a SHA-1 per handshake in the load generator. */
static const char ACCEPT_HEADER[] = "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

static void fail(struct worker *w, struct conn *c, enum failure kind) {
    w->result->failures[kind]++;
    atomic_fetch_add_explicit(&w->result->failed, 1, memory_order_relaxed);
    w->in_flight--;
    conn_release(w, c);
}

/* The server ended the socket: a failure before the 101, a close (by frame, FIN or reset) after. */
static void ended_by_server(struct worker *w, struct conn *c) {
    if (c->state == CONN_OPEN) {
        w->open_count--;
        w->opt->mode->on_closed(w, c);
        conn_release(w, c);
    } else if (c->state == CONN_CLOSING) {
        w->open_count--;
        conn_release(w, c);
    } else {
        fail(w, c, c->state == CONN_CONNECTING ? FAIL_CONNECT : FAIL_CLOSED);
    }
}

void conn_release(struct worker *w, struct conn *c) {
    if (c->fd >= 0) {
        epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    free(c->response);
    free(c->outbox);
    c->fd = -1;
    c->response = NULL;
    c->outbox = NULL;
    c->outbox_length = 0;
    c->state = CONN_FREE;
}

/* A worker holding many sockets binds each to the next port of its own source address: letting
 * connect() pick scans the ports in use, a cost that grows with every socket held. Cycling sockets
 * (connect mode) hold few ports at once, so there the kernel picks, skipping its TIME_WAITs. */
static int bind_source(struct worker *w, int fd) {
    int one = 1;
    if (w->opt->mode->cycles_sockets) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        return bind(fd, (struct sockaddr *)&w->source, sizeof w->source);
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in source = w->source;
    for (int attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
        w->next_port = w->next_port >= LAST_PORT ? FIRST_PORT : w->next_port + 1;
        source.sin_port = htons(w->next_port);
        if (bind(fd, (struct sockaddr *)&source, sizeof source) == 0)
            return 0;
        if (errno != EADDRINUSE)
            return -1;
    }
    return -1;
}

/* A new non-blocking socket, bound and connecting. A bound port whose connection to this server
 * is still in TIME_WAIT (from an earlier run) makes connect() refuse the address: take the next. */
static int open_socket(struct worker *w) {
    for (int attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if ((!w->bind_source || bind_source(w, fd) == 0) &&
            (connect(fd, (struct sockaddr *)&w->target, sizeof w->target) == 0 || errno == EINPROGRESS))
            return fd;
        int error = errno;
        close(fd);
        if (error != EADDRNOTAVAIL && error != EADDRINUSE)
            return -1;
    }
    return -1;
}

int conn_start(struct worker *w, struct conn *c) {
    c->fd = open_socket(w);
    c->started_ns = now_ns();
    c->state = CONN_CONNECTING;
    c->header_length = 0;
    c->in_payload = false;
    c->response_length = 0;
    w->in_flight++;
    if (c->fd < 0) {
        fail(w, c, FAIL_CONNECT);
        return -1;
    }
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, c->fd, &event);
    return 0;
}

static void watch(struct worker *w, struct conn *c, uint32_t events) {
    struct epoll_event event = {.events = events, .data.ptr = c};
    epoll_ctl(w->epoll_fd, EPOLL_CTL_MOD, c->fd, &event);
}

/* Writes what the socket takes; the rest waits in the outbox for EPOLLOUT. */
static int write_or_queue(struct worker *w, struct conn *c, const uint8_t *bytes, size_t length) {
    if (c->outbox_length == 0) {
        ssize_t written = write(c->fd, bytes, length);
        if (written < 0 && errno != EAGAIN)
            return -1;
        if (written > 0) {
            bytes += written;
            length -= (size_t)written;
        }
        if (length == 0)
            return 0;
        watch(w, c, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
    }
    uint8_t *grown = realloc(c->outbox, c->outbox_length + length);
    if (!grown)
        return -1;
    memcpy(grown + c->outbox_length, bytes, length);
    c->outbox = grown;
    c->outbox_length += (uint32_t)length;
    return 0;
}

static int flush_outbox(struct worker *w, struct conn *c) {
    ssize_t written = write(c->fd, c->outbox, c->outbox_length);
    if (written < 0)
        return errno == EAGAIN ? 0 : -1;
    c->outbox_length -= (uint32_t)written;
    memmove(c->outbox, c->outbox + written, c->outbox_length);
    if (c->outbox_length == 0)
        watch(w, c, EPOLLIN | EPOLLRDHUP);
    return 0;
}

int conn_send(struct worker *w, struct conn *c, uint8_t opcode, const void *payload, size_t length) {
    uint8_t header[14];
    size_t header_length = 2;
    header[0] = (uint8_t)(0x80 | opcode);
    if (length < 126) {
        header[1] = (uint8_t)(0x80 | length);
    } else if (length <= 0xffff) {
        header[1] = 0x80 | 126;
        header[2] = (uint8_t)(length >> 8);
        header[3] = (uint8_t)length;
        header_length = 4;
    } else {
        header[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            header[2 + i] = (uint8_t)((uint64_t)length >> (56 - 8 * i));
        header_length = 10;
    }
    w->mask_state = w->mask_state * 6364136223846793005ull + 1442695040888963407ull;
    uint8_t mask[4];
    for (int i = 0; i < 4; i++)
        mask[i] = (uint8_t)(w->mask_state >> (32 + 8 * i));
    memcpy(header + header_length, mask, 4);
    header_length += 4;
    uint8_t *frame = malloc(header_length + length);
    if (!frame)
        return -1;
    memcpy(frame, header, header_length);
    const uint8_t *source = payload;
    for (size_t i = 0; i < length; i++)
        frame[header_length + i] = source[i] ^ mask[i & 3];
    int status = write_or_queue(w, c, frame, header_length + length);
    free(frame);
    return status;
}

void conn_send_close(struct worker *w, struct conn *c) {
    static const uint8_t normal_closure[2] = {0x03, 0xe8};
    conn_send(w, c, OP_CLOSE, normal_closure, sizeof normal_closure);
    c->state = CONN_CLOSING;
}

static void frame_done(struct worker *w, struct conn *c, int64_t now) {
    switch (c->opcode) {
    case OP_PING:
        conn_send(w, c, OP_PONG, c->control, c->control_length);
        break;
    case OP_CLOSE:
        if (c->state == CONN_OPEN)
            conn_send(w, c, OP_CLOSE, c->control, c->control_length < 2 ? c->control_length : 2);
        ended_by_server(w, c);
        break;
    case OP_PONG:
        break;
    default:
        if (c->fin)
            w->opt->mode->on_message(w, c, now);
        break;
    }
}

/* Takes the frame header bytes from data; returns how many it used, or -1 on a protocol error. */
static ssize_t take_header(struct conn *c, const uint8_t *data, size_t length) {
    size_t used = 0;
    while (used < length) {
        c->header[c->header_length++] = data[used++];
        if (c->header_length < 2)
            continue;
        if (c->header[1] & 0x80)
            return -1; /* a server never masks */
        uint8_t short_length = c->header[1] & 0x7f;
        size_t needed = short_length == 127 ? 10 : short_length == 126 ? 4 : 2;
        if (c->header_length < needed)
            continue;
        uint64_t payload_length = short_length;
        if (short_length >= 126) {
            payload_length = 0;
            for (size_t i = 2; i < needed; i++)
                payload_length = payload_length << 8 | c->header[i];
        }
        c->fin = c->header[0] & 0x80;
        c->opcode = c->header[0] & 0x0f;
        if (c->opcode == OP_TEXT || c->opcode == OP_BINARY) {
            c->message_opcode = c->opcode;
            c->message_bytes = 0;
            c->stamp_length = 0;
        } else if (c->opcode >= OP_CLOSE) {
            if (payload_length > CONTROL_MAX)
                return -1;
            c->control_length = 0;
        } else if (c->opcode != OP_CONTINUATION) {
            return -1;
        }
        c->remaining = payload_length;
        c->in_payload = true;
        c->header_length = 0;
        return (ssize_t)used;
    }
    return (ssize_t)used;
}

static void take_payload(struct conn *c, const uint8_t *data, size_t take) {
    if (c->opcode >= OP_CLOSE) {
        memcpy(c->control + c->control_length, data, take);
        c->control_length += (uint8_t)take;
        return;
    }
    if (c->stamp_length < STAMP_BYTES) {
        size_t room = (size_t)(STAMP_BYTES - c->stamp_length);
        size_t copy = room < take ? room : take;
        memcpy(c->stamp + c->stamp_length, data, copy);
        c->stamp_length += (uint8_t)copy;
    }
    c->message_bytes += take;
}

/* Feeds received bytes to the frame parser; returns -1 when the connection is gone. */
static int feed_frames(struct worker *w, struct conn *c, const uint8_t *data, size_t length, int64_t now) {
    while (length > 0 || (c->in_payload && c->remaining == 0)) {
        if (!c->in_payload) {
            ssize_t used = take_header(c, data, length);
            if (used < 0) {
                ended_by_server(w, c);
                return -1;
            }
            data += used;
            length -= (size_t)used;
            continue;
        }
        size_t take = c->remaining < length ? (size_t)c->remaining : length;
        take_payload(c, data, take);
        data += take;
        length -= take;
        c->remaining -= take;
        if (c->remaining == 0) {
            c->in_payload = false;
            frame_done(w, c, now);
            if (c->state == CONN_FREE)
                return -1;
        }
    }
    return 0;
}

/* Collects the HTTP answer; once complete, checks it and hands any bytes after it to the frame parser. */
static int feed_handshake(struct worker *w, struct conn *c, const uint8_t *data, size_t length, int64_t now) {
    if (!c->response && !(c->response = malloc(RESPONSE_MAX + 1))) {
        fail(w, c, FAIL_HANDSHAKE);
        return -1;
    }
    size_t room = RESPONSE_MAX - c->response_length;
    size_t take = length < room ? length : room;
    memcpy(c->response + c->response_length, data, take);
    c->response_length += (uint16_t)take;
    c->response[c->response_length] = 0;
    char *end = strstr(c->response, "\r\n\r\n");
    if (!end) {
        if (c->response_length == RESPONSE_MAX) {
            fail(w, c, FAIL_HANDSHAKE);
            return -1;
        }
        return 0;
    }
    size_t head_length = (size_t)(end + 4 - c->response);
    *end = 0;
    bool upgraded = strncmp(c->response, "HTTP/1.1 101", 12) == 0 && strcasestr(c->response, ACCEPT_HEADER);
    if (!upgraded) {
        if (!w->result->first_refusal[0])
            snprintf(w->result->first_refusal, sizeof w->result->first_refusal, "%.*s", (int)strcspn(c->response, "\r\n"),
                     c->response);
        fail(w, c, FAIL_HANDSHAKE);
        return -1;
    }
    free(c->response);
    c->response = NULL;
    size_t consumed_before = c->response_length - take; /* bytes of earlier reads */
    size_t rest_offset = head_length - consumed_before;
    w->in_flight--;
    w->open_count++;
    c->state = CONN_OPEN;
    histogram_record(&w->result->connect_us, (uint64_t)((now - c->started_ns) / 1000));
    atomic_fetch_add_explicit(&w->result->opened, 1, memory_order_relaxed);
    w->opt->mode->on_open(w, c);
    if (c->state != CONN_OPEN && c->state != CONN_CLOSING)
        return -1;
    return feed_frames(w, c, data + rest_offset, length - rest_offset, now);
}

static void on_connected(struct worker *w, struct conn *c) {
    int error = 0;
    socklen_t size = sizeof error;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
    if (error) {
        fail(w, c, FAIL_CONNECT);
        return;
    }
    c->state = CONN_HANDSHAKE;
    watch(w, c, EPOLLIN | EPOLLRDHUP);
    if (write_or_queue(w, c, (const uint8_t *)w->request, w->request_length) != 0)
        fail(w, c, FAIL_CLOSED);
}

void conn_event(struct worker *w, struct conn *c, uint32_t events, uint8_t *buffer, size_t capacity) {
    if (c->state == CONN_FREE)
        return; /* released earlier in the same batch of events */
    if (c->state == CONN_CONNECTING) {
        on_connected(w, c);
        return;
    }
    if ((events & EPOLLOUT) && c->outbox_length > 0 && flush_outbox(w, c) != 0) {
        ended_by_server(w, c);
        return;
    }
    if (!(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        return;
    ssize_t got = read(c->fd, buffer, capacity);
    if (got < 0 && errno == EAGAIN)
        return;
    if (got <= 0) {
        ended_by_server(w, c);
        return;
    }
    int64_t now = now_ns();
    if (c->state == CONN_HANDSHAKE)
        feed_handshake(w, c, buffer, (size_t)got, now);
    else
        feed_frames(w, c, buffer, (size_t)got, now);
}

void conn_check_timeout(struct worker *w, struct conn *c, int64_t now) {
    if ((c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE) &&
        now - c->started_ns > (int64_t)(w->opt->timeout_s * 1e9))
        fail(w, c, FAIL_TIMEOUT);
}
