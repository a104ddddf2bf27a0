/*
 * storage/pg_verify.c — the PostgreSQL part of integrity checks (store_verify.h): walking
 * the blob rows with the bytes their chunks actually hold.
 */
#include "storage/pg_int.h"
#include "storage/store_verify.h"

#include "proto/err.h"

struct next_ctx {
    int64_t after, ref;
    char *digest;
    uint64_t size, stored;
};

static pemn_rc next_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT b.id, b.digest, b.size,"
        " coalesce((SELECT sum(length(k.data)) FROM blob_chunks k WHERE k.blob_id = b.id), 0)"
        " FROM blobs b WHERE b.id > $1 ORDER BY b.id LIMIT 1";
    struct next_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, x->after);
    PGresult *r = pg_exec(c, sql, &p, false, "listing blobs", NULL, err);
    if (!r)
        return PEMN_EDB;
    pemn_rc rc = PEMN_ENOTFOUND;
    if (PQntuples(r) == 1) {
        x->ref = pg_i64(r, 0, 0);
        pg_text(r, 0, 1, x->digest, PEMN_DIGEST_TEXT_MAX);
        x->size = (uint64_t)pg_i64(r, 0, 2);
        x->stored = (uint64_t)pg_i64(r, 0, 3);
        rc = PEMN_OK;
    }
    PQclear(r);
    return rc;
}

static pemn_rc pg_blob_next(struct store *st, int64_t after, int64_t *ref,
                            char digest[PEMN_DIGEST_TEXT_MAX], uint64_t *size, uint64_t *stored,
                            struct pemn_err *err)
{
    struct next_ctx x = {.after = after, .digest = digest};
    pemn_rc rc = pg_run(st, PG_SINGLE, next_body, &x, err);
    if (!rc) {
        *ref = x.ref;
        *size = x.size;
        *stored = x.stored;
    }
    return rc;
}

const struct store_verify_ops pg_verify_ops = {.blob_next = pg_blob_next};
