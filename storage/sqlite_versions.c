/*
 * storage/sqlite_versions.c — models, versions (push) and tags.
 */
#include "storage/sqlite_fleet.h"
#include "storage/sqlite_int.h"

#include "proto/err.h"

#include <stdio.h>
#include <string.h>

/* The columns of a version object, in the order row_to_version reads them. */
#define VERSION_COLS                                                                               \
    "m.name, v.version, v.strategy, v.release, b.digest, b.size, v.signer, v.created, v.pushed, "  \
    "v.density, v.n_params, v.f32_size"
#define VERSION_FROM                                                                               \
    " FROM versions v JOIN models m ON m.id = v.model_id JOIN blobs b ON b.id = v.blob_id "

static void row_to_version(sqlite3_stmt *s, int col0, struct store_version *v)
{
    memset(v, 0, sizeof *v);
    sq_col_text(s, col0 + 0, v->model, sizeof v->model);
    sq_col_text(s, col0 + 1, v->version, sizeof v->version);
    sq_col_text(s, col0 + 2, v->strategy, sizeof v->strategy);
    v->release = (uint64_t)sqlite3_column_int64(s, col0 + 3);
    sq_col_text(s, col0 + 4, v->digest, sizeof v->digest);
    v->size = (uint64_t)sqlite3_column_int64(s, col0 + 5);
    sq_col_text(s, col0 + 6, v->signer, sizeof v->signer);
    v->created = sqlite3_column_int64(s, col0 + 7);
    v->pushed = sqlite3_column_int64(s, col0 + 8);
    v->density = sqlite3_column_double(s, col0 + 9);
    v->n_params = (uint64_t)sqlite3_column_int64(s, col0 + 10);
    v->f32_size = (uint64_t)sqlite3_column_int64(s, col0 + 11);
}

static const char sql_get_version[] =
    "SELECT " VERSION_COLS VERSION_FROM "WHERE m.name = ?1 AND v.version = ?2";

/* Reads one version on an open connection. */
static pemn_rc get_version(struct sq_conn *c, const char *model, const char *version,
                           struct store_version *out, struct pemn_err *err)
{
    sqlite3_stmt *s = sq_stmt(c, sql_get_version, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_text(s, 1, model, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, version, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    pemn_rc rc = PEMN_OK;
    if (r == SQLITE_ROW) {
        if (out)
            row_to_version(s, 0, out);
    } else if (r == SQLITE_DONE) {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no version %s of model %s", version,
                       model);
    } else {
        rc = sq_fail(c, err, "reading a version");
    }
    sq_done(s);
    return rc;
}

pemn_rc sq_get_version(struct store *st, const char *model, const char *version,
                       struct store_version *out, struct pemn_err *err)
{
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (rc)
        return rc;
    rc = get_version(c, model, version, out, err);
    sq_release(st, c);
    return rc;
}

pemn_rc sq_get_latest(struct store *st, const char *model, struct store_version *out,
                      struct pemn_err *err)
{
    static const char sql[] =
        "SELECT " VERSION_COLS VERSION_FROM "WHERE m.name = ?1 ORDER BY v.release DESC LIMIT 1";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, model, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        row_to_version(s, 0, out);
    else if (r == SQLITE_DONE)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no model %s", model);
    else
        rc = sq_fail(c, err, "reading the latest version");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

/* ---- push ------------------------------------------------------------------------------ */
/* Looks up a row id with one text parameter; 0 when absent, -1 on error. */
static int64_t lookup_id(struct sq_conn *c, const char *sql, const char *key, struct pemn_err *err)
{
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    int64_t id = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : r == SQLITE_DONE ? 0 : -1;
    if (id < 0)
        sq_fail(c, err, "lookup");
    sq_done(s);
    return id;
}

static const char sql_model_id[] = "SELECT id FROM models WHERE name = ?1";

static pemn_rc put_locked(struct sq_conn *c, const struct store_version *m, const void *bytes,
                          size_t len, const char *actor, bool *created, struct pemn_err *err)
{
    static const char sql_max_release[] = "SELECT max(release) FROM versions WHERE model_id = ?1";
    static const char sql_new_model[] = "INSERT INTO models(name, created) VALUES(?1, ?2)";
    static const char sql_blob_id[] = "SELECT id FROM blobs WHERE digest = ?1";
    static const char sql_new_blob[] =
        "INSERT INTO blobs(digest, size, created, data) VALUES(?1, ?2, ?3, ?4)";
    static const char sql_new_version[] =
        "INSERT INTO versions(model_id, version, release, blob_id, signer, strategy, density,"
        " n_params, f32_size, created, pushed) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)";

    struct store_version old;
    pemn_rc rc = get_version(c, m->model, m->version, &old, err);
    if (rc == PEMN_OK) {
        if (strcmp(old.digest, m->digest) == 0) {
            *created = false;
            return PEMN_OK;
        }
        return proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                         "version %s of %s already exists with a different package (%s)",
                         m->version, m->model, old.digest);
    }
    if (rc != PEMN_ENOTFOUND)
        return rc;

    int64_t model_id = lookup_id(c, sql_model_id, m->model, err);
    if (model_id < 0)
        return PEMN_EDB;
    int64_t now = sq_now();
    sqlite3_stmt *s;
    if (model_id > 0) {
        if (!(s = sq_stmt(c, sql_max_release, err)))
            return PEMN_EDB;
        sqlite3_bind_int64(s, 1, model_id);
        int r = sqlite3_step(s);
        int64_t max = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
        bool null = r == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_NULL;
        sq_done(s);
        if (r != SQLITE_ROW)
            return sq_fail(c, err, "reading the latest release");
        if (!null && (int64_t)m->release <= max)
            return proto_err(err, PEMN_EROLLBACK, PEMN_NO_OFFSET,
                             "release %llu is not greater than the latest release %lld of %s",
                             (unsigned long long)m->release, (long long)max, m->model);
    } else {
        if (!(s = sq_stmt(c, sql_new_model, err)))
            return PEMN_EDB;
        sqlite3_bind_text(s, 1, m->model, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, now);
        int r = sqlite3_step(s);
        sq_done(s);
        if (r != SQLITE_DONE)
            return sq_fail(c, err, "creating the model");
        model_id = sqlite3_last_insert_rowid(c->db);
    }

    int64_t blob_id = lookup_id(c, sql_blob_id, m->digest, err);
    if (blob_id < 0)
        return PEMN_EDB;
    if (blob_id == 0) {
        if (!(s = sq_stmt(c, sql_new_blob, err)))
            return PEMN_EDB;
        sqlite3_bind_text(s, 1, m->digest, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)len);
        sqlite3_bind_int64(s, 3, now);
        sqlite3_bind_blob64(s, 4, bytes, (sqlite3_uint64)len, SQLITE_STATIC);
        int r = sqlite3_step(s);
        sq_done(s);
        if (r != SQLITE_DONE)
            return sq_fail(c, err, "storing the package bytes");
        blob_id = sqlite3_last_insert_rowid(c->db);
    }

    if (!(s = sq_stmt(c, sql_new_version, err)))
        return PEMN_EDB;
    sqlite3_bind_int64(s, 1, model_id);
    sqlite3_bind_text(s, 2, m->version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)m->release);
    sqlite3_bind_int64(s, 4, blob_id);
    sqlite3_bind_text(s, 5, m->signer, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, m->strategy, -1, SQLITE_STATIC);
    sqlite3_bind_double(s, 7, m->density);
    sqlite3_bind_int64(s, 8, (sqlite3_int64)m->n_params);
    sqlite3_bind_int64(s, 9, (sqlite3_int64)m->f32_size);
    sqlite3_bind_int64(s, 10, m->created);
    sqlite3_bind_int64(s, 11, now);
    int r = sqlite3_step(s);
    sq_done(s);
    if (r != SQLITE_DONE)
        return sq_fail(c, err, "storing the version");

    char target[2 * STORE_LABEL_MAX + 2];
    snprintf(target, sizeof target, "%s/%s", m->model, m->version);
    rc = sq_audit(c, actor, "push", target, m->digest, err);
    if (rc)
        return rc;
    *created = true;
    return PEMN_OK;
}

pemn_rc sq_put_package(struct store *st, const struct store_version *meta, const void *bytes,
                       size_t len, const char *actor, bool *created, struct store_version *out,
                       struct pemn_err *err)
{
    const struct store_version m = *meta; /* validated, digest canonical (store.c) */
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (rc)
        return rc;
    rc = sq_begin(c, err);
    if (!rc) {
        rc = put_locked(c, &m, bytes, len, actor, created, err);
        if (!rc && *created)
            rc = sq_commit(c, err);
        else
            sq_rollback(c);
    }
    if (!rc && out)
        rc = get_version(c, m.model, m.version, out, err);
    sq_release(st, c);
    return rc;
}

/* ---- listings -------------------------------------------------------------------------- */
pemn_rc sq_list_models(struct store *st, store_model_cb cb, void *ctx, struct pemn_err *err)
{
    /* The latest version per model: the row with the highest release. */
    static const char sql[] =
        "SELECT " VERSION_COLS
        ", (SELECT count(*) FROM versions x WHERE x.model_id = m.id)" VERSION_FROM
        "WHERE v.release = (SELECT max(release) FROM versions y"
        " WHERE y.model_id = m.id) ORDER BY m.name";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    int r;
    struct store_version v;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        row_to_version(s, 0, &v);
        if (cb(ctx, v.model, &v, (uint64_t)sqlite3_column_int64(s, 12))) {
            rc = PEMN_ECANCELED;
            break;
        }
    }
    if (!rc && r != SQLITE_DONE)
        rc = sq_fail(c, err, "listing models");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

pemn_rc sq_list_versions(struct store *st, const char *model, store_version_cb cb, void *ctx,
                         struct pemn_err *err)
{
    static const char sql[] =
        "SELECT " VERSION_COLS VERSION_FROM "WHERE m.name = ?1 ORDER BY v.release DESC";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, model, -1, SQLITE_STATIC);
    int r, n = 0;
    struct store_version v;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        n++;
        row_to_version(s, 0, &v);
        if (cb(ctx, &v)) {
            rc = PEMN_ECANCELED;
            break;
        }
    }
    if (!rc && r != SQLITE_DONE)
        rc = sq_fail(c, err, "listing versions");
    else if (!rc && n == 0)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no model %s", model);
    sq_done(s);
    sq_release(st, c);
    return rc;
}

/* ---- tags ------------------------------------------------------------------------------ */
pemn_rc sq_tag_set(struct store *st, const char *model, const char *tag, const char *version,
                   const char *actor, struct store_version *out, unsigned *fleets_moved,
                   struct pemn_err *err)
{
    static const char sql[] =
        "INSERT INTO tags(model_id, tag, version_id, updated)"
        " SELECT v.model_id, ?3, v.id, ?4 FROM versions v JOIN models m ON m.id = v.model_id"
        " WHERE m.name = ?1 AND v.version = ?2"
        " ON CONFLICT(model_id, tag) DO UPDATE SET version_id = excluded.version_id,"
        " updated = excluded.updated";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        rc = PEMN_EDB;
    if (!rc) {
        sqlite3_bind_text(s, 1, model, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, version, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, tag, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, sq_now());
        int r = sqlite3_step(s);
        sq_done(s);
        if (r != SQLITE_DONE)
            rc = sq_fail(c, err, "setting a tag");
        else if (sqlite3_changes(c->db) == 0)
            rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no version %s of model %s",
                           version, model);
    }
    if (!rc) {
        char target[2 * STORE_LABEL_MAX + 2];
        snprintf(target, sizeof target, "%s:%s", model, tag);
        rc = sq_audit(c, actor, "tag.set", target, version, err);
    }
    struct store_version v;
    unsigned moved = 0;
    if (!rc)
        rc = get_version(c, model, version, &v, err);
    /* fleets that follow this tag move with it, in the same transaction */
    if (!rc)
        rc = sq_fleet_follow_tag(c, &v, tag, actor, &moved, err);
    if (!rc)
        rc = sq_commit(c, err);
    if (!rc && out)
        *out = v;
    if (!rc && fleets_moved)
        *fleets_moved = moved;
    sq_release(st, c); /* rolls back on failure */
    return rc;
}

pemn_rc sq_tag_get(struct store *st, const char *model, const char *tag, struct store_version *out,
                   struct pemn_err *err)
{
    static const char sql[] = "SELECT " VERSION_COLS VERSION_FROM
                              "JOIN tags t ON t.version_id = v.id AND t.model_id = m.id"
                              " WHERE m.name = ?1 AND t.tag = ?2";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, model, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, tag, -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW)
        row_to_version(s, 0, out);
    else if (r == SQLITE_DONE)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no tag %s on model %s", tag, model);
    else
        rc = sq_fail(c, err, "reading a tag");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

pemn_rc sq_tag_delete(struct store *st, const char *model, const char *tag, const char *actor,
                      struct pemn_err *err)
{
    static const char sql[] = "DELETE FROM tags WHERE tag = ?2 AND model_id ="
                              " (SELECT id FROM models WHERE name = ?1)";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        rc = PEMN_EDB;
    if (!rc) {
        sqlite3_bind_text(s, 1, model, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, tag, -1, SQLITE_STATIC);
        int r = sqlite3_step(s);
        sq_done(s);
        if (r != SQLITE_DONE)
            rc = sq_fail(c, err, "deleting a tag");
        else if (sqlite3_changes(c->db) == 0)
            rc =
                proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no tag %s on model %s", tag, model);
    }
    if (!rc) {
        char target[2 * STORE_LABEL_MAX + 2];
        snprintf(target, sizeof target, "%s:%s", model, tag);
        rc = sq_audit(c, actor, "tag.delete", target, "", err);
    }
    if (!rc)
        rc = sq_commit(c, err);
    sq_release(st, c);
    return rc;
}

pemn_rc sq_list_tags(struct store *st, const char *model, store_tag_cb cb, void *ctx,
                     struct pemn_err *err)
{
    static const char sql[] = "SELECT t.tag, v.version FROM tags t JOIN models m ON"
                              " m.id = t.model_id JOIN versions v ON v.id = t.version_id"
                              " WHERE m.name = ?1 ORDER BY t.tag";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, model, -1, SQLITE_STATIC);
    int r;
    char tag[STORE_LABEL_MAX], ver[STORE_LABEL_MAX];
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        sq_col_text(s, 0, tag, sizeof tag);
        sq_col_text(s, 1, ver, sizeof ver);
        if (cb(ctx, tag, ver)) {
            rc = PEMN_ECANCELED;
            break;
        }
    }
    if (!rc && r != SQLITE_DONE)
        rc = sq_fail(c, err, "listing tags");
    sq_done(s);
    sq_release(st, c);
    return rc;
}
