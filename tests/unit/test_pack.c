/* Unit tests: packing checkpoints (pemn/pack.h): strategy detection, exact round trips,
 * refusals. With arguments the binary is the checkpoint tool of tests/common/ckpt.h
 * (used by the shell tests and the demo): test_pack make KIND OUT | expect | compare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pemn/gen.h>
#include <pemn/pack.h>
#include <pemn/pkg.h>
#include <pemn/safetensors.h>

#include "tests/common/ckpt.h"

static struct pemn_seckey sk;
static struct pemn_pubkey pk;

static int setup(void **state)
{
    (void)state;
    return pemn_key_generate(&sk, &pk) == PEMN_OK ? 0 : -1;
}

static void seeded_opts(struct pemn_pack_opts *o)
{
    o->seeded = 1;
    assert_int_equal(pemn_gen_parse(CKPT_GENERATOR, &o->generator), PEMN_OK);
    for (int i = 0; i < 32; i++)
        o->seed[i] = (uint8_t)i;
}

/* Packs `ck` with `o`, verifies, expands to a file and compares it bit for bit with the
 * independently computed expectation. Fills *rep. */
static void round_trip(const uint8_t *ck, size_t cl, struct pemn_pack_opts *o,
                       struct pemn_pack_report *rep)
{
    pemn_st *st = NULL;
    struct pemn_err e = {0};
    assert_int_equal(pemn_st_open_mem(ck, cl, 0, &st, &e), PEMN_OK);
    uint8_t *pkgb = NULL;
    size_t pl = 0;
    pemn_rc rc = pemn_pack_safetensors(st, o, &sk, &pkgb, &pl, rep, &e);
    if (rc != PEMN_OK)
        fprintf(stderr, "pack: %s\n", e.msg);
    assert_int_equal(rc, PEMN_OK);

    pemn_pkg *pkg = NULL;
    assert_int_equal(pemn_pkg_open_mem(pkgb, pl, 0, &pkg, &e), PEMN_OK);
    pemn_keyring *kr = NULL;
    assert_int_equal(pemn_keyring_new(&kr), PEMN_OK);
    assert_int_equal(pemn_keyring_add(kr, &pk), PEMN_OK);
    assert_int_equal(pemn_pkg_verify(pkg, kr, &e), PEMN_OK);
    pemn_keyring_free(kr);

    struct pemn_pkg_info info;
    assert_int_equal(pemn_pkg_info(pkg, &info), PEMN_OK);
    assert_string_equal(info.strategy, pemn_pack_strategy_name(rep->strategy));
    assert_int_equal(info.n_tensors, rep->n_layers);
    assert_int_equal(info.n_protos, rep->n_protos);
    assert_true(fabs((double)info.density - rep->density) < 1e-6);

    char path[] = "/tmp/pemn-test-pack-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(pemn_pkg_write_safetensors(pkg, path, &e), PEMN_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *got = malloc((size_t)n);
    assert_non_null(got);
    assert_int_equal(fread(got, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    unlink(path);

    uint8_t *want = NULL;
    size_t wl = 0;
    /* the density actually used (asserted by the callers) */
    assert_int_equal(ckpt_expected(ck, cl, rep->density, &want, &wl), 0);
    assert_int_equal(ckpt_compare(want, wl, got, (size_t)n), 0);

    /* the library's own per-tensor expansion agrees too */
    for (uint32_t i = 0; i < info.n_tensors; i++) {
        struct pemn_tensor_info ti;
        assert_int_equal(pemn_pkg_tensor(pkg, i, &ti), PEMN_OK);
        assert_string_equal(ti.name, rep->layers[i].name);
        assert_int_equal(ti.masked, rep->layers[i].masked);
        if (ti.masked) {
            assert_int_equal(ti.kept, rep->layers[i].kept);
            assert_int_equal(ti.proto, rep->layers[i].proto);
            assert_memory_equal(&ti.scale, &rep->layers[i].scale, sizeof(float));
        }
    }
    free(want);
    free(got);
    pemn_pkg_free(pkg);
    free(pkgb);
    pemn_st_free(st);
}

static void make(const char *kind, uint8_t **ck, size_t *cl)
{
    assert_int_equal(ckpt_make(kind, ck, cl), 0);
}

static void expect_protos(const struct pemn_pack_report *r, const uint64_t *d, uint32_t n)
{
    assert_int_equal(r->n_protos, n);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(r->protos[i].d_v, d[i]);
}

static const struct pemn_pack_layer *layer(const struct pemn_pack_report *r, const char *name)
{
    for (uint32_t i = 0; i < r->n_layers; i++)
        if (!strcmp(r->layers[i].name, name))
            return &r->layers[i];
    fail_msg("no layer %s", name);
    return NULL;
}

/* ---- detection + round trip per strategy -------------------------------------------------- */
static void test_rp(void **state)
{
    (void)state;
    uint8_t *ck;
    size_t cl;
    make("rp", &ck, &cl);
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    o.name = "net";
    o.version = "1.0";
    struct pemn_pack_report r;
    round_trip(ck, cl, &o, &r);
    assert_int_equal(r.strategy, PEMN_PACK_RP);
    expect_protos(&r, (uint64_t[]){37}, 1);
    assert_int_equal(r.proto_values, 37);
    /* scores and mask tensors are consumed; biases, bn statistics and the I64 stay dense */
    assert_int_equal(r.n_layers, 4 + 4 + 3);
    assert_true(layer(&r, "conv1.weight")->masked);
    assert_int_equal(layer(&r, "conv1.weight")->mask_from, PEMN_PACK_FROM_SCORES);
    assert_int_equal(layer(&r, "fc2.weight")->mask_from, PEMN_PACK_FROM_MASK);
    assert_false(layer(&r, "bn1.num_batches_tracked")->masked);
    assert_int_equal(layer(&r, "bn1.num_batches_tracked")->dtype, PEMN_DT_I64);
    assert_int_equal(layer(&r, "fc1.weight")->kept, pemn_topk_count(1152, 0.5));
    assert_int_equal(layer(&r, "conv1.weight")->kept, 36);
    pemn_pack_report_free(&r);

    /* the same checkpoint at another density */
    o.density = 0.3;
    round_trip(ck, cl, &o, &r);
    assert_int_equal(layer(&r, "fc1.weight")->kept, pemn_topk_count(1152, 0.3));
    assert_true(fabs(r.density - 0.3) < 1e-12);
    pemn_pack_report_free(&r);

    /* forced structures that also reproduce an rp tiling */
    o.density = 0.5;
    o.strategy = PEMN_PACK_MP;
    round_trip(ck, cl, &o, &r);
    assert_int_equal(r.strategy, PEMN_PACK_MP);
    expect_protos(&r, (uint64_t[]){1152}, 1);
    pemn_pack_report_free(&r);
    o.strategy = PEMN_PACK_ONE_LAYER; /* every shape its own period-37 prototype */
    round_trip(ck, cl, &o, &r);
    assert_int_equal(r.strategy, PEMN_PACK_ONE_LAYER);
    expect_protos(&r, (uint64_t[]){37, 37, 37}, 3);
    assert_int_equal(layer(&r, "fc3.weight")->proto, layer(&r, "fc2.weight")->proto);
    pemn_pack_report_free(&r);
    o.strategy = PEMN_PACK_MASK;
    round_trip(ck, cl, &o, &r);
    assert_int_equal(r.strategy, PEMN_PACK_MASK);
    expect_protos(&r, (uint64_t[]){37, 37, 37, 37}, 4);
    pemn_pack_report_free(&r);
    free(ck);
}

static void test_rp_scaled(void **state)
{
    (void)state;
    uint8_t *ck;
    size_t cl;
    make("rp-scaled", &ck, &cl);
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    o.name = "net";
    o.version = "1.0";
    struct pemn_pack_report r;
    round_trip(ck, cl, &o, &r);
    assert_int_equal(r.strategy, PEMN_PACK_RP);
    expect_protos(&r, (uint64_t[]){37}, 1);
    /* fc1 (the longest, scale 2^0) is the reference; the others are exact powers of two */
    assert_true(layer(&r, "fc1.weight")->scale == 1.0f);
    assert_true(layer(&r, "conv1.weight")->scale == 0.5f);
    assert_true(layer(&r, "fc2.weight")->scale == 2.0f);
    assert_true(layer(&r, "fc3.weight")->scale == 4.0f);
    pemn_pack_report_free(&r);
    free(ck);
}

static void test_mp(void **state)
{
    (void)state;
    uint8_t *ck;
    size_t cl;
    make("mp", &ck, &cl);
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    o.name = "net";
    o.version = "1.0";
    struct pemn_pack_report r;
    round_trip(ck, cl, &o, &r);
    assert_int_equal(r.strategy, PEMN_PACK_MP);
    expect_protos(&r, (uint64_t[]){1152}, 1);
    pemn_pack_report_free(&r);
    free(ck);
}

static void test_one_layer(void **state)
{
    (void)state;
    uint8_t *ck;
    size_t cl;
    make("one-layer", &ck, &cl);
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    o.name = "net";
    o.version = "1.0";
    struct pemn_pack_report r;
    round_trip(ck, cl, &o, &r);
    assert_int_equal(r.strategy, PEMN_PACK_ONE_LAYER);
    expect_protos(&r, (uint64_t[]){72, 50, 160}, 3); /* fc1 reduced to its period 50 */
    assert_int_equal(layer(&r, "fc2.weight")->proto, 2);
    assert_int_equal(layer(&r, "fc3.weight")->proto, 2);
    assert_int_equal(r.proto_values, 72 + 50 + 160);
    pemn_pack_report_free(&r);

    /* rp cannot reproduce it: refused, naming a layer */
    pemn_st *st = NULL;
    struct pemn_err e = {0};
    assert_int_equal(pemn_st_open_mem(ck, cl, 0, &st, &e), PEMN_OK);
    o.strategy = PEMN_PACK_RP;
    assert_int_equal(pemn_pack_detect(st, &o, &r, &e), PEMN_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "conv1.weight"));
    assert_non_null(strstr(e.msg, "fc1.weight"));
    pemn_pack_report_free(&r);
    pemn_st_free(st);
    free(ck);
}

static void test_mask_strategy(void **state)
{
    (void)state;
    uint8_t *ck;
    size_t cl;
    make("mask", &ck, &cl);
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    o.name = "net";
    o.version = "1.0";
    struct pemn_pack_report r;
    pemn_st *st = NULL;
    struct pemn_err e = {0};
    assert_int_equal(pemn_st_open_mem(ck, cl, 0, &st, &e), PEMN_OK);
    /* auto refuses: fc3 has fc2's shape but not its values */
    assert_int_equal(pemn_pack_detect(st, &o, &r, &e), PEMN_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "fc3.weight"));
    assert_non_null(strstr(e.msg, "--strategy mask"));
    pemn_pack_report_free(&r);
    pemn_st_free(st);

    o.strategy = PEMN_PACK_MASK;
    round_trip(ck, cl, &o, &r);
    assert_int_equal(r.strategy, PEMN_PACK_MASK);
    expect_protos(&r, (uint64_t[]){72, 1152, 160, 160}, 4);
    pemn_pack_report_free(&r);
    free(ck);
}

static void test_seeded(void **state)
{
    (void)state;
    uint8_t *ck;
    size_t cl;
    make("seeded", &ck, &cl);
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    o.name = "net";
    o.version = "1.0";
    seeded_opts(&o);
    struct pemn_pack_report r;
    round_trip(ck, cl, &o, &r);
    assert_int_equal(r.strategy, PEMN_PACK_RP);
    expect_protos(&r, (uint64_t[]){64}, 1);
    assert_true(r.protos[0].seeded);
    assert_int_equal(r.proto_values, 0);
    assert_true(layer(&r, "conv1.weight")->scale == 0.05f);
    assert_true(layer(&r, "fc1.weight")->scale == 0.3333f);
    assert_true(layer(&r, "fc2.weight")->scale == 1.7f);
    assert_true(layer(&r, "fc3.weight")->scale == 0.0123f);
    pemn_pack_report_free(&r);

    /* the same from the checkpoint's metadata (pemn.generator + pemn.seed) */
    struct pemn_pack_opts m;
    pemn_pack_opts_init(&m);
    m.name = "net";
    m.version = "1.0";
    m.seeds_from_meta = 1;
    round_trip(ck, cl, &m, &r);
    assert_true(r.protos[0].seeded);
    assert_memory_equal(r.protos[0].seed, o.seed, 32);
    assert_true(r.density == PEMN_PACK_DEFAULT_DENSITY);
    pemn_pack_report_free(&r);

    pemn_st *st = NULL;
    struct pemn_err e = {0};
    assert_int_equal(pemn_st_open_mem(ck, cl, 0, &st, &e), PEMN_OK);
    /* a wrong seed is refused */
    o.seed[5] ^= 1;
    assert_int_equal(pemn_pack_detect(st, &o, &r, &e), PEMN_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, ".weight"));
    pemn_pack_report_free(&r);
    o.seed[5] ^= 1;
    /* the wrong generator too */
    o.generator = PEMN_GEN_NORMAL;
    assert_int_equal(pemn_pack_detect(st, &o, &r, &e), PEMN_EUNSUPPORTED);
    pemn_pack_report_free(&r);
    o.generator = PEMN_GEN_UNIFORM;
    /* seeded one-layer makes no sense */
    o.strategy = PEMN_PACK_ONE_LAYER;
    assert_int_equal(pemn_pack_detect(st, &o, &r, &e), PEMN_EINVAL);
    pemn_pack_report_free(&r);
    /* without the seed, the per-layer scales are not exact relative to one another */
    o.strategy = PEMN_PACK_AUTO;
    o.seeded = 0;
    assert_int_equal(pemn_pack_detect(st, &o, &r, &e), PEMN_EUNSUPPORTED);
    pemn_pack_report_free(&r);
    pemn_st_free(st);
    free(ck);
}

static void test_seeded_one_layer(void **state)
{
    (void)state;
    uint8_t *ck;
    size_t cl;
    make("seeded-one-layer", &ck, &cl);
    uint8_t seeds[4][32];
    for (unsigned g = 0; g < 3; g++)
        ckpt_seed(g, seeds[g]);
    ckpt_seed(2, seeds[3]); /* fc3 has fc2's values */
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    o.name = "net";
    o.version = "1.0";
    o.seeded = 1;
    o.generator = PEMN_GEN_UNIFORM;
    o.n_seeds = 3;
    o.seeds = (const uint8_t(*)[32])seeds;
    struct pemn_pack_report r;
    round_trip(ck, cl, &o, &r);
    assert_true(r.density == 0.3); /* from the checkpoint's pemn.density */
    assert_int_equal(r.strategy, PEMN_PACK_ONE_LAYER);
    expect_protos(&r, (uint64_t[]){72, 50, 160}, 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_true(r.protos[i].seeded);
        assert_memory_equal(r.protos[i].seed, seeds[i], 32);
    }
    assert_int_equal(r.proto_values, 0);
    assert_true(layer(&r, "conv1.weight")->scale == 0.05f);
    assert_true(layer(&r, "fc2.weight")->scale == 1.7f);
    assert_true(layer(&r, "fc3.weight")->scale == 0.0123f);
    assert_int_equal(layer(&r, "fc3.weight")->proto, 2);
    pemn_pack_report_free(&r);

    /* four seeds: one per masked layer, so auto picks mask */
    o.n_seeds = 4;
    round_trip(ck, cl, &o, &r);
    assert_int_equal(r.strategy, PEMN_PACK_MASK);
    expect_protos(&r, (uint64_t[]){72, 50, 160, 160}, 4);
    pemn_pack_report_free(&r);

    /* the seeds named by the checkpoint's own metadata (pemn.protos) */
    struct pemn_pack_opts m;
    pemn_pack_opts_init(&m);
    m.name = "net";
    m.version = "1.0";
    m.seeds_from_meta = 1;
    m.density = 0.5; /* an explicit density wins over pemn.density */
    round_trip(ck, cl, &m, &r);
    assert_true(r.density == 0.5);
    assert_int_equal(r.strategy, PEMN_PACK_ONE_LAYER);
    assert_int_equal(r.n_protos, 3);
    assert_memory_equal(r.protos[1].seed, seeds[1], 32);
    pemn_pack_report_free(&r);

    pemn_st *st = NULL;
    struct pemn_err e = {0};
    assert_int_equal(pemn_st_open_mem(ck, cl, 0, &st, &e), PEMN_OK);
    m.seeded = 1; /* both explicit seeds and seeds from metadata */
    assert_int_equal(pemn_pack_detect(st, &m, &r, &e), PEMN_EINVAL);
    pemn_pack_report_free(&r);
    /* a count that fits no strategy, or a forced strategy with the wrong count */
    o.n_seeds = 2;
    assert_int_equal(pemn_pack_detect(st, &o, &r, &e), PEMN_EINVAL);
    assert_non_null(strstr(e.msg, "2 seeds"));
    pemn_pack_report_free(&r);
    o.n_seeds = 3;
    o.strategy = PEMN_PACK_MASK;
    assert_int_equal(pemn_pack_detect(st, &o, &r, &e), PEMN_EINVAL);
    pemn_pack_report_free(&r);
    o.strategy = PEMN_PACK_RP;
    assert_int_equal(pemn_pack_detect(st, &o, &r, &e), PEMN_EINVAL);
    pemn_pack_report_free(&r);
    /* seeds in the wrong order: the layer that does not fit is named */
    o.strategy = PEMN_PACK_ONE_LAYER;
    memcpy(seeds[3], seeds[0], 32);
    memcpy(seeds[0], seeds[1], 32);
    memcpy(seeds[1], seeds[3], 32);
    assert_int_equal(pemn_pack_detect(st, &o, &r, &e), PEMN_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "conv1.weight"));
    pemn_pack_report_free(&r);
    /* without seeds fc3 is no exact multiple of fc2's values: auto refuses, naming fc3,
     * and explicit per-layer prototypes still work */
    o.seeded = 0;
    o.n_seeds = 0;
    o.strategy = PEMN_PACK_AUTO;
    assert_int_equal(pemn_pack_detect(st, &o, &r, &e), PEMN_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "fc3.weight"));
    pemn_pack_report_free(&r);
    o.strategy = PEMN_PACK_MASK;
    round_trip(ck, cl, &o, &r);
    assert_int_equal(r.proto_values, 72 + 50 + 160 + 160);
    pemn_pack_report_free(&r);
    pemn_st_free(st);
    free(ck);
}

static void test_not_tiled(void **state)
{
    (void)state;
    uint8_t *ck;
    size_t cl;
    make("not-tiled", &ck, &cl);
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    o.name = "net";
    o.version = "1.0";
    pemn_st *st = NULL;
    struct pemn_err e = {0};
    struct pemn_pack_report r;
    assert_int_equal(pemn_st_open_mem(ck, cl, 0, &st, &e), PEMN_OK);
    static const enum pemn_pack_strategy strats[] = {PEMN_PACK_AUTO, PEMN_PACK_RP, PEMN_PACK_MP};
    for (size_t i = 0; i < 3; i++) {
        o.strategy = strats[i];
        assert_int_equal(pemn_pack_detect(st, &o, &r, &e), PEMN_EUNSUPPORTED);
        assert_non_null(strstr(e.msg, "fc2.weight"));
        assert_non_null(strstr(e.msg, "element 100"));
        pemn_pack_report_free(&r);
    }
    uint8_t *out = NULL;
    size_t len = 0;
    o.strategy = PEMN_PACK_AUTO;
    assert_int_equal(pemn_pack_safetensors(st, &o, &sk, &out, &len, NULL, &e), PEMN_EUNSUPPORTED);
    assert_null(out);
    /* one prototype per layer always reproduces it */
    o.strategy = PEMN_PACK_MASK;
    assert_int_equal(pemn_pack_safetensors(st, &o, &sk, &out, &len, NULL, &e), PEMN_OK);
    free(out);
    pemn_st_free(st);
    free(ck);
}

static void test_dense_only(void **state)
{
    (void)state;
    uint8_t *ck;
    size_t cl;
    make("dense", &ck, &cl);
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    o.name = "net";
    o.version = "1.0";
    struct pemn_pack_report r;
    round_trip(ck, cl, &o, &r);
    assert_int_equal(r.strategy, PEMN_PACK_DENSE);
    assert_int_equal(r.n_protos, 0);
    assert_int_equal(r.n_masked_params, 0);
    assert_true(r.density == 0.0);
    pemn_pack_report_free(&r);
    free(ck);
}

/* ---- hand-made checkpoints --------------------------------------------------------------- */
struct tens {
    const char *name;
    pemn_dtype dt;
    uint32_t ndim;
    uint64_t shape[2];
    const void *data;
    uint64_t nbytes;
};

static void write_ckpt(const struct tens *t, size_t n, uint8_t **out, size_t *len)
{
    pemn_st_writer *w = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_st_writer_new(&w), PEMN_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pemn_st_writer_add(w, t[i].name, t[i].dt, t[i].ndim, t[i].shape, t[i].data,
                                            t[i].nbytes, &e),
                         PEMN_OK);
    assert_int_equal(pemn_st_writer_write_mem(w, out, len, &e), PEMN_OK);
    pemn_st_writer_free(w);
}

static pemn_rc detect_on(const struct tens *t, size_t n, struct pemn_pack_opts *o,
                         struct pemn_pack_report *r, struct pemn_err *e)
{
    uint8_t *ck;
    size_t cl;
    write_ckpt(t, n, &ck, &cl);
    pemn_st *st = NULL;
    assert_int_equal(pemn_st_open_mem(ck, cl, PEMN_OPEN_COPY, &st, e), PEMN_OK);
    free(ck);
    pemn_rc rc = pemn_pack_detect(st, o, r, e);
    pemn_st_free(st);
    return rc;
}

static void test_special_floats_bits(void **state)
{
    (void)state;
    /* period 5 with -0.0, +0.0, a NaN payload, infinity and a denormal: bits decide */
    uint32_t pbits[5] = {0x80000000u, 0x00000000u, 0x7fc01234u, 0x7f800000u, 0x00000001u};
    float w[23], s[23];
    for (int i = 0; i < 23; i++) {
        memcpy(&w[i], &pbits[i % 5], 4);
        s[i] = (float)(i * 7 % 23);
    }
    struct tens t[] = {
        {"l.weight", PEMN_DT_F32, 1, {23}, w, sizeof w},
        {"l.scores", PEMN_DT_F32, 1, {23}, s, sizeof s},
    };
    uint8_t *ck;
    size_t cl;
    write_ckpt(t, 2, &ck, &cl);
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    o.name = "sp";
    o.version = "1";
    struct pemn_pack_report r;
    round_trip(ck, cl, &o, &r);
    expect_protos(&r, (uint64_t[]){5}, 1);
    pemn_pack_report_free(&r);
    free(ck);

    /* -0.0 in place of the 0.0 at index 21 breaks every shorter period: the bits differ */
    float w2[23];
    memcpy(w2, w, sizeof w2);
    w2[21] = -0.0f;
    struct tens t2[] = {
        {"l.weight", PEMN_DT_F32, 1, {23}, w2, sizeof w2},
        {"l.scores", PEMN_DT_F32, 1, {23}, s, sizeof s},
    };
    struct pemn_err e;
    assert_int_equal(detect_on(t2, 2, &o, &r, &e), PEMN_OK);
    expect_protos(&r, (uint64_t[]){23}, 1); /* only the whole layer repeats itself */
    assert_int_equal(r.strategy, PEMN_PACK_MP);
    pemn_pack_report_free(&r);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    float w[6] = {1, 2, 3, 1, 2, 3}, s[6] = {0}, s5[5] = {0};
    uint16_t h[6] = {0};
    uint8_t m[6] = {1, 0, 1, 0, 1, 0};
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    struct pemn_pack_report r;
    struct pemn_err e;

    struct tens shape_mismatch[] = {
        {"a.weight", PEMN_DT_F32, 1, {6}, w, sizeof w},
        {"a.scores", PEMN_DT_F32, 1, {5}, s5, sizeof s5},
    };
    assert_int_equal(detect_on(shape_mismatch, 2, &o, &r, &e), PEMN_ECORRUPT);
    assert_non_null(strstr(e.msg, "a.weight"));
    pemn_pack_report_free(&r);

    struct tens f16_weight[] = {
        {"a.weight", PEMN_DT_F16, 1, {6}, h, sizeof h},
        {"a.scores", PEMN_DT_F32, 1, {6}, s, sizeof s},
    };
    assert_int_equal(detect_on(f16_weight, 2, &o, &r, &e), PEMN_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "a.weight"));
    pemn_pack_report_free(&r);

    struct tens f16_scores[] = {
        {"a.weight", PEMN_DT_F32, 1, {6}, w, sizeof w},
        {"a.scores", PEMN_DT_F16, 1, {6}, h, sizeof h},
    };
    assert_int_equal(detect_on(f16_scores, 2, &o, &r, &e), PEMN_EUNSUPPORTED);
    pemn_pack_report_free(&r);

    struct tens both[] = {
        {"a.weight", PEMN_DT_F32, 1, {6}, w, sizeof w},
        {"a.scores", PEMN_DT_F32, 1, {6}, s, sizeof s},
        {"a.mask", PEMN_DT_U8, 1, {6}, m, sizeof m},
    };
    assert_int_equal(detect_on(both, 3, &o, &r, &e), PEMN_ECORRUPT);
    assert_non_null(strstr(e.msg, "ambiguous"));
    pemn_pack_report_free(&r);

    struct tens float_mask[] = {
        {"a.weight", PEMN_DT_F32, 1, {6}, w, sizeof w},
        {"a.mask", PEMN_DT_F32, 1, {6}, s, sizeof s},
    };
    assert_int_equal(detect_on(float_mask, 2, &o, &r, &e), PEMN_EUNSUPPORTED);
    pemn_pack_report_free(&r);

    /* orphan scores (no weight) are just a dense tensor; a BOOL mask works */
    struct tens ok[] = {
        {"a.weight", PEMN_DT_F32, 1, {6}, w, sizeof w},
        {"a.mask", PEMN_DT_BOOL, 1, {6}, m, sizeof m},
        {"b.scores", PEMN_DT_F32, 1, {6}, s, sizeof s},
    };
    assert_int_equal(detect_on(ok, 3, &o, &r, &e), PEMN_OK);
    assert_int_equal(r.n_layers, 2);
    assert_true(r.layers[0].masked);
    assert_false(r.layers[1].masked);
    expect_protos(&r, (uint64_t[]){3}, 1);
    assert_int_equal(r.strategy, PEMN_PACK_RP);
    pemn_pack_report_free(&r);

    /* bad options */
    o.density = 1.5;
    assert_int_equal(detect_on(ok, 3, &o, &r, &e), PEMN_EINVAL);
    pemn_pack_report_free(&r);
    o.density = 0.5;
    o.seeded = 1;
    o.generator = 99;
    assert_int_equal(detect_on(ok, 3, &o, &r, &e), PEMN_EUNSUPPORTED);
    pemn_pack_report_free(&r);
    o.generator = PEMN_GEN_UNIFORM;
    struct tens none[] = {{"b.bias", PEMN_DT_F32, 1, {6}, s, sizeof s}};
    assert_int_equal(detect_on(none, 1, &o, &r, &e), PEMN_EINVAL); /* seed but nothing masked */
    pemn_pack_report_free(&r);

    assert_int_equal(pemn_pack_detect(NULL, &o, &r, &e), PEMN_EINVAL);
    pemn_pack_report_free(&r);
    pemn_pack_report_free(NULL);
}

static pemn_rc detect_with_meta(const char *const *kv, size_t n_kv, struct pemn_pack_opts *o,
                                struct pemn_err *e)
{
    static const float w[4] = {1, 2, 1, 2}, sc[4] = {4, 3, 2, 1};
    pemn_st_writer *wr = NULL;
    uint64_t shape[1] = {4};
    assert_int_equal(pemn_st_writer_new(&wr), PEMN_OK);
    assert_int_equal(pemn_st_writer_add(wr, "a.weight", PEMN_DT_F32, 1, shape, w, 16, e), PEMN_OK);
    assert_int_equal(pemn_st_writer_add(wr, "a.scores", PEMN_DT_F32, 1, shape, sc, 16, e), PEMN_OK);
    for (size_t i = 0; i + 1 < n_kv; i += 2)
        assert_int_equal(pemn_st_writer_add_meta(wr, kv[i], kv[i + 1]), PEMN_OK);
    uint8_t *ck;
    size_t cl;
    assert_int_equal(pemn_st_writer_write_mem(wr, &ck, &cl, e), PEMN_OK);
    pemn_st_writer_free(wr);
    pemn_st *st = NULL;
    assert_int_equal(pemn_st_open_mem(ck, cl, 0, &st, e), PEMN_OK);
    struct pemn_pack_report r;
    pemn_rc rc = pemn_pack_detect(st, o, &r, e);
    if (rc == PEMN_OK && r.density != 0.25 && o->density == 0)
        rc = PEMN_ECANCELED; /* marks "detected, with another density" for the caller */
    pemn_pack_report_free(&r);
    pemn_st_free(st);
    free(ck);
    return rc;
}

static void test_bad_metadata(void **state)
{
    (void)state;
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    struct pemn_err e;
    static const char *const good_density[] = {"pemn.density", "0.25"};
    assert_int_equal(detect_with_meta(good_density, 2, &o, &e), PEMN_OK);
    static const char *const bad_density[] = {"pemn.density", "1.5"};
    assert_int_equal(detect_with_meta(bad_density, 2, &o, &e), PEMN_ECORRUPT);
    assert_non_null(strstr(e.msg, "pemn.density"));
    static const char *const text_density[] = {"pemn.density", "half"};
    assert_int_equal(detect_with_meta(text_density, 2, &o, &e), PEMN_ECORRUPT);

    o.seeds_from_meta = 1;
    assert_int_equal(detect_with_meta(NULL, 0, &o, &e), PEMN_EINVAL);
    assert_non_null(strstr(e.msg, "pemn.generator"));
    static const char *const bad_gen[] = {"pemn.generator", "dice", "pemn.seed", CKPT_SEED_HEX};
    assert_int_equal(detect_with_meta(bad_gen, 4, &o, &e), PEMN_EUNSUPPORTED);
    static const char *const short_seed[] = {"pemn.generator", "uniform", "pemn.seed", "abcd"};
    assert_int_equal(detect_with_meta(short_seed, 4, &o, &e), PEMN_ECORRUPT);
    static const char *const not_json[] = {"pemn.generator", "uniform", "pemn.protos", "[{"};
    assert_int_equal(detect_with_meta(not_json, 4, &o, &e), PEMN_ECORRUPT);
    static const char *const empty[] = {"pemn.generator", "uniform", "pemn.protos", "[]"};
    assert_int_equal(detect_with_meta(empty, 4, &o, &e), PEMN_ECORRUPT);
    static const char *const no_seed[] = {"pemn.generator", "uniform", "pemn.protos",
                                          "[{\"length\": 2}]"};
    assert_int_equal(detect_with_meta(no_seed, 4, &o, &e), PEMN_ECORRUPT);
    assert_non_null(strstr(e.msg, "pemn.protos[0]"));
    /* well-formed, but these weights are no generator output: refused, naming the layer */
    static const char *const wrong[] = {"pemn.generator", "uniform", "pemn.seed", CKPT_SEED_HEX};
    assert_int_equal(detect_with_meta(wrong, 4, &o, &e), PEMN_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "a.weight"));
}

static void test_mask_only_density_and_meta(void **state)
{
    (void)state;
    float w[8] = {1, -2, 1, -2, 1, -2, 1, -2};
    uint8_t m[8] = {1, 1, 1, 0, 0, 0, 0, 0};
    struct tens t[] = {
        {"a.weight", PEMN_DT_F32, 1, {8}, w, sizeof w},
        {"a.mask", PEMN_DT_U8, 1, {8}, m, sizeof m},
    };
    uint8_t *ck;
    size_t cl;
    write_ckpt(t, 2, &ck, &cl);
    struct pemn_pack_opts o;
    pemn_pack_opts_init(&o);
    o.name = "m";
    o.version = "2";
    o.release = 7;
    o.created = 1700000000;
    const char *keys[] = {"task", "source"}, *vals[] = {"demo", "override"};
    o.n_meta = 2;
    o.meta_keys = keys;
    o.meta_values = vals;
    pemn_st *st = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_st_open_mem(ck, cl, 0, &st, &e), PEMN_OK);
    uint8_t *out = NULL;
    size_t len = 0;
    struct pemn_pack_report r;
    assert_int_equal(pemn_pack_safetensors(st, &o, &sk, &out, &len, &r, &e), PEMN_OK);
    assert_true(fabs(r.density - 3.0 / 8.0) < 1e-12); /* the fraction the mask keeps */
    pemn_pkg *pkg = NULL;
    assert_int_equal(pemn_pkg_open_mem(out, len, 0, &pkg, &e), PEMN_OK);
    struct pemn_pkg_info info;
    assert_int_equal(pemn_pkg_info(pkg, &info), PEMN_OK);
    assert_true(info.density == 0.375f);
    assert_int_equal(info.release, 7);
    assert_int_equal(info.created, 1700000000);
    assert_string_equal(info.name, "m");
    assert_string_equal(pemn_pkg_meta_get(pkg, "task"), "demo");
    assert_string_equal(pemn_pkg_meta_get(pkg, "source"), "override");
    pemn_pkg_free(pkg);
    free(out);
    pemn_pack_report_free(&r);

    /* missing name, key or output */
    o.name = NULL;
    assert_int_equal(pemn_pack_safetensors(st, &o, &sk, &out, &len, NULL, &e), PEMN_EINVAL);
    o.name = "m";
    assert_int_equal(pemn_pack_safetensors(st, &o, NULL, &out, &len, NULL, &e), PEMN_EINVAL);
    o.name = "bad name!";
    assert_int_not_equal(pemn_pack_safetensors(st, &o, &sk, &out, &len, NULL, &e), PEMN_OK);
    pemn_st_free(st);
    free(ck);
}

static void test_strategy_names(void **state)
{
    (void)state;
    enum pemn_pack_strategy s;
    static const char *const names[] = {"auto", "one-layer", "mp", "rp", "mask"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(pemn_pack_strategy_parse(names[i], &s), PEMN_OK);
        assert_string_equal(pemn_pack_strategy_name(s), names[i]);
    }
    assert_int_equal(pemn_pack_strategy_parse("dense", &s), PEMN_EINVAL);
    assert_int_equal(pemn_pack_strategy_parse("RP", &s), PEMN_EINVAL);
    assert_string_equal(pemn_pack_strategy_name(PEMN_PACK_DENSE), "dense");
    assert_null(pemn_pack_strategy_name((enum pemn_pack_strategy)42));
}

int main(int argc, char **argv)
{
    if (argc > 1)
        return ckpt_tool_main(argc - 1, argv + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strategy_names),
        cmocka_unit_test(test_rp),
        cmocka_unit_test(test_rp_scaled),
        cmocka_unit_test(test_mp),
        cmocka_unit_test(test_one_layer),
        cmocka_unit_test(test_mask_strategy),
        cmocka_unit_test(test_seeded),
        cmocka_unit_test(test_seeded_one_layer),
        cmocka_unit_test(test_not_tiled),
        cmocka_unit_test(test_dense_only),
        cmocka_unit_test(test_special_floats_bits),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_mask_only_density_and_meta),
        cmocka_unit_test(test_bad_metadata),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
