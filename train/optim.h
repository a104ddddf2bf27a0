/*
 * train/optim.h — SGD with momentum and weight decay (PyTorch semantics), AdamW, and the
 * cosine learning-rate schedule.
 *
 *   SGD:   g = grad + wd * p;  buf = momentum * buf + g;  p -= lr * buf
 *   AdamW: p *= 1 - lr * wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *          p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 *   cosine: lr(t) = lr0 * (1 + cos(pi * t / T)) / 2, t = steps taken, T = total steps.
 *
 * Thread-safety: an optimizer is used by one thread at a time.
 */
#ifndef PEMN_TRAIN_OPTIM_H
#define PEMN_TRAIN_OPTIM_H

#include "train/mlp.h"

enum train_opt_kind { TRAIN_OPT_SGD = 0, TRAIN_OPT_ADAMW = 1 };

struct train_optim {
    enum train_opt_kind kind;
    double momentum, wd, beta1, beta2, eps;
    uint64_t t;
    size_t n;
    float *s1[TRAIN_MAX_LAYERS * 2];
    float *s2[TRAIN_MAX_LAYERS * 2];
};

/* Parses "sgd" / "adamw". */
pemn_rc train_optim_parse(const char *name, enum train_opt_kind *out);
const char *train_optim_name(enum train_opt_kind kind);

/* State (zeroed) for the params of net. */
pemn_rc train_optim_init(struct train_optim *o, enum train_opt_kind kind, double momentum,
                         double wd, const struct train_net *net, struct pemn_err *err);
void train_optim_free(struct train_optim *o);
/* One step over net's params with learning rate lr. */
void train_optim_step(struct train_optim *o, struct train_net *net, double lr);

double train_cosine_lr(double lr0, uint64_t step, uint64_t total);

#endif
