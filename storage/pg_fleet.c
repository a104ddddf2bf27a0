/*
 * storage/pg_fleet.c — fleets, devices and rollouts (store_fleet.h) on PostgreSQL.
 *
 * Concurrency (pg_int.h gives the lock order):
 *   - every change of a fleet's target, rollout or state reads the fleet row FOR UPDATE, so a
 *     tag move, a fleet PUT and an abort on one fleet run one after the other and none
 *     overwrites the other's rollout;
 *   - a report locks its device row, moves the device's contribution between the per-rollout
 *     counters (rollout_counts) and reads the new totals from the same UPDATE ... RETURNING:
 *     two concurrent reports see 1 and 2, never 1 and 1, and no report scans the fleet;
 *   - a poll is one read statement; the last_seen refresh it owes is queued and written by
 *     a background thread in one batched UPDATE per second per replica (storage/pg_touch.c;
 *     device_get flushes the queue first, so this replica reads its own touches).
 */
#include "storage/pg_int.h"

#include "proto/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLEET_COLS                                                                                 \
    "f.id, f.name, f.model, f.version, f.tag, f.release, f.digest, f.size, f.prev_model,"          \
    " f.prev_version, f.prev_tag, f.prev_release, f.prev_digest, f.prev_size, f.rollout_id,"       \
    " f.percent_bp, f.abort_failure_bp, f.abort_min_devices, f.state, f.state_reason,"             \
    " f.rollout_started, f.created, f.updated"
#define FLEET_NCOLS 23
#define DEVICE_COLS                                                                                \
    "d.id, d.first_seen, d.last_seen, d.reported, d.state, d.reason, d.version, d.release,"        \
    " d.digest, d.report_rollout, d.message, d.fleet_id"

static int64_t fleet_row(const PGresult *r, int row, struct store_fleet *f)
{
    char state[16];
    int c = 0;
    memset(f, 0, sizeof *f);
    int64_t id = pg_i64(r, row, c++);
    pg_text(r, row, c++, f->name, sizeof f->name);
    pg_text(r, row, c++, f->target.model, sizeof f->target.model);
    pg_text(r, row, c++, f->target.version, sizeof f->target.version);
    pg_text(r, row, c++, f->target.tag, sizeof f->target.tag);
    f->target.release = (uint64_t)pg_i64(r, row, c++);
    pg_text(r, row, c++, f->target.digest, sizeof f->target.digest);
    f->target.size = (uint64_t)pg_i64(r, row, c++);
    pg_text(r, row, c++, f->previous.model, sizeof f->previous.model);
    pg_text(r, row, c++, f->previous.version, sizeof f->previous.version);
    pg_text(r, row, c++, f->previous.tag, sizeof f->previous.tag);
    f->previous.release = (uint64_t)pg_i64(r, row, c++);
    pg_text(r, row, c++, f->previous.digest, sizeof f->previous.digest);
    f->previous.size = (uint64_t)pg_i64(r, row, c++);
    f->has_previous = f->previous.digest[0] != 0;
    pg_text(r, row, c++, f->rollout_id, sizeof f->rollout_id);
    f->percent_bp = (uint32_t)pg_i64(r, row, c++);
    f->abort_failure_bp = (uint32_t)pg_i64(r, row, c++);
    f->abort_min_devices = (uint64_t)pg_i64(r, row, c++);
    pg_text(r, row, c++, state, sizeof state);
    f->state = store_rollout_state_parse(state);
    pg_text(r, row, c++, f->state_reason, sizeof f->state_reason);
    f->rollout_started = pg_i64(r, row, c++);
    f->created = pg_i64(r, row, c++);
    f->updated = pg_i64(r, row, c++);
    return id;
}

/* Device columns starting at c0 (the fleet name is filled by the caller); returns fleet_id. */
static int64_t device_row(const PGresult *r, int row, int c0, struct store_device *d)
{
    int c = c0;
    memset(d, 0, sizeof *d);
    pg_text(r, row, c++, d->id, sizeof d->id);
    d->first_seen = pg_i64(r, row, c++);
    d->last_seen = pg_i64(r, row, c++);
    d->reported = pg_i64(r, row, c++);
    pg_text(r, row, c++, d->state, sizeof d->state);
    pg_text(r, row, c++, d->reason, sizeof d->reason);
    pg_text(r, row, c++, d->version, sizeof d->version);
    d->release = (uint64_t)pg_i64(r, row, c++);
    pg_text(r, row, c++, d->digest, sizeof d->digest);
    pg_text(r, row, c++, d->report_rollout, sizeof d->report_rollout);
    pg_text(r, row, c++, d->message, sizeof d->message);
    return pg_i64(r, row, c);
}

/* Reads a fleet (lock: FOR UPDATE). PEMN_ENOTFOUND when absent. */
static pemn_rc fleet_read(struct pg_conn *c, const char *name, bool lock, struct store_fleet *f,
                          int64_t *id, struct pemn_err *err)
{
    static const char sql[] = "SELECT " FLEET_COLS " FROM fleets f WHERE f.name = $1";
    static const char sql_lock[] =
        "SELECT " FLEET_COLS " FROM fleets f WHERE f.name = $1 FOR UPDATE";
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, name);
    PGresult *r = pg_exec(c, lock ? sql_lock : sql, &p, false, "reading a fleet", NULL, err);
    if (!r)
        return PEMN_EDB;
    pemn_rc rc = PEMN_OK;
    if (PQntuples(r) == 1) {
        int64_t i = fleet_row(r, 0, f);
        if (id)
            *id = i;
    } else {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no fleet '%s'", name);
    }
    PQclear(r);
    return rc;
}

static void p_target(struct pg_params *p, const struct store_fleet_target *t)
{
    pg_p_text(p, t->model);
    pg_p_text(p, t->version);
    pg_p_text(p, t->tag);
    pg_p_i64(p, (int64_t)t->release);
    pg_p_text(p, t->digest);
    pg_p_i64(p, (int64_t)t->size);
}

/* Writes f (insert when id == 0). A concurrent insert of the same name is retried. */
static pemn_rc fleet_write(struct pg_conn *c, int64_t id, const struct store_fleet *f,
                           struct pemn_err *err)
{
    static const char sql_ins[] =
        "INSERT INTO fleets(name, model, version, tag, release, digest, size, prev_model,"
        " prev_version, prev_tag, prev_release, prev_digest, prev_size, rollout_id, percent_bp,"
        " abort_failure_bp, abort_min_devices, state, state_reason, rollout_started, created,"
        " updated) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
        " $17, $18, $19, $20, $21, $22)";
    static const char sql_upd[] =
        "UPDATE fleets SET name = $1, model = $2, version = $3, tag = $4, release = $5, digest = "
        "$6,"
        " size = $7, prev_model = $8, prev_version = $9, prev_tag = $10, prev_release = $11,"
        " prev_digest = $12, prev_size = $13, rollout_id = $14, percent_bp = $15,"
        " abort_failure_bp = $16, abort_min_devices = $17, state = $18, state_reason = $19,"
        " rollout_started = $20, created = $21, updated = $22 WHERE id = $23";
    struct store_fleet_target none;
    memset(&none, 0, sizeof none);
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, f->name);
    p_target(&p, &f->target);
    p_target(&p, f->has_previous ? &f->previous : &none);
    pg_p_text(&p, f->rollout_id);
    pg_p_i64(&p, f->percent_bp);
    pg_p_i64(&p, f->abort_failure_bp);
    pg_p_i64(&p, (int64_t)f->abort_min_devices);
    pg_p_text(&p, store_rollout_state_name(f->state));
    pg_p_text(&p, f->state_reason);
    pg_p_i64(&p, f->rollout_started);
    pg_p_i64(&p, f->created);
    pg_p_i64(&p, f->updated);
    if (id)
        pg_p_i64(&p, id);
    char state[6];
    PGresult *r = pg_exec(c, id ? sql_upd : sql_ins, &p, false, "writing a fleet", state, err);
    if (!r) {
        if (!strcmp(state, "23505"))
            c->retry = true; /* created by another transaction meanwhile: run again */
        return PEMN_EDB;
    }
    PQclear(r);
    return PEMN_OK;
}

/* The database clock, for fields set in C. */
static pemn_rc db_now(struct pg_conn *c, int64_t *now, struct pemn_err *err)
{
    static const char sql[] = "SELECT " PG_NOW;
    PGresult *r = pg_exec(c, sql, NULL, false, "reading the clock", NULL, err);
    if (!r)
        return PEMN_EDB;
    *now = pg_i64(r, 0, 0);
    PQclear(r);
    return PEMN_OK;
}

/* A target given by tag is the tag's version as of this transaction: the caller resolved
 * the tag before, and a tag move may have committed since (it would then not have moved
 * this fleet, which did not follow the tag yet). The tag row is locked FOR SHARE (tags come
 * before fleets in the lock order) so no move slips in before this transaction commits. */
static pemn_rc tag_now(struct pg_conn *c, const struct store_fleet_target *t,
                       struct store_fleet_target *out, struct pemn_err *err)
{
    /* first the lock (it waits for a move in flight), then the read in a new statement:
     * under READ COMMITTED that statement sees the move once it committed (a locking read
     * of the join would re-check the moved tag row against the old version row) */
    static const char sql_lock[] = "SELECT 1 FROM tags t JOIN models m ON m.id = t.model_id"
                                   " WHERE m.name = $1 AND t.tag = $2 FOR SHARE OF t";
    static const char sql[] =
        "SELECT v.version, v.release, b.digest, b.size FROM tags t JOIN models m ON"
        " m.id = t.model_id JOIN versions v ON v.id = t.version_id JOIN blobs b ON"
        " b.id = v.blob_id WHERE m.name = $1 AND t.tag = $2";
    *out = *t;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, t->model);
    pg_p_text(&p, t->tag);
    pemn_rc rc = pg_cmd(c, sql_lock, &p, "locking a tag", err);
    PGresult *r = rc ? NULL : pg_exec(c, sql, &p, false, "reading a tag", NULL, err);
    if (!r)
        return PEMN_EDB;
    if (PQntuples(r) == 1) { /* a deleted tag leaves the target as given */
        pg_text(r, 0, 0, out->version, sizeof out->version);
        out->release = (uint64_t)pg_i64(r, 0, 1);
        pg_text(r, 0, 2, out->digest, sizeof out->digest);
        out->size = (uint64_t)pg_i64(r, 0, 3);
    }
    PQclear(r);
    return PEMN_OK;
}

/* store_fleet_put's rules on c, inside the caller's transaction, the fleet row locked. */
static pemn_rc fleet_put_on(struct pg_conn *c, const char *fleet,
                            const struct store_fleet_target *t, uint32_t percent_bp,
                            uint32_t abort_failure_bp, uint64_t abort_min_devices,
                            const char *new_rollout_id, const char *actor, const char *action,
                            bool *begun, struct pemn_err *err)
{
    struct store_fleet f;
    struct store_fleet_target cur;
    int64_t id = 0, now = 0;
    bool begin = true;
    pemn_rc rc = db_now(c, &now, err);
    if (!rc && t->tag[0] && !strcmp(action, "fleet.put")) {
        rc = tag_now(c, t, &cur, err);
        t = &cur;
    }
    if (rc)
        return rc;
    rc = fleet_read(c, fleet, true, &f, &id, err);
    if (rc == PEMN_ENOTFOUND || rc == PEMN_OK) {
        if (rc == PEMN_ENOTFOUND)
            id = 0;
        begin = store_fleet_retarget(&f, rc == PEMN_OK, fleet, t->digest, now);
        rc = PEMN_OK;
    } else {
        return rc;
    }
    f.target = *t;
    f.percent_bp = percent_bp;
    f.abort_failure_bp = abort_failure_bp;
    f.abort_min_devices = abort_min_devices;
    f.updated = now;
    if (begin) {
        snprintf(f.rollout_id, sizeof f.rollout_id, "%s", new_rollout_id);
        f.state = STORE_ROLLOUT_ACTIVE;
        if (t->tag[0])
            snprintf(f.state_reason, sizeof f.state_reason, "new target %.90s %.90s (tag %.40s)",
                     t->model, t->version, t->tag);
        else
            snprintf(f.state_reason, sizeof f.state_reason, "new target %.100s %.100s", t->model,
                     t->version);
        f.rollout_started = now;
    }
    rc = fleet_write(c, id, &f, err);
    if (!rc) {
        char detail[STORE_LABEL_MAX * 3 + 128];
        snprintf(detail, sizeof detail, "%s/%s%s%s %.2f%%%s%s", t->model, t->version,
                 t->tag[0] ? " tag " : "", t->tag, percent_bp / 100.0, begin ? " new rollout " : "",
                 begin ? f.rollout_id : "");
        rc = pg_audit(c, actor, action, fleet, detail, err);
    }
    if (!rc && begun)
        *begun = begin;
    return rc;
}

struct put_ctx {
    const char *fleet;
    const struct store_fleet_target *t;
    uint32_t percent_bp, abort_failure_bp;
    uint64_t abort_min_devices;
    const char *rollout_id, *actor;
    bool started;
    struct store_fleet out;
};

static pemn_rc put_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    struct put_ctx *x = vctx;
    pemn_rc rc =
        fleet_put_on(c, x->fleet, x->t, x->percent_bp, x->abort_failure_bp, x->abort_min_devices,
                     x->rollout_id, x->actor, "fleet.put", &x->started, err);
    if (!rc)
        rc = fleet_read(c, x->fleet, false, &x->out, NULL, err);
    return rc;
}

static pemn_rc pg_fleet_put(struct store *st, const char *fleet, const struct store_fleet_target *t,
                            uint32_t percent_bp, uint32_t abort_failure_bp,
                            uint64_t abort_min_devices, const char *new_rollout_id,
                            const char *actor, bool *started, struct store_fleet *out,
                            struct pemn_err *err)
{
    struct put_ctx x = {.fleet = fleet,
                        .t = t,
                        .percent_bp = percent_bp,
                        .abort_failure_bp = abort_failure_bp,
                        .abort_min_devices = abort_min_devices,
                        .rollout_id = new_rollout_id,
                        .actor = actor};
    pemn_rc rc = pg_run(st, PG_WRITE, put_body, &x, err);
    if (!rc) {
        if (started)
            *started = x.started;
        if (out)
            *out = x.out;
    }
    return rc;
}

pemn_rc pg_fleet_follow_tag(struct pg_conn *c, const struct store_version *v, const char *tag,
                            const char *actor, unsigned *moved, struct pemn_err *err)
{
    /* locked in name order, like every other fleet writer */
    static const char sql[] = "SELECT f.name, f.percent_bp, f.abort_failure_bp,"
                              " f.abort_min_devices FROM fleets f WHERE f.model = $1 AND"
                              " f.tag = $2 AND f.digest <> $3 ORDER BY f.name FOR UPDATE";
    *moved = 0;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, v->model);
    pg_p_text(&p, tag);
    pg_p_text(&p, v->digest);
    PGresult *r = pg_exec(c, sql, &p, false, "finding the fleets that follow a tag", NULL, err);
    if (!r)
        return PEMN_EDB;
    pemn_rc rc = PEMN_OK;
    for (int i = 0; i < PQntuples(r) && !rc; i++) {
        char name[STORE_LABEL_MAX];
        pg_text(r, i, 0, name, sizeof name);
        struct store_fleet_target t;
        memset(&t, 0, sizeof t);
        snprintf(t.model, sizeof t.model, "%s", v->model);
        snprintf(t.version, sizeof t.version, "%s", v->version);
        snprintf(t.tag, sizeof t.tag, "%s", tag);
        t.release = v->release;
        memcpy(t.digest, v->digest, sizeof t.digest);
        t.size = v->size;
        char rid[STORE_ROLLOUT_ID_MAX];
        store_new_rollout_id(rid);
        rc = fleet_put_on(c, name, &t, (uint32_t)pg_i64(r, i, 1), (uint32_t)pg_i64(r, i, 2),
                          (uint64_t)pg_i64(r, i, 3), rid, actor, "fleet.follow", NULL, err);
        if (!rc)
            (*moved)++;
    }
    PQclear(r);
    return rc;
}

struct get_ctx {
    const char *fleet;
    struct store_fleet *out;
    PGresult *r;
};

static pemn_rc get_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    struct get_ctx *x = vctx;
    return fleet_read(c, x->fleet, false, x->out, NULL, err);
}

static pemn_rc pg_fleet_get(struct store *st, const char *fleet, struct store_fleet *out,
                            struct pemn_err *err)
{
    struct store_fleet tmp;
    struct get_ctx x = {fleet, out ? out : &tmp, NULL};
    return pg_run(st, PG_SINGLE, get_body, &x, err);
}

static pemn_rc list_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "SELECT " FLEET_COLS " FROM fleets f ORDER BY f.name";
    struct get_ctx *x = vctx;
    PQclear(x->r);
    x->r = pg_exec(c, sql, NULL, false, "listing fleets", NULL, err);
    return x->r ? PEMN_OK : PEMN_EDB;
}

static pemn_rc pg_fleet_list(struct store *st, store_fleet_cb cb, void *ctx, struct pemn_err *err)
{
    struct get_ctx x = {NULL, NULL, NULL};
    pemn_rc rc = pg_run(st, PG_SINGLE, list_body, &x, err);
    for (int i = 0; !rc && i < PQntuples(x.r); i++) {
        struct store_fleet f;
        fleet_row(x.r, i, &f);
        if (cb(ctx, &f))
            rc = PEMN_ECANCELED;
    }
    PQclear(x.r);
    return rc;
}

struct state_ctx {
    struct store *st;
    const char *fleet;
    enum store_rollout_state to;
    const char *reason, *rollout_id, *actor;
    bool changed;
    struct store_fleet f;
};

static pemn_rc state_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    struct state_ctx *x = vctx;
    struct store_fleet *f = &x->f;
    int64_t id = 0, now = 0;
    x->changed = false;
    pemn_rc rc = db_now(c, &now, err);
    if (!rc)
        rc = fleet_read(c, x->fleet, true, f, &id, err);
    if (rc)
        return rc;
    pg_hook(x->st, "state.read");
    if (x->rollout_id && strcmp(x->rollout_id, f->rollout_id) != 0)
        return proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                         "rollout %s is no longer current in fleet '%s'", x->rollout_id, x->fleet);
    if (f->state == STORE_ROLLOUT_ABORTED && x->to != STORE_ROLLOUT_ABORTED)
        return proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                         "the rollout of fleet '%s' was aborted (%s); set a new target to start "
                         "another",
                         x->fleet, f->state_reason);
    if (f->state == x->to)
        return PEMN_OK;
    x->changed = true;
    f->state = x->to;
    snprintf(f->state_reason, sizeof f->state_reason, "%s", x->reason ? x->reason : "");
    f->updated = now;
    rc = fleet_write(c, id, f, err);
    if (!rc)
        rc = pg_audit(c, x->actor,
                      x->to == STORE_ROLLOUT_ABORTED  ? "fleet.abort"
                      : x->to == STORE_ROLLOUT_PAUSED ? "fleet.pause"
                                                      : "fleet.resume",
                      x->fleet, x->reason, err);
    return rc;
}

static pemn_rc pg_fleet_set_state(struct store *st, const char *fleet, enum store_rollout_state to,
                                  const char *reason, const char *rollout_id, const char *actor,
                                  bool *changed, struct store_fleet *out, struct pemn_err *err)
{
    struct state_ctx x = {.st = st,
                          .fleet = fleet,
                          .to = to,
                          .reason = reason,
                          .rollout_id = rollout_id,
                          .actor = actor};
    pemn_rc rc = pg_run(st, PG_WRITE, state_body, &x, err);
    if (!rc) {
        if (changed)
            *changed = x.changed;
        if (out)
            *out = x.f;
    }
    return rc;
}

/* ---- devices ------------------------------------------------------------------------------- */
/* The device's row locked, created in fid or moved to fid (its report cleared and its
 * contribution to the old fleet's counters taken back). *old_rollout / *old_failed: what
 * its last report counted for in fid afterwards ("" when nothing). */
static pemn_rc device_lock_in(struct pg_conn *c, const char *id, int64_t fid,
                              char old_rollout[STORE_ROLLOUT_ID_MAX], bool *old_failed,
                              struct pemn_err *err)
{
    static const char sql_lock[] =
        "SELECT fleet_id, report_rollout, state FROM devices WHERE id = $1 FOR UPDATE";
    static const char sql_new[] =
        "INSERT INTO devices(id, fleet_id, first_seen, last_seen)"
        " VALUES($1, $2, " PG_NOW ", " PG_NOW ") ON CONFLICT(id) DO NOTHING";
    static const char sql_move[] =
        "UPDATE devices SET fleet_id = $2, last_seen = " PG_NOW ", reported = 0, state = '',"
        " reason = '', digest = '', report_rollout = '', message = '' WHERE id = $1";
    static const char sql_uncount[] =
        "UPDATE rollout_counts SET reporting = reporting - 1, failed = failed - $3"
        " WHERE fleet_id = $1 AND rollout_id = $2";
    old_rollout[0] = '\0';
    *old_failed = false;
    for (int pass = 0; pass < 2; pass++) {
        struct pg_params p;
        pg_p_init(&p);
        pg_p_text(&p, id);
        PGresult *r = pg_exec(c, sql_lock, &p, false, "locking a device", NULL, err);
        if (!r)
            return PEMN_EDB;
        if (PQntuples(r) == 0) {
            PQclear(r);
            if (pass)
                return proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "device %s vanished", id);
            pg_p_i64(&p, fid);
            pemn_rc rc = pg_cmd(c, sql_new, &p, "registering a device", err);
            if (rc)
                return rc;
            continue; /* inserted here, or by someone else meanwhile: lock it */
        }
        int64_t cur = pg_i64(r, 0, 0);
        char rol[STORE_ROLLOUT_ID_MAX], state[STORE_DEVICE_STATE_MAX];
        pg_text(r, 0, 1, rol, sizeof rol);
        pg_text(r, 0, 2, state, sizeof state);
        PQclear(r);
        bool failed = !strcmp(state, "failed");
        if (cur == fid) {
            snprintf(old_rollout, STORE_ROLLOUT_ID_MAX, "%s", rol);
            *old_failed = failed;
            return PEMN_OK;
        }
        if (rol[0]) {
            struct pg_params u;
            pg_p_init(&u);
            pg_p_i64(&u, cur);
            pg_p_text(&u, rol);
            pg_p_i64(&u, failed ? 1 : 0);
            pemn_rc rc = pg_cmd(c, sql_uncount, &u, "counting devices", err);
            if (rc)
                return rc;
        }
        pg_p_i64(&p, fid);
        return pg_cmd(c, sql_move, &p, "moving a device", err);
    }
    return PEMN_OK;
}

struct poll_ctx {
    const char *fleet, *device;
    struct store_fleet *f;
    struct store_device *d;
    bool found; /* the device is registered in this fleet */
    int64_t now;
};

static pemn_rc poll_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "SELECT " FLEET_COLS ", " DEVICE_COLS ", " PG_NOW
                              " FROM fleets f LEFT JOIN devices d ON d.id = $2"
                              " WHERE f.name = $1";
    struct poll_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->fleet);
    pg_p_text(&p, x->device);
    PGresult *r = pg_exec(c, sql, &p, false, "reading a fleet", NULL, err);
    if (!r)
        return PEMN_EDB;
    pemn_rc rc = PEMN_OK;
    if (PQntuples(r) != 1) {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no fleet '%s'", x->fleet);
    } else {
        int64_t fid = fleet_row(r, 0, x->f);
        x->found = !PQgetisnull(r, 0, FLEET_NCOLS) && device_row(r, 0, FLEET_NCOLS, x->d) == fid;
        snprintf(x->d->fleet, sizeof x->d->fleet, "%s", x->f->name);
        x->now = pg_i64(r, 0, FLEET_NCOLS + 12);
    }
    PQclear(r);
    return rc;
}

struct reg_ctx {
    const char *fleet, *device;
    int64_t now;
};

static pemn_rc register_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    struct reg_ctx *x = vctx;
    struct store_fleet f;
    int64_t fid = 0;
    char rol[STORE_ROLLOUT_ID_MAX];
    bool failed;
    pemn_rc rc = fleet_read(c, x->fleet, false, &f, &fid, err);
    if (!rc)
        rc = device_lock_in(c, x->device, fid, rol, &failed, err);
    return rc;
}

static pemn_rc sync_touch_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "UPDATE devices SET last_seen = $2 WHERE id = $1 AND last_seen < $2";
    struct reg_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->device);
    pg_p_i64(&p, x->now);
    return pg_cmd(c, sql, &p, "touching a device", err);
}

static pemn_rc pg_device_poll(struct store *st, const char *fleet, const char *device,
                              int touch_seconds, struct store_fleet *fleet_out,
                              struct store_device *dev_out, struct pemn_err *err)
{
    struct poll_ctx x = {fleet, device, fleet_out, dev_out, false, 0};
    pemn_rc rc = pg_run(st, PG_SINGLE, poll_body, &x, err);
    if (rc)
        return rc;
    if (!x.found) {
        /* first contact (or a move): one short write, then read back what is stored */
        struct reg_ctx g = {fleet, device, 0};
        rc = pg_run(st, PG_WRITE, register_body, &g, err);
        if (!rc)
            rc = pg_run(st, PG_SINGLE, poll_body, &x, err);
        if (!rc && !x.found)
            rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "device vanished after registering");
        return rc;
    }
    if (x.now - dev_out->last_seen >= touch_seconds) {
        if (!pg_touch_enqueue(st, device, x.now)) {
            struct reg_ctx g = {fleet, device, x.now};
            rc = pg_run(st, PG_WRITE, sync_touch_body, &g, err);
        }
        if (!rc)
            dev_out->last_seen = x.now;
    }
    return rc;
}

struct report_ctx {
    struct store *st;
    const char *fleet;
    const struct store_device *r;
    const char *counts_for;
    uint64_t reporting, failed;
};

static pemn_rc report_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] =
        "UPDATE devices SET last_seen = " PG_NOW ", reported = " PG_NOW ", state = $2,"
        " reason = $3, version = $4, release = $5, digest = $6, report_rollout = $7,"
        " message = $8 WHERE id = $1";
    static const char sql_uncount[] =
        "UPDATE rollout_counts SET reporting = reporting - 1, failed = failed - $3"
        " WHERE fleet_id = $1 AND rollout_id = $2";
    static const char sql_count[] =
        "INSERT INTO rollout_counts(fleet_id, rollout_id, reporting, failed)"
        " VALUES($1, $2, $3, $4) ON CONFLICT(fleet_id, rollout_id) DO UPDATE SET"
        " reporting = rollout_counts.reporting + excluded.reporting,"
        " failed = rollout_counts.failed + excluded.failed RETURNING reporting, failed";
    struct report_ctx *x = vctx;
    const struct store_device *r = x->r;
    const char *now_for = x->counts_for ? x->counts_for : "";
    x->reporting = x->failed = 0;
    struct store_fleet f;
    int64_t fid = 0;
    char old_for[STORE_ROLLOUT_ID_MAX];
    bool old_failed = false;
    pemn_rc rc = fleet_read(c, x->fleet, false, &f, &fid, err);
    if (!rc)
        rc = device_lock_in(c, r->id, fid, old_for, &old_failed, err);
    if (rc)
        return rc;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, r->id);
    pg_p_text(&p, r->state);
    pg_p_text(&p, r->reason);
    pg_p_text(&p, r->version);
    pg_p_i64(&p, (int64_t)r->release);
    pg_p_text(&p, r->digest);
    pg_p_text(&p, now_for);
    pg_p_text(&p, r->message);
    if ((rc = pg_cmd(c, sql, &p, "storing a device report", err)))
        return rc;
    /* move this device's contribution between the rollouts' counters */
    bool same = old_for[0] && !strcmp(old_for, now_for);
    bool now_failed = !strcmp(r->state, "failed");
    if (old_for[0] && !same) {
        pg_p_init(&p);
        pg_p_i64(&p, fid);
        pg_p_text(&p, old_for);
        pg_p_i64(&p, old_failed ? 1 : 0);
        if ((rc = pg_cmd(c, sql_uncount, &p, "counting devices", err)))
            return rc;
    }
    if (now_for[0]) {
        pg_p_init(&p);
        pg_p_i64(&p, fid);
        pg_p_text(&p, now_for);
        pg_p_i64(&p, same ? 0 : 1);
        pg_p_i64(&p, (int64_t)now_failed - (int64_t)(same && old_failed));
        PGresult *res = pg_exec(c, sql_count, &p, false, "counting devices", NULL, err);
        if (!res)
            return PEMN_EDB;
        x->reporting = (uint64_t)pg_i64(res, 0, 0);
        x->failed = (uint64_t)pg_i64(res, 0, 1);
        PQclear(res);
    }
    pg_hook(x->st, "report.counted");
    return PEMN_OK;
}

static pemn_rc pg_device_report(struct store *st, const char *fleet, const struct store_device *r,
                                const char *counts_for, uint64_t *reporting, uint64_t *failed,
                                struct pemn_err *err)
{
    struct report_ctx x = {st, fleet, r, counts_for, 0, 0};
    *reporting = *failed = 0;
    pemn_rc rc = pg_run(st, PG_WRITE, report_body, &x, err);
    if (!rc) {
        *reporting = x.reporting;
        *failed = x.failed;
    }
    return rc;
}

struct dev_ctx {
    const char *fleet, *device;
    struct store_device *out;
    bool found;
};

static pemn_rc device_get_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "SELECT " DEVICE_COLS " FROM devices d JOIN fleets f ON"
                              " f.id = d.fleet_id WHERE d.id = $1 AND f.name = $2";
    struct dev_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->device);
    pg_p_text(&p, x->fleet);
    PGresult *r = pg_exec(c, sql, &p, false, "reading a device", NULL, err);
    if (!r)
        return PEMN_EDB;
    x->found = PQntuples(r) == 1;
    if (x->found) {
        device_row(r, 0, 0, x->out);
        snprintf(x->out->fleet, sizeof x->out->fleet, "%s", x->fleet);
    }
    PQclear(r);
    return PEMN_OK;
}

static pemn_rc pg_device_get(struct store *st, const char *fleet, const char *device,
                             struct store_device *out, struct pemn_err *err)
{
    pg_touch_flush(st); /* this replica reads its own queued touches */
    struct dev_ctx x = {fleet, device, out, false};
    pemn_rc rc = pg_run(st, PG_SINGLE, device_get_body, &x, err);
    if (!rc && !x.found)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no device '%s' in fleet '%s'", device,
                       fleet);
    return rc;
}

struct counts_ctx {
    const char *fleet;
    PGresult *r[3];
};

static pemn_rc counts_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql_states[] =
        "SELECT state, count(*) FROM devices WHERE fleet_id = $1 GROUP BY state ORDER BY state";
    static const char sql_versions[] = "SELECT version, count(*) FROM devices WHERE fleet_id ="
                                       " $1 GROUP BY version ORDER BY version";
    static const char sql_rollout[] =
        "SELECT state, count(*) FROM devices WHERE fleet_id = $1 AND report_rollout = $2"
        " GROUP BY state";
    struct counts_ctx *x = vctx;
    for (int q = 0; q < 3; q++) {
        PQclear(x->r[q]);
        x->r[q] = NULL;
    }
    struct store_fleet f;
    int64_t fid = 0;
    pemn_rc rc = fleet_read(c, x->fleet, false, &f, &fid, err);
    const char *sqls[3] = {sql_states, sql_versions, sql_rollout};
    for (int q = 0; q < 3 && !rc; q++) {
        struct pg_params p;
        pg_p_init(&p);
        pg_p_i64(&p, fid);
        if (q == 2)
            pg_p_text(&p, f.rollout_id);
        if (!(x->r[q] = pg_exec(c, sqls[q], &p, false, "counting devices", NULL, err)))
            rc = PEMN_EDB;
    }
    return rc;
}

static pemn_rc pg_fleet_counts(struct store *st, const char *fleet, struct store_fleet_counts *out,
                               store_count_cb cb, void *ctx, struct pemn_err *err)
{
    memset(out, 0, sizeof *out);
    struct counts_ctx x = {fleet, {NULL, NULL, NULL}};
    /* one snapshot so the three counts agree with each other */
    pemn_rc rc = pg_run(st, PG_READ, counts_body, &x, err);
    for (int q = 0; q < 3 && !rc; q++) {
        for (int i = 0; i < PQntuples(x.r[q]) && !rc; i++) {
            char key[STORE_LABEL_MAX];
            pg_text(x.r[q], i, 0, key, sizeof key);
            uint64_t n = (uint64_t)pg_i64(x.r[q], i, 1);
            if (q == 0)
                out->devices += n;
            if (q == 2) {
                out->reporting += n;
                if (!strcmp(key, "failed"))
                    out->failed += n;
                else if (!strcmp(key, "installed"))
                    out->installed += n;
                else
                    out->in_progress += n;
                continue;
            }
            if (cb && cb(ctx, q == 0 ? "state" : "version", key, n))
                rc = PEMN_ECANCELED;
        }
    }
    for (int q = 0; q < 3; q++)
        PQclear(x.r[q]);
    return rc;
}

const struct store_fleet_ops pg_fleet_ops = {
    .put = pg_fleet_put,
    .get = pg_fleet_get,
    .list = pg_fleet_list,
    .set_state = pg_fleet_set_state,
    .device_poll = pg_device_poll,
    .device_report = pg_device_report,
    .device_get = pg_device_get,
    .counts = pg_fleet_counts,
};
