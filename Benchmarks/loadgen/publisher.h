/* The fan-out publisher: PUBLISH on Redis (hiredis; what ws4redis listens to) or HTTP POST to a
 * publisher location (Nchan). Up to `window` publishes are in flight at once. */
#ifndef LOADGEN_PUBLISHER_H
#define LOADGEN_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

struct options;
struct publisher;

struct publisher *publisher_open(const struct options *opt, int window);
/* Queues one message; sends the queue and awaits its answers once `window` are queued. 0 or -1. */
int publisher_send(struct publisher *p, const uint8_t *payload, size_t length);
/* Sends what is queued and awaits every answer. 0 or -1 (an error answer, a lost connection). */
int publisher_sync(struct publisher *p);
const char *publisher_error(const struct publisher *p);
void publisher_close(struct publisher *p);

#endif
