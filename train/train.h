/*
 * train/train.h — the training loop (dense baseline or edge-popup masks) and evaluation.
 *
 * Determinism: for a given seed, options and OpenBLAS thread count, a run produces
 * bit-identical scores, weights and accuracies (own PRNG for init and shuffling, fixed
 * reduction orders, OpenBLAS pinned to opts.threads with openblas_set_num_threads).
 *
 * The library never prints: progress goes through a callback.
 * Thread-safety: one training run per thread; OpenBLAS's thread count is process-wide.
 */
#ifndef PEMN_TRAIN_TRAIN_H
#define PEMN_TRAIN_TRAIN_H

#include "train/edgepopup.h"
#include "train/idx.h"
#include "train/mlp.h"
#include "train/optim.h"

struct train_init;

/* Evaluation batch size: fixed so that trainer and `pemn eval` multiply identically. */
#define TRAIN_EVAL_BATCH 256

/* Input preprocessing: x = (pixel * scale - mean) / std, as float arithmetic. */
struct train_input {
    uint32_t rows, cols;
    float scale, mean, std;
    float lut[256]; /* the 256 possible inputs, precomputed */
};
void train_input_init(struct train_input *in, uint32_t rows, uint32_t cols, float scale, float mean,
                      float std);
/* Mean and standard deviation of pixel * scale over a data set (computed in double). */
void train_input_stats(const struct train_data *d, float scale, float *mean, float *std);

/* A model: the network plus everything needed to rebuild and feed it. */
struct train_model {
    struct train_mlp_spec spec;
    struct train_net *net;
    struct train_input input;
    uint32_t n_classes;
    char *classes[TRAIN_MAX_CLASSES]; /* owned strings */
    int masked;
    enum train_strategy strategy;
    double ratio, density;
    uint32_t gen;
    int layer_scale;
    uint64_t seed;
    struct train_protos protos;
    struct train_optim optim; /* optimizer state at the end of training (checkpoints) */
};
void train_model_free(struct train_model *m); /* NULL is a no-op; frees m itself */
/* Sets class names from a comma-separated list, or "0".."n-1" when list is NULL. */
pemn_rc train_model_set_classes(struct train_model *m, const char *list, uint32_t n,
                                struct pemn_err *err);

/* The ten Fashion-MNIST class names, comma-separated. */
#define TRAIN_FASHION_CLASSES                                                                      \
    "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"

struct train_opts {
    struct train_mlp_spec arch;
    int masked; /* 0 dense, 1 edge-popup */
    enum train_strategy strategy;
    double ratio;   /* rp */
    double density; /* k */
    uint32_t gen;   /* prototype generator */
    int layer_scale;
    enum train_opt_kind optim;
    double lr, momentum, wd;
    int cosine;
    uint32_t epochs;
    uint32_t batch;
    uint64_t seed;
    int threads;            /* OpenBLAS threads (>= 1) */
    uint32_t holdout;       /* last N training samples held out for validation (0: none) */
    int eval_each_epoch;    /* test accuracy after every epoch (monitoring only) */
    uint32_t mask_encoding; /* package export: 0 smaller per tensor, PEMN_MASK_BITS */
    /* warm start (train/warm.h): the network, input normalisation and optimizer state
     * continue from this checkpoint; the fields above that define the network must equal
     * the checkpoint's. NULL: a fresh start. Borrowed. */
    const struct train_init *init;
};
/* The defaults of `pemn train`. */
void train_opts_default(struct train_opts *o);

struct train_progress {
    uint32_t epoch, epochs;     /* 1-based */
    uint64_t step, steps_epoch; /* within the epoch, 1-based */
    int epoch_done;             /* set on the call at the end of an epoch */
    double loss;                /* running mean over the epoch so far */
    double train_acc;           /* running, over the epoch so far */
    double val_acc, test_acc;   /* end of epoch; < 0 when not measured */
    double lr;
    double train_seconds; /* time spent in training steps so far (no evaluation) */
    double elapsed;       /* wall time since the start */
};
/* Return nonzero to stop (the run then fails with PEMN_ECANCELED). */
typedef int (*train_progress_fn)(const struct train_progress *p, void *ud);

struct train_result {
    double first_loss;      /* mean loss of the first epoch's first 10% of steps */
    double final_loss;      /* mean loss over the final epoch */
    double train_acc;       /* running accuracy over the final epoch */
    double val_acc;         /* final model on the held-out part, or -1 */
    double test_acc;        /* final model on the test set, or -1 without a test set */
    uint32_t test_n;        /* test samples evaluated */
    double train_seconds;   /* training steps only (wall clock) */
    double cpu_seconds;     /* process CPU time over the training steps (all threads):
                               robust to other load on the machine */
    double samples_per_sec; /* training samples / train_seconds */
    uint64_t samples;       /* training samples processed */
};

/* Trains a model on `train` (its last opts->holdout samples held out) and, when test is not
 * NULL, evaluates the final model on it. *out is new (train_model_free). */
pemn_rc train_run(const struct train_opts *opts, const struct train_data *train,
                  const struct train_data *test, train_progress_fn cb, void *ud,
                  struct train_model **out, struct train_result *res, struct pemn_err *err);

/* Accuracy of m on samples [first, first+n) of d, in batches of TRAIN_EVAL_BATCH.
 * confusion (n_classes^2 counts, row = true class) is filled when not NULL. */
pemn_rc train_evaluate(struct train_model *m, const struct train_data *d, uint32_t first,
                       uint32_t n, double *accuracy, uint64_t *confusion, struct pemn_err *err);

/* Wall-clock seconds (monotonic). */
double train_now(void);
/* Process CPU seconds (all threads). */
double train_cpu_now(void);

#endif
