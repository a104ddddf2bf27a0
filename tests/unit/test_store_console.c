/* Unit tests: the console's storage (storage/store_console.h), as a contract any backend must
 * meet — report history (kept with each report, bounded per device), rollout progress
 * samples (when due, counts, thinning, the rollouts kept), device listings with filters,
 * failures by reason, the filtered audit log. On SQLite, and on PostgreSQL too when
 * PEMN_TEST_PG_HOST names a throwaway cluster (tests/common/storefix.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store_console.h"
#include "tests/common/storefix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct store *open_store(void)
{
    struct store *st = NULL;
    struct pemn_err e;
    if (store_open(storefix_db, NULL, &st, &e))
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

static void report(struct store *st, const char *fleet, const char *dev, const char *state,
                   const char *reason, const char *version, const char *message,
                   const char *counts_for)
{
    struct store_device r;
    struct pemn_err e;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", dev);
    snprintf(r.state, sizeof r.state, "%s", state);
    snprintf(r.reason, sizeof r.reason, "%s", reason);
    snprintf(r.version, sizeof r.version, "%s", version);
    snprintf(r.message, sizeof r.message, "%s", message);
    r.release = 1;
    memset(r.digest, 0, sizeof r.digest);
    snprintf(r.digest, sizeof r.digest, "sha256:%064d", 0);
    uint64_t rep, fail;
    assert_int_equal(store_device_report(st, fleet, &r, counts_for, &rep, &fail, &e), PEMN_OK);
}

/* ---- report history ------------------------------------------------------------------------ */
struct reports {
    int n;
    struct store_report r[STORE_HISTORY_MAX + 8];
};

static int reports_cb(void *ctx, const struct store_report *x)
{
    struct reports *c = ctx;
    if (c->n < (int)(sizeof c->r / sizeof c->r[0]))
        c->r[c->n++] = *x;
    return 0;
}

static void test_history(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    struct store_fleet_target t = target("1.0.0", 1, 'a');
    assert_int_equal(store_fleet_put(st, "edge", &t, 10000, 0, 0, "r1", "a", NULL, NULL, &e),
                     PEMN_OK);
    assert_int_equal(store_fleet_put(st, "lab", &t, 10000, 0, 0, "r9", "a", NULL, NULL, &e),
                     PEMN_OK);
    struct reports c = {0};
    /* polling registers, but is not a report */
    struct store_fleet f;
    struct store_device d;
    assert_int_equal(store_device_poll(st, "edge", "cam1", 30, &f, &d, &e), PEMN_OK);
    assert_int_equal(store_console_history(st, "cam1", 10, reports_cb, &c, &e), PEMN_OK);
    assert_int_equal(c.n, 0);

    report(st, "edge", "cam1", "downloading", "", "0.9.0", "", "r1");
    report(st, "edge", "cam1", "failed", "disk", "0.9.0", "<b>full</b>", "r1");
    c.n = 0;
    assert_int_equal(store_console_history(st, "cam1", 10, reports_cb, &c, &e), PEMN_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.r[0].state, "failed"); /* newest first */
    assert_string_equal(c.r[0].reason, "disk");
    assert_string_equal(c.r[0].message, "<b>full</b>");
    assert_string_equal(c.r[0].rollout, "r1");
    assert_string_equal(c.r[0].fleet, "edge");
    assert_string_equal(c.r[0].version, "0.9.0");
    assert_int_equal(c.r[0].release, 1);
    assert_true(c.r[0].at > 0 && c.r[0].id > c.r[1].id);
    assert_string_equal(c.r[1].state, "downloading");
    /* limit */
    c.n = 0;
    assert_int_equal(store_console_history(st, "cam1", 1, reports_cb, &c, &e), PEMN_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.r[0].state, "failed");

    /* moving to another fleet keeps the history, each row naming its fleet */
    report(st, "lab", "cam1", "installed", "", "1.0.0", "", NULL);
    c.n = 0;
    assert_int_equal(store_console_history(st, "cam1", 10, reports_cb, &c, &e), PEMN_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.r[0].fleet, "lab");
    assert_string_equal(c.r[0].rollout, "");
    assert_string_equal(c.r[1].fleet, "edge");

    /* bounded: only the newest STORE_HISTORY_MAX */
    for (int i = 0; i < STORE_HISTORY_MAX + 5; i++) {
        char msg[16];
        snprintf(msg, sizeof msg, "n%d", i);
        report(st, "edge", "cam2", "downloading", "", "", msg, NULL);
    }
    c.n = 0;
    assert_int_equal(store_console_history(st, "cam2", 1000, reports_cb, &c, &e), PEMN_OK);
    assert_int_equal(c.n, STORE_HISTORY_MAX);
    char last[16];
    snprintf(last, sizeof last, "n%d", STORE_HISTORY_MAX + 4);
    assert_string_equal(c.r[0].message, last);
    assert_string_equal(c.r[STORE_HISTORY_MAX - 1].message, "n5");
    /* another device's history is untouched */
    c.n = 0;
    assert_int_equal(store_console_history(st, "cam1", 1000, reports_cb, &c, &e), PEMN_OK);
    assert_int_equal(c.n, 3);
    /* the rows are in the backend's own table (on PostgreSQL too, when it runs there) */
    assert_int_equal(storefix_sql("SELECT count(*) FROM device_reports WHERE device = 'cam1'",
                                  "SELECT count(*) FROM device_reports WHERE device = 'cam1'"),
                     3);
    /* unknown device: none */
    c.n = 0;
    assert_int_equal(store_console_history(st, "nobody", 10, reports_cb, &c, &e), PEMN_OK);
    assert_int_equal(c.n, 0);
    store_close(st);
}

/* ---- rollout progress ---------------------------------------------------------------------- */
struct samples {
    int n;
    struct store_progress p[STORE_PROGRESS_MAX + 8];
};

static int samples_cb(void *ctx, const struct store_progress *p)
{
    struct samples *c = ctx;
    if (c->n < (int)(sizeof c->p / sizeof c->p[0]))
        c->p[c->n++] = *p;
    return 0;
}

static void test_progress(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    bool taken = false;
    struct store_fleet_target t1 = target("1.0.0", 1, 'a'), t2 = target("2.0.0", 2, 'b');
    struct samples c = {0};
    assert_int_equal(store_console_progress_sample(st, "nope", false, 1, &taken, &e),
                     PEMN_ENOTFOUND);
    assert_int_equal(store_console_progress(st, "nope", NULL, samples_cb, &c, &e), PEMN_ENOTFOUND);
    assert_int_equal(store_fleet_put(st, "edge", &t1, 5000, 0, 0, "r1", "a", NULL, NULL, &e),
                     PEMN_OK);
    /* the first sample is always due */
    assert_int_equal(store_console_progress_sample(st, "edge", false, 1000, &taken, &e), PEMN_OK);
    assert_true(taken);
    /* counts */
    report(st, "edge", "d1", "installed", "", "1.0.0", "", "r1");
    report(st, "edge", "d2", "failed", "disk", "", "", "r1");
    report(st, "edge", "d3", "downloading", "", "", "", "r1");
    report(st, "edge", "d4", "installed", "", "0.9.0", "", NULL); /* not counted */
    assert_int_equal(store_console_progress_sample(st, "edge", false, 1000, &taken, &e), PEMN_OK);
    assert_false(taken); /* not due yet */
    assert_int_equal(store_console_progress_sample(st, "edge", true, 1000, &taken, &e), PEMN_OK);
    assert_true(taken); /* forced */
    assert_int_equal(store_console_progress(st, "edge", NULL, samples_cb, &c, &e), PEMN_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.p[0].reporting, 0);
    assert_int_equal(c.p[1].devices, 4);
    assert_int_equal(c.p[1].reporting, 3);
    assert_int_equal(c.p[1].installed, 1);
    assert_int_equal(c.p[1].failed, 1);
    assert_int_equal(c.p[1].in_progress, 1);
    assert_int_equal(c.p[1].percent_bp, 5000);
    assert_int_equal(c.p[1].state, STORE_ROLLOUT_ACTIVE);
    assert_string_equal(c.p[1].rollout, "r1");
    assert_true(c.p[1].at >= c.p[0].at);
    /* a state change or a new percentage is due at once */
    assert_int_equal(
        store_fleet_set_state(st, "edge", STORE_ROLLOUT_PAUSED, "x", NULL, "a", NULL, NULL, &e),
        PEMN_OK);
    assert_int_equal(store_console_progress_sample(st, "edge", false, 1000, &taken, &e), PEMN_OK);
    assert_true(taken);
    assert_int_equal(store_fleet_put(st, "edge", &t1, 7000, 0, 0, "unused", "a", NULL, NULL, &e),
                     PEMN_OK);
    assert_int_equal(store_console_progress_sample(st, "edge", false, 1000, &taken, &e), PEMN_OK);
    assert_true(taken);
    c.n = 0;
    assert_int_equal(store_console_progress(st, "edge", "r1", samples_cb, &c, &e), PEMN_OK);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.p[2].state, STORE_ROLLOUT_PAUSED);
    assert_int_equal(c.p[3].percent_bp, 7000);
    /* min_step 0: every call is due; the samples stay bounded, the first one stays */
    for (int i = 0; i < STORE_PROGRESS_MAX + 30; i++)
        assert_int_equal(store_console_progress_sample(st, "edge", false, 0, NULL, &e), PEMN_OK);
    c.n = 0;
    assert_int_equal(store_console_progress(st, "edge", NULL, samples_cb, &c, &e), PEMN_OK);
    assert_true(c.n <= STORE_PROGRESS_MAX);
    assert_true(c.n > STORE_PROGRESS_MAX / 2);
    assert_int_equal(c.p[0].reporting, 0); /* the rollout's first sample */
    for (int i = 1; i < c.n; i++)
        assert_true(c.p[i].at >= c.p[i - 1].at);

    /* a new rollout starts its own samples; the old ones stay readable by id */
    assert_int_equal(store_fleet_put(st, "edge", &t2, 1000, 0, 0, "r2", "a", NULL, NULL, &e),
                     PEMN_OK);
    assert_int_equal(store_console_progress_sample(st, "edge", false, 1000, &taken, &e), PEMN_OK);
    assert_true(taken);
    c.n = 0;
    assert_int_equal(store_console_progress(st, "edge", NULL, samples_cb, &c, &e), PEMN_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.p[0].rollout, "r2");
    assert_int_equal(c.p[0].reporting, 0); /* the reports counted for r1 */
    c.n = 0;
    assert_int_equal(store_console_progress(st, "edge", "r1", samples_cb, &c, &e), PEMN_OK);
    assert_true(c.n > 0);
    /* only the newest STORE_PROGRESS_ROLLOUTS rollouts keep samples */
    for (int i = 0; i < STORE_PROGRESS_ROLLOUTS; i++) {
        char rid[16];
        snprintf(rid, sizeof rid, "rx%d", i);
        struct store_fleet_target t = target("x", (uint64_t)(10 + i), (char)('c' + i));
        assert_int_equal(store_fleet_put(st, "edge", &t, 1000, 0, 0, rid, "a", NULL, NULL, &e),
                         PEMN_OK);
        assert_int_equal(store_console_progress_sample(st, "edge", false, 1000, &taken, &e),
                         PEMN_OK);
        assert_true(taken);
    }
    c.n = 0;
    assert_int_equal(store_console_progress(st, "edge", "r1", samples_cb, &c, &e), PEMN_OK);
    assert_int_equal(c.n, 0);
    c.n = 0;
    assert_int_equal(store_console_progress(st, "edge", "rx0", samples_cb, &c, &e), PEMN_OK);
    assert_int_equal(c.n, 1);
    store_close(st);
}

/* ---- device listings and failures ---------------------------------------------------------- */
struct devs {
    int n;
    struct store_device d[16];
};

static int devs_cb(void *ctx, const struct store_device *d)
{
    struct devs *c = ctx;
    if (c->n < 16)
        c->d[c->n++] = *d;
    return 0;
}

static uint64_t list(struct store *st, const char *state, const char *reason, const char *version,
                     unsigned limit, uint64_t offset, struct devs *c)
{
    struct store_device_query q = {state, reason, version, limit, offset};
    struct pemn_err e;
    uint64_t total = 0;
    c->n = 0;
    assert_int_equal(store_console_devices(st, "edge", &q, &total, devs_cb, c, &e), PEMN_OK);
    return total;
}

struct fails {
    int n;
    char reason[8][32];
    uint64_t devices[8], counted[8];
};

static int fails_cb(void *ctx, const char *reason, uint64_t n, uint64_t counted)
{
    struct fails *c = ctx;
    if (c->n < 8) {
        snprintf(c->reason[c->n], sizeof c->reason[0], "%s", reason);
        c->devices[c->n] = n;
        c->counted[c->n++] = counted;
    }
    return 0;
}

static void test_devices_and_failures(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    struct store_fleet_target t = target("1.0.0", 1, 'a');
    assert_int_equal(store_fleet_put(st, "edge", &t, 10000, 0, 0, "r1", "a", NULL, NULL, &e),
                     PEMN_OK);
    assert_int_equal(store_fleet_put(st, "other", &t, 10000, 0, 0, "r5", "a", NULL, NULL, &e),
                     PEMN_OK);
    struct store_fleet f;
    struct store_device d;
    assert_int_equal(store_device_poll(st, "edge", "new1", 30, &f, &d, &e), PEMN_OK);
    report(st, "edge", "a1", "installed", "", "1.0.0", "", "r1");
    report(st, "edge", "a2", "installed", "", "0.9.0", "", NULL);
    report(st, "edge", "a3", "failed", "disk", "0.9.0", "m", "r1");
    report(st, "edge", "a4", "failed", "disk", "0.9.0", "", NULL);
    report(st, "edge", "a5", "failed", "auth", "", "", "r1");
    report(st, "other", "z1", "failed", "disk", "", "", NULL);
    struct devs c;
    assert_int_equal(list(st, NULL, NULL, NULL, 100, 0, &c), 6);
    assert_int_equal(c.n, 6);
    for (int i = 1; i < c.n; i++)
        assert_true(c.d[i - 1].reported >= c.d[i].reported);
    assert_string_equal(c.d[c.n - 1].id, "new1"); /* never reported: last */
    assert_string_equal(c.d[c.n - 1].fleet, "edge");
    assert_int_equal(list(st, "failed", "", "", 100, 0, &c), 3);
    assert_int_equal(list(st, "failed", "disk", NULL, 100, 0, &c), 2);
    assert_int_equal(list(st, "registered", NULL, NULL, 100, 0, &c), 1);
    assert_string_equal(c.d[0].id, "new1");
    assert_int_equal(list(st, NULL, NULL, "0.9.0", 100, 0, &c), 3);
    assert_int_equal(list(st, NULL, NULL, "none", 100, 0, &c), 2); /* new1, a5 */
    assert_int_equal(list(st, "installed", NULL, "1.0.0", 100, 0, &c), 1);
    assert_string_equal(c.d[0].id, "a1");
    assert_string_equal(c.d[0].report_rollout, "r1");
    /* paging */
    assert_int_equal(list(st, NULL, NULL, NULL, 2, 0, &c), 6);
    assert_int_equal(c.n, 2);
    char first[2][STORE_LABEL_MAX];
    snprintf(first[0], sizeof first[0], "%s", c.d[0].id);
    snprintf(first[1], sizeof first[1], "%s", c.d[1].id);
    assert_int_equal(list(st, NULL, NULL, NULL, 2, 2, &c), 6);
    assert_int_equal(c.n, 2);
    assert_string_not_equal(c.d[0].id, first[0]);
    assert_string_not_equal(c.d[0].id, first[1]);
    assert_int_equal(list(st, NULL, NULL, NULL, 10, 6, &c), 6);
    assert_int_equal(c.n, 0);
    struct store_device_query q = {0};
    uint64_t total;
    q.limit = 5;
    assert_int_equal(store_console_devices(st, "nope", &q, &total, devs_cb, &c, &e),
                     PEMN_ENOTFOUND);

    struct fails fc = {0};
    assert_int_equal(store_console_failures(st, "edge", fails_cb, &fc, &e), PEMN_OK);
    assert_int_equal(fc.n, 2);
    assert_string_equal(fc.reason[0], "disk"); /* most first */
    assert_int_equal(fc.devices[0], 2);
    assert_int_equal(fc.counted[0], 1);
    assert_string_equal(fc.reason[1], "auth");
    assert_int_equal(fc.devices[1], 1);
    assert_int_equal(fc.counted[1], 1);
    /* a new rollout: the failures no longer count for it */
    struct store_fleet_target t2 = target("2.0.0", 2, 'b');
    assert_int_equal(store_fleet_put(st, "edge", &t2, 10000, 0, 0, "r2", "a", NULL, NULL, &e),
                     PEMN_OK);
    fc.n = 0;
    assert_int_equal(store_console_failures(st, "edge", fails_cb, &fc, &e), PEMN_OK);
    assert_int_equal(fc.n, 2);
    assert_int_equal(fc.counted[0] + fc.counted[1], 0);
    assert_int_equal(store_console_failures(st, "nope", fails_cb, &fc, &e), PEMN_ENOTFOUND);
    store_close(st);
}

/* ---- the audit log --------------------------------------------------------------------------- */
struct audits {
    int n;
    int64_t id[64];
    char action[64][32], actor[64][32], target[64][64];
};

static int audit_cb(void *ctx, const struct store_audit *a)
{
    struct audits *c = ctx;
    if (c->n < 64) {
        c->id[c->n] = a->id;
        snprintf(c->action[c->n], sizeof c->action[0], "%s", a->action);
        snprintf(c->actor[c->n], sizeof c->actor[0], "%s", a->actor);
        snprintf(c->target[c->n++], sizeof c->target[0], "%s", a->target);
    }
    return 0;
}

static int audit(struct store *st, const char *action, const char *actor, const char *target,
                 const char *text, int64_t before, unsigned limit, struct audits *c)
{
    struct store_audit_query q = {action, actor, target, text, before, limit};
    struct pemn_err e;
    c->n = 0;
    assert_int_equal(store_console_audit(st, &q, audit_cb, c, &e), PEMN_OK);
    return c->n;
}

static void test_audit(void **state)
{
    (void)state;
    struct store *st = open_store();
    struct pemn_err e;
    struct store_fleet_target t = target("1.0.0", 1, 'a');
    char tok[STORE_TOKEN_TEXT_MAX], name[STORE_LABEL_MAX];
    assert_int_equal(store_fleet_put(st, "edge", &t, 10000, 0, 0, "r1", "alice", NULL, NULL, &e),
                     PEMN_OK);
    assert_int_equal(store_fleet_put(st, "edge-2", &t, 10000, 0, 0, "r2", "bob", NULL, NULL, &e),
                     PEMN_OK);
    assert_int_equal(store_fleet_set_state(st, "edge", STORE_ROLLOUT_PAUSED, "why not", NULL, "bob",
                                           NULL, NULL, &e),
                     PEMN_OK);
    assert_int_equal(store_token_create(st, STORE_SCOPE_READ, "viewer", "root", tok, name, &e),
                     PEMN_OK);
    struct audits c;
    assert_int_equal(audit(st, NULL, NULL, NULL, NULL, 0, 100, &c), 4);
    for (int i = 1; i < c.n; i++)
        assert_true(c.id[i - 1] > c.id[i]); /* newest first */
    assert_string_equal(c.action[0], "token.create");
    assert_int_equal(audit(st, "fleet", NULL, NULL, NULL, 0, 100, &c), 3); /* prefix */
    assert_int_equal(audit(st, "flee", NULL, NULL, NULL, 0, 100, &c), 0);  /* whole words */
    assert_int_equal(audit(st, "fleet.pause", NULL, NULL, NULL, 0, 100, &c), 1);
    assert_string_equal(c.actor[0], "bob");
    assert_int_equal(audit(st, "", "bob", "", "", 0, 100, &c), 2);
    assert_int_equal(audit(st, NULL, NULL, "edge", NULL, 0, 100, &c), 2); /* exact */
    assert_int_equal(audit(st, NULL, NULL, "edge*", NULL, 0, 100, &c), 3);
    assert_int_equal(audit(st, NULL, NULL, "*", NULL, 0, 100, &c), 4);
    assert_int_equal(audit(st, NULL, NULL, NULL, "why not", 0, 100, &c), 1); /* in detail */
    assert_int_equal(audit(st, NULL, NULL, NULL, "%", 0, 100, &c), 2); /* literal: "100.00%" */
    assert_int_equal(audit(st, NULL, NULL, NULL, "_", 0, 100, &c), 0); /* no wildcard */
    assert_int_equal(audit(st, NULL, NULL, NULL, NULL, 0, 2, &c), 2);
    int64_t next = c.id[1];
    assert_int_equal(audit(st, NULL, NULL, NULL, NULL, next, 100, &c), 2);
    assert_true(c.id[0] < next);
    assert_int_equal(audit(st, "fleet", "bob", "edge*", "pause", 0, 100, &c), 1);
    store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_history, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_progress, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_devices_and_failures, storefix_setup,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_audit, storefix_setup, storefix_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
