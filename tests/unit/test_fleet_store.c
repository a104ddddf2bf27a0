/* Unit tests: storage/ fleets, devices and rollouts (storage/store_fleet.h) — target
 * changes and rollout ids, previous targets, state transitions, device registration and
 * moves, reports and counts, concurrent polling and reporting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store_fleet.h"
#include "tests/common/storefix.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct store *open_store(void)
{
    struct store *st = NULL;
    struct pemn_err e;
    pemn_rc rc = store_open(storefix_db, NULL, &st, &e);
    if (rc)
        fail_msg("store_open: %s", e.msg);
    return st;
}

static struct store_fleet_target target(const char *version, uint64_t release, char fill)
{
    struct store_fleet_target t;
    memset(&t, 0, sizeof t);
    snprintf(t.model, sizeof t.model, "net");
    snprintf(t.version, sizeof t.version, "%s", version);
    t.release = release;
    memcpy(t.digest, "sha256:", 7);
    memset(t.digest + 7, fill, 64);
    t.digest[71] = 0;
    t.size = 1000 + release;
    return t;
}

static void test_put_and_rollouts(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct store_fleet f, g;
    struct pemn_err e;
    bool started = false;
    struct store_fleet_target t1 = target("1.0.0", 1, 'a'), t2 = target("2.0.0", 2, 'b');
    assert_int_equal(store_fleet_get(st, "edge", &f, &e), PEMN_ENOTFOUND);
    assert_int_equal(
        store_fleet_put(st, "edge", &t1, 2000, 1000, 20, "r1", "alice", &started, &f, &e), PEMN_OK);
    assert_true(started);
    assert_string_equal(f.name, "edge");
    assert_string_equal(f.target.version, "1.0.0");
    assert_string_equal(f.target.digest, t1.digest);
    assert_int_equal(f.target.size, 1001);
    assert_false(f.has_previous);
    assert_string_equal(f.rollout_id, "r1");
    assert_int_equal(f.percent_bp, 2000);
    assert_int_equal(f.abort_failure_bp, 1000);
    assert_int_equal(f.abort_min_devices, 20);
    assert_int_equal(f.state, STORE_ROLLOUT_ACTIVE);
    assert_true(f.rollout_started > 0);

    /* same package: same rollout, new percentage */
    assert_int_equal(
        store_fleet_put(st, "edge", &t1, 5000, 0, 0, "r-unused", "alice", &started, &f, &e),
        PEMN_OK);
    assert_false(started);
    assert_string_equal(f.rollout_id, "r1");
    assert_int_equal(f.percent_bp, 5000);
    assert_int_equal(f.abort_failure_bp, 0);

    /* new package: new rollout, the old target is the fallback */
    assert_int_equal(store_fleet_put(st, "edge", &t2, 1000, 0, 0, "r2", "alice", &started, &f, &e),
                     PEMN_OK);
    assert_true(started);
    assert_string_equal(f.rollout_id, "r2");
    assert_true(f.has_previous);
    assert_string_equal(f.previous.digest, t1.digest);
    assert_string_equal(f.previous.version, "1.0.0");
    assert_int_equal(f.previous.release, 1);
    assert_int_equal(store_fleet_get(st, "edge", &g, &e), PEMN_OK);
    assert_memory_equal(&f, &g, sizeof f);
    store_close(st);

    /* it is all still there after reopening */
    st = open_store();
    assert_int_equal(store_fleet_get(st, "edge", &g, &e), PEMN_OK);
    assert_string_equal(g.rollout_id, "r2");
    assert_string_equal(g.previous.digest, t1.digest);
    store_close(st);
}

static void test_state_transitions(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct store_fleet f;
    struct pemn_err e;
    bool changed, started;
    struct store_fleet_target t1 = target("1.0.0", 1, 'a'), t2 = target("2.0.0", 2, 'b'),
                              t3 = target("3.0.0", 3, 'c');
    assert_int_equal(
        store_fleet_set_state(st, "nope", STORE_ROLLOUT_PAUSED, "x", NULL, "a", &changed, &f, &e),
        PEMN_ENOTFOUND);
    assert_int_equal(store_fleet_put(st, "f", &t1, 10000, 0, 0, "r1", "a", NULL, NULL, &e),
                     PEMN_OK);
    assert_int_equal(store_fleet_put(st, "f", &t2, 2000, 0, 0, "r2", "a", NULL, NULL, &e), PEMN_OK);
    assert_int_equal(store_fleet_set_state(st, "f", STORE_ROLLOUT_PAUSED, "by hand", NULL, "a",
                                           &changed, &f, &e),
                     PEMN_OK);
    assert_true(changed);
    assert_int_equal(f.state, STORE_ROLLOUT_PAUSED);
    assert_string_equal(f.state_reason, "by hand");
    assert_int_equal(
        store_fleet_set_state(st, "f", STORE_ROLLOUT_PAUSED, "again", NULL, "a", &changed, &f, &e),
        PEMN_OK);
    assert_false(changed);
    assert_string_equal(f.state_reason, "by hand");
    assert_int_equal(store_fleet_set_state(st, "f", STORE_ROLLOUT_ACTIVE, "resumed", NULL, "a",
                                           &changed, &f, &e),
                     PEMN_OK);
    assert_true(changed);
    assert_int_equal(f.state, STORE_ROLLOUT_ACTIVE);
    /* a late abort for an older rollout does not touch the current one */
    assert_int_equal(
        store_fleet_set_state(st, "f", STORE_ROLLOUT_ABORTED, "late", "r1", "a", &changed, &f, &e),
        PEMN_ECONFLICT);
    assert_int_equal(store_fleet_set_state(st, "f", STORE_ROLLOUT_ABORTED, "too many failures",
                                           "r2", "a", &changed, &f, &e),
                     PEMN_OK);
    assert_int_equal(f.state, STORE_ROLLOUT_ABORTED);
    assert_int_equal(store_fleet_set_state(st, "f", STORE_ROLLOUT_ABORTED, "second", NULL, "a",
                                           &changed, &f, &e),
                     PEMN_OK);
    assert_false(changed);
    assert_string_equal(f.state_reason, "too many failures");
    assert_int_equal(
        store_fleet_set_state(st, "f", STORE_ROLLOUT_ACTIVE, "resume", NULL, "a", &changed, &f, &e),
        PEMN_ECONFLICT);
    assert_non_null(strstr(e.msg, "aborted"));
    assert_int_equal(
        store_fleet_set_state(st, "f", STORE_ROLLOUT_PAUSED, "p", NULL, "a", &changed, &f, &e),
        PEMN_ECONFLICT);
    /* a new target after an abort: the aborted target never becomes the fallback */
    assert_int_equal(store_fleet_put(st, "f", &t3, 1000, 0, 0, "r3", "a", &started, &f, &e),
                     PEMN_OK);
    assert_true(started);
    assert_int_equal(f.state, STORE_ROLLOUT_ACTIVE);
    assert_string_equal(f.previous.digest, t1.digest);
    /* re-putting the aborted package starts it afresh */
    assert_int_equal(
        store_fleet_set_state(st, "f", STORE_ROLLOUT_ABORTED, "x", NULL, "a", &changed, &f, &e),
        PEMN_OK);
    assert_int_equal(store_fleet_put(st, "f", &t3, 1000, 0, 0, "r4", "a", &started, &f, &e),
                     PEMN_OK);
    assert_true(started);
    assert_string_equal(f.rollout_id, "r4");
    assert_string_equal(f.previous.digest, t1.digest);
    /* back to the fallback's own package: no fallback left */
    assert_int_equal(store_fleet_put(st, "f", &t1, 10000, 0, 0, "r5", "a", &started, &f, &e),
                     PEMN_OK);
    assert_true(f.has_previous);
    assert_string_equal(f.previous.digest, t3.digest);
    store_close(st);
}

struct counts {
    char lines[16][160];
    int n;
};
static int count_cb(void *ctx, const char *what, const char *key, uint64_t n)
{
    struct counts *c = ctx;
    if (c->n < 16)
        snprintf(c->lines[c->n++], sizeof c->lines[0], "%s:%s=%llu", what, key,
                 (unsigned long long)n);
    return 0;
}
static bool has_line(const struct counts *c, const char *line)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->lines[i], line))
            return true;
    return false;
}

static void test_devices(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct store_fleet f;
    struct store_device d, d2;
    struct pemn_err e;
    struct store_fleet_target t1 = target("1.0.0", 1, 'a'), t2 = target("2.0.0", 2, 'b');
    assert_int_equal(store_device_poll(st, "nope", "dev1", 60, &f, &d, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_fleet_put(st, "a", &t1, 10000, 0, 0, "ra", "x", NULL, NULL, &e),
                     PEMN_OK);
    assert_int_equal(store_fleet_put(st, "b", &t2, 10000, 0, 0, "rb", "x", NULL, NULL, &e),
                     PEMN_OK);
    assert_int_equal(store_device_get(st, "a", "dev1", &d, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_device_poll(st, "a", "dev1", 60, &f, &d, &e), PEMN_OK);
    assert_string_equal(f.name, "a");
    assert_string_equal(d.id, "dev1");
    assert_string_equal(d.fleet, "a");
    assert_string_equal(d.state, "");
    assert_true(d.first_seen > 0);
    assert_int_equal(d.reported, 0);
    assert_int_equal(store_device_poll(st, "a", "dev1", 60, &f, &d2, &e), PEMN_OK);
    assert_int_equal(d2.first_seen, d.first_seen);

    /* a report */
    struct store_device r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "dev1");
    snprintf(r.state, sizeof r.state, "installed");
    snprintf(r.version, sizeof r.version, "1.0.0");
    r.release = 1;
    snprintf(r.digest, sizeof r.digest, "%s", t1.digest);
    uint64_t reporting = 9, failed = 9;
    assert_int_equal(store_device_report(st, "a", &r, "ra", &reporting, &failed, &e), PEMN_OK);
    assert_int_equal(reporting, 1);
    assert_int_equal(failed, 0);
    assert_int_equal(store_device_get(st, "a", "dev1", &d, &e), PEMN_OK);
    assert_string_equal(d.state, "installed");
    assert_string_equal(d.version, "1.0.0");
    assert_int_equal(d.release, 1);
    assert_string_equal(d.report_rollout, "ra");
    assert_true(d.reported > 0);

    /* the device shows up in fleet b: it moves, its report is cleared */
    assert_int_equal(store_device_poll(st, "b", "dev1", 60, &f, &d, &e), PEMN_OK);
    assert_string_equal(d.fleet, "b");
    assert_string_equal(d.state, "");
    assert_string_equal(d.report_rollout, "");
    assert_int_equal(store_device_get(st, "a", "dev1", &d, &e), PEMN_ENOTFOUND);
    /* a report for an unknown fleet */
    assert_int_equal(store_device_report(st, "zzz", &r, NULL, &reporting, &failed, &e),
                     PEMN_ENOTFOUND);

    /* counts: 10 devices in a; 6 report on the rollout (2 failed, 3 installed, 1
     * downloading), 2 report outside it, 2 never report */
    for (int i = 0; i < 10; i++) {
        snprintf(r.id, sizeof r.id, "n%d", i);
        assert_int_equal(store_device_poll(st, "a", r.id, 60, &f, &d, &e), PEMN_OK);
        const char *states[] = {"failed",    "failed",      "installed", "installed",
                                "installed", "downloading", "installed", "installed"};
        if (i >= 8)
            continue;
        snprintf(r.state, sizeof r.state, "%s", states[i]);
        snprintf(r.reason, sizeof r.reason, "%s", i < 2 ? "bad-signature" : "");
        snprintf(r.version, sizeof r.version, "%s", i < 6 ? "0.9.0" : "1.0.0");
        assert_int_equal(
            store_device_report(st, "a", &r, i < 6 ? "ra" : NULL, &reporting, &failed, &e),
            PEMN_OK);
    }
    assert_int_equal(reporting, 0); /* the last report counted for nothing */
    struct store_fleet_counts fc;
    struct counts cs = {.n = 0};
    assert_int_equal(store_fleet_counts(st, "a", &fc, count_cb, &cs, &e), PEMN_OK);
    assert_int_equal(fc.devices, 10);
    assert_int_equal(fc.reporting, 6);
    assert_int_equal(fc.failed, 2);
    assert_int_equal(fc.installed, 3);
    assert_int_equal(fc.in_progress, 1);
    assert_true(has_line(&cs, "state:failed=2"));
    assert_true(has_line(&cs, "state:installed=5"));
    assert_true(has_line(&cs, "state:downloading=1"));
    assert_true(has_line(&cs, "state:=2"));
    assert_true(has_line(&cs, "version:0.9.0=6"));
    assert_true(has_line(&cs, "version:1.0.0=2"));
    assert_true(has_line(&cs, "version:=2"));
    assert_int_equal(store_fleet_counts(st, "zzz", &fc, count_cb, &cs, &e), PEMN_ENOTFOUND);
    /* the failed count comes back with a report on the rollout */
    snprintf(r.id, sizeof r.id, "n9");
    snprintf(r.state, sizeof r.state, "failed");
    assert_int_equal(store_device_report(st, "a", &r, "ra", &reporting, &failed, &e), PEMN_OK);
    assert_int_equal(reporting, 7);
    assert_int_equal(failed, 3);
    store_close(st);
}

static int list_cb(void *ctx, const struct store_fleet *f)
{
    char *names = ctx;
    strcat(names, f->name);
    strcat(names, ",");
    return 0;
}

static void test_list(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    struct store_fleet_target t1 = target("1.0.0", 1, 'a');
    char names[256] = "";
    assert_int_equal(store_fleet_list(st, list_cb, names, &e), PEMN_OK);
    assert_string_equal(names, "");
    assert_int_equal(store_fleet_put(st, "zeta", &t1, 100, 0, 0, "r", "x", NULL, NULL, &e), 0);
    assert_int_equal(store_fleet_put(st, "alpha", &t1, 100, 0, 0, "r", "x", NULL, NULL, &e), 0);
    assert_int_equal(store_fleet_list(st, list_cb, names, &e), PEMN_OK);
    assert_string_equal(names, "alpha,zeta,");
    store_close(st);
}

struct worker {
    struct store *st;
    int id;
    int errors;
};
static void *worker_main(void *p)
{
    struct worker *w = p;
    for (int i = 0; i < 150; i++) {
        char dev[32];
        snprintf(dev, sizeof dev, "w%d-d%d", w->id, i % 50);
        struct store_fleet f;
        struct store_device d;
        struct pemn_err e;
        if (store_device_poll(w->st, "f", dev, 0, &f, &d, &e))
            w->errors++;
        struct store_device r;
        memset(&r, 0, sizeof r);
        snprintf(r.id, sizeof r.id, "%s", dev);
        snprintf(r.state, sizeof r.state, "%s", i % 7 ? "installed" : "failed");
        uint64_t rep, fl;
        if (i % 3 == 0 && store_device_report(w->st, "f", &r, f.rollout_id, &rep, &fl, &e))
            w->errors++;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    struct store_fleet_target t1 = target("1.0.0", 1, 'a');
    assert_int_equal(store_fleet_put(st, "f", &t1, 10000, 0, 0, "r", "x", NULL, NULL, &e), 0);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.st = st, .id = i};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].errors, 0);
    }
    struct store_fleet_counts fc;
    assert_int_equal(store_fleet_counts(st, "f", &fc, NULL, NULL, &e), PEMN_OK);
    assert_int_equal(fc.devices, 200);
    assert_int_equal(fc.reporting, 200);
    store_close(st);
}

/* ---- fleets that follow a tag (store_tag_set), bound tokens, report messages ------------- */

/* Stores a small package net/<version> and returns its version row. */
static struct store_version push_version(struct store *st, const char *version, uint64_t release)
{
    uint8_t b[64];
    for (size_t i = 0; i < sizeof b; i++)
        b[i] = (uint8_t)(i * 31 + release * 7);
    struct store_version m, out;
    memset(&m, 0, sizeof m);
    snprintf(m.model, sizeof m.model, "net");
    snprintf(m.version, sizeof m.version, "%s", version);
    snprintf(m.strategy, sizeof m.strategy, "rp");
    snprintf(m.signer, sizeof m.signer, "0123456789abcdef");
    m.release = release;
    m.size = sizeof b;
    m.created = 1700000000;
    m.density = 0.5;
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(b, sizeof b, d);
    pemn_digest_format(d, m.digest);
    bool created = false;
    struct pemn_err e;
    if (store_put_package(st, &m, b, sizeof b, "test", &created, &out, &e))
        fail_msg("push %s: %s", version, e.msg);
    return out;
}

static struct store_fleet_target from_version(const struct store_version *v, const char *tag)
{
    struct store_fleet_target t;
    memset(&t, 0, sizeof t);
    snprintf(t.model, sizeof t.model, "%s", v->model);
    snprintf(t.version, sizeof t.version, "%s", v->version);
    snprintf(t.tag, sizeof t.tag, "%s", tag ? tag : "");
    t.release = v->release;
    memcpy(t.digest, v->digest, sizeof t.digest);
    t.size = v->size;
    return t;
}

struct audit_count {
    int follow;
    char last_target[STORE_LABEL_MAX];
};

static int audit_cb(void *ctx, const struct store_audit *a)
{
    struct audit_count *c = ctx;
    if (!strcmp(a->action, "fleet.follow")) {
        if (!c->follow)
            snprintf(c->last_target, sizeof c->last_target, "%s", a->target);
        c->follow++;
    }
    return 0;
}

static void test_follow_tag(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    struct store_version v1 = push_version(st, "1.0.0", 1), v2 = push_version(st, "2.0.0", 2);
    struct store_version v3 = push_version(st, "3.0.0", 3), got;
    assert_int_equal(store_tag_set(st, "net", "stable", "1.0.0", "alice", &got, &e), PEMN_OK);

    /* "tagged" follows net@stable at 20% with an abort rule; "pinned" is on 1.0.0 by version;
     * "canary" follows another tag */
    struct store_fleet_target ts = from_version(&v1, "stable"), tp = from_version(&v1, NULL);
    struct store_fleet_target tc = from_version(&v1, "canary");
    struct store_fleet f, g;
    assert_int_equal(store_fleet_put(st, "tagged", &ts, 2000, 1500, 7, "r1", "alice", NULL, &f, &e),
                     PEMN_OK);
    assert_int_equal(store_fleet_put(st, "pinned", &tp, 10000, 0, 0, "p1", "alice", NULL, &f, &e),
                     PEMN_OK);
    assert_int_equal(store_fleet_put(st, "canary", &tc, 10000, 0, 0, "c1", "alice", NULL, &f, &e),
                     PEMN_OK);

    /* moving the tag to the version it already names changes nothing */
    unsigned moved = 99;
    assert_int_equal(store_tag_set_follow(st, "net", "stable", "1.0.0", "bob", &got, &moved, &e),
                     PEMN_OK);
    assert_int_equal(moved, 0);
    assert_int_equal(store_fleet_get(st, "tagged", &f, &e), PEMN_OK);
    assert_string_equal(f.rollout_id, "r1");

    /* moving it: a new rollout to 2.0.0 with the fleet's own policy, 1.0.0 the fallback */
    assert_int_equal(store_tag_set_follow(st, "net", "stable", "2.0.0", "bob", &got, &moved, &e),
                     PEMN_OK);
    assert_int_equal(moved, 1);
    assert_string_equal(got.version, "2.0.0");
    assert_int_equal(store_fleet_get(st, "tagged", &f, &e), PEMN_OK);
    assert_string_equal(f.target.version, "2.0.0");
    assert_string_equal(f.target.digest, v2.digest);
    assert_string_equal(f.target.tag, "stable");
    assert_int_equal(f.target.release, 2);
    assert_true(f.has_previous);
    assert_string_equal(f.previous.version, "1.0.0");
    assert_int_equal(strlen(f.rollout_id), 32);
    assert_string_not_equal(f.rollout_id, "r1");
    assert_int_equal(f.percent_bp, 2000);
    assert_int_equal(f.abort_failure_bp, 1500);
    assert_int_equal(f.abort_min_devices, 7);
    assert_int_equal(f.state, STORE_ROLLOUT_ACTIVE);
    /* the fixed-version fleet and the other tag's fleet are untouched */
    assert_int_equal(store_fleet_get(st, "pinned", &g, &e), PEMN_OK);
    assert_string_equal(g.target.version, "1.0.0");
    assert_string_equal(g.rollout_id, "p1");
    assert_int_equal(store_fleet_get(st, "canary", &g, &e), PEMN_OK);
    assert_string_equal(g.rollout_id, "c1");
    struct audit_count ac = {0, ""};
    assert_int_equal(store_audit_list(st, 50, audit_cb, &ac, &e), PEMN_OK);
    assert_int_equal(ac.follow, 1);
    assert_string_equal(ac.last_target, "tagged");

    /* an aborted rollout's target never becomes the fallback on the next move */
    char rid2[STORE_ROLLOUT_ID_MAX];
    snprintf(rid2, sizeof rid2, "%s", f.rollout_id);
    assert_int_equal(store_fleet_set_state(st, "tagged", STORE_ROLLOUT_ABORTED, "bad", NULL,
                                           "alice", NULL, NULL, &e),
                     PEMN_OK);
    assert_int_equal(store_tag_set_follow(st, "net", "stable", "3.0.0", "bob", NULL, &moved, &e),
                     PEMN_OK);
    assert_int_equal(moved, 1);
    assert_int_equal(store_fleet_get(st, "tagged", &f, &e), PEMN_OK);
    assert_string_equal(f.target.digest, v3.digest);
    assert_string_equal(f.previous.version, "1.0.0");
    assert_string_not_equal(f.rollout_id, rid2);
    assert_int_equal(f.state, STORE_ROLLOUT_ACTIVE);

    /* deleting the tag leaves the fleet where it is */
    assert_int_equal(store_tag_delete(st, "net", "stable", "bob", &e), PEMN_OK);
    assert_int_equal(store_fleet_get(st, "tagged", &g, &e), PEMN_OK);
    assert_string_equal(g.target.version, "3.0.0");
    assert_string_equal(g.rollout_id, f.rollout_id);

    /* a failed move (unknown version) moves no fleet */
    assert_int_equal(store_tag_set_follow(st, "net", "stable", "9.9.9", "bob", NULL, &moved, &e),
                     PEMN_ENOTFOUND);
    assert_int_equal(store_fleet_get(st, "tagged", &g, &e), PEMN_OK);
    assert_string_equal(g.rollout_id, f.rollout_id);

    /* re-PUT by version: the fleet stops following the tag */
    assert_int_equal(store_fleet_put(st, "tagged", &tp, 10000, 0, 0, "r9", "alice", NULL, &f, &e),
                     PEMN_OK);
    assert_string_equal(f.target.tag, "");
    assert_int_equal(store_tag_set(st, "net", "stable", "2.0.0", "bob", NULL, &e), PEMN_OK);
    assert_int_equal(store_fleet_get(st, "tagged", &g, &e), PEMN_OK);
    assert_string_equal(g.rollout_id, "r9");
    store_close(st);
}

struct tok_find {
    const char *name;
    struct store_token t;
    bool found;
};

static int tok_cb(void *ctx, const struct store_token *t)
{
    struct tok_find *f = ctx;
    if (!strcmp(t->name, f->name)) {
        f->t = *t;
        f->found = true;
    }
    return 0;
}

static void test_bound_tokens(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    char tok[STORE_TOKEN_TEXT_MAX], nm[STORE_LABEL_MAX], dev[STORE_LABEL_MAX], fl[STORE_LABEL_MAX];
    unsigned scope = 0;
    assert_int_equal(
        store_token_create_bound(st, STORE_SCOPE_DEVICE, "d1", "dev-1", "edge", "cli", tok, nm, &e),
        PEMN_OK);
    assert_int_equal(store_token_check_bound(st, tok, &scope, nm, dev, fl, &e), PEMN_OK);
    assert_int_equal(scope, STORE_SCOPE_DEVICE);
    assert_string_equal(nm, "d1");
    assert_string_equal(dev, "dev-1");
    assert_string_equal(fl, "edge");
    /* the old check still works and sees the same token */
    assert_int_equal(store_token_check(st, tok, &scope, nm, &e), PEMN_OK);
    struct tok_find tf;
    memset(&tf, 0, sizeof tf);
    tf.name = "d1";
    assert_int_equal(store_token_list(st, tok_cb, &tf, &e), PEMN_OK);
    assert_true(tf.found);
    assert_string_equal(tf.t.device, "dev-1");
    assert_string_equal(tf.t.fleet, "edge");

    /* fleet-only binding; unbound tokens have empty bindings */
    assert_int_equal(
        store_token_create_bound(st, STORE_SCOPE_DEVICE, "d2", NULL, "edge", "cli", tok, nm, &e),
        PEMN_OK);
    assert_int_equal(store_token_check_bound(st, tok, &scope, NULL, dev, fl, &e), PEMN_OK);
    assert_string_equal(dev, "");
    assert_string_equal(fl, "edge");
    assert_int_equal(store_token_create(st, STORE_SCOPE_DEVICE, "d3", "cli", tok, nm, &e), PEMN_OK);
    assert_int_equal(store_token_check_bound(st, tok, &scope, NULL, dev, fl, &e), PEMN_OK);
    assert_string_equal(dev, "");
    assert_string_equal(fl, "");

    /* only device tokens can be bound; nothing is stored on refusal */
    assert_int_equal(
        store_token_create_bound(st, STORE_SCOPE_PUBLISH, "p1", "dev-1", NULL, "cli", tok, nm, &e),
        PEMN_EINVAL);
    struct tok_find tp;
    memset(&tp, 0, sizeof tp);
    tp.name = "p1";
    assert_int_equal(store_token_list(st, tok_cb, &tp, &e), PEMN_OK);
    assert_false(tp.found);

    /* a revoked bound token is refused */
    assert_int_equal(
        store_token_create_bound(st, STORE_SCOPE_DEVICE, "d4", "dev-4", NULL, "cli", tok, nm, &e),
        PEMN_OK);
    assert_int_equal(store_token_revoke(st, "d4", "cli", &e), PEMN_OK);
    assert_int_equal(store_token_check_bound(st, tok, &scope, NULL, dev, fl, &e), PEMN_EAUTH);
    assert_true(store_schema_version(st) >= 3); /* bound tokens; later migrations may follow */
    assert_int_equal(store_schema_version(st), store_schema_latest());
    store_close(st);
}

static void test_report_message(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    struct store_fleet_target t1 = target("1.0.0", 1, 'a');
    struct store_fleet f;
    struct store_device d, r;
    uint64_t reporting, failed;
    assert_int_equal(store_fleet_put(st, "edge", &t1, 10000, 0, 0, "r1", "a", NULL, &f, &e),
                     PEMN_OK);
    assert_int_equal(store_device_poll(st, "edge", "dev-1", 30, &f, &d, &e), PEMN_OK);
    assert_string_equal(d.message, "");
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "dev-1");
    snprintf(r.state, sizeof r.state, "failed");
    snprintf(r.reason, sizeof r.reason, "disk-full");
    memset(r.message, 'x', STORE_MESSAGE_MAX - 1); /* the longest message fits whole */
    assert_int_equal(store_device_report(st, "edge", &r, NULL, &reporting, &failed, &e), PEMN_OK);
    assert_int_equal(store_device_get(st, "edge", "dev-1", &d, &e), PEMN_OK);
    assert_int_equal(strlen(d.message), STORE_MESSAGE_MAX - 1);
    /* the latest report wins, and an empty message clears it */
    snprintf(r.message, sizeof r.message, "retrying: /var is 100%% full");
    assert_int_equal(store_device_report(st, "edge", &r, NULL, &reporting, &failed, &e), PEMN_OK);
    assert_int_equal(store_device_get(st, "edge", "dev-1", &d, &e), PEMN_OK);
    assert_string_equal(d.message, "retrying: /var is 100% full");
    r.message[0] = 0;
    assert_int_equal(store_device_report(st, "edge", &r, NULL, &reporting, &failed, &e), PEMN_OK);
    assert_int_equal(store_device_get(st, "edge", "dev-1", &d, &e), PEMN_OK);
    assert_string_equal(d.message, "");
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_and_rollouts, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_state_transitions, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_devices, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_list, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_follow_tag, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_bound_tokens, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_report_message, storefix_setup, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
