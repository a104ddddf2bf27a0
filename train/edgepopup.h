/*
 * train/edgepopup.h — PEMN prototypes and edge-popup initialisation.
 *
 * Strategies (how the frozen weights of the masked linear layers are made):
 *   mask      one seeded prototype per layer, as long as the layer (full random weights)
 *   one-layer one seeded prototype per distinct layer shape, shared by layers of that shape
 *   mp        one prototype as long as the largest layer (N_max); every layer uses its first
 *             numel values (offset 0)
 *   rp        one prototype of d_v = floor(N_max * ratio) + 1 values, repeated to fill every
 *             layer (offset 0 in each layer, as in the paper)
 * Prototype values u come from the format's generator (pemn/gen.h) with prototype scale
 * 1.0; the frozen weight is w[i] = scale_L * u[(offset + i) mod d_v], one binary32 multiply,
 * which is exactly what pemn_pkg_expand computes for the masked tensor, so the package can
 * store the 32-byte seed instead of the values.
 *
 * Per-layer scale (default on): scale_L = sqrt(2 / (k * fan_in)) / sd(generator), the
 * Kaiming-ReLU variance corrected for the fraction k of weights kept (edge-popup's
 * "scaled" signed constant). Without it (the paper's RP) every layer gets the scale of the
 * largest layer, so later, narrower layers are too weak and the logits stay small.
 *
 * Scores start U(-1/sqrt(fan_in), 1/sqrt(fan_in)) from the trainer's PRNG.
 */
#ifndef PEMN_TRAIN_EDGEPOPUP_H
#define PEMN_TRAIN_EDGEPOPUP_H

#include <pemn/gen.h>

#include "train/mlp.h"

enum train_strategy {
    TRAIN_STRAT_MASK = 0,
    TRAIN_STRAT_ONE_LAYER,
    TRAIN_STRAT_MP,
    TRAIN_STRAT_RP,
};

pemn_rc train_strategy_parse(const char *name, enum train_strategy *out);
const char *train_strategy_name(enum train_strategy s);

struct train_proto {
    uint32_t gen;
    uint8_t seed[PEMN_SEED_BYTES];
    float scale; /* prototype scale (1.0) */
    uint64_t length;
};

struct train_protos {
    size_t n;
    struct train_proto p[TRAIN_MAX_LAYERS];
};

/* Standard deviation of a generator's unit output (uniform 1/sqrt(3), others 1). */
double train_gen_sd(uint32_t gen);

/* Prototype length for RP: floor(n_max * ratio) + 1. */
uint64_t train_rp_length(uint64_t n_max, double ratio);

/* The 32-byte seed of prototype j for a training seed (BLAKE2b of a label, seed, j). */
void train_proto_seed(uint64_t seed, uint32_t j, uint8_t out[PEMN_SEED_BYTES]);

/* For a masked net: plans the prototypes of the strategy, assigns each masked layer its
 * prototype, offset and scale, fills the frozen weights from the generator, initialises
 * the scores from `seed` and computes the first masks. */
pemn_rc train_ep_init(struct train_net *net, enum train_strategy strategy, double ratio,
                      uint32_t gen, int layer_scale, uint64_t seed, struct train_protos *protos,
                      struct pemn_err *err);

/* For a dense net: PyTorch's nn.Linear default, U(+-1/sqrt(fan_in)) for weights and biases. */
void train_dense_init(struct train_net *net, uint64_t seed);

#endif
