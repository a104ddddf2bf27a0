/*
 * proto/expand.c — expansion kernel dispatch, the scalar reference and the portable
 * kernel. The AVX2 kernel is in expand_avx2.c (compiled with -mavx2).
 */
#include "proto/expand.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void proto_expand_f32_scalar(float *out, const uint8_t *bits, uint64_t n, const float *proto,
                             uint64_t d_v, uint64_t offset, float scale)
{
    uint64_t j = offset;
    for (uint64_t i = 0; i < n; i++) {
        out[i] = (scale * proto[j]) * (float)((bits[i >> 3] >> (i & 7)) & 1);
        if (++j == d_v)
            j = 0;
    }
}

/* Lane masks for each mask byte: lane_mask[b][k] = all ones when bit k of b is set. Table
 * lookups instead of per-lane shifts let the compiler turn a group of 8 into plain vector
 * loads, multiplies and ANDs on any target. */
#define LM1(b)                                                                                     \
    {                                                                                              \
        0u - ((b)&1u), 0u - (((b) >> 1) & 1u), 0u - (((b) >> 2) & 1u), 0u - (((b) >> 3) & 1u),     \
            0u - (((b) >> 4) & 1u), 0u - (((b) >> 5) & 1u), 0u - (((b) >> 6) & 1u),                \
            0u - (((b) >> 7) & 1u)                                                                 \
    }
#define LM4(b) LM1(b), LM1((b) + 1u), LM1((b) + 2u), LM1((b) + 3u)
#define LM16(b) LM4(b), LM4((b) + 4u), LM4((b) + 8u), LM4((b) + 12u)
#define LM64(b) LM16(b), LM16((b) + 16u), LM16((b) + 32u), LM16((b) + 48u)
static const uint32_t lane_mask[256][8] = {LM64(0u), LM64(64u), LM64(128u), LM64(192u)};

/* A byte-aligned group of 8 within one run. */
static inline void expand_run8(float *restrict out, const uint32_t *restrict mk,
                               const float *restrict p, float scale)
{
    for (int k = 0; k < 8; k++) {
        /* 0x3f800000 is 1.0f: the lane mask selects 1.0f or 0.0f */
        uint32_t ub = mk[k] & 0x3f800000u;
        float b;
        memcpy(&b, &ub, sizeof b);
        out[k] = (scale * p[k]) * b;
    }
}

void proto_expand_f32_portable(float *out, const uint8_t *bits, uint64_t n, const float *proto,
                               uint64_t d_v, uint64_t offset, float scale)
{
    float rep[2 * PROTO_EXPAND_REP_MIN];
    if (d_v < PROTO_EXPAND_REP_MIN) {
        d_v = proto_expand_repeat(proto, d_v, rep);
        proto = rep;
    }
    uint64_t i = 0, j = offset;
    while (i < n) {
        uint64_t run = d_v - j;
        if (run > n - i)
            run = n - i;
        uint64_t end = i + run;
        /* up to the next mask byte boundary, then whole bytes, then the rest */
        uint64_t head = (8 - (i & 7)) & 7;
        if (head > run)
            head = run;
        proto_expand_range(out, bits, i, i + head, proto, d_v, &j, scale);
        i += head;
        for (; i + 8 <= end; i += 8, j += 8)
            expand_run8(out + i, lane_mask[bits[i >> 3]], proto + j, scale);
        j = j == d_v ? 0 : j;
        proto_expand_range(out, bits, i, end, proto, d_v, &j, scale);
        i = end;
    }
}

/* ---- dispatch ------------------------------------------------------------------------- */
typedef void (*expand_fn)(float *, const uint8_t *, uint64_t, const float *, uint64_t, uint64_t,
                          float);

static pthread_once_t pick_once = PTHREAD_ONCE_INIT;
static int use_avx2;
static int have_avx2;
static uint64_t stream_bytes;

static void pick(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
    const char *e = getenv("PEMN_SIMD");
    int off = e && (strcmp(e, "off") == 0 || strcmp(e, "0") == 0 || strcmp(e, "none") == 0 ||
                    strcmp(e, "portable") == 0);
    use_avx2 = have_avx2 && !off;
    /* Stream when the output would not fit in the last-level cache next to its inputs
     * (3/4 of it, as glibc's memcpy decides for large copies): below that, cached stores
     * are faster; above, streaming saves the read-for-ownership of every output line. */
    long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (llc <= 0)
        llc = sysconf(_SC_LEVEL2_CACHE_SIZE);
    uint64_t t = llc > 0 ? (uint64_t)llc / 4 * 3 : (uint64_t)8 << 20;
    if (t < ((uint64_t)4 << 20))
        t = (uint64_t)4 << 20;
    if (t > ((uint64_t)256 << 20))
        t = (uint64_t)256 << 20;
    stream_bytes = t;
}

int proto_expand_have_avx2(void)
{
    pthread_once(&pick_once, pick);
    return have_avx2;
}

const char *proto_expand_kernel(void)
{
    pthread_once(&pick_once, pick);
    return use_avx2 ? "avx2" : "portable";
}

uint64_t proto_expand_stream_bytes(void)
{
    pthread_once(&pick_once, pick);
    return stream_bytes;
}

#if !defined(__x86_64__) && !defined(__i386__)
void proto_expand_f32_avx2(float *out, const uint8_t *bits, uint64_t n, const float *proto,
                           uint64_t d_v, uint64_t offset, float scale, int stream)
{
    (void)stream;
    proto_expand_f32_portable(out, bits, n, proto, d_v, offset, scale);
}
#endif

void proto_expand_f32(float *out, const uint8_t *bits, uint64_t n, const float *proto, uint64_t d_v,
                      uint64_t offset, float scale)
{
    pthread_once(&pick_once, pick);
    if (use_avx2)
        proto_expand_f32_avx2(out, bits, n, proto, d_v, offset, scale,
                              n >= stream_bytes / sizeof(float));
    else
        proto_expand_f32_portable(out, bits, n, proto, d_v, offset, scale);
}
