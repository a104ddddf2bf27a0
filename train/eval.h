/*
 * train/eval.h — rebuilding a model for inference from what ships: a .pemn package (its
 * tensors expanded by the library, pemn_pkg_expand) or a safetensors checkpoint (dense, or
 * edge-popup X.weight + X.scores masked at the recorded density). The architecture, input
 * preprocessing and class names come from the "pemn.model" metadata (train/export.h).
 *
 * Thread-safety: pure functions; the model returned is owned by the caller.
 */
#ifndef PEMN_TRAIN_EVAL_H
#define PEMN_TRAIN_EVAL_H

#include <pemn/pkg.h>
#include <pemn/safetensors.h>

#include "train/train.h"

/* *out is new (train_model_free), a dense network ready for train_evaluate.
 * PEMN_ECORRUPT / PEMN_EINVAL with a message when the metadata or a tensor does not fit. */
pemn_rc train_model_from_pkg(const pemn_pkg *pkg, struct train_model **out, struct pemn_err *err);
pemn_rc train_model_from_safetensors(const pemn_st *st, struct train_model **out,
                                     struct pemn_err *err);

/* The trainer's recorded test accuracy ("pemn.train" metadata: test_correct /
 * test_samples), or -1; *n_samples (may be NULL) receives test_samples (0 when absent). */
double train_recorded_accuracy(const char *train_meta_json, uint32_t *n_samples);

#endif
