/*
 * pemn/pack.h — turning checkpoints into packages: top-k masks and prototype detection.
 *
 * Input convention (PyTorch edge-popup / PEMN checkpoints, read as safetensors): a tensor
 * X.weight with a sibling X.scores (F32; mask = top-k of |scores| at density k) or X.mask
 * (U8/BOOL/I8; nonzero keeps) is a masked layer; X.scores / X.mask are consumed; every
 * other tensor is stored dense, as it is. Masked weights must be F32 and are reproduced
 * EXACTLY (bit for bit) by the package: w[i] = scale_L * proto[i mod d_v] computed as one
 * binary32 multiply, every layer starting at prototype index 0. Expanding the package gives
 * w[i] * mask[i], bit for bit as PyTorch's weight * mask (a dropped negative weight is -0.0).
 *
 * Strategies (the structure of the prototypes):
 *   rp        one shared prototype, d_v = the shortest period of the longest masked layer;
 *             every layer is a prefix of that tiling (up to its scale).
 *   mp        the same with d_v = the longest layer's size (its values, truncated per layer).
 *   one-layer one prototype per distinct layer shape (layers of one shape share values up
 *             to scale), each reduced to its shortest period.
 *   mask      each layer its own prototype (its own shortest period).
 *   auto      the smallest of rp/mp (reported as mp when the period is the whole longest
 *             layer) and one-layer that reproduces every layer; refuses otherwise.
 * Scales: each layer first tries 1.0, then s = w/p at the first nonzero prototype value
 * and its two neighbouring floats on each side; the first that reproduces the whole layer
 * wins. For shared and one-layer prototypes the reference layer (the longest one, or the
 * first of its shape) has scale 1.0 unless the prototype is seeded.
 * Seeded (opts.seeded): the prototypes are pemn_gen_fill(generator, seed, 1.0) with d_v
 * found as for explicit ones; every layer's scale is recovered against them and checked.
 * One seed gives one shared prototype (rp/mp); one seed per shape gives one-layer, one per
 * masked layer gives mask.
 * Periods are found with the prefix function (linear time, 4 bytes per element of the
 * longest layer); the whole pack is linear in the checkpoint's size, and its working memory
 * is one layer's mask and prefix table plus the package being built.
 *
 * Thread-safety: pure functions; a report is owned by its caller.
 */
#ifndef PEMN_PACK_H
#define PEMN_PACK_H

#include <pemn/common.h>
#include <pemn/key.h>
#include <pemn/safetensors.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Number of weights kept at density k out of n, as the reference edge-popup implementation
 * computes it in double precision: n - floor((1.0 - k) * n). k in (0, 1]. */
uint64_t pemn_topk_count(uint64_t n, double k);

/* mask[i] = 1 for the pemn_topk_count(n, k) entries of largest |scores[i]|, else 0.
 * Ties in |score| are broken by index: the lower index is kept (-0.0 ties with 0.0). NaN
 * scores rank lowest (among NaNs, again the lower index first). O(n) worst case (a radix
 * selection: five passes, no sort, no extra memory). PEMN_EINVAL for k outside (0, 1],
 * or scores/mask NULL with n > 0. */
pemn_rc pemn_topk_mask(const float *scores, uint64_t n, double k, uint8_t *mask);

/* ---- packing ---------------------------------------------------------------------------- */
enum pemn_pack_strategy {
    PEMN_PACK_AUTO = 0,
    PEMN_PACK_ONE_LAYER,
    PEMN_PACK_MP,
    PEMN_PACK_RP,
    PEMN_PACK_MASK,
    PEMN_PACK_DENSE, /* reported only: no masked layer in the checkpoint */
};
/* "auto", "one-layer", "mp", "rp", "mask", "dense"; NULL for an unknown value. */
const char *pemn_pack_strategy_name(enum pemn_pack_strategy s);
/* Parses the names above except "dense". PEMN_EINVAL otherwise. */
pemn_rc pemn_pack_strategy_parse(const char *name, enum pemn_pack_strategy *out);

#define PEMN_PACK_DEFAULT_DENSITY 0.5

struct pemn_pack_opts {
    const char *name;    /* model name (builder rules) */
    const char *version; /* version label */
    uint64_t release;
    /* k in (0, 1] for X.scores layers; 0: the checkpoint's "pemn.density" metadata (as
     * `pemn train` writes it) when present, else PEMN_PACK_DEFAULT_DENSITY. */
    double density;
    enum pemn_pack_strategy strategy;
    /* Seeded prototypes (seeded = 1): `generator` with `seed` for one shared prototype
     * (auto, rp, mp); or n_seeds > 1 seeds in `seeds` (borrowed) for one-layer (one per
     * distinct layer shape, in checkpoint order of each shape's first layer) or mask (one
     * per masked layer, in checkpoint order). auto picks by the number of seeds. */
    int seeded;
    uint32_t generator;
    uint8_t seed[32];
    size_t n_seeds;
    const uint8_t (*seeds)[32];
    /* 1: take the generator and the seeds from the checkpoint's metadata instead
     * ("pemn.generator" and "pemn.protos" = [{"seed": hex, ...}, ...] in prototype order, or
     * "pemn.seed"), as `pemn train` writes them; `seeded` must then be 0. */
    int seeds_from_meta;
    int64_t created; /* Unix seconds; 0 means now */
    /* Metadata: the checkpoint's __metadata__ is carried over, then these pairs are added
     * (replacing a key of the same name). Borrowed. */
    size_t n_meta;
    const char *const *meta_keys;
    const char *const *meta_values;
    /* Mask encoding (pemn_builder_set_mask_encoding): 0 = the smaller per tensor (default),
     * PEMN_MASK_BITS = bit-packed only (packages readable by format-1.0 readers). */
    uint32_t mask_encoding;
};
/* Zeroes *o and sets the defaults (auto, density from the checkpoint or 0.5, release 1). */
void pemn_pack_opts_init(struct pemn_pack_opts *o);

#define PEMN_PACK_FROM_SCORES 1
#define PEMN_PACK_FROM_MASK 2
struct pemn_pack_layer {
    char *name; /* owned by the report */
    pemn_dtype dtype;
    uint32_t ndim;
    uint64_t shape[PEMN_MAX_DIMS];
    uint64_t numel;
    int masked;        /* 1 masked, 0 dense */
    int mask_from;     /* masked: PEMN_PACK_FROM_SCORES or PEMN_PACK_FROM_MASK */
    uint32_t proto;    /* masked: prototype index */
    uint64_t offset;   /* masked: always 0 (every layer restarts the prototype) */
    float scale;       /* masked */
    uint64_t kept;     /* masked: weights kept (filled by pemn_pack_safetensors) */
    uint32_t st_index; /* index of the weight tensor in the checkpoint */
};
struct pemn_pack_proto {
    uint64_t d_v;
    int seeded;         /* 1: generator(seed) at scale 1.0 */
    uint32_t ref_layer; /* explicit: its values are the first d_v weights of this layer */
    uint8_t seed[32];   /* seeded only */
};
struct pemn_pack_report {
    enum pemn_pack_strategy strategy;
    double density; /* as recorded in the manifest */
    uint32_t n_layers;
    struct pemn_pack_layer *layers; /* every output tensor, in checkpoint order */
    uint32_t n_protos;
    struct pemn_pack_proto *protos;
    uint64_t n_params;        /* elements over all output tensors */
    uint64_t n_masked_params; /* elements of masked layers */
    uint64_t n_kept;          /* filled by pemn_pack_safetensors */
    uint64_t proto_values;    /* explicit prototype floats stored */
};
/* Frees what a report owns and zeroes it. NULL is a no-op. */
void pemn_pack_report_free(struct pemn_pack_report *r);

/* Finds the structure of a checkpoint without building anything. *report is filled (free it
 * with pemn_pack_report_free, also after a failure). PEMN_EINVAL (options),
 * PEMN_EUNSUPPORTED (the weights are not reproducible by the requested strategy: the message
 * names the layer; or a dtype pack cannot mask), PEMN_ECORRUPT (inconsistent siblings),
 * PEMN_ENOMEM. */
pemn_rc pemn_pack_detect(const pemn_st *in, const struct pemn_pack_opts *opts,
                         struct pemn_pack_report *report, struct pemn_err *err);

/* Detects, builds and signs: *out (malloc'ed, release with free()) holds the package.
 * report may be NULL; when given it is filled as by pemn_pack_detect plus the kept counts. */
pemn_rc pemn_pack_safetensors(const pemn_st *in, const struct pemn_pack_opts *opts,
                              const struct pemn_seckey *key, uint8_t **out, size_t *len,
                              struct pemn_pack_report *report, struct pemn_err *err);

#ifdef __cplusplus
}
#endif
#endif
