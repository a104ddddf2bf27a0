/*
 * storage/sqlite_int.h — internals shared by the SQLite backend's files (sqlite_*.c).
 * Nothing outside storage/ includes this.
 *
 * Connections: a pool. Each store call borrows one connection (sq_acquire), uses it on its
 * thread only, and returns it (sq_release); so at any moment a connection belongs to one
 * thread. Statements are prepared once per connection (SQLITE_PREPARE_PERSISTENT), cached by
 * their SQL text's address, reset after each use and finalized when the connection closes.
 *
 * Schema: migrations live in one table in sqlite_schema.c; adding one is appending an entry
 * {N, "SQL..."} (N = previous + 1). They run in one write transaction at open.
 */
#ifndef PEMN_STORAGE_SQLITE_INT_H
#define PEMN_STORAGE_SQLITE_INT_H

#include "storage/store_ops.h"

#include <pthread.h>
#include <sqlite3.h>

#define SQ_STMT_MAX 64
#define SQ_IDLE_MAX 64 /* connections kept open when idle */

struct sq_conn {
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *stmt;
    } cache[SQ_STMT_MAX];
    int n_cache;
    struct sq_conn *next; /* idle list */
};

/* The SQLite backend's state (st->be). */
struct sq_store {
    char *path;
    int busy_timeout_ms;
    pthread_mutex_t mu; /* guards idle */
    struct sq_conn *idle;
    unsigned n_idle;
};

/* Borrow / return a connection. A connection returned inside a transaction is rolled back. */
pemn_rc sq_acquire(struct store *st, struct sq_conn **out, struct pemn_err *err);
void sq_release(struct store *st, struct sq_conn *c);
/* sq_acquire + sq_begin (BEGIN IMMEDIATE): a connection inside a write transaction; on
 * failure nothing is held. Finish with sq_commit, then sq_release (which rolls back an
 * uncommitted transaction). */
pemn_rc sq_acquire_write(struct store *st, struct sq_conn **out, struct pemn_err *err);
/* sq_acquire + sq_stmt(sql) for a read: on failure nothing is held (PEMN_EDB when the
 * statement cannot be prepared). Finish with sq_done(*s) and sq_release. */
pemn_rc sq_acquire_stmt(struct store *st, const char *sql, struct sq_conn **c, sqlite3_stmt **s,
                        struct pemn_err *err);

/* The cached prepared statement for sql (a string literal: cached by address), reset and
 * with bindings cleared. NULL on failure (err filled). */
sqlite3_stmt *sq_stmt(struct sq_conn *c, const char *sql, struct pemn_err *err);
/* Resets a statement after use (keeps it cached). NULL is a no-op. */
void sq_done(sqlite3_stmt *s);
/* PEMN_EDB with "what: sqlite message". */
pemn_rc sq_fail(struct sq_conn *c, struct pemn_err *err, const char *what);

/* Write transactions (BEGIN IMMEDIATE: take the write lock up front, waiting up to the busy
 * timeout, so two writers never deadlock on a lock upgrade). */
pemn_rc sq_begin(struct sq_conn *c, struct pemn_err *err);
pemn_rc sq_commit(struct sq_conn *c, struct pemn_err *err);
void sq_rollback(struct sq_conn *c);

/* Appends an audit row (inside the caller's transaction). */
pemn_rc sq_audit(struct sq_conn *c, const char *actor, const char *action, const char *target,
                 const char *detail, struct pemn_err *err);

int64_t sq_now(void);
/* Copies a column's text into dst (truncating safely); "" for NULL. */
void sq_col_text(sqlite3_stmt *s, int col, char *dst, size_t cap);

/* Runs the migrations on c (sqlite_schema.c). */
pemn_rc sq_migrate(struct sq_conn *c, int *schema_out, struct pemn_err *err);
int sq_schema_latest(void);

/* ---- the operations (struct store_ops sq_ops, sqlite_conn.c) ---- */
pemn_rc sq_put_package(struct store *st, const struct store_version *meta, const void *bytes,
                       size_t len, const char *actor, bool *created, struct store_version *out,
                       struct pemn_err *err);
pemn_rc sq_get_version(struct store *st, const char *model, const char *version,
                       struct store_version *out, struct pemn_err *err);
pemn_rc sq_get_latest(struct store *st, const char *model, struct store_version *out,
                      struct pemn_err *err);
pemn_rc sq_list_models(struct store *st, store_model_cb cb, void *ctx, struct pemn_err *err);
pemn_rc sq_list_versions(struct store *st, const char *model, store_version_cb cb, void *ctx,
                         struct pemn_err *err);
pemn_rc sq_tag_set(struct store *st, const char *model, const char *tag, const char *version,
                   const char *actor, struct store_version *out, unsigned *fleets_moved,
                   struct pemn_err *err);
pemn_rc sq_tag_get(struct store *st, const char *model, const char *tag, struct store_version *out,
                   struct pemn_err *err);
pemn_rc sq_tag_delete(struct store *st, const char *model, const char *tag, const char *actor,
                      struct pemn_err *err);
pemn_rc sq_list_tags(struct store *st, const char *model, store_tag_cb cb, void *ctx,
                     struct pemn_err *err);
pemn_rc sq_blob_find(struct store *st, const char *digest, uint64_t *size, int64_t *ref,
                     struct pemn_err *err);
pemn_rc sq_blob_read(struct store *st, int64_t ref, uint64_t offset, void *buf, size_t n,
                     struct pemn_err *err);
pemn_rc sq_key_add(struct store *st, const struct store_key *k, const char *actor,
                   struct pemn_err *err);
pemn_rc sq_key_remove(struct store *st, const char *name_or_id, const char *actor,
                      struct pemn_err *err);
pemn_rc sq_key_list(struct store *st, store_key_cb cb, void *ctx, struct pemn_err *err);
pemn_rc sq_token_insert(struct store *st, const char *name, const uint8_t *hash,
                        const char *scope_name, const char *device, const char *fleet,
                        const char *actor, const char *detail, struct pemn_err *err);
pemn_rc sq_token_revoke(struct store *st, const char *name, const char *actor,
                        struct pemn_err *err);
pemn_rc sq_token_find(struct store *st, const uint8_t *hash, bool *found,
                      struct store_token_row *row, struct pemn_err *err);
pemn_rc sq_token_list(struct store *st, store_token_cb cb, void *ctx, struct pemn_err *err);
pemn_rc sq_audit_list(struct store *st, unsigned limit, store_audit_cb cb, void *ctx,
                      struct pemn_err *err);
pemn_rc sq_stats(struct store *st, struct store_stats *out, struct pemn_err *err);
extern const struct store_fleet_ops sq_fleet_ops;

#endif
