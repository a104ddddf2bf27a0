/*
 * storage/pg_schema.c — the PostgreSQL schema, as numbered migrations (table pemn_schema).
 *
 * To change the schema, append {N, "..."} to `migrations` with N one more than the last;
 * never edit a migration that has shipped. All pending migrations run in one transaction
 * that first takes a transaction-level advisory lock (PG_LOCK_MIGRATE): any number of
 * replicas may start at once; the first migrates, the others wait and then find nothing
 * to do. PostgreSQL's DDL is transactional, so a database is never half-migrated.
 *
 * The numbers mean the same schema as SQLite's (storage/sqlite_schema.c): this backend
 * starts at version 3, which holds what SQLite's versions 1-3 hold, plus rollout_counts
 * (the abort rule's counters, so a report never scans a fleet). A feature that adds
 * SQLite migration N adds PostgreSQL migration N too, so store_schema_latest() agrees.
 */
#include "storage/pg_int.h"
#include "storage/delta_schema.h"
#include "storage/oci_schema.h"
#include "storage/store_console.h"
#include "storage/store_trust.h"
#include "storage/store_metadata.h"

#include "proto/err.h"

#include <stdio.h>

static const char schema_v3[] =
    "CREATE TABLE models("
    "  id bigserial PRIMARY KEY,"
    "  name text NOT NULL UNIQUE,"
    "  created bigint NOT NULL);"
    /* Content-addressed package bytes: one row per blob, the bytes in rows of 1 MiB chunks
     * stored uncompressed out of line (STORAGE EXTERNAL) so a range read fetches only the
     * slices it needs and a whole read streams chunk by chunk. */
    "CREATE TABLE blobs("
    "  id bigserial PRIMARY KEY,"
    "  digest text NOT NULL UNIQUE,"
    "  size bigint NOT NULL,"
    "  created bigint NOT NULL);"
    "CREATE TABLE blob_chunks("
    "  blob_id bigint NOT NULL REFERENCES blobs(id),"
    "  idx integer NOT NULL,"
    "  data bytea NOT NULL,"
    "  PRIMARY KEY(blob_id, idx));"
    "ALTER TABLE blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;"
    "CREATE TABLE versions("
    "  id bigserial PRIMARY KEY,"
    "  model_id bigint NOT NULL REFERENCES models(id),"
    "  version text NOT NULL,"
    "  release bigint NOT NULL,"
    "  blob_id bigint NOT NULL REFERENCES blobs(id),"
    "  signer text NOT NULL,"
    "  strategy text NOT NULL,"
    "  density double precision NOT NULL,"
    "  n_params bigint NOT NULL,"
    "  f32_size bigint NOT NULL,"
    "  created bigint NOT NULL,"
    "  pushed bigint NOT NULL,"
    "  UNIQUE(model_id, version),"
    "  UNIQUE(model_id, release));"
    "CREATE TABLE tags("
    "  model_id bigint NOT NULL REFERENCES models(id),"
    "  tag text NOT NULL,"
    "  version_id bigint NOT NULL REFERENCES versions(id),"
    "  updated bigint NOT NULL,"
    "  PRIMARY KEY(model_id, tag));"
    "CREATE TABLE keys("
    "  id text PRIMARY KEY,"
    "  name text NOT NULL UNIQUE,"
    "  public_key bytea NOT NULL UNIQUE,"
    "  added bigint NOT NULL);"
    "CREATE TABLE tokens("
    "  id bigserial PRIMARY KEY,"
    "  name text NOT NULL UNIQUE,"
    "  hash bytea NOT NULL UNIQUE,"
    "  scope text NOT NULL,"
    "  created bigint NOT NULL,"
    "  revoked bigint NOT NULL DEFAULT 0,"
    "  device text NOT NULL DEFAULT '',"
    "  fleet text NOT NULL DEFAULT '');"
    "CREATE TABLE audit("
    "  id bigserial PRIMARY KEY,"
    "  at bigint NOT NULL,"
    "  actor text NOT NULL,"
    "  action text NOT NULL,"
    "  target text NOT NULL,"
    "  detail text NOT NULL DEFAULT '');"
    "CREATE TABLE fleets("
    "  id bigserial PRIMARY KEY,"
    "  name text NOT NULL UNIQUE,"
    "  model text NOT NULL, version text NOT NULL, tag text NOT NULL,"
    "  release bigint NOT NULL, digest text NOT NULL, size bigint NOT NULL,"
    "  prev_model text NOT NULL, prev_version text NOT NULL, prev_tag text NOT NULL,"
    "  prev_release bigint NOT NULL, prev_digest text NOT NULL, prev_size bigint NOT NULL,"
    "  rollout_id text NOT NULL,"
    "  percent_bp integer NOT NULL,"
    "  abort_failure_bp integer NOT NULL,"
    "  abort_min_devices bigint NOT NULL,"
    "  state text NOT NULL,"
    "  state_reason text NOT NULL,"
    "  rollout_started bigint NOT NULL,"
    "  created bigint NOT NULL,"
    "  updated bigint NOT NULL);"
    "CREATE INDEX fleets_by_tag ON fleets(model, tag);"
    "CREATE TABLE devices("
    "  id text PRIMARY KEY,"
    "  fleet_id bigint NOT NULL REFERENCES fleets(id),"
    "  first_seen bigint NOT NULL,"
    "  last_seen bigint NOT NULL,"
    "  reported bigint NOT NULL DEFAULT 0,"
    "  state text NOT NULL DEFAULT '',"
    "  reason text NOT NULL DEFAULT '',"
    "  version text NOT NULL DEFAULT '',"
    "  release bigint NOT NULL DEFAULT 0,"
    "  digest text NOT NULL DEFAULT '',"
    "  report_rollout text NOT NULL DEFAULT '',"
    "  message text NOT NULL DEFAULT '');"
    "CREATE INDEX devices_by_rollout ON devices(fleet_id, report_rollout, state);"
    /* Per rollout: how many devices' last report counted for it, and how many of those
     * failed. Kept by each report in its transaction (row-locked), read by the abort rule. */
    "CREATE TABLE rollout_counts("
    "  fleet_id bigint NOT NULL REFERENCES fleets(id),"
    "  rollout_id text NOT NULL,"
    "  reporting bigint NOT NULL DEFAULT 0,"
    "  failed bigint NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(fleet_id, rollout_id));";

static const struct {
    int version;
    const char *sql;
} migrations[] = {
    {3, schema_v3},            /* = SQLite 1-3 */
    {4, pg_schema_v4_console}, /* = SQLite 4: report history, rollout progress */
    /* = SQLite 5: device registrations per token (pg_devguard.c) */
    {5, "CREATE TABLE device_registrations("
        "  token text NOT NULL,"
        "  device text NOT NULL,"
        "  at bigint NOT NULL,"
        "  PRIMARY KEY(token, device));"
        "CREATE INDEX device_registrations_by_time ON device_registrations(token, at);"},
    {6, pg_schema_v6_oci},   /* = SQLite 6: OCI state (storage/pg_oci.c) */
    {7, pg_schema_trust},    /* = SQLite 7: roots, package signers (issue 10) */
    {8, pg_schema_metadata}, /* = SQLite 8: signed desired state (issue 10) */
    {9, pg_schema_v9_delta}, /* = SQLite 9: package deltas (storage/pg_delta.c) */
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int pg_schema_latest(void)
{
    return migrations[N_MIGRATIONS - 1].version;
}

struct mig_ctx {
    struct store *st;
    int schema;
};

static pemn_rc migrate_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql_lock[] = "SELECT pg_advisory_xact_lock($1)";
    static const char sql_read[] = "SELECT version FROM pemn_schema";
    static const char sql_set[] = "UPDATE pemn_schema SET version = $1";
    struct mig_ctx *m = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, PG_LOCK_MIGRATE);
    pemn_rc rc = pg_cmd(c, sql_lock, &p, "taking the migration lock", err);
    if (rc)
        return rc;
    rc = pg_simple(c,
                   "CREATE TABLE IF NOT EXISTS pemn_schema(version integer NOT NULL);"
                   " INSERT INTO pemn_schema(version) SELECT 0"
                   " WHERE NOT EXISTS (SELECT 1 FROM pemn_schema)",
                   err);
    if (rc)
        return rc;
    PGresult *r = pg_exec(c, sql_read, NULL, false, "reading the schema version", NULL, err);
    if (!r)
        return PEMN_EDB;
    int v = PQntuples(r) == 1 ? (int)pg_i64(r, 0, 0) : -1;
    PQclear(r);
    pg_hook(m->st, "migrate.locked");
    int latest = pg_schema_latest();
    if (v < 0)
        return proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "damaged pemn_schema table");
    if (v > latest)
        return proto_err(err, PEMN_EVERSION, PEMN_NO_OFFSET,
                         "database schema version %d is newer than this pemnd (%d)", v, latest);
    for (int i = 0; i < N_MIGRATIONS && !rc; i++) {
        if (migrations[i].version <= v)
            continue;
        rc = pg_simple(c, migrations[i].sql, err);
        if (rc) {
            char msg[PEMN_ERR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            return proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "schema migration %d: %.200s",
                             migrations[i].version, msg);
        }
        pg_p_init(&p);
        pg_p_i64(&p, migrations[i].version);
        rc = pg_cmd(c, sql_set, &p, "setting the schema version", err);
    }
    if (!rc)
        m->schema = latest;
    return rc;
}

pemn_rc pg_migrate(struct store *st, int *schema_out, struct pemn_err *err)
{
    struct mig_ctx m = {st, 0};
    pemn_rc rc = pg_run(st, PG_WRITE, migrate_body, &m, err);
    if (!rc)
        *schema_out = m.schema;
    return rc;
}
