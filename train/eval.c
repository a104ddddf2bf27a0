/*
 * train/eval.c — models for inference out of packages and checkpoints.
 */
#include "train/eval.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/pack.h>

#include "proto/err.h"

typedef pemn_rc (*fetch_fn)(const void *src, const char *name, float *out, uint64_t n,
                            struct pemn_err *err);

struct st_src {
    const pemn_st *st;
    double density; /* for X.scores siblings; 0 when not recorded */
};

static pemn_rc fetch_pkg(const void *src, const char *name, float *out, uint64_t n,
                         struct pemn_err *err)
{
    const pemn_pkg *pkg = src;
    uint32_t idx;
    struct pemn_tensor_info ti;
    if (pemn_pkg_find(pkg, name, &idx) != PEMN_OK)
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "package has no tensor %s", name);
    pemn_rc rc = pemn_pkg_tensor(pkg, idx, &ti);
    if (rc)
        return proto_err(err, rc, PEMN_NO_OFFSET, "tensor %s unreadable", name);
    if (ti.numel != n)
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                         "tensor %s has %llu elements, the architecture needs %llu", name,
                         (unsigned long long)ti.numel, (unsigned long long)n);
    return pemn_pkg_expand(pkg, idx, out, n, err);
}

static pemn_rc fetch_st(const void *src, const char *name, float *out, uint64_t n,
                        struct pemn_err *err)
{
    const struct st_src *s = src;
    uint32_t idx;
    struct pemn_st_tensor t;
    if (pemn_st_find(s->st, name, &idx) != PEMN_OK)
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "checkpoint has no tensor %s", name);
    pemn_rc rc = pemn_st_tensor(s->st, idx, &t);
    if (rc)
        return proto_err(err, rc, PEMN_NO_OFFSET, "tensor %s unreadable", name);
    if (t.dtype != PEMN_DT_F32 || t.numel != n)
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                         "tensor %s: expected F32 with %llu elements", name, (unsigned long long)n);
    memcpy(out, t.data, n * sizeof(float)); /* little-endian host (x86-64, arm64) */
    /* edge-popup checkpoint: weight + scores -> weight masked by top-k of |scores| */
    size_t len = strlen(name);
    if (len > 7 && strcmp(name + len - 7, ".weight") == 0) {
        char sname[PEMN_MAX_NAME + 8];
        snprintf(sname, sizeof sname, "%.*s.scores", (int)(len - 7), name);
        if (pemn_st_find(s->st, sname, &idx) == PEMN_OK) {
            if (!(s->density > 0 && s->density <= 1))
                return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                                 "%s present but no density (pemn.density) recorded", sname);
            rc = pemn_st_tensor(s->st, idx, &t);
            if (rc || t.dtype != PEMN_DT_F32 || t.numel != n)
                return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                                 "%s: expected F32 with %llu elements", sname,
                                 (unsigned long long)n);
            float *scores = malloc(n * sizeof(float));
            uint8_t *mask = malloc(n);
            if (!scores || !mask) {
                free(scores);
                free(mask);
                return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
            }
            memcpy(scores, t.data, n * sizeof(float));
            rc = pemn_topk_mask(scores, n, s->density, mask);
            for (uint64_t i = 0; !rc && i < n; i++)
                if (!mask[i])
                    out[i] = 0.0f;
            free(scores);
            free(mask);
            if (rc)
                return proto_err(err, rc, PEMN_NO_OFFSET, "top-k of %s failed", sname);
        }
    }
    return PEMN_OK;
}

static int get_real(json_t *o, const char *key, double *v)
{
    json_t *j = json_object_get(o, key);
    if (!json_is_number(j))
        return -1;
    *v = json_number_value(j);
    return 0;
}

static const char *get_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static pemn_rc build_model(const char *model_meta, const void *src, fetch_fn fetch,
                           struct train_model **out, struct pemn_err *err)
{
    *out = NULL;
    if (!model_meta)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "no pemn.model metadata: the architecture is unknown (train it "
                         "with pemn train)");
    json_error_t jerr;
    json_t *root = json_loads(model_meta, 0, &jerr);
    pemn_rc rc = PEMN_OK;
    struct train_model *m = NULL;
    if (!root)
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "pemn.model: bad JSON (%s)",
                         jerr.text);
    json_t *input = json_object_get(root, "input");
    json_t *layers = json_object_get(root, "layers");
    json_t *classes = json_object_get(root, "classes");
    json_t *shape = json_object_get(input, "shape");
    const char *type = get_str(root, "type");
    double scale, mean, sd;
    if (!type || strcmp(type, "mlp") != 0 || !json_is_array(layers) || !json_is_array(classes) ||
        !json_is_array(shape) || json_array_size(shape) != 2 || get_real(input, "scale", &scale) ||
        get_real(input, "mean", &mean) || get_real(input, "std", &sd) || !(sd > 0) ||
        !isfinite(scale) || !isfinite(mean)) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                       "pemn.model: missing or invalid type/input/layers/classes");
        goto out;
    }
    json_int_t rows = json_integer_value(json_array_get(shape, 0));
    json_int_t cols = json_integer_value(json_array_get(shape, 1));
    /* the architecture: linear [batchnorm1d] relu ... linear */
    struct train_mlp_spec spec;
    memset(&spec, 0, sizeof spec);
    size_t nl = json_array_size(layers);
    int bias = -1, bn = 0;
    for (size_t i = 0; i < nl; i++) {
        json_t *l = json_array_get(layers, i);
        const char *op = get_str(l, "op");
        if (op && strcmp(op, "linear") == 0) {
            json_int_t in = json_integer_value(json_object_get(l, "in"));
            json_int_t o = json_integer_value(json_object_get(l, "out"));
            int has_bias = json_object_get(l, "bias") != NULL;
            size_t cap = sizeof spec.sizes / sizeof spec.sizes[0];
            if (in <= 0 || o <= 0 || in > TRAIN_MAX_WIDTH || o > TRAIN_MAX_WIDTH ||
                spec.n_sizes + 1 >= cap ||
                (spec.n_sizes && spec.sizes[spec.n_sizes - 1] != (size_t)in) ||
                (bias >= 0 && bias != has_bias)) {
                rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                               "pemn.model: linear layer %zu does not fit", i);
                goto out;
            }
            bias = has_bias;
            if (!spec.n_sizes)
                spec.sizes[spec.n_sizes++] = (size_t)in;
            spec.sizes[spec.n_sizes++] = (size_t)o;
        } else if (op && strcmp(op, "batchnorm1d") == 0) {
            bn = 1;
        } else if (!op || strcmp(op, "relu") != 0) {
            rc = proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET,
                           "pemn.model: unsupported layer op '%s'", op ? op : "?");
            goto out;
        }
    }
    spec.bias = bias > 0;
    spec.batchnorm = bn;
    if (spec.n_sizes < 2 || rows <= 0 || cols <= 0 ||
        (uint64_t)rows * (uint64_t)cols != spec.sizes[0]) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                       "pemn.model: input shape does not match the first layer");
        goto out;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        goto out;
    }
    m->spec = spec;
    rc = train_net_new(&spec, 0, 0, TRAIN_EVAL_BATCH, &m->net, err);
    if (rc)
        goto out;
    if (m->net->n_layers != nl) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                       "pemn.model: layer order not linear[,batchnorm1d],relu,...,linear");
        goto out;
    }
    for (size_t i = 0; i < nl; i++) {
        json_t *jl = json_array_get(layers, i);
        struct train_layer *l = &m->net->layers[i];
        if (strcmp(get_str(jl, "op"), l->vt->op) != 0) {
            rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                           "pemn.model: layer %zu is %s, expected %s", i, get_str(jl, "op"),
                           l->vt->op);
            goto out;
        }
        const char *names[4] = {0};
        float *dst[4] = {0};
        size_t nn = 0;
        uint64_t count = l->out_dim;
        if (strcmp(l->vt->op, "linear") == 0) {
            names[0] = get_str(jl, "weight");
            dst[0] = l->weight;
            if (l->bias) {
                names[1] = get_str(jl, "bias");
                dst[1] = l->bias;
            }
            nn = 2;
        } else if (strcmp(l->vt->op, "batchnorm1d") == 0) {
            const char *keys[] = {"weight", "bias", "running_mean", "running_var"};
            float *d[] = {l->gamma, l->beta, l->run_mean, l->run_var};
            for (size_t k = 0; k < 4; k++) {
                names[k] = get_str(jl, keys[k]);
                dst[k] = d[k];
            }
            nn = 4;
            double eps;
            if (!get_real(jl, "eps", &eps) && eps > 0 && eps < 1)
                l->eps = (float)eps;
        }
        for (size_t k = 0; k < nn; k++) {
            if (!dst[k])
                continue;
            if (!names[k]) {
                rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                               "pemn.model: layer %zu misses a tensor name", i);
                goto out;
            }
            uint64_t n = (k == 0 && strcmp(l->vt->op, "linear") == 0)
                             ? (uint64_t)l->in_dim * l->out_dim
                             : count;
            rc = fetch(src, names[k], dst[k], n, err);
            if (rc)
                goto out;
        }
    }
    size_t nc = json_array_size(classes);
    if (nc != m->net->out_dim) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                       "pemn.model: %zu class names for %zu outputs", nc, m->net->out_dim);
        goto out;
    }
    rc = train_model_set_classes(m, NULL, (uint32_t)nc, err);
    if (rc)
        goto out;
    for (size_t c = 0; c < nc; c++) {
        const char *s = json_string_value(json_array_get(classes, c));
        if (s) {
            char *d = strdup(s);
            if (!d) {
                rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
                goto out;
            }
            free(m->classes[c]);
            m->classes[c] = d;
        }
    }
    train_input_init(&m->input, (uint32_t)rows, (uint32_t)cols, (float)scale, (float)mean,
                     (float)sd);
out:
    json_decref(root);
    if (rc) {
        train_model_free(m);
        return rc;
    }
    *out = m;
    return PEMN_OK;
}

pemn_rc train_model_from_pkg(const pemn_pkg *pkg, struct train_model **out, struct pemn_err *err)
{
    return build_model(pemn_pkg_meta_get(pkg, "pemn.model"), pkg, fetch_pkg, out, err);
}

pemn_rc train_model_from_safetensors(const pemn_st *st, struct train_model **out,
                                     struct pemn_err *err)
{
    struct st_src src = {st, 0.0};
    const char *d = pemn_st_meta_get(st, "pemn.density");
    if (d) {
        char *end;
        src.density = strtod(d, &end);
        if (end == d || *end)
            src.density = 0;
    }
    return build_model(pemn_st_meta_get(st, "pemn.model"), &src, fetch_st, out, err);
}

double train_recorded_accuracy(const char *train_meta_json, uint32_t *n_samples)
{
    if (n_samples)
        *n_samples = 0;
    if (!train_meta_json)
        return -1;
    json_t *t = json_loads(train_meta_json, 0, NULL);
    double v = -1;
    json_int_t c = json_integer_value(json_object_get(t, "test_correct"));
    json_int_t n = json_integer_value(json_object_get(t, "test_samples"));
    if (n > 0 && n <= UINT32_MAX && c >= 0 && c <= n) {
        v = (double)c / (double)n;
        if (n_samples)
            *n_samples = (uint32_t)n;
    }
    json_decref(t);
    return v;
}
