/*
 * pemn/gen.h — seeded prototype generators.
 *
 * A seeded prototype is (generator id, 32-byte seed, float scale, length n). Its values are
 * defined bit for bit so that any implementation reproduces them:
 *
 *   Keystream: ChaCha20 as in libsodium's crypto_stream_chacha20 (the original 64-bit-nonce
 *   variant, 20 rounds, 64-bit block counter starting at 0), key = seed, nonce = 8 zero
 *   bytes. w[j] = the j-th little-endian uint32 of the keystream (bytes 4j .. 4j+3).
 *   All float arithmetic is IEEE-754 binary32/binary64 with round-to-nearest-even.
 *
 *   PEMN_GEN_UNIFORM (1): v[i] = scale * (float)((double)(w[i] >> 8) * 2^-23 - 1.0)
 *       i.e. uniform on [-1, 1) with 24-bit resolution, times scale.
 *   PEMN_GEN_NORMAL  (2): s = sum_{j=0..11} (w[12i+j] >> 8)   (exact integer)
 *       v[i] = scale * (float)(((double)s - 6 * 2^24) * 2^-24)
 *       i.e. the Irwin-Hall approximation of N(0, 1) (mean 0, variance 1), times scale.
 *   PEMN_GEN_SIGNED  (3): v[i] = (w[i] >> 31) ? -scale : scale
 *       the "signed constant" initialisation of edge-popup.
 *   In each case the final multiply is one binary32 multiply: (float)x * scale.
 *
 * Element i depends only on the keystream words it names, so any range [first, first+n)
 * can be generated without generating what precedes it. Test vectors are in
 * docs/FORMAT.md and checked by tests/unit/test_gen.c.
 *
 * Thread-safety: pure functions.
 */
#ifndef PEMN_GEN_H
#define PEMN_GEN_H

#include <pemn/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PEMN_SEED_BYTES 32

typedef enum pemn_gen {
    PEMN_GEN_UNIFORM = 1,
    PEMN_GEN_NORMAL = 2,
    PEMN_GEN_SIGNED = 3,
} pemn_gen;

/* Name ("chacha20-uniform", "chacha20-normal", "chacha20-signed") or NULL if unknown. */
const char *pemn_gen_name(uint32_t gen);
/* Parses the names above (and the short forms "uniform", "normal", "signed"); exact,
 * case-sensitive match. PEMN_EUNSUPPORTED for any other name, PEMN_EINVAL for NULL. */
pemn_rc pemn_gen_parse(const char *name, uint32_t *gen);

/* Writes v[first .. first+n) of the generator into out. PEMN_EUNSUPPORTED for an unknown
 * generator, PEMN_EINVAL when first + n overflows or seed / out (n > 0) is NULL. */
pemn_rc pemn_gen_fill(uint32_t gen, const uint8_t seed[PEMN_SEED_BYTES], float scale,
                      uint64_t first, float *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
