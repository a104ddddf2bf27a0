/* Unit tests: storage/store_verify.h — stored bytes that no longer hash to their digest are
 * refused by store_blob_get (cached and streamed), found by store_verify_blob and listed by
 * store_scrub; sound blobs pass and are remembered. Contract test: every backend
 * (tests/common/storefix.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store_verify.h"
#include "tests/common/storefix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void put(struct store *st, const char *version, uint64_t release, size_t size,
                char digest[PEMN_DIGEST_TEXT_MAX])
{
    uint8_t *b = malloc(size);
    assert_non_null(b);
    for (size_t i = 0; i < size; i++)
        b[i] = (uint8_t)(i * 13 + release);
    struct store_version m;
    memset(&m, 0, sizeof m);
    snprintf(m.model, sizeof m.model, "net");
    snprintf(m.version, sizeof m.version, "%s", version);
    snprintf(m.strategy, sizeof m.strategy, "rp");
    snprintf(m.signer, sizeof m.signer, "0123456789abcdef");
    m.release = release;
    m.size = size;
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(b, size, d);
    pemn_digest_format(d, m.digest);
    bool created;
    struct pemn_err e;
    assert_int_equal(store_put_package(st, &m, b, size, "t", &created, NULL, &e), PEMN_OK);
    memcpy(digest, m.digest, PEMN_DIGEST_TEXT_MAX);
    free(b);
}

/* Damages one blob behind the store's back, as bit rot would (same length). */
static void corrupt(const char *digest)
{
    char q1[400], q2[600];
    snprintf(q1, sizeof q1, "UPDATE blobs SET data = randomblob(length(data)) WHERE digest = '%s'",
             digest);
    snprintf(q2, sizeof q2,
             "UPDATE blob_chunks SET data = decode(md5(random()::text), 'hex') ||"
             " substring(data from 17) WHERE idx = 0 AND blob_id ="
             " (SELECT id FROM blobs WHERE digest = '%s')",
             digest);
    assert_int_equal(storefix_sql(q1, q2), 0);
}

struct seen {
    int n;
    char digest[4][PEMN_DIGEST_TEXT_MAX];
};

static int on_bad(void *ctx, const char *digest, uint64_t size, pemn_rc rc, const char *msg)
{
    struct seen *s = ctx;
    assert_int_equal(rc, PEMN_EDIGEST);
    assert_non_null(strstr(msg, "digest"));
    if (s->n < 4)
        snprintf(s->digest[s->n], PEMN_DIGEST_TEXT_MAX, "%s", digest);
    s->n++;
    return 0;
}

static void run(size_t cache_item_max)
{
    struct store_opts o;
    store_opts_default(&o);
    o.cache_item_max = cache_item_max;
    struct store *st = NULL;
    struct pemn_err e;
    assert_int_equal(store_open(storefix_db, &o, &st, &e), PEMN_OK);
    char da[PEMN_DIGEST_TEXT_MAX], db[PEMN_DIGEST_TEXT_MAX], dc[PEMN_DIGEST_TEXT_MAX];
    put(st, "1.0.0", 1, 5000, da);
    put(st, "1.1.0", 2, 3 << 20, db); /* several hash chunks */
    put(st, "1.2.0", 3, 100, dc);
    store_close(st);
    corrupt(da);
    corrupt(db);
    assert_int_equal(store_open(storefix_db, &o, &st, &e), PEMN_OK);

    struct store_blob *b = NULL;
    assert_int_equal(store_blob_get(st, da, &b, &e), PEMN_EDIGEST);
    assert_null(b);
    assert_non_null(strstr(e.msg, "do not hash"));
    assert_int_equal(store_blob_get(st, db, &b, &e), PEMN_EDIGEST);
    assert_int_equal(store_blob_get(st, da, &b, &e), PEMN_EDIGEST); /* not remembered as good */
    assert_false(store_verify_known(st, da));
    assert_int_equal(store_blob_get(st, dc, &b, &e), PEMN_OK);
    assert_int_equal(b->size, 100);
    store_blob_release(b);
    assert_true(store_verify_known(st, dc));

    assert_int_equal(store_verify_blob(st, da, &e), PEMN_EDIGEST);
    assert_int_equal(store_verify_blob(st, dc, &e), PEMN_OK);
    assert_int_equal(store_verify_blob(st,
                                       "sha256:"
                                       "00000000000000000000000000000000"
                                       "00000000000000000000000000000000",
                                       &e),
                     PEMN_ENOTFOUND);
    assert_int_equal(store_verify_blob(st, "nope", &e), PEMN_EINVAL);

    struct seen seen = {0};
    struct store_scrub_stats sx;
    assert_int_equal(store_scrub(st, 0, NULL, on_bad, &seen, &sx, &e), PEMN_OK);
    assert_int_equal(sx.blobs, 3);
    assert_int_equal(sx.bad, 2);
    assert_int_equal(sx.unreadable, 0);
    assert_int_equal(sx.bytes, 5000 + (3 << 20) + 100);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.digest[0], da);
    assert_string_equal(seen.digest[1], db);

    /* a stop flag already set stops the scrub before it reads anything */
    atomic_bool stop;
    atomic_init(&stop, true);
    assert_int_equal(store_scrub(st, 0, &stop, NULL, NULL, &sx, &e), PEMN_ECANCELED);
    assert_int_equal(sx.blobs, 0);
    store_close(st);
}

static void test_verify_cached(void **state)
{
    (void)state;
    run(64u << 20);
}

static void test_verify_streamed(void **state)
{
    (void)state;
    run(1024); /* every blob but the smallest is streamed in chunks */
}

static void test_scrub_rate(void **state)
{
    (void)state;
    struct store *st = NULL;
    struct pemn_err e;
    assert_int_equal(store_open(storefix_db, NULL, &st, &e), PEMN_OK);
    char d[PEMN_DIGEST_TEXT_MAX];
    put(st, "1.0.0", 1, 3 << 20, d);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct store_scrub_stats sx;
    /* 3 MiB at 6 MiB/s: the rate holds it back ~0.3 s at least (a lower bound, not a timing) */
    assert_int_equal(store_scrub(st, 6u << 20, NULL, NULL, NULL, &sx, &e), PEMN_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(secs >= 0.3);
    assert_int_equal(sx.bad, 0);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_verify_cached, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_verify_streamed, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_scrub_rate, storefix_setup, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
