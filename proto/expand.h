/*
 * proto/expand.h — the expansion kernel (internal).
 *
 * out[i] = bit(bits, i) ? scale * proto[(offset + i) mod d_v] : 0.0f   for i in [0, n)
 * with bit(b, i) = (b[i >> 3] >> (i & 7)) & 1 (LSB-first), one binary32 multiply per
 * element. Preconditions (checked by callers): d_v >= 1, offset < d_v, buffers valid.
 * The implementation is chosen once at run time (AVX2 when the CPU has it, else portable).
 */
#ifndef PEMN_PROTO_EXPAND_H
#define PEMN_PROTO_EXPAND_H

#include <stdint.h>

void proto_expand_f32(float *out, const uint8_t *bits, uint64_t n, const float *proto, uint64_t d_v,
                      uint64_t offset, float scale);
/* The portable reference, always available (tests compare against it). */
void proto_expand_f32_scalar(float *out, const uint8_t *bits, uint64_t n, const float *proto,
                             uint64_t d_v, uint64_t offset, float scale);

#endif
