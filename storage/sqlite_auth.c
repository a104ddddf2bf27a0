/*
 * storage/sqlite_auth.c — trusted publisher keys, API tokens, the audit log, statistics.
 */
#include "storage/sqlite_int.h"

#include "proto/err.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* ---- keys ------------------------------------------------------------------------------ */
pemn_rc sq_key_add(struct store *st, const struct store_key *kin, const char *actor,
                   struct pemn_err *err)
{
    static const char sql_dup[] = "SELECT id, name FROM keys WHERE id = ?1 OR name = ?2"
                                  " OR public_key = ?3";
    static const char sql_ins[] =
        "INSERT INTO keys(id, name, public_key, added) VALUES(?1, ?2, ?3, ?4)";
    const struct store_key k = *kin;
    const struct pemn_pubkey *pub = &k.pub;
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = sq_stmt(c, sql_dup, err);
    if (!s)
        rc = PEMN_EDB;
    if (!rc) {
        sqlite3_bind_text(s, 1, k.id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, k.name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 3, pub->bytes, PEMN_PUBKEY_BYTES, SQLITE_STATIC);
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW) {
            char id[PEMN_KEYID_TEXT_MAX], nm[STORE_LABEL_MAX];
            sq_col_text(s, 0, id, sizeof id);
            sq_col_text(s, 1, nm, sizeof nm);
            rc = proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET,
                           strcmp(id, k.id) == 0 ? "key %s is already trusted (as %s)"
                                                 : "the name is taken by key %s (%s)",
                           id, nm);
        } else if (r != SQLITE_DONE) {
            rc = sq_fail(c, err, "looking up keys");
        }
        sq_done(s);
    }
    if (!rc && !(s = sq_stmt(c, sql_ins, err)))
        rc = PEMN_EDB;
    if (!rc) {
        sqlite3_bind_text(s, 1, k.id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, k.name, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 3, pub->bytes, PEMN_PUBKEY_BYTES, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, k.added);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = sq_fail(c, err, "adding a key");
        sq_done(s);
    }
    if (!rc)
        rc = sq_audit(c, actor, "key.add", k.name, k.id, err);
    if (!rc)
        rc = sq_commit(c, err);
    sq_release(st, c);
    return rc;
}

pemn_rc sq_key_remove(struct store *st, const char *name_or_id, const char *actor,
                      struct pemn_err *err)
{
    static const char sql[] = "DELETE FROM keys WHERE name = ?1 OR id = ?1";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        rc = PEMN_EDB;
    if (!rc) {
        sqlite3_bind_text(s, 1, name_or_id, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = sq_fail(c, err, "removing a key");
        else if (sqlite3_changes(c->db) == 0)
            rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no key %s", name_or_id);
        sq_done(s);
    }
    if (!rc)
        rc = sq_audit(c, actor, "key.remove", name_or_id, "", err);
    if (!rc)
        rc = sq_commit(c, err);
    sq_release(st, c);
    return rc;
}

pemn_rc sq_key_list(struct store *st, store_key_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql[] = "SELECT id, name, public_key, added FROM keys ORDER BY added, id";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    int r;
    struct store_key k;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        memset(&k, 0, sizeof k);
        sq_col_text(s, 0, k.id, sizeof k.id);
        sq_col_text(s, 1, k.name, sizeof k.name);
        if (sqlite3_column_bytes(s, 2) != PEMN_PUBKEY_BYTES) {
            rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "stored key %s is damaged", k.id);
            break;
        }
        memcpy(k.pub.bytes, sqlite3_column_blob(s, 2), PEMN_PUBKEY_BYTES);
        k.added = sqlite3_column_int64(s, 3);
        if (cb(ctx, &k)) {
            rc = PEMN_ECANCELED;
            break;
        }
    }
    if (!rc && r != SQLITE_DONE)
        rc = sq_fail(c, err, "listing keys");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

/* ---- tokens ---------------------------------------------------------------------------- */
pemn_rc sq_token_insert(struct store *st, const char *nm, const uint8_t *hash,
                        const char *scope_name, const char *device, const char *fleet,
                        const char *actor, const char *detail, struct pemn_err *err)
{
    static const char sql[] = "INSERT INTO tokens(name, hash, scope, created, device, fleet)"
                              " VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (!rc && (rc = sq_begin(c, err)) == PEMN_OK) {
        sqlite3_stmt *s = sq_stmt(c, sql, err);
        if (!s) {
            rc = PEMN_EDB;
        } else {
            sqlite3_bind_text(s, 1, nm, -1, SQLITE_STATIC);
            sqlite3_bind_blob(s, 2, hash, PEMN_DIGEST_BYTES, SQLITE_STATIC);
            sqlite3_bind_text(s, 3, scope_name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 4, sq_now());
            sqlite3_bind_text(s, 5, device, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 6, fleet, -1, SQLITE_STATIC);
            int r = sqlite3_step(s);
            if (r == SQLITE_CONSTRAINT_UNIQUE)
                rc = proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET, "a token named %s exists", nm);
            else if (r != SQLITE_DONE)
                rc = sq_fail(c, err, "creating a token");
            sq_done(s);
        }
        if (!rc)
            rc = sq_audit(c, actor, "token.create", nm, detail, err);
        if (!rc)
            rc = sq_commit(c, err);
    }
    sq_release(st, c);
    return rc;
}

pemn_rc sq_token_revoke(struct store *st, const char *name, const char *actor, struct pemn_err *err)
{
    static const char sql[] = "UPDATE tokens SET revoked = ?2 WHERE name = ?1 AND revoked = 0";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        rc = PEMN_EDB;
    if (!rc) {
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, sq_now());
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = sq_fail(c, err, "revoking a token");
        else if (sqlite3_changes(c->db) == 0)
            rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no active token named %s", name);
        sq_done(s);
    }
    if (!rc)
        rc = sq_audit(c, actor, "token.revoke", name, "", err);
    if (!rc)
        rc = sq_commit(c, err);
    sq_release(st, c);
    return rc;
}

pemn_rc sq_token_find(struct store *st, const uint8_t *hash, bool *found,
                      struct store_token_row *row, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT hash, scope, name, revoked, device, fleet FROM tokens WHERE hash = ?1";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_blob(s, 1, hash, PEMN_DIGEST_BYTES, SQLITE_STATIC);
    int r = sqlite3_step(s);
    *found = r == SQLITE_ROW;
    if (r == SQLITE_ROW) {
        int n = sqlite3_column_bytes(s, 0);
        row->hash_len = n > 0 && (size_t)n <= sizeof row->hash ? (size_t)n : 0;
        if (row->hash_len)
            memcpy(row->hash, sqlite3_column_blob(s, 0), row->hash_len);
        sq_col_text(s, 1, row->scope, sizeof row->scope);
        sq_col_text(s, 2, row->name, sizeof row->name);
        row->revoked = sqlite3_column_int64(s, 3);
        sq_col_text(s, 4, row->device, sizeof row->device);
        sq_col_text(s, 5, row->fleet, sizeof row->fleet);
    } else if (r != SQLITE_DONE) {
        rc = sq_fail(c, err, "checking a token");
    }
    sq_done(s);
    sq_release(st, c);
    return rc;
}

pemn_rc sq_token_list(struct store *st, store_token_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT name, scope, created, revoked, device, fleet FROM tokens ORDER BY id";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    int r;
    struct store_token t;
    char sc[16];
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        memset(&t, 0, sizeof t);
        sq_col_text(s, 0, t.name, sizeof t.name);
        sq_col_text(s, 1, sc, sizeof sc);
        t.scope = store_scope_parse(sc);
        t.created = sqlite3_column_int64(s, 2);
        t.revoked = sqlite3_column_int64(s, 3);
        sq_col_text(s, 4, t.device, sizeof t.device);
        sq_col_text(s, 5, t.fleet, sizeof t.fleet);
        if (cb(ctx, &t)) {
            rc = PEMN_ECANCELED;
            break;
        }
    }
    if (!rc && r != SQLITE_DONE)
        rc = sq_fail(c, err, "listing tokens");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

/* ---- audit and statistics -------------------------------------------------------------- */
pemn_rc sq_audit_list(struct store *st, unsigned limit, store_audit_cb cb, void *ctx,
                      struct pemn_err *err)
{
    static const char sql[] = "SELECT id, at, actor, action, target, detail FROM audit"
                              " ORDER BY id DESC LIMIT ?1";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_int64(s, 1, limit);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_audit a = {
            .id = sqlite3_column_int64(s, 0),
            .at = sqlite3_column_int64(s, 1),
            .actor = (const char *)sqlite3_column_text(s, 2),
            .action = (const char *)sqlite3_column_text(s, 3),
            .target = (const char *)sqlite3_column_text(s, 4),
            .detail = (const char *)sqlite3_column_text(s, 5),
        };
        if (!a.actor || !a.action || !a.target || !a.detail) {
            rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "damaged audit row");
            break;
        }
        if (cb(ctx, &a)) {
            rc = PEMN_ECANCELED;
            break;
        }
    }
    if (!rc && r != SQLITE_DONE)
        rc = sq_fail(c, err, "listing the audit log");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

pemn_rc sq_stats(struct store *st, struct store_stats *out, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT (SELECT count(*) FROM models), (SELECT count(*) FROM versions),"
        " (SELECT count(*) FROM blobs), (SELECT coalesce(sum(size), 0) FROM blobs),"
        " (SELECT count(*) FROM tags), (SELECT count(*) FROM keys)";
    memset(out, 0, sizeof *out);
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    if (sqlite3_step(s) == SQLITE_ROW) {
        out->models = (uint64_t)sqlite3_column_int64(s, 0);
        out->versions = (uint64_t)sqlite3_column_int64(s, 1);
        out->blobs = (uint64_t)sqlite3_column_int64(s, 2);
        out->blob_bytes = (uint64_t)sqlite3_column_int64(s, 3);
        out->tags = (uint64_t)sqlite3_column_int64(s, 4);
        out->keys = (uint64_t)sqlite3_column_int64(s, 5);
    } else {
        rc = sq_fail(c, err, "reading statistics");
    }
    sq_done(s);
    sq_release(st, c);
    return rc;
}
