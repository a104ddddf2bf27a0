/*
 * storage/pg_blobs.c — package bytes on PostgreSQL: a blobs row per blob and its bytes in
 * blob_chunks rows of PG_CHUNK (1 MiB) bytes, STORAGE EXTERNAL (uncompressed, out of line).
 * Never one bytea per package: that caps a package at 1 GB, holds the whole value in the
 * backend's memory, and a compressed value is re-read from its start for every slice.
 * Writing sends one chunk per statement; reading asks for exactly the slice of each chunk
 * it needs (substring on an EXTERNAL value reads only those TOAST pages), so memory stays
 * at about one chunk either way. The cache and the handles: storage/store_blobs.c.
 */
#include "storage/pg_int.h"

#include "proto/err.h"

#include <string.h>

pemn_rc pg_blob_store(struct pg_conn *c, const char *digest, const void *bytes, size_t len,
                      int64_t *id, struct pemn_err *err)
{
    static const char sql_new[] = "INSERT INTO blobs(digest, size, created)"
                                  " VALUES($1, $2, " PG_NOW ") ON CONFLICT(digest) DO NOTHING"
                                  " RETURNING id";
    static const char sql_id[] = "SELECT id FROM blobs WHERE digest = $1";
    static const char sql_chunk[] =
        "INSERT INTO blob_chunks(blob_id, idx, data) VALUES($1, $2, $3)";
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, digest);
    pg_p_i64(&p, (int64_t)len);
    /* a concurrent insert of the same digest makes this wait for it, then do nothing */
    PGresult *r = pg_exec(c, sql_new, &p, false, "storing the package bytes", NULL, err);
    if (!r)
        return PEMN_EDB;
    bool fresh = PQntuples(r) == 1;
    *id = fresh ? pg_i64(r, 0, 0) : 0;
    PQclear(r);
    if (!fresh) {
        pg_p_init(&p);
        pg_p_text(&p, digest);
        if (!(r = pg_exec(c, sql_id, &p, false, "looking up a blob", NULL, err)))
            return PEMN_EDB;
        *id = PQntuples(r) == 1 ? pg_i64(r, 0, 0) : 0;
        PQclear(r);
        if (!*id)
            return proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "blob %s vanished", digest);
        return PEMN_OK; /* content-addressed: the stored bytes are these bytes */
    }
    const uint8_t *b = bytes;
    size_t off = 0;
    int64_t idx = 0;
    do { /* an empty package is one empty chunk */
        size_t n = len - off < PG_CHUNK ? len - off : PG_CHUNK;
        pg_p_init(&p);
        pg_p_i64(&p, *id);
        pg_p_i64(&p, idx++);
        pg_p_bin(&p, b + off, n);
        pemn_rc rc = pg_cmd(c, sql_chunk, &p, "storing the package bytes", err);
        if (rc)
            return rc;
        off += n;
    } while (off < len);
    return PEMN_OK;
}

struct find_ctx {
    const char *digest;
    uint64_t size;
    int64_t id;
};

static pemn_rc find_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "SELECT id, size FROM blobs WHERE digest = $1";
    struct find_ctx *f = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, f->digest);
    PGresult *r = pg_exec(c, sql, &p, false, "looking up a blob", NULL, err);
    if (!r)
        return PEMN_EDB;
    pemn_rc rc = PEMN_OK;
    if (PQntuples(r) == 1) {
        f->id = pg_i64(r, 0, 0);
        f->size = (uint64_t)pg_i64(r, 0, 1);
    } else {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no blob %s", f->digest);
    }
    PQclear(r);
    return rc;
}

pemn_rc pg_blob_find(struct store *st, const char *digest, uint64_t *size, int64_t *ref,
                     struct pemn_err *err)
{
    struct find_ctx f = {digest, 0, 0};
    pemn_rc rc = pg_run(st, PG_SINGLE, find_body, &f, err);
    if (!rc) {
        *size = f.size;
        *ref = f.id;
    }
    return rc;
}

struct read_ctx {
    int64_t id;
    uint64_t offset;
    uint8_t *buf;
    size_t n;
};

static pemn_rc read_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "SELECT substring(data FROM $3 FOR $4) FROM blob_chunks"
                              " WHERE blob_id = $1 AND idx = $2";
    struct read_ctx *x = vctx;
    size_t done = 0;
    while (done < x->n) {
        uint64_t pos = x->offset + done;
        uint64_t idx = pos / PG_CHUNK, in = pos % PG_CHUNK;
        size_t want = x->n - done;
        if (want > PG_CHUNK - in)
            want = (size_t)(PG_CHUNK - in);
        struct pg_params p;
        pg_p_init(&p);
        pg_p_i64(&p, x->id);
        pg_p_i64(&p, (int64_t)idx);
        pg_p_i64(&p, (int64_t)in + 1);
        pg_p_i64(&p, (int64_t)want);
        PGresult *r = pg_exec(c, sql, &p, true, "reading a blob", NULL, err);
        if (!r)
            return PEMN_EDB;
        if (PQntuples(r) != 1 || (size_t)PQgetlength(r, 0, 0) != want) {
            PQclear(r);
            return proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "blob %lld is damaged (chunk %llu)",
                             (long long)x->id, (unsigned long long)idx);
        }
        memcpy(x->buf + done, PQgetvalue(r, 0, 0), want);
        PQclear(r);
        done += want;
    }
    return PEMN_OK;
}

pemn_rc pg_blob_read(struct store *st, int64_t ref, uint64_t offset, void *buf, size_t n,
                     struct pemn_err *err)
{
    struct read_ctx x = {ref, offset, buf, n};
    /* chunks of an immutable blob: each slice is its own short read; a read of many chunks
     * runs in one read-only transaction */
    return pg_run(st, PG_SINGLE, read_body, &x, err);
}
