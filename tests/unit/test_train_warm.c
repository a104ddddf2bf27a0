/*
 * tests/unit/test_train_warm.c — warm starts (train/warm.c): N epochs, a checkpoint, M more
 * epochs from it equal N + M epochs in one run (constant learning rate), bit for bit, for
 * SGD and AdamW; a checkpoint from another seed is refused; a file that is not a training
 * checkpoint is refused; the optimizer state round-trips through the checkpoint.
 * Uses 600 Fashion-MNIST samples (dataset-fashion-mnist); skips without them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/common/pkgfix.h"
#include "train/export.h"
#include "train/train.h"
#include "train/warm.h"

static struct train_data tr;
static const char *dir;

static int setup(void **state)
{
    (void)state;
    struct pemn_err e = {0};
    if (train_data_load_dir(TRAIN_DEFAULT_DATA_DIR, "train", &tr, &e) != PEMN_OK) {
        fprintf(stderr, "SKIP REASON: %s (run deploy/install-deps.sh)\n", e.msg);
        return 0;
    }
    train_data_truncate(&tr, 600);
    dir = pkgfix_tmpdir();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    train_data_free(&tr);
    if (dir)
        pkgfix_rmdir(dir);
    return 0;
}

static void opts(struct train_opts *o, enum train_opt_kind k, uint32_t epochs)
{
    train_opts_default(o);
    o->arch.n_sizes = 3;
    o->arch.sizes[1] = 64;
    o->arch.sizes[2] = 10;
    o->density = 0.3;
    o->optim = k;
    o->lr = k == TRAIN_OPT_ADAMW ? 0.01 : 0.05;
    o->cosine = 0;
    o->epochs = epochs;
    o->batch = 50;
    o->eval_each_epoch = 0;
}

static struct train_model *run(const struct train_opts *o)
{
    struct train_model *m = NULL;
    struct train_result r;
    struct pemn_err e = {0};
    pemn_rc rc = train_run(o, &tr, NULL, NULL, NULL, &m, &r, &e);
    if (rc)
        fprintf(stderr, "train_run: %s\n", e.msg);
    assert_int_equal(rc, PEMN_OK);
    return m;
}

static void same_params(const struct train_model *a, const struct train_model *b)
{
    assert_int_equal(a->net->n_params, b->net->n_params);
    for (size_t i = 0; i < a->net->n_params; i++)
        assert_memory_equal(a->net->params[i].value, b->net->params[i].value,
                            a->net->params[i].n * sizeof(float));
    assert_int_equal(a->optim.t, b->optim.t);
    for (size_t i = 0; i < a->optim.n; i++)
        assert_memory_equal(a->optim.s1[i], b->optim.s1[i], a->net->params[i].n * sizeof(float));
}

static void continue_equals_straight(enum train_opt_kind k)
{
    if (!tr.images) {
        skip();
        return;
    }
    struct train_opts o;
    opts(&o, k, 3);
    struct train_model *straight = run(&o);
    opts(&o, k, 2);
    struct train_model *first = run(&o);
    char path[512];
    snprintf(path, sizeof path, "%s/ck-%d.safetensors", dir, (int)k);
    struct pemn_err e = {0};
    assert_int_equal(train_export_safetensors(first, &o, NULL, path, &e), PEMN_OK);
    struct train_init *in = NULL;
    assert_int_equal(train_init_load(path, &in, &e), PEMN_OK);
    assert_int_equal(in->have_optim, 1);
    assert_int_equal(in->optim, k);
    assert_int_equal(in->optim_t, first->optim.t);
    assert_int_equal(in->masked, 1);
    assert_true(in->density == 0.3);
    assert_int_equal(in->arch.n_sizes, 3);
    struct train_opts o2;
    opts(&o2, k, 1);
    o2.init = in;
    struct train_model *cont = run(&o2);
    same_params(straight, cont);
    /* a checkpoint from another seed does not fit this network */
    o2.seed = 99;
    struct train_model *m = NULL;
    struct train_result r;
    assert_int_equal(train_run(&o2, &tr, NULL, NULL, NULL, &m, &r, &e), PEMN_EINVAL);
    assert_non_null(strstr(e.msg, "differs"));
    assert_null(m);
    train_init_free(in);
    train_model_free(straight);
    train_model_free(first);
    train_model_free(cont);
}

static void test_continue_sgd(void **state)
{
    (void)state;
    continue_equals_straight(TRAIN_OPT_SGD);
}

static void test_continue_adamw(void **state)
{
    (void)state;
    continue_equals_straight(TRAIN_OPT_ADAMW);
}

static void test_not_a_checkpoint(void **state)
{
    (void)state;
    if (!dir) {
        skip();
        return;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/plain.safetensors", dir);
    pemn_st_writer *w;
    assert_int_equal(pemn_st_writer_new(&w), PEMN_OK);
    float v[4] = {1, 2, 3, 4};
    uint64_t s[1] = {4};
    assert_int_equal(pemn_st_writer_add(w, "x", PEMN_DT_F32, 1, s, v, sizeof v, NULL), PEMN_OK);
    assert_int_equal(pemn_st_writer_write_file(w, path, NULL), PEMN_OK);
    pemn_st_writer_free(w);
    struct train_init *in = (struct train_init *)1;
    struct pemn_err e = {0};
    assert_int_equal(train_init_load(path, &in, &e), PEMN_EINVAL);
    assert_null(in);
    assert_non_null(strstr(e.msg, "not a pemn train checkpoint"));
    snprintf(path, sizeof path, "%s/missing.safetensors", dir);
    assert_int_equal(train_init_load(path, &in, &e), PEMN_ENOTFOUND);
    train_init_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_continue_sgd),
        cmocka_unit_test(test_continue_adamw),
        cmocka_unit_test(test_not_a_checkpoint),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
