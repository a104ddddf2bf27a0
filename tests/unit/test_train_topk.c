/* Unit tests: the training loop's incremental top-k (train/topk_band.c) gives exactly the
 * mask of pemn_topk_mask — through slow drifts (the fast path), jumps (the fallback),
 * heavy ties, NaN and infinities, zeros of both signs, and every density. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/pack.h>

#include "train/rng.h"
#include "train/topk_band.h"

/* One step: the mask-only call and the fused call (whose mask/weff persist in *m, *weff
 * across steps, as in training) both equal pemn_topk_mask. */
static void check_same(struct train_topk_state *st, struct train_topk_state *st2, const float *s,
                       size_t n, double k, uint8_t *m, float *weff)
{
    uint8_t *a = malloc(n), *b = malloc(n);
    float *w = calloc(n, sizeof(float));
    for (size_t i = 0; i < n; i++)
        w[i] = (float)i - 1.5f; /* nonzero, both signs */
    assert_int_equal(train_topk_update(st, s, n, k, a, NULL, NULL), PEMN_OK);
    assert_int_equal(pemn_topk_mask(s, n, k, b), PEMN_OK);
    assert_memory_equal(a, b, n);
    assert_int_equal(train_topk_update(st2, s, n, k, m, w, weff), PEMN_OK);
    assert_memory_equal(m, b, n);
    for (size_t i = 0; i < n; i++) {
        float e = w[i] * (float)(b[i] != 0);         /* weight * mask, as PyTorch */
        assert_memory_equal(&weff[i], &e, sizeof e); /* bitwise, signed zeros too */
    }
    free(a);
    free(b);
    free(w);
}

static void drift(float *s, size_t n, struct train_rng *r, float step)
{
    for (size_t i = 0; i < n; i++)
        s[i] += train_rng_uniform(r, step);
}

static void test_drift_matches(void **state)
{
    (void)state;
    const double ks[] = {0.05, 0.3, 0.5, 0.7, 0.999};
    const size_t ns[] = {1, 2, 17, 1000, 30000};
    for (size_t ni = 0; ni < 5; ni++)
        for (size_t ki = 0; ki < 5; ki++) {
            size_t n = ns[ni];
            struct train_rng r;
            train_rng_seed(&r, n * 31 + ki, 1);
            float *s = malloc(n * sizeof(float));
            for (size_t i = 0; i < n; i++)
                s[i] = train_rng_uniform(&r, 0.05f);
            struct train_topk_state st, st2;
            assert_int_equal(train_topk_init(&st, n / 16 + 64), PEMN_OK);
            assert_int_equal(train_topk_init(&st2, n / 16 + 64), PEMN_OK);
            uint8_t *m = calloc(n, 1);
            float *weff = calloc(n, sizeof(float));
            for (int step = 0; step < 40; step++) {
                check_same(&st, &st2, s, n, ks[ki], m, weff);
                drift(s, n, &r, step == 20 ? 1.0f : 1e-4f); /* one big jump */
            }
            if (n >= 1000)
                assert_true(st.fast > 30 && st2.fast > 30); /* the band answers most steps */
            train_topk_free(&st);
            train_topk_free(&st2);
            free(m);
            free(weff);
            free(s);
        }
}

static void test_ties_and_specials(void **state)
{
    (void)state;
    size_t n = 5000;
    float *s = malloc(n * sizeof(float));
    struct train_rng r;
    train_rng_seed(&r, 5, 1);
    struct train_topk_state st, st2;
    assert_int_equal(train_topk_init(&st, n / 16 + 64), PEMN_OK);
    assert_int_equal(train_topk_init(&st2, n / 16 + 64), PEMN_OK);
    uint8_t *mk = calloc(n, 1);
    float *weff = calloc(n, sizeof(float));
    for (int step = 0; step < 60; step++) {
        for (size_t i = 0; i < n; i++) /* few distinct values: ties everywhere */
            s[i] = (float)((int)train_rng_below(&r, 7) - 3) * 0.25f;
        if (step % 3 == 0)
            s[train_rng_below(&r, n)] = NAN;
        if (step % 4 == 0)
            s[train_rng_below(&r, n)] = -INFINITY;
        if (step % 5 == 0)
            s[train_rng_below(&r, n)] = -0.0f;
        check_same(&st, &st2, s, n, 0.5, mk, weff);
        check_same(&st, &st2, s, n, 0.3, mk, weff);
    }
    /* all NaN but the needed count missing: the fallback decides */
    for (size_t i = 0; i < n; i++)
        s[i] = i % 2 ? NAN : (float)i;
    check_same(&st, &st2, s, n, 0.7, mk, weff);
    check_same(&st, &st2, s, n, 0.5, mk, weff);
    check_same(&st, &st2, s, n, 1.0, mk, weff);
    uint8_t m[4];
    assert_int_equal(train_topk_update(&st, s, 4, 0.0, m, NULL, NULL), PEMN_EINVAL);
    assert_int_equal(train_topk_update(&st, s, 4, 1.5, m, NULL, NULL), PEMN_EINVAL);
    train_topk_free(&st);
    train_topk_free(&st2);
    free(mk);
    free(weff);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drift_matches),
        cmocka_unit_test(test_ties_and_specials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
