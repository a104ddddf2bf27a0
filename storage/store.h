/*
 * storage/store.h — the registry's storage interface (internal to pemnd).
 *
 * This is the only way server/ reaches stored data. It speaks in registry terms (models,
 * versions, blobs, tags, keys, tokens, audit), never in SQL. Two backends implement it
 * behind a table of operations (storage/store_ops.h), chosen at run time by store_open's
 * path: a file or "sqlite:FILE" is SQLite (storage/sqlite_*.c: one database file in WAL
 * mode, the default); "postgresql://..." or "postgres://..." is PostgreSQL
 * (storage/pg_*.c: any number of pemnd replicas on one database). Every guarantee below
 * holds on both.
 *
 * Data model:
 *   blob     package bytes, addressed by "sha256:<hex>" of the bytes; immutable.
 *   version  (model, version label) -> one blob + manifest summary; immutable once stored.
 *            Releases strictly increase per model (rollback protection).
 *   tag      (model, tag) -> version label; movable.
 *   key      trusted publisher Ed25519 public keys; pushes must be signed by one.
 *   token    API tokens, stored only as SHA-256 of the token text, with one scope.
 *   audit    one row per write (who, what, when), written in the write's transaction.
 *
 * Every write is one transaction: after a crash either all of it is there or none of it.
 * Package bytes are served through a blob handle: small and medium blobs are copied out
 * into a shared in-memory LRU cache (a byte budget), larger ones are read in chunks, each
 * chunk in its own short read; no read transaction is ever held across a slow download.
 *
 * Strings passed in are validated by the caller (server/) against the name pattern
 * [A-Za-z0-9][A-Za-z0-9._-]{0,127}; the store binds them as parameters either way.
 *
 * Thread-safety: one struct store may be used from any number of threads at once (each
 * call borrows a connection from an internal pool). Callbacks run on the calling thread
 * while a read is open: they must not call back into the store.
 */
#ifndef PEMN_STORAGE_STORE_H
#define PEMN_STORAGE_STORE_H

#include <pemn/common.h>
#include <pemn/key.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_LABEL_MAX 129     /* 128 bytes + NUL: model, version, tag, token and key names */
#define STORE_TOKEN_TEXT_MAX 64 /* "pemn_" + 43 base64url chars + NUL */

struct store;

struct store_opts {
    size_t cache_bytes;    /* blob cache budget in bytes (0: no cache) */
    size_t cache_item_max; /* blobs larger than this are streamed in chunks, not cached */
    int busy_timeout_ms;   /* how long a write waits for another writer (default 5000) */
};
/* Defaults: 256 MiB cache, 64 MiB per item, 5000 ms. */
void store_opts_default(struct store_opts *o);

/* Opens (creating if needed) the database at path — a SQLite file, "sqlite:FILE", or a
 * PostgreSQL URI (whose password must come from PGPASSFILE or a service file: PEMN_EINVAL
 * when the URI holds one) — and brings its schema up to date. opts may be NULL for the
 * defaults. PEMN_EDB with the database's message on failure; PEMN_EVERSION when the
 * database's schema is newer than this build knows. */
PEMN_WARN_UNUSED pemn_rc store_open(const char *path, const struct store_opts *opts,
                                    struct store **out, struct pemn_err *err);
/* Closes every connection. NULL is a no-op. No other call may be running. */
void store_close(struct store *st);
/* The schema version of the open database (SQLite: PRAGMA user_version; PostgreSQL: table
 * pemn_schema). The numbers mean the same schema on both backends. */
int store_schema_version(struct store *st);
/* The newest schema version this build knows. */
int store_schema_latest(void);

/* ---- versions ------------------------------------------------------------------------- */
/* The "version object" of docs/API.md. */
struct store_version {
    char model[STORE_LABEL_MAX];
    char version[STORE_LABEL_MAX];
    char strategy[STORE_LABEL_MAX];
    uint64_t release;
    char digest[PEMN_DIGEST_TEXT_MAX]; /* "sha256:<hex>" */
    uint64_t size;                     /* package bytes */
    char signer[PEMN_KEYID_TEXT_MAX];  /* key id, 16 hex */
    int64_t created;                   /* manifest creation time */
    int64_t pushed;                    /* when stored (set by the store) */
    double density;
    uint64_t n_params;
    uint64_t f32_size;
};

/* Stores a verified package: the blob (if new), the version row, the model row and an
 * audit row, in one transaction. meta->digest must be the SHA-256 of bytes (the caller
 * checked it). Outcomes:
 *   PEMN_OK, *created = true    stored; *out receives the stored row
 *   PEMN_OK, *created = false   the identical package was already stored under this version
 *   PEMN_ECONFLICT              a different package already holds this version
 *   PEMN_EROLLBACK              release is not greater than the model's latest release
 *   PEMN_EDB                    storage failure (nothing stored)
 * actor: who did it (token name), for the audit log. out may be NULL. */
PEMN_WARN_UNUSED pemn_rc store_put_package(struct store *st, const struct store_version *meta,
                                           const void *bytes, size_t len, const char *actor,
                                           bool *created, struct store_version *out,
                                           struct pemn_err *err);

/* One version. PEMN_ENOTFOUND when absent. */
pemn_rc store_get_version(struct store *st, const char *model, const char *version,
                          struct store_version *out, struct pemn_err *err);
/* The model's newest version (highest release). PEMN_ENOTFOUND when the model is unknown. */
pemn_rc store_get_latest(struct store *st, const char *model, struct store_version *out,
                         struct pemn_err *err);

/* Iteration callbacks return 0 to continue, nonzero to stop (the call then returns
 * PEMN_ECANCELED). */
typedef int (*store_version_cb)(void *ctx, const struct store_version *v);
/* Every model, by name, with its latest version and its number of versions. */
typedef int (*store_model_cb)(void *ctx, const char *name, const struct store_version *latest,
                              uint64_t n_versions);
pemn_rc store_list_models(struct store *st, store_model_cb cb, void *ctx, struct pemn_err *err);
/* The model's versions, newest (highest release) first. PEMN_ENOTFOUND for an unknown model. */
pemn_rc store_list_versions(struct store *st, const char *model, store_version_cb cb, void *ctx,
                            struct pemn_err *err);

/* ---- tags ----------------------------------------------------------------------------- */
/* Points tag at an existing version (creating or moving it). PEMN_ENOTFOUND when the
 * version does not exist. *out receives the version pointed at (may be NULL).
 * In the same transaction, every fleet whose target follows this model+tag and is not
 * already that package starts a new rollout to it with the fleet's own percentage and abort
 * rule (store_fleet.h, store_fleet_put), one "fleet.follow" audit row per fleet; setting a
 * tag to the version it already names moves no fleet. Deleting a tag moves no fleet. */
pemn_rc store_tag_set(struct store *st, const char *model, const char *tag, const char *version,
                      const char *actor, struct store_version *out, struct pemn_err *err);
/* store_tag_set, also telling how many fleets started a new rollout (fleets_moved may be
 * NULL). */
pemn_rc store_tag_set_follow(struct store *st, const char *model, const char *tag,
                             const char *version, const char *actor, struct store_version *out,
                             unsigned *fleets_moved, struct pemn_err *err);
/* The version a tag points at. PEMN_ENOTFOUND when the tag does not exist. */
pemn_rc store_tag_get(struct store *st, const char *model, const char *tag,
                      struct store_version *out, struct pemn_err *err);
/* PEMN_ENOTFOUND when the tag does not exist. */
pemn_rc store_tag_delete(struct store *st, const char *model, const char *tag, const char *actor,
                         struct pemn_err *err);
typedef int (*store_tag_cb)(void *ctx, const char *tag, const char *version);
/* The model's tags by name (an unknown model has none). */
pemn_rc store_list_tags(struct store *st, const char *model, store_tag_cb cb, void *ctx,
                        struct pemn_err *err);

/* ---- blobs (package bytes) ----------------------------------------------------------- */
/* A reference to one stored blob. When data is not NULL the whole blob is in memory
 * (shared, read-only); otherwise read it with store_blob_read. Release with
 * store_blob_release (any thread). */
struct store_blob {
    const uint8_t *data; /* borrowed while the handle lives, or NULL (stream it) */
    int fd;              /* when data is set: a read-only descriptor whose bytes at offset 0
                          * are the blob (a memfd), or -1; borrowed: dup() it to keep it
                          * (e.g. for sendfile) beyond the handle */
    uint64_t size;
    char digest[PEMN_DIGEST_TEXT_MAX];
};
/* Looks a blob up by "sha256:<hex>" (lower or upper case hex). PEMN_ENOTFOUND; PEMN_EINVAL
 * for a malformed digest. */
pemn_rc store_blob_get(struct store *st, const char *digest, struct store_blob **out,
                       struct pemn_err *err);
/* Copies n bytes from offset into buf (a short read of its own). PEMN_EINVAL past the end. */
pemn_rc store_blob_read(struct store *st, const struct store_blob *b, uint64_t offset, void *buf,
                        size_t n, struct pemn_err *err);
void store_blob_release(struct store_blob *b); /* NULL is a no-op */

/* ---- trusted publisher keys ------------------------------------------------------------ */
struct store_key {
    char id[PEMN_KEYID_TEXT_MAX];
    char name[STORE_LABEL_MAX];
    struct pemn_pubkey pub;
    int64_t added;
};
/* Adds a key. name may be NULL (the key id is used). PEMN_EEXIST when the key or the name is
 * already present, or the name is another key's id; PEMN_EINVAL when the name has the shape
 * of a key id (16 hex) other than the key's own. out may be NULL. */
pemn_rc store_key_add(struct store *st, const struct pemn_pubkey *pub, const char *name,
                      const char *actor, struct store_key *out, struct pemn_err *err);
/* Removes exactly one key, matched exactly by name or id. PEMN_ENOTFOUND; PEMN_ECONFLICT
 * when the text is one key's name and another key's id (nothing is removed). */
#define STORE_KEY_AMBIGUOUS                                                                        \
    "%s is ambiguous: it is one key's name and another key's id; remove by the other key's "       \
    "name or rename first"
pemn_rc store_key_remove(struct store *st, const char *name_or_id, const char *actor,
                         struct pemn_err *err);
typedef int (*store_key_cb)(void *ctx, const struct store_key *k);
pemn_rc store_key_list(struct store *st, store_key_cb cb, void *ctx, struct pemn_err *err);

/* ---- API tokens ---------------------------------------------------------------------- */
/* Scopes as bits. A token holds one scope; its effective rights are the scope's closure:
 * publish => read; admin => everything; device => read + fleet device routes. */
#define STORE_SCOPE_READ 1u
#define STORE_SCOPE_PUBLISH 2u
#define STORE_SCOPE_ADMIN 4u
#define STORE_SCOPE_DEVICE 8u
/* Parses "read" | "publish" | "admin" | "device"; 0 when unknown. */
unsigned store_scope_parse(const char *s);
/* Name of a single scope bit ("read", ...), or NULL. */
const char *store_scope_name(unsigned scope);
/* The rights a token of this scope has (bit set). */
unsigned store_scope_rights(unsigned scope);

/* Creates a token: writes the token text ("pemn_" + 43 base64url characters, 256 random
 * bits) into token_out; only its SHA-256 is stored. name may be NULL (a name is generated
 * and written to name_out when not NULL). PEMN_EEXIST when the name is taken. */
pemn_rc store_token_create(struct store *st, unsigned scope, const char *name, const char *actor,
                           char token_out[STORE_TOKEN_TEXT_MAX], char name_out[STORE_LABEL_MAX],
                           struct pemn_err *err);
/* Revokes a token by name (it stays listed, marked revoked). PEMN_ENOTFOUND. */
pemn_rc store_token_revoke(struct store *st, const char *name, const char *actor,
                           struct pemn_err *err);
/* Checks a presented token. PEMN_OK with its scope and name; PEMN_EAUTH when unknown or
 * revoked. name_out may be NULL. */
pemn_rc store_token_check(struct store *st, const char *token, unsigned *scope,
                          char name_out[STORE_LABEL_MAX], struct pemn_err *err);
/* Creates a token bound to a device id and/or a fleet (either may be NULL or ""): the
 * server lets such a token act only as that device / within that fleet. Only device tokens
 * can be bound (PEMN_EINVAL otherwise). Otherwise as store_token_create. */
pemn_rc store_token_create_bound(struct store *st, unsigned scope, const char *name,
                                 const char *device, const char *fleet, const char *actor,
                                 char token_out[STORE_TOKEN_TEXT_MAX],
                                 char name_out[STORE_LABEL_MAX], struct pemn_err *err);
/* store_token_check, also giving the token's binding: device_out / fleet_out get the bound
 * device id / fleet ("" when unbound); either may be NULL. */
pemn_rc store_token_check_bound(struct store *st, const char *token, unsigned *scope,
                                char name_out[STORE_LABEL_MAX], char device_out[STORE_LABEL_MAX],
                                char fleet_out[STORE_LABEL_MAX], struct pemn_err *err);
struct store_token {
    char name[STORE_LABEL_MAX];
    char device[STORE_LABEL_MAX]; /* bound device id, "" when unbound */
    char fleet[STORE_LABEL_MAX];  /* bound fleet, "" when unbound */
    unsigned scope;
    int64_t created;
    int64_t revoked; /* 0 when active */
};
typedef int (*store_token_cb)(void *ctx, const struct store_token *t);
pemn_rc store_token_list(struct store *st, store_token_cb cb, void *ctx, struct pemn_err *err);

/* ---- audit log and statistics ---------------------------------------------------------- */
struct store_audit {
    int64_t id;
    int64_t at;
    const char *actor;  /* borrowed for the callback's duration */
    const char *action; /* "push", "tag.set", "tag.delete", "key.add", "token.create", ... */
    const char *target; /* "net/1.4.0", ... */
    const char *detail; /* digest or other detail, may be "" */
};
typedef int (*store_audit_cb)(void *ctx, const struct store_audit *a);
/* Newest first, at most limit rows. */
pemn_rc store_audit_list(struct store *st, unsigned limit, store_audit_cb cb, void *ctx,
                         struct pemn_err *err);

struct store_stats {
    uint64_t models, versions, blobs, blob_bytes, tags, keys;
    uint64_t cache_bytes, cache_items, cache_hits, cache_misses;
};
pemn_rc store_stats(struct store *st, struct store_stats *out, struct pemn_err *err);

#endif
