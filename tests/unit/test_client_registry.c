/*
 * tests/unit/test_client_registry.c — references, resolve, list, tag, untag and push
 * against canned registry answers: JSON shapes, error mapping, bearer token, ETag
 * revalidation, retries of metadata requests, limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tests/common/client_fixture.h"
#include "tests/common/fakesrv.h"

#include <pemn/client.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

struct fx {
    fakesrv *srv;
    pemn_client *c;
    char *dir;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->srv = fakesrv_start();
    assert_non_null(f->srv);
    f->dir = fx_tmpdir();
    struct pemn_client_options o;
    pemn_client_options_init(&o);
    o.token = "tok-123";
    o.backoff_base_ms = 5;
    o.backoff_max_ms = 20;
    o.retry_after_max_ms = 20;
    o.max_attempts = 3;
    o.deadline_ms = 10000;
    struct pemn_err e;
    assert_int_equal(pemn_client_new(fakesrv_url(f->srv), &o, &f->c, &e), PEMN_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    pemn_client_free(f->c);
    fakesrv_stop(f->srv);
    fx_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void route_vo(struct fx *f, const char *method, const char *path, int status,
                     const char *name, const char *version, uint64_t release, const char *digest,
                     const char *tag, const char *etag)
{
    char *j = fx_version_json(name, version, release, digest, 1234, NULL, tag);
    assert_non_null(j);
    fakesrv_route(f->srv, method, path, status, j, etag);
    free(j);
}

static void test_parse_ref(void **state)
{
    char n[PEMN_LABEL_BUF], v[PEMN_LABEL_BUF], t[PEMN_LABEL_BUF];
    struct pemn_err e;
    assert_int_equal(pemn_client_parse_ref("net", n, v, t, &e), PEMN_OK);
    assert_string_equal(n, "net");
    assert_string_equal(v, "");
    assert_string_equal(t, "");
    assert_int_equal(pemn_client_parse_ref("net:1.4.0", n, v, t, &e), PEMN_OK);
    assert_string_equal(n, "net");
    assert_string_equal(v, "1.4.0");
    assert_int_equal(pemn_client_parse_ref("fm-mlp_2@stable", n, v, t, &e), PEMN_OK);
    assert_string_equal(n, "fm-mlp_2");
    assert_string_equal(t, "stable");
    const char *bad[] = {"",     ":1.0",  "net:",     "net@",      "net:1@x", "-net",
                         "ne t", "net/x", "net:../x", "net:1.0:2", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(pemn_client_parse_ref(bad[i], n, v, t, &e), PEMN_EINVAL);
    char longname[200];
    memset(longname, 'a', 150);
    longname[150] = '\0';
    assert_int_equal(pemn_client_parse_ref(longname, n, v, t, &e), PEMN_EINVAL);
}

static void test_resolve_version(void **state)
{
    struct fx *f = *state;
    route_vo(f, "GET", "/v1/models/net/versions/1.4.0", 200, "net", "1.4.0", 7, D1, NULL, NULL);
    struct pemn_resolved r;
    struct pemn_err e;
    assert_int_equal(pemn_client_resolve(f->c, "net", "1.4.0", NULL, &r, &e), PEMN_OK);
    assert_string_equal(r.model, "net");
    assert_string_equal(r.version, "1.4.0");
    assert_int_equal(r.release, 7);
    assert_string_equal(r.digest, D1);
    assert_int_equal(r.size, 1234);
    assert_string_equal(r.package_url, "/v1/blobs/" D1); /* derived when absent */
    assert_string_equal(r.signer, "0123456789abcdef");
    assert_string_equal(r.strategy, "rp");
    assert_int_equal(r.n_params, 266200);
    assert_int_equal(r.f32_size, 1065000);
    assert_true(r.ratio > 31.8 && r.ratio < 32.0);
    struct fakesrv_stats ss;
    fakesrv_get_stats(f->srv, &ss);
    assert_string_equal(ss.last_auth, "Bearer tok-123");
}

static void test_resolve_tag_and_latest(void **state)
{
    struct fx *f = *state;
    route_vo(f, "GET", "/v1/models/net/tags/stable", 200, "net", "1.3.0", 6, D2, "stable", NULL);
    struct pemn_resolved r;
    struct pemn_err e;
    assert_int_equal(pemn_client_resolve(f->c, "net", NULL, "stable", &r, &e), PEMN_OK);
    assert_string_equal(r.version, "1.3.0");
    assert_string_equal(r.tag, "stable");
    char *vo = fx_version_json("net", "1.4.0", 7, D1, 99, "/v1/blobs/" D1, NULL);
    char body[4096];
    snprintf(body, sizeof body,
             "{\"name\":\"net\",\"latest\":%s,\"versions\":[%s],\"tags\":{\"stable\":\"1.4.0\"}}",
             vo, vo);
    fakesrv_route(f->srv, "GET", "/v1/models/net", 200, body, NULL);
    assert_int_equal(pemn_client_resolve(f->c, "net", "", "", &r, &e), PEMN_OK);
    assert_string_equal(r.version, "1.4.0");
    assert_int_equal(r.size, 99);
    free(vo);
    assert_int_equal(pemn_client_resolve(f->c, "net", "1", "stable", &r, &e), PEMN_EINVAL);
    assert_int_equal(pemn_client_resolve(f->c, "../x", NULL, NULL, &r, &e), PEMN_EINVAL);
}

static void test_resolve_errors_mapped(void **state)
{
    struct fx *f = *state;
    struct {
        int status;
        const char *code;
        pemn_rc rc;
    } cases[] = {
        {404, "not_found", PEMN_ENOTFOUND},  {401, "unauthorized", PEMN_EAUTH},
        {403, "forbidden", PEMN_EAUTH},      {409, "conflict", PEMN_ECONFLICT},
        {400, "bad_request", PEMN_EINVAL},   {413, "too_large", PEMN_ETOOBIG},
        {400, "corrupt", PEMN_ECORRUPT},     {403, "bad_signature", PEMN_EBADSIG},
        {403, "untrusted", PEMN_EUNTRUSTED}, {409, "release_not_newer", PEMN_ECONFLICT},
        {418, "teapot", PEMN_EHTTP},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"error\":{\"code\":\"%s\",\"message\":\"why %zu\"}}",
                 cases[i].code, i);
        fakesrv_route(f->srv, "GET", "/v1/models/m/versions/1", cases[i].status, body, NULL);
        struct pemn_resolved r;
        struct pemn_err e;
        assert_int_equal(pemn_client_resolve(f->c, "m", "1", NULL, &r, &e), cases[i].rc);
        assert_int_equal(e.rc, cases[i].rc);
        assert_non_null(strstr(e.msg, cases[i].code));
        char why[32];
        snprintf(why, sizeof why, "why %zu", i);
        assert_non_null(strstr(e.msg, why));
    }
    /* no JSON body: mapped by status */
    fakesrv_route(f->srv, "GET", "/v1/models/m/versions/1", 404, "nope", NULL);
    struct pemn_resolved r;
    struct pemn_err e;
    assert_int_equal(pemn_client_resolve(f->c, "m", "1", NULL, &r, &e), PEMN_ENOTFOUND);
    /* escapes from a hostile server are not passed through */
    fakesrv_route(f->srv, "GET", "/v1/models/m/versions/1", 404,
                  "{\"error\":{\"code\":\"not_found\",\"message\":\"a\\u001b[2Jb\"}}", NULL);
    assert_int_equal(pemn_client_resolve(f->c, "m", "1", NULL, &r, &e), PEMN_ENOTFOUND);
    assert_null(strchr(e.msg, 0x1b));
}

static void test_bad_responses(void **state)
{
    struct fx *f = *state;
    struct pemn_resolved r;
    struct pemn_err e;
    fakesrv_route(f->srv, "GET", "/v1/models/m/versions/1", 200, "not json", NULL);
    assert_int_equal(pemn_client_resolve(f->c, "m", "1", NULL, &r, &e), PEMN_EHTTP);
    fakesrv_route(f->srv, "GET", "/v1/models/m/versions/1", 200, "{\"model\":\"m\"}", NULL);
    assert_int_equal(pemn_client_resolve(f->c, "m", "1", NULL, &r, &e), PEMN_EHTTP);
    route_vo(f, "GET", "/v1/models/m/versions/1", 200, "m", "1", 1, "sha256:zz", NULL, NULL);
    assert_int_equal(pemn_client_resolve(f->c, "m", "1", NULL, &r, &e), PEMN_EHTTP);
    /* the answer is for another model */
    route_vo(f, "GET", "/v1/models/m/versions/1", 200, "other", "1", 1, D1, NULL, NULL);
    assert_int_equal(pemn_client_resolve(f->c, "m", "1", NULL, &r, &e), PEMN_EHTTP);
    /* too large */
    struct pemn_client_options o;
    pemn_client_options_init(&o);
    o.max_json_bytes = 100;
    pemn_client *c2;
    assert_int_equal(pemn_client_new(fakesrv_url(f->srv), &o, &c2, &e), PEMN_OK);
    route_vo(f, "GET", "/v1/models/m/versions/1", 200, "m", "1", 1, D1, NULL, NULL);
    assert_int_equal(pemn_client_resolve(c2, "m", "1", NULL, &r, &e), PEMN_ETOOBIG);
    pemn_client_free(c2);
}

static void test_etag_revalidation(void **state)
{
    struct fx *f = *state;
    route_vo(f, "GET", "/v1/models/net/tags/stable", 200, "net", "1.3.0", 6, D2, "stable",
             "\"v1\"");
    struct pemn_resolved r;
    struct pemn_err e;
    assert_int_equal(pemn_client_resolve(f->c, "net", NULL, "stable", &r, &e), PEMN_OK);
    struct fakesrv_stats ss;
    fakesrv_get_stats(f->srv, &ss);
    assert_string_equal(ss.last_if_none_match, "");
    memset(&r, 0, sizeof r);
    assert_int_equal(pemn_client_resolve(f->c, "net", NULL, "stable", &r, &e), PEMN_OK);
    fakesrv_get_stats(f->srv, &ss);
    assert_string_equal(ss.last_if_none_match, "\"v1\""); /* answered 304 */
    assert_string_equal(r.version, "1.3.0");
    assert_string_equal(r.digest, D2);
    /* the tag moves: new ETag, new body */
    route_vo(f, "GET", "/v1/models/net/tags/stable", 200, "net", "1.4.0", 7, D1, "stable",
             "\"v2\"");
    assert_int_equal(pemn_client_resolve(f->c, "net", NULL, "stable", &r, &e), PEMN_OK);
    assert_string_equal(r.version, "1.4.0");
    assert_int_equal(pemn_client_resolve(f->c, "net", NULL, "stable", &r, &e), PEMN_OK);
    fakesrv_get_stats(f->srv, &ss);
    assert_string_equal(ss.last_if_none_match, "\"v2\"");
    assert_string_equal(r.version, "1.4.0");
}

static void test_metadata_retried(void **state)
{
    struct fx *f = *state;
    route_vo(f, "GET", "/v1/models/net/versions/1", 200, "net", "1", 1, D1, NULL, NULL);
    fakesrv_fail(f->srv, 429, 2, 1);
    struct pemn_resolved r;
    struct pemn_err e;
    assert_int_equal(pemn_client_resolve(f->c, "net", "1", NULL, &r, &e), PEMN_OK);
    fakesrv_fail(f->srv, 503, 100, -1);
    fakesrv_reset_stats(f->srv);
    assert_int_equal(pemn_client_resolve(f->c, "net", "1", NULL, &r, &e), PEMN_EHTTP);
    struct fakesrv_stats ss;
    fakesrv_get_stats(f->srv, &ss);
    assert_int_equal(ss.requests, 3);
    assert_non_null(strstr(e.msg, "unavailable"));
}

static void test_list_all(void **state)
{
    struct fx *f = *state;
    char *a = fx_version_json("a", "1.0", 1, D1, 10, NULL, NULL);
    char *b = fx_version_json("b", "2.0", 4, D2, 20, NULL, NULL);
    char body[4096];
    snprintf(body, sizeof body,
             "{\"models\":[{\"name\":\"a\",\"latest\":%s,\"versions\":1},"
             "{\"name\":\"b\",\"latest\":%s,\"versions\":3}]}",
             a, b);
    fakesrv_route(f->srv, "GET", "/v1/models", 200, body, NULL);
    struct pemn_listing *l;
    struct pemn_err e;
    assert_int_equal(pemn_client_list(f->c, NULL, &l, &e), PEMN_OK);
    assert_int_equal(l->count, 2);
    assert_string_equal(l->versions[0].model, "a");
    assert_string_equal(l->versions[1].version, "2.0");
    assert_int_equal(l->n_versions[0], 1);
    assert_int_equal(l->n_versions[1], 3);
    pemn_listing_free(l);
    fakesrv_route(f->srv, "GET", "/v1/models", 200, "{\"models\":[]}", NULL);
    assert_int_equal(pemn_client_list(f->c, "", &l, &e), PEMN_OK);
    assert_int_equal(l->count, 0);
    pemn_listing_free(l);
    fakesrv_route(f->srv, "GET", "/v1/models", 200, "{\"nope\":1}", NULL);
    assert_int_equal(pemn_client_list(f->c, "", &l, &e), PEMN_EHTTP);
    assert_null(l);
    free(a);
    free(b);
    pemn_listing_free(NULL);
}

static void test_list_one(void **state)
{
    struct fx *f = *state;
    char *v2 = fx_version_json("net", "2.0", 2, D2, 20, NULL, NULL);
    char *v1 = fx_version_json("net", "1.0", 1, D1, 10, NULL, NULL);
    char body[4096];
    snprintf(body, sizeof body,
             "{\"name\":\"net\",\"latest\":%s,\"versions\":[%s,%s],"
             "\"tags\":{\"stable\":\"1.0\",\"beta\":\"2.0\"}}",
             v2, v2, v1);
    fakesrv_route(f->srv, "GET", "/v1/models/net", 200, body, NULL);
    struct pemn_listing *l;
    struct pemn_err e;
    assert_int_equal(pemn_client_list(f->c, "net", &l, &e), PEMN_OK);
    assert_int_equal(l->count, 2);
    assert_string_equal(l->versions[0].version, "2.0");
    assert_string_equal(l->versions[1].version, "1.0");
    assert_null(l->n_versions);
    assert_int_equal(l->n_tags, 2);
    int seen = 0;
    for (size_t i = 0; i < l->n_tags; i++) {
        if (!strcmp(l->tags[i].tag, "stable") && !strcmp(l->tags[i].version, "1.0"))
            seen |= 1;
        if (!strcmp(l->tags[i].tag, "beta") && !strcmp(l->tags[i].version, "2.0"))
            seen |= 2;
    }
    assert_int_equal(seen, 3);
    pemn_listing_free(l);
    assert_int_equal(pemn_client_list(f->c, "nothere", &l, &e), PEMN_ENOTFOUND);
    free(v1);
    free(v2);
}

static void test_tag_untag(void **state)
{
    struct fx *f = *state;
    route_vo(f, "PUT", "/v1/models/net/tags/stable", 200, "net", "1.0", 1, D1, "stable", NULL);
    struct pemn_resolved r;
    struct pemn_err e;
    assert_int_equal(pemn_client_tag(f->c, "net", "1.0", "stable", &r, &e), PEMN_OK);
    assert_string_equal(r.tag, "stable");
    assert_string_equal(r.version, "1.0");
    struct fakesrv_stats ss;
    fakesrv_get_stats(f->srv, &ss);
    assert_string_equal(ss.last_method, "PUT");
    const char *want = "{\"version\":\"1.0\"}";
    uint8_t h[32];
    crypto_hash_sha256(h, (const uint8_t *)want, strlen(want));
    assert_int_equal(ss.upload_len, strlen(want));
    assert_memory_equal(ss.upload_sha, h, 32);
    assert_int_equal(pemn_client_tag(f->c, "net", "1.0", "bad tag", &r, &e), PEMN_EINVAL);
    assert_int_equal(pemn_client_tag(f->c, "net", "9.9", "other", &r, &e), PEMN_ENOTFOUND);
    fakesrv_route(f->srv, "DELETE", "/v1/models/net/tags/stable", 204, "", NULL);
    assert_int_equal(pemn_client_untag(f->c, "net", "stable", &e), PEMN_OK);
    fakesrv_get_stats(f->srv, &ss);
    assert_string_equal(ss.last_method, "DELETE");
    assert_int_equal(pemn_client_untag(f->c, "net", "gone", &e), PEMN_ENOTFOUND);
}

static void test_push(void **state)
{
    struct fx *f = *state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    assert_int_equal(pemn_key_generate(&sk, &pk), PEMN_OK);
    size_t len;
    uint8_t *pkg = fx_make_pkg("net", "1.2.0", 5, &sk, 50000, &len);
    assert_non_null(pkg);
    char path[600];
    snprintf(path, sizeof path, "%s/net.pemn", f->dir);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(pkg, 1, len, fp), len);
    fclose(fp);
    char dg[PEMN_DIGEST_TEXT_MAX];
    fx_digest(pkg, len, dg);
    route_vo(f, "PUT", "/v1/models/net/versions/1.2.0", 201, "net", "1.2.0", 5, dg, NULL, NULL);
    struct pemn_resolved r;
    struct pemn_err e;
    int created = -1;
    assert_int_equal(pemn_client_push(f->c, path, &r, &created, &e), PEMN_OK);
    assert_int_equal(created, 1);
    assert_string_equal(r.digest, dg);
    struct fakesrv_stats ss;
    fakesrv_get_stats(f->srv, &ss);
    assert_int_equal(ss.upload_len, len);
    uint8_t h[32];
    crypto_hash_sha256(h, pkg, len);
    assert_memory_equal(ss.upload_sha, h, 32);
    assert_string_equal(ss.last_auth, "Bearer tok-123");
    /* identical re-push */
    route_vo(f, "PUT", "/v1/models/net/versions/1.2.0", 200, "net", "1.2.0", 5, dg, NULL, NULL);
    assert_int_equal(pemn_client_push(f->c, path, NULL, &created, &e), PEMN_OK);
    assert_int_equal(created, 0);
    /* refusals */
    fakesrv_route(f->srv, "PUT", "/v1/models/net/versions/1.2.0", 409,
                  "{\"error\":{\"code\":\"conflict\",\"message\":\"different package\"}}", NULL);
    assert_int_equal(pemn_client_push(f->c, path, NULL, NULL, &e), PEMN_ECONFLICT);
    fakesrv_route(f->srv, "PUT", "/v1/models/net/versions/1.2.0", 403,
                  "{\"error\":{\"code\":\"untrusted\",\"message\":\"who?\"}}", NULL);
    assert_int_equal(pemn_client_push(f->c, path, NULL, NULL, &e), PEMN_EUNTRUSTED);
    assert_non_null(strstr(e.msg, "who?"));
    /* a push is retried after a 503 (PUT of the same bytes is idempotent) */
    route_vo(f, "PUT", "/v1/models/net/versions/1.2.0", 201, "net", "1.2.0", 5, dg, NULL, NULL);
    fakesrv_fail(f->srv, 503, 1, 0);
    assert_int_equal(pemn_client_push(f->c, path, NULL, &created, &e), PEMN_OK);
    fakesrv_get_stats(f->srv, &ss);
    assert_int_equal(ss.upload_len, len);
    /* not a package: refused locally, nothing sent */
    fakesrv_reset_stats(f->srv);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("hello", fp);
    fclose(fp);
    assert_int_equal(pemn_client_push(f->c, path, NULL, NULL, &e), PEMN_ECORRUPT);
    char missing[700];
    snprintf(missing, sizeof missing, "%s/none.pemn", f->dir);
    assert_int_not_equal(pemn_client_push(f->c, missing, NULL, NULL, &e), PEMN_OK);
    fakesrv_get_stats(f->srv, &ss);
    assert_int_equal(ss.requests, 0);
    free(pkg);
    pemn_seckey_wipe(&sk);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_parse_ref),
        T(test_resolve_version),
        T(test_resolve_tag_and_latest),
        T(test_resolve_errors_mapped),
        T(test_bad_responses),
        T(test_etag_revalidation),
        T(test_metadata_retried),
        T(test_list_all),
        T(test_list_one),
        T(test_tag_untag),
        T(test_push),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
