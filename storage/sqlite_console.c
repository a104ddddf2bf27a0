/*
 * storage/sqlite_console.c — report history, rollout progress, device listings, failures by
 * reason and the filtered audit log (store_console.h) on SQLite.
 */
#include "storage/sqlite_console.h"
#include "storage/sqlite_int.h"
#include "storage/store_console.h"

#include "proto/err.h"

#include <stdio.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

/* Version 4: report history and rollout progress (issue 15). The history row is written by
 * a trigger in the report's own UPDATE, so every backend write path keeps it; the trigger
 * also keeps only the newest STORE_HISTORY_MAX rows of the device. */
const char sq_schema_v4_console[] =
    "CREATE TABLE device_reports("
    "  id INTEGER PRIMARY KEY,"
    "  device TEXT NOT NULL,"
    "  fleet_id INTEGER NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  state TEXT NOT NULL, reason TEXT NOT NULL, version TEXT NOT NULL,"
    "  release INTEGER NOT NULL, digest TEXT NOT NULL, rollout TEXT NOT NULL,"
    "  message TEXT NOT NULL);"
    "CREATE INDEX device_reports_by_device ON device_reports(device, id);"
    "CREATE TRIGGER device_reports_keep AFTER UPDATE OF reported ON devices"
    "  WHEN NEW.reported <> 0 BEGIN"
    "  INSERT INTO device_reports(device, fleet_id, at, state, reason, version, release, digest,"
    "    rollout, message) VALUES(NEW.id, NEW.fleet_id, NEW.reported, NEW.state, NEW.reason,"
    "    NEW.version, NEW.release, NEW.digest, NEW.report_rollout, NEW.message);"
    "  DELETE FROM device_reports WHERE device = NEW.id AND id <= (SELECT id FROM device_reports"
    "    WHERE device = NEW.id ORDER BY id DESC LIMIT 1 OFFSET " STR(
        STORE_HISTORY_MAX) ");"
                           "END;"
                           "CREATE TABLE rollout_progress("
                           "  id INTEGER PRIMARY KEY,"
                           "  fleet_id INTEGER NOT NULL,"
                           "  rollout TEXT NOT NULL,"
                           "  at INTEGER NOT NULL,"
                           "  state TEXT NOT NULL,"
                           "  percent_bp INTEGER NOT NULL,"
                           "  devices INTEGER NOT NULL, reporting INTEGER NOT NULL, installed "
                           "INTEGER NOT NULL,"
                           "  failed INTEGER NOT NULL, in_progress INTEGER NOT NULL);"
                           "CREATE INDEX rollout_progress_by_fleet ON rollout_progress(fleet_id, "
                           "rollout, id);"
                           /* the console's device listing (newest report first) and its
                            * failures by reason */
                           "CREATE INDEX devices_by_reported ON devices(fleet_id, reported);"
                           "CREATE INDEX devices_by_state ON devices(fleet_id, state, reason);";

static const char *const state_names[] = {"active", "paused", "aborted"};

static enum store_rollout_state state_parse(const char *s)
{
    for (unsigned i = 0; i < 3; i++)
        if (!strcmp(s, state_names[i]))
            return (enum store_rollout_state)i;
    return STORE_ROLLOUT_ABORTED;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* The fleet's id, current rollout, state and percentage. PEMN_ENOTFOUND when absent. */
struct fleet_head {
    int64_t id;
    char rollout[STORE_ROLLOUT_ID_MAX];
    enum store_rollout_state state;
    uint32_t percent_bp;
};

static pemn_rc fleet_head(struct sq_conn *c, const char *fleet, struct fleet_head *h,
                          struct pemn_err *err)
{
    static const char sql[] =
        "SELECT id, rollout_id, state, percent_bp FROM fleets WHERE name = ?1";
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_text(s, 1, fleet, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    pemn_rc rc = PEMN_OK;
    if (r == SQLITE_ROW) {
        char st[16];
        h->id = sqlite3_column_int64(s, 0);
        sq_col_text(s, 1, h->rollout, sizeof h->rollout);
        sq_col_text(s, 2, st, sizeof st);
        h->state = state_parse(st);
        h->percent_bp = (uint32_t)sqlite3_column_int64(s, 3);
    } else if (r == SQLITE_DONE) {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no fleet '%s'", fleet);
    } else {
        rc = sq_fail(c, err, "reading a fleet");
    }
    sq_done(s);
    return rc;
}

/* ---- report history ------------------------------------------------------------------------ */
static pemn_rc sq_console_history(struct store *st, const char *device, unsigned limit,
                                  store_report_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT r.id, r.at, coalesce(f.name, ''), r.state, r.reason, r.version, r.release,"
        " r.digest, r.rollout, r.message FROM device_reports r LEFT JOIN fleets f ON"
        " f.id = r.fleet_id WHERE r.device = ?1 ORDER BY r.id DESC LIMIT ?2";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, limit);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_report x;
        memset(&x, 0, sizeof x);
        x.id = sqlite3_column_int64(s, 0);
        x.at = sqlite3_column_int64(s, 1);
        sq_col_text(s, 2, x.fleet, sizeof x.fleet);
        sq_col_text(s, 3, x.state, sizeof x.state);
        sq_col_text(s, 4, x.reason, sizeof x.reason);
        sq_col_text(s, 5, x.version, sizeof x.version);
        x.release = (uint64_t)sqlite3_column_int64(s, 6);
        sq_col_text(s, 7, x.digest, sizeof x.digest);
        sq_col_text(s, 8, x.rollout, sizeof x.rollout);
        sq_col_text(s, 9, x.message, sizeof x.message);
        if (cb(ctx, &x)) {
            rc = PEMN_ECANCELED;
            break;
        }
    }
    if (!rc && r != SQLITE_DONE)
        rc = sq_fail(c, err, "reading a device's reports");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

/* ---- rollout progress ---------------------------------------------------------------------- */
struct last_samples {
    int64_t n, first_at, last_at;
    char state[16];
    uint32_t percent_bp;
};

static pemn_rc read_last(struct sq_conn *c, int64_t fid, const char *rollout,
                         struct last_samples *l, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT (SELECT count(*) FROM rollout_progress WHERE fleet_id = ?1 AND rollout = ?2),"
        " (SELECT min(at) FROM rollout_progress WHERE fleet_id = ?1 AND rollout = ?2),"
        " at, state, percent_bp FROM rollout_progress WHERE fleet_id = ?1 AND rollout = ?2"
        " ORDER BY id DESC LIMIT 1";
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_int64(s, 1, fid);
    sqlite3_bind_text(s, 2, rollout, -1, SQLITE_STATIC);
    memset(l, 0, sizeof *l);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        l->n = sqlite3_column_int64(s, 0);
        l->first_at = sqlite3_column_int64(s, 1);
        l->last_at = sqlite3_column_int64(s, 2);
        sq_col_text(s, 3, l->state, sizeof l->state);
        l->percent_bp = (uint32_t)sqlite3_column_int64(s, 4);
    }
    sq_done(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? PEMN_OK : sq_fail(c, err, "reading progress");
}

static bool sample_due(const struct fleet_head *h, const struct last_samples *l, bool force,
                       int64_t min_step, int64_t now)
{
    if (force || l->n == 0 || strcmp(l->state, state_names[h->state]) != 0 ||
        l->percent_bp != h->percent_bp)
        return true;
    int64_t step = (l->last_at - l->first_at) / STORE_PROGRESS_MAX;
    if (step < min_step)
        step = min_step;
    return now - l->last_at >= step;
}

static pemn_rc exec_bound(struct sq_conn *c, const char *sql, int64_t fid, const char *rollout,
                          struct pemn_err *err)
{
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_int64(s, 1, fid);
    if (sqlite3_bind_parameter_count(s) >= 2)
        sqlite3_bind_text(s, 2, rollout, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    sq_done(s);
    return r == SQLITE_DONE ? PEMN_OK : sq_fail(c, err, "writing progress");
}

/* Inside a write transaction: counts the rollout now and stores the sample, then keeps the
 * bounds (thinning this rollout, dropping the oldest rollouts). */
static pemn_rc sample_write(struct sq_conn *c, const struct fleet_head *h, int64_t now,
                            struct pemn_err *err)
{
    static const char sql_ins[] =
        "INSERT INTO rollout_progress(fleet_id, rollout, at, state, percent_bp, devices,"
        " reporting, installed, failed, in_progress)"
        " SELECT ?1, ?2, ?3, ?4, ?5, (SELECT count(*) FROM devices WHERE fleet_id = ?1),"
        " count(*), coalesce(sum(state = 'installed'), 0), coalesce(sum(state = 'failed'), 0),"
        " coalesce(sum(state NOT IN ('installed', 'failed')), 0)"
        " FROM devices WHERE fleet_id = ?1 AND report_rollout = ?2";
    /* every second sample of the older part goes; the first and the newest stay */
    static const char sql_thin[] =
        "DELETE FROM rollout_progress WHERE id IN (SELECT id FROM (SELECT id, row_number()"
        " OVER (ORDER BY id) AS rn, count(*) OVER () AS n FROM rollout_progress WHERE"
        " fleet_id = ?1 AND rollout = ?2) WHERE rn % 2 = 0 AND rn < n)";
    static const char sql_count[] =
        "SELECT count(*) FROM rollout_progress WHERE fleet_id = ?1 AND rollout = ?2";
    static const char sql_old[] =
        "DELETE FROM rollout_progress WHERE fleet_id = ?1 AND rollout NOT IN (SELECT rollout"
        " FROM rollout_progress WHERE fleet_id = ?1 GROUP BY rollout ORDER BY max(id) DESC"
        " LIMIT " STR(STORE_PROGRESS_ROLLOUTS) ")";
    sqlite3_stmt *s = sq_stmt(c, sql_ins, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_int64(s, 1, h->id);
    sqlite3_bind_text(s, 2, h->rollout, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    sqlite3_bind_text(s, 4, state_names[h->state], -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, h->percent_bp);
    int r = sqlite3_step(s);
    sq_done(s);
    if (r != SQLITE_DONE)
        return sq_fail(c, err, "storing a progress sample");
    s = sq_stmt(c, sql_count, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_int64(s, 1, h->id);
    sqlite3_bind_text(s, 2, h->rollout, -1, SQLITE_STATIC);
    r = sqlite3_step(s);
    int64_t n = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    sq_done(s);
    if (n < 0)
        return sq_fail(c, err, "counting progress samples");
    pemn_rc rc = PEMN_OK;
    if (n > STORE_PROGRESS_MAX)
        rc = exec_bound(c, sql_thin, h->id, h->rollout, err);
    if (!rc && n == 1) /* a new rollout's first sample: forget the oldest rollouts */
        rc = exec_bound(c, sql_old, h->id, h->rollout, err);
    return rc;
}

static pemn_rc sq_console_progress_sample(struct store *st, const char *fleet, bool force,
                                          int64_t min_step, bool *taken, struct pemn_err *err)
{
    if (taken)
        *taken = false;
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (rc)
        return rc;
    struct fleet_head h;
    struct last_samples l;
    int64_t now = sq_now();
    rc = fleet_head(c, fleet, &h, err);
    if (!rc)
        rc = read_last(c, h.id, h.rollout, &l, err);
    if (rc || !sample_due(&h, &l, force, min_step, now)) {
        sq_release(st, c);
        return rc;
    }
    /* due: decide again inside the write transaction (another thread may have sampled) */
    rc = sq_begin(c, err);
    if (!rc)
        rc = fleet_head(c, fleet, &h, err);
    if (!rc)
        rc = read_last(c, h.id, h.rollout, &l, err);
    bool due = !rc && sample_due(&h, &l, force, min_step, now);
    if (due)
        rc = sample_write(c, &h, now, err);
    if (!rc)
        rc = sq_commit(c, err);
    else
        sq_rollback(c);
    if (!rc && taken)
        *taken = due;
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_console_progress(struct store *st, const char *fleet, const char *rollout,
                                   store_progress_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT at, rollout, state, percent_bp, devices, reporting, installed, failed,"
        " in_progress FROM rollout_progress WHERE fleet_id = ?1 AND rollout = ?2 ORDER BY id";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (rc)
        return rc;
    struct fleet_head h;
    rc = fleet_head(c, fleet, &h, err);
    sqlite3_stmt *s = rc ? NULL : sq_stmt(c, sql, err);
    if (!rc && !s)
        rc = PEMN_EDB;
    if (!rc) {
        sqlite3_bind_int64(s, 1, h.id);
        sqlite3_bind_text(s, 2, rollout && rollout[0] ? rollout : h.rollout, -1, SQLITE_TRANSIENT);
        int r;
        while ((r = sqlite3_step(s)) == SQLITE_ROW) {
            struct store_progress p;
            char state[16];
            memset(&p, 0, sizeof p);
            p.at = sqlite3_column_int64(s, 0);
            sq_col_text(s, 1, p.rollout, sizeof p.rollout);
            sq_col_text(s, 2, state, sizeof state);
            p.state = state_parse(state);
            p.percent_bp = (uint32_t)sqlite3_column_int64(s, 3);
            p.devices = (uint64_t)sqlite3_column_int64(s, 4);
            p.reporting = (uint64_t)sqlite3_column_int64(s, 5);
            p.installed = (uint64_t)sqlite3_column_int64(s, 6);
            p.failed = (uint64_t)sqlite3_column_int64(s, 7);
            p.in_progress = (uint64_t)sqlite3_column_int64(s, 8);
            if (cb(ctx, &p)) {
                rc = PEMN_ECANCELED;
                break;
            }
        }
        if (!rc && r != SQLITE_DONE)
            rc = sq_fail(c, err, "reading progress");
        sq_done(s);
    }
    sq_release(st, c);
    return rc;
}

/* ---- device listings ------------------------------------------------------------------------ */
#define DEVICE_WHERE                                                                               \
    " WHERE d.fleet_id = ?1 AND (?2 = '' OR (?2 = 'registered' AND d.state = '') OR"               \
    " d.state = ?2) AND (?3 = '' OR d.reason = ?3) AND (?4 = '' OR (?4 = 'none' AND"               \
    " d.version = '') OR d.version = ?4)"

static void bind_query(sqlite3_stmt *s, int64_t fid, const struct store_device_query *q)
{
    sqlite3_bind_int64(s, 1, fid);
    sqlite3_bind_text(s, 2, nz(q->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, nz(q->reason), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, nz(q->version), -1, SQLITE_STATIC);
}

static pemn_rc sq_console_devices(struct store *st, const char *fleet,
                                  const struct store_device_query *q, uint64_t *total,
                                  store_console_device_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql_count[] = "SELECT count(*) FROM devices d" DEVICE_WHERE;
    static const char sql[] =
        "SELECT d.id, d.first_seen, d.last_seen, d.reported, d.state, d.reason, d.version,"
        " d.release, d.digest, d.report_rollout, d.message FROM devices d" DEVICE_WHERE
        " ORDER BY d.reported DESC, d.id DESC LIMIT ?5 OFFSET ?6";
    *total = 0;
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (rc)
        return rc;
    /* one read transaction: the total and the rows agree */
    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        rc = sq_fail(c, err, "begin");
        sq_release(st, c);
        return rc;
    }
    struct fleet_head h;
    rc = fleet_head(c, fleet, &h, err);
    sqlite3_stmt *s = rc ? NULL : sq_stmt(c, sql_count, err);
    if (!rc && !s)
        rc = PEMN_EDB;
    if (!rc) {
        bind_query(s, h.id, q);
        if (sqlite3_step(s) == SQLITE_ROW)
            *total = (uint64_t)sqlite3_column_int64(s, 0);
        else
            rc = sq_fail(c, err, "counting devices");
        sq_done(s);
    }
    if (!rc && !(s = sq_stmt(c, sql, err)))
        rc = PEMN_EDB;
    if (!rc) {
        bind_query(s, h.id, q);
        sqlite3_bind_int64(s, 5, q->limit);
        sqlite3_bind_int64(s, 6, (sqlite3_int64)(q->offset > INT64_MAX ? INT64_MAX : q->offset));
        int r;
        while ((r = sqlite3_step(s)) == SQLITE_ROW) {
            struct store_device d;
            memset(&d, 0, sizeof d);
            sq_col_text(s, 0, d.id, sizeof d.id);
            snprintf(d.fleet, sizeof d.fleet, "%s", fleet);
            d.first_seen = sqlite3_column_int64(s, 1);
            d.last_seen = sqlite3_column_int64(s, 2);
            d.reported = sqlite3_column_int64(s, 3);
            sq_col_text(s, 4, d.state, sizeof d.state);
            sq_col_text(s, 5, d.reason, sizeof d.reason);
            sq_col_text(s, 6, d.version, sizeof d.version);
            d.release = (uint64_t)sqlite3_column_int64(s, 7);
            sq_col_text(s, 8, d.digest, sizeof d.digest);
            sq_col_text(s, 9, d.report_rollout, sizeof d.report_rollout);
            sq_col_text(s, 10, d.message, sizeof d.message);
            if (cb(ctx, &d)) {
                rc = PEMN_ECANCELED;
                break;
            }
        }
        if (!rc && r != SQLITE_DONE)
            rc = sq_fail(c, err, "listing devices");
        sq_done(s);
    }
    sq_rollback(c);
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_console_failures(struct store *st, const char *fleet, store_failure_cb cb,
                                   void *ctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT reason, count(*) AS n, coalesce(sum(report_rollout = ?2), 0) FROM devices"
        " WHERE fleet_id = ?1 AND state = 'failed' GROUP BY reason ORDER BY n DESC, reason";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (rc)
        return rc;
    struct fleet_head h;
    rc = fleet_head(c, fleet, &h, err);
    sqlite3_stmt *s = rc ? NULL : sq_stmt(c, sql, err);
    if (!rc && !s)
        rc = PEMN_EDB;
    if (!rc) {
        sqlite3_bind_int64(s, 1, h.id);
        sqlite3_bind_text(s, 2, h.rollout, -1, SQLITE_STATIC);
        int r;
        while ((r = sqlite3_step(s)) == SQLITE_ROW) {
            char reason[STORE_REASON_MAX];
            sq_col_text(s, 0, reason, sizeof reason);
            if (cb(ctx, reason, (uint64_t)sqlite3_column_int64(s, 1),
                   (uint64_t)sqlite3_column_int64(s, 2))) {
                rc = PEMN_ECANCELED;
                break;
            }
        }
        if (!rc && r != SQLITE_DONE)
            rc = sq_fail(c, err, "counting failures");
        sq_done(s);
    }
    sq_release(st, c);
    return rc;
}

/* ---- the audit log ----------------------------------------------------------------------- */
static pemn_rc sq_console_audit(struct store *st, const struct store_audit_query *q,
                                store_audit_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT id, at, actor, action, target, detail FROM audit WHERE (?1 = 0 OR id < ?1)"
        " AND (?2 = '' OR action = ?2 OR substr(action, 1, length(?2) + 1) = ?2 || '.')"
        " AND (?3 = '' OR actor = ?3)"
        " AND (?4 = '' OR target = ?4 OR (substr(?4, -1) = '*' AND"
        " substr(target, 1, length(?4) - 1) = substr(?4, 1, length(?4) - 1)))"
        " AND (?5 = '' OR instr(actor, ?5) OR instr(action, ?5) OR instr(target, ?5) OR"
        " instr(detail, ?5)) ORDER BY id DESC LIMIT ?6";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, q->before > 0 ? q->before : 0);
    sqlite3_bind_text(s, 2, nz(q->action), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, nz(q->actor), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, nz(q->target), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, nz(q->text), -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, q->limit);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_audit a = {
            .id = sqlite3_column_int64(s, 0),
            .at = sqlite3_column_int64(s, 1),
            .actor = (const char *)sqlite3_column_text(s, 2),
            .action = (const char *)sqlite3_column_text(s, 3),
            .target = (const char *)sqlite3_column_text(s, 4),
            .detail = (const char *)sqlite3_column_text(s, 5),
        };
        if (!a.actor || !a.action || !a.target || !a.detail) {
            rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "damaged audit row");
            break;
        }
        if (cb(ctx, &a)) {
            rc = PEMN_ECANCELED;
            break;
        }
    }
    if (!rc && r != SQLITE_DONE)
        rc = sq_fail(c, err, "reading the audit log");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

const struct store_console_ops sq_console_ops = {
    .history = sq_console_history,
    .progress_sample = sq_console_progress_sample,
    .progress = sq_console_progress,
    .devices = sq_console_devices,
    .failures = sq_console_failures,
    .audit = sq_console_audit,
};
