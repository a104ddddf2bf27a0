/* Unit tests: a smoke training on a few hundred real Fashion-MNIST samples (from the Debian
 * package dataset-fashion-mnist, installed by deploy/install-deps.sh): the loss decreases,
 * accuracy beats chance clearly, and the package written from the model — expanded by the
 * library — gives EXACTLY the trainer's accuracy; so does the safetensors checkpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pemn/key.h>
#include <pemn/pkg.h>
#include <pemn/safetensors.h>

#include "train/eval.h"
#include "train/export.h"
#include "train/train.h"

static struct train_data tr, te;
static char dir[256];

static int setup(void **state)
{
    (void)state;
    struct pemn_err e = {0};
    if (train_data_load_dir(TRAIN_DEFAULT_DATA_DIR, "train", &tr, &e) != PEMN_OK ||
        train_data_load_dir(TRAIN_DEFAULT_DATA_DIR, "t10k", &te, &e) != PEMN_OK) {
        fprintf(stderr, "SKIP REASON: %s (run deploy/install-deps.sh)\n", e.msg);
        return 0; /* tests skip themselves */
    }
    train_data_truncate(&tr, 600);
    train_data_truncate(&te, 1000);
    snprintf(dir, sizeof dir, "/tmp/pemn-test-smoke.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    train_data_free(&tr);
    train_data_free(&te);
    if (dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            return -1;
    }
    return 0;
}

static void need_data(void)
{
    if (!tr.images) {
        fprintf(stderr, "Fashion-MNIST not found in " TRAIN_DEFAULT_DATA_DIR
                        ": skipping (install dataset-fashion-mnist)\n");
        skip();
    }
}

static void run_and_roundtrip(struct train_opts *o, double min_acc)
{
    need_data();
    struct train_model *m = NULL;
    struct train_result r;
    struct pemn_err e = {0};
    assert_int_equal(train_run(o, &tr, &te, NULL, NULL, &m, &r, &e), PEMN_OK);
    printf("  %s: loss %.3f -> %.3f, train %.3f, test %.3f\n", o->masked ? "mask" : "dense",
           r.first_loss, r.final_loss, r.train_acc, r.test_acc);
    assert_true(r.final_loss < 0.8 * r.first_loss);
    assert_true(r.test_acc > min_acc); /* chance is 0.10 */
    assert_int_equal(r.samples, (uint64_t)o->epochs * 600);

    /* signed package -> library expansion -> same accuracy, bit for bit */
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    assert_int_equal(pemn_key_generate(&sk, &pk), PEMN_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/m-%d.pemn", dir, o->masked);
    assert_int_equal(train_export_pkg(m, o, &r, &sk, "smoke", "1.0", 1, path, &e), PEMN_OK);
    pemn_seckey_wipe(&sk);
    pemn_pkg *pkg = NULL;
    assert_int_equal(pemn_pkg_open_file(path, 0, &pkg, &e), PEMN_OK);
    pemn_keyring *kr;
    assert_int_equal(pemn_keyring_new(&kr), PEMN_OK);
    assert_int_equal(pemn_keyring_add(kr, &pk), PEMN_OK);
    assert_int_equal(pemn_pkg_verify(pkg, kr, &e), PEMN_OK);
    pemn_keyring_free(kr);
    struct pemn_pkg_info info;
    assert_int_equal(pemn_pkg_info(pkg, &info), PEMN_OK);
    if (o->masked) {
        assert_int_equal(info.n_protos, m->protos.n);
        assert_true(info.file_size * 20 < info.f32_size); /* masks: ~1 bit per weight */
        /* the frozen weights are what the package expands to, where kept */
        struct train_layer *l = train_net_layer(m->net, "fc2");
        uint32_t idx;
        assert_int_equal(pemn_pkg_find(pkg, "fc2.weight", &idx), PEMN_OK);
        size_t n = l->in_dim * l->out_dim;
        float *w = malloc(n * sizeof(float));
        assert_int_equal(pemn_pkg_expand(pkg, idx, w, n, &e), PEMN_OK);
        assert_memory_equal(w, l->weff, n * sizeof(float));
        free(w);
    }
    struct train_model *back = NULL;
    assert_int_equal(train_model_from_pkg(pkg, &back, &e), PEMN_OK);
    double acc = -1;
    assert_int_equal(train_evaluate(back, &te, 0, te.n, &acc, NULL, &e), PEMN_OK);
    assert_true(acc == r.test_acc);
    uint32_t rec_n;
    assert_true(train_recorded_accuracy(pemn_pkg_meta_get(pkg, "pemn.train"), &rec_n) ==
                r.test_acc);
    assert_int_equal(rec_n, te.n);
    assert_string_equal(back->classes[0], "0");
    train_model_free(back);
    pemn_pkg_free(pkg);

    /* safetensors checkpoint (weight + scores) -> same accuracy */
    snprintf(path, sizeof path, "%s/m-%d.safetensors", dir, o->masked);
    assert_int_equal(train_export_safetensors(m, o, &r, path, &e), PEMN_OK);
    pemn_st *st = NULL;
    assert_int_equal(pemn_st_open_file(path, &st, &e), PEMN_OK);
    uint32_t idx;
    assert_int_equal(pemn_st_find(st, "fc1.scores", &idx), o->masked ? PEMN_OK : PEMN_ENOTFOUND);
    assert_int_equal(train_model_from_safetensors(st, &back, &e), PEMN_OK);
    assert_int_equal(train_evaluate(back, &te, 0, te.n, &acc, NULL, &e), PEMN_OK);
    assert_true(acc == r.test_acc);
    train_model_free(back);
    pemn_st_free(st);
    train_model_free(m);
}

static void test_smoke_mask_rp(void **state)
{
    (void)state;
    struct train_opts o;
    train_opts_default(&o); /* mask, rp 1e-3, k 0.5, 784-300-100-10 */
    o.epochs = 4;
    o.batch = 32;
    o.eval_each_epoch = 0;
    run_and_roundtrip(&o, 0.55);
}

static void test_smoke_dense_bn(void **state)
{
    (void)state;
    struct train_opts o;
    train_opts_default(&o);
    o.masked = 0;
    o.arch.bias = 1;
    o.arch.batchnorm = 1;
    o.epochs = 3;
    o.batch = 32;
    o.lr = 0.05;
    o.eval_each_epoch = 0;
    run_and_roundtrip(&o, 0.6);
}

static void test_smoke_mask_mp_bias(void **state)
{
    (void)state;
    struct train_opts o;
    train_opts_default(&o);
    o.strategy = TRAIN_STRAT_MP;
    o.arch.bias = 1;
    o.gen = PEMN_GEN_UNIFORM;
    o.density = 0.3;
    o.epochs = 3;
    o.batch = 32;
    o.eval_each_epoch = 0;
    run_and_roundtrip(&o, 0.5);
}

static void test_damaged_model_metadata(void **state)
{
    (void)state;
    need_data();
    /* A package whose pemn.model lies about a shape is refused with a message. */
    struct train_opts o;
    train_opts_default(&o);
    o.epochs = 1;
    o.batch = 64;
    struct train_model *m = NULL;
    struct train_result r;
    struct pemn_err e = {0};
    assert_int_equal(train_run(&o, &tr, NULL, NULL, NULL, &m, &r, &e), PEMN_OK);
    assert_true(r.test_acc < 0); /* no test set given */
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    assert_int_equal(pemn_key_generate(&sk, &pk), PEMN_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/bad.pemn", dir);
    m->input.rows = 27; /* 27 x 28 != 784 */
    assert_int_equal(train_export_pkg(m, &o, &r, &sk, "bad", "1", 1, path, &e), PEMN_OK);
    pemn_pkg *pkg = NULL;
    assert_int_equal(pemn_pkg_open_file(path, 0, &pkg, &e), PEMN_OK);
    struct train_model *back = NULL;
    assert_int_equal(train_model_from_pkg(pkg, &back, &e), PEMN_ECORRUPT);
    assert_null(back);
    assert_non_null(strstr(e.msg, "input shape"));
    pemn_pkg_free(pkg);
    pemn_seckey_wipe(&sk);
    train_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smoke_mask_rp),
        cmocka_unit_test(test_smoke_dense_bn),
        cmocka_unit_test(test_smoke_mask_mp_bias),
        cmocka_unit_test(test_damaged_model_metadata),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
