/*
 * storage/pg_auth.c — trusted publisher keys, API tokens, the audit log and statistics on
 * PostgreSQL. Nothing here is cached in the process: a revoked token or a removed key is
 * refused by every replica from the next request on.
 */
#include "storage/pg_int.h"

#include "proto/err.h"

#include <stdio.h>
#include <string.h>

/* ---- keys ------------------------------------------------------------------------------ */
struct key_ctx {
    const struct store_key *k;
    const char *name_or_id, *actor;
};

static pemn_rc key_add_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql_dup[] = "SELECT id, name FROM keys WHERE id = $1 OR name = $2"
                                  " OR public_key = $3";
    static const char sql_ins[] =
        "INSERT INTO keys(id, name, public_key, added) VALUES($1, $2, $3, " PG_NOW ")";
    struct key_ctx *x = vctx;
    const struct store_key *k = x->k;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, k->id);
    pg_p_text(&p, k->name);
    pg_p_bin(&p, k->pub.bytes, PEMN_PUBKEY_BYTES);
    PGresult *r = pg_exec(c, sql_dup, &p, false, "looking up keys", NULL, err);
    if (!r)
        return PEMN_EDB;
    if (PQntuples(r) > 0) {
        char id[PEMN_KEYID_TEXT_MAX], nm[STORE_LABEL_MAX];
        pg_text(r, 0, 0, id, sizeof id);
        pg_text(r, 0, 1, nm, sizeof nm);
        PQclear(r);
        return proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET,
                         strcmp(id, k->id) == 0 ? "key %s is already trusted (as %s)"
                                                : "the name is taken by key %s (%s)",
                         id, nm);
    }
    PQclear(r);
    char state[6];
    if (!(r = pg_exec(c, sql_ins, &p, false, "adding a key", state, err)))
        return !strcmp(state, "23505")
                   ? proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET,
                               "key %s or name %s was added meanwhile", k->id, k->name)
                   : PEMN_EDB;
    PQclear(r);
    return pg_audit(c, x->actor, "key.add", k->name, k->id, err);
}

pemn_rc pg_key_add(struct store *st, const struct store_key *k, const char *actor,
                   struct pemn_err *err)
{
    struct key_ctx x = {k, NULL, actor};
    return pg_run(st, PG_WRITE, key_add_body, &x, err);
}

static pemn_rc key_remove_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "DELETE FROM keys WHERE name = $1 OR id = $1";
    struct key_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->name_or_id);
    PGresult *r = pg_exec(c, sql, &p, false, "removing a key", NULL, err);
    if (!r)
        return PEMN_EDB;
    bool none = strcmp(PQcmdTuples(r), "0") == 0;
    PQclear(r);
    if (none)
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no key %s", x->name_or_id);
    return pg_audit(c, x->actor, "key.remove", x->name_or_id, "", err);
}

pemn_rc pg_key_remove(struct store *st, const char *name_or_id, const char *actor,
                      struct pemn_err *err)
{
    struct key_ctx x = {NULL, name_or_id, actor};
    return pg_run(st, PG_WRITE, key_remove_body, &x, err);
}

/* ---- listings -------------------------------------------------------------------------- */
struct rows_ctx {
    const char *sql, *what;
    int64_t arg; /* bound as $1 when has_arg */
    bool has_arg, binary;
    PGresult *r;
};

static pemn_rc rows_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    struct rows_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    if (x->has_arg)
        pg_p_i64(&p, x->arg);
    PQclear(x->r);
    x->r = pg_exec(c, x->sql, &p, x->binary, x->what, NULL, err);
    return x->r ? PEMN_OK : PEMN_EDB;
}

static pemn_rc rows(struct store *st, struct rows_ctx *x, struct pemn_err *err)
{
    x->r = NULL;
    pemn_rc rc = pg_run(st, PG_SINGLE, rows_body, x, err);
    if (rc) {
        PQclear(x->r);
        x->r = NULL;
    }
    return rc;
}

pemn_rc pg_key_list(struct store *st, store_key_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql[] = "SELECT id, name, encode(public_key, 'hex'), added FROM keys"
                              " ORDER BY added, id";
    struct rows_ctx x = {sql, "listing keys", 0, false, false, NULL};
    pemn_rc rc = rows(st, &x, err);
    for (int i = 0; !rc && i < PQntuples(x.r); i++) {
        struct store_key k;
        memset(&k, 0, sizeof k);
        pg_text(x.r, i, 0, k.id, sizeof k.id);
        pg_text(x.r, i, 1, k.name, sizeof k.name);
        char hex[2 * PEMN_PUBKEY_BYTES + 2];
        pg_text(x.r, i, 2, hex, sizeof hex);
        if (strlen(hex) != 2 * PEMN_PUBKEY_BYTES ||
            proto_unhex(hex, 2 * PEMN_PUBKEY_BYTES, k.pub.bytes) != 0) {
            rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "stored key %s is damaged", k.id);
            break;
        }
        k.added = pg_i64(x.r, i, 3);
        if (cb(ctx, &k))
            rc = PEMN_ECANCELED;
    }
    PQclear(x.r);
    return rc;
}

/* ---- tokens ---------------------------------------------------------------------------- */
struct token_ctx {
    const char *name;
    const uint8_t *hash;
    const char *scope, *device, *fleet, *actor, *detail;
    bool found;
    struct store_token_row *row;
};

static pemn_rc token_insert_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "INSERT INTO tokens(name, hash, scope, created, device, fleet)"
                              " VALUES($1, $2, $3, " PG_NOW ", $4, $5)";
    struct token_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->name);
    pg_p_bin(&p, x->hash, PEMN_DIGEST_BYTES);
    pg_p_text(&p, x->scope);
    pg_p_text(&p, x->device);
    pg_p_text(&p, x->fleet);
    char state[6];
    PGresult *r = pg_exec(c, sql, &p, false, "creating a token", state, err);
    if (!r)
        return !strcmp(state, "23505")
                   ? proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET, "a token named %s exists", x->name)
                   : PEMN_EDB;
    PQclear(r);
    return pg_audit(c, x->actor, "token.create", x->name, x->detail, err);
}

pemn_rc pg_token_insert(struct store *st, const char *name, const uint8_t *hash,
                        const char *scope_name, const char *device, const char *fleet,
                        const char *actor, const char *detail, struct pemn_err *err)
{
    struct token_ctx x = {name, hash, scope_name, device, fleet, actor, detail, false, NULL};
    return pg_run(st, PG_WRITE, token_insert_body, &x, err);
}

static pemn_rc token_revoke_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] =
        "UPDATE tokens SET revoked = " PG_NOW " WHERE name = $1 AND revoked = 0";
    struct token_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->name);
    PGresult *r = pg_exec(c, sql, &p, false, "revoking a token", NULL, err);
    if (!r)
        return PEMN_EDB;
    bool none = strcmp(PQcmdTuples(r), "0") == 0;
    PQclear(r);
    if (none)
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no active token named %s", x->name);
    return pg_audit(c, x->actor, "token.revoke", x->name, "", err);
}

pemn_rc pg_token_revoke(struct store *st, const char *name, const char *actor, struct pemn_err *err)
{
    struct token_ctx x = {name, NULL, NULL, NULL, NULL, actor, NULL, false, NULL};
    return pg_run(st, PG_WRITE, token_revoke_body, &x, err);
}

static pemn_rc token_find_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT hash, scope, name, revoked, device, fleet FROM tokens WHERE hash = $1";
    struct token_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_bin(&p, x->hash, PEMN_DIGEST_BYTES);
    /* binary results: the hash arrives as raw bytes, the text columns as their bytes, the
     * revoked time as 8 bytes big-endian */
    PGresult *r = pg_exec(c, sql, &p, true, "checking a token", NULL, err);
    if (!r)
        return PEMN_EDB;
    x->found = PQntuples(r) == 1;
    if (x->found) {
        struct store_token_row *row = x->row;
        int n = PQgetlength(r, 0, 0);
        row->hash_len = n > 0 && (size_t)n <= sizeof row->hash ? (size_t)n : 0;
        if (row->hash_len)
            memcpy(row->hash, PQgetvalue(r, 0, 0), row->hash_len);
        pg_text(r, 0, 1, row->scope, sizeof row->scope);
        pg_text(r, 0, 2, row->name, sizeof row->name);
        const uint8_t *rv = (const uint8_t *)PQgetvalue(r, 0, 3);
        uint64_t v = 0;
        for (int i = 0; i < 8 && PQgetlength(r, 0, 3) == 8; i++)
            v = v << 8 | rv[i];
        row->revoked = (int64_t)v;
        pg_text(r, 0, 4, row->device, sizeof row->device);
        pg_text(r, 0, 5, row->fleet, sizeof row->fleet);
    }
    PQclear(r);
    return PEMN_OK;
}

pemn_rc pg_token_find(struct store *st, const uint8_t *hash, bool *found,
                      struct store_token_row *row, struct pemn_err *err)
{
    struct token_ctx x = {NULL, hash, NULL, NULL, NULL, NULL, NULL, false, row};
    pemn_rc rc = pg_run(st, PG_SINGLE, token_find_body, &x, err);
    *found = !rc && x.found;
    return rc;
}

pemn_rc pg_token_list(struct store *st, store_token_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT name, scope, created, revoked, device, fleet FROM tokens ORDER BY id";
    struct rows_ctx x = {sql, "listing tokens", 0, false, false, NULL};
    pemn_rc rc = rows(st, &x, err);
    for (int i = 0; !rc && i < PQntuples(x.r); i++) {
        struct store_token t;
        char sc[16];
        memset(&t, 0, sizeof t);
        pg_text(x.r, i, 0, t.name, sizeof t.name);
        pg_text(x.r, i, 1, sc, sizeof sc);
        t.scope = store_scope_parse(sc);
        t.created = pg_i64(x.r, i, 2);
        t.revoked = pg_i64(x.r, i, 3);
        pg_text(x.r, i, 4, t.device, sizeof t.device);
        pg_text(x.r, i, 5, t.fleet, sizeof t.fleet);
        if (cb(ctx, &t))
            rc = PEMN_ECANCELED;
    }
    PQclear(x.r);
    return rc;
}

/* ---- audit and statistics -------------------------------------------------------------- */
pemn_rc pg_audit_list(struct store *st, unsigned limit, store_audit_cb cb, void *ctx,
                      struct pemn_err *err)
{
    static const char sql[] = "SELECT id, at, actor, action, target, detail FROM audit"
                              " ORDER BY id DESC LIMIT $1";
    struct rows_ctx x = {sql, "listing the audit log", limit, true, false, NULL};
    pemn_rc rc = rows(st, &x, err);
    for (int i = 0; !rc && i < PQntuples(x.r); i++) {
        struct store_audit a = {
            .id = pg_i64(x.r, i, 0),
            .at = pg_i64(x.r, i, 1),
            .actor = PQgetvalue(x.r, i, 2),
            .action = PQgetvalue(x.r, i, 3),
            .target = PQgetvalue(x.r, i, 4),
            .detail = PQgetvalue(x.r, i, 5),
        };
        if (cb(ctx, &a))
            rc = PEMN_ECANCELED;
    }
    PQclear(x.r);
    return rc;
}

pemn_rc pg_stats(struct store *st, struct store_stats *out, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT (SELECT count(*) FROM models), (SELECT count(*) FROM versions),"
        " (SELECT count(*) FROM blobs), (SELECT coalesce(sum(size), 0) FROM blobs),"
        " (SELECT count(*) FROM tags), (SELECT count(*) FROM keys)";
    struct rows_ctx x = {sql, "reading statistics", 0, false, false, NULL};
    pemn_rc rc = rows(st, &x, err);
    if (!rc && PQntuples(x.r) == 1) {
        out->models = (uint64_t)pg_i64(x.r, 0, 0);
        out->versions = (uint64_t)pg_i64(x.r, 0, 1);
        out->blobs = (uint64_t)pg_i64(x.r, 0, 2);
        out->blob_bytes = (uint64_t)pg_i64(x.r, 0, 3);
        out->tags = (uint64_t)pg_i64(x.r, 0, 4);
        out->keys = (uint64_t)pg_i64(x.r, 0, 5);
    }
    PQclear(x.r);
    return rc;
}
