/*
 * storage/pg_delta.c — package deltas on PostgreSQL (store_delta.h). Table deltas (schema
 * v7): one row per (new, old) pair; the delta bytes, when smaller than NEW, are a blob of
 * the chunked blobs of pg_blobs.c named by delta_digest.
 */
#include "storage/pg_int.h"
#include "storage/store_delta.h"

#include "proto/err.h"

#include <string.h>

const char pg_schema_v9_delta[] = "CREATE TABLE deltas("
                                  "  new_digest text NOT NULL,"
                                  "  old_digest text NOT NULL,"
                                  "  delta_digest text NOT NULL DEFAULT '',"
                                  "  size bigint NOT NULL DEFAULT 0,"
                                  "  new_size bigint NOT NULL,"
                                  "  created bigint NOT NULL,"
                                  "  PRIMARY KEY(new_digest, old_digest));";

struct delta_ctx {
    const char *digest, *new_digest, *old_digest;
    struct store_version *v;
    struct store_delta *d;
    const struct store_delta *row;
    const void *bytes;
};

static pemn_rc version_of_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT m.name, v.version, v.release, b.size FROM blobs b JOIN versions v ON "
        "v.blob_id = b.id JOIN models m ON m.id = v.model_id WHERE b.digest = $1 "
        "ORDER BY v.id LIMIT 1";
    struct delta_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->digest);
    PGresult *r = pg_exec(c, sql, &p, false, "looking up a version by digest", NULL, err);
    if (!r)
        return PEMN_EDB;
    pemn_rc rc = PEMN_OK;
    if (PQntuples(r) == 1) {
        memset(x->v, 0, sizeof *x->v);
        pg_text(r, 0, 0, x->v->model, sizeof x->v->model);
        pg_text(r, 0, 1, x->v->version, sizeof x->v->version);
        x->v->release = (uint64_t)pg_i64(r, 0, 2);
        x->v->size = (uint64_t)pg_i64(r, 0, 3);
        memcpy(x->v->digest, x->digest, strlen(x->digest) + 1);
    } else {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no package version has digest %s",
                       x->digest);
    }
    PQclear(r);
    return rc;
}

static pemn_rc pg_version_of(struct store *st, const char *digest, struct store_version *out,
                             struct pemn_err *err)
{
    struct delta_ctx x = {.digest = digest, .v = out};
    return pg_run(st, PG_SINGLE, version_of_body, &x, err);
}

static pemn_rc get_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "SELECT delta_digest, size, new_size, created FROM deltas "
                              "WHERE new_digest = $1 AND old_digest = $2";
    struct delta_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->new_digest);
    pg_p_text(&p, x->old_digest);
    PGresult *r = pg_exec(c, sql, &p, false, "looking up a delta", NULL, err);
    if (!r)
        return PEMN_EDB;
    pemn_rc rc = PEMN_OK;
    if (PQntuples(r) == 1) {
        struct store_delta *d = x->d;
        memset(d, 0, sizeof *d);
        memcpy(d->new_digest, x->new_digest, strlen(x->new_digest) + 1);
        memcpy(d->old_digest, x->old_digest, strlen(x->old_digest) + 1);
        pg_text(r, 0, 0, d->delta_digest, sizeof d->delta_digest);
        d->smaller = d->delta_digest[0] != '\0';
        d->size = (uint64_t)pg_i64(r, 0, 1);
        d->new_size = (uint64_t)pg_i64(r, 0, 2);
        d->created = pg_i64(r, 0, 3);
    } else {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no stored delta");
    }
    PQclear(r);
    return rc;
}

static pemn_rc pg_get(struct store *st, const char *new_digest, const char *old_digest,
                      struct store_delta *out, struct pemn_err *err)
{
    struct delta_ctx x = {.new_digest = new_digest, .old_digest = old_digest, .d = out};
    return pg_run(st, PG_SINGLE, get_body, &x, err);
}

static pemn_rc put_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] =
        "INSERT INTO deltas(new_digest, old_digest, delta_digest, size, new_size, created)"
        " VALUES($1, $2, $3, $4, $5, " PG_NOW ") ON CONFLICT DO NOTHING";
    struct delta_ctx *x = vctx;
    const struct store_delta *row = x->row;
    pemn_rc rc;
    if (x->bytes) {
        int64_t id;
        if ((rc = pg_blob_store(c, row->delta_digest, x->bytes, (size_t)row->size, &id, err)))
            return rc;
    }
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, row->new_digest);
    pg_p_text(&p, row->old_digest);
    pg_p_text(&p, row->delta_digest);
    pg_p_i64(&p, (int64_t)row->size);
    pg_p_i64(&p, (int64_t)row->new_size);
    return pg_cmd(c, sql, &p, "recording a delta", err);
}

static pemn_rc pg_put(struct store *st, const struct store_delta *row, const void *bytes,
                      struct pemn_err *err)
{
    struct delta_ctx x = {.row = row, .bytes = bytes};
    return pg_run(st, PG_WRITE, put_body, &x, err);
}

const struct store_delta_ops pg_delta_ops = {
    .version_of = pg_version_of, .get = pg_get, .put = pg_put};
