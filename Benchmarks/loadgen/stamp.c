#include "loadgen.h"

#include <stdio.h>
#include <string.h>

static const char HEX[] = "0123456789abcdef";

static void put_hex(uint8_t *out, uint64_t value) {
    for (int i = 15; i >= 0; i--, value >>= 4)
        out[i] = (uint8_t)HEX[value & 15];
}

static bool get_hex(const uint8_t *in, uint64_t *value) {
    uint64_t result = 0;
    for (int i = 0; i < 16; i++) {
        uint8_t ch = in[i];
        uint8_t digit = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : 255;
        if (digit == 255)
            return false;
        result = result << 4 | digit;
    }
    *value = result;
    return true;
}

/* Fills payload[0..size): the stamp, then 'x' (text, so every server sends it as a text frame). */
void stamp_write(uint8_t *payload, size_t size, uint64_t seq, int64_t sent_ns) {
    put_hex(payload, seq);
    put_hex(payload + 16, (uint64_t)sent_ns);
    if (size > STAMP_BYTES)
        memset(payload + STAMP_BYTES, 'x', size - STAMP_BYTES);
}

bool stamp_read(const uint8_t *stamp, size_t length, uint64_t *seq, int64_t *sent_ns) {
    uint64_t sent;
    if (length < STAMP_BYTES || !get_hex(stamp, seq) || !get_hex(stamp + 16, &sent))
        return false;
    *sent_ns = (int64_t)sent;
    return true;
}

bool stamp_is_probe(const uint8_t *stamp, size_t length) {
    return length > 0 && stamp[0] == 'p';
}
