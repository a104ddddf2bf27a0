/*
 * tests/common/ckpt.h — synthetic edge-popup checkpoints (safetensors) with a known
 * structure, and the dense network a package made from them must expand to.
 *
 * Every kind has the same small network (conv1 [8,1,3,3], fc1 [16,72], fc2 [10,16] masked by
 * an explicit U8 .mask, fc3 [10,16]; dense F32 biases and batch-norm statistics and an I64
 * bn1.num_batches_tracked) except "demo", a 784-256-128-10 MLP. What differs is how the
 * masked weights are made:
 *   rp         w = u[i mod 37] for every layer (u random): rp, d_v 37
 *   rp-scaled  w = 2^k_L * u[i mod 37], distinct powers of two per layer: rp, d_v 37
 *   mp         w = u[i] (u the length of fc1): mp, d_v 1152
 *   one-layer  one random prototype per shape (fc1's of period 50; fc3 shares fc2's values):
 *              one-layer, d_v 72 + 50 + 160
 *   mask       every layer random: auto refuses (fc3 differs from fc2), mask works
 *   seeded     w = s_L * gen(CKPT_SEED, uniform)[i mod 64] with arbitrary float s_L
 *              (metadata pemn.generator and pemn.seed, as `pemn train` writes them)
 *   seeded-one-layer  one seeded prototype per shape: conv1 ckpt_seed(0) (d_v 72), fc1
 *              ckpt_seed(1) (period 50), fc2 and fc3 ckpt_seed(2) (d_v 160); s_L per layer
 *              (metadata pemn.generator, pemn.protos and pemn.density = 0.3)
 *   not-tiled  rp with one weight of fc2 changed: refused, naming fc2.weight
 *   dense      no masked layer
 *   demo       seeded (d_v 1000) MLP with kaiming per-layer scales
 */
#ifndef PEMN_TESTS_CKPT_H
#define PEMN_TESTS_CKPT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_SEED_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define CKPT_GENERATOR "chacha20-uniform"

/* Seed number g of the seeded kinds: byte i = i + 0x40 * g (g = 0 is CKPT_SEED_HEX). */
void ckpt_seed(unsigned g, uint8_t seed[32]);

/* Makes checkpoint `kind` (names above) as safetensors bytes (malloc'ed). 0 ok, -1 unknown
 * kind or failure. */
int ckpt_make(const char *kind, uint8_t **out, size_t *len);

/* From checkpoint bytes, the dense network a package must expand to at density k: masked
 * layers X.weight = mask[i] ? w[i] : +0.0f, with mask = the top-k of |X.scores| computed by
 * an independent sort (ties by lower index, NaN lowest) or X.mask != 0; X.scores/X.mask
 * dropped; every other tensor unchanged. 0 ok, -1 failure. */
int ckpt_expected(const uint8_t *ckpt, size_t len, double k, uint8_t **out, size_t *out_len);

/* Compares two safetensors files' tensors (names, dtypes, shapes, bytes; order and metadata
 * ignored). 0 equal; -1 different (a line on stderr says where). */
int ckpt_compare(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* Command-line mode for shell tests and the demo:
 *   make KIND OUT                 write checkpoint KIND to OUT
 *   expect IN K OUT               write the expected expansion of IN at density K
 *   compare A B                   exit 0 when A and B hold the same tensors */
int ckpt_tool_main(int argc, char **argv);

#endif
