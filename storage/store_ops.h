/*
 * storage/store_ops.h — the storage backends' table of operations (internal to storage/).
 *
 * server/ calls the store_* functions of storage/store.h and storage/store_<feature>.h.
 * Those are thin dispatchers (storage/store.c, storage/store_<feature>.c): they do what is
 * common to every backend — argument validation, canonical digests, token generation and
 * hashing, the immutable-blob LRU cache — and then call the backend through st->ops. A
 * backend is chosen at run time from the --db string (store_open):
 *
 *   FILE | sqlite:FILE                      SQLite  (storage/sqlite_*.c, sq_ops)
 *   postgresql://... | postgres://...       PostgreSQL (storage/pg_*.c, pg_ops)
 *
 * A backend keeps its own state behind st->be and fills st->schema at open.
 *
 * ---- Adding stored state for a new feature (e.g. "oci") --------------------------------
 *   1. storage/store_oci.h: the public declarations, functions store_oci_* taking
 *      `struct store *` (what server/ calls), and the feature's operation table:
 *          struct store_oci_ops {
 *              pemn_rc (*put)(struct store *st, ..., struct pemn_err *err);
 *              ...
 *          };
 *   2. Here, ONE line in struct store_ops (section "features"):
 *          const struct store_oci_ops *oci;
 *      and a forward declaration `struct store_oci_ops;` next to the others.
 *   3. storage/store_oci.c: the dispatchers. Validate once, then
 *          if (!st->ops->oci) return store_unsupported(st, "oci", err);
 *          return st->ops->oci->put(st, ...);
 *   4. storage/sqlite_oci.c: `const struct store_oci_ops sq_oci_ops = {...}` with static
 *      functions; storage/pg_oci.c: `const struct store_oci_ops pg_oci_ops = {...}`.
 *      Declare both `extern` in storage/store_oci.h's internal section (or a small
 *      storage/oci_ops.h) and add `.oci = &sq_oci_ops` to sq_ops (storage/sqlite_conn.c) and
 *      `.oci = &pg_oci_ops` to pg_ops (storage/pg_conn.c): one line each.
 *   5. Schema: append migration N to the SQLite list (storage/sqlite_schema.c) and the same
 *      N to the PostgreSQL list (storage/pg_schema.c); the numbers mean the same schema.
 *   6. tests/unit/test_store_oci.c: the contract test, opening its store with
 *      store_open(storefix_db, ...) and using storefix_setup/storefix_teardown
 *      (tests/common/storefix.h). make test (tests/run.sh) runs every unit test that
 *      includes storefix.h twice: on SQLite, then on a fresh database of a throwaway
 *      PostgreSQL cluster ("test_store_oci[pg]").
 *
 * Backend helpers:
 *   SQLite:     sq_acquire/sq_acquire_write/sq_stmt/sq_commit/sq_audit (storage/sqlite_int.h).
 *   PostgreSQL: pg_run(st, PG_WRITE | PG_READ | PG_SINGLE, body, ctx, err) runs a
 *               restartable body (no callbacks into the caller inside it) and retries the
 *               whole transaction on serialization failures, deadlocks and lost
 *               connections; inside: pg_exec/pg_cmd with pg_params, pg_audit, pg_hook;
 *               lock rows in the order documented in storage/pg_int.h; timestamps from
 *               PG_NOW (the database's clock).
 */
#ifndef PEMN_STORAGE_STORE_OPS_H
#define PEMN_STORAGE_STORE_OPS_H

#include "storage/store.h"
#include "storage/store_fleet.h"

struct blob_cache;
struct store_fleet_ops;
struct store_oci_ops;
struct store_console_ops;
struct store_verify_ops;
struct store_devguard_ops;
struct store_delta_ops;
struct verified_set;
struct store_trust_ops;
struct store_metadata_ops;

/* The row a token lookup finds (store_token_check compares the hash and decides). */
struct store_token_row {
    uint8_t hash[PEMN_DIGEST_BYTES];
    size_t hash_len;
    char scope[16];
    char name[STORE_LABEL_MAX];
    char device[STORE_LABEL_MAX];
    char fleet[STORE_LABEL_MAX];
    int64_t revoked;
};

struct store_ops {
    const char *name; /* "sqlite", "postgresql" */

    /* Connects to target (the --db string without any "sqlite:" prefix), brings the schema
     * up to date, sets st->be and st->schema. On failure st->be is NULL or closable. */
    pemn_rc (*open)(struct store *st, const char *target, struct pemn_err *err);
    void (*close)(struct store *st); /* st->be may be NULL */
    int (*schema_latest)(void);

    /* versions and tags (arguments already validated; meta->digest canonical) */
    pemn_rc (*put_package)(struct store *st, const struct store_version *meta, const void *bytes,
                           size_t len, const char *actor, bool *created, struct store_version *out,
                           struct pemn_err *err);
    pemn_rc (*get_version)(struct store *st, const char *model, const char *version,
                           struct store_version *out, struct pemn_err *err);
    pemn_rc (*get_latest)(struct store *st, const char *model, struct store_version *out,
                          struct pemn_err *err);
    pemn_rc (*list_models)(struct store *st, store_model_cb cb, void *ctx, struct pemn_err *err);
    pemn_rc (*list_versions)(struct store *st, const char *model, store_version_cb cb, void *ctx,
                             struct pemn_err *err);
    pemn_rc (*tag_set)(struct store *st, const char *model, const char *tag, const char *version,
                       const char *actor, struct store_version *out, unsigned *fleets_moved,
                       struct pemn_err *err);
    pemn_rc (*tag_get)(struct store *st, const char *model, const char *tag,
                       struct store_version *out, struct pemn_err *err);
    pemn_rc (*tag_delete)(struct store *st, const char *model, const char *tag, const char *actor,
                          struct pemn_err *err);
    pemn_rc (*list_tags)(struct store *st, const char *model, store_tag_cb cb, void *ctx,
                         struct pemn_err *err);

    /* blobs: digest canonical. blob_find gives the size and a backend reference used by
     * blob_read (which reads [offset, offset + n), already bounds-checked). */
    pemn_rc (*blob_find)(struct store *st, const char *digest, uint64_t *size, int64_t *ref,
                         struct pemn_err *err);
    pemn_rc (*blob_read)(struct store *st, int64_t ref, uint64_t offset, void *buf, size_t n,
                         struct pemn_err *err);

    /* keys: k fully filled (id computed, name defaulted); a backend with its own clock
     * sets k->added to the time it stored */
    pemn_rc (*key_add)(struct store *st, struct store_key *k, const char *actor,
                       struct pemn_err *err);
    pemn_rc (*key_remove)(struct store *st, const char *name_or_id, const char *actor,
                          struct pemn_err *err);
    pemn_rc (*key_list)(struct store *st, store_key_cb cb, void *ctx, struct pemn_err *err);

    /* tokens: the text is generated and hashed above; only the hash reaches a backend.
     * token_insert: PEMN_EEXIST when the name is taken; writes the audit row with detail. */
    pemn_rc (*token_insert)(struct store *st, const char *name, const uint8_t *hash,
                            const char *scope_name, const char *device, const char *fleet,
                            const char *actor, const char *detail, struct pemn_err *err);
    pemn_rc (*token_revoke)(struct store *st, const char *name, const char *actor,
                            struct pemn_err *err);
    /* *found false when no token has this hash. */
    pemn_rc (*token_find)(struct store *st, const uint8_t *hash, bool *found,
                          struct store_token_row *row, struct pemn_err *err);
    pemn_rc (*token_list)(struct store *st, store_token_cb cb, void *ctx, struct pemn_err *err);

    pemn_rc (*audit_list)(struct store *st, unsigned limit, store_audit_cb cb, void *ctx,
                          struct pemn_err *err);
    /* the database counts only (the cache's numbers are added above) */
    pemn_rc (*stats)(struct store *st, struct store_stats *out, struct pemn_err *err);

    /* ---- features: one pointer per feature's table (NULL: not supported) ---- */
    const struct store_fleet_ops *fleet;
    const struct store_oci_ops *oci;           /* storage/store_oci.h (issue 13) */
    const struct store_console_ops *console;   /* storage/store_console.h */
    const struct store_verify_ops *verify;     /* storage/store_verify.h */
    const struct store_devguard_ops *devguard; /* storage/store_devguard.h */
    const struct store_trust_ops *trust;       /* storage/store_trust.h */
    const struct store_delta_ops *delta;       /* storage/store_delta.h (issue 12) */
    const struct store_metadata_ops *metadata; /* signed desired state (store_metadata.h) */
};

/* Fleets, devices and rollouts (storage/store_fleet.h); the same contracts. */
struct store_fleet_ops {
    pemn_rc (*put)(struct store *st, const char *fleet, const struct store_fleet_target *t,
                   uint32_t percent_bp, uint32_t abort_failure_bp, uint64_t abort_min_devices,
                   const char *new_rollout_id, const char *actor, bool *started,
                   struct store_fleet *out, struct pemn_err *err);
    pemn_rc (*get)(struct store *st, const char *fleet, struct store_fleet *out,
                   struct pemn_err *err);
    pemn_rc (*list)(struct store *st, store_fleet_cb cb, void *ctx, struct pemn_err *err);
    pemn_rc (*set_state)(struct store *st, const char *fleet, enum store_rollout_state to,
                         const char *reason, const char *rollout_id, const char *actor,
                         bool *changed, struct store_fleet *out, struct pemn_err *err);
    pemn_rc (*device_poll)(struct store *st, const char *fleet, const char *device,
                           int touch_seconds, struct store_fleet *fleet_out,
                           struct store_device *dev_out, struct pemn_err *err);
    pemn_rc (*device_report)(struct store *st, const char *fleet, const struct store_device *r,
                             const char *counts_for, uint64_t *reporting, uint64_t *failed,
                             struct pemn_err *err);
    pemn_rc (*device_get)(struct store *st, const char *fleet, const char *device,
                          struct store_device *out, struct pemn_err *err);
    pemn_rc (*counts)(struct store *st, const char *fleet, struct store_fleet_counts *out,
                      store_count_cb cb, void *ctx, struct pemn_err *err);
};

/* The store handle, common to every backend. */
struct store {
    const struct store_ops *ops;
    struct store_opts opts;
    struct blob_cache *cache;      /* NULL when opts.cache_bytes == 0 */
    void *be;                      /* the backend's own state */
    int schema;                    /* schema version of the open database */
    struct verified_set *verified; /* digests whose stored bytes hashed right (store_verify.c) */
};

/* The backends. */
extern const struct store_ops sq_ops;
extern const struct store_ops pg_ops;

/* PEMN_EUNSUPPORTED: "the <backend> backend does not implement <what>". */
pemn_rc store_unsupported(struct store *st, const char *what, struct pemn_err *err);

/* "active" | "paused" | "aborted" -> state; anything else reads as ABORTED (unknown text
 * never means "go"). */
enum store_rollout_state store_rollout_state_parse(const char *s);

/* Tests only: when set, backends call it at named points inside a transaction (e.g.
 * "push.checked", "tag.fleets", "report.counted", "state.read", "migrate.locked") so a test
 * can interleave two store handles deterministically. NULL in production. */
extern void (*store_test_hook)(struct store *st, const char *point);

/* The retarget rule of a fleet PUT, the same on every backend (storage/store_fleet.c).
 * f is the stored fleet (existed) or is initialised here as a new fleet named `fleet`
 * created at `now`. The old target becomes the fallback unless an abort stopped it, and a
 * fallback equal to the new target is dropped. Returns whether a new rollout begins (false
 * only when the target is unchanged and not aborted). The caller then sets f->target. */
bool store_fleet_retarget(struct store_fleet *f, bool existed, const char *fleet,
                          const char *new_digest, int64_t now);

/* Generates a rollout id (32 hex characters of randomness) into out. */
void store_new_rollout_id(char out[STORE_ROLLOUT_ID_MAX]);

/* The blob cache (storage/blob_cache.c). */
struct blob_cache *blob_cache_new(size_t budget);
void blob_cache_free(struct blob_cache *bc);
void blob_cache_stats(struct blob_cache *bc, struct store_stats *out);

#endif
