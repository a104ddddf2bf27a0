/* Unit tests: server/srv_signer.c — pemnd signs desired-state answers: the envelope verifies
 * under the metadata key and carries the answer, the device's metadata version and the
 * validity window; the same answer is served again without signing; a changed answer, a
 * new key, or half the lifetime gone means a new signature with a higher version; no root,
 * or a root that does not name the key, stops the signer from starting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/srv_signer.h"
#include "storage/store_metadata.h"
#include "storage/store_trust.h"
#include "tests/common/evilreg.h"
#include "tests/common/pkgfix.h"
#include "tests/common/storefix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct fx {
    char dir[300], key[400], other_key[400];
    struct evil_keys k;
    struct store *st;
};

/* The store is storefix's (SQLite, or PostgreSQL on that leg): the signer's storage is part
 * of the contract; the keys live in a directory of their own. */
static int setup(void **state)
{
    if (storefix_setup(state))
        return -1;
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s", pkgfix_tmpdir());
    evil_keys_init(&f->k);
    char base[340];
    snprintf(base, sizeof base, "%s/meta", f->dir);
    snprintf(f->key, sizeof f->key, "%s.key", base);
    if (pemn_key_save(base, &f->k.meta, NULL))
        return -1;
    snprintf(base, sizeof base, "%s/other", f->dir);
    snprintf(f->other_key, sizeof f->other_key, "%s.key", base);
    if (pemn_key_save(base, &f->k.meta2, NULL))
        return -1;
    if (store_open(storefix_db, NULL, &f->st, NULL))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->st);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return storefix_teardown(state);
}

static void add_root(struct fx *f)
{
    pemn_root *r = evil_root_v1(&f->k, "net", (int64_t)time(NULL) + 86400);
    const struct pemn_seckey *s1[] = {&f->k.root1};
    size_t len;
    char *text = evil_root_text(r, s1, 1, &len);
    assert_int_equal(
        store_trust_root_put(f->st, 1, pemn_root_expires(r), text, len, "test", NULL, NULL),
        PEMN_OK);
    pemn_root_free(r);
    free(text);
}

static json_t *answer(const char *version)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:I}", "fleet", "f", "device", "d1", "model",
                     "net", "version", version, "release", (json_int_t)3, "digest",
                     "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                     "size", (json_int_t)100);
}

/* Verifies body under meta_pk and returns its signed object (new). */
static json_t *open_body(const char *body, const struct pemn_pubkey *pk)
{
    pemn_envelope *env = NULL;
    struct pemn_err e = {0};
    assert_int_equal(pemn_envelope_parse(body, strlen(body), &env, &e), PEMN_OK);
    assert_string_equal(pemn_envelope_type(env), "pemn-desired");
    assert_int_equal(pemn_envelope_verify(env, pk, 1, 1, NULL, &e), PEMN_OK);
    size_t n;
    const char *s = pemn_envelope_signed(env, &n);
    json_t *o = json_loadb(s, n, 0, NULL);
    assert_non_null(o);
    pemn_envelope_free(env);
    return o;
}

/* srv_signer_answer without If-None-Match (always a body). */
static pemn_rc answer_of(struct srv_signer *sg, struct store *st, const char *device,
                         const json_t *a, char **body, size_t *len, struct pemn_err *e)
{
    char etag[SRV_SIGNER_ETAG_MAX];
    bool same = true;
    pemn_rc rc = srv_signer_answer(sg, st, "f", device, a, NULL, body, len, etag, &same, e);
    assert_false(same);
    assert_true(etag[0] == '"');
    return rc;
}

static uint64_t jint(json_t *o, const char *k)
{
    return (uint64_t)json_integer_value(json_object_get(o, k));
}

static void test_refuses_without_root(void **state)
{
    struct fx *f = *state;
    struct srv_signer *sg = NULL;
    struct pemn_err e = {0};
    assert_int_equal(srv_signer_new(f->key, 3600, f->st, &sg, &e), PEMN_ENOTFOUND);
    assert_null(sg);
    assert_non_null(strstr(e.msg, "no root"));
    add_root(f);
    /* a key the root does not name */
    assert_int_equal(srv_signer_new(f->other_key, 3600, f->st, &sg, &e), PEMN_EUNTRUSTED);
    assert_null(sg);
    /* a missing key file */
    char nokey[420];
    snprintf(nokey, sizeof nokey, "%s/none.key", f->dir);
    assert_int_not_equal(srv_signer_new(nokey, 3600, f->st, &sg, &e), PEMN_OK);
    assert_int_equal(srv_signer_new(f->key, 3600, f->st, &sg, &e), PEMN_OK);
    srv_signer_free(sg);
}

static void test_sign_once_per_answer(void **state)
{
    struct fx *f = *state;
    add_root(f);
    struct srv_signer *sg = NULL;
    struct pemn_err e = {0};
    assert_int_equal(srv_signer_new(f->key, 3600, f->st, &sg, &e), PEMN_OK);
    json_t *a1 = answer("1.0");
    char *b1 = NULL, *b2 = NULL, *b3 = NULL;
    size_t l1, l2, l3;
    int64_t t0 = (int64_t)time(NULL);
    assert_int_equal(answer_of(sg, f->st, "d1", a1, &b1, &l1, &e), PEMN_OK);
    assert_int_equal(l1, strlen(b1));
    assert_int_equal(b1[l1 - 1], '\n');
    json_t *o = open_body(b1, &f->k.meta_pk);
    assert_string_equal(json_string_value(json_object_get(o, "model")), "net");
    assert_string_equal(json_string_value(json_object_get(o, "device")), "d1");
    assert_int_equal(jint(o, "metadata_version"), 1);
    assert_true((int64_t)jint(o, "issued") >= t0);
    assert_int_equal(jint(o, "expires") - jint(o, "issued"), 3600);
    json_decref(o);
    /* the same answer: the same bytes, no new version */
    assert_int_equal(answer_of(sg, f->st, "d1", a1, &b2, &l2, &e), PEMN_OK);
    assert_string_equal(b1, b2);
    /* the client has it: "not modified", no body; another ETag: the body */
    char etag[SRV_SIGNER_ETAG_MAX], etag2[SRV_SIGNER_ETAG_MAX];
    bool same = false;
    char *nb = NULL;
    size_t nl = 1;
    assert_int_equal(srv_signer_answer(sg, f->st, "f", "d1", a1, NULL, &nb, &nl, etag, &same, &e),
                     PEMN_OK);
    free(nb);
    nb = NULL;
    assert_int_equal(srv_signer_answer(sg, f->st, "f", "d1", a1, etag, &nb, &nl, etag2, &same, &e),
                     PEMN_OK);
    assert_true(same);
    assert_null(nb);
    assert_int_equal(nl, 0);
    assert_string_equal(etag, etag2);
    assert_int_equal(
        srv_signer_answer(sg, f->st, "f", "d1", a1, "\"other\"", &nb, &nl, etag2, &same, &e),
        PEMN_OK);
    assert_false(same);
    assert_non_null(nb);
    free(nb);
    uint64_t counter = 0;
    assert_int_equal(store_metadata_counter(f->st, "d1", &counter, NULL), PEMN_OK);
    assert_int_equal(counter, 1);
    /* a changed answer: signed again, higher version */
    json_t *a2 = answer("2.0");
    assert_int_equal(answer_of(sg, f->st, "d1", a2, &b3, &l3, &e), PEMN_OK);
    o = open_body(b3, &f->k.meta_pk);
    assert_int_equal(jint(o, "metadata_version"), 2);
    assert_string_equal(json_string_value(json_object_get(o, "version")), "2.0");
    json_decref(o);
    /* back to the first answer: never the old version again */
    free(b2);
    assert_int_equal(answer_of(sg, f->st, "d1", a1, &b2, &l2, &e), PEMN_OK);
    o = open_body(b2, &f->k.meta_pk);
    assert_int_equal(jint(o, "metadata_version"), 3);
    json_decref(o);
    /* another device has its own counter */
    char *b4 = NULL;
    size_t l4;
    json_t *a3 = answer("1.0");
    json_object_set_new(a3, "device", json_string("d2"));
    assert_int_equal(answer_of(sg, f->st, "d2", a3, &b4, &l4, &e), PEMN_OK);
    o = open_body(b4, &f->k.meta_pk);
    assert_int_equal(jint(o, "metadata_version"), 1);
    json_decref(o);
    srv_signer_free(sg);
    /* a restart (new signer, same store) serves the stored answer, then continues upward */
    assert_int_equal(srv_signer_new(f->key, 3600, f->st, &sg, &e), PEMN_OK);
    char *b5 = NULL;
    size_t l5;
    assert_int_equal(answer_of(sg, f->st, "d1", a1, &b5, &l5, &e), PEMN_OK);
    assert_string_equal(b5, b2);
    /* a different lifetime is a different answer */
    srv_signer_free(sg);
    assert_int_equal(srv_signer_new(f->key, 7200, f->st, &sg, &e), PEMN_OK);
    free(b5);
    assert_int_equal(answer_of(sg, f->st, "d1", a1, &b5, &l5, &e), PEMN_OK);
    o = open_body(b5, &f->k.meta_pk);
    assert_int_equal(jint(o, "metadata_version"), 4);
    json_decref(o);
    srv_signer_free(sg);
    json_decref(a1);
    json_decref(a2);
    json_decref(a3);
    free(b1);
    free(b2);
    free(b3);
    free(b4);
    free(b5);
}

static void test_resign_before_expiry(void **state)
{
    struct fx *f = *state;
    add_root(f);
    struct srv_signer *sg = NULL;
    struct pemn_err e = {0};
    assert_int_equal(srv_signer_new(f->key, 4, f->st, &sg, &e), PEMN_OK);
    json_t *a1 = answer("1.0");
    char *b1 = NULL, *b2 = NULL, *b3 = NULL;
    size_t l;
    assert_int_equal(answer_of(sg, f->st, "d1", a1, &b1, &l, &e), PEMN_OK);
    assert_int_equal(answer_of(sg, f->st, "d1", a1, &b2, &l, &e), PEMN_OK);
    assert_string_equal(b1, b2); /* more than half of its 4 s left */
    sleep(3);                    /* now less than half: re-signed, newer, fresh expiry */
    assert_int_equal(answer_of(sg, f->st, "d1", a1, &b3, &l, &e), PEMN_OK);
    json_t *o1 = open_body(b1, &f->k.meta_pk), *o3 = open_body(b3, &f->k.meta_pk);
    assert_true(jint(o3, "metadata_version") > jint(o1, "metadata_version"));
    assert_true(jint(o3, "expires") > jint(o1, "expires"));
    json_decref(o1);
    json_decref(o3);
    json_decref(a1);
    free(b1);
    free(b2);
    free(b3);
    srv_signer_free(sg);
}

/* Two pemnd (replicas) on one store: what one remembers for its 304s never makes a device
 * see an older version than the store holds. */
static void test_two_replicas(void **state)
{
    struct fx *f = *state;
    add_root(f);
    struct srv_signer *a = NULL, *b = NULL;
    struct pemn_err e = {0};
    assert_int_equal(srv_signer_new(f->key, 3600, f->st, &a, &e), PEMN_OK);
    assert_int_equal(srv_signer_new(f->key, 3600, f->st, &b, &e), PEMN_OK);
    json_t *x = answer("1.0"), *y = answer("2.0");
    char ea[SRV_SIGNER_ETAG_MAX], eb[SRV_SIGNER_ETAG_MAX], e2[SRV_SIGNER_ETAG_MAX];
    char *body = NULL;
    size_t len;
    bool same;
    /* replica A signs X (version 1) and remembers it */
    assert_int_equal(srv_signer_answer(a, f->st, "f", "d1", x, NULL, &body, &len, ea, &same, &e),
                     PEMN_OK);
    free(body);
    /* replica B: the answer moves to Y (v2) and back to X (v3) */
    assert_int_equal(answer_of(b, f->st, "d1", y, &body, &len, &e), PEMN_OK);
    free(body);
    assert_int_equal(srv_signer_answer(b, f->st, "f", "d1", x, NULL, &body, &len, eb, &same, &e),
                     PEMN_OK);
    json_t *o = open_body(body, &f->k.meta_pk);
    assert_int_equal(jint(o, "metadata_version"), 3);
    json_decref(o);
    free(body);
    assert_string_not_equal(ea, eb);
    /* a device holding v3 asks A: A's memory (v1) does not match, the store answers: 304 */
    body = NULL;
    assert_int_equal(srv_signer_answer(a, f->st, "f", "d1", x, eb, &body, &len, e2, &same, &e),
                     PEMN_OK);
    assert_true(same);
    assert_null(body);
    /* a device without an ETag gets the newest body from A */
    assert_int_equal(srv_signer_answer(a, f->st, "f", "d1", x, NULL, &body, &len, e2, &same, &e),
                     PEMN_OK);
    o = open_body(body, &f->k.meta_pk);
    assert_int_equal(jint(o, "metadata_version"), 3);
    json_decref(o);
    free(body);
    json_decref(x);
    json_decref(y);
    srv_signer_free(a);
    srv_signer_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refuses_without_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_once_per_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resign_before_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_replicas, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
