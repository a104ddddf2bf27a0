/*
 * storage/pg_trust.c — PostgreSQL backend of storage/store_trust.h (pg_trust_ops): the root
 * chain and the signers of each package. Arguments arrive validated (storage/store_trust.c).
 * A new root's "latest + 1" rule is checked inside the write transaction; two replicas
 * adding the same version at once meet the primary key, and the loser gets ECONFLICT.
 */
#include "storage/pg_int.h"
#include "storage/store_trust.h"

#include "proto/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Migration 4 of this backend (= SQLite 4). */
const char pg_schema_trust[] = "CREATE TABLE roots("
                               "  version bigint PRIMARY KEY,"
                               "  digest text NOT NULL,"
                               "  expires bigint NOT NULL,"
                               "  added bigint NOT NULL,"
                               "  size bigint NOT NULL,"
                               "  data bytea NOT NULL);"
                               "CREATE TABLE package_signers("
                               "  digest text NOT NULL,"
                               "  public_key bytea NOT NULL,"
                               "  PRIMARY KEY(digest, public_key));";

/* ---- roots --------------------------------------------------------------------------------- */
struct put_ctx {
    uint64_t version;
    int64_t expires;
    const char *digest, *actor;
    const void *bytes;
    size_t len;
    bool created;
};

static pemn_rc put_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql_same[] = "SELECT digest FROM roots WHERE version = $1";
    static const char sql_latest[] = "SELECT coalesce(max(version), 0) FROM roots";
    static const char sql_ins[] = "INSERT INTO roots(version, digest, expires, added, size, data)"
                                  " VALUES($1, $2, $3, " PG_NOW ", $4, $5)";
    struct put_ctx *x = vctx;
    x->created = false;
    char ver[24];
    snprintf(ver, sizeof ver, "%llu", (unsigned long long)x->version);
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, (int64_t)x->version);
    PGresult *r = pg_exec(c, sql_same, &p, false, "looking up roots", NULL, err);
    if (!r)
        return PEMN_EDB;
    if (PQntuples(r) > 0) {
        char have[PEMN_DIGEST_TEXT_MAX];
        pg_text(r, 0, 0, have, sizeof have);
        PQclear(r);
        if (strcmp(have, x->digest) != 0)
            return proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                             "root version %s is already stored with other bytes (%s)", ver, have);
        return PEMN_OK; /* identical: nothing to do */
    }
    PQclear(r);
    if (!(r = pg_exec(c, sql_latest, NULL, false, "reading the latest root", NULL, err)))
        return PEMN_EDB;
    uint64_t latest = (uint64_t)pg_i64(r, 0, 0);
    PQclear(r);
    if (latest && x->version != latest + 1)
        return proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                         "root version %s does not follow the latest stored, %llu", ver,
                         (unsigned long long)latest);
    pg_p_init(&p);
    pg_p_i64(&p, (int64_t)x->version);
    pg_p_text(&p, x->digest);
    pg_p_i64(&p, x->expires);
    pg_p_i64(&p, (int64_t)x->len);
    pg_p_bin(&p, x->bytes, x->len);
    char state[6];
    if (!(r = pg_exec(c, sql_ins, &p, false, "storing a root", state, err)))
        return !strcmp(state, "23505") ? proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                                                   "root version %s was added meanwhile", ver)
                                       : PEMN_EDB;
    PQclear(r);
    pemn_rc rc = pg_audit(c, x->actor, "root.add", ver, x->digest, err);
    if (!rc)
        x->created = true;
    return rc;
}

static pemn_rc pg_root_put(struct store *st, uint64_t version, int64_t expires, const char *digest,
                           const void *bytes, size_t len, const char *actor, bool *created,
                           struct pemn_err *err)
{
    struct put_ctx x = {version, expires, digest, actor, bytes, len, false};
    pemn_rc rc = pg_run(st, PG_WRITE, put_body, &x, err);
    if (created)
        *created = !rc && x.created;
    return rc;
}

struct rows_ctx {
    const char *sql, *what, *text_arg;
    int64_t arg;
    bool has_arg;
    PGresult *r;
};

static pemn_rc rows_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    struct rows_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    if (x->text_arg)
        pg_p_text(&p, x->text_arg);
    else if (x->has_arg)
        pg_p_i64(&p, x->arg);
    PQclear(x->r);
    x->r = pg_exec(c, x->sql, &p, false, x->what, NULL, err);
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

static void row_meta(const PGresult *r, int i, struct store_root *m)
{
    memset(m, 0, sizeof *m);
    m->version = (uint64_t)pg_i64(r, i, 0);
    pg_text(r, i, 1, m->digest, sizeof m->digest);
    m->expires = pg_i64(r, i, 2);
    m->added = pg_i64(r, i, 3);
    m->size = (uint64_t)pg_i64(r, i, 4);
}

static pemn_rc pg_root_get(struct store *st, uint64_t version, struct store_root *meta,
                           uint8_t **bytes, size_t *len, struct pemn_err *err)
{
    static const char sql_v[] = "SELECT version, digest, expires, added, size,"
                                " encode(data, 'hex') FROM roots WHERE version = $1";
    static const char sql_latest[] = "SELECT version, digest, expires, added, size,"
                                     " encode(data, 'hex') FROM roots"
                                     " ORDER BY version DESC LIMIT 1";
    struct rows_ctx x = {
        version ? sql_v : sql_latest, "reading a root", NULL, (int64_t)version, version != 0, NULL};
    pemn_rc rc = rows(st, &x, err);
    if (rc)
        return rc;
    if (PQntuples(x.r) == 0) {
        PQclear(x.r);
        return version ? proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no root version %llu",
                                   (unsigned long long)version)
                       : proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no root is stored");
    }
    struct store_root m;
    row_meta(x.r, 0, &m);
    if (meta)
        *meta = m;
    if (bytes) {
        const char *hex = PQgetvalue(x.r, 0, 5);
        size_t hl = (size_t)PQgetlength(x.r, 0, 5);
        uint8_t *b = malloc(hl / 2 ? hl / 2 : 1);
        if (!b)
            rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        else if (hl % 2 || hl / 2 != m.size || proto_unhex(hex, hl, b) != 0)
            rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "stored root %llu is damaged",
                           (unsigned long long)m.version);
        if (rc) {
            free(b);
        } else {
            *bytes = b;
            if (len)
                *len = hl / 2;
        }
    }
    PQclear(x.r);
    return rc;
}

static pemn_rc pg_root_list(struct store *st, store_root_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT version, digest, expires, added, size FROM roots ORDER BY version";
    struct rows_ctx x = {sql, "listing roots", NULL, 0, false, NULL};
    pemn_rc rc = rows(st, &x, err);
    for (int i = 0; !rc && i < PQntuples(x.r); i++) {
        struct store_root m;
        row_meta(x.r, i, &m);
        if (cb(ctx, &m))
            rc = PEMN_ECANCELED;
    }
    PQclear(x.r);
    return rc;
}

/* ---- package signers ----------------------------------------------------------------------- */
struct signers_ctx {
    const char *digest;
    const struct pemn_pubkey *keys;
    size_t n;
};

static pemn_rc signers_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] = "INSERT INTO package_signers(digest, public_key) VALUES($1, $2)"
                              " ON CONFLICT DO NOTHING";
    struct signers_ctx *x = vctx;
    for (size_t i = 0; i < x->n; i++) {
        struct pg_params p;
        pg_p_init(&p);
        pg_p_text(&p, x->digest);
        pg_p_bin(&p, x->keys[i].bytes, PEMN_PUBKEY_BYTES);
        pemn_rc rc = pg_cmd(c, sql, &p, "recording package signers", err);
        if (rc)
            return rc;
    }
    return PEMN_OK;
}

static pemn_rc pg_signers_put(struct store *st, const char *digest, const struct pemn_pubkey *keys,
                              size_t n, struct pemn_err *err)
{
    struct signers_ctx x = {digest, keys, n};
    return pg_run(st, PG_WRITE, signers_body, &x, err);
}

static pemn_rc pg_signers_get(struct store *st, const char *digest, struct pemn_pubkey *keys,
                              size_t cap, size_t *n, struct pemn_err *err)
{
    static const char sql[] = "SELECT encode(public_key, 'hex') FROM package_signers"
                              " WHERE digest = $1 ORDER BY public_key";
    struct rows_ctx x = {sql, "reading package signers", digest, 0, false, NULL};
    pemn_rc rc = rows(st, &x, err);
    for (int i = 0; !rc && i < PQntuples(x.r) && *n < cap; i++) {
        char hex[2 * PEMN_PUBKEY_BYTES + 2];
        pg_text(x.r, i, 0, hex, sizeof hex);
        if (strlen(hex) != 2 * PEMN_PUBKEY_BYTES ||
            proto_unhex(hex, 2 * PEMN_PUBKEY_BYTES, keys[*n].bytes) != 0)
            rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "a stored signer key is damaged");
        else
            (*n)++;
    }
    PQclear(x.r);
    return rc;
}

const struct store_trust_ops pg_trust_ops = {
    .root_put = pg_root_put,
    .root_get = pg_root_get,
    .root_list = pg_root_list,
    .signers_put = pg_signers_put,
    .signers_get = pg_signers_get,
};
