/*
 * storage/sqlite_delta.c — package deltas on SQLite (store_delta.h). Table deltas (schema
 * v7): one row per (new, old) pair; the delta bytes, when smaller than NEW, are a row of
 * the blobs table named by delta_digest.
 */
#include "storage/sqlite_int.h"
#include "storage/store_delta.h"

#include "proto/err.h"

#include <string.h>

const char sq_schema_v9_delta[] = "CREATE TABLE deltas("
                                  "  new_digest TEXT NOT NULL,"
                                  "  old_digest TEXT NOT NULL,"
                                  "  delta_digest TEXT NOT NULL DEFAULT '',"
                                  "  size INTEGER NOT NULL DEFAULT 0,"
                                  "  new_size INTEGER NOT NULL,"
                                  "  created INTEGER NOT NULL,"
                                  "  PRIMARY KEY(new_digest, old_digest)) WITHOUT ROWID;";

static pemn_rc sq_version_of(struct store *st, const char *digest, struct store_version *out,
                             struct pemn_err *err)
{
    static const char sql[] =
        "SELECT m.name, v.version, v.release, b.size FROM blobs b JOIN versions v ON "
        "v.blob_id = b.id JOIN models m ON m.id = v.model_id WHERE b.digest = ?1 "
        "ORDER BY v.id LIMIT 1";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        sq_col_text(s, 0, out->model, sizeof out->model);
        sq_col_text(s, 1, out->version, sizeof out->version);
        out->release = (uint64_t)sqlite3_column_int64(s, 2);
        out->size = (uint64_t)sqlite3_column_int64(s, 3);
        memcpy(out->digest, digest, strlen(digest) + 1);
    } else if (r == SQLITE_DONE) {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no package version has digest %s",
                       digest);
    } else {
        rc = sq_fail(c, err, "looking up a version by digest");
    }
    sq_done(s);
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_get(struct store *st, const char *new_digest, const char *old_digest,
                      struct store_delta *out, struct pemn_err *err)
{
    static const char sql[] = "SELECT delta_digest, size, new_size, created FROM deltas "
                              "WHERE new_digest = ?1 AND old_digest = ?2";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, new_digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, old_digest, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        memcpy(out->new_digest, new_digest, strlen(new_digest) + 1);
        memcpy(out->old_digest, old_digest, strlen(old_digest) + 1);
        sq_col_text(s, 0, out->delta_digest, sizeof out->delta_digest);
        out->smaller = out->delta_digest[0] != '\0';
        out->size = (uint64_t)sqlite3_column_int64(s, 1);
        out->new_size = (uint64_t)sqlite3_column_int64(s, 2);
        out->created = sqlite3_column_int64(s, 3);
    } else if (r == SQLITE_DONE) {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no stored delta");
    } else {
        rc = sq_fail(c, err, "looking up a delta");
    }
    sq_done(s);
    sq_release(st, c);
    return rc;
}

static pemn_rc step_done(struct sq_conn *c, sqlite3_stmt *s, const char *what, struct pemn_err *err)
{
    int r = sqlite3_step(s);
    sq_done(s);
    return r == SQLITE_DONE ? PEMN_OK : sq_fail(c, err, what);
}

static pemn_rc sq_put(struct store *st, const struct store_delta *row, const void *bytes,
                      struct pemn_err *err)
{
    static const char sql_blob[] = "INSERT OR IGNORE INTO blobs(digest, size, created, data) "
                                   "VALUES(?1, ?2, ?3, ?4)";
    static const char sql_row[] =
        "INSERT OR IGNORE INTO deltas(new_digest, old_digest, delta_digest, size, new_size, "
        "created) VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    int64_t now = sq_now();
    sqlite3_stmt *s;
    if (bytes) {
        if (!(s = sq_stmt(c, sql_blob, err))) {
            rc = PEMN_EDB;
            goto out;
        }
        sqlite3_bind_text(s, 1, row->delta_digest, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)row->size);
        sqlite3_bind_int64(s, 3, now);
        sqlite3_bind_blob64(s, 4, bytes, (sqlite3_uint64)row->size, SQLITE_STATIC);
        if ((rc = step_done(c, s, "storing a delta", err)))
            goto out;
    }
    if (!(s = sq_stmt(c, sql_row, err))) {
        rc = PEMN_EDB;
        goto out;
    }
    sqlite3_bind_text(s, 1, row->new_digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, row->old_digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, row->delta_digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)row->size);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)row->new_size);
    sqlite3_bind_int64(s, 6, now);
    if ((rc = step_done(c, s, "recording a delta", err)))
        goto out;
    rc = sq_commit(c, err);
out:
    sq_release(st, c);
    return rc;
}

const struct store_delta_ops sq_delta_ops = {
    .version_of = sq_version_of, .get = sq_get, .put = sq_put};
