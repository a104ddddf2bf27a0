/* Unit tests: storage/ races between two store handles (two replicas), interleaved
 * deterministically on every backend (tests/common/storefix.h). Operation A stops at a named
 * point inside its transaction (store_test_hook); operation B then runs on the other handle;
 * B must wait for A (it may not finish while A is stopped), and the outcome must keep the
 * invariant. Each case fails on a naive port that reads, decides and writes without locks:
 *   - two pushes to one model storing releases out of order;
 *   - a tag move racing an abort so that the new rollout is lost;
 *   - a fleet set on a tag racing a move of that tag, leaving the fleet on the old version;
 *   - two failure reports each counting 1 so that the abort rule never fires;
 *   - two replicas running the same migration at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "storage/store_fleet.h"
#include "storage/pg_int.h"
#include "storage/store_ops.h"
#include "tests/common/storefix.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the pause: the first thread reaching `point` stops there until released ---------- */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static const char *g_point;
static bool g_arrived, g_released, g_used;

static void hook(struct store *st, const char *point)
{
    (void)st;
    pthread_mutex_lock(&g_mu);
    if (g_point && !g_used && !strcmp(point, g_point)) {
        g_used = true;
        g_arrived = true;
        pthread_cond_broadcast(&g_cv);
        while (!g_released)
            pthread_cond_wait(&g_cv, &g_mu);
    }
    pthread_mutex_unlock(&g_mu);
}

static void pause_at(const char *point)
{
    pthread_mutex_lock(&g_mu);
    g_point = point;
    g_arrived = g_released = g_used = false;
    pthread_mutex_unlock(&g_mu);
    store_test_hook = hook;
}

static bool wait_arrived(int seconds)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += seconds;
    pthread_mutex_lock(&g_mu);
    while (!g_arrived)
        if (pthread_cond_timedwait(&g_cv, &g_mu, &dl) != 0)
            break;
    bool ok = g_arrived;
    pthread_mutex_unlock(&g_mu);
    return ok;
}

static void release_pause(void)
{
    pthread_mutex_lock(&g_mu);
    g_released = true;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

static void hooks_off(void)
{
    store_test_hook = NULL;
    pthread_mutex_lock(&g_mu);
    g_point = NULL;
    pthread_mutex_unlock(&g_mu);
}

/* An operation run on a thread. */
struct op {
    void (*fn)(struct op *);
    struct store *st;
    pemn_rc rc;
    volatile bool done;
    /* arguments and results */
    char model[32], version[32], tag[32], fleet[32], device[32], rollout[64];
    uint64_t release, reporting, failed;
    bool changed;
    unsigned moved;
    struct store *opened;
};

static void *op_main(void *arg)
{
    struct op *o = arg;
    o->fn(o);
    __atomic_store_n(&o->done, true, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Runs a (stopping at point) and b; checks that b did not finish while a was stopped. */
static void race(const char *point, struct op *a, struct op *b)
{
    pause_at(point);
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, op_main, a), 0);
    if (!wait_arrived(20))
        fail_msg("operation A never reached %s", point);
    assert_int_equal(pthread_create(&tb, NULL, op_main, b), 0);
    usleep(400 * 1000); /* B gets every chance to run past A */
    bool b_early = __atomic_load_n(&b->done, __ATOMIC_SEQ_CST);
    release_pause();
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    hooks_off();
    assert_false(b_early); /* B waited for A's lock */
}

static struct store *open_store(void)
{
    struct store *st = NULL;
    struct pemn_err e;
    if (store_open(storefix_db, NULL, &st, &e))
        fail_msg("store_open: %s", e.msg);
    return st;
}

/* A fake package (storage trusts the caller's digest). */
static void push_pkg(struct store *st, const char *model, const char *version, uint64_t release,
                     pemn_rc *rc_out, struct store_version *out)
{
    size_t size = 2000 + release;
    uint8_t *b = malloc(size);
    assert_non_null(b);
    for (size_t i = 0; i < size; i++)
        b[i] = (uint8_t)(i * 31 + release * 7 + (uint8_t)version[0]);
    struct store_version m;
    memset(&m, 0, sizeof m);
    snprintf(m.model, sizeof m.model, "%s", model);
    snprintf(m.version, sizeof m.version, "%s", version);
    snprintf(m.strategy, sizeof m.strategy, "rp");
    snprintf(m.signer, sizeof m.signer, "0123456789abcdef");
    m.release = release;
    m.size = size;
    m.created = 1700000000;
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(b, size, d);
    pemn_digest_format(d, m.digest);
    bool created = false;
    struct pemn_err e;
    *rc_out = store_put_package(st, &m, b, size, "t", &created, out, &e);
    if (*rc_out && *rc_out != PEMN_EROLLBACK)
        fprintf(stderr, "push: %s\n", e.msg);
    free(b);
}

/* ---- 1. release order per model -------------------------------------------------------- */
static void op_push(struct op *o)
{
    push_pkg(o->st, o->model, o->version, o->release, &o->rc, NULL);
}

struct audit_rows {
    int n;
    char row[8][128];
};

static int audit_cb(void *ctx, const struct store_audit *a)
{
    struct audit_rows *r = ctx;
    if (r->n < 8)
        snprintf(r->row[r->n++], sizeof r->row[0], "%s %s", a->action, a->target);
    return 0;
}

static void test_push_order(void **state)
{
    (void)state;
    struct store *a = open_store(), *b = open_store();
    pemn_rc rc;
    push_pkg(a, "net", "1", 1, &rc, NULL); /* the model exists: only its lock orders pushes */
    assert_int_equal(rc, PEMN_OK);
    struct op pa = {.fn = op_push, .st = a, .model = "net", .version = "3", .release = 3};
    struct op pb = {.fn = op_push, .st = b, .model = "net", .version = "5", .release = 5};
    /* A has checked that 3 is above the latest release and is about to store it */
    race("push.checked", &pa, &pb);
    assert_int_equal(pa.rc, PEMN_OK);
    assert_int_equal(pb.rc, PEMN_OK);
    /* stored in release order: 3 first, then 5 */
    struct audit_rows r = {0};
    assert_int_equal(store_audit_list(a, 2, audit_cb, &r, NULL), PEMN_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.row[0], "push net/5");
    assert_string_equal(r.row[1], "push net/3");

    /* and the other way round: the lower release loses (it would roll back) */
    struct op qa = {.fn = op_push, .st = a, .model = "net", .version = "9", .release = 9};
    struct op qb = {.fn = op_push, .st = b, .model = "net", .version = "7", .release = 7};
    race("push.checked", &qa, &qb);
    assert_int_equal(qa.rc, PEMN_OK);
    assert_int_equal(qb.rc, PEMN_EROLLBACK);
    struct store_version v;
    assert_int_equal(store_get_latest(b, "net", &v, NULL), PEMN_OK);
    assert_int_equal(v.release, 9);
    assert_int_equal(store_get_version(b, "net", "7", &v, NULL), PEMN_ENOTFOUND);
    store_close(a);
    store_close(b);
}

/* ---- 2. a tag move racing an abort ----------------------------------------------------- */
static void op_abort(struct op *o)
{
    struct pemn_err e;
    o->rc = store_fleet_set_state(o->st, o->fleet, STORE_ROLLOUT_ABORTED, "abort rule", o->rollout,
                                  "abort-rule", &o->changed, NULL, &e);
}

static void op_tag(struct op *o)
{
    struct pemn_err e;
    o->rc = store_tag_set_follow(o->st, o->model, o->tag, o->version, "ci", NULL, &o->moved, &e);
}

static void setup_fleet(struct store *st, const char *fleet, const char *rollout)
{
    pemn_rc rc;
    struct store_version v1, v2;
    push_pkg(st, "net", "1", 1, &rc, &v1);
    assert_int_equal(rc, PEMN_OK);
    push_pkg(st, "net", "2", 2, &rc, &v2);
    assert_int_equal(rc, PEMN_OK);
    assert_int_equal(store_tag_set(st, "net", "stable", "1", "ci", NULL, NULL), PEMN_OK);
    struct store_fleet_target t;
    memset(&t, 0, sizeof t);
    snprintf(t.model, sizeof t.model, "net");
    snprintf(t.version, sizeof t.version, "1");
    snprintf(t.tag, sizeof t.tag, "stable");
    t.release = 1;
    memcpy(t.digest, v1.digest, sizeof t.digest);
    t.size = v1.size;
    assert_int_equal(
        store_fleet_put(st, fleet, &t, 10000, 5000, 2, rollout, "admin", NULL, NULL, NULL),
        PEMN_OK);
}

static void test_tag_move_vs_abort(void **state)
{
    (void)state;
    struct store *a = open_store(), *b = open_store();
    setup_fleet(a, "edge", "r1");
    /* A: the abort rule fired for rollout r1 and has read the fleet; B: stable moves to 2 */
    struct op pa = {.fn = op_abort, .st = a, .fleet = "edge", .rollout = "r1"};
    struct op pb = {.fn = op_tag, .st = b, .model = "net", .tag = "stable", .version = "2"};
    race("state.read", &pa, &pb);
    assert_int_equal(pa.rc, PEMN_OK);
    assert_true(pa.changed);
    assert_int_equal(pb.rc, PEMN_OK);
    assert_int_equal(pb.moved, 1);
    /* the new rollout survived: r1 aborted first, then the tag move started a new one */
    struct store_fleet f;
    assert_int_equal(store_fleet_get(b, "edge", &f, NULL), PEMN_OK);
    assert_string_equal(f.target.version, "2");
    assert_string_not_equal(f.rollout_id, "r1");
    assert_int_equal(f.state, STORE_ROLLOUT_ACTIVE);

    /* the other order: the tag move holds the fleet, the late abort of r1 must not land */
    struct store_fleet g;
    assert_int_equal(store_fleet_get(a, "edge", &g, NULL), PEMN_OK);
    struct op qa = {.fn = op_tag, .st = a, .model = "net", .tag = "stable", .version = "1"};
    struct op qb = {.fn = op_abort, .st = b, .fleet = "edge"};
    snprintf(qb.rollout, sizeof qb.rollout, "%s", g.rollout_id);
    race("tag.fleets", &qa, &qb);
    assert_int_equal(qa.rc, PEMN_OK);
    assert_int_equal(qa.moved, 1);
    assert_int_equal(qb.rc, PEMN_ECONFLICT); /* its rollout is no longer current */
    assert_int_equal(store_fleet_get(b, "edge", &f, NULL), PEMN_OK);
    assert_string_equal(f.target.version, "1");
    assert_int_equal(f.state, STORE_ROLLOUT_ACTIVE);
    store_close(a);
    store_close(b);
}

/* A fleet PUT by tag whose caller resolved the tag just before a tag move committed. */
static void op_put_by_tag(struct op *o)
{
    struct store_version v1;
    struct pemn_err e;
    o->rc = store_get_version(o->st, "net", "1", &v1, &e); /* what the caller resolved */
    struct store_fleet_target t;
    memset(&t, 0, sizeof t);
    snprintf(t.model, sizeof t.model, "net");
    snprintf(t.version, sizeof t.version, "1");
    snprintf(t.tag, sizeof t.tag, "stable");
    t.release = 1;
    memcpy(t.digest, v1.digest, sizeof t.digest);
    t.size = v1.size;
    if (!o->rc)
        o->rc = store_fleet_put(o->st, o->fleet, &t, 10000, 0, 0, "rl", "admin", NULL, NULL, &e);
}

static void test_fleet_put_vs_tag_move(void **state)
{
    (void)state;
    struct store *a = open_store(), *b = open_store();
    setup_fleet(a, "edge", "r1"); /* versions 1 and 2, stable -> 1 */
    /* A: stable moves to 2 (no fleet "late" follows it yet); B: "late" is created on stable,
     * resolved by its caller as version 1 before A committed */
    struct op pa = {.fn = op_tag, .st = a, .model = "net", .tag = "stable", .version = "2"};
    struct op pb = {.fn = op_put_by_tag, .st = b, .fleet = "late"};
    race("tag.fleets", &pa, &pb);
    assert_int_equal(pa.rc, PEMN_OK);
    assert_int_equal(pb.rc, PEMN_OK);
    /* the fleet follows the tag: it is on the tag's version, not on the stale one */
    struct store_fleet f;
    assert_int_equal(store_fleet_get(a, "late", &f, NULL), PEMN_OK);
    assert_string_equal(f.target.tag, "stable");
    assert_string_equal(f.target.version, "2");
    assert_int_equal(f.target.release, 2);
    store_close(a);
    store_close(b);
}

/* ---- 3. two failure reports at once ---------------------------------------------------- */
static void op_report(struct op *o)
{
    struct store_device r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", o->device);
    snprintf(r.state, sizeof r.state, "failed");
    snprintf(r.reason, sizeof r.reason, "crash");
    snprintf(r.version, sizeof r.version, "0");
    struct pemn_err e;
    o->rc = store_device_report(o->st, o->fleet, &r, o->rollout, &o->reporting, &o->failed, &e);
}

static void test_concurrent_failures(void **state)
{
    (void)state;
    struct store *a = open_store(), *b = open_store();
    setup_fleet(a, "edge", "r1");
    struct store_fleet f;
    struct store_device d;
    assert_int_equal(store_device_poll(a, "edge", "d1", 60, &f, &d, NULL), PEMN_OK);
    assert_int_equal(store_device_poll(b, "edge", "d2", 60, &f, &d, NULL), PEMN_OK);
    struct op pa = {.fn = op_report, .st = a, .fleet = "edge", .device = "d1", .rollout = "r1"};
    struct op pb = {.fn = op_report, .st = b, .fleet = "edge", .device = "d2", .rollout = "r1"};
    race("report.counted", &pa, &pb);
    assert_int_equal(pa.rc, PEMN_OK);
    assert_int_equal(pb.rc, PEMN_OK);
    /* the later report sees both failures: the abort rule (2 devices, 50%) can fire */
    assert_int_equal(pa.reporting, 1);
    assert_int_equal(pa.failed, 1);
    assert_int_equal(pb.reporting, 2);
    assert_int_equal(pb.failed, 2);
    /* a device reporting again moves its count, it does not add one */
    struct op pc = {.fn = op_report, .st = a, .fleet = "edge", .device = "d1", .rollout = "r1"};
    op_report(&pc);
    assert_int_equal(pc.rc, PEMN_OK);
    assert_int_equal(pc.reporting, 2);
    assert_int_equal(pc.failed, 2);
    struct store_fleet_counts n;
    assert_int_equal(store_fleet_counts(b, "edge", &n, NULL, NULL, NULL), PEMN_OK);
    assert_int_equal(n.reporting, 2);
    assert_int_equal(n.failed, 2);
    store_close(a);
    store_close(b);
}

/* ---- 4. two replicas migrating one empty database at once ------------------------------ */
static void op_open(struct op *o)
{
    struct pemn_err e;
    o->rc = store_open(storefix_db, NULL, &o->opened, &e);
    if (o->rc)
        fprintf(stderr, "store_open: %s\n", e.msg);
}

static void test_concurrent_migration(void **state)
{
    (void)state;
    struct op pa = {.fn = op_open}, pb = {.fn = op_open};
    race("migrate.locked", &pa, &pb);
    assert_int_equal(pa.rc, PEMN_OK);
    assert_int_equal(pb.rc, PEMN_OK);
    assert_int_equal(store_schema_version(pa.opened), store_schema_latest());
    assert_int_equal(store_schema_version(pb.opened), store_schema_latest());
    /* both serve the same store */
    pemn_rc rc;
    push_pkg(pa.opened, "m", "1", 1, &rc, NULL);
    assert_int_equal(rc, PEMN_OK);
    struct store_version v;
    assert_int_equal(store_get_latest(pb.opened, "m", &v, NULL), PEMN_OK);
    store_close(pa.opened);
    store_close(pb.opened);
}

/* ---- 5. PostgreSQL: broken connections are replaced by themselves ---------------------- */
static void test_reconnect(void **state)
{
    (void)state;
    struct store *st = open_store();
    pemn_rc rc;
    push_pkg(st, "m", "1", 1, &rc, NULL);
    assert_int_equal(rc, PEMN_OK);
    /* what a restart or a failover does to the pool: every connection of the store dies */
    assert_true(storefix_sql(NULL, "SELECT count(pg_terminate_backend(pid)) FROM"
                                   " pg_stat_activity WHERE datname = current_database()"
                                   " AND pid <> pg_backend_pid()") >= 1);
    struct store_version v;
    struct pemn_err e;
    assert_int_equal(store_get_latest(st, "m", &v, &e), PEMN_OK);
    assert_int_equal(v.release, 1);
    push_pkg(st, "m", "2", 2, &rc, NULL);
    assert_int_equal(rc, PEMN_OK);
    assert_true(storefix_sql(NULL, "SELECT count(pg_terminate_backend(pid)) FROM"
                                   " pg_stat_activity WHERE datname = current_database()"
                                   " AND pid <> pg_backend_pid()") >= 1);
    /* a write first this time */
    assert_int_equal(store_tag_set(st, "m", "stable", "2", "ci", &v, &e), PEMN_OK);
    assert_int_equal(store_tag_get(st, "m", "stable", &v, &e), PEMN_OK);
    assert_string_equal(v.version, "2");
    store_close(st);
}

/* ---- 6. PostgreSQL: a deadlock victim is run again -------------------------------------- */
struct dl {
    struct store *st;
    int first, second, runs;
    pthread_barrier_t *bar;
    pemn_rc rc;
};

static pemn_rc dl_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "UPDATE retry_t SET n = n + 1 WHERE id = $1";
    struct dl *d = vctx;
    d->runs++;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, d->first);
    pemn_rc rc = pg_cmd(c, sql, &p, "first row", err);
    if (!rc && d->runs == 1)
        pthread_barrier_wait(d->bar); /* both hold their first row: a lock cycle follows */
    pg_p_init(&p);
    pg_p_i64(&p, d->second);
    if (!rc)
        rc = pg_cmd(c, sql, &p, "second row", err);
    return rc;
}

static void *dl_main(void *arg)
{
    struct dl *d = arg;
    struct pemn_err e;
    d->rc = pg_run(d->st, PG_WRITE, dl_body, d, &e);
    if (d->rc)
        fprintf(stderr, "pg_run: %s\n", e.msg);
    return NULL;
}

static void test_deadlock_retried(void **state)
{
    (void)state;
    assert_int_equal(storefix_sql(NULL, "CREATE TABLE retry_t(id int PRIMARY KEY, n int NOT NULL);"
                                        " INSERT INTO retry_t VALUES (1, 0), (2, 0)"),
                     0);
    struct store *a = open_store(), *b = open_store();
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    struct dl da = {.st = a, .first = 1, .second = 2, .bar = &bar};
    struct dl db = {.st = b, .first = 2, .second = 1, .bar = &bar};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, dl_main, &da);
    pthread_create(&tb, NULL, dl_main, &db);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&bar);
    /* PostgreSQL broke the cycle by aborting one; pg_run ran that one again */
    assert_int_equal(da.rc, PEMN_OK);
    assert_int_equal(db.rc, PEMN_OK);
    assert_int_equal(da.runs + db.runs, 3);
    assert_int_equal(storefix_sql(NULL, "SELECT sum(n) FROM retry_t"), 4);
    store_close(a);
    store_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_order, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_tag_move_vs_abort, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_fleet_put_vs_tag_move, storefix_setup,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_failures, storefix_setup,
                                        storefix_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_migration, storefix_setup_empty,
                                        storefix_teardown),
    };
    const struct CMUnitTest pg_only[] = {
        cmocka_unit_test_setup_teardown(test_reconnect, storefix_setup, storefix_teardown),
        cmocka_unit_test_setup_teardown(test_deadlock_retried, storefix_setup, storefix_teardown),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (storefix_pg())
        failed += cmocka_run_group_tests(pg_only, NULL, NULL);
    return failed;
}
