/*
 * storage/sqlite_blobs.c — package bytes on SQLite: one row per blob, read in short reads
 * through the incremental-blob API (the cache and the handles: storage/store_blobs.c).
 */
#include "storage/sqlite_int.h"

#include "proto/err.h"

pemn_rc sq_blob_find(struct store *st, const char *digest, uint64_t *size, int64_t *ref,
                     struct pemn_err *err)
{
    static const char sql[] = "SELECT id, size FROM blobs WHERE digest = ?1";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    int res = sqlite3_step(s);
    if (res == SQLITE_ROW) {
        *ref = sqlite3_column_int64(s, 0);
        *size = (uint64_t)sqlite3_column_int64(s, 1);
    } else if (res == SQLITE_DONE) {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no blob %s", digest);
    } else {
        rc = sq_fail(c, err, "looking up a blob");
    }
    sq_done(s);
    sq_release(st, c);
    return rc;
}

pemn_rc sq_blob_read(struct store *st, int64_t ref, uint64_t offset, void *buf, size_t n,
                     struct pemn_err *err)
{
    if (n > (size_t)INT32_MAX || offset > (uint64_t)INT32_MAX)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "blob read out of range");
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (rc)
        return rc;
    sqlite3_blob *bh = NULL;
    if (sqlite3_blob_open(c->db, "main", "blobs", "data", ref, 0, &bh) != SQLITE_OK)
        rc = sq_fail(c, err, "opening a blob");
    else if (n && sqlite3_blob_read(bh, buf, (int)n, (int)offset) != SQLITE_OK)
        rc = sq_fail(c, err, "reading a blob");
    sqlite3_blob_close(bh);
    sq_release(st, c);
    return rc;
}
