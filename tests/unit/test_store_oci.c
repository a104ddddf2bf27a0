/* Contract test of storage/store_oci.h (upload sessions, blobs through /v2, manifests stored
 * byte for byte, fleet sources): written against the interface only, run on every backend by
 * tests/common/storefix (SQLite; PostgreSQL when PEMN_TEST_PG_HOST names a test cluster). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store_fleet.h"
#include "storage/store_oci.h"
#include "tests/common/storefix.h"

#include <pthread.h>
#include <sodium.h>
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

static void digest_of(const void *p, size_t n, char out[PEMN_DIGEST_TEXT_MAX])
{
    uint8_t d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, p, n);
    pemn_digest_format(d, out);
}

/* A version row to hang manifests on (the package bytes need not parse here). */
static void put_version(struct store *st, const char *model, const char *version, uint64_t rel)
{
    char bytes[64];
    snprintf(bytes, sizeof bytes, "package %s %s", model, version);
    struct store_version v;
    memset(&v, 0, sizeof v);
    snprintf(v.model, sizeof v.model, "%s", model);
    snprintf(v.version, sizeof v.version, "%s", version);
    snprintf(v.strategy, sizeof v.strategy, "rp");
    snprintf(v.signer, sizeof v.signer, "0123456789abcdef");
    v.release = rel;
    v.size = strlen(bytes);
    digest_of(bytes, strlen(bytes), v.digest);
    bool created;
    struct pemn_err e;
    assert_int_equal(store_put_package(st, &v, bytes, strlen(bytes), "t", &created, NULL, &e),
                     PEMN_OK);
}

static void test_uploads(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct store_oci_upload u;
    struct pemn_err e;
    assert_int_equal(store_oci_upload_get(st, "net", "abc", &u, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_oci_upload_create(st, "net", "abc", &e), PEMN_OK);
    assert_int_equal(store_oci_upload_create(st, "net", "abc", &e), PEMN_EEXIST);
    assert_int_equal(store_oci_upload_create(st, "net", "", &e), PEMN_EINVAL);
    assert_int_equal(store_oci_upload_get(st, "net", "abc", &u, &e), PEMN_OK);
    assert_string_equal(u.id, "abc");
    assert_string_equal(u.repo, "net");
    assert_int_equal(u.size, 0);
    assert_true(u.created > 0);
    /* a session belongs to its repository */
    assert_int_equal(store_oci_upload_get(st, "other", "abc", &u, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_oci_upload_advance(st, "other", "abc", 0, 10, &e), PEMN_ENOTFOUND);
    /* chunks advance from where the session is, and only from there */
    assert_int_equal(store_oci_upload_advance(st, "net", "abc", 0, 100, &e), PEMN_OK);
    assert_int_equal(store_oci_upload_advance(st, "net", "abc", 0, 50, &e), PEMN_ECONFLICT);
    assert_non_null(strstr(e.msg, "100"));
    assert_int_equal(store_oci_upload_advance(st, "net", "abc", 100, 90, &e), PEMN_EINVAL);
    assert_int_equal(store_oci_upload_advance(st, "net", "abc", 100, 250, &e), PEMN_OK);
    assert_int_equal(store_oci_upload_get(st, "net", "abc", &u, &e), PEMN_OK);
    assert_int_equal(u.size, 250);
    store_close(st);
    st = open_store(); /* sessions survive a restart */
    assert_int_equal(store_oci_upload_get(st, "net", "abc", &u, &e), PEMN_OK);
    assert_int_equal(u.size, 250);
    assert_int_equal(store_oci_upload_delete(st, "other", "abc", &e), PEMN_ENOTFOUND);
    assert_int_equal(store_oci_upload_delete(st, "net", "abc", &e), PEMN_OK);
    assert_int_equal(store_oci_upload_delete(st, "net", "abc", &e), PEMN_ENOTFOUND);
    store_close(st);
}

static int count_cb(void *ctx, const struct store_oci_upload *u)
{
    (*(int *)ctx)++;
    return 0;
}

static void test_expire(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    char id[32];
    for (int i = 0; i < 150; i++) { /* more than one batch */
        snprintf(id, sizeof id, "s%03d", i);
        assert_int_equal(store_oci_upload_create(st, "net", id, &e), PEMN_OK);
    }
    int n = 0;
    assert_int_equal(store_oci_upload_expire(st, 0, count_cb, &n, &e), PEMN_OK);
    assert_int_equal(n, 0); /* nothing older than 1970 */
    assert_int_equal(store_oci_upload_expire(st, (int64_t)time(NULL) + 10, count_cb, &n, &e),
                     PEMN_OK);
    assert_int_equal(n, 150);
    struct store_oci_upload u;
    assert_int_equal(store_oci_upload_get(st, "net", "s007", &u, &e), PEMN_ENOTFOUND);
    store_close(st);
}

static void test_blobs(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    const char *cfg = "{\"a\":1}";
    char d[PEMN_DIGEST_TEXT_MAX], upper[PEMN_DIGEST_TEXT_MAX];
    digest_of(cfg, strlen(cfg), d);
    uint64_t size = 0;
    assert_int_equal(store_oci_blob_size(st, d, &size, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_oci_blob_size(st, "sha256:xyz", &size, &e), PEMN_EINVAL);
    assert_int_equal(store_oci_blob_put(st, "md5:1", cfg, strlen(cfg), "t", NULL, &e), PEMN_EINVAL);
    bool created = false;
    assert_int_equal(store_oci_blob_put(st, d, cfg, strlen(cfg), "t", &created, &e), PEMN_OK);
    assert_true(created);
    snprintf(upper, sizeof upper, "sha256:");
    for (int i = 7; i < 71; i++)
        upper[i] = (char)(d[i] >= 'a' ? d[i] - 32 : d[i]);
    upper[71] = 0;
    assert_int_equal(store_oci_blob_put(st, upper, cfg, strlen(cfg), "t", &created, &e), PEMN_OK);
    assert_false(created); /* the same blob, whatever the case of its hex */
    assert_int_equal(store_oci_blob_size(st, upper, &size, &e), PEMN_OK);
    assert_int_equal(size, strlen(cfg));
    /* the bytes are the store's blobs: served like any other */
    struct store_blob *b = NULL;
    assert_int_equal(store_blob_get(st, d, &b, &e), PEMN_OK);
    assert_int_equal(b->size, strlen(cfg));
    char buf[16] = {0};
    if (b->data)
        memcpy(buf, b->data, (size_t)b->size);
    else
        assert_int_equal(store_blob_read(st, b, 0, buf, (size_t)b->size, &e), PEMN_OK);
    assert_memory_equal(buf, cfg, strlen(cfg));
    store_blob_release(b);
    /* an empty blob is a blob */
    char ed[PEMN_DIGEST_TEXT_MAX];
    digest_of("", 0, ed);
    assert_int_equal(store_oci_blob_put(st, ed, "", 0, "t", &created, &e), PEMN_OK);
    assert_int_equal(store_oci_blob_size(st, ed, &size, &e), PEMN_OK);
    assert_int_equal(size, 0);
    store_close(st);
}

static struct store_oci_manifest manifest(const char *repo, const char *version, const char *text,
                                          const char *subject)
{
    struct store_oci_manifest m;
    memset(&m, 0, sizeof m);
    snprintf(m.repo, sizeof m.repo, "%s", repo);
    snprintf(m.version, sizeof m.version, "%s", version);
    snprintf(m.media_type, sizeof m.media_type, "application/vnd.oci.image.manifest.v1+json");
    snprintf(m.artifact_type, sizeof m.artifact_type, "application/vnd.pemn.package.v1");
    snprintf(m.subject, sizeof m.subject, "%s", subject ? subject : "");
    m.data = (uint8_t *)text;
    m.len = strlen(text);
    digest_of(text, m.len, m.digest);
    return m;
}

static int ref_cb(void *ctx, const struct store_oci_manifest *m)
{
    assert_null(m->data);
    snprintf(ctx, PEMN_DIGEST_TEXT_MAX, "%s", m->digest);
    return 0;
}

static void test_manifests(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    struct store_oci_manifest got;
    const char *t1 = "{\"schemaVersion\":2, \"x\":1}", *t2 = "{\"schemaVersion\":2,\"x\":2}";
    struct store_oci_manifest m1 = manifest("net", "1.0.0", t1, NULL);
    bool created = false;
    /* a manifest needs its version */
    assert_int_equal(store_oci_manifest_put(st, &m1, "t", &created, &e), PEMN_ENOTFOUND);
    put_version(st, "net", "1.0.0", 1);
    assert_int_equal(store_oci_manifest_for_version(st, "net", "1.0.0", &got, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_oci_manifest_put(st, &m1, "t", &created, &e), PEMN_OK);
    assert_true(created);
    assert_int_equal(store_oci_manifest_put(st, &m1, "t", &created, &e), PEMN_OK);
    assert_false(created);
    /* byte for byte, by digest and by version */
    assert_int_equal(store_oci_manifest_get(st, "net", m1.digest, &got, &e), PEMN_OK);
    assert_int_equal(got.len, strlen(t1));
    assert_memory_equal(got.data, t1, got.len);
    assert_string_equal(got.version, "1.0.0");
    assert_string_equal(got.media_type, m1.media_type);
    assert_string_equal(got.artifact_type, m1.artifact_type);
    store_oci_manifest_clear(&got);
    store_oci_manifest_clear(&got); /* twice is fine */
    store_oci_manifest_clear(NULL);
    assert_int_equal(store_oci_manifest_get(st, "other", m1.digest, &got, &e), PEMN_ENOTFOUND);
    /* the newest manifest of a version is the one it resolves to */
    struct store_oci_manifest m2 = manifest("net", "1.0.0", t2, m1.digest);
    assert_int_equal(store_oci_manifest_put(st, &m2, "t", &created, &e), PEMN_OK);
    assert_int_equal(store_oci_manifest_for_version(st, "net", "1.0.0", &got, &e), PEMN_OK);
    assert_string_equal(got.digest, m2.digest);
    assert_memory_equal(got.data, t2, got.len);
    store_oci_manifest_clear(&got);
    assert_int_equal(store_oci_manifest_get(st, "net", m1.digest, &got, &e), PEMN_OK);
    store_oci_manifest_clear(&got);
    /* referrers by subject */
    char seen[PEMN_DIGEST_TEXT_MAX] = "";
    assert_int_equal(store_oci_referrers(st, "net", m1.digest, ref_cb, seen, &e), PEMN_OK);
    assert_string_equal(seen, m2.digest);
    seen[0] = 0;
    assert_int_equal(store_oci_referrers(st, "net", m2.digest, ref_cb, seen, &e), PEMN_OK);
    assert_string_equal(seen, "");
    /* limits */
    struct store_oci_manifest empty = manifest("net", "1.0.0", "", NULL);
    assert_int_equal(store_oci_manifest_put(st, &empty, "t", NULL, &e), PEMN_EINVAL);
    store_close(st);
    st = open_store(); /* still there */
    assert_int_equal(store_oci_manifest_get(st, "net", m2.digest, &got, &e), PEMN_OK);
    store_oci_manifest_clear(&got);
    store_close(st);
}

static void test_sources(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    char loc[STORE_OCI_LOCATION_MAX];
    assert_int_equal(store_oci_source_set(st, "edge", "oci://r/x", "t", &e), PEMN_ENOTFOUND);
    put_version(st, "net", "1.0.0", 1);
    struct store_fleet_target t;
    memset(&t, 0, sizeof t);
    snprintf(t.model, sizeof t.model, "net");
    snprintf(t.version, sizeof t.version, "1.0.0");
    t.release = 1;
    digest_of("package net 1.0.0", 17, t.digest);
    t.size = 17;
    bool started;
    assert_int_equal(store_fleet_put(st, "edge", &t, 10000, 0, 0, "r1", "t", &started, NULL, &e),
                     PEMN_OK);
    assert_int_equal(store_oci_source_get(st, "edge", loc, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_oci_source_set(st, "edge", NULL, "t", &e), PEMN_ENOTFOUND);
    assert_int_equal(store_oci_source_set(st, "edge", "oci://r/x", "t", &e), PEMN_OK);
    assert_int_equal(store_oci_source_get(st, "edge", loc, &e), PEMN_OK);
    assert_string_equal(loc, "oci://r/x");
    assert_int_equal(store_oci_source_set(st, "edge", "oci+http://h:5000/a/b", "t", &e), PEMN_OK);
    assert_int_equal(store_oci_source_get(st, "edge", loc, &e), PEMN_OK);
    assert_string_equal(loc, "oci+http://h:5000/a/b");
    assert_int_equal(store_oci_source_set(st, "edge", "", "t", &e), PEMN_EINVAL);
    assert_int_equal(store_oci_source_set(st, "edge", NULL, "t", &e), PEMN_OK);
    assert_int_equal(store_oci_source_get(st, "edge", loc, &e), PEMN_ENOTFOUND);
    store_close(st);
}

struct race {
    struct store *st;
    int wins;
};

static void *racer(void *arg)
{
    struct race *r = arg;
    if (store_oci_upload_advance(r->st, "net", "race", 0, 10, NULL) == PEMN_OK)
        __atomic_fetch_add(&r->wins, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_advance_race(void **state)
{
    (void)state;
    struct store *st = open_store();
    assert_int_equal(store_oci_upload_create(st, "net", "race", NULL), PEMN_OK);
    struct race r = {st, 0};
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, racer, &r);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(r.wins, 1); /* one chunk at one offset */
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_uploads, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_expire, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_blobs, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_manifests, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_advance_race, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_sources, storefix_setup, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
