/* Unit tests: storage/store_delta.h — which version a digest is, and stored deltas (with
 * their bytes as blobs, or the record that a delta is not smaller). Contract test: every
 * backend (tests/common/storefix.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store_delta.h"
#include "tests/common/storefix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_version(struct store *st, const char *model, const char *version, uint64_t release,
                        uint8_t fill, size_t n, char digest[PEMN_DIGEST_TEXT_MAX])
{
    uint8_t *bytes = malloc(n);
    assert_non_null(bytes);
    memset(bytes, fill, n);
    struct store_version m;
    memset(&m, 0, sizeof m);
    snprintf(m.model, sizeof m.model, "%s", model);
    snprintf(m.version, sizeof m.version, "%s", version);
    snprintf(m.strategy, sizeof m.strategy, "rp");
    snprintf(m.signer, sizeof m.signer, "0123456789abcdef");
    m.release = release;
    m.size = n;
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(bytes, n, d);
    pemn_digest_format(d, m.digest);
    bool created;
    struct pemn_err e;
    assert_int_equal(store_put_package(st, &m, bytes, n, "t", &created, NULL, &e), PEMN_OK);
    memcpy(digest, m.digest, PEMN_DIGEST_TEXT_MAX);
    free(bytes);
}

static void test_version_of(void **state)
{
    (void)state;
    struct store *st;
    struct pemn_err e;
    assert_int_equal(store_open(storefix_db, NULL, &st, &e), PEMN_OK);
    char d1[PEMN_DIGEST_TEXT_MAX], d2[PEMN_DIGEST_TEXT_MAX];
    put_version(st, "net", "1.0.0", 1, 1, 1000, d1);
    put_version(st, "other", "2.0.0", 5, 2, 500, d2);
    struct store_version v;
    assert_int_equal(store_delta_version_of(st, d1, &v, &e), PEMN_OK);
    assert_string_equal(v.model, "net");
    assert_string_equal(v.version, "1.0.0");
    assert_int_equal(v.release, 1);
    assert_int_equal(v.size, 1000);
    assert_string_equal(v.digest, d1);
    /* upper-case hex is the same digest */
    char up[PEMN_DIGEST_TEXT_MAX];
    snprintf(up, sizeof up, "sha256:");
    for (size_t i = 7; d2[i]; i++)
        up[i] = (char)(d2[i] >= 'a' && d2[i] <= 'f' ? d2[i] - 32 : d2[i]);
    up[strlen(d2)] = '\0';
    assert_int_equal(store_delta_version_of(st, up, &v, &e), PEMN_OK);
    assert_string_equal(v.model, "other");
    assert_int_equal(v.release, 5);
    char unknown[PEMN_DIGEST_TEXT_MAX];
    uint8_t z[PEMN_DIGEST_BYTES] = {0};
    pemn_digest_format(z, unknown);
    assert_int_equal(store_delta_version_of(st, unknown, &v, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_delta_version_of(st, "sha256:xyz", &v, &e), PEMN_EINVAL);
    store_close(st);
}

static void test_put_get(void **state)
{
    (void)state;
    struct store *st;
    struct pemn_err e;
    assert_int_equal(store_open(storefix_db, NULL, &st, &e), PEMN_OK);
    char d1[PEMN_DIGEST_TEXT_MAX], d2[PEMN_DIGEST_TEXT_MAX], d3[PEMN_DIGEST_TEXT_MAX];
    put_version(st, "net", "1.0.0", 1, 1, 4000, d1);
    put_version(st, "net", "1.1.0", 2, 2, 4000, d2);
    put_version(st, "net", "1.2.0", 3, 3, 100, d3);
    struct store_delta d;
    assert_int_equal(store_delta_get(st, d2, d1, &d, &e), PEMN_ENOTFOUND);
    uint8_t delta[300];
    for (size_t i = 0; i < sizeof delta; i++)
        delta[i] = (uint8_t)(i * 7);
    /* a delta as big as NEW is refused */
    assert_int_equal(store_delta_put(st, d2, d1, 300, delta, sizeof delta, NULL, &e), PEMN_EINVAL);
    assert_int_equal(store_delta_put(st, d2, d2, 4000, delta, sizeof delta, NULL, &e), PEMN_EINVAL);
    assert_int_equal(store_delta_put(st, d2, d1, 4000, delta, sizeof delta, &d, &e), PEMN_OK);
    assert_true(d.smaller);
    assert_int_equal(d.size, sizeof delta);
    assert_int_equal(d.new_size, 4000);
    assert_string_equal(d.new_digest, d2);
    assert_string_equal(d.old_digest, d1);
    uint8_t want[PEMN_DIGEST_BYTES];
    char wtext[PEMN_DIGEST_TEXT_MAX];
    pemn_sha256(delta, sizeof delta, want);
    pemn_digest_format(want, wtext);
    assert_string_equal(d.delta_digest, wtext);
    /* the bytes are a blob, readable with Range-sized reads */
    struct store_blob *b;
    assert_int_equal(store_blob_get(st, d.delta_digest, &b, &e), PEMN_OK);
    assert_int_equal(b->size, sizeof delta);
    uint8_t back[100];
    assert_int_equal(store_blob_read(st, b, 100, back, sizeof back, &e), PEMN_OK);
    assert_memory_equal(back, delta + 100, sizeof back);
    store_blob_release(b);
    /* idempotent: a second put (another request raced) keeps the first row */
    uint8_t other[200];
    memset(other, 9, sizeof other);
    struct store_delta d_again;
    assert_int_equal(store_delta_put(st, d2, d1, 4000, other, sizeof other, &d_again, &e), PEMN_OK);
    assert_string_equal(d_again.delta_digest, wtext);
    assert_int_equal(d_again.size, sizeof delta);
    /* "not smaller" is remembered, with no bytes */
    assert_int_equal(store_delta_put(st, d3, d1, 100, NULL, 0, &d, &e), PEMN_OK);
    assert_false(d.smaller);
    assert_string_equal(d.delta_digest, "");
    assert_int_equal(d.new_size, 100);
    assert_int_equal(store_delta_get(st, d3, d1, &d, &e), PEMN_OK);
    assert_false(d.smaller);
    /* the pair is directed */
    assert_int_equal(store_delta_get(st, d1, d2, &d, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_delta_get(st, "nope", d1, &d, &e), PEMN_EINVAL);
    /* the row survives reopening the store */
    store_close(st);
    assert_int_equal(store_open(storefix_db, NULL, &st, &e), PEMN_OK);
    assert_int_equal(store_delta_get(st, d2, d1, &d, &e), PEMN_OK);
    assert_true(d.smaller);
    assert_string_equal(d.delta_digest, wtext);
    assert_int_equal(store_schema_version(st), store_schema_latest());
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_version_of, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_put_get, storefix_setup, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
