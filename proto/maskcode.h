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

/* ---- incremental decoding (streaming expansion, random access) -------------------------- */
/* Checkpoints every PROTO_MASKCODE_CKPT mask bytes (a multiple of the 4 states): the four
 * states and stream positions before mask byte k * PROTO_MASKCODE_CKPT, so a range of the
 * mask decodes from the checkpoint at or before it with at most PROTO_MASKCODE_CKPT bytes
 * decoded and dropped. 48 bytes per 16 KiB of mask (0.3% of the decoded mask). */
#define PROTO_MASKCODE_CKPT 16384u
struct proto_maskcode_ckpt {
    uint32_t x[4];   /* states */
    uint64_t pos[4]; /* offset in the block of each stream's next byte */
};
/* Number of checkpoints for nbytes mask bytes: one per started PROTO_MASKCODE_CKPT. */
static inline uint64_t proto_maskcode_n_ckpt(uint64_t nbytes)
{
    return nbytes / PROTO_MASKCODE_CKPT + (nbytes % PROTO_MASKCODE_CKPT != 0);
}

/* A resumable decoder: its tables (34 KiB), a scratch buffer of PROTO_MASKDEC_SCRATCH
 * bytes for the caller, and its position. Not thread-safe; one per caller. */
#define PROTO_MASKDEC_SCRATCH 4096u
struct proto_maskdec;
uint8_t *proto_maskdec_scratch(struct proto_maskdec *d);

/* Checks the block's header (frequency sum, reserved field, stream lengths, initial states,
 * total length) exactly as proto_maskcode_decode does and returns a decoder at mask byte 0
 * in *out (malloc'ed; free with proto_maskdec_free). PEMN_ECORRUPT or PEMN_ENOMEM. */
pemn_rc proto_maskdec_open(const uint8_t *in, uint64_t in_len, struct proto_maskdec **out,
                           struct pemn_err *err);
void proto_maskdec_free(struct proto_maskdec *d);
/* Moves to mask byte `at` (a multiple of PROTO_MASKCODE_CKPT) from checkpoint c, which
 * must come from proto_maskdec_scan of the same block (not re-checked). */
void proto_maskdec_seek(struct proto_maskdec *d, const struct proto_maskcode_ckpt *c, uint64_t at);
/* Decodes the next n mask bytes into out (out may be NULL: decoded and dropped).
 * PEMN_ECORRUPT when a stream runs out. */
pemn_rc proto_maskdec_next(struct proto_maskdec *d, uint8_t *out, uint64_t n, struct pemn_err *err);
/* After the last mask byte: every stream consumed exactly and every state back to 2^23. */
pemn_rc proto_maskdec_end(struct proto_maskdec *d, struct pemn_err *err);

/* Validates a whole block of nbytes mask bytes as proto_maskcode_decode does, in bounded
 * memory (the decoder and a PROTO_MASKCODE_CKPT scratch buffer), and fills ckpt[0 ..
 * proto_maskcode_n_ckpt(nbytes)), the number of set bits (*kept) and the last mask byte
 * (*last, 0 when nbytes is 0). */
pemn_rc proto_maskcode_scan(const uint8_t *in, uint64_t in_len, uint64_t nbytes,
                            struct proto_maskcode_ckpt *ckpt, uint64_t *kept, uint8_t *last,
                            struct pemn_err *err);

/* Test hook: the largest number of bytes the incremental decoder and its scratch buffers
 * held at once since the last reset (decoders open at the same time add up). */
uint64_t proto_maskdec_peak_bytes(void);
void proto_maskdec_peak_reset(void);

#endif
