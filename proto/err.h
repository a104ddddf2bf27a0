/*
 * proto/err.h — internal helpers for filling struct pemn_err and for checked arithmetic.
 * Used by every module (proto_, store_, srv_, cli_, train_).
 */
#ifndef PEMN_PROTO_ERR_H
#define PEMN_PROTO_ERR_H

#include <pemn/common.h>
#include <stdbool.h>

/* Fills err (when not NULL) with rc, offset and a printf-style message; returns rc so
 * callers can write `return proto_err(err, PEMN_ECORRUPT, off, "bad count %u", n);`. */
pemn_rc proto_err(struct pemn_err *err, pemn_rc rc, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Overflow-checked arithmetic: return true on overflow. */
static inline bool proto_mul_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}
static inline bool proto_add_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_add_overflow(a, b, out);
}

/* Little-endian loads/stores from possibly unaligned memory. */
static inline uint16_t proto_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t proto_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t proto_le64(const uint8_t *p)
{
    return (uint64_t)proto_le32(p) | ((uint64_t)proto_le32(p + 4) << 32);
}
static inline void proto_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void proto_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void proto_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void proto_hex(const uint8_t *in, size_t n, char *out);
/* Parses exactly 2n hex digits. Returns 0 or -1. */
int proto_unhex(const char *in, size_t n_hex, uint8_t *out);

#endif
