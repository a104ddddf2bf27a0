/*
 * storage/pg_oci.c — the PostgreSQL side of storage/store_oci.h: upload sessions, blobs
 * pushed through /v2 (the chunked blobs of pg_blobs.c), manifests stored byte for byte,
 * fleet sources. Migration 6 (pg_schema_v6_oci). Bodies are restartable: lists collect
 * their rows, callbacks run after the transaction.
 */
#include "storage/pg_int.h"
#include "storage/store_oci.h"

#include "proto/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char pg_schema_v6_oci[] =
    "CREATE TABLE oci_uploads("
    "  id text PRIMARY KEY,"
    "  repo text NOT NULL,"
    "  size bigint NOT NULL,"
    "  created bigint NOT NULL,"
    "  updated bigint NOT NULL);"
    "CREATE INDEX oci_uploads_updated ON oci_uploads(updated);"
    "CREATE TABLE oci_manifests("
    "  id bigserial PRIMARY KEY,"
    "  repo text NOT NULL,"
    "  digest text NOT NULL,"
    "  media_type text NOT NULL,"
    "  artifact_type text NOT NULL,"
    "  subject text NOT NULL,"
    "  version text NOT NULL,"
    "  created bigint NOT NULL,"
    "  size bigint NOT NULL,"
    "  data bytea NOT NULL,"
    "  UNIQUE(repo, digest));"
    "CREATE INDEX oci_manifests_version ON oci_manifests(repo, version, id);"
    "CREATE INDEX oci_manifests_subject ON oci_manifests(repo, subject, id);"
    "CREATE TABLE oci_fleet_sources("
    "  fleet text PRIMARY KEY,"
    "  location text NOT NULL,"
    "  updated bigint NOT NULL);";

/* ---- one statement ----------------------------------------------------------------------- */
struct q {
    const char *sql, *what;
    const char *t[6]; /* text parameters, NULL-ended (or i64 where is_i[k]) */
    int64_t i[6];
    bool is_i[6];
    int n;
    bool binary;
    PGresult *r;
};

static void q_bind(const struct q *x, struct pg_params *p)
{
    pg_p_init(p);
    for (int k = 0; k < x->n; k++) {
        if (x->is_i[k])
            pg_p_i64(p, x->i[k]);
        else
            pg_p_text(p, x->t[k]);
    }
}

static pemn_rc q_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    struct q *x = vctx;
    struct pg_params p;
    q_bind(x, &p);
    PQclear(x->r);
    x->r = pg_exec(c, x->sql, &p, x->binary, x->what, NULL, err);
    return x->r ? PEMN_OK : PEMN_EDB;
}

/* Runs one statement (PG_SINGLE, or PG_WRITE for a write); x->r holds the rows. */
static pemn_rc q_run(struct store *st, struct q *x, bool write, struct pemn_err *err)
{
    x->r = NULL;
    pemn_rc rc = pg_run(st, write ? PG_WRITE : PG_SINGLE, q_body, x, err);
    if (rc) {
        PQclear(x->r);
        x->r = NULL;
    }
    return rc;
}

/* ---- upload sessions --------------------------------------------------------------------- */
#define UPLOAD_COLS "id, repo, size, created, updated"

static void upload_row(const PGresult *r, int i, struct store_oci_upload *u)
{
    memset(u, 0, sizeof *u);
    pg_text(r, i, 0, u->id, sizeof u->id);
    pg_text(r, i, 1, u->repo, sizeof u->repo);
    u->size = (uint64_t)pg_i64(r, i, 2);
    u->created = pg_i64(r, i, 3);
    u->updated = pg_i64(r, i, 4);
}

static pemn_rc upload_create(struct store *st, const char *repo, const char *id,
                             struct pemn_err *err)
{
    struct q x = {.sql = "INSERT INTO oci_uploads(id, repo, size, created, updated)"
                         " VALUES($1, $2, 0, " PG_NOW ", " PG_NOW ")"
                         " ON CONFLICT(id) DO NOTHING RETURNING id",
                  .what = "creating an upload session",
                  .t = {id, repo},
                  .n = 2};
    pemn_rc rc = q_run(st, &x, true, err);
    if (!rc && PQntuples(x.r) != 1)
        rc = proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET, "upload %s already exists", id);
    PQclear(x.r);
    return rc;
}

static pemn_rc upload_get(struct store *st, const char *repo, const char *id,
                          struct store_oci_upload *out, struct pemn_err *err)
{
    struct q x = {.sql = "SELECT " UPLOAD_COLS " FROM oci_uploads WHERE id = $1 AND repo = $2",
                  .what = "reading an upload session",
                  .t = {id, repo},
                  .n = 2};
    pemn_rc rc = q_run(st, &x, false, err);
    if (!rc && PQntuples(x.r) == 1)
        upload_row(x.r, 0, out);
    else if (!rc)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no upload %s in %s", id, repo);
    PQclear(x.r);
    return rc;
}

static pemn_rc upload_advance(struct store *st, const char *repo, const char *id, uint64_t from,
                              uint64_t to, struct pemn_err *err)
{
    struct q x = {.sql = "UPDATE oci_uploads SET size = $1, updated = " PG_NOW
                         " WHERE id = $2 AND repo = $3 AND size = $4 RETURNING id",
                  .what = "advancing an upload session",
                  .t = {NULL, id, repo, NULL},
                  .i = {(int64_t)to, 0, 0, (int64_t)from},
                  .is_i = {true, false, false, true},
                  .n = 4};
    pemn_rc rc = q_run(st, &x, true, err);
    bool moved = !rc && PQntuples(x.r) == 1;
    PQclear(x.r);
    if (rc || moved)
        return rc;
    struct store_oci_upload u;
    if ((rc = upload_get(st, repo, id, &u, err)))
        return rc;
    return proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET, "upload %s is at byte %llu, not %llu", id,
                     (unsigned long long)u.size, (unsigned long long)from);
}

static pemn_rc upload_delete(struct store *st, const char *repo, const char *id,
                             struct pemn_err *err)
{
    struct q x = {.sql = "DELETE FROM oci_uploads WHERE id = $1 AND repo = $2 RETURNING id",
                  .what = "deleting an upload session",
                  .t = {id, repo},
                  .n = 2};
    pemn_rc rc = q_run(st, &x, true, err);
    if (!rc && PQntuples(x.r) != 1)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no upload %s in %s", id, repo);
    PQclear(x.r);
    return rc;
}

static pemn_rc upload_expire(struct store *st, int64_t before, store_oci_upload_cb cb, void *ctx,
                             struct pemn_err *err)
{
    struct q x = {.sql = "DELETE FROM oci_uploads WHERE updated < $1 RETURNING " UPLOAD_COLS,
                  .what = "expiring upload sessions",
                  .i = {before},
                  .is_i = {true},
                  .n = 1};
    pemn_rc rc = q_run(st, &x, true, err);
    for (int i = 0; !rc && i < PQntuples(x.r); i++) {
        struct store_oci_upload u;
        upload_row(x.r, i, &u);
        if (cb && cb(ctx, &u))
            rc = PEMN_ECANCELED;
    }
    PQclear(x.r);
    return rc;
}

/* ---- blobs ------------------------------------------------------------------------------- */
struct blob_ctx {
    const char *digest, *actor;
    const void *bytes;
    size_t len;
    bool created;
};

static pemn_rc blob_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql_has[] = "SELECT 1 FROM blobs WHERE digest = $1";
    struct blob_ctx *x = vctx;
    x->created = false;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->digest);
    PGresult *r = pg_exec(c, sql_has, &p, false, "looking up a blob", NULL, err);
    if (!r)
        return PEMN_EDB;
    bool has = PQntuples(r) == 1;
    PQclear(r);
    if (has)
        return PEMN_OK;
    int64_t id = 0;
    pemn_rc rc = pg_blob_store(c, x->digest, x->bytes, x->len, &id, err);
    if (!rc)
        rc = pg_audit(c, x->actor, "oci.blob", x->digest, "", err);
    x->created = !rc;
    return rc;
}

static pemn_rc blob_put(struct store *st, const char *digest, const void *bytes, size_t len,
                        const char *actor, bool *created, struct pemn_err *err)
{
    struct blob_ctx x = {digest, actor, bytes, len, false};
    pemn_rc rc = pg_run(st, PG_WRITE, blob_body, &x, err);
    if (!rc && created)
        *created = x.created;
    return rc;
}

/* ---- manifests --------------------------------------------------------------------------- */
#define MANIFEST_COLS "id, repo, digest, media_type, artifact_type, subject, version, created, size"

static void manifest_row(const PGresult *r, int i, struct store_oci_manifest *m)
{
    memset(m, 0, sizeof *m);
    pg_text(r, i, 1, m->repo, sizeof m->repo);
    pg_text(r, i, 2, m->digest, sizeof m->digest);
    pg_text(r, i, 3, m->media_type, sizeof m->media_type);
    pg_text(r, i, 4, m->artifact_type, sizeof m->artifact_type);
    pg_text(r, i, 5, m->subject, sizeof m->subject);
    pg_text(r, i, 6, m->version, sizeof m->version);
    m->created = pg_i64(r, i, 7);
    m->len = (size_t)pg_i64(r, i, 8);
}

struct mput_ctx {
    const struct store_oci_manifest *m;
    const char *actor;
    bool created;
};

static pemn_rc mput_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql_ver[] = "SELECT 1 FROM versions v JOIN models mo ON mo.id = v.model_id"
                                  " WHERE mo.name = $1 AND v.version = $2";
    static const char sql_put[] =
        "INSERT INTO oci_manifests(repo, digest, media_type, artifact_type, subject, version,"
        " created, size, data) VALUES($1, $2, $3, $4, $5, $6, " PG_NOW ", $7, $8)"
        " ON CONFLICT(repo, digest) DO NOTHING RETURNING id";
    struct mput_ctx *x = vctx;
    const struct store_oci_manifest *m = x->m;
    x->created = false;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, m->repo);
    pg_p_text(&p, m->version);
    PGresult *r = pg_exec(c, sql_ver, &p, false, "looking up a version", NULL, err);
    if (!r)
        return PEMN_EDB;
    bool has = PQntuples(r) == 1;
    PQclear(r);
    if (!has)
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no version %s of %s", m->version,
                         m->repo);
    pg_p_init(&p);
    pg_p_text(&p, m->repo);
    pg_p_text(&p, m->digest);
    pg_p_text(&p, m->media_type);
    pg_p_text(&p, m->artifact_type);
    pg_p_text(&p, m->subject);
    pg_p_text(&p, m->version);
    pg_p_i64(&p, (int64_t)m->len);
    pg_p_bin(&p, m->data, m->len);
    if (!(r = pg_exec(c, sql_put, &p, false, "storing a manifest", NULL, err)))
        return PEMN_EDB;
    x->created = PQntuples(r) == 1;
    PQclear(r);
    if (!x->created)
        return PEMN_OK;
    char target[2 * STORE_LABEL_MAX + 2];
    snprintf(target, sizeof target, "%s/%s", m->repo, m->version);
    return pg_audit(c, x->actor, "oci.manifest", target, m->digest, err);
}

static pemn_rc manifest_put(struct store *st, const struct store_oci_manifest *m, const char *actor,
                            bool *created, struct pemn_err *err)
{
    struct mput_ctx x = {m, actor, false};
    pemn_rc rc = pg_run(st, PG_WRITE, mput_body, &x, err);
    if (!rc && created)
        *created = x.created;
    return rc;
}

/* A manifest row by sql ($1, $2), then its bytes (binary, by id: rows are immutable). */
static pemn_rc manifest_read(struct store *st, const char *sql, const char *a, const char *b,
                             struct store_oci_manifest *out, struct pemn_err *err)
{
    struct q x = {.sql = sql, .what = "reading a manifest", .t = {a, b}, .n = 2};
    pemn_rc rc = q_run(st, &x, false, err);
    if (rc)
        return rc;
    if (PQntuples(x.r) != 1) {
        PQclear(x.r);
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no manifest %s in %s", b, a);
    }
    manifest_row(x.r, 0, out);
    int64_t id = pg_i64(x.r, 0, 0);
    PQclear(x.r);
    struct q d = {.sql = "SELECT data FROM oci_manifests WHERE id = $1",
                  .what = "reading a manifest",
                  .i = {id},
                  .is_i = {true},
                  .n = 1,
                  .binary = true};
    if ((rc = q_run(st, &d, false, err)))
        return rc;
    if (PQntuples(d.r) == 1 && PQgetlength(d.r, 0, 0) > 0) {
        size_t n = (size_t)PQgetlength(d.r, 0, 0);
        out->data = malloc(n);
        if (out->data) {
            memcpy(out->data, PQgetvalue(d.r, 0, 0), n);
            out->len = n;
        } else {
            rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        }
    } else {
        rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "manifest %s has no bytes", out->digest);
    }
    PQclear(d.r);
    return rc;
}

static pemn_rc manifest_get(struct store *st, const char *repo, const char *digest,
                            struct store_oci_manifest *out, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT " MANIFEST_COLS " FROM oci_manifests WHERE repo = $1 AND digest = $2";
    return manifest_read(st, sql, repo, digest, out, err);
}

static pemn_rc manifest_for_version(struct store *st, const char *repo, const char *version,
                                    struct store_oci_manifest *out, struct pemn_err *err)
{
    static const char sql[] = "SELECT " MANIFEST_COLS " FROM oci_manifests"
                              " WHERE repo = $1 AND version = $2 ORDER BY id DESC LIMIT 1";
    return manifest_read(st, sql, repo, version, out, err);
}

static pemn_rc referrers(struct store *st, const char *repo, const char *subject,
                         store_oci_manifest_cb cb, void *ctx, struct pemn_err *err)
{
    struct q x = {.sql = "SELECT " MANIFEST_COLS " FROM oci_manifests"
                         " WHERE repo = $1 AND subject = $2 ORDER BY id",
                  .what = "listing referrers",
                  .t = {repo, subject},
                  .n = 2};
    pemn_rc rc = q_run(st, &x, false, err);
    for (int i = 0; !rc && i < PQntuples(x.r); i++) {
        struct store_oci_manifest m;
        manifest_row(x.r, i, &m);
        if (cb(ctx, &m))
            rc = PEMN_ECANCELED;
    }
    PQclear(x.r);
    return rc;
}

/* ---- fleet sources ----------------------------------------------------------------------- */
struct src_ctx {
    const char *fleet, *location, *actor;
};

static pemn_rc source_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql_fleet[] = "SELECT 1 FROM fleets WHERE name = $1";
    static const char sql_set[] =
        "INSERT INTO oci_fleet_sources(fleet, location, updated) VALUES($1, $2, " PG_NOW ")"
        " ON CONFLICT(fleet) DO UPDATE SET location = excluded.location,"
        " updated = excluded.updated";
    static const char sql_del[] = "DELETE FROM oci_fleet_sources WHERE fleet = $1 RETURNING fleet";
    struct src_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->fleet);
    PGresult *r = pg_exec(c, x->location ? sql_fleet : sql_del, &p, false, "setting a fleet source",
                          NULL, err);
    if (!r)
        return PEMN_EDB;
    bool hit = PQntuples(r) == 1;
    PQclear(r);
    if (!hit)
        return x->location
                   ? proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no fleet '%s'", x->fleet)
                   : proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "fleet '%s' has no OCI source",
                               x->fleet);
    if (x->location) {
        pg_p_init(&p);
        pg_p_text(&p, x->fleet);
        pg_p_text(&p, x->location);
        pemn_rc rc = pg_cmd(c, sql_set, &p, "setting a fleet source", err);
        if (rc)
            return rc;
    }
    return pg_audit(c, x->actor, x->location ? "fleet.oci" : "fleet.oci.delete", x->fleet,
                    x->location ? x->location : "", err);
}

static pemn_rc source_set(struct store *st, const char *fleet, const char *location,
                          const char *actor, struct pemn_err *err)
{
    struct src_ctx x = {fleet, location, actor};
    return pg_run(st, PG_WRITE, source_body, &x, err);
}

static pemn_rc source_get(struct store *st, const char *fleet,
                          char location[STORE_OCI_LOCATION_MAX], struct pemn_err *err)
{
    struct q x = {.sql = "SELECT location FROM oci_fleet_sources WHERE fleet = $1",
                  .what = "reading a fleet source",
                  .t = {fleet},
                  .n = 1};
    pemn_rc rc = q_run(st, &x, false, err);
    if (!rc && PQntuples(x.r) == 1)
        pg_text(x.r, 0, 0, location, STORE_OCI_LOCATION_MAX);
    else if (!rc)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "fleet '%s' has no OCI source", fleet);
    PQclear(x.r);
    return rc;
}

const struct store_oci_ops pg_oci_ops = {
    .upload_create = upload_create,
    .upload_get = upload_get,
    .upload_advance = upload_advance,
    .upload_delete = upload_delete,
    .upload_expire = upload_expire,
    .blob_put = blob_put,
    .manifest_put = manifest_put,
    .manifest_get = manifest_get,
    .manifest_for_version = manifest_for_version,
    .referrers = referrers,
    .source_set = source_set,
    .source_get = source_get,
};
