/*
 * storage/sqlite_oci.c — the SQLite side of store_oci.h: upload sessions, blobs pushed
 * through /v2, manifests stored byte for byte. Migration 6 (sq_schema_v6_oci) creates the
 * tables; blobs share the blobs table of migration 1.
 */
#include "storage/sqlite_int.h"
#include "storage/oci_schema.h"
#include "storage/store_oci.h"

#include "proto/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char sq_schema_v6_oci[] =
    "CREATE TABLE oci_uploads("
    "  id TEXT PRIMARY KEY,"
    "  repo TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL);"
    /* data last: listing descriptors never touches a manifest's overflow pages */
    "CREATE TABLE oci_manifests("
    "  id INTEGER PRIMARY KEY,"
    "  repo TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  media_type TEXT NOT NULL,"
    "  artifact_type TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  data BLOB NOT NULL,"
    "  UNIQUE(repo, digest));"
    "CREATE INDEX oci_manifests_version ON oci_manifests(repo, version, id);"
    "CREATE INDEX oci_manifests_subject ON oci_manifests(repo, subject, id);"
    /* where a fleet's devices fetch package bytes: an OCI repository, by fleet name */
    "CREATE TABLE oci_fleet_sources("
    "  fleet TEXT PRIMARY KEY,"
    "  location TEXT NOT NULL,"
    "  updated INTEGER NOT NULL);";

/* ---- upload sessions ------------------------------------------------------------------- */
/* Takes the write connection and prepares its first statement; on failure nothing is held. */
static pemn_rc begin_write(struct store *st, const char *sql, struct sq_conn **c, sqlite3_stmt **s,
                           struct pemn_err *err)
{
    pemn_rc rc = sq_acquire_write(st, c, err);
    if (rc)
        return rc;
    if (!(*s = sq_stmt(*c, sql, err))) {
        sq_release(st, *c);
        return PEMN_EDB;
    }
    return PEMN_OK;
}

static pemn_rc exec_write(struct store *st, const char *sql, const char *what,
                          void (*bind)(sqlite3_stmt *, const void *), const void *ctx, int *changes,
                          struct pemn_err *err)
{
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = begin_write(st, sql, &c, &s, err);
    if (rc)
        return rc;
    bind(s, ctx);
    int r = sqlite3_step(s);
    sq_done(s);
    if ((r & 0xff) == SQLITE_CONSTRAINT)
        rc = proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET, "%s: already exists", what);
    else if (r != SQLITE_DONE)
        rc = sq_fail(c, err, what);
    if (!rc && changes)
        *changes = sqlite3_changes(c->db);
    if (!rc)
        rc = sq_commit(c, err);
    sq_release(st, c);
    return rc;
}

struct upload_args {
    const char *repo, *id;
    uint64_t from, to;
    int64_t now;
};

static void bind_create(sqlite3_stmt *s, const void *ctx)
{
    const struct upload_args *a = ctx;
    sqlite3_bind_text(s, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->repo, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, a->now);
}

static pemn_rc sq_oci_upload_create(struct store *st, const char *repo, const char *id,
                                    struct pemn_err *err)
{
    static const char sql[] = "INSERT INTO oci_uploads(id, repo, size, created, updated)"
                              " VALUES(?1, ?2, 0, ?3, ?3)";
    if (!id || !id[0] || strlen(id) >= STORE_OCI_ID_MAX)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad upload id");
    struct upload_args a = {.repo = repo, .id = id, .now = sq_now()};
    return exec_write(st, sql, "creating an upload session", bind_create, &a, NULL, err);
}

static void upload_row(sqlite3_stmt *s, struct store_oci_upload *u)
{
    sq_col_text(s, 0, u->id, sizeof u->id);
    sq_col_text(s, 1, u->repo, sizeof u->repo);
    u->size = (uint64_t)sqlite3_column_int64(s, 2);
    u->created = sqlite3_column_int64(s, 3);
    u->updated = sqlite3_column_int64(s, 4);
}

static pemn_rc sq_oci_upload_get(struct store *st, const char *repo, const char *id,
                                 struct store_oci_upload *out, struct pemn_err *err)
{
    static const char sql[] = "SELECT id, repo, size, created, updated FROM oci_uploads"
                              " WHERE id = ?1 AND repo = ?2";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, repo, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        upload_row(s, out);
    else if (r == SQLITE_DONE)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no upload %s in %s", id, repo);
    else
        rc = sq_fail(c, err, "reading an upload session");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

static void bind_advance(sqlite3_stmt *s, const void *ctx)
{
    const struct upload_args *a = ctx;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)a->to);
    sqlite3_bind_int64(s, 2, a->now);
    sqlite3_bind_text(s, 3, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, a->repo, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, (sqlite3_int64)a->from);
}

static pemn_rc sq_oci_upload_advance(struct store *st, const char *repo, const char *id,
                                     uint64_t from, uint64_t to, struct pemn_err *err)
{
    static const char sql[] = "UPDATE oci_uploads SET size = ?1, updated = ?2"
                              " WHERE id = ?3 AND repo = ?4 AND size = ?5";
    if (to > INT64_MAX || from > to)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad upload size");
    struct upload_args a = {.repo = repo, .id = id, .from = from, .to = to, .now = sq_now()};
    int n = 0;
    pemn_rc rc = exec_write(st, sql, "advancing an upload session", bind_advance, &a, &n, err);
    if (rc || n)
        return rc;
    struct store_oci_upload u;
    rc = sq_oci_upload_get(st, repo, id, &u, err);
    if (rc)
        return rc;
    return proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET, "upload %s is at byte %llu, not %llu", id,
                     (unsigned long long)u.size, (unsigned long long)from);
}

static void bind_delete(sqlite3_stmt *s, const void *ctx)
{
    const struct upload_args *a = ctx;
    sqlite3_bind_text(s, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, a->repo, -1, SQLITE_STATIC);
}

static pemn_rc sq_oci_upload_delete(struct store *st, const char *repo, const char *id,
                                    struct pemn_err *err)
{
    static const char sql[] = "DELETE FROM oci_uploads WHERE id = ?1 AND repo = ?2";
    struct upload_args a = {.repo = repo, .id = id};
    int n = 0;
    pemn_rc rc = exec_write(st, sql, "deleting an upload session", bind_delete, &a, &n, err);
    if (!rc && !n)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no upload %s in %s", id, repo);
    return rc;
}

#define EXPIRE_BATCH 64

static pemn_rc sq_oci_upload_expire(struct store *st, int64_t before, store_oci_upload_cb cb,
                                    void *ctx, struct pemn_err *err)
{
    static const char sql_sel[] = "SELECT id, repo, size, created, updated FROM oci_uploads"
                                  " WHERE updated < ?1 ORDER BY updated LIMIT 64";
    static const char sql_del[] = "DELETE FROM oci_uploads WHERE id = ?1";
    for (;;) {
        struct store_oci_upload batch[EXPIRE_BATCH];
        int n = 0;
        struct sq_conn *c;
        sqlite3_stmt *s;
        pemn_rc rc = begin_write(st, sql_sel, &c, &s, err);
        if (rc)
            return rc;
        sqlite3_bind_int64(s, 1, before);
        int r;
        while (n < EXPIRE_BATCH && (r = sqlite3_step(s)) == SQLITE_ROW)
            upload_row(s, &batch[n++]);
        sq_done(s);
        for (int i = 0; i < n && !rc; i++) {
            if (!(s = sq_stmt(c, sql_del, err))) {
                rc = PEMN_EDB;
                break;
            }
            sqlite3_bind_text(s, 1, batch[i].id, -1, SQLITE_STATIC);
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = sq_fail(c, err, "expiring upload sessions");
            sq_done(s);
        }
        if (!rc)
            rc = sq_commit(c, err);
        sq_release(st, c);
        if (rc)
            return rc;
        for (int i = 0; i < n; i++)
            if (cb && cb(ctx, &batch[i]))
                return PEMN_ECANCELED;
        if (n < EXPIRE_BATCH)
            return PEMN_OK;
    }
}

/* ---- blobs ----------------------------------------------------------------------------- */
static pemn_rc sq_oci_blob_put(struct store *st, const char *digest, const void *bytes, size_t len,
                               const char *actor, bool *created, struct pemn_err *err)
{
    static const char sql_has[] = "SELECT 1 FROM blobs WHERE digest = ?1";
    static const char sql_put[] =
        "INSERT INTO blobs(digest, size, created, data) VALUES(?1, ?2, ?3, ?4)";
    uint8_t d[PEMN_DIGEST_BYTES];
    char canon[PEMN_DIGEST_TEXT_MAX];
    if (!digest || pemn_digest_parse(digest, d) != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "malformed digest");
    pemn_digest_format(d, canon);
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = begin_write(st, sql_has, &c, &s, err);
    if (rc)
        return rc;
    bool made = false;
    sqlite3_bind_text(s, 1, canon, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    sq_done(s);
    if (r == SQLITE_DONE) {
        if (!(s = sq_stmt(c, sql_put, err))) {
            rc = PEMN_EDB;
            goto out;
        }
        sqlite3_bind_text(s, 1, canon, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)len);
        sqlite3_bind_int64(s, 3, sq_now());
        sqlite3_bind_blob64(s, 4, len ? bytes : "", (sqlite3_uint64)len, SQLITE_STATIC);
        r = sqlite3_step(s);
        sq_done(s);
        if (r != SQLITE_DONE) {
            rc = sq_fail(c, err, "storing a blob");
            goto out;
        }
        made = true;
        rc = sq_audit(c, actor ? actor : "", "oci.blob", canon, "", err);
    } else if (r != SQLITE_ROW) {
        rc = sq_fail(c, err, "looking up a blob");
    }
    if (!rc)
        rc = sq_commit(c, err);
out:
    sq_release(st, c);
    if (!rc && created)
        *created = made;
    return rc;
}

/* ---- manifests ------------------------------------------------------------------------- */
#define MANIFEST_COLS "repo, digest, media_type, artifact_type, subject, version, created, size"

static void manifest_row(sqlite3_stmt *s, struct store_oci_manifest *m)
{
    sq_col_text(s, 0, m->repo, sizeof m->repo);
    sq_col_text(s, 1, m->digest, sizeof m->digest);
    sq_col_text(s, 2, m->media_type, sizeof m->media_type);
    sq_col_text(s, 3, m->artifact_type, sizeof m->artifact_type);
    sq_col_text(s, 4, m->subject, sizeof m->subject);
    sq_col_text(s, 5, m->version, sizeof m->version);
    m->created = sqlite3_column_int64(s, 6);
    m->len = (size_t)sqlite3_column_int64(s, 7);
    m->data = NULL;
}

static pemn_rc sq_oci_manifest_put(struct store *st, const struct store_oci_manifest *m,
                                   const char *actor, bool *created, struct pemn_err *err)
{
    static const char sql_ver[] = "SELECT 1 FROM versions v JOIN models mo ON mo.id = v.model_id"
                                  " WHERE mo.name = ?1 AND v.version = ?2";
    static const char sql_put[] =
        "INSERT OR IGNORE INTO oci_manifests(repo, digest, media_type, artifact_type, subject,"
        " version, created, size, data) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)";
    if (!m->data || !m->len || m->len > STORE_OCI_MANIFEST_MAX)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "manifest of %zu bytes", m->len);
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = begin_write(st, sql_ver, &c, &s, err);
    if (rc)
        return rc;
    bool made = false;
    sqlite3_bind_text(s, 1, m->repo, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, m->version, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    sq_done(s);
    if (r == SQLITE_DONE) {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no version %s of %s", m->version,
                       m->repo);
        goto out;
    }
    if (r != SQLITE_ROW) {
        rc = sq_fail(c, err, "looking up a version");
        goto out;
    }
    if (!(s = sq_stmt(c, sql_put, err))) {
        rc = PEMN_EDB;
        goto out;
    }
    sqlite3_bind_text(s, 1, m->repo, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, m->digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, m->media_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, m->artifact_type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, m->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, m->version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 7, sq_now());
    sqlite3_bind_int64(s, 8, (sqlite3_int64)m->len);
    sqlite3_bind_blob64(s, 9, m->data, (sqlite3_uint64)m->len, SQLITE_STATIC);
    r = sqlite3_step(s);
    sq_done(s);
    if (r != SQLITE_DONE) {
        rc = sq_fail(c, err, "storing a manifest");
        goto out;
    }
    made = sqlite3_changes(c->db) > 0;
    if (made) {
        char target[2 * STORE_LABEL_MAX + 2];
        snprintf(target, sizeof target, "%s/%s", m->repo, m->version);
        rc = sq_audit(c, actor ? actor : "", "oci.manifest", target, m->digest, err);
    }
    if (!rc)
        rc = sq_commit(c, err);
out:
    sq_release(st, c);
    if (!rc && created)
        *created = made;
    return rc;
}

static pemn_rc manifest_read(struct store *st, const char *sql, const char *a, const char *b,
                             struct store_oci_manifest *out, struct pemn_err *err)
{
    struct sq_conn *c;
    sqlite3_stmt *s;
    memset(out, 0, sizeof *out);
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, a, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, b, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        manifest_row(s, out);
        const void *p = sqlite3_column_blob(s, 8);
        int n = sqlite3_column_bytes(s, 8);
        out->data = n > 0 ? malloc((size_t)n) : NULL;
        if (!out->data) {
            rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        } else {
            memcpy(out->data, p, (size_t)n);
            out->len = (size_t)n;
        }
    } else if (r == SQLITE_DONE) {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no manifest %s in %s", b, a);
    } else {
        rc = sq_fail(c, err, "reading a manifest");
    }
    sq_done(s);
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_oci_manifest_get(struct store *st, const char *repo, const char *digest,
                                   struct store_oci_manifest *out, struct pemn_err *err)
{
    static const char sql[] = "SELECT " MANIFEST_COLS ", data FROM oci_manifests"
                              " WHERE repo = ?1 AND digest = ?2";
    return manifest_read(st, sql, repo, digest, out, err);
}

static pemn_rc sq_oci_manifest_for_version(struct store *st, const char *repo, const char *version,
                                           struct store_oci_manifest *out, struct pemn_err *err)
{
    static const char sql[] = "SELECT " MANIFEST_COLS ", data FROM oci_manifests"
                              " WHERE repo = ?1 AND version = ?2 ORDER BY id DESC LIMIT 1";
    return manifest_read(st, sql, repo, version, out, err);
}

static pemn_rc sq_oci_referrers(struct store *st, const char *repo, const char *subject,
                                store_oci_manifest_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql[] = "SELECT " MANIFEST_COLS " FROM oci_manifests"
                              " WHERE repo = ?1 AND subject = ?2 ORDER BY id";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, repo, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, subject, -1, SQLITE_STATIC);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_oci_manifest m;
        manifest_row(s, &m);
        if (cb(ctx, &m)) {
            rc = PEMN_ECANCELED;
            break;
        }
    }
    if (!rc && r != SQLITE_DONE)
        rc = sq_fail(c, err, "listing referrers");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

/* ---- fleet sources ----------------------------------------------------------------------- */
static pemn_rc sq_oci_source_set(struct store *st, const char *fleet, const char *location,
                                 const char *actor, struct pemn_err *err)
{
    static const char sql_fleet[] = "SELECT 1 FROM fleets WHERE name = ?1";
    static const char sql_set[] =
        "INSERT INTO oci_fleet_sources(fleet, location, updated) VALUES(?1, ?2, ?3)"
        " ON CONFLICT(fleet) DO UPDATE SET location = excluded.location, updated = "
        "excluded.updated";
    static const char sql_del[] = "DELETE FROM oci_fleet_sources WHERE fleet = ?1";
    if (location && (!location[0] || strlen(location) >= STORE_OCI_LOCATION_MAX))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad location");
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = begin_write(st, location ? sql_fleet : sql_del, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, fleet, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    sq_done(s);
    if (!location) {
        if (r != SQLITE_DONE)
            rc = sq_fail(c, err, "removing a fleet source");
        else if (sqlite3_changes(c->db) == 0)
            rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "fleet '%s' has no OCI source",
                           fleet);
    } else if (r == SQLITE_DONE) {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no fleet '%s'", fleet);
    } else if (r != SQLITE_ROW) {
        rc = sq_fail(c, err, "looking up a fleet");
    } else if (!(s = sq_stmt(c, sql_set, err))) {
        rc = PEMN_EDB;
    } else {
        sqlite3_bind_text(s, 1, fleet, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, location, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, sq_now());
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = sq_fail(c, err, "setting a fleet source");
        sq_done(s);
    }
    if (!rc)
        rc = sq_audit(c, actor ? actor : "", location ? "fleet.oci" : "fleet.oci.delete", fleet,
                      location ? location : "", err);
    if (!rc)
        rc = sq_commit(c, err);
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_oci_source_get(struct store *st, const char *fleet,
                                 char location[STORE_OCI_LOCATION_MAX], struct pemn_err *err)
{
    static const char sql[] = "SELECT location FROM oci_fleet_sources WHERE fleet = ?1";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, fleet, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        sq_col_text(s, 0, location, STORE_OCI_LOCATION_MAX);
    else if (r == SQLITE_DONE)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "fleet '%s' has no OCI source", fleet);
    else
        rc = sq_fail(c, err, "reading a fleet source");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

const struct store_oci_ops sq_oci_ops = {
    .upload_create = sq_oci_upload_create,
    .upload_get = sq_oci_upload_get,
    .upload_advance = sq_oci_upload_advance,
    .upload_delete = sq_oci_upload_delete,
    .upload_expire = sq_oci_upload_expire,
    .blob_put = sq_oci_blob_put,
    .manifest_put = sq_oci_manifest_put,
    .manifest_get = sq_oci_manifest_get,
    .manifest_for_version = sq_oci_manifest_for_version,
    .referrers = sq_oci_referrers,
    .source_set = sq_oci_source_set,
    .source_get = sq_oci_source_get,
};
