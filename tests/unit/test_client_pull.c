/*
 * tests/unit/test_client_pull.c — pemn_client_fetch against a fault-injecting server:
 * resume at several offsets, servers that ignore or botch Range, tampering, untrusted
 * signers, 503/429 with Retry-After, a dead server, stalls, the cache, progress and
 * cancellation, rollback and manifest checks, leftovers of an interrupted run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tests/common/client_fixture.h"
#include "tests/common/fakesrv.h"

#include <pemn/client.h>
#include <pemn/key.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOB "/v1/blobs/test"

struct fx {
    fakesrv *srv;
    char *dir;
    char dest[600], part[620];
    struct pemn_seckey sk, other_sk;
    struct pemn_pubkey pk, other_pk;
    pemn_keyring *trusted;
    uint8_t *pkg;
    size_t len;
    struct pemn_resolved r;
    pemn_client *c;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void opts_fast(struct pemn_client_options *o, const pemn_keyring *kr)
{
    pemn_client_options_init(o);
    o->trusted = kr;
    o->backoff_base_ms = 5;
    o->backoff_max_ms = 40;
    o->retry_after_max_ms = 50;
    o->max_attempts = 4;
    o->deadline_ms = 20000;
    o->connect_timeout_ms = 2000;
}

static pemn_client *mk_client(struct fx *f, const struct pemn_client_options *o)
{
    pemn_client *c = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_client_new(fakesrv_url(f->srv), o, &c, &e), PEMN_OK);
    return c;
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
    snprintf(f->part, sizeof f->part, "%s.part", f->dest);
    assert_int_equal(pemn_key_generate(&f->sk, &f->pk), PEMN_OK);
    assert_int_equal(pemn_key_generate(&f->other_sk, &f->other_pk), PEMN_OK);
    assert_int_equal(pemn_keyring_new(&f->trusted), PEMN_OK);
    assert_int_equal(pemn_keyring_add(f->trusted, &f->pk), PEMN_OK);
    /* ~250 KB: big enough for several cut points */
    f->pkg = fx_make_pkg("net", "1.0.0", 3, &f->sk, 2000000, &f->len);
    assert_non_null(f->pkg);
    fakesrv_set_blob(f->srv, BLOB, f->pkg, f->len, NULL);
    fx_resolved(&f->r, "net", "1.0.0", 3, f->pkg, f->len, BLOB);
    struct pemn_client_options o;
    opts_fast(&o, f->trusted);
    f->c = mk_client(f, &o);
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
    pemn_keyring_free(f->trusted);
    pemn_seckey_wipe(&f->sk);
    pemn_seckey_wipe(&f->other_sk);
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
    assert_false(fx_exists(f->part));
}

static void assert_nothing_installed(struct fx *f)
{
    assert_false(fx_exists(f->dest));
    assert_false(fx_exists(f->part));
}

/* ---- progress recorder ---------------------------------------------------------------- */
struct prog {
    uint64_t last, total, calls;
    int monotonic;
    uint64_t cancel_at; /* 0: never */
};

static int on_progress(void *user, uint64_t done, uint64_t total)
{
    struct prog *p = user;
    if (done < p->last)
        p->monotonic = 0;
    p->last = done;
    p->total = total;
    p->calls++;
    return p->cancel_at && done >= p->cancel_at;
}

/* ---- tests ---------------------------------------------------------------------------- */
static void test_fetch_plain(void **state)
{
    struct fx *f = *state;
    struct prog p = {.monotonic = 1};
    struct pemn_fetch_options fo = {.progress = on_progress, .progress_user = &p};
    struct pemn_fetch_stats st;
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, &fo, &st, &e), PEMN_OK);
    assert_installed(f);
    assert_int_equal(st.requests, 1);
    assert_int_equal(st.bytes_received, f->len);
    assert_int_equal(st.from_cache, 0);
    assert_true(p.monotonic);
    assert_true(p.calls >= 1);
    assert_int_equal(p.last, f->len);
    assert_int_equal(p.total, f->len);
}

static void test_resume_several_offsets(void **state)
{
    struct fx *f = *state;
    uint64_t cuts[] = {1000, f->len / 3, f->len / 2 + 17, f->len - 10};
    fakesrv_cut_at(f->srv, cuts, 4);
    struct prog p = {.monotonic = 1};
    struct pemn_fetch_options fo = {.progress = on_progress, .progress_user = &p};
    struct pemn_fetch_stats st;
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, &fo, &st, &e), PEMN_OK);
    assert_installed(f);
    struct fakesrv_stats ss;
    fakesrv_get_stats(f->srv, &ss);
    /* every byte about once */
    assert_true(ss.bytes_sent <= f->len + f->len / 10 + 4096);
    assert_true(st.bytes_received <= f->len + f->len / 10 + 4096);
    assert_int_equal(st.requests, 5);
    assert_int_equal(st.resumes, 4);
    assert_int_equal(st.restarts, 0);
    assert_int_equal(ss.range_requests, 4);
    assert_true(p.monotonic);
    for (unsigned i = 0; i < ss.n_range_starts; i++)
        assert_true(ss.range_starts[i] > 0 && ss.range_starts[i] <= cuts[i]);
}

static void test_resume_many_cuts_beyond_max_attempts(void **state)
{
    /* 10 cuts with max_attempts 4: each attempt makes progress, so it is not a failure */
    struct fx *f = *state;
    uint64_t cuts[10];
    for (int i = 0; i < 10; i++)
        cuts[i] = (uint64_t)(i + 1) * (f->len / 11);
    fakesrv_cut_at(f->srv, cuts, 10);
    struct pemn_fetch_stats st;
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, &st, &e), PEMN_OK);
    assert_installed(f);
    assert_int_equal(st.resumes, 10);
    struct fakesrv_stats ss;
    fakesrv_get_stats(f->srv, &ss);
    assert_true(ss.bytes_sent <= f->len + f->len / 10 + 4096);
}

static void test_range_ignored_restarts(void **state)
{
    struct fx *f = *state;
    uint64_t cuts[] = {f->len / 2};
    fakesrv_cut_at(f->srv, cuts, 1);
    fakesrv_ignore_range(f->srv, true);
    struct pemn_fetch_stats st;
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, &st, &e), PEMN_OK);
    assert_installed(f);
    assert_int_equal(st.restarts, 1);
    assert_int_equal(st.resumes, 0);
    assert_int_equal(st.requests, 2);
}

static void test_wrong_content_range_restarts(void **state)
{
    struct fx *f = *state;
    uint64_t cuts[] = {f->len / 3};
    fakesrv_cut_at(f->srv, cuts, 1);
    fakesrv_bad_range(f->srv, 1);
    struct pemn_fetch_stats st;
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, &st, &e), PEMN_OK);
    assert_installed(f);
    assert_int_equal(st.restarts, 1);
    assert_int_equal(st.requests, 3); /* cut, bad 206 rejected, full from 0 */
}

static void test_flipped_byte_rejected(void **state)
{
    struct fx *f = *state;
    fakesrv_flip(f->srv, (int64_t)(f->len / 2));
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, NULL, &e), PEMN_EDIGEST);
    assert_non_null(strstr(e.msg, "nothing installed"));
    assert_nothing_installed(f);
}

static void test_flipped_byte_after_resume_rejected(void **state)
{
    struct fx *f = *state;
    uint64_t cuts[] = {f->len / 4};
    fakesrv_cut_at(f->srv, cuts, 1);
    fakesrv_flip(f->srv, (int64_t)(f->len - 100));
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, NULL, &e), PEMN_EDIGEST);
    assert_nothing_installed(f);
}

static void test_other_package_rejected(void **state)
{
    struct fx *f = *state;
    size_t n2;
    uint8_t *other = fx_make_pkg("net", "0.9.0", 2, &f->sk, 2000000, &n2);
    assert_non_null(other);
    fakesrv_set_blob(f->srv, BLOB, other, n2, NULL); /* validly signed, but not what we asked */
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, NULL, &e), PEMN_EDIGEST);
    assert_nothing_installed(f);
    /* an existing file at dest is left exactly as it was */
    FILE *fp = fopen(f->dest, "wb");
    assert_non_null(fp);
    fputs("old model", fp);
    fclose(fp);
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, NULL, &e), PEMN_EDIGEST);
    size_t n;
    uint8_t *old = fx_read(f->dest, &n);
    assert_non_null(old);
    assert_int_equal(n, 9);
    assert_memory_equal(old, "old model", 9);
    free(old);
    assert_false(fx_exists(f->part));
    free(other);
}

static void test_longer_body_rejected(void **state)
{
    struct fx *f = *state;
    uint8_t *big = malloc(f->len + 100);
    assert_non_null(big);
    memcpy(big, f->pkg, f->len);
    memset(big + f->len, 0, 100);
    fakesrv_set_blob(f->srv, BLOB, big, f->len + 100, NULL);
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, NULL, &e), PEMN_EDIGEST);
    assert_nothing_installed(f);
    free(big);
}

static void test_bad_signature_rejected(void **state)
{
    /* the digest is right for these bytes, but the signature (file trailer) is damaged */
    struct fx *f = *state;
    f->pkg[f->len - 1] ^= 0x01;
    fakesrv_set_blob(f->srv, BLOB, f->pkg, f->len, NULL);
    fx_resolved(&f->r, "net", "1.0.0", 3, f->pkg, f->len, BLOB);
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, NULL, &e), PEMN_EBADSIG);
    assert_nothing_installed(f);
}

static void test_untrusted_signer_rejected(void **state)
{
    struct fx *f = *state;
    size_t n2;
    uint8_t *other = fx_make_pkg("net", "1.0.0", 3, &f->other_sk, 20000, &n2);
    assert_non_null(other);
    fakesrv_set_blob(f->srv, BLOB, other, n2, NULL);
    fx_resolved(&f->r, "net", "1.0.0", 3, other, n2, BLOB);
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, NULL, &e), PEMN_EUNTRUSTED);
    assert_nothing_installed(f);
    /* and a client with no keyring trusts nothing */
    struct pemn_client_options o;
    opts_fast(&o, NULL);
    pemn_client *c2 = mk_client(f, &o);
    fx_resolved(&f->r, "net", "1.0.0", 3, f->pkg, f->len, BLOB);
    fakesrv_set_blob(f->srv, BLOB, f->pkg, f->len, NULL);
    assert_int_equal(pemn_client_fetch(c2, &f->r, f->dest, NULL, NULL, &e), PEMN_EUNTRUSTED);
    assert_nothing_installed(f);
    pemn_client_free(c2);
    free(other);
}

static void test_retry_503_then_ok(void **state)
{
    struct fx *f = *state;
    fakesrv_fail(f->srv, 503, 2, 1); /* Retry-After: 1, capped at 50 ms by the options */
    struct pemn_fetch_stats st;
    struct pemn_err e;
    uint64_t t0 = now_ms();
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, &st, &e), PEMN_OK);
    assert_true(now_ms() - t0 < 5000);
    assert_installed(f);
    assert_int_equal(st.requests, 3);
}

static void test_retry_after_honoured(void **state)
{
    struct fx *f = *state;
    struct pemn_client_options o;
    opts_fast(&o, f->trusted);
    o.retry_after_max_ms = 60000;
    pemn_client *c2 = mk_client(f, &o);
    fakesrv_fail(f->srv, 429, 1, 1);
    struct pemn_fetch_stats st;
    struct pemn_err e;
    uint64_t t0 = now_ms();
    assert_int_equal(pemn_client_fetch(c2, &f->r, f->dest, NULL, &st, &e), PEMN_OK);
    uint64_t dt = now_ms() - t0;
    assert_true(dt >= 950);
    assert_true(dt < 5000);
    assert_int_equal(st.requests, 2);
    assert_installed(f);
    pemn_client_free(c2);
}

static void test_retry_after_beyond_deadline(void **state)
{
    struct fx *f = *state;
    struct pemn_client_options o;
    opts_fast(&o, f->trusted);
    o.retry_after_max_ms = 60000;
    o.deadline_ms = 500;
    pemn_client *c2 = mk_client(f, &o);
    fakesrv_fail(f->srv, 503, 1, 30);
    struct pemn_err e;
    uint64_t t0 = now_ms();
    assert_int_equal(pemn_client_fetch(c2, &f->r, f->dest, NULL, NULL, &e), PEMN_ETIMEOUT);
    assert_true(now_ms() - t0 < 2000); /* it did not sleep 30 s */
    assert_false(fx_exists(f->dest));
    pemn_client_free(c2);
}

static void test_permanent_503_bounded(void **state)
{
    struct fx *f = *state;
    fakesrv_fail(f->srv, 503, 1000, -1);
    struct pemn_fetch_stats st;
    struct pemn_err e;
    uint64_t t0 = now_ms();
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, &st, &e), PEMN_EHTTP);
    assert_true(now_ms() - t0 < 3000);
    assert_int_equal(st.requests, 4); /* max_attempts */
    assert_non_null(strstr(e.msg, "503"));
    assert_non_null(strstr(e.msg, "gave up after 4 attempts"));
    assert_false(fx_exists(f->dest));
}

static void test_server_down_bounded(void **state)
{
    struct fx *f = *state;
    fakesrv *dead = fakesrv_start();
    assert_non_null(dead);
    char url[64];
    snprintf(url, sizeof url, "%s", fakesrv_url(dead));
    fakesrv_stop(dead); /* nobody listens on that port now */
    struct pemn_client_options o;
    opts_fast(&o, f->trusted);
    pemn_client *c2 = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_client_new(url, &o, &c2, &e), PEMN_OK);
    struct pemn_fetch_stats st;
    uint64_t t0 = now_ms();
    assert_int_equal(pemn_client_fetch(c2, &f->r, f->dest, NULL, &st, &e), PEMN_EHTTP);
    assert_true(now_ms() - t0 < 3000);
    assert_int_equal(st.requests, 4);
    assert_non_null(strstr(e.msg, "gave up"));
    assert_false(fx_exists(f->dest));
    pemn_client_free(c2);
}

static void test_not_found(void **state)
{
    struct fx *f = *state;
    snprintf(f->r.package_url, sizeof f->r.package_url, "/v1/blobs/nope");
    struct pemn_fetch_stats st;
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, &st, &e), PEMN_ENOTFOUND);
    assert_int_equal(st.requests, 1); /* not retried */
    assert_non_null(strstr(e.msg, "not_found"));
    assert_nothing_installed(f);
}

static void test_stall_resumes(void **state)
{
    struct fx *f = *state;
    struct pemn_client_options o;
    opts_fast(&o, f->trusted);
    o.stall_timeout_ms = 1000;
    o.stall_bytes_per_s = 1000;
    pemn_client *c2 = mk_client(f, &o);
    fakesrv_stall(f->srv, 100, 3000); /* 100 bytes, then silence */
    struct pemn_fetch_stats st;
    struct pemn_err e;
    uint64_t t0 = now_ms();
    assert_int_equal(pemn_client_fetch(c2, &f->r, f->dest, NULL, &st, &e), PEMN_OK);
    assert_true(now_ms() - t0 < 2900); /* gave up on the stalled connection */
    assert_int_equal(st.resumes, 1);
    assert_installed(f);
    pemn_client_free(c2);
}

static void test_token_not_sent_elsewhere(void **state)
{
    struct fx *f = *state;
    struct pemn_client_options o;
    opts_fast(&o, f->trusted);
    o.token = "secret-token";
    pemn_client *c2 = mk_client(f, &o);
    struct pemn_err e;
    struct fakesrv_stats ss;
    /* a relative package_url is the registry: the token goes along */
    assert_int_equal(pemn_client_fetch(c2, &f->r, f->dest, NULL, NULL, &e), PEMN_OK);
    fakesrv_get_stats(f->srv, &ss);
    assert_string_equal(ss.last_auth, "Bearer secret-token");
    /* an absolute URL on another origin (localhost is not 127.0.0.1) gets no token */
    unlink(f->dest);
    snprintf(f->r.package_url, sizeof f->r.package_url, "http://localhost:%u%s",
             (unsigned)fakesrv_port(f->srv), BLOB);
    assert_int_equal(pemn_client_fetch(c2, &f->r, f->dest, NULL, NULL, &e), PEMN_OK);
    fakesrv_get_stats(f->srv, &ss);
    assert_string_equal(ss.last_auth, "");
    assert_installed(f);
    pemn_client_free(c2);
}

static void test_rate_limit(void **state)
{
    /* libcurl checks the cap between socket reads, so the package must be several MB */
    struct fx *f = *state;
    size_t len;
    uint8_t *big = fx_make_pkg("net", "1.0.0", 3, &f->sk, 40000000, &len);
    assert_non_null(big);
    fakesrv_set_blob(f->srv, BLOB, big, len, NULL);
    fx_resolved(&f->r, "net", "1.0.0", 3, big, len, BLOB);
    struct pemn_client_options o;
    opts_fast(&o, f->trusted);
    o.max_recv_bytes_per_s = len; /* about one second */
    pemn_client *c2 = mk_client(f, &o);
    struct pemn_err e;
    uint64_t t0 = now_ms();
    assert_int_equal(pemn_client_fetch(c2, &f->r, f->dest, NULL, NULL, &e), PEMN_OK);
    uint64_t dt = now_ms() - t0;
    assert_true(dt >= 500);
    assert_true(dt < 10000);
    pemn_client_free(c2);
    /* and without the cap it is much faster */
    unlink(f->dest);
    t0 = now_ms();
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, NULL, &e), PEMN_OK);
    assert_true(now_ms() - t0 < dt);
    free(big);
}

static void test_cache_hit_no_download(void **state)
{
    struct fx *f = *state;
    char cache[600];
    snprintf(cache, sizeof cache, "%s/cache", f->dir);
    struct pemn_client_options o;
    opts_fast(&o, f->trusted);
    o.cache_dir = cache;
    pemn_client *c2 = mk_client(f, &o);
    struct pemn_fetch_stats st;
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(c2, &f->r, f->dest, NULL, &st, &e), PEMN_OK);
    assert_int_equal(st.from_cache, 0);
    char cp[800];
    assert_int_equal(pemn_client_cache_path(c2, f->r.digest, cp, sizeof cp), PEMN_OK);
    assert_true(fx_exists(cp));

    char dest2[700];
    snprintf(dest2, sizeof dest2, "%s/second.pemn", f->dir);
    fakesrv_reset_stats(f->srv);
    assert_int_equal(pemn_client_fetch(c2, &f->r, dest2, NULL, &st, &e), PEMN_OK);
    assert_int_equal(st.from_cache, 1);
    assert_int_equal(st.bytes_received, 0);
    struct fakesrv_stats ss;
    fakesrv_get_stats(f->srv, &ss);
    assert_int_equal(ss.requests, 0);
    assert_int_equal(ss.bytes_sent, 0);
    size_t n;
    uint8_t *got = fx_read(dest2, &n);
    assert_non_null(got);
    assert_int_equal(n, f->len);
    assert_memory_equal(got, f->pkg, n);
    free(got);

    /* a damaged cache entry is detected, dropped and downloaded again */
    unlink(dest2);
    unlink(f->dest);
    FILE *fp = fopen(cp, "r+b");
    assert_non_null(fp);
    fseek(fp, 100, SEEK_SET);
    fputc(0x5a ^ f->pkg[100], fp);
    fclose(fp);
    assert_int_equal(pemn_client_fetch(c2, &f->r, dest2, NULL, &st, &e), PEMN_OK);
    assert_int_equal(st.from_cache, 0);
    assert_int_equal(st.bytes_received, f->len);
    got = fx_read(dest2, &n);
    assert_non_null(got);
    assert_memory_equal(got, f->pkg, f->len);
    free(got);

    /* PEMN_FETCH_NO_CACHE goes to the network */
    unlink(dest2);
    struct pemn_fetch_options fo = {.flags = PEMN_FETCH_NO_CACHE};
    assert_int_equal(pemn_client_fetch(c2, &f->r, dest2, &fo, &st, &e), PEMN_OK);
    assert_int_equal(st.from_cache, 0);
    assert_int_equal(st.bytes_received, f->len);
    pemn_client_free(c2);
}

static void test_cache_hit_still_checks_trust(void **state)
{
    struct fx *f = *state;
    char cache[600];
    snprintf(cache, sizeof cache, "%s/cache", f->dir);
    struct pemn_client_options o;
    opts_fast(&o, f->trusted);
    o.cache_dir = cache;
    pemn_client *c2 = mk_client(f, &o);
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(c2, &f->r, f->dest, NULL, NULL, &e), PEMN_OK);
    unlink(f->dest);
    pemn_keyring *other;
    assert_int_equal(pemn_keyring_new(&other), PEMN_OK);
    assert_int_equal(pemn_keyring_add(other, &f->other_pk), PEMN_OK);
    o.trusted = other;
    pemn_client *c3 = mk_client(f, &o);
    assert_int_equal(pemn_client_fetch(c3, &f->r, f->dest, NULL, NULL, &e), PEMN_EUNTRUSTED);
    assert_nothing_installed(f);
    pemn_client_free(c3);
    pemn_client_free(c2);
    pemn_keyring_free(other);
}

static void test_dest_already_current(void **state)
{
    struct fx *f = *state;
    struct pemn_fetch_stats st;
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, &st, &e), PEMN_OK);
    fakesrv_reset_stats(f->srv);
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, &st, &e), PEMN_OK);
    assert_int_equal(st.from_cache, 1);
    struct fakesrv_stats ss;
    fakesrv_get_stats(f->srv, &ss);
    assert_int_equal(ss.requests, 0);
}

static void test_progress_cancel(void **state)
{
    struct fx *f = *state;
    struct prog p = {.monotonic = 1, .cancel_at = 1};
    struct pemn_fetch_options fo = {.progress = on_progress, .progress_user = &p};
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, &fo, NULL, &e), PEMN_ECANCELED);
    assert_false(fx_exists(f->dest));
    /* the partial download is kept for a resume, and the next fetch completes from it */
    struct pemn_fetch_stats st;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, &st, &e), PEMN_OK);
    assert_installed(f);
    assert_true(st.bytes_received < f->len || st.resumes == 0);
}

static int cancel_after_300ms(void *user, uint64_t done, uint64_t total)
{
    return now_ms() - *(uint64_t *)user > 300;
}

static void test_cancel_while_waiting(void **state)
{
    /* the server says "retry in 10 s"; the callback stops the wait */
    struct fx *f = *state;
    struct pemn_client_options o;
    opts_fast(&o, f->trusted);
    o.retry_after_max_ms = 60000;
    pemn_client *c2 = mk_client(f, &o);
    fakesrv_fail(f->srv, 503, 100, 10);
    uint64_t t0 = now_ms();
    struct pemn_fetch_options fo = {.progress = cancel_after_300ms, .progress_user = &t0};
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(c2, &f->r, f->dest, &fo, NULL, &e), PEMN_ECANCELED);
    uint64_t dt = now_ms() - t0;
    assert_true(dt >= 300 && dt < 2000);
    assert_non_null(strstr(e.msg, "waiting to retry"));
    assert_false(fx_exists(f->dest));
    /* the same through the client-wide callback for metadata requests */
    pemn_client_free(c2);
    o.progress = cancel_after_300ms;
    o.progress_user = &t0;
    c2 = mk_client(f, &o);
    struct pemn_resolved r;
    t0 = now_ms();
    assert_int_equal(pemn_client_resolve(c2, "net", "1.0.0", NULL, &r, &e), PEMN_ECANCELED);
    assert_true(now_ms() - t0 < 2000);
    pemn_client_free(c2);
}

static void test_min_release_rollback(void **state)
{
    struct fx *f = *state;
    struct pemn_fetch_options fo = {.min_release = 4};
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, &fo, NULL, &e), PEMN_EROLLBACK);
    assert_nothing_installed(f);
    fo.min_release = 3;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, &fo, NULL, &e), PEMN_OK);
    assert_installed(f);
}

static void test_manifest_mismatch(void **state)
{
    struct fx *f = *state;
    snprintf(f->r.version, sizeof f->r.version, "2.0.0"); /* registry lies about the version */
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, NULL, &e), PEMN_ECONFLICT);
    assert_nothing_installed(f);
    fx_resolved(&f->r, "net", "1.0.0", 9, f->pkg, f->len, BLOB); /* wrong release */
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, NULL, &e), PEMN_ECONFLICT);
    assert_nothing_installed(f);
}

static void test_leftover_part_resumed(void **state)
{
    struct fx *f = *state;
    FILE *fp = fopen(f->part, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(f->pkg, 1, f->len / 2, fp), f->len / 2);
    fclose(fp);
    struct pemn_fetch_stats st;
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, &st, &e), PEMN_OK);
    assert_installed(f);
    assert_int_equal(st.bytes_received, f->len - f->len / 2);
    assert_int_equal(st.resumes, 1);
}

static void test_leftover_garbage_part(void **state)
{
    struct fx *f = *state;
    FILE *fp = fopen(f->part, "wb");
    assert_non_null(fp);
    for (size_t i = 0; i < f->len / 3; i++)
        fputc('x', fp);
    fclose(fp);
    struct pemn_fetch_stats st;
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(f->c, &f->r, f->dest, NULL, &st, &e), PEMN_OK);
    assert_installed(f);
    assert_int_equal(st.restarts, 1);
}

static void test_bad_arguments(void **state)
{
    struct fx *f = *state;
    struct pemn_err e;
    struct pemn_resolved r = f->r;
    snprintf(r.digest, sizeof r.digest, "sha256:xyz");
    assert_int_equal(pemn_client_fetch(f->c, &r, f->dest, NULL, NULL, &e), PEMN_EINVAL);
    assert_int_equal(pemn_client_fetch(f->c, NULL, f->dest, NULL, NULL, &e), PEMN_EINVAL);
    assert_int_equal(pemn_client_fetch(f->c, &f->r, "", NULL, NULL, &e), PEMN_EINVAL);
    r = f->r;
    r.size = (uint64_t)1 << 40;
    assert_int_equal(pemn_client_fetch(f->c, &r, f->dest, NULL, NULL, &e), PEMN_ETOOBIG);
    r = f->r;
    r.size = 1000; /* smaller than what the server sends */
    assert_int_equal(pemn_client_fetch(f->c, &r, f->dest, NULL, NULL, &e), PEMN_EDIGEST);
    assert_nothing_installed(f);
    snprintf(r.digest, sizeof r.digest, "%s", f->r.digest);
    pemn_client *c = NULL;
    assert_int_equal(pemn_client_new("ftp://x", NULL, &c, &e), PEMN_EINVAL);
    assert_null(c);
    assert_int_equal(pemn_client_new("http://a b", NULL, &c, &e), PEMN_EINVAL);
    pemn_client_free(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
int main(int argc, char **argv)
{
    if (argc > 1)
        return fx_tool(argc, argv); /* keygen / make-pkg / expand for scripts */
    const struct CMUnitTest tests[] = {
        T(test_fetch_plain),
        T(test_resume_several_offsets),
        T(test_resume_many_cuts_beyond_max_attempts),
        T(test_range_ignored_restarts),
        T(test_wrong_content_range_restarts),
        T(test_flipped_byte_rejected),
        T(test_flipped_byte_after_resume_rejected),
        T(test_other_package_rejected),
        T(test_longer_body_rejected),
        T(test_bad_signature_rejected),
        T(test_untrusted_signer_rejected),
        T(test_retry_503_then_ok),
        T(test_retry_after_honoured),
        T(test_retry_after_beyond_deadline),
        T(test_permanent_503_bounded),
        T(test_server_down_bounded),
        T(test_not_found),
        T(test_stall_resumes),
        T(test_token_not_sent_elsewhere),
        T(test_rate_limit),
        T(test_cache_hit_no_download),
        T(test_cache_hit_still_checks_trust),
        T(test_dest_already_current),
        T(test_progress_cancel),
        T(test_cancel_while_waiting),
        T(test_min_release_rollback),
        T(test_manifest_mismatch),
        T(test_leftover_part_resumed),
        T(test_leftover_garbage_part),
        T(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
