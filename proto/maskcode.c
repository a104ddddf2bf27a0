/*
 * proto/maskcode.c — mask encoding 2: static order-0 rANS over mask bytes with a popcount
 * class model (layout in proto/maskcode.h and docs/FORMAT.md).
 *
 * rANS with 32-bit states and byte-wise renormalisation: state x lives in [L, 256 L) with
 * L = 2^23; symbol s with frequency f and cumulative frequency b (scale M = 2^15) is
 * encoded as x' = (x / f) * M + x % f + b after shifting out low bytes while
 * x >= 2^16 * f, and decoded as slot = x % M, s = sym[slot], x = f * (x / M) + slot - b,
 * then shifting in bytes while x < L.
 */
#include "proto/maskcode.h"

#include "proto/err.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define RANS_L (1u << 23)
#define SCALE_BITS 15u
#define M_TOT (1u << SCALE_BITS)
#define NSTATES 4u

static const uint32_t class_size[9] = {1, 8, 28, 56, 70, 56, 28, 8, 1};

static uint8_t popcnt8(unsigned v)
{
    return (uint8_t)__builtin_popcount(v & 0xffu);
}

/* Symbol frequencies and cumulative frequencies from the 9 class frequencies. */
static void expand_freqs(const uint16_t f[9], uint32_t freq[256], uint32_t cum[257])
{
    cum[0] = 0;
    for (unsigned s = 0; s < 256; s++) {
        freq[s] = f[popcnt8(s)];
        cum[s + 1] = cum[s] + freq[s];
    }
}

/* log2 approximation good enough to rank frequency adjustments. */
static double lg(double v)
{
    return __builtin_log2(v);
}

/* Quantises class counts to per-symbol frequencies with sum_c C(8,c) f[c] = M_TOT, every
 * present class getting at least 1, greedily minimising the code length. */
static void quantise(const uint64_t n[9], uint64_t total, uint16_t f[9])
{
    int64_t sum = 0;
    for (int c = 0; c < 9; c++) {
        f[c] = 0;
        if (n[c]) {
            double ideal = (double)M_TOT * (double)n[c] / ((double)total * class_size[c]);
            uint64_t q = (uint64_t)(ideal + 0.5);
            f[c] = (uint16_t)(q < 1 ? 1 : q > M_TOT ? M_TOT : q);
        }
        sum += (int64_t)class_size[c] * f[c];
    }
    /* each step moves sum towards M_TOT by at least 1: at most M_TOT * 256 steps */
    while (sum != (int64_t)M_TOT) {
        int best = -1;
        double best_v = 0;
        if (sum > (int64_t)M_TOT) {
            for (int c = 0; c < 9; c++) {
                if (f[c] <= (n[c] ? 1u : 0u))
                    continue;
                double loss = n[c] ? (double)n[c] * lg((double)f[c] / (f[c] - 1)) : 0;
                double v = loss / class_size[c];
                if (best < 0 || v < best_v)
                    best = c, best_v = v;
            }
            f[best]--;
            sum -= class_size[best];
        } else {
            for (int c = 0; c < 9; c++) {
                if ((int64_t)class_size[c] > (int64_t)M_TOT - sum)
                    continue;
                double gain = n[c] && f[c] ? (double)n[c] * lg((double)(f[c] + 1) / f[c]) : 0;
                double v = gain / class_size[c];
                if (best < 0 || v > best_v)
                    best = c, best_v = v;
            }
            f[best]++;
            sum += class_size[best];
        }
    }
}

pemn_rc proto_maskcode_encode(const uint8_t *bits, uint64_t nbytes, uint64_t limit, uint8_t **out,
                              uint64_t *out_len, struct pemn_err *err)
{
    *out = NULL;
    *out_len = 0;
    uint64_t n[9] = {0};
    for (uint64_t i = 0; i < nbytes; i++)
        n[popcnt8(bits[i])]++;
    uint16_t f[9];
    quantise(n, nbytes ? nbytes : 1, f);
    uint32_t freq[256], cum[257];
    expand_freqs(f, freq, cum);

    /* per stream: at most 2 bytes per symbol + the 4-byte state, written backwards */
    uint64_t per = nbytes / NSTATES + 1, cap = 2 * per + 4;
    if (cap > (SIZE_MAX - 64) / NSTATES)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "mask too large to encode");
    uint8_t *buf = malloc((size_t)(cap * NSTATES));
    if (!buf)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    uint8_t *ptr[NSTATES], *end[NSTATES];
    uint32_t x[NSTATES];
    for (unsigned j = 0; j < NSTATES; j++) {
        end[j] = ptr[j] = buf + cap * (j + 1);
        x[j] = RANS_L;
    }
    uint64_t emitted = PROTO_MASKCODE_HDR + 4 * NSTATES;
    for (uint64_t k = nbytes; k-- > 0;) {
        unsigned j = (unsigned)(k & (NSTATES - 1));
        uint8_t s = bits[k];
        uint32_t fs = freq[s], xs = x[j];
        uint32_t xmax = ((RANS_L >> SCALE_BITS) << 8) * fs;
        while (xs >= xmax) {
            *--ptr[j] = (uint8_t)xs;
            xs >>= 8;
            emitted++;
        }
        x[j] = ((xs / fs) << SCALE_BITS) + (xs % fs) + cum[s];
        if (limit && emitted >= limit) {
            free(buf);
            return PEMN_ETOOBIG;
        }
    }
    if (limit && emitted >= limit) {
        free(buf);
        return PEMN_ETOOBIG;
    }
    for (unsigned j = 0; j < NSTATES; j++) {
        ptr[j] -= 4;
        proto_put32(ptr[j], x[j]);
    }
    uint8_t *o = malloc((size_t)emitted);
    if (!o) {
        free(buf);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    for (int c = 0; c < 9; c++)
        proto_put16(o + 2 * c, f[c]);
    proto_put16(o + 18, 0);
    uint64_t pos = PROTO_MASKCODE_HDR;
    for (unsigned j = 0; j < NSTATES; j++) {
        uint64_t len = (uint64_t)(end[j] - ptr[j]);
        proto_put32(o + 20 + 4 * j, (uint32_t)len);
        memcpy(o + pos, ptr[j], (size_t)len);
        pos += len;
    }
    free(buf);
    *out = o;
    *out_len = pos;
    return PEMN_OK;
}

#define BAD(off, ...) proto_err(err, PEMN_ECORRUPT, (off), __VA_ARGS__)

struct proto_maskdec {
    const uint8_t *in;
    uint64_t in_len;
    const uint8_t *p[NSTATES], *e[NSTATES];
    uint32_t x[NSTATES];
    uint64_t i; /* next mask byte */
    uint32_t freq[256], cum[257];
    uint8_t sym[M_TOT];
    uint8_t scratch[PROTO_MASKDEC_SCRATCH];
};

static _Atomic uint64_t dec_live, dec_peak;

uint64_t proto_maskdec_peak_bytes(void)
{
    return atomic_load(&dec_peak);
}

void proto_maskdec_peak_reset(void)
{
    atomic_store(&dec_peak, atomic_load(&dec_live));
}

uint8_t *proto_maskdec_scratch(struct proto_maskdec *d)
{
    return d->scratch;
}

void proto_maskdec_free(struct proto_maskdec *d)
{
    if (!d)
        return;
    atomic_fetch_sub(&dec_live, sizeof *d);
    free(d);
}

pemn_rc proto_maskdec_open(const uint8_t *in, uint64_t in_len, struct proto_maskdec **out,
                           struct pemn_err *err)
{
    *out = NULL;
    if (in_len < PROTO_MASKCODE_HDR)
        return BAD(0, "coded mask: %llu bytes, shorter than its %u-byte header",
                   (unsigned long long)in_len, PROTO_MASKCODE_HDR);
    uint16_t f[9];
    uint64_t sum = 0;
    for (int c = 0; c < 9; c++) {
        f[c] = proto_le16(in + 2 * c);
        sum += (uint64_t)class_size[c] * f[c];
    }
    if (sum != M_TOT)
        return BAD(0, "coded mask: frequencies sum to %llu, not %u", (unsigned long long)sum,
                   M_TOT);
    if (proto_le16(in + 18) != 0)
        return BAD(18, "coded mask: reserved field not 0");
    const uint8_t *p[NSTATES], *e[NSTATES];
    uint32_t x[NSTATES];
    uint64_t pos = PROTO_MASKCODE_HDR;
    for (unsigned j = 0; j < NSTATES; j++) {
        uint64_t len = proto_le32(in + 20 + 4 * j);
        if (len < 4 || len > in_len - pos)
            return BAD(20 + 4 * j, "coded mask: stream %u length %llu does not fit", j,
                       (unsigned long long)len);
        p[j] = in + pos;
        e[j] = in + pos + len;
        x[j] = proto_le32(p[j]);
        if (x[j] < RANS_L || x[j] >= (RANS_L << 8))
            return BAD(pos, "coded mask: initial state %u out of range", j);
        p[j] += 4;
        pos += len;
    }
    if (pos != in_len)
        return BAD(pos, "coded mask: %llu bytes after the last stream",
                   (unsigned long long)(in_len - pos));
    struct proto_maskdec *d = malloc(sizeof *d);
    if (!d)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    uint64_t live = atomic_fetch_add(&dec_live, sizeof *d) + sizeof *d;
    for (uint64_t pk = atomic_load(&dec_peak);
         live > pk && !atomic_compare_exchange_weak(&dec_peak, &pk, live);)
        ;
    d->in = in;
    d->in_len = in_len;
    d->i = 0;
    for (unsigned j = 0; j < NSTATES; j++)
        d->p[j] = p[j], d->e[j] = e[j], d->x[j] = x[j];
    expand_freqs(f, d->freq, d->cum);
    for (unsigned s = 0; s < 256; s++)
        if (d->freq[s])
            memset(d->sym + d->cum[s], (int)s, d->freq[s]);
    *out = d;
    return PEMN_OK;
}

void proto_maskdec_seek(struct proto_maskdec *d, const struct proto_maskcode_ckpt *c, uint64_t at)
{
    for (unsigned j = 0; j < NSTATES; j++) {
        d->x[j] = c->x[j];
        d->p[j] = d->in + c->pos[j];
    }
    d->i = at;
}

pemn_rc proto_maskdec_next(struct proto_maskdec *d, uint8_t *out, uint64_t n, struct pemn_err *err)
{
    const uint8_t *p[NSTATES], *e[NSTATES];
    uint32_t x[NSTATES];
    for (unsigned j = 0; j < NSTATES; j++)
        p[j] = d->p[j], e[j] = d->e[j], x[j] = d->x[j];
    const uint32_t *freq = d->freq, *cum = d->cum;
    const uint8_t *sym = d->sym;
    uint8_t drop[NSTATES];
    int bad = -1;
#define STEP(j, dst)                                                                               \
    do {                                                                                           \
        uint32_t slot_ = x[j] & (M_TOT - 1);                                                       \
        uint8_t s_ = sym[slot_];                                                                   \
        (dst) = s_;                                                                                \
        x[j] = freq[s_] * (x[j] >> SCALE_BITS) + slot_ - cum[s_];                                  \
        while (x[j] < RANS_L) {                                                                    \
            if (p[j] == e[j]) {                                                                    \
                bad = (int)(j);                                                                    \
                goto out;                                                                          \
            }                                                                                      \
            x[j] = (x[j] << 8) | *p[j]++;                                                          \
        }                                                                                          \
    } while (0)
    uint64_t i = 0;
    unsigned j0 = (unsigned)(d->i & (NSTATES - 1));
    /* to a multiple of 4 (only when a caller stops mid-group) */
    for (; i < n && ((j0 + i) & (NSTATES - 1)) != 0; i++) {
        unsigned j = (unsigned)((j0 + i) & (NSTATES - 1));
        STEP(j, drop[0]);
        if (out)
            out[i] = drop[0];
    }
    if (out) {
        for (; i + NSTATES <= n; i += NSTATES) {
            STEP(0, out[i]);
            STEP(1, out[i + 1]);
            STEP(2, out[i + 2]);
            STEP(3, out[i + 3]);
        }
    } else {
        for (; i + NSTATES <= n; i += NSTATES) {
            STEP(0, drop[0]);
            STEP(1, drop[1]);
            STEP(2, drop[2]);
            STEP(3, drop[3]);
        }
    }
    for (unsigned j = 0; i < n; i++, j++) {
        STEP(j, drop[0]);
        if (out)
            out[i] = drop[0];
    }
#undef STEP
out:
    for (unsigned j = 0; j < NSTATES; j++)
        d->p[j] = p[j], d->x[j] = x[j];
    d->i += i;
    if (bad >= 0)
        return BAD((uint64_t)(e[bad] - d->in), "coded mask: stream %d runs out", bad);
    return PEMN_OK;
}

pemn_rc proto_maskdec_end(struct proto_maskdec *d, struct pemn_err *err)
{
    for (unsigned j = 0; j < NSTATES; j++) {
        if (d->p[j] != d->e[j])
            return BAD((uint64_t)(d->p[j] - d->in), "coded mask: stream %u has %llu unused bytes",
                       j, (unsigned long long)(d->e[j] - d->p[j]));
        if (d->x[j] != RANS_L)
            return BAD(20 + 4 * j, "coded mask: stream %u ends in the wrong state", j);
    }
    return PEMN_OK;
}

pemn_rc proto_maskcode_decode(const uint8_t *in, uint64_t in_len, uint8_t *bits, uint64_t nbytes,
                              struct pemn_err *err)
{
    struct proto_maskdec *d;
    pemn_rc rc = proto_maskdec_open(in, in_len, &d, err);
    if (rc)
        return rc;
    rc = proto_maskdec_next(d, bits, nbytes, err);
    if (!rc)
        rc = proto_maskdec_end(d, err);
    proto_maskdec_free(d);
    return rc;
}

pemn_rc proto_maskcode_scan(const uint8_t *in, uint64_t in_len, uint64_t nbytes,
                            struct proto_maskcode_ckpt *ckpt, uint64_t *kept, uint8_t *last,
                            struct pemn_err *err)
{
    *kept = 0;
    *last = 0;
    struct proto_maskdec *d;
    pemn_rc rc = proto_maskdec_open(in, in_len, &d, err);
    if (rc)
        return rc;
    uint64_t k = 0;
    for (uint64_t at = 0; at < nbytes && !rc;) {
        if (at % PROTO_MASKCODE_CKPT == 0) {
            struct proto_maskcode_ckpt *c = &ckpt[at / PROTO_MASKCODE_CKPT];
            for (unsigned j = 0; j < NSTATES; j++) {
                c->x[j] = d->x[j];
                c->pos[j] = (uint64_t)(d->p[j] - in);
            }
        }
        uint64_t n = nbytes - at < PROTO_MASKDEC_SCRATCH ? nbytes - at : PROTO_MASKDEC_SCRATCH;
        rc = proto_maskdec_next(d, d->scratch, n, err);
        if (!rc) {
            uint64_t w = 0;
            size_t q = 0;
            for (; q + 8 <= n; q += 8) {
                uint64_t v;
                memcpy(&v, d->scratch + q, 8);
                w += (uint64_t)__builtin_popcountll(v);
            }
            for (; q < n; q++)
                w += popcnt8(d->scratch[q]);
            k += w;
            *last = d->scratch[n - 1];
        }
        at += n;
    }
    if (!rc)
        rc = proto_maskdec_end(d, err);
    proto_maskdec_free(d);
    if (!rc)
        *kept = k;
    return rc;
}
