/*
 * proto/expand_avx2.c — the AVX2 expansion kernel (compiled with -mavx2; chosen at run
 * time by proto/expand.c).
 *
 * The output is walked in runs that do not cross the prototype's wrap point, so prototype
 * loads are contiguous. Stores are 32-byte aligned after a short scalar head, so the bit
 * position of each group of 8 outputs within its mask byte pair is the same for the whole
 * call. Mask bits become lanes by a broadcast, an AND against (1, 2, 4, .., 128) and a
 * compare; the lane mask selects 1.0f or 0.0f, and scale * proto (one vmulps, no FMA) is
 * multiplied by it, which gives the scalar reference's bits exactly: the weight times its
 * 0/1 mask bit, as PyTorch's weight * mask (a dropped negative weight is -0.0f).
 */
#if defined(__x86_64__) || defined(__i386__)
#include "proto/expand.h"

#include <immintrin.h>
#include <string.h>

/* 32 mask bits starting at bit i; bits i .. i+31 must exist. */
static inline uint32_t bits32(const uint8_t *bits, uint64_t i)
{
    const uint8_t *p = bits + (i >> 3);
    unsigned sh = (unsigned)(i & 7);
    uint32_t lo;
    memcpy(&lo, p, 4);
    uint64_t w = lo;
    if (sh)
        w |= (uint64_t)p[4] << 32;
    return (uint32_t)(w >> sh);
}

/* 8 mask bits starting at bit i; bits i .. i+7 must exist. */
static inline uint32_t bits8(const uint8_t *bits, uint64_t i)
{
    const uint8_t *p = bits + (i >> 3);
    unsigned sh = (unsigned)(i & 7);
    uint32_t w = p[0];
    if (sh)
        w |= (uint32_t)p[1] << 8;
    return (w >> sh) & 0xffu;
}

static inline __m256 select8(__m256i m, __m256i c, __m256 v)
{
    __m256i keep = _mm256_cmpeq_epi32(_mm256_and_si256(m, c), c);
    __m256 one_or_zero = _mm256_and_ps(_mm256_castsi256_ps(keep), _mm256_set1_ps(1.0f));
    return _mm256_mul_ps(v, one_or_zero);
}

static inline void put8(float *o, __m256 v, int stream)
{
    if (stream)
        _mm256_stream_ps(o, v);
    else
        _mm256_store_ps(o, v);
}

/* k groups of 32 outputs at out (32-byte aligned), bits from bit i, prototype from p. */
static inline __attribute__((always_inline)) void run32(float *out, const uint8_t *bits, uint64_t i,
                                                        const float *p, uint64_t k, __m256 vs,
                                                        int stream)
{
    const __m256i c0 = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i c1 = _mm256_slli_epi32(c0, 8);
    const __m256i c2 = _mm256_slli_epi32(c0, 16);
    const __m256i c3 = _mm256_slli_epi32(c0, 24);
    for (uint64_t g = 0; g < k; g++, i += 32, p += 32, out += 32) {
        __m256i m = _mm256_set1_epi32((int)bits32(bits, i));
        __m256 v0 = _mm256_mul_ps(vs, _mm256_loadu_ps(p));
        __m256 v1 = _mm256_mul_ps(vs, _mm256_loadu_ps(p + 8));
        __m256 v2 = _mm256_mul_ps(vs, _mm256_loadu_ps(p + 16));
        __m256 v3 = _mm256_mul_ps(vs, _mm256_loadu_ps(p + 24));
        put8(out, select8(m, c0, v0), stream);
        put8(out + 8, select8(m, c1, v1), stream);
        put8(out + 16, select8(m, c2, v2), stream);
        put8(out + 24, select8(m, c3, v3), stream);
    }
}

static inline void one8(float *out, const uint8_t *bits, uint64_t i, const float *p, __m256 vs,
                        int stream)
{
    const __m256i c0 = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i m = _mm256_set1_epi32((int)bits8(bits, i));
    put8(out, select8(m, c0, _mm256_mul_ps(vs, _mm256_loadu_ps(p))), stream);
}

void proto_expand_f32_avx2(float *out, const uint8_t *bits, uint64_t n, const float *proto,
                           uint64_t d_v, uint64_t offset, float scale, int stream)
{
    float rep[2 * PROTO_EXPAND_REP_MIN];
    if (d_v < PROTO_EXPAND_REP_MIN) {
        d_v = proto_expand_repeat(proto, d_v, rep);
        proto = rep;
    }
    uint64_t j = offset;
    /* scalar head up to 32-byte alignment of the output */
    uint64_t head = (uint64_t)((32 - ((uintptr_t)out & 31)) & 31) / sizeof(float);
    if (((uintptr_t)out & 3) != 0 || head > n)
        head = n;
    proto_expand_range(out, bits, 0, head, proto, d_v, &j, scale);
    uint64_t i = head;
    const __m256 vs = _mm256_set1_ps(scale);
    while (n - i >= 8) {
        uint64_t room = d_v - j, left = n - i;
        uint64_t span = room < left ? room : left;
        if (span >= 32) {
            uint64_t k = span / 32;
            if (stream)
                run32(out + i, bits, i, proto + j, k, vs, 1);
            else
                run32(out + i, bits, i, proto + j, k, vs, 0);
            i += 32 * k;
            j += 32 * k;
        } else if (span >= 8) {
            one8(out + i, bits, i, proto + j, vs, stream);
            i += 8;
            j += 8;
        } else {
            /* the group of 8 crosses the wrap point (d_v >= 8 here) */
            float tmp[8];
            for (int t = 0; t < 8; t++) {
                tmp[t] = proto[j];
                j = j + 1 == d_v ? 0 : j + 1;
            }
            one8(out + i, bits, i, tmp, vs, stream);
            i += 8;
            continue;
        }
        if (j == d_v)
            j = 0;
    }
    if (stream)
        _mm_sfence();
    proto_expand_range(out, bits, i, n, proto, d_v, &j, scale);
}
#else
typedef int proto_expand_avx2_unused; /* ISO C: a translation unit must not be empty */
#endif
