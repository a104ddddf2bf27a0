/*
 * storage/sqlite_metadata.c — SQLite side of storage/store_metadata.h: per-device metadata
 * counters and the last signed desired-state answer.
 */
#include "storage/sqlite_metadata.h"
#include "storage/store_metadata.h"

#include "proto/err.h"

#include <string.h>

/* One row per device id. version: the counter; body_version: the version of body (<= version;
 * 0 while no body is stored). */
const char sq_schema_metadata[] = "CREATE TABLE device_metadata("
                                  "  device TEXT PRIMARY KEY,"
                                  "  version INTEGER NOT NULL,"
                                  "  body_version INTEGER NOT NULL DEFAULT 0,"
                                  "  fleet TEXT NOT NULL DEFAULT '',"
                                  "  answer_hash TEXT NOT NULL DEFAULT '',"
                                  "  issued INTEGER NOT NULL DEFAULT 0,"
                                  "  expires INTEGER NOT NULL DEFAULT 0,"
                                  "  body TEXT NOT NULL DEFAULT '') WITHOUT ROWID;";

static pemn_rc sqm_get(struct store *st, const char *device, struct store_metadata *out,
                       bool *found, struct pemn_err *err)
{
    static const char sql[] = "SELECT body_version, fleet, answer_hash, issued, expires, body"
                              " FROM device_metadata WHERE device = ?1 AND body_version > 0";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) { /* out's header was cleared by the caller */
        out->version = (uint64_t)sqlite3_column_int64(s, 0);
        sq_col_text(s, 1, out->fleet, sizeof out->fleet);
        sq_col_text(s, 2, out->answer_hash, sizeof out->answer_hash);
        out->issued = sqlite3_column_int64(s, 3);
        out->expires = sqlite3_column_int64(s, 4);
        int n = sqlite3_column_bytes(s, 5);
        const unsigned char *b = sqlite3_column_text(s, 5);
        if (!b || n <= 0 || (unsigned)n >= sizeof out->body) {
            rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "stored metadata of '%s' is damaged",
                           device);
            out->version = 0;
        } else {
            memcpy(out->body, b, (size_t)n);
            out->body[n] = 0;
            *found = true;
        }
    } else if (r != SQLITE_DONE) {
        rc = sq_fail(c, err, "reading device metadata");
    }
    sq_done(s);
    sq_release(st, c);
    return rc;
}

static pemn_rc sqm_next_version(struct store *st, const char *device, uint64_t *version,
                                struct pemn_err *err)
{
    static const char sql[] = "INSERT INTO device_metadata(device, version) VALUES(?1, 1)"
                              " ON CONFLICT(device) DO UPDATE SET version = version + 1"
                              " RETURNING version";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s) {
        sq_release(st, c);
        return PEMN_EDB;
    }
    sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    uint64_t v = r == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    /* RETURNING: the statement must run to completion before the commit */
    while (r == SQLITE_ROW)
        r = sqlite3_step(s);
    sq_done(s);
    if (r != SQLITE_DONE || v == 0)
        rc = sq_fail(c, err, "raising the metadata version");
    else
        rc = sq_commit(c, err);
    sq_release(st, c);
    if (!rc)
        *version = v;
    return rc;
}

static pemn_rc sqm_counter(struct store *st, const char *device, uint64_t *version,
                           struct pemn_err *err)
{
    static const char sql[] = "SELECT version FROM device_metadata WHERE device = ?1";
    *version = 0;
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        *version = (uint64_t)sqlite3_column_int64(s, 0);
    else if (r != SQLITE_DONE)
        rc = sq_fail(c, err, "reading the metadata version");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

static pemn_rc sqm_put(struct store *st, const char *device, const struct store_metadata *m,
                       bool *stored, struct pemn_err *err)
{
    static const char sql[] =
        "UPDATE device_metadata SET body_version = ?2, fleet = ?3, answer_hash = ?4,"
        " issued = ?5, expires = ?6, body = ?7"
        " WHERE device = ?1 AND body_version < ?2 AND version >= ?2";
    static const char sql_counter[] = "SELECT version FROM device_metadata WHERE device = ?1";
    size_t blen = strlen(m->body);
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = sq_stmt(c, sql_counter, err);
    if (!s) {
        sq_release(st, c);
        return PEMN_EDB;
    }
    sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    uint64_t counter = r == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    sq_done(s);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = sq_fail(c, err, "reading the metadata version");
    else if (m->version > counter)
        rc = proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                       "metadata version %llu of '%s' was never handed out (counter %llu)",
                       (unsigned long long)m->version, device, (unsigned long long)counter);
    if (!rc && !(s = sq_stmt(c, sql, err)))
        rc = PEMN_EDB;
    if (!rc) {
        sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)m->version);
        sqlite3_bind_text(s, 3, m->fleet, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, m->answer_hash, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, m->issued);
        sqlite3_bind_int64(s, 6, m->expires);
        sqlite3_bind_text(s, 7, m->body, (int)blen, SQLITE_STATIC);
        r = sqlite3_step(s);
        sq_done(s);
        if (r != SQLITE_DONE)
            rc = sq_fail(c, err, "storing signed metadata");
        else if (stored)
            *stored = sqlite3_changes(c->db) > 0;
    }
    if (!rc)
        rc = sq_commit(c, err);
    sq_release(st, c);
    return rc;
}

const struct store_metadata_ops sq_metadata_ops = {
    .get = sqm_get,
    .next_version = sqm_next_version,
    .counter = sqm_counter,
    .put = sqm_put,
};
