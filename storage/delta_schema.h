/*
 * storage/delta_schema.h — the deltas schema (migration 9 of both backends), for the
 * migration tables of sqlite_schema.c and pg_schema.c.
 */
#ifndef PEMN_STORAGE_DELTA_SCHEMA_H
#define PEMN_STORAGE_DELTA_SCHEMA_H

extern const char sq_schema_v9_delta[]; /* storage/sqlite_delta.c */
extern const char pg_schema_v9_delta[]; /* storage/pg_delta.c */

#endif
