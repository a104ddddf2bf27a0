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

#include "storage/store.h"

#include <pthread.h>
#include <stdatomic.h>
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

struct blob_cache;
struct verified_set;

struct store {
    char *path;
    struct store_opts opts;
    pthread_mutex_t mu; /* guards idle */
    struct sq_conn *idle;
    unsigned n_idle;
    int schema;
    struct blob_cache *cache;
    struct verified_set *verified; /* digests whose stored bytes hashed right (sqlite_verify.c) */
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

/* Blob cache (sqlite_blobs.c). */
struct blob_cache *blob_cache_new(size_t budget);
void blob_cache_free(struct blob_cache *bc);
void blob_cache_stats(struct blob_cache *bc, struct store_stats *out);

/* Schema v4: device registrations per token (sqlite_devguard.c). */
extern const char sq_schema_v4_devguard[];

/* Integrity (sqlite_verify.c): the set of verified digests, and a chunked hash of a stored
 * blob (rate bytes/s, 0: unbounded; stop polled between chunks, may be NULL). */
struct verified_set *sq_verified_new(void);
void sq_verified_free(struct verified_set *v);
bool sq_verified_has(struct verified_set *v, const uint8_t d[PEMN_DIGEST_BYTES]);
void sq_verified_add(struct verified_set *v, const uint8_t d[PEMN_DIGEST_BYTES]);
pemn_rc sq_hash_blob(struct store *st, int64_t rowid, uint64_t size, uint64_t rate,
                     const atomic_bool *stop, uint8_t out[PEMN_DIGEST_BYTES], struct pemn_err *err);

#endif
