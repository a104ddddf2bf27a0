/* Unit tests: updates by delta in pemn_client_fetch (client/delta.c) against the fault
 * injection server: a good delta is used (fewer bytes, the same installed bytes); a
 * garbage, tampered, wrong, oversized or missing delta falls back to the whole package and
 * still installs the right bytes; PEMN_FETCH_NO_DELTA asks for none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/common/client_fixture.h"
#include "tests/common/fakesrv.h"

#include <pemn/client.h>
#include <pemn/delta.h>
#include <pemn/key.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOB "/v1/blobs/test"

struct fx {
    fakesrv *srv;
    char *dir;
    char dest[600], base[600];
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pemn_keyring *trusted;
    uint8_t *pkg, *old, *delta;
    size_t len, old_len, delta_len;
    char delta_path[600];
    struct pemn_resolved r;
    pemn_client *c;
};

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(pemn_init(), PEMN_OK);
    f->srv = fakesrv_start();
    assert_non_null(f->srv);
    f->dir = fx_tmpdir();
    assert_non_null(f->dir);
    snprintf(f->dest, sizeof f->dest, "%s/model.pemn", f->dir);
    snprintf(f->base, sizeof f->base, "%s/old.pemn", f->dir);
    assert_int_equal(pemn_key_generate(&f->sk, &f->pk), PEMN_OK);
    assert_int_equal(pemn_keyring_new(&f->trusted), PEMN_OK);
    assert_int_equal(pemn_keyring_add(f->trusted, &f->pk), PEMN_OK);
    f->pkg = fx_make_pkg("net", "1.0.0", 3, &f->sk, 400000, &f->len);
    assert_non_null(f->pkg);
    /* the base: the same package with its last byte (in the signature) changed, so the
     * delta is a few bytes; the base itself is never verified, the result is */
    f->old = malloc(f->len);
    assert_non_null(f->old);
    memcpy(f->old, f->pkg, f->len);
    f->old[f->len - 1] ^= 0x5a;
    f->old_len = f->len;
    write_file(f->base, f->old, f->old_len);
    struct pemn_err e;
    assert_int_equal(
        pemn_delta_make(f->old, f->old_len, f->pkg, f->len, &f->delta, &f->delta_len, NULL, &e),
        PEMN_OK);
    assert_true(f->delta_len < f->len / 10);
    fakesrv_set_blob(f->srv, BLOB, f->pkg, f->len, NULL);
    fx_resolved(&f->r, "net", "1.0.0", 3, f->pkg, f->len, BLOB);
    snprintf(f->delta_path, sizeof f->delta_path, "/v1/blobs/%s/delta", f->r.digest);
    struct pemn_client_options o;
    pemn_client_options_init(&o);
    o.trusted = f->trusted;
    o.backoff_base_ms = 5;
    o.backoff_max_ms = 40;
    o.max_attempts = 3;
    o.deadline_ms = 20000;
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
    free(f->pkg);
    free(f->old);
    free(f->delta);
    pemn_keyring_free(f->trusted);
    pemn_seckey_wipe(&f->sk);
    free(f);
    return 0;
}

static void assert_installed(struct fx *f)
{
    size_t n;
    uint8_t *got = fx_read(f->dest, &n);
    assert_non_null(got);
    assert_int_equal(n, f->len);
    assert_memory_equal(got, f->pkg, n);
    free(got);
    char part[620];
    snprintf(part, sizeof part, "%s.part", f->dest);
    assert_false(fx_exists(part));
}

static pemn_rc fetch(struct fx *f, unsigned flags, struct pemn_fetch_stats *st)
{
    struct pemn_fetch_options fo = {.flags = flags, .base_path = f->base};
    struct pemn_err e;
    pemn_rc rc = pemn_client_fetch(f->c, &f->r, f->dest, &fo, st, &e);
    if (rc)
        print_message("fetch: %s\n", e.msg);
    return rc;
}

static void test_delta_used(void **state)
{
    struct fx *f = *state;
    fakesrv_route_bytes(f->srv, "GET", f->delta_path, 200, f->delta, f->delta_len, NULL);
    struct pemn_fetch_stats st;
    assert_int_equal(fetch(f, 0, &st), PEMN_OK);
    assert_installed(f);
    assert_int_equal(st.delta_used, 1);
    assert_int_equal(st.delta_bytes, f->delta_len);
    assert_int_equal(st.bytes_received, f->delta_len);
    struct fakesrv_stats ss;
    fakesrv_get_stats(f->srv, &ss);
    assert_int_equal(ss.bytes_sent, 0); /* the package itself never went out */
    assert_non_null(strstr(ss.last_path, "/delta"));
}

/* The bad delta is served; the whole package must follow and be installed. */
static void expect_fallback(struct fx *f, const void *body, size_t len, int status)
{
    unlink(f->dest); /* each case starts with nothing installed */
    fakesrv_reset_stats(f->srv);
    fakesrv_route_bytes(f->srv, "GET", f->delta_path, status, body, len, NULL);
    struct pemn_fetch_stats st;
    assert_int_equal(fetch(f, 0, &st), PEMN_OK);
    assert_installed(f);
    assert_int_equal(st.delta_used, 0);
    assert_int_equal(st.delta_bytes, 0);
    struct fakesrv_stats ss;
    fakesrv_get_stats(f->srv, &ss);
    assert_int_equal(ss.bytes_sent, f->len);
    assert_int_equal(ss.requests, 2); /* the delta, then the package */
    assert_string_equal(ss.last_path, BLOB);
}

static void test_garbage_falls_back(void **state)
{
    struct fx *f = *state;
    static const char junk[] = "this is not a delta at all";
    expect_fallback(f, junk, sizeof junk - 1, 200);
}

static void test_tampered_falls_back(void **state)
{
    struct fx *f = *state;
    uint8_t *t = malloc(f->delta_len);
    assert_non_null(t);
    memcpy(t, f->delta, f->delta_len);
    t[f->delta_len / 2] ^= 0x01;
    expect_fallback(f, t, f->delta_len, 200);
    free(t);
    /* truncated */
    expect_fallback(f, f->delta, f->delta_len / 2, 200);
}

static void test_wrong_target_falls_back(void **state)
{
    struct fx *f = *state;
    /* a well-formed delta from the same base to another package */
    size_t n2;
    uint8_t *other = fx_make_pkg("net", "1.0.1", 4, &f->sk, 400000, &n2);
    assert_non_null(other);
    uint8_t *d2;
    size_t d2_len;
    struct pemn_err e;
    assert_int_equal(pemn_delta_make(f->old, f->old_len, other, n2, &d2, &d2_len, NULL, &e),
                     PEMN_OK);
    expect_fallback(f, d2, d2_len < f->len ? d2_len : f->len - 1, 200);
    free(d2);
    free(other);
}

static void test_404_and_oversized_fall_back(void **state)
{
    struct fx *f = *state;
    static const char nf[] = "{\"error\":{\"code\":\"delta_not_smaller\",\"message\":\"no\"}}";
    expect_fallback(f, nf, sizeof nf - 1, 404);
    static const char busy[] = "{\"error\":{\"code\":\"busy\",\"message\":\"later\"}}";
    expect_fallback(f, busy, sizeof busy - 1, 503);
    /* a "delta" as big as the package is cut off, never used */
    uint8_t *big = calloc(1, f->len + 10);
    assert_non_null(big);
    expect_fallback(f, big, f->len + 10, 200);
    free(big);
}

static void test_no_delta_flag(void **state)
{
    struct fx *f = *state;
    fakesrv_route_bytes(f->srv, "GET", f->delta_path, 200, f->delta, f->delta_len, NULL);
    struct pemn_fetch_stats st;
    assert_int_equal(fetch(f, PEMN_FETCH_NO_DELTA, &st), PEMN_OK);
    assert_installed(f);
    assert_int_equal(st.delta_used, 0);
    assert_int_equal(st.requests, 1);
    struct fakesrv_stats ss;
    fakesrv_get_stats(f->srv, &ss);
    assert_int_equal(ss.requests, 1);
    assert_string_equal(ss.last_path, BLOB);
}

static void test_untrusted_result_not_installed(void **state)
{
    struct fx *f = *state;
    /* the delta rebuilds the right bytes, but the client trusts another key: the patched
     * package is refused exactly as a download would be, nothing installed */
    fakesrv_route_bytes(f->srv, "GET", f->delta_path, 200, f->delta, f->delta_len, NULL);
    struct pemn_seckey sk2;
    struct pemn_pubkey pk2;
    assert_int_equal(pemn_key_generate(&sk2, &pk2), PEMN_OK);
    pemn_keyring *kr;
    assert_int_equal(pemn_keyring_new(&kr), PEMN_OK);
    assert_int_equal(pemn_keyring_add(kr, &pk2), PEMN_OK);
    struct pemn_client_options o;
    pemn_client_options_init(&o);
    o.trusted = kr;
    pemn_client *c2;
    struct pemn_err e;
    assert_int_equal(pemn_client_new(fakesrv_url(f->srv), &o, &c2, &e), PEMN_OK);
    struct pemn_fetch_options fo = {.base_path = f->base};
    struct pemn_fetch_stats st;
    assert_int_equal(pemn_client_fetch(c2, &f->r, f->dest, &fo, &st, &e), PEMN_EUNTRUSTED);
    assert_false(fx_exists(f->dest));
    pemn_client_free(c2);
    pemn_keyring_free(kr);
    pemn_seckey_wipe(&sk2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delta_used, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_target_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_404_and_oversized_fall_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_delta_flag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_result_not_installed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
