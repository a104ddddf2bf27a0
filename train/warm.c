/*
 * train/warm.c — warm starts from a training checkpoint (see train/warm.h).
 */
#include "train/warm.h"

#include <jansson.h>
#include <math.h>
#include <pemn/gen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/err.h"

#define BADCK(...) proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, __VA_ARGS__)

void train_init_free(struct train_init *in)
{
    if (!in)
        return;
    pemn_st_free(in->st);
    free(in->classes);
    free(in);
}

static json_t *meta_json(const pemn_st *st, const char *key)
{
    const char *v = pemn_st_meta_get(st, key);
    return v ? json_loads(v, 0, NULL) : NULL;
}

static pemn_rc parse_model(struct train_init *in, json_t *mj, struct pemn_err *err)
{
    json_t *input = json_object_get(mj, "input"), *layers = json_object_get(mj, "layers");
    if (!json_is_object(input) || !json_is_array(layers))
        return BADCK("checkpoint: pemn.model lacks input or layers");
    in->in_scale = (float)json_number_value(json_object_get(input, "scale"));
    in->in_mean = (float)json_number_value(json_object_get(input, "mean"));
    in->in_std = (float)json_number_value(json_object_get(input, "std"));
    if (!(in->in_scale > 0) || !(in->in_std > 0) || !isfinite(in->in_mean))
        return BADCK("checkpoint: bad input normalisation in pemn.model");
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        const char *op = json_string_value(json_object_get(l, "op"));
        if (op && strcmp(op, "linear") == 0 && json_object_get(l, "bias"))
            in->arch.bias = 1;
        if (op && strcmp(op, "batchnorm1d") == 0)
            in->arch.batchnorm = 1;
    }
    json_t *cl = json_object_get(mj, "classes");
    size_t n = json_array_size(cl), len = 0;
    if (n == 0 || n > TRAIN_MAX_CLASSES)
        return BADCK("checkpoint: pemn.model has %zu classes", n);
    for (i = 0; i < n; i++)
        len += strlen(json_string_value(json_array_get(cl, i)) ?: "") + 1;
    in->classes = malloc(len + 1);
    if (!in->classes)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    size_t pos = 0;
    for (i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(cl, i)) ?: "";
        if (!*s || strchr(s, ',')) { /* not representable as a list: use indices */
            free(in->classes);
            in->classes = NULL;
            break;
        }
        pos += (size_t)snprintf(in->classes + pos, len + 1 - pos, "%s%s", i ? "," : "", s);
    }
    in->n_classes = (uint32_t)n;
    return PEMN_OK;
}

static pemn_rc parse_train(struct train_init *in, json_t *tj, struct pemn_err *err)
{
    const char *mode = json_string_value(json_object_get(tj, "mode"));
    const char *arch = json_string_value(json_object_get(tj, "arch"));
    if (!mode || !arch)
        return BADCK("checkpoint: pemn.train lacks mode or arch");
    pemn_rc rc = train_mlp_parse(arch, &in->arch, err);
    if (rc)
        return rc;
    in->masked = strcmp(mode, "mask") == 0;
    json_t *seed = json_object_get(tj, "seed");
    if (!json_is_integer(seed) || json_integer_value(seed) < 0)
        return BADCK("checkpoint: pemn.train lacks the seed");
    in->seed = (uint64_t)json_integer_value(seed);
    if (!in->masked)
        return PEMN_OK;
    const char *strat = json_string_value(json_object_get(tj, "strategy"));
    if (!strat || train_strategy_parse(strat, &in->strategy) != PEMN_OK)
        return BADCK("checkpoint: unknown strategy");
    in->ratio = json_number_value(json_object_get(tj, "ratio"));
    in->density = json_number_value(json_object_get(tj, "density"));
    in->layer_scale = json_is_true(json_object_get(tj, "layer_scale"));
    if (!(in->density > 0 && in->density <= 1))
        return BADCK("checkpoint: density out of (0, 1]");
    return PEMN_OK;
}

pemn_rc train_init_load(const char *path, struct train_init **out, struct pemn_err *err)
{
    *out = NULL;
    struct train_init *in = calloc(1, sizeof *in);
    if (!in)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    pemn_rc rc = pemn_st_open_file(path, &in->st, err);
    if (rc) {
        train_init_free(in);
        return rc;
    }
    json_t *mj = meta_json(in->st, "pemn.model"), *tj = meta_json(in->st, "pemn.train");
    json_t *oj = meta_json(in->st, "pemn.optim");
    if (!mj || !tj) {
        rc = BADCK("%s is not a pemn train checkpoint (no pemn.model / pemn.train metadata)", path);
        goto out;
    }
    rc = parse_train(in, tj, err);
    if (!rc)
        rc = parse_model(in, mj, err);
    if (!rc && in->masked) {
        const char *g = pemn_st_meta_get(in->st, "pemn.generator");
        if (!g || pemn_gen_parse(g, &in->gen) != PEMN_OK)
            rc = BADCK("checkpoint: unknown or missing pemn.generator");
    }
    if (!rc && oj) {
        const char *kind = json_string_value(json_object_get(oj, "kind"));
        json_t *t = json_object_get(oj, "t");
        if (!kind || train_optim_parse(kind, &in->optim) != PEMN_OK || !json_is_integer(t) ||
            json_integer_value(t) < 0)
            rc = BADCK("checkpoint: malformed pemn.optim");
        else
            in->have_optim = 1, in->optim_t = (uint64_t)json_integer_value(t);
    }
out:
    json_decref(mj);
    json_decref(tj);
    json_decref(oj);
    if (rc) {
        train_init_free(in);
        return rc;
    }
    *out = in;
    return PEMN_OK;
}

/* Copies checkpoint tensor `name` (F32, n elements) into dst; when must_equal, compares
 * instead (bitwise). */
static pemn_rc take(const pemn_st *st, const char *name, float *dst, size_t n, int must_equal,
                    struct pemn_err *err)
{
    uint32_t i;
    struct pemn_st_tensor t;
    if (pemn_st_find(st, name, &i) != PEMN_OK || pemn_st_tensor(st, i, &t) != PEMN_OK)
        return BADCK("checkpoint: no tensor %s", name);
    if (t.dtype != PEMN_DT_F32 || t.numel != n)
        return BADCK("checkpoint: %s is not F32 with %zu elements", name, n);
    if (must_equal) {
        if (memcmp(dst, t.data, n * sizeof(float)) != 0)
            return BADCK("checkpoint: %s differs from the weights this seed and strategy "
                         "generate (another prototype?)",
                         name);
        return PEMN_OK;
    }
    memcpy(dst, t.data, n * sizeof(float));
    return PEMN_OK;
}

pemn_rc train_init_apply(const struct train_init *in, struct train_model *m,
                         struct train_optim *opt, struct pemn_err *err)
{
    struct train_net *net = m->net;
    char name[TRAIN_NAME_MAX + 32];
    pemn_rc rc = PEMN_OK;
    for (size_t i = 0; i < net->n_layers && !rc; i++) {
        struct train_layer *l = &net->layers[i];
        if (strcmp(l->vt->op, "linear") == 0) {
            size_t nw = l->in_dim * l->out_dim;
            snprintf(name, sizeof name, "%s.weight", l->name);
            rc = take(in->st, name, l->weight, nw, l->masked, err);
            if (!rc && l->masked) {
                snprintf(name, sizeof name, "%s.scores", l->name);
                rc = take(in->st, name, l->scores, nw, 0, err);
            }
            if (!rc && l->bias) {
                snprintf(name, sizeof name, "%s.bias", l->name);
                rc = take(in->st, name, l->bias, l->out_dim, 0, err);
            }
        } else if (strcmp(l->vt->op, "batchnorm1d") == 0) {
            const char *parts[] = {"weight", "bias", "running_mean", "running_var"};
            float *data[] = {l->gamma, l->beta, l->run_mean, l->run_var};
            for (size_t k = 0; k < 4 && !rc; k++) {
                snprintf(name, sizeof name, "%s.%s", l->name, parts[k]);
                rc = take(in->st, name, data[k], l->out_dim, 0, err);
            }
        }
    }
    if (rc)
        return rc;
    if (m->masked && (rc = train_net_update_masks(net)) != PEMN_OK)
        return proto_err(err, rc, PEMN_NO_OFFSET, "top-k mask failed");
    train_input_init(&m->input, m->input.rows, m->input.cols, in->in_scale, in->in_mean,
                     in->in_std);
    if (!in->have_optim || in->optim != opt->kind)
        return PEMN_OK;
    for (size_t i = 0; i < opt->n && !rc; i++) {
        snprintf(name, sizeof name, "_optim.%s.s1", net->params[i].name);
        rc = take(in->st, name, opt->s1[i], net->params[i].n, 0, err);
        if (!rc && opt->s2[i]) {
            snprintf(name, sizeof name, "_optim.%s.s2", net->params[i].name);
            rc = take(in->st, name, opt->s2[i], net->params[i].n, 0, err);
        }
    }
    opt->t = in->optim_t;
    return rc;
}

pemn_rc train_optim_export(const struct train_optim *opt, const struct train_net *net,
                           pemn_st_writer *w, struct pemn_err *err)
{
    char meta[96], name[TRAIN_NAME_MAX + 32];
    snprintf(meta, sizeof meta, "{\"kind\":\"%s\",\"t\":%llu}", train_optim_name(opt->kind),
             (unsigned long long)opt->t);
    pemn_rc rc = pemn_st_writer_add_meta(w, "pemn.optim", meta);
    for (size_t i = 0; i < opt->n && !rc; i++) {
        uint64_t shape[1] = {net->params[i].n};
        snprintf(name, sizeof name, "_optim.%s.s1", net->params[i].name);
        rc = pemn_st_writer_add(w, name, PEMN_DT_F32, 1, shape, opt->s1[i],
                                shape[0] * sizeof(float), err);
        if (!rc && opt->s2[i]) {
            snprintf(name, sizeof name, "_optim.%s.s2", net->params[i].name);
            rc = pemn_st_writer_add(w, name, PEMN_DT_F32, 1, shape, opt->s2[i],
                                    shape[0] * sizeof(float), err);
        }
    }
    return rc;
}
