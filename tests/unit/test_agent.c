/* Unit tests: the fleet agent's local install machinery (client/agent*.c): install, state,
 * rollback protection, verification failures, locking, crash at every install step and
 * recovery, instant rollback, garbage collection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pemn/agent.h>
#include <pemn/builder.h>
#include <pemn/pkg.h>
#include <pemn/safetensors.h>

struct fx {
    char dir[256];
    struct pemn_seckey sk, other_sk;
    struct pemn_pubkey pk, other_pk;
    pemn_keyring *trusted;
};

/* A small signed package: one masked 4x8 tensor and one dense bias. `salt` changes the
 * bytes without changing name/version/release. */
static uint8_t *make_pkg(const struct pemn_seckey *sk, const char *name, const char *version,
                         uint64_t release, int salt, size_t *len)
{
    pemn_builder *b = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_builder_new(name, version, release, &b, &e), PEMN_OK);
    float proto[5] = {0.5f, -0.25f, 1.0f, 0.125f, (float)salt};
    uint32_t pid;
    assert_int_equal(pemn_builder_add_proto_values(b, proto, 5, &pid), PEMN_OK);
    uint8_t mask[32];
    for (int i = 0; i < 32; i++)
        mask[i] = (uint8_t)((i * 7 + salt) % 3 == 0);
    uint64_t shape[2] = {4, 8};
    assert_int_equal(pemn_builder_add_masked(b, "fc.weight", 2, shape, pid, 0, 1.0f, mask, &e),
                     PEMN_OK);
    float bias[4] = {1, 2, 3, (float)release};
    uint64_t bshape[1] = {4};
    assert_int_equal(
        pemn_builder_add_dense(b, "fc.bias", PEMN_DT_F32, 1, bshape, bias, sizeof bias, &e),
        PEMN_OK);
    assert_int_equal(pemn_builder_set_created(b, 1700000000 + salt), PEMN_OK);
    uint8_t *out = NULL;
    assert_int_equal(pemn_builder_finish(b, sk, &out, len, &e), PEMN_OK);
    pemn_builder_free(b);
    return out;
}

static void digest_of(const uint8_t *p, size_t n, char out[PEMN_DIGEST_TEXT_MAX])
{
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(p, n, d);
    pemn_digest_format(d, out);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/pemn-agent-test.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    pemn_key_generate(&f->sk, &f->pk);
    pemn_key_generate(&f->other_sk, &f->other_pk);
    pemn_keyring_new(&f->trusted);
    pemn_keyring_add(f->trusted, &f->pk);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    pemn_keyring_free(f->trusted);
    pemn_seckey_wipe(&f->sk);
    pemn_seckey_wipe(&f->other_sk);
    free(f);
    return 0;
}

static pemn_agent *open_agent(struct fx *f, int downgrade, int expand)
{
    struct pemn_agent_opts o;
    pemn_agent_opts_init(&o);
    o.dir = f->dir;
    o.trusted = f->trusted;
    o.allow_downgrade = downgrade;
    o.expand = expand;
    pemn_agent *a = NULL;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_agent_new(&o, &a, &e);
    if (rc)
        fail_msg("pemn_agent_new: %s", e.msg);
    return a;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

/* DIR/current/model.pemn verifies and is the package with this digest. */
static void assert_current_is(struct fx *f, const char *digest)
{
    char p[512];
    snprintf(p, sizeof p, "%s/current/model.pemn", f->dir);
    pemn_pkg *pkg = NULL;
    assert_int_equal(pemn_pkg_open_file(p, 0, &pkg, NULL), PEMN_OK);
    assert_int_equal(pemn_pkg_verify(pkg, f->trusted, NULL), PEMN_OK);
    uint8_t d[PEMN_DIGEST_BYTES];
    char text[PEMN_DIGEST_TEXT_MAX];
    pemn_pkg_digest(pkg, d);
    pemn_digest_format(d, text);
    pemn_pkg_free(pkg);
    assert_string_equal(text, digest);
}

static void assert_no_current(struct fx *f)
{
    char p[512];
    struct stat sb;
    snprintf(p, sizeof p, "%s/current", f->dir);
    assert_int_not_equal(lstat(p, &sb), 0);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_step_names(void **state)
{
    (void)state;
    for (int i = 0; i < PEMN_AGENT_STEP_COUNT_; i++) {
        pemn_agent_step s;
        const char *n = pemn_agent_step_name((pemn_agent_step)i);
        assert_non_null(n);
        assert_int_equal(pemn_agent_step_parse(n, &s), PEMN_OK);
        assert_int_equal(s, i);
    }
    pemn_agent_step s;
    assert_null(pemn_agent_step_name(PEMN_AGENT_STEP_COUNT_));
    assert_int_equal(pemn_agent_step_parse("nope", &s), PEMN_EINVAL);
    assert_int_equal(pemn_agent_step_parse(NULL, &s), PEMN_EINVAL);
    assert_string_equal(pemn_agent_reason(PEMN_EROLLBACK), "rollback-refused");
    assert_string_equal(pemn_agent_reason(PEMN_EBADSIG), "bad-signature");
    assert_string_equal(pemn_agent_reason(PEMN_EDIGEST), "digest-mismatch");
    assert_string_equal(pemn_agent_reason(PEMN_EIO), "disk");
    assert_string_equal(pemn_agent_reason(PEMN_EUNTRUSTED), "untrusted");
}

static void test_bad_options(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    pemn_agent *a = (pemn_agent *)1;
    struct pemn_err e;
    pemn_agent_opts_init(&o);
    assert_int_equal(pemn_agent_new(&o, &a, &e), PEMN_EINVAL);
    assert_null(a);
    assert_non_null(strstr(e.msg, "directory"));
    o.dir = f->dir;
    assert_int_equal(pemn_agent_new(&o, &a, &e), PEMN_EINVAL); /* no keys */
    pemn_keyring *empty;
    pemn_keyring_new(&empty);
    o.trusted = empty;
    assert_int_equal(pemn_agent_new(&o, &a, &e), PEMN_EINVAL);
    pemn_keyring_free(empty);
    /* DIR is a regular file */
    char p[512];
    snprintf(p, sizeof p, "%s/file", f->dir);
    FILE *fp = fopen(p, "w");
    fclose(fp);
    o.dir = p;
    o.trusted = f->trusted;
    assert_int_equal(pemn_agent_new(&o, &a, &e), PEMN_EIO);
    pemn_agent_free(NULL);
    /* missing parents are created */
    snprintf(p, sizeof p, "%s/x/y/agent/", f->dir);
    o.dir = p;
    assert_int_equal(pemn_agent_new(&o, &a, &e), PEMN_OK);
    pemn_agent_free(a);
    snprintf(p, sizeof p, "%s/x/y/agent/versions", f->dir);
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
}

static void test_fresh_dir(void **state)
{
    struct fx *f = *state;
    pemn_agent *a = open_agent(f, 0, 0);
    struct pemn_agent_state st;
    assert_int_equal(pemn_agent_state(a, &st), PEMN_OK);
    assert_false(st.has_current);
    assert_false(st.has_previous);
    assert_no_current(f);
    char p[512];
    struct stat sb;
    snprintf(p, sizeof p, "%s/state.json", f->dir);
    assert_int_equal(stat(p, &sb), 0);
    /* anything is admitted when nothing is installed */
    assert_int_equal(pemn_agent_admit(a, 0, "sha256:00", NULL), PEMN_OK);
    pemn_agent_free(a);
}

static void test_install_upgrade_gc(void **state)
{
    struct fx *f = *state;
    size_t n1, n2, n3;
    uint8_t *p1 = make_pkg(&f->sk, "net", "1.0.0", 1, 1, &n1);
    uint8_t *p2 = make_pkg(&f->sk, "net", "1.1.0", 2, 2, &n2);
    uint8_t *p3 = make_pkg(&f->sk, "net", "2.0.0", 5, 3, &n3);
    char d1[PEMN_DIGEST_TEXT_MAX], d2[PEMN_DIGEST_TEXT_MAX], d3[PEMN_DIGEST_TEXT_MAX];
    digest_of(p1, n1, d1);
    digest_of(p2, n2, d2);
    digest_of(p3, n3, d3);
    pemn_agent *a = open_agent(f, 0, 0);
    struct pemn_err e;
    int changed = -1;
    struct pemn_agent_expect ex = {.model = "net", .digest = d1};
    assert_int_equal(pemn_agent_install_mem(a, p1, n1, &ex, &changed, &e), PEMN_OK);
    assert_int_equal(changed, 1);
    assert_current_is(f, d1);
    /* the link is relative and names the digest */
    char p[512], target[256];
    snprintf(p, sizeof p, "%s/current", f->dir);
    ssize_t tl = readlink(p, target, sizeof target - 1);
    assert_true(tl > 0);
    target[tl] = 0;
    assert_string_equal(target + 9, d1 + 7);
    assert_memory_equal(target, "versions/", 9);
    /* same again: nothing to do */
    assert_int_equal(pemn_agent_install_mem(a, p1, n1, &ex, &changed, &e), PEMN_OK);
    assert_int_equal(changed, 0);
    assert_int_equal(pemn_agent_admit(a, 1, d1, NULL), PEMN_EEXIST);

    ex.digest = d2;
    assert_int_equal(pemn_agent_install_mem(a, p2, n2, &ex, &changed, &e), PEMN_OK);
    assert_int_equal(changed, 1);
    assert_current_is(f, d2);
    struct pemn_agent_state st;
    pemn_agent_state(a, &st);
    assert_true(st.has_current && st.has_previous);
    assert_string_equal(st.current.digest, d2);
    assert_string_equal(st.current.version, "1.1.0");
    assert_int_equal(st.current.release, 2);
    assert_int_equal(st.current.size, n2);
    assert_string_equal(st.previous.digest, d1);
    snprintf(p, sizeof p, "%s/versions", f->dir);
    assert_int_equal(count_entries(p), 2);

    ex.digest = NULL;
    assert_int_equal(pemn_agent_install_mem(a, p3, n3, &ex, &changed, &e), PEMN_OK);
    assert_current_is(f, d3);
    assert_int_equal(count_entries(p), 2); /* v1 collected: current + previous kept */
    snprintf(p, sizeof p, "%s/versions/%s", f->dir, d1 + 7);
    struct stat sb;
    assert_int_not_equal(stat(p, &sb), 0);
    pemn_agent_free(a);

    /* state survives a restart, and state.json says what is installed */
    a = open_agent(f, 0, 0);
    pemn_agent_state(a, &st);
    assert_string_equal(st.current.digest, d3);
    assert_string_equal(st.previous.digest, d2);
    assert_int_equal(st.current.release, 5);
    assert_true(st.current.installed > 1700000000);
    snprintf(p, sizeof p, "%s/current/model.pemn", f->dir);
    assert_string_equal(pemn_agent_current_path(a), p);
    pemn_agent_free(a);
    free(p1);
    free(p2);
    free(p3);
}

static void test_rollback_protection(void **state)
{
    struct fx *f = *state;
    size_t n5, n3, n5b;
    uint8_t *p5 = make_pkg(&f->sk, "net", "1.5.0", 5, 5, &n5);
    uint8_t *p3 = make_pkg(&f->sk, "net", "1.3.0", 3, 3, &n3);
    uint8_t *p5b = make_pkg(&f->sk, "net", "1.5.0-evil", 5, 9, &n5b);
    char d5[PEMN_DIGEST_TEXT_MAX], d3[PEMN_DIGEST_TEXT_MAX];
    digest_of(p5, n5, d5);
    digest_of(p3, n3, d3);
    pemn_agent *a = open_agent(f, 0, 0);
    struct pemn_err e;
    int changed;
    assert_int_equal(pemn_agent_install_mem(a, p5, n5, NULL, &changed, &e), PEMN_OK);
    /* older release: refused, validly signed or not */
    assert_int_equal(pemn_agent_install_mem(a, p3, n3, NULL, &changed, &e), PEMN_EROLLBACK);
    assert_int_equal(changed, 0);
    assert_non_null(strstr(e.msg, "older"));
    /* same release, different bytes: refused, and the message says why */
    assert_int_equal(pemn_agent_install_mem(a, p5b, n5b, NULL, &changed, &e), PEMN_EROLLBACK);
    assert_non_null(strstr(e.msg, "different package"));
    assert_current_is(f, d5);
    assert_int_equal(pemn_agent_admit(a, 4, d3, NULL), PEMN_EROLLBACK);
    assert_int_equal(pemn_agent_admit(a, 6, d3, NULL), PEMN_OK);
    pemn_agent_free(a);
    /* restarting does not forget the installed release */
    a = open_agent(f, 0, 0);
    assert_int_equal(pemn_agent_install_mem(a, p3, n3, NULL, &changed, &e), PEMN_EROLLBACK);
    pemn_agent_free(a);
    /* the operator's explicit downgrade flag allows it */
    a = open_agent(f, 1, 0);
    assert_int_equal(pemn_agent_install_mem(a, p3, n3, NULL, &changed, &e), PEMN_OK);
    assert_int_equal(changed, 1);
    assert_current_is(f, d3);
    pemn_agent_free(a);
    free(p5);
    free(p3);
    free(p5b);
}

static void test_refusals_keep_old_model(void **state)
{
    struct fx *f = *state;
    size_t n1, n2, nu;
    uint8_t *p1 = make_pkg(&f->sk, "net", "1.0.0", 1, 1, &n1);
    uint8_t *p2 = make_pkg(&f->sk, "net", "2.0.0", 2, 2, &n2);
    uint8_t *pu = make_pkg(&f->other_sk, "net", "3.0.0", 3, 3, &nu);
    char d1[PEMN_DIGEST_TEXT_MAX], d2[PEMN_DIGEST_TEXT_MAX];
    digest_of(p1, n1, d1);
    digest_of(p2, n2, d2);
    pemn_agent *a = open_agent(f, 0, 0);
    struct pemn_err e;
    int changed;
    assert_int_equal(pemn_agent_install_mem(a, p1, n1, NULL, &changed, &e), PEMN_OK);

    /* untrusted signer */
    assert_int_equal(pemn_agent_install_mem(a, pu, nu, NULL, &changed, &e), PEMN_EUNTRUSTED);
    /* digest differs from what the server promised */
    struct pemn_agent_expect ex = {.digest = d1};
    assert_int_equal(pemn_agent_install_mem(a, p2, n2, &ex, &changed, &e), PEMN_EDIGEST);
    ex.digest = "sha256:zz";
    assert_int_equal(pemn_agent_install_mem(a, p2, n2, &ex, &changed, &e), PEMN_EINVAL);
    /* wrong model */
    struct pemn_agent_expect em = {.model = "other"};
    assert_int_equal(pemn_agent_install_mem(a, p2, n2, &em, &changed, &e), PEMN_ECONFLICT);
    /* tampered bytes: every single-byte flip in the package is refused */
    uint8_t *t = malloc(n2);
    int refused = 0;
    for (size_t i = 0; i < n2; i++) {
        memcpy(t, p2, n2);
        t[i] ^= 0x40;
        pemn_rc rc = pemn_agent_install_mem(a, t, n2, NULL, &changed, &e);
        refused += rc != PEMN_OK;
        assert_int_equal(changed, 0);
    }
    assert_int_equal(refused, (int)n2);
    /* truncated */
    assert_int_not_equal(pemn_agent_install_mem(a, p2, n2 / 2, NULL, &changed, &e), PEMN_OK);
    assert_int_not_equal(pemn_agent_install_mem(a, p2, 0, NULL, &changed, &e), PEMN_OK);
    free(t);
    assert_current_is(f, d1);
    char p[512];
    snprintf(p, sizeof p, "%s/versions", f->dir);
    assert_int_equal(count_entries(p), 1); /* nothing half-written left behind */
    /* from a file */
    snprintf(p, sizeof p, "%s/dl.pemn", f->dir);
    FILE *fp = fopen(p, "wb");
    fwrite(p2, 1, n2, fp);
    fclose(fp);
    assert_int_equal(pemn_agent_install_file(a, p, NULL, &changed, &e), PEMN_OK);
    assert_current_is(f, d2);
    snprintf(p, sizeof p, "%s/missing.pemn", f->dir);
    assert_int_equal(pemn_agent_install_file(a, p, NULL, &changed, &e), PEMN_ENOTFOUND);
    pemn_agent_free(a);
    free(p1);
    free(p2);
    free(pu);
}

static void test_disk_error(void **state)
{
    struct fx *f = *state;
    size_t n1, n2;
    uint8_t *p1 = make_pkg(&f->sk, "net", "1.0.0", 1, 1, &n1);
    uint8_t *p2 = make_pkg(&f->sk, "net", "2.0.0", 2, 2, &n2);
    char d1[PEMN_DIGEST_TEXT_MAX];
    digest_of(p1, n1, d1);
    pemn_agent *a = open_agent(f, 0, 0);
    int changed;
    struct pemn_err e;
    assert_int_equal(pemn_agent_install_mem(a, p1, n1, NULL, &changed, &e), PEMN_OK);
    /* a file-size limit smaller than the package makes write() fail (works as root too) */
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = n2 / 2;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &lim);
    pemn_rc rc = pemn_agent_install_mem(a, p2, n2, NULL, &changed, &e);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, PEMN_EIO);
    assert_string_equal(pemn_agent_reason(rc), "disk");
    assert_int_equal(changed, 0);
    assert_current_is(f, d1);
    char p[512];
    snprintf(p, sizeof p, "%s/versions", f->dir);
    assert_int_equal(count_entries(p), 1);
    pemn_agent_free(a);
    free(p1);
    free(p2);
}

static void test_lock(void **state)
{
    struct fx *f = *state;
    pemn_agent *a = open_agent(f, 0, 0);
    struct pemn_agent_opts o;
    pemn_agent_opts_init(&o);
    o.dir = f->dir;
    o.trusted = f->trusted;
    pemn_agent *b = NULL;
    struct pemn_err e;
    assert_int_equal(pemn_agent_new(&o, &b, &e), PEMN_ECONFLICT);
    assert_null(b);
    pemn_agent_free(a);
    assert_int_equal(pemn_agent_new(&o, &b, &e), PEMN_OK);
    pemn_agent_free(b);
}

struct crash {
    pemn_agent_step at;
    int hits;
};
static int crash_hook(pemn_agent_step step, void *user)
{
    struct crash *c = user;
    if (step != c->at)
        return 0;
    c->hits++;
    return 1;
}

/* Crash after every step, for a first install and for an upgrade, with and without
 * expansion: on restart DIR/current is whole and verifies, and is the old or the new. */
static void test_crash_every_step(void **state)
{
    struct fx *f = *state;
    size_t n1, n2;
    uint8_t *p1 = make_pkg(&f->sk, "net", "1.0.0", 1, 1, &n1);
    uint8_t *p2 = make_pkg(&f->sk, "net", "2.0.0", 2, 2, &n2);
    char d1[PEMN_DIGEST_TEXT_MAX], d2[PEMN_DIGEST_TEXT_MAX];
    digest_of(p1, n1, d1);
    digest_of(p2, n2, d2);
    for (int expand = 0; expand <= 1; expand++)
        for (int upgrade = 0; upgrade <= 1; upgrade++)
            for (int s = 0; s < PEMN_AGENT_STEP_COUNT_; s++) {
                if (s == PEMN_AGENT_STEP_EXPAND && !expand)
                    continue;
                char cmd[400];
                snprintf(cmd, sizeof cmd, "rm -rf '%s'/*", f->dir);
                assert_int_equal(system(cmd), 0);
                struct pemn_err e;
                int changed;
                if (upgrade) {
                    pemn_agent *a0 = open_agent(f, 0, expand);
                    assert_int_equal(pemn_agent_install_mem(a0, p1, n1, NULL, &changed, &e),
                                     PEMN_OK);
                    pemn_agent_free(a0);
                }
                struct crash c = {.at = (pemn_agent_step)s};
                struct pemn_agent_opts o;
                pemn_agent_opts_init(&o);
                o.dir = f->dir;
                o.trusted = f->trusted;
                o.expand = expand;
                o.fault = crash_hook;
                o.fault_user = &c;
                pemn_agent *a = NULL;
                assert_int_equal(pemn_agent_new(&o, &a, &e), PEMN_OK);
                pemn_rc rc = pemn_agent_install_mem(a, p2, n2, NULL, &changed, &e);
                assert_int_equal(c.hits, 1);
                assert_int_equal(rc, PEMN_ECANCELED);
                pemn_agent_free(a); /* "crash": no clean-up happened */

                a = open_agent(f, 0, expand); /* restart: recovery */
                struct pemn_agent_state st;
                pemn_agent_state(a, &st);
                bool after_swap = s >= PEMN_AGENT_STEP_SWAP;
                if (after_swap) {
                    assert_current_is(f, d2);
                    assert_string_equal(st.current.digest, d2);
                    if (upgrade) {
                        assert_true(st.has_previous);
                        assert_string_equal(st.previous.digest, d1);
                    }
                } else if (upgrade) {
                    assert_current_is(f, d1);
                    assert_string_equal(st.current.digest, d1);
                } else {
                    assert_no_current(f);
                    assert_false(st.has_current);
                }
                char p[512];
                struct stat sb;
                snprintf(p, sizeof p, "%s/current.tmp", f->dir);
                assert_int_not_equal(lstat(p, &sb), 0);
                snprintf(p, sizeof p, "%s/versions/%s.partial", f->dir, d2 + 7);
                assert_int_not_equal(lstat(p, &sb), 0);
                if (expand && st.has_current) {
                    snprintf(p, sizeof p, "%s/current/model.safetensors", f->dir);
                    assert_int_equal(stat(p, &sb), 0);
                }
                /* and the interrupted install completes on the next try */
                assert_int_equal(pemn_agent_install_mem(a, p2, n2, NULL, &changed, &e), PEMN_OK);
                assert_current_is(f, d2);
                pemn_agent_free(a);
            }
    free(p1);
    free(p2);
}

static void test_recovery_damage(void **state)
{
    struct fx *f = *state;
    size_t n1, n2;
    uint8_t *p1 = make_pkg(&f->sk, "net", "1.0.0", 1, 1, &n1);
    uint8_t *p2 = make_pkg(&f->sk, "net", "2.0.0", 2, 2, &n2);
    char d1[PEMN_DIGEST_TEXT_MAX], d2[PEMN_DIGEST_TEXT_MAX];
    digest_of(p1, n1, d1);
    digest_of(p2, n2, d2);
    pemn_agent *a = open_agent(f, 0, 0);
    int changed;
    struct pemn_err e;
    assert_int_equal(pemn_agent_install_mem(a, p1, n1, NULL, &changed, &e), PEMN_OK);
    assert_int_equal(pemn_agent_install_mem(a, p2, n2, NULL, &changed, &e), PEMN_OK);
    pemn_agent_free(a);

    /* junk in versions/, a stale temp link, a corrupt state.json */
    char p[512];
    snprintf(p, sizeof p, "%s/versions/junk", f->dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/versions/%064d.partial", f->dir, 0);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/current.tmp", f->dir);
    assert_int_equal(symlink("versions/nowhere", p), 0);
    snprintf(p, sizeof p, "%s/state.json", f->dir);
    FILE *fp = fopen(p, "w");
    fputs("{not json", fp);
    fclose(fp);
    a = open_agent(f, 0, 0);
    struct pemn_agent_state st;
    pemn_agent_state(a, &st);
    assert_true(st.has_current);
    assert_string_equal(st.current.digest, d2); /* rebuilt from DIR/current */
    assert_int_equal(st.current.release, 2);
    snprintf(p, sizeof p, "%s/versions", f->dir);
    assert_int_equal(count_entries(p), 1); /* previous unknown without state: collected */
    pemn_agent_free(a);

    /* the running model is damaged on disk: fall back to the previous one */
    a = open_agent(f, 1, 0);
    assert_int_equal(pemn_agent_install_mem(a, p1, n1, NULL, &changed, &e), PEMN_OK);
    assert_int_equal(pemn_agent_install_mem(a, p2, n2, NULL, &changed, &e), PEMN_OK);
    pemn_agent_free(a);
    snprintf(p, sizeof p, "%s/versions/%s/model.pemn", f->dir, d2 + 7);
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "XXXX", 4, (off_t)(n2 / 2)), 4);
    close(fd);
    a = open_agent(f, 0, 0);
    pemn_agent_state(a, &st);
    assert_string_equal(st.current.digest, d1);
    assert_current_is(f, d1);
    assert_false(st.has_previous);
    pemn_agent_free(a);

    /* nothing verifies any more: no current at all rather than a broken one */
    snprintf(p, sizeof p, "%s/versions/%s/model.pemn", f->dir, d1 + 7);
    fd = open(p, O_WRONLY | O_TRUNC);
    close(fd);
    a = open_agent(f, 0, 0);
    pemn_agent_state(a, &st);
    assert_false(st.has_current);
    assert_no_current(f);
    pemn_agent_free(a);
    free(p1);
    free(p2);
}

static void test_instant_rollback_and_expand(void **state)
{
    struct fx *f = *state;
    size_t n1, n2;
    uint8_t *p1 = make_pkg(&f->sk, "net", "1.0.0", 1, 1, &n1);
    uint8_t *p2 = make_pkg(&f->sk, "net", "2.0.0", 2, 2, &n2);
    char d1[PEMN_DIGEST_TEXT_MAX], d2[PEMN_DIGEST_TEXT_MAX];
    digest_of(p1, n1, d1);
    digest_of(p2, n2, d2);
    pemn_agent *a = open_agent(f, 0, 1);
    int changed;
    struct pemn_err e;
    assert_int_equal(pemn_agent_rollback(a, &e), PEMN_ENOTFOUND);
    assert_int_equal(pemn_agent_install_mem(a, p1, n1, NULL, &changed, &e), PEMN_OK);
    assert_int_equal(pemn_agent_install_mem(a, p2, n2, NULL, &changed, &e), PEMN_OK);
    char p[512];
    snprintf(p, sizeof p, "%s/current/model.safetensors", f->dir);
    pemn_st *st_file = NULL;
    assert_int_equal(pemn_st_open_file(p, &st_file, &e), PEMN_OK);
    assert_int_equal(pemn_st_count(st_file), 2);
    pemn_st_free(st_file);
    assert_int_equal(pemn_agent_rollback(a, &e), PEMN_OK);
    assert_current_is(f, d1);
    struct pemn_agent_state st;
    pemn_agent_state(a, &st);
    assert_string_equal(st.current.digest, d1);
    assert_string_equal(st.previous.digest, d2);
    pemn_agent_free(a);
    a = open_agent(f, 0, 0);
    pemn_agent_state(a, &st);
    assert_string_equal(st.current.digest, d1);
    assert_string_equal(st.previous.digest, d2);
    pemn_agent_free(a);
    free(p1);
    free(p2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_names),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fresh_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_install_upgrade_gc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_protection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_keep_old_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_every_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instant_rollback_and_expand, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
