/*
 * train/edgepopup.c — prototypes (mask / one-layer / MP / RP), frozen weights from the
 * seeded generator, score initialisation. The straight-through score gradient lives in
 * the linear layer's backward (train/mlp.c); the top-k in pemn_topk_mask (pemn/pack.h).
 */
#include "train/edgepopup.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "proto/err.h"
#include "train/rng.h"

static const char *const strat_names[] = {"mask", "one-layer", "mp", "rp"};

pemn_rc train_strategy_parse(const char *name, enum train_strategy *out)
{
    for (size_t i = 0; i < sizeof strat_names / sizeof strat_names[0]; i++)
        if (strcmp(name, strat_names[i]) == 0) {
            *out = (enum train_strategy)i;
            return PEMN_OK;
        }
    return PEMN_EINVAL;
}

const char *train_strategy_name(enum train_strategy s)
{
    return (unsigned)s < 4 ? strat_names[s] : "?";
}

double train_gen_sd(uint32_t gen)
{
    return gen == PEMN_GEN_UNIFORM ? 1.0 / sqrt(3.0) : 1.0;
}

uint64_t train_rp_length(uint64_t n_max, double ratio)
{
    return (uint64_t)floor((double)n_max * ratio) + 1;
}

void train_proto_seed(uint64_t seed, uint32_t j, uint8_t out[PEMN_SEED_BYTES])
{
    uint8_t in[32] = "pemn-train-proto";
    for (int i = 0; i < 8; i++)
        in[16 + i] = (uint8_t)(seed >> (8 * i));
    for (int i = 0; i < 4; i++)
        in[24 + i] = (uint8_t)(j >> (8 * i));
    crypto_generichash(out, PEMN_SEED_BYTES, in, sizeof in, NULL, 0);
}

static int same_shape(const struct train_layer *a, const struct train_layer *b)
{
    return a->in_dim == b->in_dim && a->out_dim == b->out_dim;
}

pemn_rc train_ep_init(struct train_net *net, enum train_strategy strategy, double ratio,
                      uint32_t gen, int layer_scale, uint64_t seed, struct train_protos *protos,
                      struct pemn_err *err)
{
    memset(protos, 0, sizeof *protos);
    if (!pemn_gen_name(gen))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "unknown generator %u", gen);
    if (strategy == TRAIN_STRAT_RP && !(ratio > 0.0 && ratio <= 1.0))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "RP ratio %g outside (0, 1]", ratio);
    uint64_t n_max = 0, fan_max = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        struct train_layer *l = &net->layers[i];
        if (l->masked && l->in_dim * l->out_dim > n_max) {
            n_max = l->in_dim * l->out_dim;
            fan_max = l->in_dim;
        }
    }
    if (n_max == 0)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no masked layer");
    /* plan: which prototype each layer uses */
    struct train_layer *owner[TRAIN_MAX_LAYERS] = {0};
    for (size_t i = 0; i < net->n_layers; i++) {
        struct train_layer *l = &net->layers[i];
        if (!l->masked)
            continue;
        uint64_t numel = l->in_dim * l->out_dim;
        uint32_t id = (uint32_t)protos->n;
        if (strategy == TRAIN_STRAT_ONE_LAYER) {
            for (uint32_t j = 0; j < protos->n; j++)
                if (same_shape(owner[j], l))
                    id = j;
        } else if ((strategy == TRAIN_STRAT_MP || strategy == TRAIN_STRAT_RP) && protos->n)
            id = 0;
        if (id == protos->n) {
            struct train_proto *p = &protos->p[protos->n++];
            owner[id] = l;
            p->gen = gen;
            p->scale = 1.0f;
            p->length = strategy == TRAIN_STRAT_MP   ? n_max
                        : strategy == TRAIN_STRAT_RP ? train_rp_length(n_max, ratio)
                                                     : numel;
            train_proto_seed(seed, id, p->seed);
        }
        l->proto = id;
        l->offset = 0;
        uint64_t fan = layer_scale ? l->in_dim : fan_max;
        l->scale = (float)(sqrt(2.0 / (l->density * (double)fan)) / train_gen_sd(gen));
    }
    /* frozen weights: w[i] = scale_L * u[(offset + i) mod d_v] */
    struct train_rng rng;
    train_rng_seed(&rng, seed, 1);
    for (size_t i = 0; i < net->n_layers; i++) {
        struct train_layer *l = &net->layers[i];
        if (!l->masked)
            continue;
        const struct train_proto *p = &protos->p[l->proto];
        float *u = malloc(p->length * sizeof(float));
        if (!u)
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory (prototype)");
        pemn_rc rc = pemn_gen_fill(p->gen, p->seed, p->scale, 0, u, p->length);
        if (rc) {
            free(u);
            return proto_err(err, rc, PEMN_NO_OFFSET, "prototype generation failed");
        }
        uint64_t numel = l->in_dim * l->out_dim;
        uint64_t j = l->offset % p->length;
        for (uint64_t k = 0; k < numel; k++) {
            l->weight[k] = l->scale * u[j];
            if (++j == p->length)
                j = 0;
        }
        free(u);
        float a = (float)(1.0 / sqrt((double)l->in_dim));
        for (uint64_t k = 0; k < numel; k++)
            l->scores[k] = train_rng_uniform(&rng, a);
        if (l->bias)
            for (size_t k = 0; k < l->out_dim; k++)
                l->bias[k] = train_rng_uniform(&rng, a);
    }
    pemn_rc rc = train_net_update_masks(net);
    if (rc)
        return proto_err(err, rc, PEMN_NO_OFFSET, "top-k mask failed");
    return PEMN_OK;
}

void train_dense_init(struct train_net *net, uint64_t seed)
{
    struct train_rng rng;
    train_rng_seed(&rng, seed, 1);
    for (size_t i = 0; i < net->n_layers; i++) {
        struct train_layer *l = &net->layers[i];
        if (!l->weight)
            continue;
        float a = (float)(1.0 / sqrt((double)l->in_dim));
        for (size_t k = 0; k < l->in_dim * l->out_dim; k++)
            l->weight[k] = train_rng_uniform(&rng, a);
        if (l->bias)
            for (size_t k = 0; k < l->out_dim; k++)
                l->bias[k] = train_rng_uniform(&rng, a);
    }
}
