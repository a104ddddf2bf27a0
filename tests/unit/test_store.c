/* Unit tests: storage/ contract (every backend: tests/common/storefix.h) — schema, push
 * outcomes, listings, tags, blobs and the blob cache, keys, tokens, audit log, and
 * concurrent use; plus the SQLite file's own settings on the SQLite leg. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store.h"
#include "tests/common/storefix.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct store *open_store(const struct store_opts *o)
{
    struct store *st = NULL;
    struct pemn_err e;
    pemn_rc rc = store_open(storefix_db, o, &st, &e);
    if (rc)
        fprintf(stderr, "store_open: %s\n", e.msg);
    assert_int_equal(rc, PEMN_OK);
    return st;
}

/* A fake package: storage never parses the bytes, it only trusts the caller's digest. */
static uint8_t *fake_pkg(const char *model, const char *version, uint64_t release, size_t size,
                         struct store_version *m)
{
    uint8_t *b = malloc(size);
    assert_non_null(b);
    for (size_t i = 0; i < size; i++)
        b[i] = (uint8_t)(i * 131 + release * 7 + (uint8_t)model[0] + (uint8_t)version[0]);
    memset(m, 0, sizeof *m);
    snprintf(m->model, sizeof m->model, "%s", model);
    snprintf(m->version, sizeof m->version, "%s", version);
    snprintf(m->strategy, sizeof m->strategy, "rp");
    snprintf(m->signer, sizeof m->signer, "0123456789abcdef");
    m->release = release;
    m->size = size;
    m->created = 1700000000;
    m->density = 0.5;
    m->n_params = size * 8;
    m->f32_size = size * 32;
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(b, size, d);
    pemn_digest_format(d, m->digest);
    return b;
}

static void push(struct store *st, const char *model, const char *version, uint64_t release,
                 size_t size, pemn_rc want, bool want_created)
{
    struct store_version m, out;
    uint8_t *b = fake_pkg(model, version, release, size, &m);
    bool created = !want_created;
    struct pemn_err e;
    pemn_rc rc = store_put_package(st, &m, b, size, "test", &created, &out, &e);
    assert_int_equal(rc, want);
    if (rc == PEMN_OK) {
        assert_int_equal(created, want_created);
        assert_string_equal(out.digest, m.digest);
        assert_int_equal(out.size, size);
        assert_int_equal(out.release, release);
        assert_true(out.pushed > 0);
    }
    free(b);
}

static int pragma_int(const char *pragma)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(storefix_db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, pragma, -1, &s, NULL), SQLITE_OK);
    int v = -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_type(s, 0) == SQLITE_TEXT
                ? (strcmp((const char *)sqlite3_column_text(s, 0), "wal") == 0 ? 1 : 0)
                : sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void test_open_schema(void **state)
{
    (void)state;
    struct store *st = open_store(NULL);
    assert_int_equal(store_schema_version(st), store_schema_latest());
    assert_true(store_schema_latest() >= 1);
    if (storefix_pg()) {
        assert_int_equal(storefix_sql(NULL, "SELECT version FROM pemn_schema"),
                         store_schema_latest());
        /* package bytes in 1 MiB chunk rows stored out of line, uncompressed */
        assert_int_equal(storefix_sql(NULL, "SELECT count(*) FROM pg_attribute WHERE attrelid ="
                                            " 'blob_chunks'::regclass AND attname = 'data' AND"
                                            " attstorage = 'e'"),
                         1);
    } else {
        assert_int_equal(pragma_int("PRAGMA page_size"), 16384);
        assert_int_equal(pragma_int("PRAGMA journal_mode"), 1);
        assert_int_equal(pragma_int("PRAGMA user_version"), store_schema_latest());
    }
    store_close(st);
    /* reopening keeps the data and does not migrate again */
    st = open_store(NULL);
    assert_int_equal(store_schema_version(st), store_schema_latest());
    store_close(st);
    store_close(NULL);
}

static void test_newer_schema_refused(void **state)
{
    (void)state;
    store_close(open_store(NULL));
    assert_int_equal(
        storefix_sql("PRAGMA user_version=999", "UPDATE pemn_schema SET version = 999"), 0);
    struct store *st = NULL;
    struct pemn_err e;
    assert_int_equal(store_open(storefix_db, NULL, &st, &e), PEMN_EVERSION);
    assert_null(st);
    assert_non_null(strstr(e.msg, "999"));
    assert_int_equal(store_open("", NULL, &st, NULL), PEMN_EINVAL);
    assert_int_equal(store_open("/nonexistent-dir/x/y.db", NULL, &st, &e), PEMN_EDB);
}

static void test_push_outcomes(void **state)
{
    (void)state;
    struct store *st = open_store(NULL);
    push(st, "net", "1.0.0", 1, 1000, PEMN_OK, true);
    push(st, "net", "1.0.0", 1, 1000, PEMN_OK, false);        /* identical: idempotent */
    push(st, "net", "1.0.0", 1, 1001, PEMN_ECONFLICT, false); /* different bytes */
    push(st, "net", "1.1.0", 1, 1000, PEMN_EROLLBACK, false); /* release not newer */
    push(st, "net", "0.9.0", 0, 1000, PEMN_EROLLBACK, false);
    push(st, "net", "1.1.0", 2, 2000, PEMN_OK, true);
    push(st, "other", "1", 1, 10, PEMN_OK, true); /* releases are per model */

    struct store_version v;
    struct pemn_err e;
    assert_int_equal(store_get_version(st, "net", "1.0.0", &v, &e), PEMN_OK);
    assert_int_equal(v.release, 1);
    assert_string_equal(v.strategy, "rp");
    assert_string_equal(v.signer, "0123456789abcdef");
    assert_int_equal(v.created, 1700000000);
    assert_true(v.density == 0.5);
    assert_int_equal(v.n_params, 8000);
    assert_int_equal(v.f32_size, 32000);
    assert_int_equal(store_get_version(st, "net", "9.9", &v, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_get_version(st, "nope", "1.0.0", &v, NULL), PEMN_ENOTFOUND);
    assert_int_equal(store_get_latest(st, "net", &v, &e), PEMN_OK);
    assert_string_equal(v.version, "1.1.0");
    assert_int_equal(store_get_latest(st, "nope", &v, &e), PEMN_ENOTFOUND);

    /* bad arguments never reach the database */
    struct store_version m;
    uint8_t *b = fake_pkg("net", "2", 3, 10, &m);
    bool created;
    strcpy(m.digest, "sha256:zz");
    assert_int_equal(store_put_package(st, &m, b, 10, "t", &created, NULL, &e), PEMN_EINVAL);
    m.release = (uint64_t)INT64_MAX + 1;
    assert_int_equal(store_put_package(st, &m, b, 10, "t", &created, NULL, &e), PEMN_EINVAL);
    free(b);
    store_close(st);
}

struct collect {
    int n;
    char names[16][600];
    uint64_t counts[16];
    int stop_after;
};

static int model_cb(void *ctx, const char *name, const struct store_version *latest, uint64_t n)
{
    struct collect *c = ctx;
    assert_string_equal(name, latest->model);
    snprintf(c->names[c->n], 600, "%s@%s", name, latest->version);
    c->counts[c->n++] = n;
    return c->stop_after && c->n >= c->stop_after;
}

static int version_cb(void *ctx, const struct store_version *v)
{
    struct collect *c = ctx;
    snprintf(c->names[c->n++], 600, "%s", v->version);
    return 0;
}

static int tag_cb(void *ctx, const char *tag, const char *version)
{
    struct collect *c = ctx;
    snprintf(c->names[c->n++], 600, "%s=%s", tag, version);
    return 0;
}

static void test_listings_and_tags(void **state)
{
    (void)state;
    struct store *st = open_store(NULL);
    push(st, "b-model", "1", 1, 100, PEMN_OK, true);
    push(st, "a-model", "1", 1, 100, PEMN_OK, true);
    push(st, "a-model", "2", 5, 100, PEMN_OK, true);
    push(st, "a-model", "3", 9, 100, PEMN_OK, true);

    struct collect c = {0};
    assert_int_equal(store_list_models(st, model_cb, &c, NULL), PEMN_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.names[0], "a-model@3");
    assert_int_equal(c.counts[0], 3);
    assert_string_equal(c.names[1], "b-model@1");
    assert_int_equal(c.counts[1], 1);
    memset(&c, 0, sizeof c);
    c.stop_after = 1;
    assert_int_equal(store_list_models(st, model_cb, &c, NULL), PEMN_ECANCELED);
    assert_int_equal(c.n, 1);

    memset(&c, 0, sizeof c);
    assert_int_equal(store_list_versions(st, "a-model", version_cb, &c, NULL), PEMN_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.names[0], "3"); /* newest first */
    assert_string_equal(c.names[2], "1");
    assert_int_equal(store_list_versions(st, "zzz", version_cb, &c, NULL), PEMN_ENOTFOUND);

    struct store_version v;
    struct pemn_err e;
    assert_int_equal(store_tag_set(st, "a-model", "stable", "2", "t", &v, &e), PEMN_OK);
    assert_string_equal(v.version, "2");
    assert_int_equal(store_tag_set(st, "a-model", "beta", "3", "t", NULL, &e), PEMN_OK);
    assert_int_equal(store_tag_set(st, "a-model", "stable", "1", "t", NULL, &e), PEMN_OK);
    assert_int_equal(store_tag_get(st, "a-model", "stable", &v, &e), PEMN_OK);
    assert_string_equal(v.version, "1");
    assert_int_equal(store_tag_set(st, "a-model", "x", "9", "t", NULL, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_tag_set(st, "nope", "x", "1", "t", NULL, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_tag_get(st, "a-model", "x", &v, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_tag_get(st, "b-model", "stable", &v, &e), PEMN_ENOTFOUND);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_list_tags(st, "a-model", tag_cb, &c, NULL), PEMN_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.names[0], "beta=3");
    assert_string_equal(c.names[1], "stable=1");
    assert_int_equal(store_tag_delete(st, "a-model", "beta", "t", &e), PEMN_OK);
    assert_int_equal(store_tag_delete(st, "a-model", "beta", "t", &e), PEMN_ENOTFOUND);
    assert_int_equal(store_tag_delete(st, "nope", "beta", "t", &e), PEMN_ENOTFOUND);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_list_tags(st, "a-model", tag_cb, &c, NULL), PEMN_OK);
    assert_int_equal(c.n, 1);
    store_close(st);
}

static void check_blob(struct store *st, const char *digest, const uint8_t *want, size_t size,
                       bool want_in_memory)
{
    struct store_blob *b = NULL;
    struct pemn_err e;
    assert_int_equal(store_blob_get(st, digest, &b, &e), PEMN_OK);
    assert_int_equal(b->size, size);
    assert_int_equal(b->data != NULL, want_in_memory);
    uint8_t *buf = malloc(size);
    /* whole, then in odd chunks */
    assert_int_equal(store_blob_read(st, b, 0, buf, size, &e), PEMN_OK);
    assert_memory_equal(buf, want, size);
    for (size_t off = 0; off < size; off += 777) {
        size_t n = size - off < 777 ? size - off : 777;
        memset(buf, 0, n);
        assert_int_equal(store_blob_read(st, b, off, buf, n, &e), PEMN_OK);
        assert_memory_equal(buf, want + off, n);
    }
    assert_int_equal(store_blob_read(st, b, size, buf, 1, &e), PEMN_EINVAL);
    assert_int_equal(store_blob_read(st, b, size + 5, buf, 0, &e), PEMN_EINVAL);
    free(buf);
    store_blob_release(b);
}

static void test_blobs_and_cache(void **state)
{
    (void)state;
    struct store_opts o;
    store_opts_default(&o);
    o.cache_bytes = 10000;
    o.cache_item_max = 5000;
    struct store *st = open_store(&o);
    struct store_version m1, m2, m3;
    uint8_t *b1 = fake_pkg("m", "1", 1, 4000, &m1);
    uint8_t *b2 = fake_pkg("m", "2", 2, 4500, &m2);
    uint8_t *b3 = fake_pkg("m", "3", 3, 20000, &m3); /* above the item limit: streamed */
    bool created;
    assert_int_equal(store_put_package(st, &m1, b1, 4000, "t", &created, NULL, NULL), PEMN_OK);
    assert_int_equal(store_put_package(st, &m2, b2, 4500, "t", &created, NULL, NULL), PEMN_OK);
    assert_int_equal(store_put_package(st, &m3, b3, 20000, "t", &created, NULL, NULL), PEMN_OK);

    check_blob(st, m1.digest, b1, 4000, true);
    check_blob(st, m1.digest, b1, 4000, true);
    check_blob(st, m3.digest, b3, 20000, false);
    /* hold m1 while m2 evicts nothing yet (8500 <= 10000), then a second get hits */
    struct store_blob *h1;
    assert_int_equal(store_blob_get(st, m1.digest, &h1, NULL), PEMN_OK);
    check_blob(st, m2.digest, b2, 4500, true);
    struct store_stats s;
    assert_int_equal(store_stats(st, &s, NULL), PEMN_OK);
    assert_int_equal(s.cache_items, 2);
    assert_int_equal(s.cache_bytes, 8500);
    assert_true(s.cache_hits >= 2);
    assert_int_equal(s.versions, 3);
    assert_int_equal(s.blobs, 3);
    assert_int_equal(s.blob_bytes, 28500);
    assert_int_equal(s.models, 1);
    /* uppercase hex is the same blob */
    char upper[PEMN_DIGEST_TEXT_MAX];
    strcpy(upper, m1.digest);
    for (char *p = upper + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    check_blob(st, upper, b1, 4000, true);
    store_blob_release(h1); /* a held entry stays valid across use */

    struct store_blob *x = NULL;
    struct pemn_err e;
    assert_int_equal(store_blob_get(st, "sha256:00", &x, &e), PEMN_EINVAL);
    assert_int_equal(store_blob_get(st, "md5:abc", &x, &e), PEMN_EINVAL);
    char zero[PEMN_DIGEST_TEXT_MAX] = "sha256:";
    memset(zero + 7, '0', 64);
    zero[71] = 0;
    assert_int_equal(store_blob_get(st, zero, &x, &e), PEMN_ENOTFOUND);
    assert_null(x);
    store_blob_release(NULL);
    store_close(st);

    /* with no cache at all everything streams */
    o.cache_bytes = 0;
    st = open_store(&o);
    check_blob(st, m1.digest, b1, 4000, false);
    store_close(st);
    free(b1);
    free(b2);
    free(b3);
}

static void test_cache_eviction(void **state)
{
    (void)state;
    struct store_opts o;
    store_opts_default(&o);
    o.cache_bytes = 3000;
    o.cache_item_max = 3000;
    struct store *st = open_store(&o);
    struct store_version m[4];
    uint8_t *b[4];
    bool created;
    for (int i = 0; i < 4; i++) {
        char ver[16];
        snprintf(ver, sizeof ver, "%d", i);
        b[i] = fake_pkg("m", ver, (uint64_t)i + 1, 1000, &m[i]);
        assert_int_equal(store_put_package(st, &m[i], b[i], 1000, "t", &created, NULL, NULL),
                         PEMN_OK);
    }
    struct store_blob *held;
    assert_int_equal(store_blob_get(st, m[0].digest, &held, NULL), PEMN_OK);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 4; i++)
            check_blob(st, m[i].digest, b[i], 1000, true);
    struct store_stats s;
    assert_int_equal(store_stats(st, &s, NULL), PEMN_OK);
    assert_true(s.cache_bytes <= 3000);
    assert_true(s.cache_items <= 3);
    /* the evicted-but-held entry still has its bytes */
    assert_memory_equal(held->data, b[0], 1000);
    store_blob_release(held);
    store_close(st);
    for (int i = 0; i < 4; i++)
        free(b[i]);
}

static int key_cb(void *ctx, const struct store_key *k)
{
    struct collect *c = ctx;
    snprintf(c->names[c->n++], 600, "%s:%s", k->name, k->id);
    return 0;
}

static void test_keys(void **state)
{
    (void)state;
    struct store *st = open_store(NULL);
    struct pemn_pubkey k1, k2;
    memset(k1.bytes, 1, sizeof k1.bytes);
    memset(k2.bytes, 2, sizeof k2.bytes);
    struct store_key out;
    struct pemn_err e;
    assert_int_equal(store_key_add(st, &k1, "alice", "cli", &out, &e), PEMN_OK);
    assert_string_equal(out.name, "alice");
    assert_int_equal(strlen(out.id), 16);
    /* the id is the first 8 bytes of SHA-256(key) */
    uint8_t h[32];
    pemn_sha256(k1.bytes, 32, h);
    char want[17];
    snprintf(want, sizeof want, "%02x%02x%02x%02x%02x%02x%02x%02x", h[0], h[1], h[2], h[3], h[4],
             h[5], h[6], h[7]);
    assert_string_equal(out.id, want);
    assert_int_equal(store_key_add(st, &k1, "bob", "cli", NULL, &e), PEMN_EEXIST);
    assert_int_equal(store_key_add(st, &k2, "alice", "cli", NULL, &e), PEMN_EEXIST);
    assert_int_equal(store_key_add(st, &k2, NULL, "cli", &out, &e), PEMN_OK);
    assert_string_equal(out.name, out.id);
    struct collect c = {0};
    assert_int_equal(store_key_list(st, key_cb, &c, NULL), PEMN_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(store_key_remove(st, "alice", "cli", &e), PEMN_OK);
    assert_int_equal(store_key_remove(st, "alice", "cli", &e), PEMN_ENOTFOUND);
    assert_int_equal(store_key_remove(st, out.id, "cli", &e), PEMN_OK);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_key_list(st, key_cb, &c, NULL), PEMN_OK);
    assert_int_equal(c.n, 0);
    store_close(st);
}

static int token_cb(void *ctx, const struct store_token *t)
{
    struct collect *c = ctx;
    snprintf(c->names[c->n++], 600, "%s:%s:%d", t->name, store_scope_name(t->scope),
             t->revoked != 0);
    return 0;
}

static int audit_cb(void *ctx, const struct store_audit *a)
{
    struct collect *c = ctx;
    if (c->n < 16)
        snprintf(c->names[c->n++], 600, "%s %s %s", a->actor, a->action, a->target);
    return 0;
}

static void test_tokens_and_audit(void **state)
{
    (void)state;
    assert_int_equal(store_scope_parse("read"), STORE_SCOPE_READ);
    assert_int_equal(store_scope_parse("publish"), STORE_SCOPE_PUBLISH);
    assert_int_equal(store_scope_parse("admin"), STORE_SCOPE_ADMIN);
    assert_int_equal(store_scope_parse("device"), STORE_SCOPE_DEVICE);
    assert_int_equal(store_scope_parse("root"), 0);
    assert_int_equal(store_scope_parse(NULL), 0);
    assert_true(store_scope_rights(STORE_SCOPE_PUBLISH) & STORE_SCOPE_READ);
    assert_false(store_scope_rights(STORE_SCOPE_READ) & STORE_SCOPE_PUBLISH);
    assert_false(store_scope_rights(STORE_SCOPE_DEVICE) & STORE_SCOPE_PUBLISH);
    assert_true(store_scope_rights(STORE_SCOPE_DEVICE) & STORE_SCOPE_READ);
    assert_int_equal(store_scope_rights(STORE_SCOPE_ADMIN) & 15, 15);

    struct store *st = open_store(NULL);
    char tok[STORE_TOKEN_TEXT_MAX], tok2[STORE_TOKEN_TEXT_MAX], name[STORE_LABEL_MAX];
    struct pemn_err e;
    assert_int_equal(store_token_create(st, STORE_SCOPE_PUBLISH, "ci", "cli", tok, name, &e),
                     PEMN_OK);
    assert_string_equal(name, "ci");
    assert_int_equal(strlen(tok), 48);
    assert_memory_equal(tok, "pemn_", 5);
    assert_int_equal(store_token_create(st, STORE_SCOPE_READ, "ci", "cli", tok2, name, &e),
                     PEMN_EEXIST);
    assert_int_equal(store_token_create(st, STORE_SCOPE_READ, NULL, "cli", tok2, name, &e),
                     PEMN_OK);
    assert_non_null(strstr(name, "read-"));
    assert_string_not_equal(tok, tok2);
    assert_int_equal(store_token_create(st, 3, NULL, "cli", tok2, name, &e), PEMN_EINVAL);

    unsigned scope = 0;
    char who[STORE_LABEL_MAX];
    assert_int_equal(store_token_check(st, tok, &scope, who, &e), PEMN_OK);
    assert_int_equal(scope, STORE_SCOPE_PUBLISH);
    assert_string_equal(who, "ci");
    char bad[STORE_TOKEN_TEXT_MAX];
    strcpy(bad, tok);
    bad[10] = bad[10] == 'A' ? 'B' : 'A';
    assert_int_equal(store_token_check(st, bad, &scope, who, &e), PEMN_EAUTH);
    assert_int_equal(store_token_check(st, "", &scope, who, &e), PEMN_EAUTH);
    assert_int_equal(store_token_check(st, "Bearer", &scope, who, &e), PEMN_EAUTH);
    assert_int_equal(store_token_check(st, NULL, &scope, who, &e), PEMN_EAUTH);

    /* the database never holds the token text (base64url: safe inside a literal) */
    char q1[300], q2[300];
    snprintf(q1, sizeof q1,
             "SELECT count(*) FROM tokens WHERE instr(hash, '%.20s') OR"
             " instr(CAST(hash AS TEXT), '%.20s')",
             tok + 5, tok + 5);
    snprintf(q2, sizeof q2,
             "SELECT count(*) FROM tokens WHERE position(convert_to('%.20s', 'UTF8') in hash) > 0"
             " OR position('%.20s' in encode(hash, 'escape')) > 0",
             tok + 5, tok + 5);
    assert_int_equal(storefix_sql(q1, q2), 0);
    assert_int_equal(storefix_sql("SELECT count(*) FROM tokens", "SELECT count(*) FROM tokens"), 2);

    assert_int_equal(store_token_revoke(st, "ci", "cli", &e), PEMN_OK);
    assert_int_equal(store_token_check(st, tok, &scope, who, &e), PEMN_EAUTH);
    assert_non_null(strstr(e.msg, "revoked"));
    assert_int_equal(store_token_revoke(st, "ci", "cli", &e), PEMN_ENOTFOUND);
    assert_int_equal(store_token_revoke(st, "nobody", "cli", &e), PEMN_ENOTFOUND);

    struct collect c = {0};
    assert_int_equal(store_token_list(st, token_cb, &c, NULL), PEMN_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.names[0], "ci:publish:1");

    push(st, "net", "1", 1, 10, PEMN_OK, true);
    assert_int_equal(store_tag_set(st, "net", "stable", "1", "ci", NULL, NULL), PEMN_OK);
    memset(&c, 0, sizeof c);
    assert_int_equal(store_audit_list(st, 3, audit_cb, &c, NULL), PEMN_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.names[0], "ci tag.set net:stable");
    assert_string_equal(c.names[1], "test push net/1");
    assert_string_equal(c.names[2], "cli token.revoke ci");
    store_close(st);
}

/* ---- concurrency: writers and readers on one store, and two stores on one file ---------- */
struct worker {
    struct store *st;
    int id;
    int errors;
};

static void *writer(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 20; i++) {
        char model[32], ver[32];
        snprintf(model, sizeof model, "w%d", w->id);
        snprintf(ver, sizeof ver, "%d", i);
        struct store_version m;
        uint8_t *b = fake_pkg(model, ver, (uint64_t)i + 1, 3000 + (size_t)i, &m);
        bool created;
        struct pemn_err e;
        if (store_put_package(w->st, &m, b, m.size, "w", &created, NULL, &e) || !created) {
            fprintf(stderr, "writer %d: %s\n", w->id, e.msg);
            w->errors++;
        }
        free(b);
    }
    return NULL;
}

static void *reader(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 200; i++) {
        struct store_version v;
        pemn_rc rc = store_get_latest(w->st, "w0", &v, NULL);
        if (rc == PEMN_ENOTFOUND)
            continue;
        if (rc) {
            w->errors++;
            continue;
        }
        struct store_blob *b;
        if (store_blob_get(w->st, v.digest, &b, NULL)) {
            w->errors++;
            continue;
        }
        uint8_t *buf = malloc(b->size), d[32];
        char txt[PEMN_DIGEST_TEXT_MAX];
        if (store_blob_read(w->st, b, 0, buf, b->size, NULL))
            w->errors++;
        pemn_sha256(buf, b->size, d);
        pemn_digest_format(d, txt);
        if (strcmp(txt, v.digest) != 0)
            w->errors++;
        free(buf);
        store_blob_release(b);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    struct store *a = open_store(NULL);
    struct store *b = open_store(NULL); /* a second "process" on the same file */
    pthread_t t[6];
    struct worker w[6];
    for (int i = 0; i < 6; i++) {
        w[i] = (struct worker){.st = i % 2 ? b : a, .id = i, .errors = 0};
        pthread_create(&t[i], NULL, i < 3 ? writer : reader, &w[i]);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].errors, 0);
    }
    struct store_stats s;
    assert_int_equal(store_stats(a, &s, NULL), PEMN_OK);
    assert_int_equal(s.versions, 60);
    assert_int_equal(s.models, 3);
    store_close(a);
    store_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_schema, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, storefix_setup,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_push_outcomes, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_listings_and_tags, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_blobs_and_cache, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_cache_eviction, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_keys, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_tokens_and_audit, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, storefix_setup, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
