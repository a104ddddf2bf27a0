/*
 * storage/pg_versions.c — models, versions (push) and tags on PostgreSQL.
 *
 * Release order: a push locks its model's row (SELECT ... FOR UPDATE, creating the row
 * first when the model is new) before it checks the latest release, so two pushes to one
 * model are serialized and a release can never be stored after a higher one.
 */
#include "storage/pg_int.h"

#include "proto/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERSION_COLS                                                                               \
    "m.name, v.version, v.strategy, v.release, b.digest, b.size, v.signer, v.created, v.pushed, "  \
    "v.density, v.n_params, v.f32_size"
#define VERSION_FROM                                                                               \
    " FROM versions v JOIN models m ON m.id = v.model_id JOIN blobs b ON b.id = v.blob_id "

static void row_to_version(const PGresult *r, int row, int c0, struct store_version *v)
{
    memset(v, 0, sizeof *v);
    pg_text(r, row, c0 + 0, v->model, sizeof v->model);
    pg_text(r, row, c0 + 1, v->version, sizeof v->version);
    pg_text(r, row, c0 + 2, v->strategy, sizeof v->strategy);
    v->release = (uint64_t)pg_i64(r, row, c0 + 3);
    pg_text(r, row, c0 + 4, v->digest, sizeof v->digest);
    v->size = (uint64_t)pg_i64(r, row, c0 + 5);
    pg_text(r, row, c0 + 6, v->signer, sizeof v->signer);
    v->created = pg_i64(r, row, c0 + 7);
    v->pushed = pg_i64(r, row, c0 + 8);
    v->density = pg_f64(r, row, c0 + 9);
    v->n_params = (uint64_t)pg_i64(r, row, c0 + 10);
    v->f32_size = (uint64_t)pg_i64(r, row, c0 + 11);
}

static const char sql_get_version[] =
    "SELECT " VERSION_COLS VERSION_FROM "WHERE m.name = $1 AND v.version = $2";

static pemn_rc get_version(struct pg_conn *c, const char *model, const char *version,
                           struct store_version *out, struct pemn_err *err)
{
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, model);
    pg_p_text(&p, version);
    PGresult *r = pg_exec(c, sql_get_version, &p, false, "reading a version", NULL, err);
    if (!r)
        return PEMN_EDB;
    pemn_rc rc = PEMN_OK;
    if (PQntuples(r) == 1) {
        if (out)
            row_to_version(r, 0, 0, out);
    } else {
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no version %s of model %s", version,
                       model);
    }
    PQclear(r);
    return rc;
}

/* ---- one-row reads --------------------------------------------------------------------- */
struct one_ctx {
    const char *sql, *a, *b, *what;
    struct store_version *out;
};

static pemn_rc one_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    struct one_ctx *o = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, o->a);
    if (o->b)
        pg_p_text(&p, o->b);
    PGresult *r = pg_exec(c, o->sql, &p, false, o->what, NULL, err);
    if (!r)
        return PEMN_EDB;
    pemn_rc rc = PEMN_OK;
    if (PQntuples(r) >= 1)
        row_to_version(r, 0, 0, o->out);
    else
        rc = PEMN_ENOTFOUND; /* the caller words the message */
    PQclear(r);
    return rc;
}

pemn_rc pg_get_version(struct store *st, const char *model, const char *version,
                       struct store_version *out, struct pemn_err *err)
{
    struct store_version tmp;
    struct one_ctx o = {sql_get_version, model, version, "reading a version", out ? out : &tmp};
    pemn_rc rc = pg_run(st, PG_SINGLE, one_body, &o, err);
    if (rc == PEMN_ENOTFOUND)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no version %s of model %s", version,
                       model);
    return rc;
}

pemn_rc pg_get_latest(struct store *st, const char *model, struct store_version *out,
                      struct pemn_err *err)
{
    static const char sql[] =
        "SELECT " VERSION_COLS VERSION_FROM "WHERE m.name = $1 ORDER BY v.release DESC LIMIT 1";
    struct one_ctx o = {sql, model, NULL, "reading the latest version", out};
    pemn_rc rc = pg_run(st, PG_SINGLE, one_body, &o, err);
    if (rc == PEMN_ENOTFOUND)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no model %s", model);
    return rc;
}

pemn_rc pg_tag_get(struct store *st, const char *model, const char *tag, struct store_version *out,
                   struct pemn_err *err)
{
    static const char sql[] = "SELECT " VERSION_COLS VERSION_FROM
                              "JOIN tags t ON t.version_id = v.id AND t.model_id = m.id"
                              " WHERE m.name = $1 AND t.tag = $2";
    struct one_ctx o = {sql, model, tag, "reading a tag", out};
    pemn_rc rc = pg_run(st, PG_SINGLE, one_body, &o, err);
    if (rc == PEMN_ENOTFOUND)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no tag %s on model %s", tag, model);
    return rc;
}

/* ---- push ------------------------------------------------------------------------------ */
struct put_ctx {
    struct store *st;
    const struct store_version *m;
    const void *bytes;
    size_t len;
    const char *actor;
    bool created;
    struct store_version out;
};

static pemn_rc put_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql_new_model[] =
        "INSERT INTO models(name, created) VALUES($1, " PG_NOW ") ON CONFLICT(name) DO NOTHING";
    static const char sql_lock_model[] = "SELECT id FROM models WHERE name = $1 FOR UPDATE";
    static const char sql_max_release[] = "SELECT max(release) FROM versions WHERE model_id = $1";
    static const char sql_new_version[] =
        "INSERT INTO versions(model_id, version, release, blob_id, signer, strategy, density,"
        " n_params, f32_size, created, pushed) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10," PG_NOW ")";
    struct put_ctx *x = vctx;
    const struct store_version *m = x->m;
    x->created = false;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, m->model);
    /* the model row exists and is locked: pushes to one model run one at a time */
    pemn_rc rc = pg_cmd(c, sql_new_model, &p, "creating the model", err);
    PGresult *r = rc ? NULL : pg_exec(c, sql_lock_model, &p, false, "locking the model", NULL, err);
    if (!r)
        return PEMN_EDB;
    int64_t model_id = PQntuples(r) == 1 ? pg_i64(r, 0, 0) : 0;
    PQclear(r);
    if (!model_id)
        return proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "model %s vanished", m->model);

    struct store_version old;
    rc = get_version(c, m->model, m->version, &old, err);
    if (rc == PEMN_OK) {
        if (strcmp(old.digest, m->digest) == 0) {
            x->out = old;
            return PEMN_OK; /* identical: nothing to store (created stays false) */
        }
        return proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                         "version %s of %s already exists with a different package (%s)",
                         m->version, m->model, old.digest);
    }
    if (rc != PEMN_ENOTFOUND)
        return rc;

    pg_p_init(&p);
    pg_p_i64(&p, model_id);
    if (!(r = pg_exec(c, sql_max_release, &p, false, "reading the latest release", NULL, err)))
        return PEMN_EDB;
    bool none = PQgetisnull(r, 0, 0);
    int64_t max = pg_i64(r, 0, 0);
    PQclear(r);
    if (!none && (int64_t)m->release <= max)
        return proto_err(err, PEMN_EROLLBACK, PEMN_NO_OFFSET,
                         "release %llu is not greater than the latest release %lld of %s",
                         (unsigned long long)m->release, (long long)max, m->model);
    pg_hook(x->st, "push.checked");

    int64_t blob_id = 0;
    if ((rc = pg_blob_store(c, m->digest, x->bytes, x->len, &blob_id, err)))
        return rc;
    pg_p_init(&p);
    pg_p_i64(&p, model_id);
    pg_p_text(&p, m->version);
    pg_p_i64(&p, (int64_t)m->release);
    pg_p_i64(&p, blob_id);
    pg_p_text(&p, m->signer);
    pg_p_text(&p, m->strategy);
    pg_p_f64(&p, m->density);
    pg_p_i64(&p, (int64_t)m->n_params);
    pg_p_i64(&p, (int64_t)m->f32_size);
    pg_p_i64(&p, m->created);
    if ((rc = pg_cmd(c, sql_new_version, &p, "storing the version", err)))
        return rc;
    char target[2 * STORE_LABEL_MAX + 2];
    snprintf(target, sizeof target, "%s/%s", m->model, m->version);
    if ((rc = pg_audit(c, x->actor, "push", target, m->digest, err)))
        return rc;
    if ((rc = get_version(c, m->model, m->version, &x->out, err)))
        return rc;
    x->created = true;
    return PEMN_OK;
}

pemn_rc pg_put_package(struct store *st, const struct store_version *meta, const void *bytes,
                       size_t len, const char *actor, bool *created, struct store_version *out,
                       struct pemn_err *err)
{
    struct put_ctx x = {.st = st, .m = meta, .bytes = bytes, .len = len, .actor = actor};
    pemn_rc rc = pg_run(st, PG_WRITE, put_body, &x, err);
    if (!rc) {
        *created = x.created;
        if (out)
            *out = x.out;
    }
    return rc;
}

/* ---- listings -------------------------------------------------------------------------- */
struct list_ctx {
    const char *sql, *arg, *what;
    PGresult *r;
};

static pemn_rc list_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    struct list_ctx *l = vctx;
    struct pg_params p;
    pg_p_init(&p);
    if (l->arg)
        pg_p_text(&p, l->arg);
    PQclear(l->r); /* a retried attempt starts over */
    l->r = pg_exec(c, l->sql, &p, false, l->what, NULL, err);
    return l->r ? PEMN_OK : PEMN_EDB;
}

/* Runs a listing query, leaving the rows in l->r (the caller PQclears it). */
static pemn_rc list_rows(struct store *st, struct list_ctx *l, struct pemn_err *err)
{
    l->r = NULL;
    pemn_rc rc = pg_run(st, PG_SINGLE, list_body, l, err);
    if (rc) {
        PQclear(l->r);
        l->r = NULL;
    }
    return rc;
}

pemn_rc pg_list_models(struct store *st, store_model_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT " VERSION_COLS
        ", (SELECT count(*) FROM versions x WHERE x.model_id = m.id)" VERSION_FROM
        "WHERE v.release = (SELECT max(release) FROM versions y"
        " WHERE y.model_id = m.id) ORDER BY m.name";
    struct list_ctx l = {sql, NULL, "listing models", NULL};
    pemn_rc rc = list_rows(st, &l, err);
    for (int i = 0; !rc && i < PQntuples(l.r); i++) {
        struct store_version v;
        row_to_version(l.r, i, 0, &v);
        if (cb(ctx, v.model, &v, (uint64_t)pg_i64(l.r, i, 12)))
            rc = PEMN_ECANCELED;
    }
    PQclear(l.r);
    return rc;
}

pemn_rc pg_list_versions(struct store *st, const char *model, store_version_cb cb, void *ctx,
                         struct pemn_err *err)
{
    static const char sql[] =
        "SELECT " VERSION_COLS VERSION_FROM "WHERE m.name = $1 ORDER BY v.release DESC";
    struct list_ctx l = {sql, model, "listing versions", NULL};
    pemn_rc rc = list_rows(st, &l, err);
    if (!rc && PQntuples(l.r) == 0)
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no model %s", model);
    for (int i = 0; !rc && i < PQntuples(l.r); i++) {
        struct store_version v;
        row_to_version(l.r, i, 0, &v);
        if (cb(ctx, &v))
            rc = PEMN_ECANCELED;
    }
    PQclear(l.r);
    return rc;
}

pemn_rc pg_list_tags(struct store *st, const char *model, store_tag_cb cb, void *ctx,
                     struct pemn_err *err)
{
    static const char sql[] = "SELECT t.tag, v.version FROM tags t JOIN models m ON"
                              " m.id = t.model_id JOIN versions v ON v.id = t.version_id"
                              " WHERE m.name = $1 ORDER BY t.tag";
    struct list_ctx l = {sql, model, "listing tags", NULL};
    pemn_rc rc = list_rows(st, &l, err);
    for (int i = 0; !rc && i < PQntuples(l.r); i++) {
        char tag[STORE_LABEL_MAX], ver[STORE_LABEL_MAX];
        pg_text(l.r, i, 0, tag, sizeof tag);
        pg_text(l.r, i, 1, ver, sizeof ver);
        if (cb(ctx, tag, ver))
            rc = PEMN_ECANCELED;
    }
    PQclear(l.r);
    return rc;
}

/* ---- tags ------------------------------------------------------------------------------ */
struct tag_ctx {
    struct store *st;
    const char *model, *tag, *version, *actor;
    struct store_version v;
    unsigned moved;
};

static pemn_rc tag_set_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] =
        "INSERT INTO tags(model_id, tag, version_id, updated)"
        " SELECT v.model_id, $3, v.id, " PG_NOW
        " FROM versions v JOIN models m ON m.id = v.model_id"
        " WHERE m.name = $1 AND v.version = $2"
        " ON CONFLICT(model_id, tag) DO UPDATE SET version_id = excluded.version_id,"
        " updated = excluded.updated";
    struct tag_ctx *x = vctx;
    x->moved = 0;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->model);
    pg_p_text(&p, x->version);
    pg_p_text(&p, x->tag);
    PGresult *r = pg_exec(c, sql, &p, false, "setting a tag", NULL, err);
    if (!r)
        return PEMN_EDB;
    bool none = strcmp(PQcmdTuples(r), "0") == 0;
    PQclear(r);
    if (none)
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no version %s of model %s",
                         x->version, x->model);
    char target[2 * STORE_LABEL_MAX + 2];
    snprintf(target, sizeof target, "%s:%s", x->model, x->tag);
    pemn_rc rc = pg_audit(c, x->actor, "tag.set", target, x->version, err);
    if (!rc)
        rc = get_version(c, x->model, x->version, &x->v, err);
    pg_hook(x->st, "tag.fleets");
    /* fleets that follow this tag move with it, in the same transaction (rows locked) */
    if (!rc)
        rc = pg_fleet_follow_tag(c, &x->v, x->tag, x->actor, &x->moved, err);
    return rc;
}

pemn_rc pg_tag_set(struct store *st, const char *model, const char *tag, const char *version,
                   const char *actor, struct store_version *out, unsigned *fleets_moved,
                   struct pemn_err *err)
{
    struct tag_ctx x = {.st = st, .model = model, .tag = tag, .version = version, .actor = actor};
    pemn_rc rc = pg_run(st, PG_WRITE, tag_set_body, &x, err);
    if (!rc && out)
        *out = x.v;
    if (!rc && fleets_moved)
        *fleets_moved = x.moved;
    return rc;
}

static pemn_rc tag_delete_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "DELETE FROM tags WHERE tag = $2 AND model_id ="
                              " (SELECT id FROM models WHERE name = $1)";
    struct tag_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->model);
    pg_p_text(&p, x->tag);
    PGresult *r = pg_exec(c, sql, &p, false, "deleting a tag", NULL, err);
    if (!r)
        return PEMN_EDB;
    bool none = strcmp(PQcmdTuples(r), "0") == 0;
    PQclear(r);
    if (none)
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no tag %s on model %s", x->tag,
                         x->model);
    char target[2 * STORE_LABEL_MAX + 2];
    snprintf(target, sizeof target, "%s:%s", x->model, x->tag);
    return pg_audit(c, x->actor, "tag.delete", target, "", err);
}

pemn_rc pg_tag_delete(struct store *st, const char *model, const char *tag, const char *actor,
                      struct pemn_err *err)
{
    struct tag_ctx x = {.st = st, .model = model, .tag = tag, .actor = actor};
    return pg_run(st, PG_WRITE, tag_delete_body, &x, err);
}
