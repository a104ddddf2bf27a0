/*
 * storage/pg_console.c — report history, rollout progress, device listings, failures by
 * reason and the filtered audit log (storage/store_console.h) on PostgreSQL. The same
 * contract as storage/sqlite_console.c; the schema is migration 4 of pg_schema.c
 * (pg_schema_v4_console below): the history row is written by a trigger in the report's own
 * UPDATE, so it commits or rolls back with the report.
 *
 * Locks: a progress sample takes its fleet row FOR UPDATE (the first lock of the documented
 * order, pg_int.h) so two samplers of one fleet never both write; reads take none.
 */
#include "storage/pg_int.h"
#include "storage/store_console.h"

#include "proto/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

const char pg_schema_v4_console[] =
    "CREATE TABLE device_reports("
    "  id bigserial PRIMARY KEY,"
    "  device text NOT NULL,"
    "  fleet_id bigint NOT NULL,"
    "  at bigint NOT NULL,"
    "  state text NOT NULL, reason text NOT NULL, version text NOT NULL,"
    "  release bigint NOT NULL, digest text NOT NULL, rollout text NOT NULL,"
    "  message text NOT NULL);"
    "CREATE INDEX device_reports_by_device ON device_reports(device, id);"
    "CREATE FUNCTION pemn_device_reports_keep() RETURNS trigger LANGUAGE plpgsql AS $f$"
    " BEGIN"
    "  INSERT INTO device_reports(device, fleet_id, at, state, reason, version, release,"
    "    digest, rollout, message) VALUES(NEW.id, NEW.fleet_id, NEW.reported, NEW.state,"
    "    NEW.reason, NEW.version, NEW.release, NEW.digest, NEW.report_rollout, NEW.message);"
    "  DELETE FROM device_reports WHERE device = NEW.id AND id <= (SELECT id FROM"
    "    device_reports WHERE device = NEW.id ORDER BY id DESC OFFSET " STR(
        STORE_HISTORY_MAX) " LIMIT 1);"
                           "  RETURN NULL;"
                           " END $f$;"
                           "CREATE TRIGGER device_reports_keep AFTER UPDATE OF reported ON devices"
                           "  FOR EACH ROW WHEN (NEW.reported <> 0)"
                           "  EXECUTE FUNCTION pemn_device_reports_keep();"
                           "CREATE TABLE rollout_progress("
                           "  id bigserial PRIMARY KEY,"
                           "  fleet_id bigint NOT NULL,"
                           "  rollout text NOT NULL,"
                           "  at bigint NOT NULL,"
                           "  state text NOT NULL,"
                           "  percent_bp integer NOT NULL,"
                           "  devices bigint NOT NULL, reporting bigint NOT NULL,"
                           "  installed bigint NOT NULL, failed bigint NOT NULL,"
                           "  in_progress bigint NOT NULL);"
                           "CREATE INDEX rollout_progress_by_fleet ON rollout_progress(fleet_id,"
                           " rollout, id);"
                           "CREATE INDEX devices_by_reported ON devices(fleet_id, reported);"
                           "CREATE INDEX devices_by_state ON devices(fleet_id, state, reason);";

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ---- the fleet's head ---------------------------------------------------------------------- */
struct head {
    int64_t id;
    char rollout[STORE_ROLLOUT_ID_MAX];
    enum store_rollout_state state;
    uint32_t percent_bp;
};

static pemn_rc read_head(struct pg_conn *c, const char *fleet, bool lock, struct head *h,
                         struct pemn_err *err)
{
    static const char sql[] =
        "SELECT id, rollout_id, state, percent_bp FROM fleets WHERE name = $1::text";
    static const char sql_lock[] =
        "SELECT id, rollout_id, state, percent_bp FROM fleets WHERE name = $1::text FOR UPDATE";
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, fleet);
    PGresult *r = pg_exec(c, lock ? sql_lock : sql, &p, false, "reading a fleet", NULL, err);
    if (!r)
        return PEMN_EDB;
    pemn_rc rc = PEMN_OK;
    if (PQntuples(r) == 1) {
        char st[16];
        h->id = pg_i64(r, 0, 0);
        pg_text(r, 0, 1, h->rollout, sizeof h->rollout);
        pg_text(r, 0, 2, st, sizeof st);
        h->state = store_rollout_state_parse(st);
        h->percent_bp = (uint32_t)pg_i64(r, 0, 3);
    } else {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no fleet '%s'", fleet);
    }
    PQclear(r);
    return rc;
}

/* ---- report history ------------------------------------------------------------------------ */
struct one_query {
    const char *sql, *what;
    struct pg_params p;
    PGresult *r;
};

static pemn_rc one_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    struct one_query *q = vctx;
    PQclear(q->r);
    q->r = pg_exec(c, q->sql, &q->p, false, q->what, NULL, err);
    return q->r ? PEMN_OK : PEMN_EDB;
}

static pemn_rc pg_console_history(struct store *st, const char *device, unsigned limit,
                                  store_report_cb cb, void *ctx, struct pemn_err *err)
{
    struct one_query q = {
        "SELECT r.id, r.at, coalesce(f.name, ''), r.state, r.reason, r.version, r.release,"
        " r.digest, r.rollout, r.message FROM device_reports r LEFT JOIN fleets f ON"
        " f.id = r.fleet_id WHERE r.device = $1::text ORDER BY r.id DESC LIMIT $2::bigint",
        "reading a device's reports",
        {0},
        NULL};
    pg_p_init(&q.p);
    pg_p_text(&q.p, device);
    pg_p_i64(&q.p, limit);
    pemn_rc rc = pg_run(st, PG_SINGLE, one_body, &q, err);
    for (int i = 0; !rc && i < PQntuples(q.r); i++) {
        struct store_report x;
        memset(&x, 0, sizeof x);
        x.id = pg_i64(q.r, i, 0);
        x.at = pg_i64(q.r, i, 1);
        pg_text(q.r, i, 2, x.fleet, sizeof x.fleet);
        pg_text(q.r, i, 3, x.state, sizeof x.state);
        pg_text(q.r, i, 4, x.reason, sizeof x.reason);
        pg_text(q.r, i, 5, x.version, sizeof x.version);
        x.release = (uint64_t)pg_i64(q.r, i, 6);
        pg_text(q.r, i, 7, x.digest, sizeof x.digest);
        pg_text(q.r, i, 8, x.rollout, sizeof x.rollout);
        pg_text(q.r, i, 9, x.message, sizeof x.message);
        if (cb(ctx, &x))
            rc = PEMN_ECANCELED;
    }
    PQclear(q.r);
    return rc;
}

/* ---- rollout progress ---------------------------------------------------------------------- */
struct last {
    int64_t n, first_at, last_at, now;
    char state[16];
    uint32_t percent_bp;
};

static pemn_rc read_last(struct pg_conn *c, const struct head *h, struct last *l,
                         struct pemn_err *err)
{
    static const char sql[] =
        "SELECT (SELECT count(*) FROM rollout_progress WHERE fleet_id = $1::bigint AND"
        " rollout = $2::text), (SELECT min(at) FROM rollout_progress WHERE fleet_id = $1::bigint"
        " AND rollout = $2::text), l.at, l.state, l.percent_bp, " PG_NOW
        " FROM (SELECT 1) one LEFT JOIN (SELECT at, state, percent_bp FROM rollout_progress"
        " WHERE fleet_id = $1::bigint AND rollout = $2::text ORDER BY id DESC LIMIT 1) l ON true";
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, h->id);
    pg_p_text(&p, h->rollout);
    PGresult *r = pg_exec(c, sql, &p, false, "reading progress", NULL, err);
    if (!r)
        return PEMN_EDB;
    memset(l, 0, sizeof *l);
    if (PQntuples(r) == 1) {
        l->n = pg_i64(r, 0, 0);
        l->first_at = pg_i64(r, 0, 1);
        l->last_at = pg_i64(r, 0, 2);
        pg_text(r, 0, 3, l->state, sizeof l->state);
        l->percent_bp = (uint32_t)pg_i64(r, 0, 4);
        l->now = pg_i64(r, 0, 5);
    }
    PQclear(r);
    return PEMN_OK;
}

static bool due(const struct head *h, const struct last *l, bool force, int64_t min_step)
{
    if (force || l->n == 0 || strcmp(l->state, store_rollout_state_name(h->state)) != 0 ||
        l->percent_bp != h->percent_bp)
        return true;
    int64_t step = (l->last_at - l->first_at) / STORE_PROGRESS_MAX;
    if (step < min_step)
        step = min_step;
    return l->now - l->last_at >= step;
}

struct sample_ctx {
    const char *fleet;
    bool force, taken;
    int64_t min_step;
};

static pemn_rc sample_check_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    struct sample_ctx *x = vctx;
    struct head h;
    struct last l;
    pemn_rc rc = read_head(c, x->fleet, false, &h, err);
    if (!rc)
        rc = read_last(c, &h, &l, err);
    if (!rc)
        x->taken = due(&h, &l, x->force, x->min_step);
    return rc;
}

static pemn_rc sample_write_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql_ins[] =
        "INSERT INTO rollout_progress(fleet_id, rollout, at, state, percent_bp, devices,"
        " reporting, installed, failed, in_progress)"
        " SELECT $1::bigint, $2::text, " PG_NOW ", $3::text, $4::integer,"
        " (SELECT count(*) FROM devices WHERE fleet_id = $1::bigint), count(*),"
        " count(*) FILTER (WHERE state = 'installed'), count(*) FILTER (WHERE state = 'failed'),"
        " count(*) FILTER (WHERE state NOT IN ('installed', 'failed'))"
        " FROM devices WHERE fleet_id = $1::bigint AND report_rollout = $2::text"
        " RETURNING (SELECT count(*) FROM rollout_progress WHERE fleet_id = $1::bigint AND"
        " rollout = $2::text)";
    static const char sql_thin[] =
        "DELETE FROM rollout_progress WHERE id IN (SELECT id FROM (SELECT id, row_number()"
        " OVER (ORDER BY id) AS rn, count(*) OVER () AS n FROM rollout_progress WHERE"
        " fleet_id = $1::bigint AND rollout = $2::text) x WHERE rn % 2 = 0 AND rn < n)";
    static const char sql_old[] =
        "DELETE FROM rollout_progress WHERE fleet_id = $1::bigint AND rollout NOT IN (SELECT"
        " rollout FROM rollout_progress WHERE fleet_id = $1::bigint GROUP BY rollout ORDER BY"
        " max(id) DESC LIMIT " STR(STORE_PROGRESS_ROLLOUTS) ")";
    struct sample_ctx *x = vctx;
    struct head h;
    struct last l;
    x->taken = false;
    pemn_rc rc = read_head(c, x->fleet, true, &h, err);
    if (!rc)
        rc = read_last(c, &h, &l, err);
    if (rc || !due(&h, &l, x->force, x->min_step))
        return rc;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, h.id);
    pg_p_text(&p, h.rollout);
    pg_p_text(&p, store_rollout_state_name(h.state));
    pg_p_i64(&p, h.percent_bp);
    PGresult *r = pg_exec(c, sql_ins, &p, false, "storing a progress sample", NULL, err);
    if (!r)
        return PEMN_EDB;
    /* the RETURNING subquery sees the table before this insert */
    int64_t n = PQntuples(r) == 1 ? pg_i64(r, 0, 0) + 1 : 0;
    PQclear(r);
    pg_p_init(&p);
    pg_p_i64(&p, h.id);
    pg_p_text(&p, h.rollout);
    if (n > STORE_PROGRESS_MAX)
        rc = pg_cmd(c, sql_thin, &p, "thinning progress samples", err);
    if (!rc && n == 1) {
        pg_p_init(&p);
        pg_p_i64(&p, h.id);
        rc = pg_cmd(c, sql_old, &p, "dropping old progress samples", err);
    }
    if (!rc)
        x->taken = true;
    return rc;
}

static pemn_rc pg_console_progress_sample(struct store *st, const char *fleet, bool force,
                                          int64_t min_step, bool *taken, struct pemn_err *err)
{
    struct sample_ctx x = {fleet, force, false, min_step};
    /* due or not is a read; only a due sample writes (and decides again under the lock) */
    pemn_rc rc = pg_run(st, PG_READ, sample_check_body, &x, err);
    if (!rc && x.taken)
        rc = pg_run(st, PG_WRITE, sample_write_body, &x, err);
    if (taken)
        *taken = !rc && x.taken;
    return rc;
}

/* A fleet's head, then one query with the fleet id as $1 (and more parameters), in one
 * snapshot. */
struct fleet_query {
    const char *fleet, *sql, *what;
    struct pg_params p; /* $2... (the fleet id is prepended) */
    bool with_rollout;  /* bind the current rollout (or `rollout` when set) as $2 */
    const char *rollout;
    const char *count_sql; /* optional: a count with the same parameters */
    int64_t count;
    PGresult *r;
};

static pemn_rc fleet_query_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    struct fleet_query *q = vctx;
    struct head h;
    pemn_rc rc = read_head(c, q->fleet, false, &h, err);
    if (rc)
        return rc;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, h.id);
    if (q->with_rollout)
        pg_p_text(&p, q->rollout && q->rollout[0] ? q->rollout : h.rollout);
    for (int i = 0; i < q->p.n; i++) /* all text parameters; numbers live in q->p.num */
        pg_p_text(&p, q->p.v[i]);
    if (q->count_sql) {
        PGresult *r = pg_exec(c, q->count_sql, &p, false, q->what, NULL, err);
        if (!r)
            return PEMN_EDB;
        q->count = PQntuples(r) == 1 ? pg_i64(r, 0, 0) : 0;
        PQclear(r);
    }
    PQclear(q->r);
    q->r = pg_exec(c, q->sql, &p, false, q->what, NULL, err);
    return q->r ? PEMN_OK : PEMN_EDB;
}

static pemn_rc pg_console_progress(struct store *st, const char *fleet, const char *rollout,
                                   store_progress_cb cb, void *ctx, struct pemn_err *err)
{
    struct fleet_query q = {
        fleet,
        "SELECT at, rollout, state, percent_bp, devices, reporting, installed, failed,"
        " in_progress FROM rollout_progress WHERE fleet_id = $1::bigint AND rollout = $2::text"
        " ORDER BY id",
        "reading progress",
        {0},
        true,
        rollout,
        NULL,
        0,
        NULL};
    pg_p_init(&q.p);
    pemn_rc rc = pg_run(st, PG_READ, fleet_query_body, &q, err);
    for (int i = 0; !rc && i < PQntuples(q.r); i++) {
        struct store_progress x;
        char state[16];
        memset(&x, 0, sizeof x);
        x.at = pg_i64(q.r, i, 0);
        pg_text(q.r, i, 1, x.rollout, sizeof x.rollout);
        pg_text(q.r, i, 2, state, sizeof state);
        x.state = store_rollout_state_parse(state);
        x.percent_bp = (uint32_t)pg_i64(q.r, i, 3);
        x.devices = (uint64_t)pg_i64(q.r, i, 4);
        x.reporting = (uint64_t)pg_i64(q.r, i, 5);
        x.installed = (uint64_t)pg_i64(q.r, i, 6);
        x.failed = (uint64_t)pg_i64(q.r, i, 7);
        x.in_progress = (uint64_t)pg_i64(q.r, i, 8);
        if (cb(ctx, &x))
            rc = PEMN_ECANCELED;
    }
    PQclear(q.r);
    return rc;
}

/* ---- device listings and failures ---------------------------------------------------------- */
#define DEVICE_WHERE                                                                               \
    " WHERE d.fleet_id = $1::bigint AND ($2::text = '' OR ($2::text = 'registered' AND"            \
    " d.state = '') OR d.state = $2::text) AND ($3::text = '' OR d.reason = $3::text) AND"         \
    " ($4::text = '' OR ($4::text = 'none' AND d.version = '') OR d.version = $4::text)"

static pemn_rc pg_console_devices(struct store *st, const char *fleet,
                                  const struct store_device_query *q, uint64_t *total,
                                  store_console_device_cb cb, void *ctx, struct pemn_err *err)
{
    struct fleet_query x = {
        fleet,
        "SELECT d.id, d.first_seen, d.last_seen, d.reported, d.state, d.reason, d.version,"
        " d.release, d.digest, d.report_rollout, d.message FROM devices d" DEVICE_WHERE
        " ORDER BY d.reported DESC, d.id DESC LIMIT $5::bigint OFFSET $6::bigint",
        "listing devices",
        {0},
        false,
        NULL,
        "SELECT count(*) FROM devices d" DEVICE_WHERE " AND $5::bigint >= 0 AND $6::bigint >= 0",
        0,
        NULL};
    pg_p_init(&x.p);
    pg_p_text(&x.p, nz(q->state));
    pg_p_text(&x.p, nz(q->reason));
    pg_p_text(&x.p, nz(q->version));
    pg_p_i64(&x.p, q->limit);
    pg_p_i64(&x.p, (int64_t)(q->offset > INT64_MAX ? INT64_MAX : q->offset));
    pemn_rc rc = pg_run(st, PG_READ, fleet_query_body, &x, err);
    if (!rc)
        *total = (uint64_t)x.count;
    for (int i = 0; !rc && i < PQntuples(x.r); i++) {
        struct store_device d;
        memset(&d, 0, sizeof d);
        pg_text(x.r, i, 0, d.id, sizeof d.id);
        snprintf(d.fleet, sizeof d.fleet, "%s", fleet);
        d.first_seen = pg_i64(x.r, i, 1);
        d.last_seen = pg_i64(x.r, i, 2);
        d.reported = pg_i64(x.r, i, 3);
        pg_text(x.r, i, 4, d.state, sizeof d.state);
        pg_text(x.r, i, 5, d.reason, sizeof d.reason);
        pg_text(x.r, i, 6, d.version, sizeof d.version);
        d.release = (uint64_t)pg_i64(x.r, i, 7);
        pg_text(x.r, i, 8, d.digest, sizeof d.digest);
        pg_text(x.r, i, 9, d.report_rollout, sizeof d.report_rollout);
        pg_text(x.r, i, 10, d.message, sizeof d.message);
        if (cb(ctx, &d))
            rc = PEMN_ECANCELED;
    }
    PQclear(x.r);
    return rc;
}

static pemn_rc pg_console_failures(struct store *st, const char *fleet, store_failure_cb cb,
                                   void *ctx, struct pemn_err *err)
{
    struct fleet_query x = {
        fleet,
        "SELECT reason, count(*) AS n, count(*) FILTER (WHERE report_rollout = $2::text)"
        " FROM devices WHERE fleet_id = $1::bigint AND state = 'failed' GROUP BY reason"
        " ORDER BY n DESC, reason",
        "counting failures",
        {0},
        true,
        NULL,
        NULL,
        0,
        NULL};
    pg_p_init(&x.p);
    pemn_rc rc = pg_run(st, PG_READ, fleet_query_body, &x, err);
    for (int i = 0; !rc && i < PQntuples(x.r); i++) {
        char reason[STORE_REASON_MAX];
        pg_text(x.r, i, 0, reason, sizeof reason);
        if (cb(ctx, reason, (uint64_t)pg_i64(x.r, i, 1), (uint64_t)pg_i64(x.r, i, 2)))
            rc = PEMN_ECANCELED;
    }
    PQclear(x.r);
    return rc;
}

/* ---- the audit log ----------------------------------------------------------------------- */
static pemn_rc pg_console_audit(struct store *st, const struct store_audit_query *a,
                                store_audit_cb cb, void *ctx, struct pemn_err *err)
{
    struct one_query q = {
        "SELECT id, at, actor, action, target, detail FROM audit WHERE ($1::bigint = 0 OR"
        " id < $1::bigint) AND ($2::text = '' OR action = $2::text OR"
        " left(action, length($2::text) + 1) = $2::text || '.') AND ($3::text = '' OR"
        " actor = $3::text) AND ($4::text = '' OR target = $4::text OR (right($4::text, 1) ="
        " '*' AND left(target, length($4::text) - 1) = left($4::text, length($4::text) - 1)))"
        " AND ($5::text = '' OR strpos(actor, $5::text) > 0 OR strpos(action, $5::text) > 0 OR"
        " strpos(target, $5::text) > 0 OR strpos(detail, $5::text) > 0)"
        " ORDER BY id DESC LIMIT $6::bigint",
        "reading the audit log",
        {0},
        NULL};
    pg_p_init(&q.p);
    pg_p_i64(&q.p, a->before > 0 ? a->before : 0);
    pg_p_text(&q.p, nz(a->action));
    pg_p_text(&q.p, nz(a->actor));
    pg_p_text(&q.p, nz(a->target));
    pg_p_text(&q.p, nz(a->text));
    pg_p_i64(&q.p, a->limit);
    pemn_rc rc = pg_run(st, PG_SINGLE, one_body, &q, err);
    for (int i = 0; !rc && i < PQntuples(q.r); i++) {
        struct store_audit x = {
            .id = pg_i64(q.r, i, 0),
            .at = pg_i64(q.r, i, 1),
            .actor = PQgetvalue(q.r, i, 2),
            .action = PQgetvalue(q.r, i, 3),
            .target = PQgetvalue(q.r, i, 4),
            .detail = PQgetvalue(q.r, i, 5),
        };
        if (cb(ctx, &x))
            rc = PEMN_ECANCELED;
    }
    PQclear(q.r);
    return rc;
}

const struct store_console_ops pg_console_ops = {
    .history = pg_console_history,
    .progress_sample = pg_console_progress_sample,
    .progress = pg_console_progress,
    .devices = pg_console_devices,
    .failures = pg_console_failures,
    .audit = pg_console_audit,
};
