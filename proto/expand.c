/*
 * proto/expand.c — expansion kernel dispatch and the portable reference.
 * (Placeholder dispatch: portable only until the SIMD kernel lands.)
 */
#include "proto/expand.h"

void proto_expand_f32_scalar(float *out, const uint8_t *bits, uint64_t n, const float *proto,
                             uint64_t d_v, uint64_t offset, float scale)
{
    uint64_t j = offset;
    for (uint64_t i = 0; i < n; i++) {
        out[i] = ((bits[i >> 3] >> (i & 7)) & 1) ? scale * proto[j] : 0.0f;
        if (++j == d_v)
            j = 0;
    }
}

void proto_expand_f32(float *out, const uint8_t *bits, uint64_t n, const float *proto, uint64_t d_v,
                      uint64_t offset, float scale)
{
    proto_expand_f32_scalar(out, bits, n, proto, d_v, offset, scale);
}
