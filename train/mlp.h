/*
 * train/mlp.h — the network: a list of layers behind a small vtable (linear, relu,
 * batchnorm1d today; a conv layer is one more vtable), forward/backward through
 * cblas_sgemm, and softmax cross-entropy.
 *
 * Tensors are row-major; a batch of activations is [batch x dim]. A linear layer's weight
 * is [out x in] as in PyTorch's nn.Linear, so checkpoints map one to one.
 *
 * A linear layer is either dense (its weight is trained) or masked (edge-popup: the weight
 * is frozen, a score per weight is trained, and the forward pass uses
 * weff[i] = weight[i] * mask[i] (one multiply: -0.0 for a pruned negative weight, exactly
 * PyTorch's weight * mask and pemn_pkg_expand) with mask = pemn_topk_mask(scores, n, k)).
 *
 * Thread-safety: a net is used by one thread at a time (OpenBLAS may use its own threads).
 */
#ifndef PEMN_TRAIN_MLP_H
#define PEMN_TRAIN_MLP_H

#include <pemn/common.h>
#include <stddef.h>

#include "train/topk_band.h"

#define TRAIN_MAX_LAYERS 64
#define TRAIN_MAX_WIDTH (1u << 16)
#define TRAIN_NAME_MAX 64

struct train_layer;

struct train_layer_vt {
    const char *op; /* "linear", "relu", "batchnorm1d" */
    /* y = f(x) for a batch; training selects batch statistics (batchnorm). */
    void (*forward)(struct train_layer *l, const float *x, float *y, size_t batch, int training);
    /* From dy: parameter gradients (overwritten, not accumulated) and, when dx is not
     * NULL, the input gradient. x and y are the forward pass's input and output. */
    void (*backward)(struct train_layer *l, const float *x, const float *y, const float *dy,
                     float *dx, size_t batch);
};

struct train_layer {
    const struct train_layer_vt *vt;
    char name[TRAIN_NAME_MAX]; /* tensor prefix: "fc1", "bn1"; "" for relu */
    size_t in_dim, out_dim;
    /* linear */
    float *weight;           /* [out x in]: trained (dense) or frozen (masked) */
    float *weight_grad;      /* dL/dweight (dense) or dL/dweff (masked) */
    float *bias, *bias_grad; /* NULL when the layer has no bias */
    int masked;
    float *scores, *scores_grad;  /* masked only */
    uint8_t *mask;                /* masked only, one byte per weight */
    float *weff;                  /* masked only: what the forward pass multiplies by */
    double density;               /* masked only: k */
    float scale;                  /* masked only: the per-layer scale of the prototype */
    uint32_t proto;               /* masked only: prototype index */
    uint64_t offset;              /* masked only: offset into the prototype */
    struct train_topk_state topk; /* masked only: the incremental exact top-k */
    /* batchnorm1d (features = in_dim = out_dim) */
    float *gamma, *beta, *gamma_grad, *beta_grad, *run_mean, *run_var;
    float *xhat, *invstd; /* saved by a training forward pass */
    float eps, momentum;
};

/* A trainable tensor, as the optimizer sees it (borrowed pointers into a layer). */
struct train_param {
    char name[TRAIN_NAME_MAX]; /* checkpoint name: "fc1.weight", "fc1.scores", ... */
    float *value;
    float *grad;
    size_t n;
};

struct train_net {
    size_t n_layers;
    struct train_layer layers[TRAIN_MAX_LAYERS];
    size_t in_dim, out_dim;
    size_t max_batch;
    float *act[TRAIN_MAX_LAYERS + 1]; /* act[0] input buffer, act[i+1] output of layer i */
    const float *input;               /* the last forward pass's input (borrowed) */
    float *grad_a, *grad_b;           /* scratch for backward */
    struct train_param params[TRAIN_MAX_LAYERS * 2];
    size_t n_params;
};

struct train_mlp_spec {
    size_t n_sizes;                     /* >= 2 */
    size_t sizes[TRAIN_MAX_LAYERS / 3]; /* 784, 300, 100, 10 */
    int bias;                           /* linear layers carry a bias */
    int batchnorm;                      /* batchnorm1d after every hidden linear layer */
};

/* Parses "784-300-100-10" into spec->sizes. PEMN_EINVAL with a message when malformed. */
pemn_rc train_mlp_parse(const char *text, struct train_mlp_spec *spec, struct pemn_err *err);
/* Formats spec->sizes as "784-300-100-10". */
void train_mlp_format(const struct train_mlp_spec *spec, char *out, size_t cap);

/* New network: linear fc1 [, bn1], relu, fc2 ... fcN (no activation after the last).
 * Weights, biases are zero; batchnorm gamma 1, beta 0, running mean 0, var 1. When
 * `masked` is set, every linear layer is masked at `density` (scores zero, mask all zero:
 * call train_net_update_masks after setting scores). max_batch bounds every batch passed
 * later. */
pemn_rc train_net_new(const struct train_mlp_spec *spec, int masked, double density,
                      size_t max_batch, struct train_net **out, struct pemn_err *err);
void train_net_free(struct train_net *net); /* NULL is a no-op */

/* The trainable tensors: dense weights or scores, then biases and batchnorm affine. */
void train_net_collect_params(struct train_net *net);

/* Recomputes every masked layer's mask (exactly pemn_topk_mask of |scores|, found by
 * train/topk_band.h) and weff. */
pemn_rc train_net_update_masks(struct train_net *net);

/* Forward pass on x ([batch x in_dim]); returns the logits (borrowed, act[n_layers]). */
const float *train_net_forward(struct train_net *net, const float *x, size_t batch, int training);
/* Backward from dlogits (call right after a training forward of the same batch; its input
 * must still be valid). */
void train_net_backward(struct train_net *net, const float *dlogits, size_t batch);

/* Mean softmax cross-entropy of logits against labels; writes dL/dlogits (of the mean)
 * into dlogits when not NULL; *correct += number of argmax hits. */
double train_softmax_xent(const float *logits, const uint8_t *labels, size_t batch, size_t classes,
                          float *dlogits, size_t *correct);

/* Index of the largest logit (first on ties). */
size_t train_argmax(const float *v, size_t n);

/* Process-wide: 1 replaces cblas_sgemm by a naive triple loop (the benchmark's in-run peer;
 * never used for real training). */
void train_set_naive_gemm(int on);

/* Looks a layer up by name; NULL when absent. */
struct train_layer *train_net_layer(struct train_net *net, const char *name);

#endif
