/*
 * train/export.h — writing a trained model: a signed .pemn package (through pemn/builder.h)
 * or a safetensors checkpoint in the PyTorch edge-popup layout; and the metadata that lets
 * any runtime rebuild the forward pass (documented in docs/RESULTS.md).
 *
 * Metadata keys written (values are compact JSON or plain text):
 *   pemn.model      {"type":"mlp","input":{...},"layers":[...],"classes":[...]}
 *   pemn.train      the training options and the trainer's final accuracies
 *   pemn.generator, pemn.seed, pemn.protos, pemn.layer.<X>.scale   (edge-popup only)
 *
 * Thread-safety: pure functions of the model.
 */
#ifndef PEMN_TRAIN_EXPORT_H
#define PEMN_TRAIN_EXPORT_H

#include <pemn/key.h>

#include "train/train.h"

struct train_meta {
    size_t n;
    char *keys[TRAIN_MAX_LAYERS + 8];
    char *values[TRAIN_MAX_LAYERS + 8];
};
/* Fills meta (free with train_meta_free) for model m trained with o (NULL: no pemn.train)
 * and result r (NULL: no accuracies). */
pemn_rc train_meta_build(const struct train_model *m, const struct train_opts *o,
                         const struct train_result *r, int with_seeds, struct train_meta *meta,
                         struct pemn_err *err);
void train_meta_free(struct train_meta *meta);

/* Signs and writes the package to path (atomically). Masked layers become masked tensors
 * on seeded prototypes (mask = pemn_topk_mask(scores), the forward pass's mask); dense
 * weights, biases and batch-norm tensors are stored dense F32. */
pemn_rc train_export_pkg(const struct train_model *m, const struct train_opts *o,
                         const struct train_result *r, const struct pemn_seckey *key,
                         const char *name, const char *version, uint64_t release, const char *path,
                         struct pemn_err *err);

/* Writes a safetensors checkpoint: X.weight (frozen, already scaled, or trained) and
 * X.scores for masked layers, then biases and batch-norm tensors. */
pemn_rc train_export_safetensors(const struct train_model *m, const struct train_opts *o,
                                 const struct train_result *r, const char *path,
                                 struct pemn_err *err);

#endif
