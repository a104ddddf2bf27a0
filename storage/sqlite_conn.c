/*
 * storage/sqlite_conn.c — opening the database, the connection pool, statement cache,
 * transactions and the audit helper.
 */
#include "storage/store_metadata.h"
#include "storage/sqlite_int.h"
#include "storage/store_oci.h"
#include "storage/store_console.h"
#include "storage/store_delta.h"
#include "storage/store_devguard.h"
#include "storage/store_verify.h"
#include "storage/store_trust.h"

#include "proto/err.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t sq_now(void)
{
    return (int64_t)time(NULL);
}

void sq_col_text(sqlite3_stmt *s, int col, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    int n = sqlite3_column_bytes(s, col);
    if (!t || n < 0)
        n = 0;
    if ((size_t)n >= cap)
        n = (int)cap - 1;
    if (n)
        memcpy(dst, t, (size_t)n);
    dst[n] = '\0';
}

pemn_rc sq_fail(struct sq_conn *c, struct pemn_err *err, const char *what)
{
    return proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "%s: %s", what,
                     c && c->db ? sqlite3_errmsg(c->db) : "no connection");
}

/* ---- statements ------------------------------------------------------------------------ */
sqlite3_stmt *sq_stmt(struct sq_conn *c, const char *sql, struct pemn_err *err)
{
    for (int i = 0; i < c->n_cache; i++)
        if (c->cache[i].sql == sql)
            return c->cache[i].stmt;
    sqlite3_stmt *s = NULL;
    unsigned flags = c->n_cache < SQ_STMT_MAX ? SQLITE_PREPARE_PERSISTENT : 0;
    if (sqlite3_prepare_v3(c->db, sql, -1, flags, &s, NULL) != SQLITE_OK) {
        sq_fail(c, err, "prepare");
        sqlite3_finalize(s);
        return NULL;
    }
    if (c->n_cache >= SQ_STMT_MAX) {
        /* Cache full (a programming error: more distinct statements than SQ_STMT_MAX).
         * Evict the oldest rather than leak. */
        sqlite3_finalize(c->cache[0].stmt);
        memmove(&c->cache[0], &c->cache[1], sizeof c->cache[0] * (SQ_STMT_MAX - 1));
        c->n_cache--;
    }
    c->cache[c->n_cache].sql = sql;
    c->cache[c->n_cache].stmt = s;
    c->n_cache++;
    return s;
}

void sq_done(sqlite3_stmt *s)
{
    if (!s)
        return;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* ---- transactions ---------------------------------------------------------------------- */
static pemn_rc exec_simple(struct sq_conn *c, const char *sql, struct pemn_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        pemn_rc rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "%s: %s", sql,
                               msg ? msg : sqlite3_errmsg(c->db));
        sqlite3_free(msg);
        return rc;
    }
    return PEMN_OK;
}

pemn_rc sq_begin(struct sq_conn *c, struct pemn_err *err)
{
    return exec_simple(c, "BEGIN IMMEDIATE", err);
}

pemn_rc sq_commit(struct sq_conn *c, struct pemn_err *err)
{
    pemn_rc rc = exec_simple(c, "COMMIT", err);
    if (rc)
        sq_rollback(c);
    return rc;
}

void sq_rollback(struct sq_conn *c)
{
    if (!sqlite3_get_autocommit(c->db))
        (void)exec_simple(c, "ROLLBACK", NULL);
}

pemn_rc sq_audit(struct sq_conn *c, const char *actor, const char *action, const char *target,
                 const char *detail, struct pemn_err *err)
{
    static const char sql[] =
        "INSERT INTO audit(at, actor, action, target, detail) VALUES(?1, ?2, ?3, ?4, ?5)";
    sqlite3_stmt *s = sq_stmt(c, sql, err);
    if (!s)
        return PEMN_EDB;
    sqlite3_bind_int64(s, 1, sq_now());
    sqlite3_bind_text(s, 2, actor ? actor : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, action, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, target ? target : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, detail ? detail : "", -1, SQLITE_STATIC);
    int r = sqlite3_step(s);
    sq_done(s);
    return r == SQLITE_DONE ? PEMN_OK : sq_fail(c, err, "audit");
}

/* ---- connections ----------------------------------------------------------------------- */
static void conn_close(struct sq_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_cache; i++)
        sqlite3_finalize(c->cache[i].stmt);
    sqlite3_close(c->db); /* every statement is finalized: close cannot fail with BUSY */
    free(c);
}

static pemn_rc conn_open(struct store *st, struct sq_conn **out, struct pemn_err *err)
{
    struct sq_conn *c = calloc(1, sizeof *c);
    if (!c)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    struct sq_store *q = st->be;
    if (sqlite3_open_v2(q->path, &c->db, flags, NULL) != SQLITE_OK) {
        pemn_rc rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "cannot open database %s: %s",
                               q->path, c->db ? sqlite3_errmsg(c->db) : "out of memory");
        conn_close(c);
        return rc;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, q->busy_timeout_ms);
    /* The page size only takes effect on a new, empty database and must precede WAL. */
    pemn_rc rc = exec_simple(c, "PRAGMA page_size=16384", err);
    if (!rc)
        rc = exec_simple(c, "PRAGMA journal_mode=WAL", err);
    if (!rc)
        rc = exec_simple(c, "PRAGMA synchronous=NORMAL", err);
    if (!rc)
        rc = exec_simple(c, "PRAGMA foreign_keys=ON", err);
    if (rc) {
        conn_close(c);
        return rc;
    }
    *out = c;
    return PEMN_OK;
}

pemn_rc sq_acquire(struct store *st, struct sq_conn **out, struct pemn_err *err)
{
    struct sq_store *q = st->be;
    pthread_mutex_lock(&q->mu);
    struct sq_conn *c = q->idle;
    if (c) {
        q->idle = c->next;
        q->n_idle--;
    }
    pthread_mutex_unlock(&q->mu);
    if (c) {
        c->next = NULL;
        *out = c;
        return PEMN_OK;
    }
    return conn_open(st, out, err);
}

pemn_rc sq_acquire_write(struct store *st, struct sq_conn **out, struct pemn_err *err)
{
    pemn_rc rc = sq_acquire(st, out, err);
    if (rc)
        return rc;
    if ((rc = sq_begin(*out, err))) {
        sq_release(st, *out);
        *out = NULL;
    }
    return rc;
}

pemn_rc sq_acquire_stmt(struct store *st, const char *sql, struct sq_conn **c, sqlite3_stmt **s,
                        struct pemn_err *err)
{
    pemn_rc rc = sq_acquire(st, c, err);
    if (rc)
        return rc;
    if (!(*s = sq_stmt(*c, sql, err))) {
        sq_release(st, *c);
        *c = NULL;
        return PEMN_EDB;
    }
    return PEMN_OK;
}

void sq_release(struct store *st, struct sq_conn *c)
{
    if (!c)
        return;
    sq_rollback(c);
    struct sq_store *q = st->be;
    pthread_mutex_lock(&q->mu);
    if (q->n_idle < SQ_IDLE_MAX) {
        c->next = q->idle;
        q->idle = c;
        q->n_idle++;
        c = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    conn_close(c);
}

void sq_hook(struct store *st, const char *point)
{
    if (store_test_hook)
        store_test_hook(st, point);
}

/* ---- open / close ---------------------------------------------------------------------- */
static void sq_close(struct store *st)
{
    struct sq_store *q = st->be;
    if (!q)
        return;
    struct sq_conn *c = q->idle;
    while (c) {
        struct sq_conn *next = c->next;
        conn_close(c);
        c = next;
    }
    pthread_mutex_destroy(&q->mu);
    free(q->path);
    free(q);
    st->be = NULL;
}

static pemn_rc sq_open(struct store *st, const char *path, struct pemn_err *err)
{
    if (!*path)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no database path");
    if (!sqlite3_threadsafe())
        return proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "SQLite built without thread support");
    struct sq_store *q = calloc(1, sizeof *q);
    if (!q || !(q->path = strdup(path))) {
        free(q);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    q->busy_timeout_ms = st->opts.busy_timeout_ms > 0 ? st->opts.busy_timeout_ms : 5000;
    pthread_mutex_init(&q->mu, NULL);
    st->be = q;
    struct sq_conn *c = NULL;
    pemn_rc rc = sq_acquire(st, &c, err);
    if (!rc)
        rc = sq_migrate(st, c, &st->schema, err);
    sq_release(st, c);
    return rc;
}

const struct store_ops sq_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .schema_latest = sq_schema_latest,
    .put_package = sq_put_package,
    .get_version = sq_get_version,
    .get_latest = sq_get_latest,
    .list_models = sq_list_models,
    .list_versions = sq_list_versions,
    .tag_set = sq_tag_set,
    .tag_get = sq_tag_get,
    .tag_delete = sq_tag_delete,
    .list_tags = sq_list_tags,
    .blob_find = sq_blob_find,
    .blob_read = sq_blob_read,
    .key_add = sq_key_add,
    .key_remove = sq_key_remove,
    .key_list = sq_key_list,
    .token_insert = sq_token_insert,
    .token_revoke = sq_token_revoke,
    .token_find = sq_token_find,
    .token_list = sq_token_list,
    .audit_list = sq_audit_list,
    .stats = sq_stats,
    .fleet = &sq_fleet_ops,
    .oci = &sq_oci_ops,
    .console = &sq_console_ops,
    .verify = &sq_verify_ops,
    .devguard = &sq_devguard_ops,
    .trust = &sq_trust_ops,
    .delta = &sq_delta_ops,
    .metadata = &sq_metadata_ops,
};
