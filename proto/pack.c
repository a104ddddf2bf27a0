/*
 * proto/pack.c — checkpoint (safetensors) to signed package: layer roles, prototype
 * detection (pemn/pack.h explains the strategies), then building.
 *
 * Everything compares float BITS: -0.0 and 0.0 differ, and so do NaN payloads. A layer is
 * accepted only when scale * proto[i mod d_v], computed as the expander computes it (one
 * binary32 multiply), gives back every weight exactly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <pemn/builder.h>
#include <pemn/gen.h>
#include <pemn/pack.h>
#include <pemn/pkg.h>

#include "proto/err.h"

/* ---- names ------------------------------------------------------------------------------- */
static const char *const strategy_names[] = {
    [PEMN_PACK_AUTO] = "auto", [PEMN_PACK_ONE_LAYER] = "one-layer", [PEMN_PACK_MP] = "mp",
    [PEMN_PACK_RP] = "rp",     [PEMN_PACK_MASK] = "mask",           [PEMN_PACK_DENSE] = "dense",
};

const char *pemn_pack_strategy_name(enum pemn_pack_strategy s)
{
    if ((unsigned)s >= sizeof strategy_names / sizeof strategy_names[0])
        return NULL;
    return strategy_names[s];
}

pemn_rc pemn_pack_strategy_parse(const char *name, enum pemn_pack_strategy *out)
{
    if (!name || !out)
        return PEMN_EINVAL;
    for (unsigned i = 0; i < PEMN_PACK_DENSE; i++)
        if (!strcmp(name, strategy_names[i])) {
            *out = (enum pemn_pack_strategy)i;
            return PEMN_OK;
        }
    return PEMN_EINVAL;
}

void pemn_pack_opts_init(struct pemn_pack_opts *o)
{
    memset(o, 0, sizeof *o);
    o->release = 1;
    o->density = 0.0; /* the checkpoint's pemn.density, else PEMN_PACK_DEFAULT_DENSITY */
    o->strategy = PEMN_PACK_AUTO;
}

void pemn_pack_report_free(struct pemn_pack_report *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; i < r->n_layers; i++)
        free(r->layers[i].name);
    free(r->layers);
    free(r->protos);
    memset(r, 0, sizeof *r);
}

/* ---- float bits ---------------------------------------------------------------------------- */
static inline uint32_t bits_at(const uint8_t *w, uint64_t i)
{
    uint32_t b;
    memcpy(&b, w + 4 * i, sizeof b);
    return b;
}

static inline uint32_t fbits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static inline float bits_float(uint32_t b)
{
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

/* Shortest period p of the n words at w: w[i] == w[i mod p] for all i < n. Prefix function,
 * linear time, one uint32 per element. */
static pemn_rc shortest_period(const uint8_t *w, uint64_t n, uint64_t *period, struct pemn_err *err)
{
    if (n <= 1) {
        *period = n;
        return PEMN_OK;
    }
    if (n > UINT32_MAX)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "layer of %llu weights is too big",
                         (unsigned long long)n);
    uint32_t *pi = malloc(n * sizeof *pi);
    if (!pi)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory (period of %llu)",
                         (unsigned long long)n);
    pi[0] = 0;
    for (uint64_t i = 1; i < n; i++) {
        uint32_t k = pi[i - 1];
        uint32_t c = bits_at(w, i);
        while (k > 0 && c != bits_at(w, k))
            k = pi[k - 1];
        if (c == bits_at(w, k))
            k++;
        pi[i] = k;
    }
    *period = n - pi[n - 1];
    free(pi);
    return PEMN_OK;
}

/* First i < n where bits(s * P[i mod d]) != bits(w[i]), or n when the layer is reproduced. */
static uint64_t tile_mismatch(const uint8_t *w, uint64_t n, const float *P, uint64_t d, float s)
{
    uint64_t j = 0;
    for (uint64_t i = 0; i < n; i++) {
        float v = s * P[j];
        if (fbits(v) != bits_at(w, i))
            return i;
        if (++j == d)
            j = 0;
    }
    return n;
}

/* Finds a scale reproducing w from P: 1.0 first, then w/P at the first usable element and
 * its neighbouring floats. Returns 1 and *s on success; 0 and *bad (the furthest first
 * mismatch over the candidates) otherwise. */
static int find_scale(const uint8_t *w, uint64_t n, const float *P, uint64_t d, float *s,
                      uint64_t *bad)
{
    float cand[8];
    int nc = 0;
    cand[nc++] = 1.0f;
    uint64_t lim = n < d ? n : d;
    for (uint64_t j = 0; j < lim; j++) {
        float wj = bits_float(bits_at(w, j)), pj = P[j];
        if (pj == 0.0f || !isfinite(pj) || !isfinite(wj))
            continue;
        float r = wj / pj;
        float rd = (float)((double)wj / (double)pj);
        float down = r, up = r;
        cand[nc++] = r;
        if (fbits(rd) != fbits(r))
            cand[nc++] = rd;
        for (int k = 0; k < 2; k++) {
            down = nextafterf(down, -INFINITY);
            up = nextafterf(up, INFINITY);
            cand[nc++] = down;
            cand[nc++] = up;
        }
        break;
    }
    uint64_t best = 0;
    for (int c = 0; c < nc; c++) {
        if (c > 0 && fbits(cand[c]) == fbits(1.0f))
            continue;
        uint64_t m = tile_mismatch(w, n, P, d, cand[c]);
        if (m == n) {
            *s = cand[c];
            return 1;
        }
        if (m > best)
            best = m;
    }
    *bad = best;
    return 0;
}

/* ---- layer roles ----------------------------------------------------------------------------- */
struct ctx {
    const pemn_st *st;
    const struct pemn_pack_opts *opts; /* the caller's, or `eff` */
    struct pemn_pack_opts eff;         /* the options completed from checkpoint metadata */
    uint8_t (*meta_seeds)[32];
    struct pemn_pack_report *r;
    uint32_t *masked; /* indices into r->layers of the masked layers */
    uint32_t n_masked;
    uint32_t *aux; /* per layer: checkpoint index of its scores/mask tensor */
};

static const uint8_t *layer_data(const struct ctx *c, uint32_t l)
{
    struct pemn_st_tensor t;
    if (pemn_st_tensor(c->st, c->r->layers[l].st_index, &t) != PEMN_OK)
        return NULL;
    return t.data;
}

static int same_shape(const struct pemn_st_tensor *a, const struct pemn_st_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (uint32_t i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

/* Looks up base + suffix in the checkpoint. */
static pemn_rc find_sibling(const pemn_st *st, const char *name, size_t base_len,
                            const char *suffix, uint32_t *idx, int *found)
{
    size_t sl = strlen(suffix);
    char *nm = malloc(base_len + sl + 1);
    if (!nm)
        return PEMN_ENOMEM;
    memcpy(nm, name, base_len);
    memcpy(nm + base_len, suffix, sl + 1);
    *found = pemn_st_find(st, nm, idx) == PEMN_OK;
    free(nm);
    return PEMN_OK;
}

static pemn_rc classify(struct ctx *c, struct pemn_err *err)
{
    const pemn_st *st = c->st;
    uint32_t n = pemn_st_count(st);
    uint8_t *consumed = calloc(n ? n : 1, 1);
    uint32_t *aux = malloc((n ? n : 1) * sizeof *aux);
    int *from = calloc(n ? n : 1, sizeof *from);
    pemn_rc rc = PEMN_OK;
    if (!consumed || !aux || !from) {
        rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        goto out;
    }
    for (uint32_t i = 0; i < n; i++) {
        struct pemn_st_tensor t;
        if ((rc = pemn_st_tensor(st, i, &t)) != PEMN_OK) {
            proto_err(err, rc, PEMN_NO_OFFSET, "cannot read tensor %u", i);
            goto out;
        }
        size_t len = strlen(t.name);
        static const char wsuf[] = ".weight";
        if (len < sizeof wsuf - 1 || strcmp(t.name + len - (sizeof wsuf - 1), wsuf) != 0)
            continue;
        size_t base = len - (sizeof wsuf - 1);
        uint32_t si = 0, mi = 0;
        int has_s = 0, has_m = 0;
        if ((rc = find_sibling(st, t.name, base, ".scores", &si, &has_s)) != PEMN_OK ||
            (rc = find_sibling(st, t.name, base, ".mask", &mi, &has_m)) != PEMN_OK) {
            proto_err(err, rc, PEMN_NO_OFFSET, "out of memory");
            goto out;
        }
        if (!has_s && !has_m)
            continue;
        if (has_s && has_m) {
            rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                           "'%s' has both a .scores and a .mask sibling: which one masks it "
                           "is ambiguous",
                           t.name);
            goto out;
        }
        struct pemn_st_tensor a;
        uint32_t ai = has_s ? si : mi;
        if ((rc = pemn_st_tensor(st, ai, &a)) != PEMN_OK)
            goto out;
        if (!same_shape(&t, &a)) {
            rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                           "'%s' and '%s' have different shapes", t.name, a.name);
            goto out;
        }
        if (t.dtype != PEMN_DT_F32) {
            rc = proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET,
                           "masked weight '%s' is %s: masked weights must be F32", t.name,
                           pemn_dtype_name(t.dtype));
            goto out;
        }
        if (has_s && a.dtype != PEMN_DT_F32) {
            rc = proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET,
                           "scores '%s' are %s: scores must be F32", a.name,
                           pemn_dtype_name(a.dtype));
            goto out;
        }
        if (has_m && a.dtype != PEMN_DT_U8 && a.dtype != PEMN_DT_BOOL && a.dtype != PEMN_DT_I8) {
            rc = proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET,
                           "mask '%s' is %s: masks must be U8, BOOL or I8", a.name,
                           pemn_dtype_name(a.dtype));
            goto out;
        }
        consumed[ai] = 1;
        if (t.numel == 0)
            continue; /* nothing to mask: stored dense */
        aux[i] = ai;
        from[i] = has_s ? PEMN_PACK_FROM_SCORES : PEMN_PACK_FROM_MASK;
    }

    struct pemn_pack_report *r = c->r;
    r->layers = calloc(n ? n : 1, sizeof *r->layers);
    c->masked = malloc((n ? n : 1) * sizeof *c->masked);
    c->aux = malloc((n ? n : 1) * sizeof *c->aux);
    if (!r->layers || !c->masked || !c->aux) {
        rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        goto out;
    }
    /* a `pemn train --checkpoint` file carries optimizer state (docs/RESULTS.md): not part
     * of the network */
    int has_optim = pemn_st_meta_get(st, "pemn.optim") != NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (consumed[i])
            continue;
        struct pemn_st_tensor t;
        if ((rc = pemn_st_tensor(st, i, &t)) != PEMN_OK)
            goto out;
        if (has_optim && strncmp(t.name, "_optim.", 7) == 0)
            continue;
        struct pemn_pack_layer *L = &r->layers[r->n_layers];
        L->name = strdup(t.name);
        if (!L->name) {
            rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
            goto out;
        }
        L->dtype = t.dtype;
        L->ndim = t.ndim;
        memcpy(L->shape, t.shape, sizeof L->shape);
        L->numel = t.numel;
        L->st_index = i;
        L->masked = from[i] != 0;
        L->mask_from = from[i];
        L->scale = 1.0f;
        r->n_params += t.numel;
        if (L->masked) {
            c->aux[r->n_layers] = aux[i];
            c->masked[c->n_masked++] = r->n_layers;
            r->n_masked_params += t.numel;
        }
        r->n_layers++;
    }
out:
    free(consumed);
    free(aux);
    free(from);
    return rc;
}

/* ---- strategies ------------------------------------------------------------------------------ */
/* A failure: which layer did not fit which reference, and where. */
struct miss {
    int hit; /* a layer did not fit (the try_ functions then return PEMN_EUNSUPPORTED) */
    uint32_t layer, ref, proto;
    uint64_t at, d_v;
    int same_shape_group;
};

static size_t seed_count(const struct pemn_pack_opts *o)
{
    return !o->seeded ? 0 : (o->n_seeds ? o->n_seeds : 1);
}

static const uint8_t *seed_at(const struct pemn_pack_opts *o, size_t k)
{
    return o->n_seeds ? o->seeds[k] : o->seed;
}

/* seed NULL: an explicit prototype (the first d_v weights of layer `ref`). */
static pemn_rc add_proto(struct pemn_pack_report *r, uint64_t d_v, const uint8_t *seed,
                         uint32_t ref, uint32_t *id, struct pemn_err *err)
{
    void *p = realloc(r->protos, (r->n_protos + 1) * sizeof *r->protos);
    if (!p)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    r->protos = p;
    struct pemn_pack_proto *pr = &r->protos[r->n_protos];
    memset(pr, 0, sizeof *pr);
    pr->d_v = d_v;
    pr->seeded = seed != NULL;
    pr->ref_layer = ref;
    if (seed)
        memcpy(pr->seed, seed, sizeof pr->seed);
    *id = r->n_protos++;
    if (!seed)
        r->proto_values += d_v;
    return PEMN_OK;
}

/* Values of prototype `pr` as an aligned float array (malloc'ed). */
static pemn_rc proto_values(const struct ctx *c, const struct pemn_pack_proto *pr, float **out,
                            struct pemn_err *err)
{
    float *v = malloc(pr->d_v * sizeof *v);
    if (!v)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory (prototype of %llu)",
                         (unsigned long long)pr->d_v);
    if (pr->seeded) {
        pemn_rc rc = pemn_gen_fill(c->opts->generator, pr->seed, 1.0f, 0, v, pr->d_v);
        if (rc != PEMN_OK) {
            free(v);
            return proto_err(err, rc, PEMN_NO_OFFSET, "generator %u: %s", c->opts->generator,
                             pemn_strerror(rc));
        }
    } else {
        memcpy(v, layer_data(c, pr->ref_layer), pr->d_v * sizeof *v);
    }
    *out = v;
    return PEMN_OK;
}

/* Fits every layer in `ls` (n of them) to prototype `id`: finds each scale. When a layer
 * does not fit: *miss filled, PEMN_EUNSUPPORTED (callers turn it into a message). */
static pemn_rc fit_layers(struct ctx *c, uint32_t id, const uint32_t *ls, uint32_t n,
                          struct miss *miss, struct pemn_err *err)
{
    struct pemn_pack_report *r = c->r;
    float *P = NULL;
    pemn_rc rc = proto_values(c, &r->protos[id], &P, err);
    if (rc != PEMN_OK)
        return rc;
    for (uint32_t k = 0; k < n; k++) {
        struct pemn_pack_layer *L = &r->layers[ls[k]];
        uint64_t bad = 0;
        float s = 1.0f;
        if (!find_scale(layer_data(c, ls[k]), L->numel, P, r->protos[id].d_v, &s, &bad)) {
            *miss = (struct miss){1, ls[k], r->protos[id].ref_layer, id, bad, r->protos[id].d_v, 0};
            free(P);
            return PEMN_EUNSUPPORTED;
        }
        L->proto = id;
        L->offset = 0;
        L->scale = s;
    }
    free(P);
    return PEMN_OK;
}

/* One shared prototype (rp, mp; explicit or seeded). */
static pemn_rc try_shared(struct ctx *c, int full, struct miss *miss, struct pemn_err *err)
{
    struct pemn_pack_report *r = c->r;
    uint32_t ref = c->masked[0];
    for (uint32_t k = 1; k < c->n_masked; k++)
        if (r->layers[c->masked[k]].numel > r->layers[ref].numel)
            ref = c->masked[k];
    uint64_t n = r->layers[ref].numel, d = n;
    pemn_rc rc;
    if (!full && (rc = shortest_period(layer_data(c, ref), n, &d, err)) != PEMN_OK)
        return rc;
    uint32_t id;
    const uint8_t *seed = c->opts->seeded ? seed_at(c->opts, 0) : NULL;
    if ((rc = add_proto(r, d, seed, ref, &id, err)) != PEMN_OK)
        return rc;
    return fit_layers(c, id, c->masked, c->n_masked, miss, err);
}

static int shape_cmp_layers(const struct pemn_pack_layer *a, const struct pemn_pack_layer *b)
{
    if (a->ndim != b->ndim)
        return a->ndim < b->ndim ? -1 : 1;
    for (uint32_t i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return a->shape[i] < b->shape[i] ? -1 : 1;
    return 0;
}

/* Sorts layer pointers by shape, then by position (the layers are one array), so that no
 * state outside the call is needed. */
static int by_shape_then_index(const void *x, const void *y)
{
    const struct pemn_pack_layer *a = *(const struct pemn_pack_layer *const *)x;
    const struct pemn_pack_layer *b = *(const struct pemn_pack_layer *const *)y;
    int s = shape_cmp_layers(a, b);
    if (s)
        return s;
    return a < b ? -1 : (a > b);
}

/* Groups the masked layers: by shape (one-layer) or each alone (mask). order[] (n_masked)
 * receives the masked layers with each group contiguous; first[layer] (n_layers) the
 * group's first layer in checkpoint order; *n_groups their number. */
static pemn_rc group_layers(struct ctx *c, int per_layer, uint32_t *order, uint32_t *first,
                            uint32_t *n_groups, struct pemn_err *err)
{
    struct pemn_pack_report *r = c->r;
    uint32_t nm = c->n_masked, ng = 0;
    memcpy(order, c->masked, nm * sizeof *order);
    if (!per_layer) {
        const struct pemn_pack_layer **ptrs = malloc(nm * sizeof *ptrs);
        if (!ptrs)
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        for (uint32_t k = 0; k < nm; k++)
            ptrs[k] = &r->layers[order[k]];
        qsort(ptrs, nm, sizeof *ptrs, by_shape_then_index);
        for (uint32_t k = 0; k < nm; k++)
            order[k] = (uint32_t)(ptrs[k] - r->layers);
        free(ptrs);
    }
    for (uint32_t k = 0; k < nm; k++) {
        uint32_t l = order[k];
        if (k > 0 && !per_layer && !shape_cmp_layers(&r->layers[order[k - 1]], &r->layers[l])) {
            first[l] = first[order[k - 1]];
        } else {
            first[l] = l;
            ng++;
        }
    }
    *n_groups = ng;
    return PEMN_OK;
}

static pemn_rc count_groups(struct ctx *c, int per_layer, uint32_t *n_groups, struct pemn_err *err)
{
    uint32_t *order = malloc(c->n_masked * sizeof *order);
    uint32_t *first = malloc(c->r->n_layers * sizeof *first);
    pemn_rc rc = order && first ? group_layers(c, per_layer, order, first, n_groups, err)
                                : proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    free(order);
    free(first);
    return rc;
}

/* One prototype per distinct shape (one-layer), or per layer (mask); seeded when the
 * options carry one seed per group. */
static pemn_rc try_grouped(struct ctx *c, int per_layer, struct miss *miss, struct pemn_err *err)
{
    struct pemn_pack_report *r = c->r;
    const struct pemn_pack_opts *o = c->opts;
    uint32_t nm = c->n_masked, ng = 0;
    uint32_t *order = malloc(nm * sizeof *order);
    uint32_t *first = malloc(r->n_layers * sizeof *first); /* layer -> its group's first */
    uint32_t *gid = malloc(r->n_layers * sizeof *gid);     /* first layer -> proto id */
    uint32_t *gpos = malloc(r->n_layers * sizeof *gpos);   /* first layer -> start in order */
    pemn_rc rc = PEMN_OK;
    if (!order || !first || !gid || !gpos) {
        rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        goto out;
    }
    if ((rc = group_layers(c, per_layer, order, first, &ng, err)) != PEMN_OK)
        goto out;
    if (o->seeded && seed_count(o) != ng) {
        rc = proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                       "strategy %s needs %u seeds (one per %s), %zu given",
                       per_layer ? "mask" : "one-layer", ng,
                       per_layer ? "masked layer" : "distinct layer shape", seed_count(o));
        goto out;
    }
    /* prototypes in checkpoint order of their first layer */
    for (uint32_t k = 0, g = 0; k < nm; k++) {
        uint32_t l = c->masked[k];
        if (first[l] != l)
            continue;
        uint64_t d = 0;
        if ((rc = shortest_period(layer_data(c, l), r->layers[l].numel, &d, err)) != PEMN_OK)
            goto out;
        const uint8_t *seed = o->seeded ? seed_at(o, g) : NULL;
        if ((rc = add_proto(r, d, seed, l, &gid[l], err)) != PEMN_OK)
            goto out;
        g++;
    }
    /* where each group starts in `order` (groups are contiguous there) */
    for (uint32_t k = 0; k < nm; k++)
        if (first[order[k]] == order[k])
            gpos[order[k]] = k;
    /* fit the groups in checkpoint order, so a failure names the earliest layer */
    for (uint32_t j = 0; j < nm; j++) {
        uint32_t l = c->masked[j];
        if (first[l] != l)
            continue;
        uint32_t k = gpos[l], e = k + 1;
        while (e < nm && first[order[e]] == l)
            e++;
        rc = fit_layers(c, gid[l], order + k, e - k, miss, err);
        if (rc != PEMN_OK) {
            miss->same_shape_group = miss->hit;
            goto out;
        }
    }
out:
    free(order);
    free(first);
    free(gid);
    free(gpos);
    return rc;
}

static void reset_protos(struct pemn_pack_report *r)
{
    free(r->protos);
    r->protos = NULL;
    r->n_protos = 0;
    r->proto_values = 0;
}

static void describe_miss(const struct ctx *c, const struct miss *m, char *buf, size_t cap)
{
    const struct pemn_pack_report *r = c->r;
    const char *name = r->layers[m->layer].name, *ref = r->layers[m->ref].name;
    unsigned long long d = m->d_v, at = m->at;
    if (c->opts->seeded)
        snprintf(buf, cap, "'%.60s' differs from scale * %s(seed %u) (d_v %llu) at element %llu",
                 name, pemn_gen_name(c->opts->generator), m->proto, d, at);
    else if (m->layer == m->ref)
        snprintf(buf, cap, "'%.60s' does not repeat (d_v %llu) at element %llu", name, d, at);
    else if (m->same_shape_group)
        snprintf(buf, cap, "'%.60s' differs from same-shape '%.60s' (d_v %llu) at element %llu",
                 name, ref, d, at);
    else
        snprintf(buf, cap, "'%.60s' differs from the tiling of '%.60s' (d_v %llu) at element %llu",
                 name, ref, d, at);
}

/* Runs one forced strategy; a layer that does not fit becomes a message naming it. */
static pemn_rc run_forced(struct ctx *c, enum pemn_pack_strategy want, struct pemn_err *err)
{
    struct miss m = {0};
    char d[PEMN_ERR_MSG_MAX];
    pemn_rc rc = (want == PEMN_PACK_MP || want == PEMN_PACK_RP)
                     ? try_shared(c, want == PEMN_PACK_MP, &m, err)
                     : try_grouped(c, want == PEMN_PACK_MASK, &m, err);
    if (rc != PEMN_OK && m.hit) {
        describe_miss(c, &m, d, sizeof d);
        return proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET, "strategy %s: %s",
                         pemn_pack_strategy_name(want), d);
    }
    if (rc == PEMN_OK)
        c->r->strategy = want;
    return rc;
}

static pemn_rc detect(struct ctx *c, struct pemn_err *err)
{
    const struct pemn_pack_opts *o = c->opts;
    struct pemn_pack_report *r = c->r;
    enum pemn_pack_strategy want = o->strategy;
    size_t ns = seed_count(o);
    pemn_rc rc;

    if (c->n_masked == 0) {
        if (o->seeded)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                             "a seed was given but the checkpoint has no masked layer "
                             "(X.weight with X.scores or X.mask)");
        r->strategy = PEMN_PACK_DENSE;
        return PEMN_OK;
    }
    if (want != PEMN_PACK_AUTO && want != PEMN_PACK_MP && want != PEMN_PACK_RP &&
        want != PEMN_PACK_ONE_LAYER && want != PEMN_PACK_MASK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "unknown strategy %d", (int)want);
    if (ns > 1 && (want == PEMN_PACK_MP || want == PEMN_PACK_RP))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "strategy %s has one shared prototype: give one seed, not %zu",
                         pemn_pack_strategy_name(want), ns);
    if (want != PEMN_PACK_AUTO)
        return run_forced(c, want, err);

    if (ns > 1) {
        /* several seeds: one per shape (one-layer) or one per layer (mask) */
        uint32_t shapes = 0;
        if ((rc = count_groups(c, 0, &shapes, err)) != PEMN_OK)
            return rc;
        if (ns == shapes)
            return run_forced(c, PEMN_PACK_ONE_LAYER, err);
        if (ns == c->n_masked)
            return run_forced(c, PEMN_PACK_MASK, err);
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "%zu seeds fit no strategy: one-layer needs %u (distinct shapes), mask "
                         "%u (masked layers), rp/mp 1",
                         ns, shapes, c->n_masked);
    }

    /* auto: one shared prototype is never larger than one per shape (the longest layer's
     * group alone needs the same period), so try it first. */
    struct miss m1 = {0}, m2 = {0};
    char d1[PEMN_ERR_MSG_MAX], d2[PEMN_ERR_MSG_MAX];
    rc = try_shared(c, 0, &m1, err);
    if (rc == PEMN_OK) {
        uint64_t longest = r->layers[r->protos[0].ref_layer].numel;
        r->strategy = r->protos[0].d_v == longest ? PEMN_PACK_MP : PEMN_PACK_RP;
        return PEMN_OK;
    }
    if (!m1.hit)
        return rc;
    describe_miss(c, &m1, d1, sizeof d1);
    if (o->seeded)
        return proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET, "%s", d1);
    reset_protos(r);
    rc = try_grouped(c, 0, &m2, err);
    if (rc == PEMN_OK) {
        r->strategy = PEMN_PACK_ONE_LAYER;
        return PEMN_OK;
    }
    if (!m2.hit)
        return rc;
    describe_miss(c, &m2, d2, sizeof d2);
    reset_protos(r);
    return proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET,
                     "no prototype tiling fits: rp/mp: %s; one-layer: %s; --strategy mask "
                     "keeps each layer's own values",
                     d1, d2);
}

static pemn_rc check_opts(const struct pemn_pack_opts *o, struct pemn_err *err)
{
    if (!o)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no options");
    if (!(o->density == 0.0 || (o->density > 0.0 && o->density <= 1.0)))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "density %g is outside (0, 1]",
                         o->density);
    if (o->seeded && o->seeds_from_meta)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "seeds given both explicitly and from the checkpoint's metadata");
    if (o->seeded && !pemn_gen_name(o->generator))
        return proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET, "unknown generator %u",
                         o->generator);
    if (o->seeded && o->n_seeds && !o->seeds)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "seed array missing");
    if (o->n_meta && (!o->meta_keys || !o->meta_values))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "metadata arrays missing");
    return PEMN_OK;
}

static void ctx_free(struct ctx *c)
{
    free(c->masked);
    free(c->aux);
    free(c->meta_seeds);
}

/* ---- options from checkpoint metadata (written by `pemn train`) --------------------------- */
static pemn_rc meta_density(const pemn_st *in, double *k, struct pemn_err *err)
{
    const char *v = pemn_st_meta_get(in, "pemn.density");
    if (!v) {
        *k = PEMN_PACK_DEFAULT_DENSITY;
        return PEMN_OK;
    }
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d > 0.0 && d <= 1.0))
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                         "checkpoint metadata pemn.density '%.40s' is not a number in (0, 1]", v);
    *k = d;
    return PEMN_OK;
}

static int unhex32(const char *s, uint8_t out[32])
{
    return s && strlen(s) == 64 && proto_unhex(s, 64, out) == 0 ? 0 : -1;
}

/* pemn.generator plus pemn.protos ([{"seed": hex, ...}, ...], in prototype order) or, without
 * it, pemn.seed: the seeds of the prototypes the checkpoint was trained on. */
static pemn_rc meta_seeds(struct ctx *c, struct pemn_err *err)
{
    const char *gen = pemn_st_meta_get(c->st, "pemn.generator");
    const char *protos = pemn_st_meta_get(c->st, "pemn.protos");
    const char *seed = pemn_st_meta_get(c->st, "pemn.seed");
    struct pemn_pack_opts *o = &c->eff;
    if (!gen || (!protos && !seed))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "the checkpoint names no seeds (metadata pemn.generator with "
                         "pemn.protos or pemn.seed)");
    if (pemn_gen_parse(gen, &o->generator) != PEMN_OK)
        return proto_err(err, PEMN_EUNSUPPORTED, PEMN_NO_OFFSET,
                         "checkpoint metadata pemn.generator '%.40s' is unknown", gen);
    o->seeded = 1;
    o->n_seeds = 0;
    o->seeds = NULL;
    if (!protos) {
        if (unhex32(seed, o->seed))
            return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                             "checkpoint metadata pemn.seed is not 64 hex digits");
        return PEMN_OK;
    }
    json_error_t je;
    json_t *a = json_loads(protos, 0, &je);
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    pemn_rc rc = PEMN_OK;
    if (n == 0 || n > PEMN_MAX_PROTOS) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                       "checkpoint metadata pemn.protos is not a list of 1 to %u prototypes",
                       PEMN_MAX_PROTOS);
        goto out;
    }
    if (!(c->meta_seeds = malloc(n * sizeof *c->meta_seeds))) {
        rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *sd = json_object_get(json_array_get(a, i), "seed");
        if (unhex32(json_string_value(sd), c->meta_seeds[i])) {
            rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                           "checkpoint metadata pemn.protos[%zu] has no 64-hex-digit seed", i);
            goto out;
        }
    }
    memcpy(o->seed, c->meta_seeds[0], sizeof o->seed);
    if (n > 1) {
        o->n_seeds = n;
        o->seeds = (const uint8_t(*)[32])c->meta_seeds;
    }
out:
    json_decref(a);
    return rc;
}

static pemn_rc detect_into(const pemn_st *in, const struct pemn_pack_opts *opts,
                           struct pemn_pack_report *report, struct ctx *c, struct pemn_err *err)
{
    memset(report, 0, sizeof *report);
    memset(c, 0, sizeof *c);
    if (!in)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no checkpoint");
    pemn_rc rc = check_opts(opts, err);
    if (rc != PEMN_OK)
        return rc;
    c->st = in;
    c->eff = *opts;
    c->opts = &c->eff;
    c->r = report;
    if (opts->density > 0.0)
        report->density = opts->density;
    else if ((rc = meta_density(in, &report->density, err)) != PEMN_OK)
        return rc;
    if (opts->seeds_from_meta && (rc = meta_seeds(c, err)) != PEMN_OK)
        return rc;
    if ((rc = classify(c, err)) != PEMN_OK)
        return rc;
    return detect(c, err);
}

pemn_rc pemn_pack_detect(const pemn_st *in, const struct pemn_pack_opts *opts,
                         struct pemn_pack_report *report, struct pemn_err *err)
{
    if (!report)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no report");
    struct ctx c;
    pemn_rc rc = detect_into(in, opts, report, &c, err);
    ctx_free(&c);
    return rc;
}

/* ---- building -------------------------------------------------------------------------------- */
static pemn_rc layer_mask(const struct ctx *c, uint32_t l, uint8_t *mask, uint64_t *kept,
                          struct pemn_err *err)
{
    const struct pemn_pack_layer *L = &c->r->layers[l];
    struct pemn_st_tensor a;
    pemn_rc rc = pemn_st_tensor(c->st, c->aux[l], &a);
    if (rc != PEMN_OK)
        return proto_err(err, rc, PEMN_NO_OFFSET, "cannot read the mask of '%s'", L->name);
    if (L->mask_from == PEMN_PACK_FROM_SCORES) {
        const float *s = a.data;
        float *copy = NULL;
        if ((uintptr_t)a.data % _Alignof(float)) {
            copy = malloc(L->numel * sizeof *copy);
            if (!copy)
                return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
            memcpy(copy, a.data, L->numel * sizeof *copy);
            s = copy;
        }
        rc = pemn_topk_mask(s, L->numel, c->r->density, mask);
        free(copy);
        if (rc != PEMN_OK)
            return proto_err(err, rc, PEMN_NO_OFFSET, "top-k of '%s' failed", a.name);
    } else {
        const uint8_t *m = a.data;
        for (uint64_t i = 0; i < L->numel; i++)
            mask[i] = m[i] != 0;
    }
    uint64_t k = 0;
    for (uint64_t i = 0; i < L->numel; i++)
        k += mask[i];
    *kept = k;
    return PEMN_OK;
}

static pemn_rc build(struct ctx *c, pemn_builder *b, struct pemn_err *err)
{
    struct pemn_pack_report *r = c->r;
    const struct pemn_pack_opts *o = c->opts;
    pemn_rc rc;
    for (uint32_t i = 0; i < r->n_protos; i++) {
        uint32_t id = 0;
        const struct pemn_pack_proto *p = &r->protos[i];
        if (p->seeded) {
            rc = pemn_builder_add_proto_seeded(b, o->generator, p->seed, 1.0f, p->d_v, &id);
        } else {
            float *v = NULL;
            if ((rc = proto_values(c, p, &v, err)) != PEMN_OK)
                return rc;
            rc = pemn_builder_add_proto_values(b, v, p->d_v, &id);
            free(v);
        }
        if (rc != PEMN_OK)
            return proto_err(err, rc, PEMN_NO_OFFSET, "cannot add prototype %u: %s", i,
                             pemn_strerror(rc));
        if (id != i)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "prototype ids out of order");
    }
    uint64_t masked_kept = 0, from_scores = 0;
    for (uint32_t l = 0; l < r->n_layers; l++) {
        struct pemn_pack_layer *L = &r->layers[l];
        struct pemn_st_tensor t;
        if ((rc = pemn_st_tensor(c->st, L->st_index, &t)) != PEMN_OK)
            return proto_err(err, rc, PEMN_NO_OFFSET, "cannot read '%s'", L->name);
        if (!L->masked) {
            rc =
                pemn_builder_add_dense(b, L->name, t.dtype, t.ndim, t.shape, t.data, t.nbytes, err);
            if (rc != PEMN_OK)
                return rc;
            continue;
        }
        uint8_t *mask = malloc(L->numel);
        if (!mask)
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory (mask of %s)",
                             L->name);
        rc = layer_mask(c, l, mask, &L->kept, err);
        if (rc == PEMN_OK)
            rc = pemn_builder_add_masked(b, L->name, L->ndim, L->shape, L->proto, L->offset,
                                         L->scale, mask, err);
        free(mask);
        if (rc != PEMN_OK)
            return rc;
        r->n_kept += L->kept;
        masked_kept += L->kept;
        from_scores += L->mask_from == PEMN_PACK_FROM_SCORES;
    }
    /* density: k for scores; with .mask layers only, the fraction they keep */
    if (r->strategy == PEMN_PACK_DENSE)
        r->density = 0.0;
    else if (!from_scores && r->n_masked_params)
        r->density = (double)masked_kept / (double)r->n_masked_params;
    return PEMN_OK;
}

pemn_rc pemn_pack_safetensors(const pemn_st *in, const struct pemn_pack_opts *opts,
                              const struct pemn_seckey *key, uint8_t **out, size_t *len,
                              struct pemn_pack_report *report, struct pemn_err *err)
{
    struct pemn_pack_report local = {0};
    struct pemn_pack_report *r = report ? report : &local;
    struct ctx c;
    pemn_builder *b = NULL;
    if (!key || !out || !len) {
        memset(r, 0, sizeof *r);
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "missing key or output");
    }
    *out = NULL;
    *len = 0;
    pemn_rc rc = detect_into(in, opts, r, &c, err);
    if (rc != PEMN_OK)
        goto out;
    if (!opts->name || !opts->version) {
        rc = proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "model name and version are required");
        goto out;
    }
    if ((rc = pemn_builder_new(opts->name, opts->version, opts->release, &b, err)) != PEMN_OK)
        goto out;
    if ((rc = pemn_builder_set_mask_encoding(b, opts->mask_encoding)) != PEMN_OK ||
        (rc = pemn_builder_set_strategy(b, pemn_pack_strategy_name(r->strategy))) != PEMN_OK ||
        (opts->created && (rc = pemn_builder_set_created(b, opts->created)) != PEMN_OK)) {
        proto_err(err, rc, PEMN_NO_OFFSET, "cannot set the manifest: %s", pemn_strerror(rc));
        goto out;
    }
    for (uint32_t i = 0; i < pemn_st_meta_count(in); i++) {
        const char *k = NULL, *v = NULL;
        if (pemn_st_meta(in, i, &k, &v) != PEMN_OK)
            continue;
        if ((rc = pemn_builder_add_meta(b, k, v)) != PEMN_OK) {
            proto_err(err, rc, PEMN_NO_OFFSET, "checkpoint metadata '%.64s': %s", k,
                      pemn_strerror(rc));
            goto out;
        }
    }
    for (size_t i = 0; i < opts->n_meta; i++)
        if ((rc = pemn_builder_add_meta(b, opts->meta_keys[i], opts->meta_values[i])) != PEMN_OK) {
            proto_err(err, rc, PEMN_NO_OFFSET, "metadata '%.64s': %s", opts->meta_keys[i],
                      pemn_strerror(rc));
            goto out;
        }
    if ((rc = build(&c, b, err)) != PEMN_OK)
        goto out;
    if ((rc = pemn_builder_set_density(b, (float)r->density)) != PEMN_OK) {
        proto_err(err, rc, PEMN_NO_OFFSET, "density %g refused", r->density);
        goto out;
    }
    rc = pemn_builder_finish(b, key, out, len, err);
out:
    pemn_builder_free(b);
    ctx_free(&c);
    if (!report)
        pemn_pack_report_free(&local);
    return rc;
}
