/*
 * storage/sqlite_verify.c — the SQLite part of integrity checks (store_verify.h): walking the
 * blob rows, each step a short read of its own.
 */
#include "storage/sqlite_int.h"
#include "storage/store_verify.h"

#include "proto/err.h"

static pemn_rc sq_blob_next(struct store *st, int64_t after, int64_t *ref,
                            char digest[PEMN_DIGEST_TEXT_MAX], uint64_t *size, uint64_t *stored,
                            struct pemn_err *err)
{
    static const char sql[] = "SELECT id, digest, size, length(data) FROM blobs WHERE id > ?1 "
                              "ORDER BY id LIMIT 1";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, after);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        *ref = sqlite3_column_int64(s, 0);
        sq_col_text(s, 1, digest, PEMN_DIGEST_TEXT_MAX);
        *size = (uint64_t)sqlite3_column_int64(s, 2);
        *stored = (uint64_t)sqlite3_column_int64(s, 3);
    } else if (r == SQLITE_DONE) {
        rc = PEMN_ENOTFOUND;
    } else {
        rc = sq_fail(c, err, "listing blobs");
    }
    sq_done(s);
    sq_release(st, c);
    return rc;
}

const struct store_verify_ops sq_verify_ops = {.blob_next = sq_blob_next};
