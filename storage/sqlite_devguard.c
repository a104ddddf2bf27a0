/*
 * storage/sqlite_devguard.c — device registration records per token on SQLite
 * (store_devguard.h). Table device_registrations (schema v5): one row per (token, device),
 * with the time.
 */
#include "storage/sqlite_int.h"
#include "storage/store_devguard.h"

#include "proto/err.h"

#include <string.h>

const char sq_schema_v5_devguard[] =
    "CREATE TABLE device_registrations("
    "  token TEXT NOT NULL,"
    "  device TEXT NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  PRIMARY KEY(token, device)) WITHOUT ROWID;"
    "CREATE INDEX device_registrations_by_time ON device_registrations(token, at);";

static pemn_rc sq_fleet_of(struct store *st, const char *device, char fleet_out[STORE_LABEL_MAX],
                           struct pemn_err *err)
{
    static const char sql[] =
        "SELECT f.name FROM devices d JOIN fleets f ON f.id = d.fleet_id WHERE d.id = ?1";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        sq_col_text(s, 0, fleet_out, STORE_LABEL_MAX);
    else if (r == SQLITE_DONE)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "device %s is in no fleet", device);
    else
        rc = sq_fail(c, err, "looking up a device");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

static pemn_rc count_on(struct sq_conn *c, const char *token, int64_t since, uint64_t *total,
                        uint64_t *recent, struct pemn_err *err)
{
    static const char sql[] = "SELECT count(*), coalesce(sum(at > ?2), 0) FROM "
                              "device_registrations WHERE token = ?1";
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_text(s, 1, token, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, since);
    pemn_rc rc = PEMN_OK;
    if (sqlite3_step(s) == SQLITE_ROW) {
        *total = (uint64_t)sqlite3_column_int64(s, 0);
        *recent = (uint64_t)sqlite3_column_int64(s, 1);
    } else {
        rc = sq_fail(c, err, "counting device registrations");
    }
    sq_done(s);
    return rc;
}

static pemn_rc sq_count(struct store *st, const char *token, uint64_t *total, uint64_t *last_minute,
                        struct pemn_err *err)
{
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (rc)
        return rc;
    rc = count_on(c, token, sq_now() - 60, total, last_minute, err);
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_register(struct store *st, const char *token, const char *device,
                           uint64_t max_total, uint64_t max_per_minute, struct pemn_err *err)
{
    static const char sql_has[] =
        "SELECT 1 FROM device_registrations WHERE token = ?1 AND device = ?2";
    static const char sql_ins[] =
        "INSERT INTO device_registrations(token, device, at) VALUES(?1, ?2, ?3)";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    int64_t now = sq_now();
    bool known = false;
    sqlite3_stmt *s = sq_stmt(c, sql_has, err);
    if (!s)
        rc = PEMN_EDB;
    if (!rc) {
        sqlite3_bind_text(s, 1, token, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, device, -1, SQLITE_STATIC);
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW)
            known = true;
        else if (r != SQLITE_DONE)
            rc = sq_fail(c, err, "looking up a registration");
        sq_done(s);
    }
    uint64_t total = 0, recent = 0;
    if (!rc && !known)
        rc = count_on(c, token, now - 60, &total, &recent, err);
    if (!rc && !known && max_total && total >= max_total)
        rc = proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                       "token '%s' has registered %llu devices, its limit", token,
                       (unsigned long long)total);
    if (!rc && !known && max_per_minute && recent >= max_per_minute)
        rc = proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                       "token '%s' registered %llu devices in the last minute, its limit", token,
                       (unsigned long long)recent);
    if (!rc && !known) {
        if (!(s = sq_stmt(c, sql_ins, err))) {
            rc = PEMN_EDB;
        } else {
            sqlite3_bind_text(s, 1, token, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, device, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 3, now);
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = sq_fail(c, err, "recording a registration");
            sq_done(s);
        }
    }
    if (!rc)
        rc = sq_commit(c, err);
    sq_release(st, c);
    return rc;
}

const struct store_devguard_ops sq_devguard_ops = {
    .fleet_of = sq_fleet_of, .reg = sq_register, .count = sq_count};
