/*
 * storage/sqlite_trust.c — SQLite backend of storage/store_trust.h (sq_trust_ops): the root
 * chain and the signers of each package. Arguments arrive validated (storage/store_trust.c).
 */
#include "storage/sqlite_int.h"
#include "storage/store_trust.h"

#include "proto/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Issue 10: roots (the exact file bytes, data last so metadata reads skip the blob) and
 * package signers by digest. */
const char sq_schema_trust[] = "CREATE TABLE roots("
                               "  version INTEGER PRIMARY KEY,"
                               "  digest TEXT NOT NULL,"
                               "  expires INTEGER NOT NULL,"
                               "  added INTEGER NOT NULL,"
                               "  size INTEGER NOT NULL,"
                               "  data BLOB NOT NULL);"
                               "CREATE TABLE package_signers("
                               "  digest TEXT NOT NULL,"
                               "  public_key BLOB NOT NULL,"
                               "  PRIMARY KEY(digest, public_key)) WITHOUT ROWID;";

static pemn_rc sq_root_put(struct store *st, uint64_t version, int64_t expires, const char *digest,
                           const void *bytes, size_t len, const char *actor, bool *created,
                           struct pemn_err *err)
{
    static const char sql_latest[] = "SELECT max(version) FROM roots";
    static const char sql_same[] = "SELECT digest FROM roots WHERE version = ?1";
    static const char sql_ins[] = "INSERT INTO roots(version, digest, expires, added, size, data)"
                                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
    char ver[24];
    snprintf(ver, sizeof ver, "%llu", (unsigned long long)version);

    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    bool exists = false;
    sqlite3_stmt *s = sq_stmt(c, sql_same, err);
    if (!s)
        rc = PEMN_EDB;
    if (!rc) {
        sqlite3_bind_int64(s, 1, (sqlite3_int64)version);
        int r = sqlite3_step(s);
        if (r == SQLITE_ROW) {
            char have[PEMN_DIGEST_TEXT_MAX];
            sq_col_text(s, 0, have, sizeof have);
            exists = true;
            if (strcmp(have, digest) != 0)
                rc =
                    proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                              "root version %s is already stored with other bytes (%s)", ver, have);
        } else if (r != SQLITE_DONE) {
            rc = sq_fail(c, err, "looking up roots");
        }
        sq_done(s);
    }
    if (!rc && !exists) {
        if (!(s = sq_stmt(c, sql_latest, err))) {
            rc = PEMN_EDB;
        } else {
            int r = sqlite3_step(s);
            if (r == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
                uint64_t latest = (uint64_t)sqlite3_column_int64(s, 0);
                if (version != latest + 1)
                    rc = proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                                   "root version %s does not follow the latest stored, %llu", ver,
                                   (unsigned long long)latest);
            } else if (r != SQLITE_ROW) {
                rc = sq_fail(c, err, "reading the latest root");
            }
            sq_done(s);
        }
    }
    if (!rc && !exists) {
        if (!(s = sq_stmt(c, sql_ins, err))) {
            rc = PEMN_EDB;
        } else {
            sqlite3_bind_int64(s, 1, (sqlite3_int64)version);
            sqlite3_bind_text(s, 2, digest, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 3, expires);
            sqlite3_bind_int64(s, 4, sq_now());
            sqlite3_bind_int64(s, 5, (sqlite3_int64)len);
            sqlite3_bind_blob64(s, 6, bytes, len, SQLITE_STATIC);
            if (sqlite3_step(s) != SQLITE_DONE)
                rc = sq_fail(c, err, "storing a root");
            sq_done(s);
        }
        if (!rc)
            rc = sq_audit(c, actor, "root.add", ver, digest, err);
        if (!rc && created)
            *created = true;
    }
    if (!rc)
        rc = sq_commit(c, err);
    sq_release(st, c);
    return rc;
}

static void row_meta(sqlite3_stmt *s, struct store_root *m)
{
    memset(m, 0, sizeof *m);
    m->version = (uint64_t)sqlite3_column_int64(s, 0);
    sq_col_text(s, 1, m->digest, sizeof m->digest);
    m->expires = sqlite3_column_int64(s, 2);
    m->added = sqlite3_column_int64(s, 3);
    m->size = (uint64_t)sqlite3_column_int64(s, 4);
}

static pemn_rc sq_root_get(struct store *st, uint64_t version, struct store_root *meta,
                           uint8_t **bytes, size_t *len, struct pemn_err *err)
{
    static const char sql_v[] =
        "SELECT version, digest, expires, added, size, data FROM roots WHERE version = ?1";
    static const char sql_latest[] = "SELECT version, digest, expires, added, size, data FROM"
                                     " roots ORDER BY version DESC LIMIT 1";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, version ? sql_v : sql_latest, &c, &s, err);
    if (rc)
        return rc;
    if (version)
        sqlite3_bind_int64(s, 1, (sqlite3_int64)version);
    int r = sqlite3_step(s);
    if (r == SQLITE_ROW) {
        struct store_root m;
        row_meta(s, &m);
        if (meta)
            *meta = m;
        if (bytes) {
            size_t n = (size_t)sqlite3_column_bytes(s, 5);
            uint8_t *b = malloc(n ? n : 1);
            if (!b) {
                rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
            } else {
                if (n)
                    memcpy(b, sqlite3_column_blob(s, 5), n);
                *bytes = b;
                if (len)
                    *len = n;
            }
        }
    } else if (r == SQLITE_DONE) {
        rc = version ? proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no root version %llu",
                                 (unsigned long long)version)
                     : proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no root is stored");
    } else {
        rc = sq_fail(c, err, "reading a root");
    }
    sq_done(s);
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_root_list(struct store *st, store_root_cb cb, void *ctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT version, digest, expires, added, size FROM roots ORDER BY version";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_root m;
        row_meta(s, &m);
        if (cb(ctx, &m)) {
            rc = PEMN_ECANCELED;
            break;
        }
    }
    if (!rc && r != SQLITE_DONE)
        rc = sq_fail(c, err, "listing roots");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_signers_put(struct store *st, const char *digest, const struct pemn_pubkey *keys,
                              size_t n, struct pemn_err *err)
{
    static const char sql[] =
        "INSERT OR IGNORE INTO package_signers(digest, public_key) VALUES(?1, ?2)";
    struct sq_conn *c;
    pemn_rc rc = sq_acquire_write(st, &c, err);
    if (rc)
        return rc;
    for (size_t i = 0; !rc && i < n; i++) {
        sqlite3_stmt *s = sq_stmt(c, sql, err);
        if (!s) {
            rc = PEMN_EDB;
            break;
        }
        sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
        sqlite3_bind_blob(s, 2, keys[i].bytes, PEMN_PUBKEY_BYTES, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            rc = sq_fail(c, err, "recording package signers");
        sq_done(s);
    }
    if (!rc)
        rc = sq_commit(c, err);
    sq_release(st, c);
    return rc;
}

static pemn_rc sq_signers_get(struct store *st, const char *digest, struct pemn_pubkey *keys,
                              size_t cap, size_t *n, struct pemn_err *err)
{
    static const char sql[] = "SELECT public_key FROM package_signers WHERE digest = ?1"
                              " ORDER BY public_key";
    struct sq_conn *c;
    sqlite3_stmt *s;
    pemn_rc rc = sq_acquire_stmt(st, sql, &c, &s, err);
    if (rc)
        return rc;
    sqlite3_bind_text(s, 1, digest, -1, SQLITE_STATIC);
    int r;
    while ((r = sqlite3_step(s)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(s, 0) != PEMN_PUBKEY_BYTES) {
            rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "a stored signer key is damaged");
            break;
        }
        if (*n < cap)
            memcpy(keys[*n].bytes, sqlite3_column_blob(s, 0), PEMN_PUBKEY_BYTES);
        (*n)++;
    }
    if (*n > cap)
        *n = cap;
    if (!rc && r != SQLITE_DONE && r != SQLITE_ROW)
        rc = sq_fail(c, err, "reading package signers");
    sq_done(s);
    sq_release(st, c);
    return rc;
}

const struct store_trust_ops sq_trust_ops = {
    .root_put = sq_root_put,
    .root_get = sq_root_get,
    .root_list = sq_root_list,
    .signers_put = sq_signers_put,
    .signers_get = sq_signers_get,
};
