/*
 * storage/sqlite_auth.c — trusted publisher keys, API tokens, the audit log, statistics.
 */
#include "storage/sqlite_int.h"

#include "proto/err.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* ---- scopes ---------------------------------------------------------------------------- */
static const struct {
    const char *name;
    unsigned bit, rights;
} scopes[] = {
    {"read", STORE_SCOPE_READ, STORE_SCOPE_READ},
    {"publish", STORE_SCOPE_PUBLISH, STORE_SCOPE_PUBLISH | STORE_SCOPE_READ},
    {"admin", STORE_SCOPE_ADMIN,
     STORE_SCOPE_ADMIN | STORE_SCOPE_PUBLISH | STORE_SCOPE_READ | STORE_SCOPE_DEVICE},
    {"device", STORE_SCOPE_DEVICE, STORE_SCOPE_DEVICE | STORE_SCOPE_READ},
};

unsigned store_scope_parse(const char *s)
{
    for (size_t i = 0; s && i < sizeof scopes / sizeof scopes[0]; i++)
        if (strcmp(s, scopes[i].name) == 0)
            return scopes[i].bit;
    return 0;
}

const char *store_scope_name(unsigned scope)
{
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (scope == scopes[i].bit)
            return scopes[i].name;
    return NULL;
}

unsigned store_scope_rights(unsigned scope)
{
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++)
        if (scope == scopes[i].bit)
            return scopes[i].rights;
    return 0;
}

/* ---- keys ------------------------------------------------------------------------------ */
static void key_id_of(const struct pemn_pubkey *pub, char out[PEMN_KEYID_TEXT_MAX])
{
    /* pemn/key.h: the first 8 bytes of SHA-256(public key), lowercase hex. */
    uint8_t h[PEMN_DIGEST_BYTES];
    pemn_sha256(pub->bytes, sizeof pub->bytes, h);
    proto_hex(h, PEMN_KEYID_BYTES, out);
}

/* 16 hex digits: the shape of a key id. */
static bool looks_like_key_id(const char *s)
{
    size_t n = strlen(s);
    if (n != 2 * PEMN_KEYID_BYTES)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

pemn_rc store_key_add(struct store *st, const struct pemn_pubkey *pub, const char *name,
                      const char *actor, struct store_key *out, struct pemn_err *err)
{
    /* a name may never equal another key's id (nor an id another key's name): `key remove X`
     * must name exactly one key */
    static const char sql_dup[] = "SELECT id, name FROM keys WHERE id = ?1 OR name = ?2"
                                  " OR public_key = ?3 OR name = ?1 OR id = ?2";
    static const char sql_ins[] =
        "INSERT INTO keys(id, name, public_key, added) VALUES(?1, ?2, ?3, ?4)";
    struct store_key k;
    memset(&k, 0, sizeof k);
    key_id_of(pub, k.id);
    snprintf(k.name, sizeof k.name, "%s", name && *name ? name : k.id);
    k.pub = *pub;
    k.added = sq_now();
    if (looks_like_key_id(k.name) && strcmp(k.name, k.id) != 0)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "key name %s looks like a key id; choose another name", k.name);

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
    if (!rc && out)
        *out = k;
    return rc;
}

pemn_rc store_key_remove(struct store *st, const char *name_or_id, const char *actor,
                         struct pemn_err *err)
{
    /* exactly one key: a name first matched exactly, else an id; two different keys matching
     * (a name equal to another key's id, written by an older pemnd) is refused */
    static const char sql_find[] = "SELECT id FROM keys WHERE name = ?1 OR id = ?1 LIMIT 2";
    static const char sql_del[] = "DELETE FROM keys WHERE id = ?1";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    char id[PEMN_KEYID_TEXT_MAX] = "";
    int found = 0;
    sqlite3_stmt *s = sq_stmt(c, sql_find, err);
    if (!s)
        rc = PEMN_EDB;
    if (!rc) {
        sqlite3_bind_text(s, 1, name_or_id, -1, SQLITE_STATIC);
        int r;
        while ((r = sqlite3_step(s)) == SQLITE_ROW)
            if (found++ == 0)
                sq_col_text(s, 0, id, sizeof id);
        if (r != SQLITE_DONE)
            rc = sq_fail(c, err, "looking up a key");
        else if (found == 0)
            rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no key %s", name_or_id);
        else if (found > 1)
            rc = proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                           "%s is ambiguous: it is one key's name and another key's id; remove "
                           "by the other key's name or rename first",
                           name_or_id);
        sq_done(s);
    }
    if (!rc && !(s = sq_stmt(c, sql_del, err)))
        rc = PEMN_EDB;
    else if (!rc) {
        sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = sq_fail(c, err, "removing a key");
        sq_done(s);
    }
    if (!rc)
        rc = sq_audit(c, actor, "key.remove", name_or_id, id, err);
    if (!rc)
        rc = sq_commit(c, err);
    sq_release(st, c);
    return rc;
}

pemn_rc store_key_list(struct store *st, store_key_cb cb, void *ctx, struct pemn_err *err)
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
#define TOKEN_PREFIX "pemn_"
#define TOKEN_RANDOM 32

pemn_rc store_token_create(struct store *st, unsigned scope, const char *name, const char *actor,
                           char token_out[STORE_TOKEN_TEXT_MAX], char name_out[STORE_LABEL_MAX],
                           struct pemn_err *err)
{
    return store_token_create_bound(st, scope, name, NULL, NULL, actor, token_out, name_out, err);
}

pemn_rc store_token_create_bound(struct store *st, unsigned scope, const char *name,
                                 const char *device, const char *fleet, const char *actor,
                                 char token_out[STORE_TOKEN_TEXT_MAX],
                                 char name_out[STORE_LABEL_MAX], struct pemn_err *err)
{
    static const char sql[] = "INSERT INTO tokens(name, hash, scope, created, device, fleet)"
                              " VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
    const char *scope_name = store_scope_name(scope);
    if (!scope_name)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "unknown scope");
    if (!device)
        device = "";
    if (!fleet)
        fleet = "";
    if ((device[0] || fleet[0]) && scope != STORE_SCOPE_DEVICE)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "only device tokens can be bound to a device or a fleet");
    if (strlen(device) >= STORE_LABEL_MAX || strlen(fleet) >= STORE_LABEL_MAX)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "device or fleet name too long");
    uint8_t rnd[TOKEN_RANDOM], hash[PEMN_DIGEST_BYTES];
    char text[STORE_TOKEN_TEXT_MAX], nm[STORE_LABEL_MAX];
    randombytes_buf(rnd, sizeof rnd);
    memcpy(text, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1);
    sodium_bin2base64(text + sizeof TOKEN_PREFIX - 1, sizeof text - (sizeof TOKEN_PREFIX - 1), rnd,
                      sizeof rnd, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(rnd, sizeof rnd);
    crypto_hash_sha256(hash, (const unsigned char *)text, strlen(text));
    if (name && *name) {
        snprintf(nm, sizeof nm, "%s", name);
    } else {
        uint8_t r4[4];
        char hx[9];
        randombytes_buf(r4, sizeof r4);
        proto_hex(r4, sizeof r4, hx);
        snprintf(nm, sizeof nm, "%s-%s", scope_name, hx);
    }

    struct sq_conn *c;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (!rc && (rc = sq_begin(c, err)) == PEMN_OK) {
        sqlite3_stmt *s = sq_stmt(c, sql, err);
        if (!s) {
            rc = PEMN_EDB;
        } else {
            sqlite3_bind_text(s, 1, nm, -1, SQLITE_STATIC);
            sqlite3_bind_blob(s, 2, hash, sizeof hash, SQLITE_STATIC);
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
        if (!rc) {
            char detail[2 * STORE_LABEL_MAX + 32];
            snprintf(detail, sizeof detail, "%s%s%s%s%s", scope_name, device[0] ? " device " : "",
                     device, fleet[0] ? " fleet " : "", fleet);
            rc = sq_audit(c, actor, "token.create", nm, detail, err);
        }
        if (!rc)
            rc = sq_commit(c, err);
    }
    sq_release(st, c);
    if (!rc) {
        memcpy(token_out, text, sizeof text);
        if (name_out)
            memcpy(name_out, nm, sizeof nm);
    }
    sodium_memzero(text, sizeof text);
    return rc;
}

pemn_rc store_token_revoke(struct store *st, const char *name, const char *actor,
                           struct pemn_err *err)
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

pemn_rc store_token_check(struct store *st, const char *token, unsigned *scope,
                          char name_out[STORE_LABEL_MAX], struct pemn_err *err)
{
    return store_token_check_bound(st, token, scope, name_out, NULL, NULL, err);
}

pemn_rc store_token_check_bound(struct store *st, const char *token, unsigned *scope,
                                char name_out[STORE_LABEL_MAX], char device_out[STORE_LABEL_MAX],
                                char fleet_out[STORE_LABEL_MAX], struct pemn_err *err)
{
    static const char sql[] =
        "SELECT hash, scope, name, revoked, device, fleet FROM tokens WHERE hash = ?1";
    size_t len = token ? strnlen(token, STORE_TOKEN_TEXT_MAX) : 0;
    if (len < sizeof TOKEN_PREFIX || len >= STORE_TOKEN_TEXT_MAX ||
        memcmp(token, TOKEN_PREFIX, sizeof TOKEN_PREFIX - 1) != 0)
        return proto_err(err, PEMN_EAUTH, PEMN_NO_OFFSET, "malformed token");
    uint8_t hash[PEMN_DIGEST_BYTES];
    crypto_hash_sha256(hash, (const unsigned char *)token, len);

    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_blob(s, 1, hash, sizeof hash, SQLITE_STATIC);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        const void *stored = sqlite3_column_blob(s, 0);
        char sc[16];
        sq_col_text(s, 1, sc, sizeof sc);
        if (sqlite3_column_bytes(s, 0) != (int)sizeof hash ||
            sodium_memcmp(stored, hash, sizeof hash) != 0 || !store_scope_parse(sc)) {
            rc = proto_err(err, PEMN_EAUTH, PEMN_NO_OFFSET, "unknown token");
        } else if (sqlite3_column_int64(s, 3) != 0) {
            rc = proto_err(err, PEMN_EAUTH, PEMN_NO_OFFSET, "token revoked");
        } else {
            *scope = store_scope_parse(sc);
            if (name_out)
                sq_col_text(s, 2, name_out, STORE_LABEL_MAX);
            if (device_out)
                sq_col_text(s, 4, device_out, STORE_LABEL_MAX);
            if (fleet_out)
                sq_col_text(s, 5, fleet_out, STORE_LABEL_MAX);
        }
    } else if (r == SQLITE_DONE) {
        rc = proto_err(err, PEMN_EAUTH, PEMN_NO_OFFSET, "unknown token");
    } else {
        rc = sq_fail(c, err, "checking a token");
    }
    sq_done(s);
    sq_release(st, c);
    return rc;
}

pemn_rc store_token_list(struct store *st, store_token_cb cb, void *ctx, struct pemn_err *err)
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
pemn_rc store_audit_list(struct store *st, unsigned limit, store_audit_cb cb, void *ctx,
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

pemn_rc store_stats(struct store *st, struct store_stats *out, struct pemn_err *err)
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
    blob_cache_stats(st->cache, out);
    return rc;
}
