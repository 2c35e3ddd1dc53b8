/* deadline.c: the core's handshake_timeout for connections MHD holds (slowloris). MHD's own
   connection timeout only measures idleness, so a client that sends one header byte per second
   would keep a connection forever. A watcher thread shuts the socket down of every connection
   that has not completed its request head in time; MHD then sees the end of the stream on its own
   thread and closes the connection as usual. The watcher never close()s and never calls MHD. */
#include "host.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

/* One per TCP connection MHD holds, from MHD_CONNECTION_NOTIFY_STARTED to ..._CLOSED. MHD calls
   the CLOSED notification before it closes the descriptor, and the entry leaves the list under
   the lock then, so the watcher can never shut down a descriptor number that was reused. */
struct arrival {
    int fd;
    bool waiting;                 /* no complete request head yet: the deadline runs */
    bool handed_over;             /* upgraded and adopted by the core: never touched again */
    uint64_t deadline_ms;
    struct arrival *previous, *next;
};

static uint64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* Shuts down the overdue connections; returns the earliest deadline still running (or 0). Under the lock. */
static uint64_t shut_overdue(struct deadlines *deadlines, uint64_t now) {
    uint64_t earliest = 0;
    for (struct arrival *arrival = deadlines->arrivals; arrival != NULL; arrival = arrival->next) {
        if (!arrival->waiting)
            continue;
        if (arrival->deadline_ms <= now) {
            shutdown(arrival->fd, SHUT_RDWR);
            arrival->waiting = false;
        } else if (earliest == 0 || arrival->deadline_ms < earliest) {
            earliest = arrival->deadline_ms;
        }
    }
    return earliest;
}

static void *watch(void *context) {
    struct deadlines *deadlines = context;
    pthread_mutex_lock(&deadlines->lock);
    while (!deadlines->stopping) {
        uint64_t earliest = shut_overdue(deadlines, now_ms());
        if (earliest == 0) {
            pthread_cond_wait(&deadlines->changed, &deadlines->lock);
            continue;
        }
        struct timespec until = { .tv_sec = (time_t)(earliest / 1000u), .tv_nsec = (long)(earliest % 1000u) * 1000000L };
        pthread_cond_timedwait(&deadlines->changed, &deadlines->lock, &until);
    }
    pthread_mutex_unlock(&deadlines->lock);
    return NULL;
}

int deadlines_start(struct deadlines *deadlines, uint32_t timeout_ms) {
    *deadlines = (struct deadlines){ .timeout_ms = timeout_ms };
    if (timeout_ms == 0)
        return 0;
    pthread_condattr_t attributes;
    pthread_condattr_init(&attributes);
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
    pthread_mutex_init(&deadlines->lock, NULL);
    pthread_cond_init(&deadlines->changed, &attributes);
    pthread_condattr_destroy(&attributes);
    int status = pthread_create(&deadlines->watcher, NULL, watch, deadlines);
    if (status != 0) {
        pthread_cond_destroy(&deadlines->changed);
        pthread_mutex_destroy(&deadlines->lock);
        errno = status;
        return -1;
    }
    deadlines->running = true;
    return 0;
}

void deadlines_stop(struct deadlines *deadlines) {
    if (!deadlines->running)
        return;
    pthread_mutex_lock(&deadlines->lock);
    deadlines->stopping = true;
    pthread_cond_signal(&deadlines->changed);
    pthread_mutex_unlock(&deadlines->lock);
    pthread_join(deadlines->watcher, NULL);
    /* MHD stopped first: every connection's CLOSED notification freed its entry. */
    pthread_cond_destroy(&deadlines->changed);
    pthread_mutex_destroy(&deadlines->lock);
    deadlines->running = false;
}

struct arrival *deadline_add(struct deadlines *deadlines, int fd) {
    if (!deadlines->running)
        return NULL;
    struct arrival *arrival = calloc(1, sizeof *arrival);
    if (arrival == NULL)
        return NULL; /* only MHD's idle timeout for this one */
    arrival->fd = fd;
    arrival->waiting = true;
    arrival->deadline_ms = now_ms() + deadlines->timeout_ms;
    pthread_mutex_lock(&deadlines->lock);
    arrival->next = deadlines->arrivals;
    if (deadlines->arrivals != NULL)
        deadlines->arrivals->previous = arrival;
    deadlines->arrivals = arrival;
    pthread_cond_signal(&deadlines->changed);
    pthread_mutex_unlock(&deadlines->lock);
    return arrival;
}

void deadline_remove(struct deadlines *deadlines, struct arrival *arrival) {
    if (arrival == NULL)
        return;
    pthread_mutex_lock(&deadlines->lock);
    if (arrival->previous != NULL)
        arrival->previous->next = arrival->next;
    else
        deadlines->arrivals = arrival->next;
    if (arrival->next != NULL)
        arrival->next->previous = arrival->previous;
    pthread_mutex_unlock(&deadlines->lock);
    free(arrival);
}

void deadline_met(struct deadlines *deadlines, struct arrival *arrival) {
    if (arrival == NULL)
        return;
    pthread_mutex_lock(&deadlines->lock);
    arrival->waiting = false;
    pthread_mutex_unlock(&deadlines->lock);
}

void deadline_restart(struct deadlines *deadlines, struct arrival *arrival) {
    if (arrival == NULL)
        return;
    pthread_mutex_lock(&deadlines->lock);
    if (!arrival->handed_over) {
        arrival->waiting = true;
        arrival->deadline_ms = now_ms() + deadlines->timeout_ms;
        pthread_cond_signal(&deadlines->changed);
    }
    pthread_mutex_unlock(&deadlines->lock);
}

void deadline_hand_over(struct deadlines *deadlines, struct arrival *arrival) {
    if (arrival == NULL)
        return;
    pthread_mutex_lock(&deadlines->lock);
    arrival->waiting = false;
    arrival->handed_over = true;
    pthread_mutex_unlock(&deadlines->lock);
}
