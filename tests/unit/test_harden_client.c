/*
 * tests/unit/test_harden_client.c — the client and the agent against a hostile registry
 * (tests/common/fakesrv.c, scripted per test): docs/SECURITY.md items 7-12.
 *   7  names from the registry are labels before they touch a path
 *   8  no unbounded stream; at most the current partial download kept by the agent
 *   9  a minimum transfer rate and an overall deadline for a download (pull and agent)
 *   10 no symlink followed, no FIFO blocked on, in the agent directory
 *   11 terminal escaping of registry text
 *   12 the highest release per model recorded in the cache; --allow-downgrade
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "proto/term.h"
#include "tests/common/client_fixture.h"
#include "tests/common/fakesrv.h"

#include <pemn/agent.h>
#include <pemn/client.h>
#include <pemn/key.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BLOB "/v1/blobs/test"

struct fx {
    fakesrv *srv;
    char *dir;
    char dest[600];
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pemn_keyring *trusted;
    uint8_t *pkg;
    size_t len;
    char digest[PEMN_DIGEST_TEXT_MAX];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(pemn_init(), PEMN_OK);
    f->srv = fakesrv_start();
    assert_non_null(f->srv);
    f->dir = fx_tmpdir();
    snprintf(f->dest, sizeof f->dest, "%s/model.pemn", f->dir);
    assert_int_equal(pemn_key_generate(&f->sk, &f->pk), PEMN_OK);
    assert_int_equal(pemn_keyring_new(&f->trusted), PEMN_OK);
    assert_int_equal(pemn_keyring_add(f->trusted, &f->pk), PEMN_OK);
    f->pkg = fx_make_pkg("net", "1.0.0", 3, &f->sk, 200000, &f->len);
    assert_non_null(f->pkg);
    fx_digest(f->pkg, f->len, f->digest);
    fakesrv_set_blob(f->srv, BLOB, f->pkg, f->len, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fakesrv_stop(f->srv);
    fx_rmrf(f->dir);
    free(f->dir);
    free(f->pkg);
    pemn_keyring_free(f->trusted);
    pemn_seckey_wipe(&f->sk);
    free(f);
    return 0;
}

static pemn_client *client(struct fx *f, const char *cache, uint32_t min_rate, uint32_t window_ms,
                           uint64_t deadline_ms)
{
    struct pemn_client_options o;
    pemn_client_options_init(&o);
    o.trusted = f->trusted;
    o.cache_dir = cache;
    o.backoff_base_ms = 5;
    o.backoff_max_ms = 20;
    o.max_attempts = 2;
    o.deadline_ms = deadline_ms ? deadline_ms : 20000;
    if (min_rate)
        o.stall_bytes_per_s = min_rate;
    if (window_ms)
        o.stall_timeout_ms = window_ms;
    pemn_client *c = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_client_new(fakesrv_url(f->srv), &o, &c, &e), PEMN_OK);
    return c;
}

/* ---- 7: names from the registry ------------------------------------------------------- */
static void test_hostile_names_refused(void **state)
{
    struct fx *f = *state;
    pemn_client *c = client(f, NULL, 0, 0, 0);
    static const char *const bad[] = {"../../evil", "a/b", "..", "x\\u001b[2J", ".hidden", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *vo = fx_version_json("net", bad[i], 3, f->digest, f->len, BLOB, NULL);
        char body[4096];
        snprintf(body, sizeof body, "{\"name\":\"net\",\"versions\":1,\"latest\":%s}", vo);
        free(vo);
        fakesrv_route(f->srv, "GET", "/v1/models/net", 200, body, NULL);
        struct pemn_resolved r;
        struct pemn_err e;
        assert_int_equal(pemn_client_resolve(c, "net", NULL, NULL, &r, &e), PEMN_EHTTP);
        if (!strstr(e.msg, "not [A-Za-z0-9]"))
            fail_msg("version '%s': %s", bad[i], e.msg);
    }
    /* a hostile tag and a hostile model in a listing */
    char *vo = fx_version_json("net", "1.0.0", 3, f->digest, f->len, BLOB, "../t");
    fakesrv_route(f->srv, "GET", "/v1/models/net/tags/t", 200, vo, NULL);
    free(vo);
    struct pemn_resolved r;
    struct pemn_err e;
    assert_int_equal(pemn_client_resolve(c, "net", NULL, "t", &r, &e), PEMN_EHTTP);
    fakesrv_route(f->srv, "GET", "/v1/models", 200,
                  "{\"models\":[{\"name\":\"net/../../x\",\"versions\":0,\"latest\":null}]}", NULL);
    struct pemn_listing *l = NULL;
    assert_int_equal(pemn_client_list(c, NULL, &l, &e), PEMN_EHTTP);
    pemn_listing_free(l);
    /* nothing was created anywhere */
    assert_false(fx_exists("../../evil"));
    pemn_client_free(c);
}

/* ---- 8: no unbounded stream, no more than announced ----------------------------------- */
static void test_unknown_size_refused(void **state)
{
    struct fx *f = *state;
    pemn_client *c = client(f, NULL, 0, 0, 0);
    struct pemn_resolved r;
    fx_resolved(&r, "net", "1.0.0", 3, f->pkg, f->len, BLOB);
    r.size = 0;                         /* the registry announced no size ... */
    fakesrv_unknown_size(f->srv, true); /* ... and the server sends no Content-Length */
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(c, &r, f->dest, NULL, NULL, &e), PEMN_EHTTP);
    assert_non_null(strstr(e.msg, "unbounded"));
    assert_false(fx_exists(f->dest));
    /* with an announced size, a chunked body longer than it is cut at the size */
    uint8_t *big = malloc(f->len + 5000);
    memcpy(big, f->pkg, f->len);
    memset(big + f->len, 0x41, 5000);
    fakesrv_set_blob(f->srv, BLOB, big, f->len + 5000, NULL);
    fx_resolved(&r, "net", "1.0.0", 3, f->pkg, f->len, BLOB);
    assert_int_not_equal(pemn_client_fetch(c, &r, f->dest, NULL, NULL, &e), PEMN_OK);
    assert_non_null(strstr(e.msg, "more than"));
    char part[700];
    snprintf(part, sizeof part, "%s.part", f->dest);
    struct stat sb;
    assert_true(stat(part, &sb) != 0 || (uint64_t)sb.st_size <= f->len);
    free(big);
    pemn_client_free(c);
}

/* ---- 9: minimum rate and deadline ---------------------------------------------------- */
static void test_trickle_bounded_by_min_rate(void **state)
{
    struct fx *f = *state;
    /* 20 bytes every 100 ms = 200 B/s, under a 2000 B/s minimum over a 1 s window */
    fakesrv_trickle(f->srv, 20, 100);
    pemn_client *c = client(f, NULL, 2000, 1000, 60000);
    struct pemn_resolved r;
    fx_resolved(&r, "net", "1.0.0", 3, f->pkg, f->len, BLOB);
    struct pemn_err e;
    uint64_t t0 = now_ms();
    pemn_rc rc = pemn_client_fetch(c, &r, f->dest, NULL, NULL, &e);
    uint64_t ms = now_ms() - t0;
    assert_int_equal(rc, PEMN_ETIMEOUT);
    assert_non_null(strstr(e.msg, "minimum transfer rate"));
    /* two attempts of ~1-2 s each, far from the 60 s deadline (and from the ~17 min the
     * trickle would take) */
    assert_true(ms < 15000);
    fakesrv_trickle(f->srv, 0, 0);
    pemn_client_free(c);
}

static void test_trickle_bounded_by_deadline(void **state)
{
    struct fx *f = *state;
    /* 1 KB every 100 ms = 10 KB/s: above the rate, but the whole download takes > 2 s */
    assert_true(f->len > 20000);
    fakesrv_trickle(f->srv, 1024, 100);
    pemn_client *c = client(f, NULL, 1000, 1000, 1500);
    struct pemn_resolved r;
    fx_resolved(&r, "net", "1.0.0", 3, f->pkg, f->len, BLOB);
    struct pemn_err e;
    uint64_t t0 = now_ms();
    assert_int_equal(pemn_client_fetch(c, &r, f->dest, NULL, NULL, &e), PEMN_ETIMEOUT);
    assert_true(now_ms() - t0 < 10000);
    assert_false(fx_exists(f->dest));
    fakesrv_trickle(f->srv, 0, 0);
    pemn_client_free(c);
}

/* ---- the agent against the hostile server (8, 9, 10) --------------------------------- */
static void route_desired(struct fx *f, uint64_t release, const char *digest, uint64_t size)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"model\":\"net\",\"version\":\"1.0.0\",\"release\":%llu,\"digest\":\"%s\","
             "\"size\":%llu,\"package_url\":\"" BLOB "\",\"fleet\":\"f\",\"device\":\"d\","
             "\"rollout_id\":\"r1\",\"in_rollout\":true}",
             (unsigned long long)release, digest, (unsigned long long)size);
    fakesrv_route(f->srv, "GET", "/v1/fleets/f/devices/d/desired", 200, body, "\"e1\"");
    fakesrv_route(f->srv, "PUT", "/v1/fleets/f/devices/d/status", 200, "{}", NULL);
}

static pemn_agent *agent(struct fx *f, const char *dir, uint32_t min_rate, uint32_t window_ms,
                         uint64_t dl_timeout_ms)
{
    struct pemn_agent_opts o;
    pemn_agent_opts_init(&o);
    o.dir = dir;
    o.trusted = f->trusted;
    o.server = fakesrv_url(f->srv);
    o.fleet = "f";
    o.device = "d";
    o.timeout_ms = 5000;
    o.min_rate = min_rate;
    o.rate_window_ms = window_ms;
    o.download_timeout_ms = dl_timeout_ms;
    pemn_agent *a = NULL;
    struct pemn_err e = {0};
    if (pemn_agent_new(&o, &a, &e))
        fail_msg("pemn_agent_new: %s", e.msg);
    return a;
}

static void touch(const char *path, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    for (size_t i = 0; i < n; i++)
        fputc('x', fp);
    fclose(fp);
}

static void test_agent_keeps_only_current_partial(void **state)
{
    struct fx *f = *state;
    char dir[700], p[800], keep[800];
    snprintf(dir, sizeof dir, "%s/agent", f->dir);
    pemn_agent *a = agent(f, dir, 0, 0, 0);
    /* leftovers of targets started earlier, and the partial of the current one */
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/download/%064d.pemn.part", dir, i);
        touch(p, 4096);
    }
    snprintf(keep, sizeof keep, "%s/download/%s.pemn.part", dir, f->digest + 7);
    touch(keep, 0);
    route_desired(f, 3, f->digest, f->len);
    struct pemn_agent_cycle cy;
    struct pemn_err e;
    assert_int_equal(pemn_agent_run_once(a, &cy, &e), PEMN_OK);
    assert_true(cy.changed);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/download/%064d.pemn.part", dir, i);
        assert_false(fx_exists(p));
    }
    pemn_agent_free(a);
}

static void test_agent_max_disk(void **state)
{
    struct fx *f = *state;
    char dir[700];
    snprintf(dir, sizeof dir, "%s/agent", f->dir);
    route_desired(f, 3, f->digest, f->len);
    struct pemn_agent_opts o;
    pemn_agent_opts_init(&o);
    o.dir = dir;
    o.trusted = f->trusted;
    o.server = fakesrv_url(f->srv);
    o.fleet = "f";
    o.device = "d";
    o.max_disk = f->len - 1; /* the package alone does not fit */
    pemn_agent *a = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_agent_new(&o, &a, &e), PEMN_OK);
    fakesrv_reset_stats(f->srv);
    struct pemn_agent_cycle cy;
    assert_int_equal(pemn_agent_run_once(a, &cy, &e), PEMN_ETOOBIG);
    assert_non_null(strstr(e.msg, "max_disk"));
    assert_string_equal(cy.reason, "too-large");
    struct fakesrv_stats st;
    fakesrv_get_stats(f->srv, &st);
    assert_int_equal(st.bytes_sent, 0); /* refused before downloading */
    pemn_agent_free(a);
    o.max_disk = 2 * f->len + 4096; /* room for it */
    assert_int_equal(pemn_agent_new(&o, &a, &e), PEMN_OK);
    assert_int_equal(pemn_agent_run_once(a, &cy, &e), PEMN_OK);
    assert_true(cy.changed);
    pemn_agent_free(a);
}

static void test_agent_trickle_bounded(void **state)
{
    struct fx *f = *state;
    char dir[700];
    snprintf(dir, sizeof dir, "%s/agent", f->dir);
    route_desired(f, 3, f->digest, f->len);
    fakesrv_trickle(f->srv, 20, 100);
    pemn_agent *a = agent(f, dir, 2000, 1000, 60000);
    struct pemn_agent_cycle cy;
    struct pemn_err e;
    uint64_t t0 = now_ms();
    assert_int_equal(pemn_agent_run_once(a, &cy, &e), PEMN_ETIMEOUT);
    assert_true(now_ms() - t0 < 30000);
    pemn_agent_free(a);
    /* the overall deadline: fast enough for the rate, too slow for the deadline */
    fakesrv_trickle(f->srv, 1024, 100);
    a = agent(f, dir, 1000, 1000, 1500);
    t0 = now_ms();
    assert_int_equal(pemn_agent_run_once(a, &cy, &e), PEMN_ETIMEOUT);
    assert_true(now_ms() - t0 < 15000);
    fakesrv_trickle(f->srv, 0, 0);
    pemn_agent_free(a);
}

static void test_agent_symlink_not_followed(void **state)
{
    struct fx *f = *state;
    char dir[700], victim[700], tmp[800];
    snprintf(dir, sizeof dir, "%s/agent", f->dir);
    snprintf(victim, sizeof victim, "%s/victim", f->dir);
    touch(victim, 7);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(tmp, sizeof tmp, "%s/state.json.tmp", dir);
    assert_int_equal(symlink(victim, tmp), 0);
    pemn_agent *a = agent(f, dir, 0, 0, 0);
    /* an install writes state.json through state.json.tmp */
    int changed = 0;
    struct pemn_err e;
    struct pemn_agent_expect ex = {.model = "net", .digest = f->digest};
    assert_int_equal(pemn_agent_install_mem(a, f->pkg, f->len, &ex, &changed, &e), PEMN_OK);
    struct stat sb;
    assert_int_equal(stat(victim, &sb), 0);
    assert_int_equal(sb.st_size, 7); /* the symlink's target was not overwritten */
    pemn_agent_free(a);
    /* a symlink planted at the lock file is refused, not followed */
    char lock[800];
    snprintf(lock, sizeof lock, "%s/.lock", dir);
    unlink(lock);
    assert_int_equal(symlink(victim, lock), 0);
    struct pemn_agent_opts o;
    pemn_agent_opts_init(&o);
    o.dir = dir;
    o.trusted = f->trusted;
    pemn_agent *b = NULL;
    assert_int_not_equal(pemn_agent_new(&o, &b, &e), PEMN_OK);
    assert_non_null(strstr(e.msg, "symbolic link"));
    assert_int_equal(stat(victim, &sb), 0);
    assert_int_equal(sb.st_size, 7);
}

static void test_agent_fifo_does_not_hang(void **state)
{
    struct fx *f = *state;
    char dir[700], st[800];
    snprintf(dir, sizeof dir, "%s/agent", f->dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(st, sizeof st, "%s/state.json", dir);
    assert_int_equal(mkfifo(st, 0644), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10); /* a hang is a failure, not a stuck test run */
        struct pemn_agent_opts o;
        pemn_agent_opts_init(&o);
        o.dir = dir;
        o.trusted = f->trusted;
        pemn_agent *a = NULL;
        struct pemn_err e;
        pemn_rc rc = pemn_agent_new(&o, &a, &e);
        struct pemn_agent_state s;
        int ok = rc == PEMN_OK && pemn_agent_state(a, &s) == PEMN_OK && !s.has_current;
        pemn_agent_free(a);
        _exit(ok ? 0 : 3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_pull_fifo_at_out_does_not_hang(void **state)
{
    struct fx *f = *state;
    assert_int_equal(mkfifo(f->dest, 0644), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(10);
        pemn_client *c = client(f, NULL, 0, 0, 0);
        struct pemn_resolved r;
        fx_resolved(&r, "net", "1.0.0", 3, f->pkg, f->len, BLOB);
        struct pemn_err e;
        pemn_rc rc = pemn_client_fetch(c, &r, f->dest, NULL, NULL, &e);
        pemn_client_free(c);
        /* the FIFO is replaced by the verified package (rename), never read from */
        struct stat sb;
        _exit(rc == PEMN_OK && stat(f->dest, &sb) == 0 && S_ISREG(sb.st_mode) ? 0 : 3);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- 11: terminal escaping ------------------------------------------------------------ */
static void test_term_escape(void **state)
{
    (void)state;
    char b[256];
    assert_string_equal(proto_term_escape("net-1.0", b, sizeof b), "net-1.0");
    assert_string_equal(proto_term_escape("a\x1b[31mred", b, sizeof b), "a\\x1b[31mred");
    assert_string_equal(proto_term_escape("\x1b]0;title\x07", b, sizeof b), "\\x1b]0;title\\x07");
    assert_string_equal(proto_term_escape("cr\rlf\n\x7f", b, sizeof b), "cr\\x0dlf\\x0a\\x7f");
    assert_string_equal(proto_term_escape("back\\slash", b, sizeof b), "back\\\\slash");
    /* C1 controls in UTF-8 (U+009B is CSI), and bytes that are not UTF-8 */
    assert_string_equal(proto_term_escape("x\xc2\x9b"
                                          "2J",
                                          b, sizeof b),
                        "x\\xc2\\x9b2J");
    assert_string_equal(proto_term_escape("\xff\xfe", b, sizeof b), "\\xff\\xfe");
    /* valid UTF-8 stays */
    assert_string_equal(proto_term_escape("ünïcode ✓", b, sizeof b), "ünïcode ✓");
    /* truncation never cuts an escape */
    char s[5];
    assert_string_equal(proto_term_escape("ab\x1b", s, sizeof s), "ab");
    assert_string_equal(proto_term_escape(NULL, b, sizeof b), "");
}

/* ---- 12: the release record ----------------------------------------------------------- */
static void test_release_record(void **state)
{
    struct fx *f = *state;
    char cache[700];
    snprintf(cache, sizeof cache, "%s/cache", f->dir);
    pemn_client *c = client(f, cache, 0, 0, 0);
    struct pemn_resolved r;
    fx_resolved(&r, "net", "1.0.0", 3, f->pkg, f->len, BLOB);
    struct pemn_err e;
    assert_int_equal(pemn_client_fetch(c, &r, f->dest, NULL, NULL, &e), PEMN_OK);
    char rec[800];
    snprintf(rec, sizeof rec, "%s/releases/net", cache);
    size_t n;
    uint8_t *txt = fx_read(rec, &n);
    assert_non_null(txt);
    assert_memory_equal(txt, "3\n", 2);
    free(txt);
    /* the registry now serves an older, validly signed release */
    size_t len2;
    uint8_t *old = fx_make_pkg("net", "0.9.0", 2, &f->sk, 20000, &len2);
    fakesrv_set_blob(f->srv, BLOB, old, len2, NULL);
    struct pemn_resolved r2;
    fx_resolved(&r2, "net", "0.9.0", 2, old, len2, BLOB);
    char dest2[700];
    snprintf(dest2, sizeof dest2, "%s/old.pemn", f->dir);
    struct fakesrv_stats st;
    fakesrv_reset_stats(f->srv);
    assert_int_equal(pemn_client_fetch(c, &r2, dest2, NULL, NULL, &e), PEMN_EROLLBACK);
    assert_non_null(strstr(e.msg, "below release 3"));
    fakesrv_get_stats(f->srv, &st);
    assert_int_equal(st.bytes_sent, 0); /* refused before any download */
    assert_false(fx_exists(dest2));
    /* a registry that lies about the release in its JSON: caught on the signed manifest */
    r2.release = 0;
    assert_int_equal(pemn_client_fetch(c, &r2, dest2, NULL, NULL, &e), PEMN_EROLLBACK);
    assert_false(fx_exists(dest2));
    /* --allow-downgrade */
    struct pemn_fetch_options fo = {.flags = PEMN_FETCH_ALLOW_DOWNGRADE};
    fx_resolved(&r2, "net", "0.9.0", 2, old, len2, BLOB);
    assert_int_equal(pemn_client_fetch(c, &r2, dest2, &fo, NULL, &e), PEMN_OK);
    txt = fx_read(rec, &n);
    assert_memory_equal(txt, "3\n", 2); /* the record is never lowered */
    free(txt);
    /* a new client on the same cache (another run) remembers */
    pemn_client_free(c);
    c = client(f, cache, 0, 0, 0);
    unlink(dest2);
    assert_int_equal(pemn_client_fetch(c, &r2, dest2, NULL, NULL, &e), PEMN_EROLLBACK);
    free(old);
    pemn_client_free(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_names_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_size_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trickle_bounded_by_min_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trickle_bounded_by_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_keeps_only_current_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_trickle_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_max_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_symlink_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_agent_fifo_does_not_hang, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_fifo_at_out_does_not_hang, setup, teardown),
        cmocka_unit_test(test_term_escape),
        cmocka_unit_test_setup_teardown(test_release_record, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
