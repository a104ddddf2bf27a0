/*
 * storage/oci_schema.h — the OCI schema (migration 6 of both backends), for the migration
 * tables of sqlite_schema.c and pg_schema.c.
 */
#ifndef PEMN_STORAGE_OCI_SCHEMA_H
#define PEMN_STORAGE_OCI_SCHEMA_H

extern const char sq_schema_v6_oci[]; /* storage/sqlite_oci.c */
extern const char pg_schema_v6_oci[]; /* storage/pg_oci.c */

#endif
