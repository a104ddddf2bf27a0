/*
 * storage/pg_metadata.c — PostgreSQL side of storage/store_metadata.h: per-device metadata
 * counters and the last signed desired-state answer. The counter is raised by one
 * INSERT ... ON CONFLICT DO UPDATE ... RETURNING (row-locked by PostgreSQL), so concurrent
 * pemnd replicas never hand out one version twice.
 */
#include "storage/pg_int.h"
#include "storage/store_metadata.h"

#include "proto/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The schema (migration 8 of storage/pg_schema.c, as SQLite's 8). */
const char pg_schema_metadata[] = "CREATE TABLE device_metadata("
                                  "  device text PRIMARY KEY,"
                                  "  version bigint NOT NULL,"
                                  "  body_version bigint NOT NULL DEFAULT 0,"
                                  "  fleet text NOT NULL DEFAULT '',"
                                  "  answer_hash text NOT NULL DEFAULT '',"
                                  "  issued bigint NOT NULL DEFAULT 0,"
                                  "  expires bigint NOT NULL DEFAULT 0,"
                                  "  body text NOT NULL DEFAULT '');";

struct meta_ctx {
    const char *device;
    struct store_metadata *out;
    const struct store_metadata *in;
    bool found, stored;
    uint64_t version;
};

static pemn_rc get_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "SELECT body_version, fleet, answer_hash, issued, expires, body"
                              " FROM device_metadata WHERE device = $1 AND body_version > 0";
    struct meta_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->device);
    PGresult *r = pg_exec(c, sql, &p, false, "reading device metadata", NULL, err);
    if (!r)
        return PEMN_EDB;
    pemn_rc rc = PEMN_OK;
    x->found = false;
    if (PQntuples(r) == 1) {
        struct store_metadata *m = x->out; /* header cleared by the caller */
        m->version = (uint64_t)pg_i64(r, 0, 0);
        pg_text(r, 0, 1, m->fleet, sizeof m->fleet);
        pg_text(r, 0, 2, m->answer_hash, sizeof m->answer_hash);
        m->issued = pg_i64(r, 0, 3);
        m->expires = pg_i64(r, 0, 4);
        int n = PQgetlength(r, 0, 5);
        if (n <= 0 || (size_t)n >= sizeof m->body) {
            m->version = 0;
            rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "stored metadata of '%s' is damaged",
                           x->device);
        } else {
            memcpy(m->body, PQgetvalue(r, 0, 5), (size_t)n);
            m->body[n] = 0;
            x->found = true;
        }
    }
    PQclear(r);
    return rc;
}

static pemn_rc pgm_get(struct store *st, const char *device, struct store_metadata *out,
                       bool *found, struct pemn_err *err)
{
    struct meta_ctx x = {.device = device, .out = out};
    pemn_rc rc = pg_run(st, PG_SINGLE, get_body, &x, err);
    *found = !rc && x.found;
    return rc;
}

static pemn_rc next_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "INSERT INTO device_metadata(device, version) VALUES($1, 1)"
                              " ON CONFLICT (device) DO UPDATE"
                              " SET version = device_metadata.version + 1 RETURNING version";
    struct meta_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->device);
    PGresult *r = pg_exec(c, sql, &p, false, "raising the metadata version", NULL, err);
    if (!r)
        return PEMN_EDB;
    x->version = PQntuples(r) == 1 ? (uint64_t)pg_i64(r, 0, 0) : 0;
    PQclear(r);
    return x->version ? PEMN_OK
                      : proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "raising the metadata version");
}

static pemn_rc pgm_next_version(struct store *st, const char *device, uint64_t *version,
                                struct pemn_err *err)
{
    struct meta_ctx x = {.device = device};
    pemn_rc rc = pg_run(st, PG_WRITE, next_body, &x, err);
    if (!rc)
        *version = x.version;
    return rc;
}

static pemn_rc counter_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "SELECT version FROM device_metadata WHERE device = $1";
    struct meta_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->device);
    PGresult *r = pg_exec(c, sql, &p, false, "reading the metadata version", NULL, err);
    if (!r)
        return PEMN_EDB;
    x->version = PQntuples(r) == 1 ? (uint64_t)pg_i64(r, 0, 0) : 0;
    PQclear(r);
    return PEMN_OK;
}

static pemn_rc pgm_counter(struct store *st, const char *device, uint64_t *version,
                           struct pemn_err *err)
{
    struct meta_ctx x = {.device = device};
    pemn_rc rc = pg_run(st, PG_SINGLE, counter_body, &x, err);
    *version = rc ? 0 : x.version;
    return rc;
}

static pemn_rc put_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql_lock[] =
        "SELECT version FROM device_metadata WHERE device = $1 FOR UPDATE";
    static const char sql[] =
        "UPDATE device_metadata SET body_version = $2, fleet = $3, answer_hash = $4,"
        " issued = $5, expires = $6, body = $7"
        " WHERE device = $1 AND body_version < $2 AND version >= $2";
    struct meta_ctx *x = vctx;
    const struct store_metadata *m = x->in;
    x->stored = false;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->device);
    PGresult *r = pg_exec(c, sql_lock, &p, false, "reading the metadata version", NULL, err);
    if (!r)
        return PEMN_EDB;
    uint64_t counter = PQntuples(r) == 1 ? (uint64_t)pg_i64(r, 0, 0) : 0;
    PQclear(r);
    if (m->version > counter)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "metadata version %llu of '%s' was never handed out (counter %llu)",
                         (unsigned long long)m->version, x->device, (unsigned long long)counter);
    pg_p_init(&p);
    pg_p_text(&p, x->device);
    pg_p_i64(&p, (int64_t)m->version);
    pg_p_text(&p, m->fleet);
    pg_p_text(&p, m->answer_hash);
    pg_p_i64(&p, m->issued);
    pg_p_i64(&p, m->expires);
    pg_p_text(&p, m->body);
    r = pg_exec(c, sql, &p, false, "storing signed metadata", NULL, err);
    if (!r)
        return PEMN_EDB;
    const char *n = PQcmdTuples(r);
    x->stored = n && n[0] && strcmp(n, "0") != 0;
    PQclear(r);
    return PEMN_OK;
}

static pemn_rc pgm_put(struct store *st, const char *device, const struct store_metadata *m,
                       bool *stored, struct pemn_err *err)
{
    struct meta_ctx x = {.device = device, .in = m};
    pemn_rc rc = pg_run(st, PG_WRITE, put_body, &x, err);
    *stored = !rc && x.stored;
    return rc;
}

const struct store_metadata_ops pg_metadata_ops = {
    .get = pgm_get,
    .next_version = pgm_next_version,
    .counter = pgm_counter,
    .put = pgm_put,
};
