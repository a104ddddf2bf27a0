/*
 * storage/sqlite_schema.c — the schema, as numbered migrations (PRAGMA user_version).
 *
 * To change the schema, append {N, "..."} to `migrations` with N one more than the last;
 * never edit a migration that has shipped. All pending migrations run in one write
 * transaction when the store opens, so a database is never half-migrated, and several
 * processes opening the same file at once migrate it exactly once.
 */
#include "storage/sqlite_int.h"
#include "storage/sqlite_console.h"
#include "storage/sqlite_fleet.h"
#include "storage/delta_schema.h"
#include "storage/oci_schema.h"
#include "storage/sqlite_metadata.h"
#include "storage/store_trust.h"

#include "proto/err.h"

#include <stdio.h>

/* Version 1: the registry (issue 3). */
static const char schema_v1[] =
    "CREATE TABLE models("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created INTEGER NOT NULL);"
    /* Content-addressed package bytes. data is the last column so reading a row's other
     * columns never touches the blob's overflow pages. */
    "CREATE TABLE blobs("
    "  id INTEGER PRIMARY KEY,"
    "  digest TEXT NOT NULL UNIQUE,"
    "  size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  data BLOB NOT NULL);"
    "CREATE TABLE versions("
    "  id INTEGER PRIMARY KEY,"
    "  model_id INTEGER NOT NULL REFERENCES models(id),"
    "  version TEXT NOT NULL,"
    "  release INTEGER NOT NULL,"
    "  blob_id INTEGER NOT NULL REFERENCES blobs(id),"
    "  signer TEXT NOT NULL,"
    "  strategy TEXT NOT NULL,"
    "  density REAL NOT NULL,"
    "  n_params INTEGER NOT NULL,"
    "  f32_size INTEGER NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  pushed INTEGER NOT NULL,"
    "  UNIQUE(model_id, version),"
    "  UNIQUE(model_id, release));"
    "CREATE TABLE tags("
    "  model_id INTEGER NOT NULL REFERENCES models(id),"
    "  tag TEXT NOT NULL,"
    "  version_id INTEGER NOT NULL REFERENCES versions(id),"
    "  updated INTEGER NOT NULL,"
    "  PRIMARY KEY(model_id, tag)) WITHOUT ROWID;"
    "CREATE TABLE keys("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  public_key BLOB NOT NULL UNIQUE,"
    "  added INTEGER NOT NULL);"
    /* Tokens: only SHA-256(token text) is kept. */
    "CREATE TABLE tokens("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  hash BLOB NOT NULL UNIQUE,"
    "  scope TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE audit("
    "  id INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  target TEXT NOT NULL,"
    "  detail TEXT NOT NULL DEFAULT '');";

/* Version 3: device tokens bound to a device / fleet, and the device report's message
 * (issue 5 follow-up). '' means unbound / no message. */
static const char schema_v3[] = "ALTER TABLE tokens ADD COLUMN device TEXT NOT NULL DEFAULT '';"
                                "ALTER TABLE tokens ADD COLUMN fleet TEXT NOT NULL DEFAULT '';"
                                "ALTER TABLE devices ADD COLUMN message TEXT NOT NULL DEFAULT '';";

static const struct {
    int version;
    const char *sql;
} migrations[] = {
    {1, schema_v1},
    {2, sq_schema_v2_fleets},
    {3, schema_v3},
    {4, sq_schema_v4_console},
    {5, sq_schema_v5_devguard}, /* device registrations per token (sqlite_devguard.c) */
    {6, sq_schema_v6_oci},      /* OCI uploads, manifests, fleet sources */
    {7, sq_schema_trust},       /* issue 10: roots, package signers */
    {8, sq_schema_metadata},    /* issue 10: signed desired state */
    {9, sq_schema_v9_delta},    /* package deltas (sqlite_delta.c) */
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int sq_schema_latest(void)
{
    return migrations[N_MIGRATIONS - 1].version;
}

static int user_version(struct sq_conn *c)
{
    sqlite3_stmt *s = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return v;
}

pemn_rc sq_migrate(struct store *st, struct sq_conn *c, int *schema_out, struct pemn_err *err)
{
    int latest = sq_schema_latest();
    int v = user_version(c);
    if (v < 0)
        return sq_fail(c, err, "reading the schema version");
    if (v > latest)
        return proto_err(err, PEMN_EVERSION, PEMN_NO_OFFSET,
                         "database schema version %d is newer than this pemnd (%d)", v, latest);
    if (v == latest) {
        *schema_out = v;
        return PEMN_OK;
    }
    pemn_rc rc = sq_begin(c, err);
    if (rc)
        return rc;
    v = user_version(c); /* another process may have migrated while we waited */
    sq_hook(st, "migrate.locked");
    for (int i = 0; i < N_MIGRATIONS && !rc; i++) {
        if (migrations[i].version <= v)
            continue;
        char *msg = NULL;
        if (sqlite3_exec(c->db, migrations[i].sql, NULL, NULL, &msg) != SQLITE_OK) {
            rc = proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "schema migration %d: %s",
                           migrations[i].version, msg ? msg : sqlite3_errmsg(c->db));
            sqlite3_free(msg);
            break;
        }
        /* PRAGMA takes no bound parameters; the value is our own integer. */
        char pragma[48];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version=%d", migrations[i].version);
        if (sqlite3_exec(c->db, pragma, NULL, NULL, NULL) != SQLITE_OK)
            rc = sq_fail(c, err, "setting the schema version");
    }
    if (!rc)
        rc = sq_commit(c, err);
    else
        sq_rollback(c);
    if (!rc)
        *schema_out = latest;
    return rc;
}
