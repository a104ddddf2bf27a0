/*
 * storage/sqlite_fleet.c — fleets, devices and rollouts (store_fleet.h) on SQLite.
 */
#include "storage/sqlite_fleet.h"
#include "storage/sqlite_int.h"
#include "storage/store_fleet.h"

#include "proto/err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Version 2: fleets (issue 5). */
const char sq_schema_v2_fleets[] =
    "CREATE TABLE fleets("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  model TEXT NOT NULL, version TEXT NOT NULL, tag TEXT NOT NULL,"
    "  release INTEGER NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,"
    /* previous target: prev_digest '' when there is none */
    "  prev_model TEXT NOT NULL, prev_version TEXT NOT NULL, prev_tag TEXT NOT NULL,"
    "  prev_release INTEGER NOT NULL, prev_digest TEXT NOT NULL, prev_size INTEGER NOT NULL,"
    "  rollout_id TEXT NOT NULL,"
    "  percent_bp INTEGER NOT NULL,"
    "  abort_failure_bp INTEGER NOT NULL,"
    "  abort_min_devices INTEGER NOT NULL,"
    "  state TEXT NOT NULL,"
    "  state_reason TEXT NOT NULL,"
    "  rollout_started INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL);"
    /* A device belongs to one fleet. report_rollout: the rollout its last report counted
     * for ('' for none). */
    "CREATE TABLE devices("
    "  id TEXT PRIMARY KEY,"
    "  fleet_id INTEGER NOT NULL REFERENCES fleets(id),"
    "  first_seen INTEGER NOT NULL,"
    "  last_seen INTEGER NOT NULL,"
    "  reported INTEGER NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL DEFAULT '',"
    "  reason TEXT NOT NULL DEFAULT '',"
    "  version TEXT NOT NULL DEFAULT '',"
    "  release INTEGER NOT NULL DEFAULT 0,"
    "  digest TEXT NOT NULL DEFAULT '',"
    "  report_rollout TEXT NOT NULL DEFAULT '') WITHOUT ROWID;"
    "CREATE INDEX devices_by_rollout ON devices(fleet_id, report_rollout, state);";

/* ---- fleet rows ---------------------------------------------------------------------------- */
#define FLEET_COLS                                                                                 \
    "id, name, model, version, tag, release, digest, size, prev_model, prev_version,"              \
    " prev_tag, prev_release, prev_digest, prev_size, rollout_id, percent_bp,"                     \
    " abort_failure_bp, abort_min_devices, state, state_reason, rollout_started, created,"         \
    " updated"

static int64_t fleet_row(sqlite3_stmt *s, int col0, struct store_fleet *f)
{
    char state[16];
    int c = col0;
    memset(f, 0, sizeof *f);
    int64_t id = sqlite3_column_int64(s, c++);
    sq_col_text(s, c++, f->name, sizeof f->name);
    sq_col_text(s, c++, f->target.model, sizeof f->target.model);
    sq_col_text(s, c++, f->target.version, sizeof f->target.version);
    sq_col_text(s, c++, f->target.tag, sizeof f->target.tag);
    f->target.release = (uint64_t)sqlite3_column_int64(s, c++);
    sq_col_text(s, c++, f->target.digest, sizeof f->target.digest);
    f->target.size = (uint64_t)sqlite3_column_int64(s, c++);
    sq_col_text(s, c++, f->previous.model, sizeof f->previous.model);
    sq_col_text(s, c++, f->previous.version, sizeof f->previous.version);
    sq_col_text(s, c++, f->previous.tag, sizeof f->previous.tag);
    f->previous.release = (uint64_t)sqlite3_column_int64(s, c++);
    sq_col_text(s, c++, f->previous.digest, sizeof f->previous.digest);
    f->previous.size = (uint64_t)sqlite3_column_int64(s, c++);
    f->has_previous = f->previous.digest[0] != 0;
    sq_col_text(s, c++, f->rollout_id, sizeof f->rollout_id);
    f->percent_bp = (uint32_t)sqlite3_column_int64(s, c++);
    f->abort_failure_bp = (uint32_t)sqlite3_column_int64(s, c++);
    f->abort_min_devices = (uint64_t)sqlite3_column_int64(s, c++);
    sq_col_text(s, c++, state, sizeof state);
    f->state = store_rollout_state_parse(state);
    sq_col_text(s, c++, f->state_reason, sizeof f->state_reason);
    f->rollout_started = sqlite3_column_int64(s, c++);
    f->created = sqlite3_column_int64(s, c++);
    f->updated = sqlite3_column_int64(s, c++);
    return id;
}

/* Reads a fleet on c. PEMN_ENOTFOUND when absent. */
static pemn_rc fleet_read(struct sq_conn *c, const char *name, struct store_fleet *f, int64_t *id,
                          struct pemn_err *err)
{
    static const char sql[] = "SELECT " FLEET_COLS " FROM fleets WHERE name = ?1";
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    pemn_rc rc = PEMN_OK;
    if (r == SQLITE_ROW) {
        int64_t i = fleet_row(s, 0, f);
        if (id)
            *id = i;
    } else if (r == SQLITE_DONE)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no fleet '%s'", name);
    else
        rc = sq_fail(c, err, "reading a fleet");
    sq_done(s);
    return rc;
}

static void bind_target(sqlite3_stmt *s, int first, const struct store_fleet_target *t)
{
    sqlite3_bind_text(s, first, t->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, first + 1, t->version, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, first + 2, t->tag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, first + 3, (sqlite3_int64)t->release);
    sqlite3_bind_text(s, first + 4, t->digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, first + 5, (sqlite3_int64)t->size);
}

/* Writes f (insert when id == 0) on c. */
static pemn_rc fleet_write(struct sq_conn *c, int64_t id, const struct store_fleet *f,
                           struct pemn_err *err)
{
    static const char sql_ins[] =
        "INSERT INTO fleets(name, model, version, tag, release, digest, size, prev_model,"
        " prev_version, prev_tag, prev_release, prev_digest, prev_size, rollout_id, percent_bp,"
        " abort_failure_bp, abort_min_devices, state, state_reason, rollout_started, created,"
        " updated) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
        " ?17, ?18, ?19, ?20, ?21, ?22)";
    static const char sql_upd[] =
        "UPDATE fleets SET model = ?2, version = ?3, tag = ?4, release = ?5, digest = ?6,"
        " size = ?7, prev_model = ?8, prev_version = ?9, prev_tag = ?10, prev_release = ?11,"
        " prev_digest = ?12, prev_size = ?13, rollout_id = ?14, percent_bp = ?15,"
        " abort_failure_bp = ?16, abort_min_devices = ?17, state = ?18, state_reason = ?19,"
        " rollout_started = ?20, created = ?21, updated = ?22 WHERE id = ?23";
    sqlite3_stmt *s = sq_stmt(c, id ? sql_upd : sql_ins, err);
    if (!s)
        return PEMN_EDB;
    struct store_fleet_target none;
    memset(&none, 0, sizeof none);
    sqlite3_bind_text(s, 1, f->name, -1, SQLITE_STATIC);
    bind_target(s, 2, &f->target);
    bind_target(s, 8, f->has_previous ? &f->previous : &none);
    sqlite3_bind_text(s, 14, f->rollout_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 15, f->percent_bp);
    sqlite3_bind_int64(s, 16, f->abort_failure_bp);
    sqlite3_bind_int64(s, 17, (sqlite3_int64)f->abort_min_devices);
    sqlite3_bind_text(s, 18, store_rollout_state_name(f->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 19, f->state_reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 20, f->rollout_started);
    sqlite3_bind_int64(s, 21, f->created);
    sqlite3_bind_int64(s, 22, f->updated);
    if (id)
        sqlite3_bind_int64(s, 23, id);
    int r = sqlite3_step(s);
    sq_done(s);
    return r == SQLITE_DONE ? PEMN_OK : sq_fail(c, err, "writing a fleet");
}

/* A target given by tag is the tag's version as of this (write) transaction: a tag move
 * may have committed since the caller resolved the tag. */
static pemn_rc tag_now(struct sq_conn *c, const struct store_fleet_target *t,
                       struct store_fleet_target *out, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT v.version, v.release, b.digest, b.size FROM tags t JOIN models m ON"
        " m.id = t.model_id JOIN versions v ON v.id = t.version_id JOIN blobs b ON"
        " b.id = v.blob_id WHERE m.name = ?1 AND t.tag = ?2";
    *out = *t;
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_text(s, 1, t->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, t->tag, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) { /* a deleted tag leaves the target as given */
        sq_col_text(s, 0, out->version, sizeof out->version);
        out->release = (uint64_t)sqlite3_column_int64(s, 1);
        sq_col_text(s, 2, out->digest, sizeof out->digest);
        out->size = (uint64_t)sqlite3_column_int64(s, 3);
    }
    sq_done(s);
    return r == SQLITE_ROW || r == SQLITE_DONE ? PEMN_OK : sq_fail(c, err, "reading a tag");
}

/* The body of a fleet PUT on c, inside the caller's transaction (store_fleet_put's rules);
 * action names the audit row. *begun: whether a new rollout began. */
static pemn_rc fleet_put_on(struct sq_conn *c, const char *fleet,
                            const struct store_fleet_target *t, uint32_t percent_bp,
                            uint32_t abort_failure_bp, uint64_t abort_min_devices,
                            const char *new_rollout_id, const char *actor, const char *action,
                            bool *begun, struct pemn_err *err)
{
    struct store_fleet f;
    struct store_fleet_target cur;
    int64_t id = 0;
    int64_t now = sq_now();
    bool begin = true;
    if (t->tag[0] && !strcmp(action, "fleet.put")) {
        pemn_rc trc = tag_now(c, t, &cur, err);
        if (trc)
            return trc;
        t = &cur;
    }
    pemn_rc rc = fleet_read(c, fleet, &f, &id, NULL);
    if (rc == PEMN_ENOTFOUND || rc == PEMN_OK) {
        if (rc == PEMN_ENOTFOUND)
            id = 0;
        begin = store_fleet_retarget(&f, rc == PEMN_OK, fleet, t->digest, now);
        rc = PEMN_OK;
    } else {
        rc = sq_fail(c, err, "reading a fleet");
    }
    if (!rc) {
        f.target = *t;
        f.percent_bp = percent_bp;
        f.abort_failure_bp = abort_failure_bp;
        f.abort_min_devices = abort_min_devices;
        f.updated = now;
        if (begin) {
            snprintf(f.rollout_id, sizeof f.rollout_id, "%s", new_rollout_id);
            f.state = STORE_ROLLOUT_ACTIVE;
            if (t->tag[0])
                snprintf(f.state_reason, sizeof f.state_reason,
                         "new target %.90s %.90s (tag %.40s)", t->model, t->version, t->tag);
            else
                snprintf(f.state_reason, sizeof f.state_reason, "new target %.100s %.100s",
                         t->model, t->version);
            f.rollout_started = now;
        }
        rc = fleet_write(c, id, &f, err);
    }
    if (!rc) {
        char detail[STORE_LABEL_MAX * 3 + 128];
        snprintf(detail, sizeof detail, "%s/%s%s%s %.2f%%%s%s", t->model, t->version,
                 t->tag[0] ? " tag " : "", t->tag, percent_bp / 100.0, begin ? " new rollout " : "",
                 begin ? f.rollout_id : "");
        rc = sq_audit(c, actor, action, fleet, detail, err);
    }
    if (!rc && begun)
        *begun = begin;
    return rc;
}

static pemn_rc sq_fleet_put(struct store *st, const char *fleet, const struct store_fleet_target *t,
                            uint32_t percent_bp, uint32_t abort_failure_bp,
                            uint64_t abort_min_devices, const char *new_rollout_id,
                            const char *actor, bool *started, struct store_fleet *out,
                            struct pemn_err *err)
{
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    bool begin = false;
    rc = fleet_put_on(c, fleet, t, percent_bp, abort_failure_bp, abort_min_devices, new_rollout_id,
                      actor, "fleet.put", &begin, err);
    if (!rc)
        rc = sq_commit(c, err);
    else
        sq_rollback(c);
    if (!rc) {
        if (started)
            *started = begin;
        if (out)
            rc = fleet_read(c, fleet, out, NULL, err);
    }
    sq_release(st, c);
    return rc;
}

/* ---- fleets that follow a tag ------------------------------------------------------------- */
pemn_rc sq_fleet_follow_tag(struct sq_conn *c, const struct store_version *v, const char *tag,
                            const char *actor, unsigned *moved, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT name FROM fleets WHERE model = ?1 AND tag = ?2 AND digest <> ?3 ORDER BY name";
    *moved = 0;
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        return PEMN_EDB;
    /* collect the names first: the statement is reset before the fleets are written */
    size_t n = 0, cap = 0;
    char(*names)[STORE_LABEL_MAX] = NULL;
    pemn_rc rc = PEMN_OK;
    sqlite3_bind_text(s, 1, v->model, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, tag, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, v->digest, -1, SQLITE_STATIC);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            void *p = realloc(names, nc * sizeof *names);
            if (!p) {
                rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
                break;
            }
            names = p;
            cap = nc;
        }
        sq_col_text(s, 0, names[n], sizeof names[n]);
        n++;
    }
    if (!rc && r != SQLITE_DONE)
        rc = sq_fail(c, err, "finding the fleets that follow a tag");
    sq_done(s);
    for (size_t i = 0; i < n && !rc; i++) {
        struct store_fleet f;
        rc = fleet_read(c, names[i], &f, NULL, err);
        if (rc)
            break;
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
        /* the fleet's rollout policy as last set */
        rc = fleet_put_on(c, names[i], &t, f.percent_bp, f.abort_failure_bp, f.abort_min_devices,
                          rid, actor, "fleet.follow", NULL, err);
        if (!rc)
            (*moved)++;
    }
    free(names);
    return rc;
}

static pemn_rc sq_fleet_get(struct store *st, const char *fleet, struct store_fleet *out,
                            struct pemn_err *err)
{
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (rc)
        return rc;
    rc = fleet_read(c, fleet, out, NULL, err);
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_fleet_list(struct store *st, store_fleet_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql[] = "SELECT " FLEET_COLS " FROM fleets ORDER BY name";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_fleet f;
        fleet_row(s, 0, &f);
        if (cb(ctx, &f)) {
            rc = PEMN_ECANCELED;
            break;
        }
    }
    if (!rc && r != SQLITE_DONE)
        rc = sq_fail(c, err, "listing fleets");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_fleet_set_state(struct store *st, const char *fleet, enum store_rollout_state to,
                                  const char *reason, const char *rollout_id, const char *actor,
                                  bool *changed, struct store_fleet *out, struct pemn_err *err)
{
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    struct store_fleet f;
    int64_t id;
    bool moved = false;
    rc = fleet_read(c, fleet, &f, &id, err);
    sq_hook(st, "state.read");
    if (!rc && rollout_id && strcmp(rollout_id, f.rollout_id) != 0)
        rc = proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                       "rollout %s is no longer current in fleet '%s'", rollout_id, fleet);
    if (!rc && f.state == STORE_ROLLOUT_ABORTED && to != STORE_ROLLOUT_ABORTED)
        rc = proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                       "the rollout of fleet '%s' was aborted (%s); set a new target to start "
                       "another",
                       fleet, f.state_reason);
    if (!rc && f.state != to) {
        moved = true;
        f.state = to;
        snprintf(f.state_reason, sizeof f.state_reason, "%s", reason ? reason : "");
        f.updated = sq_now();
        rc = fleet_write(c, id, &f, err);
        if (!rc)
            rc = sq_audit(c, actor,
                          to == STORE_ROLLOUT_ABORTED  ? "fleet.abort"
                          : to == STORE_ROLLOUT_PAUSED ? "fleet.pause"
                                                       : "fleet.resume",
                          fleet, reason, err);
    }
    if (!rc)
        rc = sq_commit(c, err);
    else
        sq_rollback(c);
    if (!rc) {
        if (changed)
            *changed = moved;
        if (out)
            *out = f;
    }
    sq_release(st, c);
    return rc;
}

/* ---- devices ------------------------------------------------------------------------------- */
#define DEVICE_COLS                                                                                \
    "d.id, f.name, d.first_seen, d.last_seen, d.reported, d.state, d.reason, d.version,"           \
    " d.release, d.digest, d.report_rollout, d.message, d.fleet_id"

static int64_t device_row(sqlite3_stmt *s, int c, struct store_device *d)
{
    memset(d, 0, sizeof *d);
    sq_col_text(s, c++, d->id, sizeof d->id);
    sq_col_text(s, c++, d->fleet, sizeof d->fleet);
    d->first_seen = sqlite3_column_int64(s, c++);
    d->last_seen = sqlite3_column_int64(s, c++);
    d->reported = sqlite3_column_int64(s, c++);
    sq_col_text(s, c++, d->state, sizeof d->state);
    sq_col_text(s, c++, d->reason, sizeof d->reason);
    sq_col_text(s, c++, d->version, sizeof d->version);
    d->release = (uint64_t)sqlite3_column_int64(s, c++);
    sq_col_text(s, c++, d->digest, sizeof d->digest);
    sq_col_text(s, c++, d->report_rollout, sizeof d->report_rollout);
    sq_col_text(s, c++, d->message, sizeof d->message);
    return sqlite3_column_int64(s, c);
}

/* Reads a device; *found false when unknown. *fleet_id: the fleet it belongs to. */
static pemn_rc device_read(struct sq_conn *c, const char *id, struct store_device *d,
                           int64_t *fleet_id, bool *found, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT " DEVICE_COLS " FROM devices d JOIN fleets f ON f.id = d.fleet_id WHERE d.id = ?1";
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    pemn_rc rc = PEMN_OK;
    *found = r == SQLITE_ROW;
    if (r == SQLITE_ROW)
        *fleet_id = device_row(s, 0, d);
    else if (r != SQLITE_DONE)
        rc = sq_fail(c, err, "reading a device");
    sq_done(s);
    return rc;
}

/* Registers the device in fleet_id (inserting it, or moving it here with its report
 * cleared). */
static pemn_rc device_register(struct sq_conn *c, const char *id, int64_t fleet_id,
                               struct pemn_err *err)
{
    static const char sql[] =
        "INSERT INTO devices(id, fleet_id, first_seen, last_seen) VALUES(?1, ?2, ?3, ?3)"
        " ON CONFLICT(id) DO UPDATE SET fleet_id = ?2, last_seen = ?3, reported = 0,"
        " state = '', reason = '', digest = '', report_rollout = '', message = ''"
        " WHERE fleet_id <> ?2";
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, fleet_id);
    sqlite3_bind_int64(s, 3, sq_now());
    int r = sqlite3_step(s);
    sq_done(s);
    return r == SQLITE_DONE ? PEMN_OK : sq_fail(c, err, "registering a device");
}

static pemn_rc sq_device_poll(struct store *st, const char *fleet, const char *device,
                              int touch_seconds, struct store_fleet *fleet_out,
                              struct store_device *dev_out, struct pemn_err *err)
{
    static const char sql_touch[] = "UPDATE devices SET last_seen = ?2 WHERE id = ?1";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (rc)
        return rc;
    int64_t fid = 0, dev_fid = 0;
    bool found = false;
    int64_t now = sq_now();
    rc = fleet_read(c, fleet, fleet_out, &fid, err);
    if (!rc)
        rc = device_read(c, device, dev_out, &dev_fid, &found, err);
    if (!rc && (!found || dev_fid != fid)) {
        /* first contact (or a move): one short write, then read back what is stored */
        rc = device_register(c, device, fid, err);
        if (!rc)
            rc = device_read(c, device, dev_out, &dev_fid, &found, err);
        if (!rc && !found)
            rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "device vanished after registering");
    } else if (!rc && now - dev_out->last_seen >= touch_seconds) {
        sqlite3_stmt *s = sq_stmt(c, sql_touch, err);
        if (!s)
            rc = PEMN_EDB;
        else {
            sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, now);
            int r = sqlite3_step(s);
            sq_done(s);
            if (r != SQLITE_DONE)
                rc = sq_fail(c, err, "touching a device");
            else
                dev_out->last_seen = now;
        }
    }
    sq_release(st, c);
    return rc;
}

static pemn_rc count_where(struct sq_conn *c, int64_t fid, const char *rollout, const char *state,
                           uint64_t *n, struct pemn_err *err)
{
    static const char sql_all[] =
        "SELECT count(*) FROM devices WHERE fleet_id = ?1 AND report_rollout = ?2";
    static const char sql_state[] = "SELECT count(*) FROM devices WHERE fleet_id = ?1 AND"
                                    " report_rollout = ?2 AND state = ?3";
    sqlite3_stmt *s = sq_stmt(c, state ? sql_state : sql_all, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_int64(s, 1, fid);
    sqlite3_bind_text(s, 2, rollout, -1, SQLITE_STATIC);
    if (state)
        sqlite3_bind_text(s, 3, state, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        *n = (uint64_t)sqlite3_column_int64(s, 0);
    sq_done(s);
    return r == SQLITE_ROW ? PEMN_OK : sq_fail(c, err, "counting devices");
}

static pemn_rc sq_device_report(struct store *st, const char *fleet, const struct store_device *r,
                                const char *counts_for, uint64_t *reporting, uint64_t *failed,
                                struct pemn_err *err)
{
    static const char sql[] =
        "UPDATE devices SET last_seen = ?2, reported = ?2, state = ?3, reason = ?4,"
        " version = ?5, release = ?6, digest = ?7, report_rollout = ?8, message = ?9 WHERE id = ?1";
    *reporting = *failed = 0;
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    struct store_fleet f;
    int64_t fid;
    rc = fleet_read(c, fleet, &f, &fid, err);
    if (!rc)
        rc = device_register(c, r->id, fid, err);
    if (!rc) {
        sqlite3_stmt *s = sq_stmt(c, sql, err);
        if (!s)
            rc = PEMN_EDB;
        else {
            sqlite3_bind_text(s, 1, r->id, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, sq_now());
            sqlite3_bind_text(s, 3, r->state, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 4, r->reason, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 5, r->version, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 6, (sqlite3_int64)r->release);
            sqlite3_bind_text(s, 7, r->digest, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 8, counts_for ? counts_for : "", -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 9, r->message, -1, SQLITE_STATIC);
            int x = sqlite3_step(s);
            sq_done(s);
            if (x != SQLITE_DONE)
                rc = sq_fail(c, err, "storing a device report");
        }
    }
    if (!rc && counts_for && counts_for[0]) {
        rc = count_where(c, fid, counts_for, NULL, reporting, err);
        if (!rc)
            rc = count_where(c, fid, counts_for, "failed", failed, err);
    }
    sq_hook(st, "report.counted");
    if (!rc)
        rc = sq_commit(c, err);
    else
        sq_rollback(c);
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_device_get(struct store *st, const char *fleet, const char *device,
                             struct store_device *out, struct pemn_err *err)
{
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (rc)
        return rc;
    int64_t fid;
    bool found;
    rc = device_read(c, device, out, &fid, &found, err);
    if (!rc && (!found || strcmp(out->fleet, fleet) != 0))
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no device '%s' in fleet '%s'", device,
                       fleet);
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_fleet_counts(struct store *st, const char *fleet, struct store_fleet_counts *out,
                               store_count_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql_states[] =
        "SELECT state, count(*) FROM devices WHERE fleet_id = ?1 GROUP BY state ORDER BY state";
    static const char sql_versions[] = "SELECT version, count(*) FROM devices WHERE fleet_id ="
                                       " ?1 GROUP BY version ORDER BY version";
    static const char sql_rollout[] =
        "SELECT state, count(*) FROM devices WHERE fleet_id = ?1 AND report_rollout = ?2"
        " GROUP BY state";
    memset(out, 0, sizeof *out);
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (rc)
        return rc;
    /* one read transaction so the three counts agree with each other */
    char *msg = NULL;
    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, &msg) != SQLITE_OK) {
        sqlite3_free(msg);
        rc = sq_fail(c, err, "begin");
        sq_release(st, c);
        return rc;
    }
    struct store_fleet f;
    int64_t fid;
    rc = fleet_read(c, fleet, &f, &fid, err);
    const char *sqls[3] = {sql_states, sql_versions, sql_rollout};
    for (int q = 0; q < 3 && !rc; q++) {
        sqlite3_stmt *s = sq_stmt(c, sqls[q], err);
        if (!s) {
            rc = PEMN_EDB;
            break;
        }
        sqlite3_bind_int64(s, 1, fid);
        if (q == 2)
            sqlite3_bind_text(s, 2, f.rollout_id, -1, SQLITE_STATIC);
        int r;
        while ((r = sqlite3_step(s)) == SQLITE_ROW) {
            char key[STORE_LABEL_MAX];
            sq_col_text(s, 0, key, sizeof key);
            uint64_t n = (uint64_t)sqlite3_column_int64(s, 1);
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
            if (cb && cb(ctx, q == 0 ? "state" : "version", key, n)) {
                rc = PEMN_ECANCELED;
                break;
            }
        }
        if (!rc && r != SQLITE_DONE)
            rc = sq_fail(c, err, "counting devices");
        sq_done(s);
    }
    sq_rollback(c);
    sq_release(st, c);
    return rc;
}

const struct store_fleet_ops sq_fleet_ops = {
    .put = sq_fleet_put,
    .get = sq_fleet_get,
    .list = sq_fleet_list,
    .set_state = sq_fleet_set_state,
    .device_poll = sq_device_poll,
    .device_report = sq_device_report,
    .device_get = sq_device_get,
    .counts = sq_fleet_counts,
};
