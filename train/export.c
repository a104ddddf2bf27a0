/*
 * train/export.c — packages and checkpoints out of a trained model.
 */
#include "train/export.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/builder.h>
#include <pemn/pack.h>
#include <pemn/safetensors.h>

#include "proto/err.h"
#include "train/warm.h"

/* ---- metadata -------------------------------------------------------------------------- */

static json_t *model_json(const struct train_model *m)
{
    const struct train_net *net = m->net;
    json_t *root = json_object();
    json_t *input = json_object();
    json_t *layers = json_array();
    json_t *classes = json_array();
    json_object_set_new(root, "type", json_string("mlp"));
    json_object_set_new(input, "shape", json_pack("[ii]", m->input.rows, m->input.cols));
    json_object_set_new(input, "scale", json_real(m->input.scale));
    json_object_set_new(input, "mean", json_real(m->input.mean));
    json_object_set_new(input, "std", json_real(m->input.std));
    json_object_set_new(root, "input", input);
    for (size_t i = 0; i < net->n_layers; i++) {
        const struct train_layer *l = &net->layers[i];
        json_t *j = json_object();
        char buf[TRAIN_NAME_MAX + 16];
        json_object_set_new(j, "op", json_string(l->vt->op));
        if (strcmp(l->vt->op, "linear") == 0) {
            snprintf(buf, sizeof buf, "%s.weight", l->name);
            json_object_set_new(j, "weight", json_string(buf));
            if (l->bias) {
                snprintf(buf, sizeof buf, "%s.bias", l->name);
                json_object_set_new(j, "bias", json_string(buf));
            }
            json_object_set_new(j, "in", json_integer((json_int_t)l->in_dim));
            json_object_set_new(j, "out", json_integer((json_int_t)l->out_dim));
        } else if (strcmp(l->vt->op, "batchnorm1d") == 0) {
            const char *parts[] = {"weight", "bias", "running_mean", "running_var"};
            for (size_t k = 0; k < 4; k++) {
                snprintf(buf, sizeof buf, "%s.%s", l->name, parts[k]);
                json_object_set_new(j, parts[k], json_string(buf));
            }
            json_object_set_new(j, "eps", json_real(l->eps));
        }
        json_array_append_new(layers, j);
    }
    json_object_set_new(root, "layers", layers);
    for (uint32_t c = 0; c < m->n_classes; c++)
        json_array_append_new(classes, json_string(m->classes[c] ? m->classes[c] : ""));
    json_object_set_new(root, "classes", classes);
    return root;
}

static json_t *train_json(const struct train_model *m, const struct train_opts *o,
                          const struct train_result *r)
{
    json_t *t = json_object();
    char arch[256];
    train_mlp_format(&m->spec, arch, sizeof arch);
    json_object_set_new(t, "mode", json_string(m->masked ? "mask" : "dense"));
    json_object_set_new(t, "arch", json_string(arch));
    if (m->masked) {
        json_object_set_new(t, "strategy", json_string(train_strategy_name(m->strategy)));
        if (m->strategy == TRAIN_STRAT_RP)
            json_object_set_new(t, "ratio", json_real(m->ratio));
        json_object_set_new(t, "density", json_real(m->density));
        json_object_set_new(t, "layer_scale", json_boolean(m->layer_scale));
    }
    json_object_set_new(t, "seed", json_integer((json_int_t)m->seed));
    if (o) {
        json_object_set_new(t, "optim", json_string(train_optim_name(o->optim)));
        json_object_set_new(t, "lr", json_real(o->lr));
        if (o->optim == TRAIN_OPT_SGD)
            json_object_set_new(t, "momentum", json_real(o->momentum));
        json_object_set_new(t, "wd", json_real(o->wd));
        json_object_set_new(t, "cosine", json_boolean(o->cosine));
        json_object_set_new(t, "epochs", json_integer(o->epochs));
        json_object_set_new(t, "batch", json_integer(o->batch));
        json_object_set_new(t, "threads", json_integer(o->threads));
    }
    if (r) {
        json_object_set_new(t, "samples", json_integer((json_int_t)r->samples));
        if (r->test_acc >= 0) { /* as counts: exact, for `pemn eval` to compare */
            json_object_set_new(t, "test_correct",
                                json_integer((json_int_t)llround(r->test_acc * r->test_n)));
            json_object_set_new(t, "test_samples", json_integer((json_int_t)r->test_n));
        }
        if (r->val_acc >= 0)
            json_object_set_new(t, "val_accuracy", json_real(r->val_acc));
    }
    return t;
}

void train_meta_free(struct train_meta *meta)
{
    for (size_t i = 0; i < meta->n; i++) {
        free(meta->keys[i]);
        free(meta->values[i]);
    }
    meta->n = 0;
}

static int meta_add(struct train_meta *meta, const char *key, char *value /* stolen */)
{
    if (!value || meta->n == sizeof meta->keys / sizeof meta->keys[0]) {
        free(value);
        return -1;
    }
    meta->keys[meta->n] = strdup(key);
    meta->values[meta->n] = value;
    if (!meta->keys[meta->n]) {
        free(value);
        return -1;
    }
    meta->n++;
    return 0;
}

/* %.17g round-trips a double, %.9g a float. */
static char *fmt_real(double v, int digits)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    return strdup(buf);
}

pemn_rc train_meta_build(const struct train_model *m, const struct train_opts *o,
                         const struct train_result *r, int with_seeds, struct train_meta *meta,
                         struct pemn_err *err)
{
    memset(meta, 0, sizeof *meta);
    int bad = 0;
    json_t *mj = model_json(m);
    bad |= meta_add(meta, "pemn.model",
                    json_dumps(mj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)));
    json_decref(mj);
    json_t *tj = train_json(m, o, r);
    bad |= meta_add(meta, "pemn.train",
                    json_dumps(tj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)));
    json_decref(tj);
    if (m->masked && with_seeds) {
        char hex[2 * PEMN_SEED_BYTES + 1];
        bad |= meta_add(meta, "pemn.generator", strdup(pemn_gen_name(m->gen)));
        proto_hex(m->protos.p[0].seed, PEMN_SEED_BYTES, hex);
        bad |= meta_add(meta, "pemn.seed", strdup(hex));
        bad |= meta_add(meta, "pemn.strategy", strdup(train_strategy_name(m->strategy)));
        bad |= meta_add(meta, "pemn.density", fmt_real(m->density, 17));
        json_t *pa = json_array();
        for (size_t j = 0; j < m->protos.n; j++) {
            proto_hex(m->protos.p[j].seed, PEMN_SEED_BYTES, hex);
            json_array_append_new(pa, json_pack("{s:s,s:I}", "seed", hex, "length",
                                                (json_int_t)m->protos.p[j].length));
        }
        bad |=
            meta_add(meta, "pemn.protos",
                     json_dumps(pa, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)));
        json_decref(pa);
        for (size_t i = 0; i < m->net->n_layers; i++) {
            const struct train_layer *l = &m->net->layers[i];
            if (!l->masked)
                continue;
            char key[TRAIN_NAME_MAX + 32];
            snprintf(key, sizeof key, "pemn.layer.%s.scale", l->name);
            bad |= meta_add(meta, key, fmt_real(l->scale, 9));
        }
    }
    if (bad) {
        train_meta_free(meta);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory (metadata)");
    }
    return PEMN_OK;
}

/* ---- tensors in checkpoint order ------------------------------------------------------- */

struct tensor_ref {
    char name[TRAIN_NAME_MAX + 16];
    const float *data;
    uint64_t shape[2];
    uint32_t ndim;
    const struct train_layer *masked; /* the layer when this is a masked weight */
};

/* Lists the tensors of m; scores are listed when with_scores. Returns the count. */
static size_t list_tensors(const struct train_model *m, int with_scores, struct tensor_ref *t,
                           size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < m->net->n_layers && n + 4 <= cap; i++) {
        const struct train_layer *l = &m->net->layers[i];
        if (strcmp(l->vt->op, "linear") == 0) {
            struct tensor_ref *w = &t[n++];
            snprintf(w->name, sizeof w->name, "%s.weight", l->name);
            w->data = l->weight;
            w->ndim = 2;
            w->shape[0] = l->out_dim;
            w->shape[1] = l->in_dim;
            w->masked = l->masked ? l : NULL;
            if (l->masked && with_scores) {
                struct tensor_ref *s = &t[n++];
                *s = *w;
                snprintf(s->name, sizeof s->name, "%s.scores", l->name);
                s->data = l->scores;
                s->masked = NULL;
            }
            if (l->bias) {
                struct tensor_ref *b = &t[n++];
                snprintf(b->name, sizeof b->name, "%s.bias", l->name);
                b->data = l->bias;
                b->ndim = 1;
                b->shape[0] = l->out_dim;
                b->masked = NULL;
            }
        } else if (strcmp(l->vt->op, "batchnorm1d") == 0) {
            const char *parts[] = {"weight", "bias", "running_mean", "running_var"};
            const float *data[] = {l->gamma, l->beta, l->run_mean, l->run_var};
            for (size_t k = 0; k < 4; k++) {
                struct tensor_ref *b = &t[n++];
                snprintf(b->name, sizeof b->name, "%s.%s", l->name, parts[k]);
                b->data = data[k];
                b->ndim = 1;
                b->shape[0] = l->out_dim;
                b->masked = NULL;
            }
        }
    }
    return n;
}

#define MAX_TENSORS (TRAIN_MAX_LAYERS * 4)

pemn_rc train_export_pkg(const struct train_model *m, const struct train_opts *o,
                         const struct train_result *r, const struct pemn_seckey *key,
                         const char *name, const char *version, uint64_t release, const char *path,
                         struct pemn_err *err)
{
    pemn_builder *b = NULL;
    struct train_meta meta;
    memset(&meta, 0, sizeof meta);
    uint8_t *mask = NULL;
    struct tensor_ref *t = calloc(MAX_TENSORS, sizeof *t);
    if (!t)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    pemn_rc rc = pemn_builder_new(name, version, release, &b, err);
    if (rc)
        goto out;
    rc = pemn_builder_set_mask_encoding(b, o->mask_encoding);
    if (!rc)
        rc = pemn_builder_set_strategy(b, m->masked ? train_strategy_name(m->strategy) : "dense");
    if (!rc && m->masked)
        rc = pemn_builder_set_density(b, (float)m->density);
    if (rc) {
        proto_err(err, rc, PEMN_NO_OFFSET, "cannot set strategy/density");
        goto out;
    }
    /* The package's tensor records carry the seeds and scales already. */
    rc = train_meta_build(m, o, r, 0, &meta, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < meta.n; i++) {
        rc = pemn_builder_add_meta(b, meta.keys[i], meta.values[i]);
        if (rc) {
            proto_err(err, rc, PEMN_NO_OFFSET, "cannot add metadata %s", meta.keys[i]);
            goto out;
        }
    }
    uint32_t ids[TRAIN_MAX_LAYERS];
    for (size_t j = 0; j < m->protos.n; j++) {
        const struct train_proto *p = &m->protos.p[j];
        rc = pemn_builder_add_proto_seeded(b, p->gen, p->seed, p->scale, p->length, &ids[j]);
        if (rc) {
            proto_err(err, rc, PEMN_NO_OFFSET, "cannot add prototype %zu", j);
            goto out;
        }
    }
    size_t nt = list_tensors(m, 0, t, MAX_TENSORS);
    for (size_t i = 0; i < nt; i++) {
        if (t[i].masked) {
            const struct train_layer *l = t[i].masked;
            uint64_t n = (uint64_t)l->in_dim * l->out_dim;
            free(mask);
            mask = malloc(n);
            if (!mask) {
                rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
                goto out;
            }
            rc = pemn_topk_mask(l->scores, n, l->density, mask);
            if (rc) {
                proto_err(err, rc, PEMN_NO_OFFSET, "top-k of %s failed", t[i].name);
                goto out;
            }
            rc = pemn_builder_add_masked(b, t[i].name, 2, t[i].shape, ids[l->proto], l->offset,
                                         l->scale, mask, err);
        } else {
            uint64_t numel = t[i].ndim == 2 ? t[i].shape[0] * t[i].shape[1] : t[i].shape[0];
            rc = pemn_builder_add_dense(b, t[i].name, PEMN_DT_F32, t[i].ndim, t[i].shape, t[i].data,
                                        numel * sizeof(float), err);
        }
        if (rc)
            goto out;
    }
    rc = pemn_builder_write_file(b, key, path, err);
out:
    free(mask);
    free(t);
    train_meta_free(&meta);
    pemn_builder_free(b);
    return rc;
}

pemn_rc train_export_safetensors(const struct train_model *m, const struct train_opts *o,
                                 const struct train_result *r, const char *path,
                                 struct pemn_err *err)
{
    pemn_st_writer *w = NULL;
    struct train_meta meta;
    memset(&meta, 0, sizeof meta);
    struct tensor_ref *t = calloc(MAX_TENSORS, sizeof *t);
    if (!t)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    pemn_rc rc = pemn_st_writer_new(&w);
    if (rc) {
        proto_err(err, rc, PEMN_NO_OFFSET, "out of memory");
        goto out;
    }
    rc = train_meta_build(m, o, r, 1, &meta, err);
    if (rc)
        goto out;
    for (size_t i = 0; i < meta.n && !rc; i++)
        rc = pemn_st_writer_add_meta(w, meta.keys[i], meta.values[i]);
    if (rc) {
        proto_err(err, rc, PEMN_NO_OFFSET, "cannot add metadata");
        goto out;
    }
    size_t nt = list_tensors(m, 1, t, MAX_TENSORS);
    for (size_t i = 0; i < nt; i++) {
        uint64_t numel = t[i].ndim == 2 ? t[i].shape[0] * t[i].shape[1] : t[i].shape[0];
        rc = pemn_st_writer_add(w, t[i].name, PEMN_DT_F32, t[i].ndim, t[i].shape, t[i].data,
                                numel * sizeof(float), err);
        if (rc)
            goto out;
    }
    if (m->optim.n && (rc = train_optim_export(&m->optim, m->net, w, err)) != PEMN_OK)
        goto out;
    rc = pemn_st_writer_write_file(w, path, err);
out:
    free(t);
    train_meta_free(&meta);
    pemn_st_writer_free(w);
    return rc;
}
