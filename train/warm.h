/*
 * train/warm.h — warm starts: continuing training from a `pemn train --checkpoint` file.
 *
 * A checkpoint (safetensors) holds X.weight (the frozen, scaled weights of a masked layer,
 * or the trained weights of a dense one), X.scores, biases and batch-norm tensors, the
 * metadata pemn.model / pemn.train / pemn.generator / pemn.protos (train/export.h), and the
 * optimizer state: metadata pemn.optim = {"kind": "sgd"|"adamw", "t": steps} and one
 * tensor "_optim.<param>.s1" (SGD momentum buffer, AdamW first moment) and, for AdamW,
 * "_optim.<param>.s2" per trainable tensor (`pemn pack` skips them).
 *
 * Loading reads the architecture, strategy, prototype seed, density and input
 * normalisation from it; the trainer then rebuilds the network exactly as the first run
 * did (same seeded prototypes) and train_init_apply checks that the rebuilt frozen weights
 * equal the checkpoint's bit for bit before it copies scores, biases, batch-norm state and
 * the optimizer state in.
 */
#ifndef PEMN_TRAIN_WARM_H
#define PEMN_TRAIN_WARM_H

#include <pemn/safetensors.h>

#include "train/train.h"

struct train_init {
    pemn_st *st; /* the checkpoint (owned) */
    /* what the checkpoint fixes */
    struct train_mlp_spec arch;
    int masked;
    enum train_strategy strategy;
    double ratio, density;
    uint32_t gen;
    int layer_scale;
    uint64_t seed;
    float in_scale, in_mean, in_std;
    uint32_t n_classes;
    char *classes; /* comma-separated class names (owned), or NULL */
    /* optimizer state, when the checkpoint has it */
    int have_optim;
    enum train_opt_kind optim;
    uint64_t optim_t;
};

/* Reads a checkpoint written by train_export_safetensors. PEMN_EINVAL (with a message)
 * when it lacks what a warm start needs. *out is new (train_init_free). */
pemn_rc train_init_load(const char *path, struct train_init **out, struct pemn_err *err);
void train_init_free(struct train_init *in); /* NULL is a no-op */

/* Copies the checkpoint's state into a model built from the same options (train_run
 * calls it): frozen weights must match exactly (else PEMN_EINVAL: another prototype or
 * seed), then scores / trained weights, biases, batch-norm parameters and running
 * statistics, masks recomputed, the input normalisation, and the optimizer state when
 * opt uses the same kind (otherwise opt starts from zero). */
pemn_rc train_init_apply(const struct train_init *in, struct train_model *m,
                         struct train_optim *opt, struct pemn_err *err);

/* Writes the optimizer state of opt (params of net) into w: metadata pemn.optim and the
 * _optim.* tensors. */
pemn_rc train_optim_export(const struct train_optim *opt, const struct train_net *net,
                           pemn_st_writer *w, struct pemn_err *err);

#endif
