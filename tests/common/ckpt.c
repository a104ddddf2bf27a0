/*
 * tests/common/ckpt.c — synthetic checkpoints with known structure (see ckpt.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/gen.h>
#include <pemn/safetensors.h>

#include "proto/err.h"
#include "tests/common/ckpt.h"

/* ---- a writer that keeps the buffers it borrows alive ---------------------------------- */
#define MAX_BUFS 128
struct net {
    pemn_st_writer *w;
    void *bufs[MAX_BUFS];
    int nbufs;
    uint64_t rng;
    int failed;
};

static void *keep(struct net *n, size_t size)
{
    if (n->nbufs == MAX_BUFS) {
        n->failed = 1;
        return NULL;
    }
    void *p = calloc(size ? size : 1, 1);
    if (!p) {
        n->failed = 1;
        return NULL;
    }
    n->bufs[n->nbufs++] = p;
    return p;
}

static void net_free(struct net *n)
{
    for (int i = 0; i < n->nbufs; i++)
        free(n->bufs[i]);
    pemn_st_writer_free(n->w);
}

static void add(struct net *n, const char *name, pemn_dtype dt, uint32_t ndim,
                const uint64_t *shape, const void *data, uint64_t nbytes)
{
    if (n->failed || !data)
        return;
    struct pemn_err e;
    if (pemn_st_writer_add(n->w, name, dt, ndim, shape, data, nbytes, &e) != PEMN_OK) {
        fprintf(stderr, "ckpt: add %s: %s\n", name, e.msg);
        n->failed = 1;
    }
}

static uint64_t rnd(struct net *n)
{
    n->rng ^= n->rng << 13;
    n->rng ^= n->rng >> 7;
    n->rng ^= n->rng << 17;
    return n->rng;
}

/* uniform on [-1, 1) */
static float rndf(struct net *n)
{
    return (float)((double)(rnd(n) >> 40) / 8388608.0 - 1.0);
}

static float *rnd_vec(struct net *n, uint64_t len)
{
    float *v = keep(n, len * sizeof *v);
    if (v)
        for (uint64_t i = 0; i < len; i++)
            v[i] = rndf(n);
    return v;
}

static void add_f32(struct net *n, const char *name, uint32_t ndim, const uint64_t *shape,
                    const float *v)
{
    uint64_t numel = 1;
    for (uint32_t i = 0; i < ndim; i++)
        numel *= shape[i];
    add(n, name, PEMN_DT_F32, ndim, shape, v, numel * 4);
}

/* ---- the networks ---------------------------------------------------------------------- */
struct mlayer {
    const char *base;
    uint32_t ndim;
    uint64_t shape[4];
    int use_mask; /* X.mask (U8) instead of X.scores */
};
static const struct mlayer small_net[] = {
    {"conv1", 4, {8, 1, 3, 3}, 0},
    {"fc1", 2, {16, 72}, 0},
    {"fc2", 2, {10, 16}, 1},
    {"fc3", 2, {10, 16}, 0},
};
static const struct mlayer demo_net[] = {
    {"fc1", 2, {256, 784}, 0},
    {"fc2", 2, {128, 256}, 0},
    {"fc3", 2, {10, 128}, 0},
};

static uint64_t numel_of(const struct mlayer *l)
{
    uint64_t n = 1;
    for (uint32_t i = 0; i < l->ndim; i++)
        n *= l->shape[i];
    return n;
}

void ckpt_seed(unsigned g, uint8_t seed[32])
{
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i + 0x40 * g);
}

/* Fills layer `li`'s weights for `kind`. `st` carries values shared between layers. */
struct shared {
    float *u;   /* shared prototype */
    float *fc2; /* one-layer: fc2's values, reused by fc3 */
};

static int fill(struct net *n, const char *kind, int li, const struct mlayer *l, float *w,
                struct shared *sh)
{
    uint64_t numel = numel_of(l);
    if (!strcmp(kind, "rp") || !strcmp(kind, "not-tiled") || !strcmp(kind, "rp-scaled")) {
        if (!sh->u && !(sh->u = rnd_vec(n, 37)))
            return -1;
        float s = !strcmp(kind, "rp-scaled") ? ldexpf(1.0f, li - 1) : 1.0f;
        for (uint64_t i = 0; i < numel; i++)
            w[i] = s * sh->u[i % 37];
        if (!strcmp(kind, "not-tiled") && !strcmp(l->base, "fc2"))
            w[100] += 1.0f;
    } else if (!strcmp(kind, "mp")) {
        if (!sh->u && !(sh->u = rnd_vec(n, 16 * 72)))
            return -1;
        memcpy(w, sh->u, numel * sizeof *w);
    } else if (!strcmp(kind, "one-layer")) {
        if (!strcmp(l->base, "fc3")) {
            memcpy(w, sh->fc2, numel * sizeof *w);
        } else {
            uint64_t period = !strcmp(l->base, "fc1") ? 50 : numel;
            float *p = rnd_vec(n, period);
            if (!p)
                return -1;
            for (uint64_t i = 0; i < numel; i++)
                w[i] = p[i % period];
            if (!strcmp(l->base, "fc2"))
                sh->fc2 = w;
        }
    } else if (!strcmp(kind, "mask") || !strcmp(kind, "dense")) {
        for (uint64_t i = 0; i < numel; i++)
            w[i] = rndf(n);
    } else if (!strcmp(kind, "seeded-one-layer")) {
        /* one seed per shape: conv1 seed 0 (d_v 72), fc1 seed 1 (period 50), fc2 and fc3
         * seed 2 (d_v 160), each layer its own scale */
        static const float scales[] = {0.05f, 0.3333f, 1.7f, 0.0123f};
        unsigned g = li < 3 ? (unsigned)li : 2;
        uint64_t d = li == 1 ? 50 : numel;
        uint8_t seed[32];
        ckpt_seed(g, seed);
        float *u = keep(n, d * sizeof *u);
        if (!u || pemn_gen_fill(PEMN_GEN_UNIFORM, seed, 1.0f, 0, u, d) != PEMN_OK)
            return -1;
        for (uint64_t i = 0; i < numel; i++)
            w[i] = scales[li] * u[i % d];
    } else if (!strcmp(kind, "seeded") || !strcmp(kind, "demo")) {
        uint64_t d = !strcmp(kind, "demo") ? 1000 : 64;
        uint8_t seed[32];
        ckpt_seed(0, seed);
        if (!sh->u) {
            if (!(sh->u = keep(n, d * sizeof(float))))
                return -1;
            if (pemn_gen_fill(PEMN_GEN_UNIFORM, seed, 1.0f, 0, sh->u, d) != PEMN_OK)
                return -1;
        }
        static const float scales[] = {0.05f, 0.3333f, 1.7f, 0.0123f};
        float s = !strcmp(kind, "demo") ? (float)sqrt(2.0 / (double)l->shape[1]) : scales[li];
        for (uint64_t i = 0; i < numel; i++)
            w[i] = s * sh->u[i % d];
    } else {
        return -1;
    }
    return 0;
}

static int known_kind(const char *k)
{
    static const char *const kinds[] = {"rp",   "rp-scaled",       "mp",        "one-layer",
                                        "mask", "seeded",          "not-tiled", "dense",
                                        "demo", "seeded-one-layer"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(k, kinds[i]))
            return 1;
    return 0;
}

int ckpt_make(const char *kind, uint8_t **out, size_t *len)
{
    if (!known_kind(kind))
        return -1;
    struct net n = {.rng = 0x2545f4914f6cdd1dull};
    if (pemn_st_writer_new(&n.w) != PEMN_OK)
        return -1;
    int demo = !strcmp(kind, "demo"), dense = !strcmp(kind, "dense");
    const struct mlayer *net = demo ? demo_net : small_net;
    int nl = demo ? 3 : 4;
    struct shared sh = {0};
    char name[64];
    for (int li = 0; li < nl && !n.failed; li++) {
        const struct mlayer *l = &net[li];
        uint64_t numel = numel_of(l);
        float *w = keep(&n, numel * sizeof *w);
        if (!w || fill(&n, kind, li, l, w, &sh) != 0) {
            n.failed = 1;
            break;
        }
        snprintf(name, sizeof name, "%s.weight", l->base);
        add_f32(&n, name, l->ndim, l->shape, w);
        if (!dense && l->use_mask) {
            uint8_t *m = keep(&n, numel);
            if (m)
                for (uint64_t i = 0; i < numel; i++)
                    m[i] = (rnd(&n) >> 20) & 1;
            snprintf(name, sizeof name, "%s.mask", l->base);
            add(&n, name, PEMN_DT_U8, l->ndim, l->shape, m, numel);
        } else if (!dense) {
            float *s = rnd_vec(&n, numel);
            snprintf(name, sizeof name, "%s.scores", l->base);
            add_f32(&n, name, l->ndim, l->shape, s);
        }
        uint64_t bshape[1] = {l->shape[0]};
        snprintf(name, sizeof name, "%s.bias", l->base);
        add_f32(&n, name, 1, bshape, rnd_vec(&n, l->shape[0]));
        if (!demo && li == 0) {
            uint64_t s8[1] = {8};
            add_f32(&n, "bn1.running_mean", 1, s8, rnd_vec(&n, 8));
            float *var = rnd_vec(&n, 8);
            if (var)
                for (int i = 0; i < 8; i++)
                    var[i] = fabsf(var[i]) + 0.5f;
            add_f32(&n, "bn1.running_var", 1, s8, var);
            int64_t *nbt = keep(&n, sizeof *nbt);
            if (nbt)
                *nbt = 1234567;
            add(&n, "bn1.num_batches_tracked", PEMN_DT_I64, 0, NULL, nbt, 8);
        }
    }
    if (!n.failed)
        pemn_st_writer_add_meta(n.w, "source", "tests/common/ckpt.c");
    /* the metadata `pemn train` writes: generator, seeds, density */
    if (!n.failed && !strcmp(kind, "seeded")) {
        pemn_st_writer_add_meta(n.w, "pemn.generator", CKPT_GENERATOR);
        pemn_st_writer_add_meta(n.w, "pemn.seed", CKPT_SEED_HEX);
    } else if (!n.failed && !strcmp(kind, "seeded-one-layer")) {
        static const uint64_t plen[3] = {72, 50, 160};
        char protos[512] = "[", hex[65];
        for (unsigned g = 0; g < 3; g++) {
            uint8_t seed[32];
            ckpt_seed(g, seed);
            for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", seed[i]);
            size_t at = strlen(protos);
            snprintf(protos + at, sizeof protos - at, "%s{\"seed\":\"%s\",\"length\":%llu}",
                     g ? "," : "", hex, (unsigned long long)plen[g]);
        }
        strcat(protos, "]");
        pemn_st_writer_add_meta(n.w, "pemn.generator", CKPT_GENERATOR);
        pemn_st_writer_add_meta(n.w, "pemn.protos", protos);
        pemn_st_writer_add_meta(n.w, "pemn.density", "0.3");
    }
    struct pemn_err e;
    int rc = -1;
    if (!n.failed && pemn_st_writer_write_mem(n.w, out, len, &e) == PEMN_OK)
        rc = 0;
    net_free(&n);
    return rc;
}

/* ---- expected expansion ------------------------------------------------------------------ */
static const float *sort_scores;
static int by_rank(const void *x, const void *y)
{
    uint64_t i = *(const uint64_t *)x, j = *(const uint64_t *)y;
    float a = sort_scores[i], b = sort_scores[j];
    int an = isnan(a), bn = isnan(b);
    if (an != bn)
        return an ? 1 : -1;
    if (!an && fabsf(a) != fabsf(b))
        return fabsf(a) > fabsf(b) ? -1 : 1;
    return i < j ? -1 : (i > j);
}

static int ref_topk(const void *scores_raw, uint64_t n, double k, uint8_t *mask)
{
    float *s = malloc(n * sizeof *s + 1);
    uint64_t *idx = malloc(n * sizeof *idx + 1);
    if (!s || !idx) {
        free(s);
        free(idx);
        return -1;
    }
    memcpy(s, scores_raw, n * sizeof *s);
    for (uint64_t i = 0; i < n; i++)
        idx[i] = i;
    sort_scores = s;
    qsort(idx, n, sizeof *idx, by_rank);
    uint64_t drop = (uint64_t)((1.0 - k) * (double)n);
    memset(mask, 0, n);
    for (uint64_t r = 0; r + drop < n; r++)
        mask[idx[r]] = 1;
    free(s);
    free(idx);
    return 0;
}

static int sibling(const pemn_st *st, const char *name, const char *suffix, uint32_t *idx)
{
    char buf[512];
    size_t len = strlen(name);
    if (len < 7 || strcmp(name + len - 7, ".weight") || len > 400)
        return 0;
    snprintf(buf, sizeof buf, "%.*s%s", (int)(len - 7), name, suffix);
    return pemn_st_find(st, buf, idx) == PEMN_OK;
}

static int is_aux(const pemn_st *st, const char *name)
{
    char buf[512];
    size_t len = strlen(name);
    if (len > 400)
        return 0;
    uint32_t idx;
    if (len > 7 && !strcmp(name + len - 7, ".scores")) {
        snprintf(buf, sizeof buf, "%.*s.weight", (int)(len - 7), name);
        return pemn_st_find(st, buf, &idx) == PEMN_OK;
    }
    if (len > 5 && !strcmp(name + len - 5, ".mask")) {
        snprintf(buf, sizeof buf, "%.*s.weight", (int)(len - 5), name);
        return pemn_st_find(st, buf, &idx) == PEMN_OK;
    }
    return 0;
}

int ckpt_expected(const uint8_t *ckpt, size_t len, double k, uint8_t **out, size_t *out_len)
{
    pemn_st *st = NULL;
    struct pemn_err e;
    if (pemn_st_open_mem(ckpt, len, 0, &st, &e) != PEMN_OK)
        return -1;
    struct net n = {0};
    if (pemn_st_writer_new(&n.w) != PEMN_OK) {
        pemn_st_free(st);
        return -1;
    }
    for (uint32_t i = 0; i < pemn_st_count(st) && !n.failed; i++) {
        struct pemn_st_tensor t;
        if (pemn_st_tensor(st, i, &t) != PEMN_OK) {
            n.failed = 1;
            break;
        }
        if (is_aux(st, t.name))
            continue;
        uint32_t si, mi;
        int hs = sibling(st, t.name, ".scores", &si), hm = sibling(st, t.name, ".mask", &mi);
        if ((!hs && !hm) || t.numel == 0) {
            add(&n, t.name, t.dtype, t.ndim, t.shape, t.data, t.nbytes);
            continue;
        }
        struct pemn_st_tensor a;
        uint8_t *mask = keep(&n, t.numel);
        float *w = keep(&n, t.numel * sizeof *w);
        if (!mask || !w || pemn_st_tensor(st, hs ? si : mi, &a) != PEMN_OK) {
            n.failed = 1;
            break;
        }
        if (hs) {
            if (ref_topk(a.data, t.numel, k, mask) != 0)
                n.failed = 1;
        } else {
            for (uint64_t j = 0; j < t.numel; j++)
                mask[j] = ((const uint8_t *)a.data)[j] != 0;
        }
        memcpy(w, t.data, t.numel * sizeof *w);
        /* weight * mask as PyTorch computes it: a dropped negative weight is -0.0 */
        for (uint64_t j = 0; j < t.numel; j++)
            w[j] = w[j] * (float)mask[j];
        add(&n, t.name, PEMN_DT_F32, t.ndim, t.shape, w, t.numel * 4);
    }
    int rc = -1;
    if (!n.failed && pemn_st_writer_write_mem(n.w, out, out_len, &e) == PEMN_OK)
        rc = 0;
    net_free(&n);
    pemn_st_free(st);
    return rc;
}

/* ---- comparison ---------------------------------------------------------------------------- */
int ckpt_compare(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    pemn_st *sa = NULL, *sb = NULL;
    struct pemn_err e;
    int rc = -1;
    if (pemn_st_open_mem(a, alen, 0, &sa, &e) != PEMN_OK) {
        fprintf(stderr, "compare: first file: %s\n", e.msg);
        return -1;
    }
    if (pemn_st_open_mem(b, blen, 0, &sb, &e) != PEMN_OK) {
        fprintf(stderr, "compare: second file: %s\n", e.msg);
        goto out;
    }
    if (pemn_st_count(sa) != pemn_st_count(sb)) {
        fprintf(stderr, "compare: %u tensors vs %u\n", pemn_st_count(sa), pemn_st_count(sb));
        goto out;
    }
    for (uint32_t i = 0; i < pemn_st_count(sa); i++) {
        struct pemn_st_tensor x, y;
        uint32_t j;
        if (pemn_st_tensor(sa, i, &x) != PEMN_OK)
            goto out;
        if (pemn_st_find(sb, x.name, &j) != PEMN_OK || pemn_st_tensor(sb, j, &y) != PEMN_OK) {
            fprintf(stderr, "compare: '%s' missing from the second file\n", x.name);
            goto out;
        }
        if (x.dtype != y.dtype || x.ndim != y.ndim || x.nbytes != y.nbytes ||
            memcmp(x.shape, y.shape, sizeof x.shape) != 0) {
            fprintf(stderr, "compare: '%s': dtype or shape differs\n", x.name);
            goto out;
        }
        if (memcmp(x.data, y.data, x.nbytes) != 0) {
            uint64_t at = 0;
            while (((const uint8_t *)x.data)[at] == ((const uint8_t *)y.data)[at])
                at++;
            fprintf(stderr, "compare: '%s': bytes differ from byte %llu\n", x.name,
                    (unsigned long long)at);
            goto out;
        }
    }
    rc = 0;
out:
    pemn_st_free(sa);
    pemn_st_free(sb);
    return rc;
}

/* ---- command-line mode ---------------------------------------------------------------------- */
static int read_all(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    fclose(f);
    if (!buf)
        return -1;
    *out = buf;
    *len = n;
    return 0;
}

static int write_all(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t w = fwrite(buf, 1, len, f);
    if (fclose(f) != 0 || w != len) {
        perror(path);
        return -1;
    }
    return 0;
}

int ckpt_tool_main(int argc, char **argv)
{
    uint8_t *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    int rc = 1;
    if (argc == 3 && !strcmp(argv[0], "make")) {
        if (ckpt_make(argv[1], &a, &al) != 0) {
            fprintf(stderr, "ckpt: cannot make '%s'\n", argv[1]);
            return 1;
        }
        rc = write_all(argv[2], a, al) ? 1 : 0;
    } else if (argc == 4 && !strcmp(argv[0], "expect")) {
        char *end;
        double k = strtod(argv[2], &end);
        if (*end || read_all(argv[1], &a, &al) != 0 || ckpt_expected(a, al, k, &b, &bl) != 0) {
            fprintf(stderr, "ckpt: cannot compute the expansion of %s\n", argv[1]);
            goto out;
        }
        rc = write_all(argv[3], b, bl) ? 1 : 0;
    } else if (argc == 3 && !strcmp(argv[0], "compare")) {
        if (read_all(argv[1], &a, &al) != 0 || read_all(argv[2], &b, &bl) != 0)
            goto out;
        rc = ckpt_compare(a, al, b, bl) ? 1 : 0;
    } else {
        fprintf(stderr, "usage: make KIND OUT | expect IN K OUT | compare A B\n");
        return 2;
    }
out:
    free(a);
    free(b);
    return rc;
}
