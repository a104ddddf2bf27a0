/* Contract test of storage/store_metadata.h (signed desired-state answers): the per-device
 * counter only rises (also across concurrent callers and a reopen), a stored body is only
 * replaced by a higher version, bad input is refused and changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store_metadata.h"
#include "tests/common/storefix.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct store *open_store(void)
{
    struct store *st = NULL;
    struct pemn_err e;
    pemn_rc rc = store_open(storefix_db, NULL, &st, &e);
    if (rc)
        fail_msg("store_open: %s", e.msg);
    return st;
}

static struct store_metadata meta(uint64_t version, const char *fleet, const char *body)
{
    struct store_metadata m;
    memset(&m, 0, sizeof m);
    m.version = version;
    snprintf(m.fleet, sizeof m.fleet, "%s", fleet);
    memset(m.answer_hash, 'a' + (int)(version % 6), 64);
    m.issued = 1000 + (int64_t)version;
    m.expires = 2000 + (int64_t)version;
    snprintf(m.body, sizeof m.body, "%s", body);
    return m;
}

static void test_counter_rises(void **state)
{
    (void)state;
    struct store *st = open_store();
    uint64_t v = 99;
    assert_int_equal(store_metadata_counter(st, "dev1", &v, NULL), PEMN_OK);
    assert_int_equal(v, 0);
    for (uint64_t i = 1; i <= 5; i++) {
        assert_int_equal(store_metadata_next_version(st, "dev1", &v, NULL), PEMN_OK);
        assert_int_equal(v, i);
    }
    /* another device has its own counter */
    assert_int_equal(store_metadata_next_version(st, "dev2", &v, NULL), PEMN_OK);
    assert_int_equal(v, 1);
    store_close(st);
    /* a reopen (a pemnd restart) continues from where it was */
    st = open_store();
    assert_int_equal(store_metadata_next_version(st, "dev1", &v, NULL), PEMN_OK);
    assert_int_equal(v, 6);
    assert_int_equal(store_metadata_counter(st, "dev1", &v, NULL), PEMN_OK);
    assert_int_equal(v, 6);
    store_close(st);
}

static void test_put_get(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct store_metadata got;
    bool found = true, stored = false;
    assert_int_equal(store_metadata_get(st, "d", &got, &found, NULL), PEMN_OK);
    assert_false(found);
    uint64_t v;
    assert_int_equal(store_metadata_next_version(st, "d", &v, NULL), PEMN_OK);
    /* counter without a body: still nothing to read */
    assert_int_equal(store_metadata_get(st, "d", &got, &found, NULL), PEMN_OK);
    assert_false(found);
    struct store_metadata m = meta(v, "f1", "{\"signed\":1}");
    assert_int_equal(store_metadata_put(st, "d", &m, &stored, NULL), PEMN_OK);
    assert_true(stored);
    assert_int_equal(store_metadata_get(st, "d", &got, &found, NULL), PEMN_OK);
    assert_true(found);
    assert_int_equal(got.version, 1);
    assert_string_equal(got.fleet, "f1");
    assert_string_equal(got.body, "{\"signed\":1}");
    assert_string_equal(got.answer_hash, m.answer_hash);
    assert_int_equal(got.issued, 1001);
    assert_int_equal(got.expires, 2001);

    /* two signers race: version 3 is stored first, the slower version 2 loses */
    uint64_t v2, v3;
    assert_int_equal(store_metadata_next_version(st, "d", &v2, NULL), PEMN_OK);
    assert_int_equal(store_metadata_next_version(st, "d", &v3, NULL), PEMN_OK);
    struct store_metadata m3 = meta(v3, "f1", "three");
    struct store_metadata m2 = meta(v2, "f2", "two");
    assert_int_equal(store_metadata_put(st, "d", &m3, &stored, NULL), PEMN_OK);
    assert_true(stored);
    assert_int_equal(store_metadata_put(st, "d", &m2, &stored, NULL), PEMN_OK);
    assert_false(stored);
    /* and the same version twice is not stored twice */
    assert_int_equal(store_metadata_put(st, "d", &m3, &stored, NULL), PEMN_OK);
    assert_false(stored);
    assert_int_equal(store_metadata_get(st, "d", &got, &found, NULL), PEMN_OK);
    assert_string_equal(got.body, "three");
    assert_int_equal(got.version, 3);
    store_close(st);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    uint64_t v;
    bool found, stored = true;
    struct store_metadata got;
    assert_int_equal(store_metadata_next_version(st, "", &v, &e), PEMN_EINVAL);
    assert_int_equal(store_metadata_get(st, "", &got, &found, &e), PEMN_EINVAL);
    assert_int_equal(store_metadata_next_version(st, "x", &v, NULL), PEMN_OK);
    struct store_metadata m = meta(v, "f", "body");
    /* a version never handed out */
    m.version = v + 1;
    assert_int_equal(store_metadata_put(st, "x", &m, &stored, &e), PEMN_EINVAL);
    assert_false(stored);
    assert_non_null(strstr(e.msg, "never handed out"));
    /* version 0, empty body, a device without a counter */
    m.version = 0;
    assert_int_equal(store_metadata_put(st, "x", &m, NULL, &e), PEMN_EINVAL);
    m = meta(v, "f", "");
    assert_int_equal(store_metadata_put(st, "x", &m, NULL, &e), PEMN_EINVAL);
    m = meta(1, "f", "body");
    assert_int_equal(store_metadata_put(st, "nobody", &m, NULL, &e), PEMN_EINVAL);
    /* nothing of that was stored */
    assert_int_equal(store_metadata_get(st, "x", &got, &found, NULL), PEMN_OK);
    assert_false(found);
    assert_int_equal(store_metadata_get(st, "nobody", &got, &found, NULL), PEMN_OK);
    assert_false(found);
    store_close(st);
}

#define THREADS 4
#define PER_THREAD 50

struct race {
    struct store *st;
    uint64_t got[PER_THREAD];
    pemn_rc rc;
};

static void *racer(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < PER_THREAD && !r->rc; i++)
        r->rc = store_metadata_next_version(r->st, "busy", &r->got[i], NULL);
    return NULL;
}

static void test_concurrent_unique(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct race rs[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&rs[i], 0, sizeof rs[i]);
        rs[i].st = st;
        assert_int_equal(pthread_create(&th[i], NULL, racer, &rs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    static unsigned char seen[THREADS * PER_THREAD + 1];
    memset(seen, 0, sizeof seen);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(rs[i].rc, PEMN_OK);
        for (int k = 0; k < PER_THREAD; k++) {
            uint64_t v = rs[i].got[k];
            assert_true(v >= 1 && v <= THREADS * PER_THREAD);
            assert_int_equal(seen[v], 0); /* never handed out twice */
            seen[v] = 1;
            if (k)
                assert_true(v > rs[i].got[k - 1]); /* rising for each caller */
        }
    }
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counter_rises, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_put_get, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_unique, storefix_setup, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
