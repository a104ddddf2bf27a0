/* Unit tests: the fleet agent and `pemn pull` against a malicious registry
 * (tests/common/evilreg.h) — every attack of TUF's list (arbitrary package, rollback,
 * indefinite freeze, endless data, wrong model / mix-and-match, fast-forward, malicious
 * mirror, slow retrieval, compromised publisher key revoked by a new root, missing or
 * under-signed root link, compromised online metadata key). After each attack the device
 * still runs what it ran before (or the right model), and the refusal was reported with its
 * reason. Also: the trust record survives restarts, root updates and key changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/common/evilreg.h"
#include "tests/common/pkgfix.h"

#include <pemn/agent.h>
#include <pemn/client.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FLEET "f"
#define DEVICE "d1"

struct pkgv {
    uint8_t *data;
    size_t len;
    char digest[PEMN_DIGEST_TEXT_MAX];
    uint64_t release;
    const char *model, *version;
};

struct fx {
    char dir[300], agent_dir[320], root_file[320];
    fakesrv *srv;
    struct evil_keys k;
    char *root1;
    struct pkgv a, b, c;
    uint64_t mver; /* last metadata version the "real" registry signed */
};

static void make(struct pkgv *p, const struct pemn_seckey *sk, const char *model,
                 const char *version, uint64_t release, int salt)
{
    p->model = model;
    p->version = version;
    p->release = release;
    evil_pkg(sk, NULL, 0, model, version, release, salt, &p->data, &p->len, p->digest);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* A desired state for pkg with metadata version mver, valid for an hour, signed by sk. */
static char *desired_for(const struct pkgv *p, uint64_t mver, const struct pemn_seckey *sk)
{
    struct evil_desired d = {.fleet = FLEET,
                             .device = DEVICE,
                             .model = p->model,
                             .version = p->version,
                             .release = p->release,
                             .digest = p->digest,
                             .size = p->len,
                             .mver = mver,
                             .issued = now_s(),
                             .expires = now_s() + 3600};
    return evil_desired(&d, sk);
}

/* Serves pkg and a desired state naming it. */
static void offer(struct fx *f, const struct pkgv *p, uint64_t mver, const struct pemn_seckey *sk)
{
    char *body = desired_for(p, mver, sk);
    evil_serve_desired(f->srv, FLEET, DEVICE, body);
    free(body);
    evil_serve_pkg(f->srv, p->data, p->len, p->digest);
}

static pemn_agent *open_agent(struct fx *f, struct pemn_agent_opts *o, struct pemn_err *e)
{
    pemn_agent_opts_init(o);
    o->dir = f->agent_dir;
    o->root_file = f->root_file;
    o->model = "net";
    o->server = fakesrv_url(f->srv);
    o->fleet = FLEET;
    o->device = DEVICE;
    o->timeout_ms = 1500;
    pemn_agent *a = NULL;
    pemn_rc rc = pemn_agent_new(o, &a, e);
    if (rc)
        fail_msg("pemn_agent_new: %s", e->msg);
    return a;
}

static void running(pemn_agent *a, const struct pkgv *p)
{
    struct pemn_agent_state st;
    assert_int_equal(pemn_agent_state(a, &st), PEMN_OK);
    assert_true(st.has_current);
    assert_string_equal(st.current.digest, p->digest);
}

/* One cycle that must be refused with reason; the refusal was reported to the server. */
static void refused(struct fx *f, pemn_agent *a, const char *reason)
{
    fakesrv_reset_stats(f->srv);
    struct pemn_agent_cycle cy;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_agent_run_once(a, &cy, &e);
    if (rc == PEMN_OK || strcmp(cy.reason, reason) != 0)
        fail_msg("expected refusal %s, got rc %s reason '%s': %s", reason, pemn_rc_name(rc),
                 cy.reason, e.msg);
    struct fakesrv_stats st;
    fakesrv_get_stats(f->srv, &st);
    char want[96];
    snprintf(want, sizeof want, "\"reason\":\"%s\"", reason);
    if (!strstr(st.put_log, want))
        fail_msg("refusal %s not reported; reports: %s", reason, st.put_log);
}

static void accepted(pemn_agent *a)
{
    struct pemn_agent_cycle cy;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_agent_run_once(a, &cy, &e);
    if (rc)
        fail_msg("cycle refused: %s (%s)", e.msg, cy.reason);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "%s", pkgfix_tmpdir());
    snprintf(f->agent_dir, sizeof f->agent_dir, "%s/agent", f->dir);
    snprintf(f->root_file, sizeof f->root_file, "%s/root.json", f->dir);
    evil_keys_init(&f->k);
    f->srv = fakesrv_start();
    if (!f->srv)
        return -1;
    pemn_root *r = evil_root_v1(&f->k, "net", now_s() + 86400 * 30);
    const struct pemn_seckey *s1[] = {&f->k.root1};
    size_t len;
    f->root1 = evil_root_text(r, s1, 1, &len);
    pemn_root_free(r);
    if (pkgfix_write(f->root_file, f->root1, len))
        return -1;
    evil_serve_root(f->srv, 1, f->root1, 1);
    make(&f->a, &f->k.pub, "net", "1.0", 1, 1);
    make(&f->b, &f->k.pub, "net", "2.0", 2, 2);
    make(&f->c, &f->k.pub, "net", "3.0", 3, 3);
    /* the device installs A through the real flow */
    struct pemn_agent_opts o;
    struct pemn_err e = {0};
    pemn_agent *a = open_agent(f, &o, &e);
    offer(f, &f->a, ++f->mver, &f->k.meta);
    accepted(a);
    running(a, &f->a);
    pemn_agent_free(a);
    *state = f;
    return 0;
}

static void rm_rf(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fakesrv_stop(f->srv);
    rm_rf(f->dir);
    free(f->root1);
    free(f->a.data);
    free(f->b.data);
    free(f->c.data);
    free(f);
    return 0;
}

/* ---- metadata attacks ----------------------------------------------------------------------- */

static void test_unsigned_or_foreign_metadata(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    pemn_agent *a = open_agent(f, &o, &e);
    /* unsigned (the pre-issue-10 answer) */
    offer(f, &f->b, f->mver + 1, NULL);
    refused(f, a, "metadata-untrusted");
    /* signed by a key the root does not name: the attacker's, a publisher's, a root key's */
    const struct pemn_seckey *wrong[] = {&f->k.attacker, &f->k.pub, &f->k.root1};
    for (int i = 0; i < 3; i++) {
        offer(f, &f->b, f->mver + 1, wrong[i]);
        refused(f, a, "metadata-untrusted");
    }
    /* signed by the metadata key, but not a desired state (another _type) */
    struct evil_desired d = {FLEET,       DEVICE,   "net",       "2.0",   "pemn-root", 2,
                             f->b.digest, f->b.len, f->mver + 1, now_s(), now_s() + 60};
    char *body = evil_desired(&d, &f->k.meta);
    evil_serve_desired(f->srv, FLEET, DEVICE, body);
    free(body);
    refused(f, a, "metadata-untrusted");
    running(a, &f->a);
    pemn_agent_free(a);
}

static void test_other_device_or_fleet(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    pemn_agent *a = open_agent(f, &o, &e);
    const char *who[2][2] = {{FLEET, "d2"}, {"g", DEVICE}};
    for (int i = 0; i < 2; i++) {
        struct evil_desired d = {who[i][0],   who[i][1], "net",       "2.0",   NULL,         2,
                                 f->b.digest, f->b.len,  f->mver + 1, now_s(), now_s() + 600};
        char *body = evil_desired(&d, &f->k.meta);
        evil_serve_desired(f->srv, FLEET, DEVICE, body); /* served to this device */
        free(body);
        evil_serve_pkg(f->srv, f->b.data, f->b.len, f->b.digest);
        refused(f, a, "metadata-wrong-device");
    }
    running(a, &f->a);
    pemn_agent_free(a);
}

static void test_replay_and_restart(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    pemn_agent *a = open_agent(f, &o, &e);
    char *old = desired_for(&f->a, f->mver, &f->k.meta); /* what was accepted before */
    offer(f, &f->b, ++f->mver, &f->k.meta);
    accepted(a);
    running(a, &f->b);
    /* the registry replays the older (still unexpired) answer */
    evil_serve_desired(f->srv, FLEET, DEVICE, old);
    evil_serve_pkg(f->srv, f->a.data, f->a.len, f->a.digest);
    refused(f, a, "metadata-replayed");
    running(a, &f->b);
    /* the same version with other content (equivocation) */
    offer(f, &f->c, f->mver, &f->k.meta);
    refused(f, a, "metadata-replayed");
    pemn_agent_free(a);
    /* a restart does not forget */
    a = open_agent(f, &o, &e);
    evil_serve_desired(f->srv, FLEET, DEVICE, old);
    refused(f, a, "metadata-replayed");
    running(a, &f->b);
    pemn_agent_free(a);
    free(old);
}

static void test_rollback_release(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    pemn_agent *a = open_agent(f, &o, &e);
    offer(f, &f->c, ++f->mver, &f->k.meta);
    accepted(a);
    running(a, &f->c);
    /* newer metadata, older release (signed by the right publisher) */
    offer(f, &f->b, ++f->mver, &f->k.meta);
    refused(f, a, "rollback-refused");
    running(a, &f->c);
    pemn_agent_free(a);
    /* the record is apart from the installed package: even with DIR/current gone (an
     * operator's clean-up, a damaged disk) the release floor holds */
    char p[400];
    snprintf(p, sizeof p, "%s/current", f->agent_dir);
    assert_int_equal(unlink(p), 0);
    a = open_agent(f, &o, &e);
    offer(f, &f->b, ++f->mver, &f->k.meta);
    refused(f, a, "rollback-refused");
    pemn_agent_free(a);
}

static void test_freeze(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    pemn_agent *a = open_agent(f, &o, &e);
    /* a newer answer that has expired already */
    struct evil_desired d = {FLEET,       DEVICE,   "net",       "2.0",         NULL,       2,
                             f->b.digest, f->b.len, f->mver + 1, now_s() - 100, now_s() - 1};
    char *body = evil_desired(&d, &f->k.meta);
    evil_serve_desired(f->srv, FLEET, DEVICE, body);
    free(body);
    evil_serve_pkg(f->srv, f->b.data, f->b.len, f->b.digest);
    refused(f, a, "metadata-expired");
    running(a, &f->a);
    /* accepted while fresh, then the registry freezes the device on it: 304 forever */
    d.mver = f->mver + 2;
    d.issued = now_s();
    d.expires = now_s() + 2;
    body = evil_desired(&d, &f->k.meta);
    evil_serve_desired(f->srv, FLEET, DEVICE, body);
    accepted(a);
    running(a, &f->b);
    sleep(3);
    refused(f, a, "metadata-expired"); /* the 304 path */
    struct fakesrv_stats st;
    fakesrv_get_stats(f->srv, &st);
    assert_true(st.requests >= 2);
    /* and with the If-None-Match forgotten, the same (expired) body again */
    refused(f, a, "metadata-expired");
    running(a, &f->b);
    free(body);
    pemn_agent_free(a);
}

static void test_wrong_model(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    /* a root whose publisher may sign any model */
    pemn_root *r = evil_root_v1(&f->k, "*", now_s() + 86400);
    const struct pemn_seckey *s1[] = {&f->k.root1};
    pemn_root *r2 = NULL;
    assert_int_equal(pemn_root_next(r, &r2), PEMN_OK);
    size_t len;
    char *t2 = evil_root_text(r2, s1, 1, &len);
    evil_serve_root(f->srv, 2, t2, 1);
    pemn_agent *a = open_agent(f, &o, &e);
    struct pkgv other;
    make(&other, &f->k.pub, "other", "9.0", 9, 9);
    /* the registry names another model (validly signed by an allowed publisher) */
    offer(f, &other, ++f->mver, &f->k.meta);
    refused(f, a, "wrong-model");
    running(a, &f->a);
    /* mix-and-match: the answer says "net", the bytes are "other" */
    struct evil_desired d = {FLEET,        DEVICE,    "net",     "9.0",   NULL,         9,
                             other.digest, other.len, ++f->mver, now_s(), now_s() + 600};
    char *body = evil_desired(&d, &f->k.meta);
    evil_serve_desired(f->srv, FLEET, DEVICE, body);
    free(body);
    struct pemn_agent_cycle cy;
    assert_int_not_equal(pemn_agent_run_once(a, &cy, &e), PEMN_OK);
    assert_true(!strcmp(cy.reason, "wrong-model") || !strcmp(cy.reason, "name-mismatch"));
    running(a, &f->a);
    pemn_agent_free(a);
    pemn_root_free(r);
    pemn_root_free(r2);
    free(t2);
    free(other.data);
}

/* ---- package attacks ------------------------------------------------------------------------ */

static void test_arbitrary_package(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    pemn_agent *a = open_agent(f, &o, &e);
    struct pkgv evil;
    make(&evil, &f->k.attacker, "net", "6.6", 66, 66);
    offer(f, &evil, ++f->mver, &f->k.meta);
    refused(f, a, "signer-untrusted");
    running(a, &f->a);
    /* a publisher of another pattern cannot sign "net" either */
    pemn_root *r = evil_root_v1(&f->k, "net", now_s() + 86400);
    pemn_root *r2 = NULL;
    assert_int_equal(pemn_root_next(r, &r2), PEMN_OK);
    assert_int_equal(pemn_root_add_publisher(r2, &f->k.pub2_pk, "vision-*"), PEMN_OK);
    const struct pemn_seckey *s1[] = {&f->k.root1};
    char *t2 = evil_root_text(r2, s1, 1, NULL);
    evil_serve_root(f->srv, 2, t2, 1);
    struct pkgv p2;
    make(&p2, &f->k.pub2, "net", "7.0", 70, 70);
    offer(f, &p2, ++f->mver, &f->k.meta);
    refused(f, a, "signer-untrusted");
    running(a, &f->a);
    pemn_agent_free(a);
    pemn_root_free(r);
    pemn_root_free(r2);
    free(t2);
    free(evil.data);
    free(p2.data);
}

static void test_endless_data(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    pemn_agent *a = open_agent(f, &o, &e);
    /* a desired-state answer that never ends (well: far over its 64 KiB bound) */
    size_t big = 300 * 1024;
    char *junk = malloc(big + 1);
    assert_non_null(junk);
    memset(junk, ' ', big);
    junk[0] = '{';
    junk[big] = 0;
    evil_serve_desired(f->srv, FLEET, DEVICE, junk);
    struct pemn_agent_cycle cy;
    assert_int_equal(pemn_agent_run_once(a, &cy, &e), PEMN_ETOOBIG);
    running(a, &f->a);
    /* a package longer than the signed size */
    struct evil_desired d = {FLEET,       DEVICE, "net",     "2.0",   NULL,         2,
                             f->b.digest, 64,     ++f->mver, now_s(), now_s() + 600};
    char *body = evil_desired(&d, &f->k.meta);
    evil_serve_desired(f->srv, FLEET, DEVICE, body);
    free(body);
    evil_serve_pkg(f->srv, f->b.data, f->b.len, f->b.digest);
    assert_int_not_equal(pemn_agent_run_once(a, &cy, &e), PEMN_OK);
    running(a, &f->a);
    /* a root that never ends */
    char *rootjunk = malloc(PEMN_TRUST_MAX_BYTES + 4096);
    assert_non_null(rootjunk);
    memset(rootjunk, ' ', PEMN_TRUST_MAX_BYTES + 4095);
    rootjunk[PEMN_TRUST_MAX_BYTES + 4095] = 0;
    evil_serve_root(f->srv, 2, rootjunk, 0);
    refused(f, a, "root-invalid");
    running(a, &f->a);
    pemn_agent_free(a);
    free(junk);
    free(rootjunk);
}

static void test_malicious_mirror(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    pemn_agent *a = open_agent(f, &o, &e);
    /* other bytes at the signed digest's URL (a validly signed package of the same model) */
    char *body = desired_for(&f->b, ++f->mver, &f->k.meta);
    evil_serve_desired(f->srv, FLEET, DEVICE, body);
    free(body);
    evil_serve_pkg(f->srv, f->c.data, f->c.len, f->b.digest);
    struct pemn_agent_cycle cy;
    assert_int_not_equal(pemn_agent_run_once(a, &cy, &e), PEMN_OK);
    running(a, &f->a);
    /* the right bytes, one flipped on the wire */
    evil_serve_pkg(f->srv, f->b.data, f->b.len, f->b.digest);
    fakesrv_flip(f->srv, (int64_t)f->b.len / 2);
    assert_int_not_equal(pemn_agent_run_once(a, &cy, &e), PEMN_OK);
    assert_string_equal(cy.reason, "digest-mismatch");
    running(a, &f->a);
    /* once the mirror is honest again the update goes through */
    fakesrv_flip(f->srv, -1);
    accepted(a);
    running(a, &f->b);
    pemn_agent_free(a);
}

static void test_slow_retrieval(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    pemn_agent *a = open_agent(f, &o, &e);
    offer(f, &f->b, ++f->mver, &f->k.meta);
    fakesrv_stall(f->srv, 16, 4000);
    time_t t0 = time(NULL);
    struct pemn_agent_cycle cy;
    pemn_rc rc = pemn_agent_run_once(a, &cy, &e);
    assert_true(time(NULL) - t0 < 30); /* bounded by the agent's stall timeout */
    /* the stalled transfer was given up and resumed: the right model, or the old one */
    if (rc == PEMN_OK)
        running(a, &f->b);
    else
        running(a, &f->a);
    struct fakesrv_stats st;
    fakesrv_get_stats(f->srv, &st);
    assert_true(st.requests >= 3); /* desired, the stalled attempt, the resumed one */
    pemn_agent_free(a);
}

/* ---- keys and roots ------------------------------------------------------------------------- */

static void test_revoked_publisher(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    /* pub's key leaked: root v2 revokes it and names pub2 for "net" */
    pemn_root *r = NULL;
    assert_int_equal(pemn_root_parse(f->root1, strlen(f->root1), &r, &e), PEMN_OK);
    pemn_root *r2 = NULL;
    assert_int_equal(pemn_root_next(r, &r2), PEMN_OK);
    uint8_t id[PEMN_KEYID_BYTES];
    pemn_key_id(&f->k.pub_pk, id);
    assert_int_equal(pemn_root_revoke(r2, id), PEMN_OK);
    assert_int_equal(pemn_root_add_publisher(r2, &f->k.pub2_pk, "net"), PEMN_OK);
    const struct pemn_seckey *s1[] = {&f->k.root1};
    char *t2 = evil_root_text(r2, s1, 1, NULL);
    evil_serve_root(f->srv, 2, t2, 1);
    pemn_agent *a = open_agent(f, &o, &e);
    /* the thief signs a newer release with the leaked key */
    offer(f, &f->b, ++f->mver, &f->k.meta);
    refused(f, a, "signer-revoked");
    running(a, &f->a); /* what was installed under v1 keeps running */
    pemn_agent_free(a);
    /* also after a restart (recovery does not drop it), and the root is v2 on disk */
    a = open_agent(f, &o, &e);
    running(a, &f->a);
    refused(f, a, "signer-revoked");
    /* the new publisher's release installs */
    struct pkgv p2;
    make(&p2, &f->k.pub2, "net", "4.0", 4, 4);
    offer(f, &p2, ++f->mver, &f->k.meta);
    accepted(a);
    running(a, &p2);
    pemn_agent_free(a);
    size_t sl;
    char p[400];
    snprintf(p, sizeof p, "%s/root.json", f->agent_dir);
    char *stored = (char *)pkgfix_read(p, &sl);
    assert_non_null(stored);
    assert_int_equal(sl, strlen(t2));
    assert_memory_equal(stored, t2, sl);
    free(stored);
    pemn_root_free(r);
    pemn_root_free(r2);
    free(t2);
    free(p2.data);
}

static void test_root_chain_attacks(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    pemn_root *r1 = NULL;
    assert_int_equal(pemn_root_parse(f->root1, strlen(f->root1), &r1, &e), PEMN_OK);
    /* v2 rotates everything to root2 / meta2; signed only by its own new key: under-signed */
    pemn_root *r2 = NULL;
    assert_int_equal(pemn_root_next(r1, &r2), PEMN_OK);
    assert_int_equal(pemn_root_add_key(r2, &f->k.root2_pk), PEMN_OK);
    uint8_t id[PEMN_KEYID_BYTES];
    pemn_key_id(&f->k.root1_pk, id);
    assert_int_equal(pemn_root_remove_key(r2, id), PEMN_OK);
    assert_int_equal(pemn_root_add_metadata_key(r2, &f->k.meta2_pk), PEMN_OK);
    pemn_key_id(&f->k.meta_pk, id);
    assert_int_equal(pemn_root_remove_metadata_key(r2, id), PEMN_OK);
    const struct pemn_seckey *only_new[] = {&f->k.root2};
    char *bad2 = evil_root_text(r2, only_new, 1, NULL);
    evil_serve_root(f->srv, 2, bad2, 1);
    pemn_agent *a = open_agent(f, &o, &e);
    refused(f, a, "root-invalid");
    running(a, &f->a);
    /* the next cycle refuses again, but does not report the same refusal again */
    fakesrv_reset_stats(f->srv);
    struct pemn_agent_cycle cy;
    assert_int_not_equal(pemn_agent_run_once(a, &cy, &e), PEMN_OK);
    assert_string_equal(cy.reason, "root-invalid");
    struct fakesrv_stats st;
    fakesrv_get_stats(f->srv, &st);
    assert_null(strstr(st.put_log, "root-invalid"));
    /* a missing link: v3 is there, v2 is not; the device stays on v1 and so does not trust
     * meta2 */
    fakesrv_route(f->srv, "GET", "/v1/root/2", 404, "{}", NULL);
    pemn_root *r3 = NULL;
    const struct pemn_seckey *both[] = {&f->k.root1, &f->k.root2};
    char *good2 = evil_root_text(r2, both, 2, NULL);
    pemn_root *p2 = NULL;
    assert_int_equal(pemn_root_parse(good2, strlen(good2), &p2, &e), PEMN_OK);
    assert_int_equal(pemn_root_next(p2, &r3), PEMN_OK);
    char *good3 = evil_root_text(r3, only_new, 1, NULL);
    evil_serve_root(f->srv, 3, good3, 1);
    offer(f, &f->b, 1, &f->k.meta2);
    refused(f, a, "metadata-untrusted");
    running(a, &f->a);
    /* the full chain (v2 signed by the old and the new root key): the device follows it to
     * v3, trusts meta2, and the metadata version floor restarts with the new key */
    evil_serve_root(f->srv, 2, good2, 0);
    accepted(a);
    running(a, &f->b);
    pemn_agent_free(a);
    char p[400];
    snprintf(p, sizeof p, "%s/root.json", f->agent_dir);
    size_t sl;
    char *stored = (char *)pkgfix_read(p, &sl);
    assert_non_null(stored);
    assert_memory_equal(stored, good3, strlen(good3));
    free(stored);
    /* now the old metadata key is worthless on this device */
    a = open_agent(f, &o, &e);
    offer(f, &f->c, 1000, &f->k.meta);
    refused(f, a, "metadata-untrusted");
    running(a, &f->b);
    pemn_agent_free(a);
    pemn_root_free(r1);
    pemn_root_free(r2);
    pemn_root_free(r3);
    pemn_root_free(p2);
    free(bad2);
    free(good2);
    free(good3);
}

static void test_root_threshold_and_expiry(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    pemn_root *r1 = NULL;
    assert_int_equal(pemn_root_parse(f->root1, strlen(f->root1), &r1, &e), PEMN_OK);
    /* v2: two root keys, threshold 2 (signed by both: valid) */
    pemn_root *r2 = NULL;
    assert_int_equal(pemn_root_next(r1, &r2), PEMN_OK);
    assert_int_equal(pemn_root_add_key(r2, &f->k.root2_pk), PEMN_OK);
    assert_int_equal(pemn_root_set_threshold(r2, 2), PEMN_OK);
    const struct pemn_seckey *both[] = {&f->k.root1, &f->k.root2};
    char *t2 = evil_root_text(r2, both, 2, NULL);
    evil_serve_root(f->srv, 2, t2, 0);
    /* v3 signed by only one of v2's two keys: under the previous threshold */
    pemn_root *p2 = NULL;
    assert_int_equal(pemn_root_parse(t2, strlen(t2), &p2, &e), PEMN_OK);
    pemn_root *r3 = NULL;
    assert_int_equal(pemn_root_next(p2, &r3), PEMN_OK);
    assert_int_equal(pemn_root_set_threshold(r3, 1), PEMN_OK);
    const struct pemn_seckey *one[] = {&f->k.root1};
    char *t3 = evil_root_text(r3, one, 1, NULL);
    evil_serve_root(f->srv, 3, t3, 1);
    pemn_agent *a = open_agent(f, &o, &e);
    refused(f, a, "root-invalid");
    running(a, &f->a);
    /* v3 expired (but validly signed): the device moves to it and stops installing */
    pemn_root *r3b = NULL;
    assert_int_equal(pemn_root_next(p2, &r3b), PEMN_OK);
    assert_int_equal(pemn_root_set_expires(r3b, now_s() - 10), PEMN_OK);
    char *t3b = evil_root_text(r3b, both, 2, NULL);
    evil_serve_root(f->srv, 3, t3b, 1);
    offer(f, &f->b, ++f->mver, &f->k.meta);
    refused(f, a, "root-expired");
    running(a, &f->a);
    pemn_agent_free(a);
    pemn_root_free(r1);
    pemn_root_free(r2);
    pemn_root_free(p2);
    pemn_root_free(r3);
    pemn_root_free(r3b);
    free(t2);
    free(t3);
    free(t3b);
}

/* The online metadata key is stolen. What it can do: freeze the device within the expiry,
 * fast-forward the metadata version (a denial of service until the root rotates the key).
 * What it cannot: install a package no allowed publisher signed, roll a release back,
 * switch the model. */
static void test_compromised_metadata_key(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e;
    pemn_agent *a = open_agent(f, &o, &e);
    struct pkgv evil, other;
    make(&evil, &f->k.attacker, "net", "6.6", 66, 66);
    make(&other, &f->k.pub, "other", "1.0", 50, 50);
    offer(f, &evil, ++f->mver, &f->k.meta);
    refused(f, a, "signer-untrusted");
    offer(f, &other, ++f->mver, &f->k.meta);
    refused(f, a, "wrong-model");
    offer(f, &f->b, ++f->mver, &f->k.meta);
    accepted(a);
    offer(f, &f->a, ++f->mver, &f->k.meta);
    refused(f, a, "rollback-refused");
    running(a, &f->b);
    /* fast-forward: a version far in the future (accepted: the key is trusted), then the
     * real registry's next answer is refused as a replay... */
    offer(f, &f->b, 1000000000, &f->k.meta);
    accepted(a);
    offer(f, &f->c, ++f->mver, &f->k.meta);
    refused(f, a, "metadata-replayed");
    running(a, &f->b);
    /* ...until the root rotates the metadata key: the floor restarts under meta2 */
    pemn_root *r1 = NULL, *r2 = NULL;
    assert_int_equal(pemn_root_parse(f->root1, strlen(f->root1), &r1, &e), PEMN_OK);
    assert_int_equal(pemn_root_next(r1, &r2), PEMN_OK);
    uint8_t id[PEMN_KEYID_BYTES];
    pemn_key_id(&f->k.meta_pk, id);
    assert_int_equal(pemn_root_revoke(r2, id), PEMN_OK);
    assert_int_equal(pemn_root_add_metadata_key(r2, &f->k.meta2_pk), PEMN_OK);
    const struct pemn_seckey *s1[] = {&f->k.root1};
    char *t2 = evil_root_text(r2, s1, 1, NULL);
    evil_serve_root(f->srv, 2, t2, 1);
    offer(f, &f->c, 1, &f->k.meta2);
    accepted(a);
    running(a, &f->c);
    /* and the stolen key is now refused */
    offer(f, &f->c, 2000000000, &f->k.meta);
    refused(f, a, "metadata-untrusted");
    pemn_agent_free(a);
    pemn_root_free(r1);
    pemn_root_free(r2);
    free(t2);
    free(evil.data);
    free(other.data);
}

/* ---- the record on disk --------------------------------------------------------------------- */

static void test_record_files(void **state)
{
    struct fx *f = *state;
    struct pemn_agent_opts o;
    struct pemn_err e = {0};
    char p[400], tmp[400], victim[400];
    /* a planted symlink at the temporary name is replaced, never followed */
    snprintf(victim, sizeof victim, "%s/victim", f->dir);
    assert_int_equal(pkgfix_write(victim, "keep", 4), 0);
    snprintf(tmp, sizeof tmp, "%s/trust.json.tmp", f->agent_dir);
    assert_int_equal(symlink(victim, tmp), 0);
    pemn_agent *a = open_agent(f, &o, &e);
    pemn_agent_free(a);
    size_t vl;
    char *v = (char *)pkgfix_read(victim, &vl);
    assert_int_equal(vl, 4);
    assert_memory_equal(v, "keep", 4);
    free(v);
    /* a damaged record stops the agent rather than reset rollback protection */
    snprintf(p, sizeof p, "%s/trust.json", f->agent_dir);
    const char *damaged = "{\"format\":1,\"metadata_version\":\"x\"}";
    assert_int_equal(pkgfix_write(p, damaged, strlen(damaged)), 0);
    pemn_agent_opts_init(&o);
    o.dir = f->agent_dir;
    o.root_file = f->root_file;
    o.model = "net";
    pemn_agent *bad = NULL;
    assert_int_equal(pemn_agent_new(&o, &bad, &e), PEMN_ECORRUPT);
    assert_null(bad);
    assert_non_null(strstr(e.msg, "trust.json"));
    /* so does a root.json older than the record (replaced behind the agent's back) */
    const char *ahead = "{\"format\":1,\"root_version\":5,\"releases\":{\"net\":1}}";
    assert_int_equal(pkgfix_write(p, ahead, strlen(ahead)), 0);
    assert_int_equal(pemn_agent_new(&o, &bad, &e), PEMN_EROLLBACK);
    /* and a root.json that is not a root */
    snprintf(p, sizeof p, "%s/root.json", f->agent_dir);
    assert_int_equal(pkgfix_write(p, "{}", 2), 0);
    assert_int_not_equal(pemn_agent_new(&o, &bad, &e), PEMN_OK);
}

/* Simple mode (--trust, no root): the model is pinned by the first install and the release
 * record survives a restart with other keys. */
static void test_simple_mode(void **state)
{
    struct fx *f = *state;
    struct pemn_err e = {0};
    char dir[400];
    snprintf(dir, sizeof dir, "%s/simple", f->dir);
    pemn_keyring *k1 = NULL, *k2 = NULL;
    assert_int_equal(pemn_keyring_new(&k1), PEMN_OK);
    assert_int_equal(pemn_keyring_add(k1, &f->k.pub_pk), PEMN_OK);
    assert_int_equal(pemn_keyring_new(&k2), PEMN_OK);
    assert_int_equal(pemn_keyring_add(k2, &f->k.pub2_pk), PEMN_OK);
    struct pemn_agent_opts o;
    pemn_agent_opts_init(&o);
    o.dir = dir;
    o.trusted = k1;
    o.server = fakesrv_url(f->srv);
    o.fleet = FLEET;
    o.device = DEVICE;
    o.timeout_ms = 1500;
    pemn_agent *a = NULL;
    assert_int_equal(pemn_agent_new(&o, &a, &e), PEMN_OK);
    offer(f, &f->b, 1, NULL); /* an unsigned answer is fine in simple mode */
    accepted(a);
    running(a, &f->b);
    /* pinned: another model (signed by a trusted key) is refused */
    struct pkgv other;
    make(&other, &f->k.pub, "other", "1.0", 50, 50);
    offer(f, &other, 2, NULL);
    refused(f, a, "wrong-model");
    running(a, &f->b);
    pemn_agent_free(a);
    /* new keys: the old release is still refused, the pin still holds */
    o.trusted = k2;
    assert_int_equal(pemn_agent_new(&o, &a, &e), PEMN_OK);
    struct pkgv old2;
    make(&old2, &f->k.pub2, "net", "1.5", 1, 15);
    offer(f, &old2, 3, NULL);
    refused(f, a, "rollback-refused");
    struct pkgv other2;
    make(&other2, &f->k.pub2, "other", "1.0", 60, 60);
    offer(f, &other2, 4, NULL);
    refused(f, a, "wrong-model");
    pemn_agent_free(a);
    /* --model is the operator's explicit choice and re-pins */
    o.model = "other";
    assert_int_equal(pemn_agent_new(&o, &a, &e), PEMN_OK);
    accepted(a);
    running(a, &other2);
    pemn_agent_free(a);
    pemn_keyring_free(k1);
    pemn_keyring_free(k2);
    free(other.data);
    free(old2.data);
    free(other2.data);
}

/* ---- pemn pull against the same registry ---------------------------------------------------- */

static void serve_version(fakesrv *s, const struct pkgv *p, const char *model, uint64_t release,
                          uint64_t size)
{
    char body[1024], path[256];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"version\":\"%s\",\"release\":%llu,\"digest\":\"%s\","
             "\"size\":%llu,\"package_url\":\"/v1/blobs/%s\"}",
             model, p->version, (unsigned long long)release, p->digest, (unsigned long long)size,
             p->digest);
    snprintf(path, sizeof path, "/v1/models/%s/versions/%s", model, p->version);
    fakesrv_route(s, "GET", path, 200, body, NULL);
    evil_serve_pkg(s, p->data, p->len, p->digest);
}

static void test_pull_attacks(void **state)
{
    struct fx *f = *state;
    struct pemn_err e = {0};
    pemn_keyring *kr = NULL;
    assert_int_equal(pemn_keyring_new(&kr), PEMN_OK);
    assert_int_equal(pemn_keyring_add(kr, &f->k.pub_pk), PEMN_OK);
    struct pemn_client_options co;
    pemn_client_options_init(&co);
    co.trusted = kr;
    co.stall_timeout_ms = 800;
    co.max_attempts = 2;
    co.deadline_ms = 6000;
    co.max_package_size = 64 * 1024;
    pemn_client *c = NULL;
    assert_int_equal(pemn_client_new(fakesrv_url(f->srv), &co, &c, &e), PEMN_OK);
    char dest[400];
    snprintf(dest, sizeof dest, "%s/pulled.pemn", f->dir);
    struct pemn_fetch_options fo = {.flags = PEMN_FETCH_NO_CACHE};
    /* arbitrary package */
    struct pkgv evil;
    make(&evil, &f->k.attacker, "net", "6.6", 66, 66);
    serve_version(f->srv, &evil, "net", 66, evil.len);
    assert_int_equal(pemn_client_pull(c, "net", "6.6", NULL, dest, &fo, NULL, NULL, &e),
                     PEMN_EUNTRUSTED);
    assert_int_not_equal(access(dest, F_OK), 0);
    /* wrong model: asked for "vision", served a (trusted) "net" */
    struct pkgv b = f->b;
    b.version = "2.0";
    serve_version(f->srv, &b, "vision", 2, b.len);
    assert_int_not_equal(pemn_client_pull(c, "vision", "2.0", NULL, dest, &fo, NULL, NULL, &e),
                         PEMN_OK);
    assert_int_not_equal(access(dest, F_OK), 0);
    /* rollback: a release below --min-release */
    serve_version(f->srv, &f->a, "net", 1, f->a.len);
    fo.min_release = 2;
    assert_int_equal(pemn_client_pull(c, "net", "1.0", NULL, dest, &fo, NULL, NULL, &e),
                     PEMN_EROLLBACK);
    fo.min_release = 0;
    /* malicious mirror: one byte flipped */
    serve_version(f->srv, &f->b, "net", 2, f->b.len);
    fakesrv_flip(f->srv, 40);
    assert_int_not_equal(pemn_client_pull(c, "net", "2.0", NULL, dest, &fo, NULL, NULL, &e),
                         PEMN_OK);
    fakesrv_flip(f->srv, -1);
    assert_int_not_equal(access(dest, F_OK), 0);
    /* endless data: a size over the client's bound */
    serve_version(f->srv, &f->b, "net", 2, 1u << 30);
    assert_int_equal(pemn_client_pull(c, "net", "2.0", NULL, dest, &fo, NULL, NULL, &e),
                     PEMN_ETOOBIG);
    /* slow retrieval: bounded by the stall timeout and the deadline */
    serve_version(f->srv, &f->b, "net", 2, f->b.len);
    fakesrv_stall(f->srv, 8, 5000);
    time_t t0 = time(NULL);
    pemn_rc rc = pemn_client_pull(c, "net", "2.0", NULL, dest, &fo, NULL, NULL, &e);
    assert_true(time(NULL) - t0 < 20);
    /* given up and resumed within the bounds: whole and verified, or nothing */
    assert_int_equal(access(dest, F_OK) == 0, rc == PEMN_OK);
    unlink(dest);
    /* and the honest answer works */
    fakesrv_stall(f->srv, 0, 0);
    assert_int_equal(pemn_client_pull(c, "net", "2.0", NULL, dest, &fo, NULL, NULL, &e), PEMN_OK);
    pemn_client_free(c);
    pemn_keyring_free(kr);
    free(evil.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unsigned_or_foreign_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_device_or_fleet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_freeze, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_arbitrary_package, setup, teardown),
        cmocka_unit_test_setup_teardown(test_endless_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malicious_mirror, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_retrieval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_publisher, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_chain_attacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_threshold_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compromised_metadata_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simple_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_attacks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
