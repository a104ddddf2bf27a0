/* Unit tests: rollout buckets (stability, spread, monotonicity, reshuffle) and the abort
 * rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "server/srv_rollout.h"

#define N_DEV 20000

static void dev_name(char *buf, size_t n, int i)
{
    snprintf(buf, n, "device-%05d", i);
}

static void test_bucket_range_and_stability(void **state)
{
    (void)state;
    char d[32];
    for (int i = 0; i < 2000; i++) {
        dev_name(d, sizeof d, i);
        uint32_t b = srv_rollout_bucket("r1", d);
        assert_true(b < SRV_ROLLOUT_BUCKETS);
        assert_int_equal(b, srv_rollout_bucket("r1", d));
    }
    /* pinned value: the hash is part of the contract (docs/API.md), a change would move
     * every device of every running rollout */
    /* (values cross-checked with Python's hashlib.blake2b(digest_size=8)) */
    assert_int_equal(srv_rollout_bucket("00000000000000000000000000000000", "dev-1"), 6248);
    assert_int_equal(srv_rollout_bucket("r", "d"), 5523);
    /* the separator matters: ("ab","c") and ("a","bc") are different inputs */
    int differ = 0;
    for (int i = 0; i < 8; i++) {
        char r1[16], r2[16], d1[16], d2[16];
        snprintf(r1, sizeof r1, "ab%d", i);
        snprintf(d1, sizeof d1, "c");
        snprintf(r2, sizeof r2, "a");
        snprintf(d2, sizeof d2, "b%dc", i);
        differ += srv_rollout_bucket(r1, d1) != srv_rollout_bucket(r2, d2);
    }
    assert_true(differ >= 7);
}

static void test_spread_close_to_percent(void **state)
{
    (void)state;
    char d[32];
    static const uint32_t pcts[] = {100, 1000, 2000, 5000, 9000};
    for (size_t k = 0; k < sizeof pcts / sizeof pcts[0]; k++) {
        int in = 0;
        for (int i = 0; i < N_DEV; i++) {
            dev_name(d, sizeof d, i);
            in += srv_rollout_member("rollout-a", d, pcts[k]);
        }
        double frac = (double)in / N_DEV, want = pcts[k] / 10000.0;
        /* binomial sd at n=20000 is <= 0.0036; allow 4 sd */
        assert_true(fabs(frac - want) < 0.015);
    }
}

static void test_edges(void **state)
{
    (void)state;
    char d[32];
    for (int i = 0; i < 1000; i++) {
        dev_name(d, sizeof d, i);
        assert_false(srv_rollout_member("r", d, 0));
        assert_true(srv_rollout_member("r", d, 10000));
        assert_true(srv_rollout_member("r", d, 20000)); /* clamped */
    }
}

static void test_monotone_when_raised(void **state)
{
    (void)state;
    char d[32];
    for (int i = 0; i < 5000; i++) {
        dev_name(d, sizeof d, i);
        int was = 0;
        for (uint32_t bp = 0; bp <= 10000; bp += 250) {
            int now = srv_rollout_member("rollout-m", d, bp);
            assert_true(now >= was); /* once in, stays in while the percent rises */
            was = now;
        }
    }
}

static void test_new_rollout_reshuffles(void **state)
{
    (void)state;
    char d[32];
    int in_a = 0, in_b = 0, both = 0;
    for (int i = 0; i < N_DEV; i++) {
        dev_name(d, sizeof d, i);
        int a = srv_rollout_member("rollout-a", d, 2000);
        int b = srv_rollout_member("rollout-b", d, 2000);
        in_a += a;
        in_b += b;
        both += a && b;
    }
    /* independent: overlap about 20% of 20% = 4%, not 20% (same set) */
    assert_true(both < in_a / 2);
    assert_true(fabs((double)both / N_DEV - 0.04) < 0.01);
    assert_true(in_b > 0);
}

static void test_percent_parse(void **state)
{
    (void)state;
    uint32_t bp = 99;
    assert_int_equal(srv_percent_to_bp(20, &bp), PEMN_OK);
    assert_int_equal(bp, 2000);
    assert_int_equal(srv_percent_to_bp(0.5, &bp), PEMN_OK);
    assert_int_equal(bp, 50);
    assert_int_equal(srv_percent_to_bp(100, &bp), PEMN_OK);
    assert_int_equal(bp, 10000);
    assert_int_equal(srv_percent_to_bp(0, &bp), PEMN_OK);
    assert_int_equal(bp, 0);
    bp = 7;
    assert_int_equal(srv_percent_to_bp(-1, &bp), PEMN_EINVAL);
    assert_int_equal(srv_percent_to_bp(100.01, &bp), PEMN_EINVAL);
    assert_int_equal(srv_percent_to_bp(NAN, &bp), PEMN_EINVAL);
    assert_int_equal(srv_percent_to_bp(INFINITY, &bp), PEMN_EINVAL);
    assert_int_equal(bp, 7); /* untouched on error */
    assert_true(srv_bp_to_percent(2050) == 20.5);
}

static void test_abort_rule(void **state)
{
    (void)state;
    struct srv_abort_rule r = {.failure_bp = 1000, .min_devices = 20};
    assert_false(srv_rollout_should_abort(&r, 0, 0));
    assert_false(srv_rollout_should_abort(&r, 19, 19)); /* too few reporting */
    assert_false(srv_rollout_should_abort(&r, 1, 20));  /* 5% < 10% */
    assert_true(srv_rollout_should_abort(&r, 2, 20));   /* exactly 10% */
    assert_false(srv_rollout_should_abort(&r, 9, 91));  /* 9.89% */
    assert_true(srv_rollout_should_abort(&r, 10, 91));
    assert_true(srv_rollout_should_abort(&r, 500, 20)); /* clamped to reporting */
    struct srv_abort_rule none = {.failure_bp = 0, .min_devices = 0};
    assert_false(srv_rollout_should_abort(&none, 100, 100));
    assert_false(srv_rollout_should_abort(NULL, 100, 100));
    struct srv_abort_rule any = {.failure_bp = 1, .min_devices = 0};
    assert_false(srv_rollout_should_abort(&any, 0, 5));
    assert_true(srv_rollout_should_abort(&any, 1, 5));
    struct srv_abort_rule big = {.failure_bp = 10000, .min_devices = 1};
    assert_false(srv_rollout_should_abort(&big, UINT64_MAX / 2 - 1, UINT64_MAX / 2));
    assert_true(srv_rollout_should_abort(&big, UINT64_MAX / 2, UINT64_MAX / 2));
}

static void test_new_id(void **state)
{
    (void)state;
    char a[33], b[33];
    srv_rollout_new_id(a);
    srv_rollout_new_id(b);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(strspn(a, "0123456789abcdef"), 32);
    assert_string_not_equal(a, b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_range_and_stability),
        cmocka_unit_test(test_spread_close_to_percent),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_monotone_when_raised),
        cmocka_unit_test(test_new_rollout_reshuffles),
        cmocka_unit_test(test_percent_parse),
        cmocka_unit_test(test_abort_rule),
        cmocka_unit_test(test_new_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
