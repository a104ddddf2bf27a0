/* Unit tests: top-k counts and masks (pemn/pack.h) against a brute-force sort reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/pack.h>

/* ---- reference: sort indices by (|s| desc, NaN last, index asc), keep the first m ---- */
static const float *ref_scores;

static int ref_cmp(const void *a, const void *b)
{
    uint64_t i = *(const uint64_t *)a, j = *(const uint64_t *)b;
    float x = ref_scores[i], y = ref_scores[j];
    int xn = isnan(x), yn = isnan(y);
    if (xn != yn)
        return xn ? 1 : -1;
    if (!xn) {
        float ax = fabsf(x), ay = fabsf(y);
        if (ax > ay)
            return -1;
        if (ax < ay)
            return 1;
    }
    return i < j ? -1 : (i > j ? 1 : 0);
}

static void ref_mask(const float *s, uint64_t n, double k, uint8_t *mask)
{
    uint64_t *idx = malloc(n * sizeof *idx + 1);
    assert_non_null(idx);
    for (uint64_t i = 0; i < n; i++)
        idx[i] = i;
    ref_scores = s;
    qsort(idx, n, sizeof *idx, ref_cmp);
    /* the reference's count, computed independently of pemn_topk_count */
    uint64_t drop = (uint64_t)((1.0 - k) * (double)n);
    memset(mask, 0, n);
    for (uint64_t r = 0; r < n - drop; r++)
        mask[idx[r]] = 1;
    free(idx);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void check_against_ref(const float *s, uint64_t n, double k)
{
    uint8_t *got = malloc(n + 1), *want = malloc(n + 1);
    assert_non_null(got);
    assert_non_null(want);
    assert_int_equal(pemn_topk_mask(s, n, k, got), PEMN_OK);
    ref_mask(s, n, k, want);
    uint64_t kept = 0;
    for (uint64_t i = 0; i < n; i++) {
        assert_true(got[i] == 0 || got[i] == 1);
        kept += got[i];
    }
    assert_int_equal(kept, pemn_topk_count(n, k));
    assert_memory_equal(got, want, n);
    free(got);
    free(want);
}

/* ---- counts ----------------------------------------------------------------------------- */
static void test_count_values(void **state)
{
    (void)state;
    assert_int_equal(pemn_topk_count(10, 0.5), 5);
    assert_int_equal(pemn_topk_count(11, 0.5), 6); /* int(5.5) = 5 dropped */
    assert_int_equal(pemn_topk_count(1, 0.5), 1);  /* int(0.5) = 0 dropped */
    assert_int_equal(pemn_topk_count(0, 0.5), 0);
    assert_int_equal(pemn_topk_count(7, 1.0), 7);
    assert_int_equal(pemn_topk_count(100, 0.3), 30);
    /* (1 - 0.7) * 10 = 3.0000000000000004 in double: 3 dropped, 7 kept */
    assert_int_equal(pemn_topk_count(10, 0.7), 7);
    /* (1 - 0.9) * 10 = 0.9999999999999998: nothing dropped */
    assert_int_equal(pemn_topk_count(10, 0.9), 10);
    assert_int_equal(pemn_topk_count(3, 0.01), 1);
    assert_int_equal(pemn_topk_count(1000, 1e-30), 0);
    /* outside (0, 1] */
    assert_int_equal(pemn_topk_count(10, 0.0), 0);
    assert_int_equal(pemn_topk_count(10, -0.5), 0);
    assert_int_equal(pemn_topk_count(10, 1.5), 0);
    assert_int_equal(pemn_topk_count(10, NAN), 0);
}

static void test_count_matches_formula(void **state)
{
    (void)state;
    static const double ks[] = {0.01, 0.05, 0.1,  0.2, 0.25, 0.3,  1.0 / 3, 0.4, 0.5,
                                0.6,  0.7,  0.75, 0.8, 0.9,  0.95, 0.99,    1.0};
    for (uint64_t n = 0; n < 2000; n++)
        for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
            double drop = floor((1.0 - ks[j]) * (double)n);
            assert_int_equal(pemn_topk_count(n, ks[j]), n - (uint64_t)drop);
        }
}

/* ---- masks ------------------------------------------------------------------------------ */
static void test_mask_rejects_bad_k(void **state)
{
    (void)state;
    float s[4] = {1, 2, 3, 4};
    uint8_t m[4];
    assert_int_equal(pemn_topk_mask(s, 4, 0.0, m), PEMN_EINVAL);
    assert_int_equal(pemn_topk_mask(s, 4, 1.0001, m), PEMN_EINVAL);
    assert_int_equal(pemn_topk_mask(s, 4, NAN, m), PEMN_EINVAL);
    assert_int_equal(pemn_topk_mask(NULL, 4, 0.5, m), PEMN_EINVAL);
    assert_int_equal(pemn_topk_mask(s, 0, 0.5, NULL), PEMN_OK);
}

static void test_mask_small_known(void **state)
{
    (void)state;
    float s[6] = {0.1f, -5.0f, 3.0f, -0.2f, 4.0f, 0.0f};
    uint8_t m[6];
    assert_int_equal(pemn_topk_mask(s, 6, 0.5, m), PEMN_OK);
    uint8_t want[6] = {0, 1, 1, 0, 1, 0}; /* |-5|, 4, 3 */
    assert_memory_equal(m, want, 6);
    assert_int_equal(pemn_topk_mask(s, 6, 1.0, m), PEMN_OK);
    uint8_t all[6] = {1, 1, 1, 1, 1, 1};
    assert_memory_equal(m, all, 6);
    float one = -7.0f;
    assert_int_equal(pemn_topk_mask(&one, 1, 0.5, m), PEMN_OK);
    assert_int_equal(m[0], 1);
}

static void test_mask_ties_lower_index(void **state)
{
    (void)state;
    float s[10];
    for (int i = 0; i < 10; i++)
        s[i] = (i % 2) ? 2.0f : -2.0f; /* all equal in |score| */
    uint8_t m[10];
    assert_int_equal(pemn_topk_mask(s, 10, 0.3, m), PEMN_OK);
    uint8_t want[10] = {1, 1, 1, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(m, want, 10);
    /* partial tie at the threshold: 9 > the three 1.0s, lowest two of them kept */
    float t[6] = {1.0f, 0.5f, 1.0f, 9.0f, 1.0f, 0.5f};
    assert_int_equal(pemn_topk_mask(t, 6, 0.5, m), PEMN_OK);
    uint8_t want2[6] = {1, 0, 1, 1, 0, 0};
    assert_memory_equal(m, want2, 6);
    /* -0.0 and 0.0 tie */
    float z[4] = {-0.0f, 0.0f, -0.0f, 0.0f};
    assert_int_equal(pemn_topk_mask(z, 4, 0.5, m), PEMN_OK);
    uint8_t want3[4] = {1, 1, 0, 0};
    assert_memory_equal(m, want3, 4);
}

static void test_mask_nan_lowest(void **state)
{
    (void)state;
    float s[6] = {NAN, 0.0f, -NAN, 1e-30f, INFINITY, -INFINITY};
    uint8_t m[6];
    assert_int_equal(pemn_topk_mask(s, 6, 0.5, m), PEMN_OK);
    uint8_t want[6] = {0, 0, 0, 1, 1, 1};
    assert_memory_equal(m, want, 6);
    /* 5 of 6 kept: only the NaN at the higher index goes */
    assert_int_equal(pemn_topk_mask(s, 6, 0.8, m), PEMN_OK);
    uint8_t want2[6] = {1, 1, 0, 1, 1, 1};
    assert_memory_equal(m, want2, 6);
    assert_int_equal(pemn_topk_mask(s, 6, 0.9, m), PEMN_OK); /* int(0.6) = 0 dropped */
    uint8_t all[6] = {1, 1, 1, 1, 1, 1};
    assert_memory_equal(m, all, 6);
    check_against_ref(s, 6, 0.34);
}

static void test_mask_random_vs_sort(void **state)
{
    (void)state;
    static const double ks[] = {0.01, 0.1, 0.25, 1.0 / 3, 0.5, 0.7, 0.9, 0.99, 1.0};
    static const uint64_t ns[] = {1, 2, 3, 5, 7, 16, 31, 100, 257, 1000, 4099, 65537};
    float *s = malloc(65537 * sizeof *s);
    assert_non_null(s);
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        for (int mode = 0; mode < 4; mode++) {
            uint64_t n = ns[a];
            for (uint64_t i = 0; i < n; i++) {
                uint64_t r = rng();
                switch (mode) {
                case 0: /* continuous, both signs */
                    s[i] = (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
                    break;
                case 1: /* few distinct values: many ties */
                    s[i] = (float)((int)(r % 7) - 3);
                    break;
                case 2: /* raw bit patterns: NaNs, infinities, denormals, -0 */
                    memcpy(&s[i], &(uint32_t){(uint32_t)r}, 4);
                    break;
                default: /* all equal */
                    s[i] = -0.25f;
                }
            }
            for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++)
                check_against_ref(s, n, ks[b]);
        }
    }
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_values),          cmocka_unit_test(test_count_matches_formula),
        cmocka_unit_test(test_mask_rejects_bad_k),    cmocka_unit_test(test_mask_small_known),
        cmocka_unit_test(test_mask_ties_lower_index), cmocka_unit_test(test_mask_nan_lowest),
        cmocka_unit_test(test_mask_random_vs_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
