/* Contract test of storage/store_trust.h (the root chain and package signers) on every
 * backend (tests/common/storefix.h: SQLite, and PostgreSQL when PEMN_TEST_PG_HOST is set):
 * consecutive versions, idempotent re-adds, conflicts, latest, listing, audit, concurrent adds,
 * signers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store_trust.h"
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
    if (store_open(storefix_db, NULL, &st, &e))
        fail_msg("store_open: %s", e.msg);
    return st;
}

static pemn_rc put(struct store *st, uint64_t v, const char *text, bool *created)
{
    struct pemn_err e = {0};
    return store_trust_root_put(st, v, 1000 + (int64_t)v, text, strlen(text), "test", created, &e);
}

static void test_chain_rules(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e = {0};
    struct store_root m;
    uint8_t *b = (uint8_t *)1;
    size_t n = 1;
    assert_int_equal(store_trust_root_get(st, 0, &m, &b, &n, &e), PEMN_ENOTFOUND);
    assert_null(b);
    assert_int_equal(n, 0);
    bool created = false;
    /* the first root may start anywhere */
    assert_int_equal(put(st, 5, "root five", &created), PEMN_OK);
    assert_true(created);
    assert_int_equal(put(st, 5, "root five", &created), PEMN_OK); /* idempotent */
    assert_false(created);
    assert_int_equal(put(st, 5, "other five", &created), PEMN_ECONFLICT);
    assert_int_equal(put(st, 7, "root seven", &created), PEMN_ECONFLICT); /* gap */
    assert_int_equal(put(st, 4, "root four", &created), PEMN_ECONFLICT);  /* older */
    assert_int_equal(put(st, 6, "root six", &created), PEMN_OK);
    assert_true(created);
    assert_int_equal(put(st, 0, "zero", &created), PEMN_EINVAL);
    assert_int_equal(store_trust_root_put(st, 7, 1, NULL, 0, "t", NULL, &e), PEMN_EINVAL);

    assert_int_equal(store_trust_root_get(st, 0, &m, &b, &n, &e), PEMN_OK);
    assert_int_equal(m.version, 6);
    assert_int_equal(m.expires, 1006);
    assert_int_equal(m.size, 8);
    assert_int_equal(n, 8);
    assert_memory_equal(b, "root six", 8);
    uint8_t d[32];
    char dt[PEMN_DIGEST_TEXT_MAX];
    pemn_sha256("root six", 8, d);
    pemn_digest_format(d, dt);
    assert_string_equal(m.digest, dt);
    free(b);
    assert_int_equal(store_trust_root_get(st, 5, &m, NULL, NULL, &e), PEMN_OK);
    assert_int_equal(m.version, 5);
    assert_int_equal(store_trust_root_get(st, 4, &m, NULL, NULL, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_trust_root_get(st, UINT64_MAX, &m, NULL, NULL, &e), PEMN_ENOTFOUND);
    store_close(st);
    /* persisted across reopen */
    st = open_store();
    assert_int_equal(store_trust_root_get(st, 0, &m, NULL, NULL, &e), PEMN_OK);
    assert_int_equal(m.version, 6);
    store_close(st);
}

static int list_cb(void *ctx, const struct store_root *r)
{
    uint64_t *seen = ctx;
    seen[seen[0] + 1] = r->version;
    seen[0]++;
    return 0;
}

static int audit_cb(void *ctx, const struct store_audit *a)
{
    if (strcmp(a->action, "root.add") == 0)
        (*(int *)ctx)++;
    return 0;
}

static void test_list_and_audit(void **state)
{
    (void)state;
    struct store *st = open_store();
    assert_int_equal(put(st, 1, "r1", NULL), PEMN_OK);
    assert_int_equal(put(st, 2, "r2", NULL), PEMN_OK);
    assert_int_equal(put(st, 2, "r2", NULL), PEMN_OK);
    assert_int_equal(put(st, 3, "r3", NULL), PEMN_OK);
    uint64_t seen[8] = {0};
    struct pemn_err e;
    assert_int_equal(store_trust_root_list(st, list_cb, seen, &e), PEMN_OK);
    assert_int_equal(seen[0], 3);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[3], 3);
    int adds = 0;
    assert_int_equal(store_audit_list(st, 100, audit_cb, &adds, &e), PEMN_OK);
    assert_int_equal(adds, 3); /* the idempotent re-add wrote nothing */
    store_close(st);
}

struct racer {
    struct store *st;
    int id;
    pemn_rc rc;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    char text[32];
    snprintf(text, sizeof text, "racer %d", r->id);
    r->rc = put(r->st, 2, text, NULL);
    return NULL;
}

static void test_concurrent_adds(void **state)
{
    (void)state;
    struct store *st = open_store();
    assert_int_equal(put(st, 1, "base", NULL), PEMN_OK);
    pthread_t t[4];
    struct racer r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (struct racer){st, i, PEMN_OK};
        pthread_create(&t[i], NULL, race, &r[i]);
    }
    int ok = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        if (r[i].rc == PEMN_OK)
            ok++;
        else
            assert_int_equal(r[i].rc, PEMN_ECONFLICT);
    }
    assert_int_equal(ok, 1); /* exactly one version 2 */
    store_close(st);
}

static void test_signers(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_pubkey k[3];
    for (int i = 0; i < 3; i++)
        memset(k[i].bytes, 'a' + i, sizeof k[i].bytes);
    const char *dg = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    struct pemn_pubkey got[4];
    size_t n = 9;
    struct pemn_err e;
    assert_int_equal(store_trust_signers_get(st, dg, got, 4, &n, &e), PEMN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_trust_signers_put(st, dg, k, 2, &e), PEMN_OK);
    assert_int_equal(store_trust_signers_put(st, dg, k + 1, 2, &e), PEMN_OK); /* overlaps */
    assert_int_equal(store_trust_signers_get(st, dg, got, 4, &n, &e), PEMN_OK);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_memory_equal(got[i].bytes, k[i].bytes, 32);
    assert_int_equal(store_trust_signers_get(st, dg, got, 2, &n, &e), PEMN_OK);
    assert_int_equal(n, 2); /* bounded by cap */
    assert_int_equal(store_trust_signers_get(st, "sha256:ff", got, 4, &n, &e), PEMN_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_trust_signers_put(st, NULL, k, 1, &e), PEMN_EINVAL);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_rules, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_list_and_audit, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_adds, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_signers, storefix_setup, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
