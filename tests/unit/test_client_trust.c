/*
 * Unit tests: the root chain over HTTP (pemn_client_get_root, pemn_client_update_root) against
 * a fake registry (tests/common/fakesrv.h): walking to the newest, nothing newer, a broken or
 * under-signed link (verified links are kept), a registry answering another version, a
 * failing network, the link bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/client.h>
#include <pemn/trust.h>
#include "tests/common/fakesrv.h"
#include "tests/common/pkgfix.h"

#define N_VERSIONS 4

struct fx {
    fakesrv *srv;
    pemn_client *c;
    char *text[N_VERSIONS + 1]; /* text[v]: root version v, 1-based */
    char *evil2;                /* a version 2 signed only by a stranger */
};

static void sign_with(pemn_root *r, uint8_t tag)
{
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(tag, &sk, &pk);
    assert_int_equal(pemn_root_sign(r, &sk, NULL), PEMN_OK);
}

static char *serialize(pemn_root *r)
{
    char *t;
    struct pemn_err e = {0};
    if (pemn_root_serialize(r, &t, NULL, &e) != PEMN_OK)
        fail_msg("serialize: %s", e.msg);
    return t;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->srv = fakesrv_start();
    assert_non_null(f->srv);
    struct pemn_client_options o;
    pemn_client_options_init(&o);
    o.backoff_base_ms = 5;
    o.backoff_max_ms = 20;
    o.max_attempts = 2;
    o.deadline_ms = 10000;
    assert_int_equal(pemn_client_new(fakesrv_url(f->srv), &o, &f->c, NULL), PEMN_OK);
    /* version 1: root key 1; each next version is signed by key 1 */
    pemn_root *r;
    assert_int_equal(pemn_root_new(4000000000, &r), PEMN_OK);
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(1, &sk, &pk);
    assert_int_equal(pemn_root_add_key(r, &pk), PEMN_OK);
    sign_with(r, 1);
    f->text[1] = serialize(r);
    for (int v = 2; v <= N_VERSIONS; v++) {
        pemn_root *n;
        assert_int_equal(pemn_root_next(r, &n), PEMN_OK);
        pkgfix_key((uint8_t)(50 + v), &sk, &pk);
        assert_int_equal(pemn_root_add_publisher(n, &pk, "*"), PEMN_OK);
        sign_with(n, 1);
        f->text[v] = serialize(n);
        pemn_root_free(r);
        r = n;
    }
    pemn_root_free(r);
    /* an attacker's version 2: valid alone (its own key 9), not signed by version 1's key */
    assert_int_equal(pemn_root_new(4000000000, &r), PEMN_OK);
    pemn_root *n;
    assert_int_equal(pemn_root_next(r, &n), PEMN_OK);
    pkgfix_key(9, &sk, &pk);
    assert_int_equal(pemn_root_add_key(n, &pk), PEMN_OK);
    sign_with(n, 9);
    f->evil2 = serialize(n);
    pemn_root_free(n);
    pemn_root_free(r);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    pemn_client_free(f->c);
    fakesrv_stop(f->srv);
    for (int v = 1; v <= N_VERSIONS; v++)
        free(f->text[v]);
    free(f->evil2);
    free(f);
    return 0;
}

static void serve(struct fx *f, int v, const char *text)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/root/%d", v);
    fakesrv_route(f->srv, "GET", path, 200, text, NULL);
}

static pemn_root *pinned(struct fx *f)
{
    pemn_root *r;
    assert_int_equal(pemn_root_parse(f->text[1], strlen(f->text[1]), &r, NULL), PEMN_OK);
    return r;
}

static void test_walk_to_newest(void **state)
{
    struct fx *f = *state;
    for (int v = 1; v <= N_VERSIONS; v++)
        serve(f, v, f->text[v]);
    pemn_root *t = pinned(f), *out = NULL;
    unsigned links = 99;
    struct pemn_err e = {0};
    assert_int_equal(pemn_client_update_root(f->c, t, 0, &out, &links, &e), PEMN_OK);
    assert_int_equal(links, N_VERSIONS - 1);
    assert_int_equal(pemn_root_version(out), N_VERSIONS);
    size_t n;
    const uint8_t *b = pemn_root_bytes(out, &n);
    assert_int_equal(n, strlen(f->text[N_VERSIONS])); /* kept in the canonical file form */
    assert_memory_equal(b, f->text[N_VERSIONS], n);
    pemn_root_free(out);
    /* bounded */
    assert_int_equal(pemn_client_update_root(f->c, t, 2, &out, &links, &e), PEMN_ETOOBIG);
    assert_int_equal(links, 2);
    assert_int_equal(pemn_root_version(out), 3);
    pemn_root_free(out);
    /* one version by number and the latest */
    assert_int_equal(pemn_client_get_root(f->c, 2, &out, &e), PEMN_OK);
    assert_int_equal(pemn_root_version(out), 2);
    pemn_root_free(out);
    assert_int_equal(pemn_client_get_root(f->c, 9, &out, &e), PEMN_ENOTFOUND);
    assert_null(out);
    pemn_root_free(t);
}

static void test_nothing_newer(void **state)
{
    struct fx *f = *state;
    serve(f, 1, f->text[1]);
    pemn_root *t = pinned(f), *out = NULL;
    unsigned links = 99;
    assert_int_equal(pemn_client_update_root(f->c, t, 0, &out, &links, NULL), PEMN_OK);
    assert_int_equal(links, 0);
    assert_int_equal(pemn_root_version(out), 1);
    pemn_root_free(out);
    pemn_root_free(t);
}

static void test_bad_links(void **state)
{
    struct fx *f = *state;
    pemn_root *t = pinned(f), *out = NULL;
    unsigned links;
    struct pemn_err e = {0};
    /* an under-signed version 2 */
    serve(f, 2, f->evil2);
    assert_int_equal(pemn_client_update_root(f->c, t, 0, &out, &links, &e), PEMN_EUNTRUSTED);
    assert_int_equal(links, 0);
    assert_int_equal(pemn_root_version(out), 1); /* still the pinned one */
    pemn_root_free(out);
    /* v2 fine, v3 replaced by a copy of v2: wrong version answered; v2 is kept */
    serve(f, 2, f->text[2]);
    serve(f, 3, f->text[2]);
    assert_int_equal(pemn_client_update_root(f->c, t, 0, &out, &links, &e), PEMN_ECORRUPT);
    assert_int_equal(links, 1);
    assert_int_equal(pemn_root_version(out), 2);
    pemn_root_free(out);
    /* garbage */
    serve(f, 3, "{\"signed\":{}}");
    assert_int_equal(pemn_client_update_root(f->c, t, 0, &out, &links, &e), PEMN_ECORRUPT);
    pemn_root_free(out);
    /* the registry fails: the error, and the pinned root */
    fakesrv_fail(f->srv, 500, 10, -1);
    assert_int_equal(pemn_client_update_root(f->c, t, 0, &out, &links, &e), PEMN_EHTTP);
    assert_int_equal(pemn_root_version(out), 1);
    pemn_root_free(out);
    fakesrv_fail(f->srv, 500, 0, -1);
    assert_int_equal(pemn_client_update_root(NULL, t, 0, &out, &links, &e), PEMN_EINVAL);
    pemn_root_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_walk_to_newest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nothing_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_links, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
