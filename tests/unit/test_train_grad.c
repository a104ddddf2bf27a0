/* Unit tests: the network's backward pass against finite differences (dense, with biases
 * and batch-norm), the straight-through score gradient, top-k masks in the forward pass,
 * prototypes from the seeded generator, the optimizers and schedule, and determinism. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/gen.h>
#include <pemn/pack.h>

#include "train/blas.h"
#include "train/edgepopup.h"
#include "train/optim.h"
#include "train/rng.h"
#include "train/train.h"

#define B 5

static void random_batch(float *x, uint8_t *y, size_t in, size_t classes, uint64_t seed)
{
    struct train_rng r;
    train_rng_seed(&r, seed, 9);
    for (size_t i = 0; i < B * in; i++)
        x[i] = train_rng_uniform(&r, 1.5f);
    for (size_t b = 0; b < B; b++)
        y[b] = (uint8_t)train_rng_below(&r, classes);
}

static double loss_of(struct train_net *net, const float *x, const uint8_t *y)
{
    size_t correct = 0;
    /* training forward (batch statistics), as the backward pass assumes */
    const float *z = train_net_forward(net, x, B, 1);
    return train_softmax_xent(z, y, B, net->out_dim, NULL, &correct);
}

/* Central difference in double around a float parameter. */
static double numeric(struct train_net *net, float *p, const float *x, const uint8_t *y)
{
    float keep = *p, h = 1e-3f;
    *p = keep + h;
    double lp = loss_of(net, x, y);
    *p = keep - h;
    double lm = loss_of(net, x, y);
    *p = keep;
    return (lp - lm) / (2.0 * (double)h);
}

static void check_dense(int bias, int bn)
{
    struct train_mlp_spec spec = {
        .n_sizes = 4, .sizes = {7, 6, 5, 4}, .bias = bias, .batchnorm = bn};
    struct train_net *net;
    struct pemn_err e;
    assert_int_equal(train_net_new(&spec, 0, 0, B, &net, &e), PEMN_OK);
    train_dense_init(net, 3);
    for (size_t i = 0; i < net->n_layers; i++) /* non-trivial batch-norm affine */
        if (net->layers[i].gamma)
            for (size_t c = 0; c < net->layers[i].out_dim; c++) {
                net->layers[i].gamma[c] = 0.5f + 0.1f * (float)c;
                net->layers[i].beta[c] = 0.05f * (float)c - 0.1f;
            }
    float x[B * 7], dl[B * 4];
    uint8_t y[B];
    random_batch(x, y, 7, 4, 11);
    size_t correct = 0;
    const float *z = train_net_forward(net, x, B, 1);
    train_softmax_xent(z, y, B, 4, dl, &correct);
    train_net_backward(net, dl, B);
    /* snapshot analytic gradients (forwards below overwrite nothing but activations) */
    size_t checked = 0;
    for (size_t p = 0; p < net->n_params; p++) {
        struct train_param *pa = &net->params[p];
        float *g = malloc(pa->n * sizeof(float));
        memcpy(g, pa->grad, pa->n * sizeof(float));
        for (size_t i = 0; i < pa->n; i += 1 + pa->n / 9) {
            double num = numeric(net, &pa->value[i], x, y);
            double tol = 2e-3 + 2e-2 * fabs(num);
            if (fabs(num - g[i]) > tol)
                fail_msg("bias %d bn %d %s[%zu]: analytic %g numeric %g", bias, bn, pa->name, i,
                         (double)g[i], num);
            checked++;
        }
        free(g);
    }
    assert_true(checked > 20);
    train_net_free(net);
}

static void test_dense_gradcheck(void **state)
{
    (void)state;
    check_dense(0, 0);
    check_dense(1, 0);
    check_dense(1, 1);
}

static void test_straight_through(void **state)
{
    (void)state;
    struct train_mlp_spec spec = {.n_sizes = 3, .sizes = {8, 6, 4}, .bias = 1};
    struct train_net *net;
    struct train_protos protos;
    struct pemn_err e;
    assert_int_equal(train_net_new(&spec, 1, 0.5, B, &net, &e), PEMN_OK);
    assert_int_equal(train_ep_init(net, TRAIN_STRAT_MASK, 0, PEMN_GEN_UNIFORM, 1, 5, &protos, &e),
                     PEMN_OK);
    float x[B * 8], dl[B * 4];
    uint8_t y[B];
    random_batch(x, y, 8, 4, 12);
    size_t correct = 0;
    const float *z = train_net_forward(net, x, B, 1);
    train_softmax_xent(z, y, B, 4, dl, &correct);
    train_net_backward(net, dl, B);
    for (size_t li = 0; li < net->n_layers; li++) {
        struct train_layer *l = &net->layers[li];
        if (!l->masked)
            continue;
        size_t n = l->in_dim * l->out_dim;
        for (size_t i = 0; i < n; i++) {
            /* d L / d weff by finite differences, on kept and pruned weights alike */
            double dweff = numeric(net, &l->weff[i], x, y);
            float sign = (l->scores[i] > 0) - (l->scores[i] < 0);
            double expect = dweff * l->weight[i] * sign;
            assert_true(fabs((double)l->weight_grad[i] - dweff) < 2e-3 + 2e-2 * fabs(dweff));
            assert_true(fabs((double)l->scores_grad[i] - expect) < 2e-3 + 2e-2 * fabs(expect));
            /* and exactly the formula from the analytic dL/dweff */
            assert_true(l->scores_grad[i] == l->weight_grad[i] * l->weight[i] * sign);
        }
    }
    /* every score gets a gradient, not only the kept ones */
    struct train_layer *l0 = &net->layers[0];
    size_t nz_pruned = 0;
    for (size_t i = 0; i < 48; i++)
        nz_pruned += !l0->mask[i] && l0->scores_grad[i] != 0.0f;
    assert_true(nz_pruned > 0);
    train_net_free(net);
}

static void test_topk_in_forward(void **state)
{
    (void)state;
    struct train_mlp_spec spec = {.n_sizes = 4, .sizes = {20, 30, 10, 3}};
    const double ks[] = {0.3, 0.5, 0.7, 1.0};
    for (size_t t = 0; t < 4; t++) {
        struct train_net *net;
        struct train_protos protos;
        struct pemn_err e;
        assert_int_equal(train_net_new(&spec, 1, ks[t], 8, &net, &e), PEMN_OK);
        assert_int_equal(
            train_ep_init(net, TRAIN_STRAT_RP, 0.05, PEMN_GEN_SIGNED, 1, 9, &protos, &e), PEMN_OK);
        for (size_t li = 0; li < net->n_layers; li++) {
            struct train_layer *l = &net->layers[li];
            if (!l->masked)
                continue;
            size_t n = l->in_dim * l->out_dim, kept = 0;
            uint8_t *m = malloc(n);
            assert_int_equal(pemn_topk_mask(l->scores, n, ks[t], m), PEMN_OK);
            assert_memory_equal(m, l->mask, n);
            for (size_t i = 0; i < n; i++) {
                kept += l->mask[i] != 0;
                float expect = l->weight[i] * (float)(l->mask[i] != 0);
                assert_memory_equal(&l->weff[i], &expect, sizeof(float)); /* bitwise */
            }
            assert_int_equal(kept, pemn_topk_count(n, ks[t]));
            /* the kept ones are the largest |score| */
            float min_kept = INFINITY, max_dropped = 0;
            for (size_t i = 0; i < n; i++) {
                float a = fabsf(l->scores[i]);
                if (l->mask[i] && a < min_kept)
                    min_kept = a;
                if (!l->mask[i] && a > max_dropped)
                    max_dropped = a;
            }
            assert_true(min_kept >= max_dropped);
            free(m);
        }
        train_net_free(net);
    }
}

static void test_prototypes(void **state)
{
    (void)state;
    struct train_mlp_spec spec = {.n_sizes = 4, .sizes = {50, 40, 40, 10}};
    struct pemn_err e;
    const enum train_strategy strats[] = {TRAIN_STRAT_MASK, TRAIN_STRAT_ONE_LAYER, TRAIN_STRAT_MP,
                                          TRAIN_STRAT_RP};
    const size_t nprotos[] = {3, 3 /* 40x50, 40x40, 10x40 all differ */, 1, 1};
    for (int ls = 0; ls < 2; ls++)
        for (size_t s = 0; s < 4; s++) {
            struct train_net *net;
            struct train_protos protos;
            assert_int_equal(train_net_new(&spec, 1, 0.5, 8, &net, &e), PEMN_OK);
            assert_int_equal(
                train_ep_init(net, strats[s], 1e-2, PEMN_GEN_UNIFORM, ls, 77, &protos, &e),
                PEMN_OK);
            assert_int_equal(protos.n, nprotos[s]);
            if (strats[s] == TRAIN_STRAT_RP)
                assert_int_equal(protos.p[0].length, 2000 / 100 + 1); /* floor(2000*0.01)+1 */
            if (strats[s] == TRAIN_STRAT_MP)
                assert_int_equal(protos.p[0].length, 2000);
            for (size_t li = 0; li < net->n_layers; li++) {
                struct train_layer *l = &net->layers[li];
                if (!l->masked)
                    continue;
                const struct train_proto *p = &protos.p[l->proto];
                float *u = malloc(p->length * sizeof(float));
                assert_int_equal(pemn_gen_fill(p->gen, p->seed, p->scale, 0, u, p->length),
                                 PEMN_OK);
                size_t n = l->in_dim * l->out_dim;
                for (size_t i = 0; i < n; i++) {
                    float expect = l->scale * u[(l->offset + i) % p->length];
                    assert_memory_equal(&l->weight[i], &expect, sizeof(float));
                }
                double want = sqrt(2.0 / (0.5 * (double)(ls ? l->in_dim : 50))) * sqrt(3.0);
                assert_true(fabs(l->scale - want) < 1e-6 * want);
                free(u);
            }
            train_net_free(net);
        }
    /* seeds differ per prototype and per training seed */
    uint8_t a[32], b[32], c[32];
    train_proto_seed(1, 0, a);
    train_proto_seed(1, 1, b);
    train_proto_seed(2, 0, c);
    assert_memory_not_equal(a, b, 32);
    assert_memory_not_equal(a, c, 32);
    assert_int_equal(train_rp_length(235200, 1e-3), 236);
    assert_int_equal(train_rp_length(235200, 1e-4), 24);
}

static void test_optim(void **state)
{
    (void)state;
    struct train_mlp_spec spec = {.n_sizes = 2, .sizes = {1, 1}};
    struct train_net *net;
    struct pemn_err e;
    assert_int_equal(train_net_new(&spec, 0, 0, 1, &net, &e), PEMN_OK);
    struct train_optim o;
    assert_int_equal(train_optim_init(&o, TRAIN_OPT_SGD, 0.9, 0.1, net, &e), PEMN_OK);
    net->layers[0].weight[0] = 1.0f;
    net->layers[0].weight_grad[0] = 0.5f;
    train_optim_step(&o, net, 0.1); /* g = 0.5 + 0.1*1 = 0.6; buf 0.6; w = 1 - 0.06 */
    assert_float_equal(net->layers[0].weight[0], 0.94f, 1e-6);
    train_optim_step(&o, net, 0.1); /* g = 0.5 + 0.094; buf = 0.54 + 0.594; w -= 0.1134 */
    assert_float_equal(net->layers[0].weight[0], 0.94f - 0.1134f, 1e-6);
    train_optim_free(&o);
    assert_int_equal(train_optim_init(&o, TRAIN_OPT_ADAMW, 0, 0.01, net, &e), PEMN_OK);
    net->layers[0].weight[0] = 1.0f;
    net->layers[0].weight_grad[0] = -3.0f;
    train_optim_step(&o, net, 0.1); /* first Adam step moves by lr * sign(g): +0.1, decay */
    assert_float_equal(net->layers[0].weight[0], 1.0f * (1 - 0.001f) + 0.1f, 1e-5);
    train_optim_free(&o);
    train_net_free(net);
    assert_float_equal(train_cosine_lr(0.1, 0, 100), 0.1, 1e-12);
    assert_float_equal(train_cosine_lr(0.1, 50, 100), 0.05, 1e-12);
    assert_float_equal(train_cosine_lr(0.1, 100, 100), 0.0, 1e-12);
    enum train_opt_kind k;
    assert_int_equal(train_optim_parse("adamw", &k), PEMN_OK);
    assert_int_equal(k, TRAIN_OPT_ADAMW);
    assert_int_equal(train_optim_parse("adam", &k), PEMN_EINVAL);
}

/* A synthetic separable task: class c lights pixel block c. */
static void synth(struct train_data *d, uint32_t n, uint64_t seed)
{
    struct train_rng r;
    train_rng_seed(&r, seed, 5);
    d->n = n;
    d->rows = d->cols = 4;
    d->dim = 16;
    d->n_classes = 4;
    d->images = malloc((size_t)n * 16);
    d->labels = malloc(n);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)train_rng_below(&r, 4);
        d->labels[i] = c;
        for (int j = 0; j < 16; j++)
            d->images[i * 16 + j] = (uint8_t)(train_rng_below(&r, 100) + (j / 4 == c ? 150 : 0));
    }
}

static void test_determinism(void **state)
{
    (void)state;
    struct train_data tr, te;
    synth(&tr, 300, 1);
    synth(&te, 100, 2);
    struct train_opts o;
    train_opts_default(&o);
    o.arch.n_sizes = 3;
    o.arch.sizes[0] = 16;
    o.arch.sizes[1] = 12;
    o.arch.sizes[2] = 4;
    o.epochs = 3;
    o.batch = 32;
    o.ratio = 0.1;
    struct train_model *m[3];
    struct train_result r[3];
    struct pemn_err e;
    for (int i = 0; i < 3; i++) {
        o.seed = i == 2 ? 8 : 7;
        assert_int_equal(train_run(&o, &tr, &te, NULL, NULL, &m[i], &r[i], &e), PEMN_OK);
    }
    for (size_t li = 0; li < m[0]->net->n_layers; li++) {
        struct train_layer *a = &m[0]->net->layers[li], *b = &m[1]->net->layers[li],
                           *c = &m[2]->net->layers[li];
        if (!a->masked)
            continue;
        size_t n = a->in_dim * a->out_dim;
        assert_memory_equal(a->scores, b->scores, n * sizeof(float));
        assert_memory_equal(a->mask, b->mask, n);
        assert_memory_not_equal(a->scores, c->scores, n * sizeof(float));
    }
    assert_true(r[0].test_acc == r[1].test_acc);
    assert_true(r[0].final_loss == r[1].final_loss);
    /* the task is easy: edge-popup learns it */
    assert_true(r[0].test_acc > 0.8);
    assert_true(r[0].final_loss < r[0].first_loss);
    for (int i = 0; i < 3; i++)
        train_model_free(m[i]);
    /* dense mode too, with AdamW */
    o.masked = 0;
    o.optim = TRAIN_OPT_ADAMW;
    o.lr = 0.01;
    o.seed = 3;
    assert_int_equal(train_run(&o, &tr, &te, NULL, NULL, &m[0], &r[0], &e), PEMN_OK);
    assert_int_equal(train_run(&o, &tr, &te, NULL, NULL, &m[1], &r[1], &e), PEMN_OK);
    assert_memory_equal(m[0]->net->layers[0].weight, m[1]->net->layers[0].weight,
                        16 * 12 * sizeof(float));
    assert_true(r[0].test_acc > 0.8);
    train_model_free(m[0]);
    train_model_free(m[1]);
    /* bad options: clear errors */
    o.epochs = 0;
    assert_int_equal(train_run(&o, &tr, &te, NULL, NULL, &m[0], &r[0], &e), PEMN_EINVAL);
    assert_null(m[0]);
    o.epochs = 1;
    o.arch.sizes[0] = 15;
    assert_int_equal(train_run(&o, &tr, &te, NULL, NULL, &m[0], &r[0], &e), PEMN_EINVAL);
    assert_non_null(strstr(e.msg, "16 inputs"));
    o.arch.sizes[0] = 16;
    o.arch.sizes[2] = 3; /* labels up to 3 need 4 outputs */
    assert_int_equal(train_run(&o, &tr, &te, NULL, NULL, &m[0], &r[0], &e), PEMN_EINVAL);
    o.arch.sizes[2] = 4;
    o.arch.batchnorm = 1;
    o.batch = 1;
    assert_int_equal(train_run(&o, &tr, &te, NULL, NULL, &m[0], &r[0], &e), PEMN_EINVAL);
    assert_non_null(strstr(e.msg, "batch-norm"));
    train_data_free(&tr);
    train_data_free(&te);
}

static void test_naive_gemm_peer(void **state)
{
    (void)state;
    struct train_mlp_spec spec = {.n_sizes = 3, .sizes = {37, 23, 11}, .bias = 1};
    struct train_net *net;
    struct pemn_err e;
    assert_int_equal(train_net_new(&spec, 0, 0, B, &net, &e), PEMN_OK);
    train_dense_init(net, 4);
    float x[B * 37], dl[B * 11], z1[B * 11], g1[23 * 37];
    uint8_t y[B];
    random_batch(x, y, 37, 11, 13);
    size_t correct = 0;
    for (int naive = 0; naive < 2; naive++) {
        train_set_naive_gemm(naive);
        const float *z = train_net_forward(net, x, B, 1);
        train_softmax_xent(z, y, B, 11, dl, &correct);
        train_net_backward(net, dl, B);
        if (!naive) {
            memcpy(z1, z, sizeof z1);
            memcpy(g1, net->layers[0].weight_grad, sizeof g1);
            continue;
        }
        for (size_t i = 0; i < B * 11; i++)
            assert_float_equal(z[i], z1[i], 1e-4);
        for (size_t i = 0; i < 23 * 37; i++)
            assert_float_equal(net->layers[0].weight_grad[i], g1[i], 1e-4);
    }
    train_set_naive_gemm(0);
    train_net_free(net);
}

static int count_cb(const struct train_progress *p, void *ud)
{
    int *calls = ud;
    ++*calls;
    assert_true(p->step >= 1 && p->step <= p->steps_epoch);
    assert_true(p->loss > 0);
    if (p->epoch_done)
        assert_true(p->val_acc >= 0 && p->test_acc >= 0);
    return 0;
}

static int stop_cb(const struct train_progress *p, void *ud)
{
    (void)ud;
    return p->step == 3; /* stop during the first epoch */
}

static void test_holdout_progress_cancel(void **state)
{
    (void)state;
    struct train_data tr, te;
    synth(&tr, 300, 1);
    synth(&te, 100, 2);
    struct train_opts o;
    train_opts_default(&o);
    o.arch.n_sizes = 3;
    o.arch.sizes[0] = 16;
    o.arch.sizes[1] = 12;
    o.arch.sizes[2] = 4;
    o.epochs = 2;
    o.batch = 25;
    o.holdout = 50;
    struct train_model *m = NULL;
    struct train_result r;
    struct pemn_err e;
    int calls = 0;
    assert_int_equal(train_run(&o, &tr, &te, count_cb, &calls, &m, &r, &e), PEMN_OK);
    assert_int_equal(calls, 2 * 10); /* 250 samples / 25 per step, 2 epochs */
    assert_int_equal(r.samples, 2 * 250);
    assert_true(r.val_acc >= 0.5);
    train_model_free(m);
    assert_int_equal(train_run(&o, &tr, &te, stop_cb, NULL, &m, &r, &e), PEMN_ECANCELED);
    assert_null(m);
    o.holdout = 300; /* nothing left to train on */
    assert_int_equal(train_run(&o, &tr, &te, NULL, NULL, &m, &r, &e), PEMN_EINVAL);
    train_data_free(&tr);
    train_data_free(&te);
}

static void test_blas_core_choice(void **state)
{
    (void)state;
    assert_string_equal(train_blas_suggest_core("Prescott", 1, 1), "SkylakeX");
    assert_string_equal(train_blas_suggest_core("Prescott", 1, 0), "Haswell");
    assert_string_equal(train_blas_suggest_core("Sandybridge", 1, 0), "Haswell");
    assert_null(train_blas_suggest_core("Prescott", 0, 0)); /* no AVX2: nothing better */
    assert_null(train_blas_suggest_core("Haswell", 1, 1));  /* already a good choice */
    assert_null(train_blas_suggest_core("SkylakeX", 1, 1));
    assert_null(train_blas_suggest_core("Zen", 1, 0));
    assert_null(train_blas_suggest_core(NULL, 1, 1));
    /* whatever this machine says, the answer is one of the three */
    const char *here = train_blas_suggest_core_here();
    assert_true(!here || !strcmp(here, "SkylakeX") || !strcmp(here, "Haswell"));
}

static void test_arch_parse(void **state)
{
    (void)state;
    struct train_mlp_spec s;
    struct pemn_err e;
    char buf[64];
    assert_int_equal(train_mlp_parse("784-300-100-10", &s, &e), PEMN_OK);
    assert_int_equal(s.n_sizes, 4);
    train_mlp_format(&s, buf, sizeof buf);
    assert_string_equal(buf, "784-300-100-10");
    const char *bad[] = {"",         "784",   "784-",       "-10",     "784--10",
                         "784-0-10", "784-x", "99999999-1", "784-300 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(train_mlp_parse(bad[i], &s, &e), PEMN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_gradcheck),
        cmocka_unit_test(test_straight_through),
        cmocka_unit_test(test_topk_in_forward),
        cmocka_unit_test(test_prototypes),
        cmocka_unit_test(test_optim),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_arch_parse),
        cmocka_unit_test(test_naive_gemm_peer),
        cmocka_unit_test(test_holdout_progress_cancel),
        cmocka_unit_test(test_blas_core_choice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
