/*
 * storage/pg_int.h — internals shared by the PostgreSQL backend's files (pg_*.c).
 * Nothing outside storage/ includes this.
 *
 * Connections: a pool of libpq connections (the --db URI, or any libpq connection string;
 * passwords come from PGPASSFILE / ~/.pgpass / a service file, never from the URI). A call
 * borrows one (pg_acquire) and returns it (pg_release); a connection found broken is
 * dropped and a new one opened, so pemnd reconnects by itself after PostgreSQL restarts or
 * fails over. Statements are prepared once per connection, cached by their SQL text's
 * address (string literals).
 *
 * Transactions: every operation is a body run by pg_run inside BEGIN ... COMMIT at READ
 * COMMITTED. When the body or the commit fails with a serialization failure (40001) or a
 * deadlock (40P01), or the connection broke before COMMIT was sent, the whole transaction
 * is run again on a fresh connection (bounded: PG_RETRIES attempts, growing jittered
 * pauses, at most ~PG_RETRY_SECONDS in all). Bodies must therefore be restartable: no
 * callbacks into the caller inside a body (lists collect their rows first).
 *
 * Invariants that span rows are protected by row locks, always taken in this order so two
 * transactions never wait on each other in a cycle:
 *     models (FOR UPDATE: release order per model)
 *  -> tags
 *  -> fleets (FOR UPDATE, by name: target/rollout/state changes, tag moves)
 *  -> devices (FOR UPDATE: a device's report)
 *  -> rollout_counts (UPDATE ... RETURNING: the abort rule's counters)
 * and the schema migrations by a transaction-level advisory lock (PG_LOCK_MIGRATE).
 *
 * Time: every timestamp stored is the database's clock (PG_NOW), never a replica's.
 */
#ifndef PEMN_STORAGE_PG_INT_H
#define PEMN_STORAGE_PG_INT_H

#include "storage/store_ops.h"

#include <libpq-fe.h>
#include <pthread.h>

#define PG_STMT_MAX 96
#define PG_IDLE_MAX 32
#define PG_RETRIES 8
#define PG_RETRY_SECONDS 30
#define PG_PARAMS_MAX 24
#define PG_CHUNK ((size_t)1 << 20)     /* blob chunk rows: 1 MiB */
#define PG_LOCK_MIGRATE 0x70656d6e01LL /* "pemn" 1 */
#define PG_NOW "(extract(epoch from now())::bigint)"

struct pg_conn {
    PGconn *db;
    const char *stmt_sql[PG_STMT_MAX]; /* prepared as "s<i>" */
    int n_stmt;
    bool retry;  /* the last failure may be retried (40001, 40P01, connection lost) */
    bool broken; /* the connection is unusable: drop it */
    struct pg_conn *next;
};

struct pg_touch; /* pending last_seen touches (pg_fleet.c) */

struct pg_store {
    char *conninfo;
    pthread_mutex_t mu; /* guards idle */
    struct pg_conn *idle;
    unsigned n_idle;
    struct pg_touch *touch;
};

/* Parameters for one statement (text unless bound as binary). */
struct pg_params {
    int n;
    const char *v[PG_PARAMS_MAX];
    int len[PG_PARAMS_MAX];
    int fmt[PG_PARAMS_MAX];
    char num[PG_PARAMS_MAX][24];
};
void pg_p_init(struct pg_params *p);
void pg_p_text(struct pg_params *p, const char *s);
void pg_p_i64(struct pg_params *p, int64_t v);
void pg_p_f64(struct pg_params *p, double v);
void pg_p_bin(struct pg_params *p, const void *data, size_t len);

/* Runs sql (a string literal: prepared once per connection) with p (may be NULL).
 * Returns the result when its status is COMMAND_OK or TUPLES_OK; else NULL with err
 * filled (PEMN_EDB "what: message") and c->retry / c->broken set as fits. *state, when not
 * NULL, receives the SQLSTATE of a failure ("" when none). binary_out: results in binary. */
PGresult *pg_exec(struct pg_conn *c, const char *sql, const struct pg_params *p, bool binary_out,
                  const char *what, char state[6], struct pemn_err *err);
/* pg_exec for statements whose rows are not needed. */
pemn_rc pg_cmd(struct pg_conn *c, const char *sql, const struct pg_params *p, const char *what,
               struct pemn_err *err);
/* Unprepared, parameterless (BEGIN, COMMIT, DDL). */
pemn_rc pg_simple(struct pg_conn *c, const char *sql, struct pemn_err *err);

/* Column readers ("" / 0 for NULL). */
void pg_text(const PGresult *r, int row, int col, char *dst, size_t cap);
int64_t pg_i64(const PGresult *r, int row, int col);
double pg_f64(const PGresult *r, int row, int col);

/* A transaction body; restartable (see above). */
typedef pemn_rc (*pg_body)(struct pg_conn *c, void *ctx, struct pemn_err *err);
/* How pg_run wraps a body. */
enum pg_mode {
    PG_WRITE,  /* BEGIN (READ COMMITTED) ... COMMIT */
    PG_READ,   /* BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY: several reads, one snapshot */
    PG_SINGLE, /* no transaction block: one read statement, or reads of immutable rows */
};
/* Runs body as mode says, committing on PEMN_OK and rolling back otherwise; retries as
 * described above. */
pemn_rc pg_run(struct store *st, enum pg_mode mode, pg_body body, void *ctx, struct pemn_err *err);

pemn_rc pg_acquire(struct store *st, struct pg_conn **out, struct pemn_err *err);
void pg_release(struct store *st, struct pg_conn *c);

/* Appends an audit row inside the caller's transaction. */
pemn_rc pg_audit(struct pg_conn *c, const char *actor, const char *action, const char *target,
                 const char *detail, struct pemn_err *err);

/* Runs the migrations (pg_schema.c) under the migration advisory lock. */
pemn_rc pg_migrate(struct store *st, int *schema_out, struct pemn_err *err);
int pg_schema_latest(void);

/* Test hook (store_test_hook) at a named point inside a transaction. */
void pg_hook(struct store *st, const char *point);

/* ---- the operations ---- */
pemn_rc pg_put_package(struct store *st, const struct store_version *meta, const void *bytes,
                       size_t len, const char *actor, bool *created, struct store_version *out,
                       struct pemn_err *err);
pemn_rc pg_get_version(struct store *st, const char *model, const char *version,
                       struct store_version *out, struct pemn_err *err);
pemn_rc pg_get_latest(struct store *st, const char *model, struct store_version *out,
                      struct pemn_err *err);
pemn_rc pg_list_models(struct store *st, store_model_cb cb, void *ctx, struct pemn_err *err);
pemn_rc pg_list_versions(struct store *st, const char *model, store_version_cb cb, void *ctx,
                         struct pemn_err *err);
pemn_rc pg_tag_set(struct store *st, const char *model, const char *tag, const char *version,
                   const char *actor, struct store_version *out, unsigned *fleets_moved,
                   struct pemn_err *err);
pemn_rc pg_tag_get(struct store *st, const char *model, const char *tag, struct store_version *out,
                   struct pemn_err *err);
pemn_rc pg_tag_delete(struct store *st, const char *model, const char *tag, const char *actor,
                      struct pemn_err *err);
pemn_rc pg_list_tags(struct store *st, const char *model, store_tag_cb cb, void *ctx,
                     struct pemn_err *err);
pemn_rc pg_blob_store(struct pg_conn *c, const char *digest, const void *bytes, size_t len,
                      int64_t *id, struct pemn_err *err);
pemn_rc pg_blob_find(struct store *st, const char *digest, uint64_t *size, int64_t *ref,
                     struct pemn_err *err);
pemn_rc pg_blob_read(struct store *st, int64_t ref, uint64_t offset, void *buf, size_t n,
                     struct pemn_err *err);
pemn_rc pg_key_add(struct store *st, const struct store_key *k, const char *actor,
                   struct pemn_err *err);
pemn_rc pg_key_remove(struct store *st, const char *name_or_id, const char *actor,
                      struct pemn_err *err);
pemn_rc pg_key_list(struct store *st, store_key_cb cb, void *ctx, struct pemn_err *err);
pemn_rc pg_token_insert(struct store *st, const char *name, const uint8_t *hash,
                        const char *scope_name, const char *device, const char *fleet,
                        const char *actor, const char *detail, struct pemn_err *err);
pemn_rc pg_token_revoke(struct store *st, const char *name, const char *actor,
                        struct pemn_err *err);
pemn_rc pg_token_find(struct store *st, const uint8_t *hash, bool *found,
                      struct store_token_row *row, struct pemn_err *err);
pemn_rc pg_token_list(struct store *st, store_token_cb cb, void *ctx, struct pemn_err *err);
pemn_rc pg_audit_list(struct store *st, unsigned limit, store_audit_cb cb, void *ctx,
                      struct pemn_err *err);
pemn_rc pg_stats(struct store *st, struct store_stats *out, struct pemn_err *err);

/* Fleets (pg_fleet.c). */
extern const struct store_fleet_ops pg_fleet_ops;
/* Inside the caller's transaction: fleets following model+tag move to v (store_tag_set). */
pemn_rc pg_fleet_follow_tag(struct pg_conn *c, const struct store_version *v, const char *tag,
                            const char *actor, unsigned *moved, struct pemn_err *err);
/* The batched last_seen touches: start / flush / stop. */
pemn_rc pg_touch_start(struct store *st, struct pemn_err *err);
void pg_touch_flush(struct store *st);
void pg_touch_stop(struct store *st);

#endif
