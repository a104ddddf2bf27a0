/*
 * proto/expand.h — the expansion kernel (internal).
 *
 * out[i] = (scale * proto[(offset + i) mod d_v]) * (float)bit(bits, i)   for i in [0, n)
 * with bit(b, i) = (b[i >> 3] >> (i & 7)) & 1 (LSB-first): two binary32 multiplies, the
 * weight times its 0/1 mask exactly as PyTorch's `weight * mask` computes it (so a dropped
 * negative weight is -0.0f). Preconditions (checked by callers): d_v >= 1, offset < d_v,
 * buffers valid, out float-aligned and not overlapping the inputs. Every kernel gives
 * bit-identical results.
 *
 * The implementation is chosen once, thread-safely, on first use: AVX2 when the CPU (and
 * OS) support it, else the portable branch-free kernel. The environment variable
 * PEMN_SIMD=off (also "0", "none", "portable") forces the portable kernel; it is read once.
 * Outputs of at least proto_expand_stream_bytes() bytes are written with non-temporal
 * stores by the AVX2 kernel (they would only evict the cache).
 */
#ifndef PEMN_PROTO_EXPAND_H
#define PEMN_PROTO_EXPAND_H

#include <stddef.h>
#include <stdint.h>

void proto_expand_f32(float *out, const uint8_t *bits, uint64_t n, const float *proto, uint64_t d_v,
                      uint64_t offset, float scale);
/* The portable reference, always available (tests compare against it). */
void proto_expand_f32_scalar(float *out, const uint8_t *bits, uint64_t n, const float *proto,
                             uint64_t d_v, uint64_t offset, float scale);
/* The portable fallback: branch-free, walks the output in runs that do not wrap. */
void proto_expand_f32_portable(float *out, const uint8_t *bits, uint64_t n, const float *proto,
                               uint64_t d_v, uint64_t offset, float scale);
/* The AVX2 kernel; call only when proto_expand_have_avx2(). stream != 0 selects
 * non-temporal stores (followed by a store fence). */
void proto_expand_f32_avx2(float *out, const uint8_t *bits, uint64_t n, const float *proto,
                           uint64_t d_v, uint64_t offset, float scale, int stream);
int proto_expand_have_avx2(void);

/* Name of the kernel proto_expand_f32 uses: "avx2" or "portable". */
const char *proto_expand_kernel(void);
/* Output size (bytes) from which the AVX2 kernel streams its stores. */
uint64_t proto_expand_stream_bytes(void);

/* ---- shared by the kernels -------------------------------------------------------------- */
/* Prototypes shorter than PROTO_EXPAND_REP_MIN are first repeated into a local buffer of
 * length L = d_v * ceil(PROTO_EXPAND_REP_MIN / d_v) (< 2 * PROTO_EXPAND_REP_MIN): since d_v
 * divides L, (offset + i) mod L mod d_v = (offset + i) mod d_v, and runs stay long. */
#define PROTO_EXPAND_REP_MIN 256u
static inline uint64_t proto_expand_repeat(const float *proto, uint64_t d_v,
                                           float rep[2 * PROTO_EXPAND_REP_MIN])
{
    uint64_t len = d_v * ((PROTO_EXPAND_REP_MIN + d_v - 1) / d_v);
    for (uint64_t k = 0; k < len; k++)
        rep[k] = proto[k % d_v];
    return len;
}

/* Branch-free expansion of out[i0 .. i1) with prototype index *j at i0; updates *j. */
static inline void proto_expand_range(float *out, const uint8_t *bits, uint64_t i0, uint64_t i1,
                                      const float *proto, uint64_t d_v, uint64_t *j, float scale)
{
    uint64_t jj = *j;
    for (uint64_t i = i0; i < i1; i++) {
        out[i] = (scale * proto[jj]) * (float)((bits[i >> 3] >> (i & 7)) & 1u);
        jj++;
        jj = jj == d_v ? 0 : jj;
    }
    *j = jj;
}

#endif
