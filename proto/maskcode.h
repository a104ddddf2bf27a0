/*
 * proto/maskcode.h — mask encoding 2 (PEMN_MASK_RANS): bit-packed masks entropy-coded with
 * a static order-0 rANS coder over the mask's bytes (docs/FORMAT.md, "Mask encoding 2").
 *
 * A mask byte's probability depends only on its number of set bits (its popcount class
 * c = 0..8): the model is 9 per-symbol frequencies, so the table costs 18 bytes and the
 * code length is at most that of the best i.i.d. bit model, N * H(k), plus the rounding
 * of the frequencies to 15 bits. Four interleaved rANS states (byte i uses state i mod 4),
 * each with its own byte stream, decode independently for speed.
 *
 * Block layout (all little-endian):
 *   0   u16[9]  f[c]: frequency of EACH symbol of popcount c (sum over the 256 symbols =
 *               sum_c C(8,c) * f[c] = 32768)
 *   18  u16     reserved, 0
 *   20  u32[4]  n[j]: byte length of stream j (>= 4)
 *   36  ...     streams 0..3, back to back; the block is exactly 36 + sum n[j] bytes
 * Stream j begins with state j (u32, in [2^23, 2^31)) followed by its renormalisation bytes
 * in reading order; after the last symbol every state equals 2^23 and every stream is
 * consumed exactly (anything else is PEMN_ECORRUPT).
 */
#ifndef PEMN_PROTO_MASKCODE_H
#define PEMN_PROTO_MASKCODE_H

#include <pemn/common.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MASKCODE_HDR 36u
/* A coded mask may decode to at most this many times its own length (plus a free
 * allowance), so a small hostile file cannot demand a huge buffer: reader and builder
 * both enforce it. */
#define PROTO_MASKCODE_MAX_RATIO 64u
#define PROTO_MASKCODE_FREE_BYTES 4096u

/* 1 when a block of `coded` bytes may decode to `nbytes` mask bytes: nbytes <= 4096 or
 * nbytes <= 64 * coded. */
static inline int proto_maskcode_ratio_ok(uint64_t nbytes, uint64_t coded)
{
    /* nbytes <= RATIO * coded, without overflow */
    return nbytes <= PROTO_MASKCODE_FREE_BYTES ||
           coded >= nbytes / PROTO_MASKCODE_MAX_RATIO + (nbytes % PROTO_MASKCODE_MAX_RATIO != 0);
}

/* Encodes nbytes mask bytes. *out (malloc'ed) receives the block and *out_len its length.
 * Returns PEMN_OK, or PEMN_ENOMEM. When `limit` is not 0 and the block would be at least
 * `limit` bytes, stops early and returns PEMN_ETOOBIG (the caller keeps encoding 1). */
pemn_rc proto_maskcode_encode(const uint8_t *bits, uint64_t nbytes, uint64_t limit, uint8_t **out,
                              uint64_t *out_len, struct pemn_err *err);

/* Decodes a block into exactly nbytes mask bytes. PEMN_ECORRUPT (err->offset relative to
 * the block) for any inconsistency: frequency sum, reserved field, stream lengths, a state
 * out of range, a stream that runs out or is not consumed exactly, a final state that is
 * not the initial one. Never reads outside [in, in + in_len) nor writes outside bits. */
pemn_rc proto_maskcode_decode(const uint8_t *in, uint64_t in_len, uint8_t *bits, uint64_t nbytes,
                              struct pemn_err *err);

#endif
