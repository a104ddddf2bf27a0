/*
 * storage/sqlite_oci.h — the OCI schema (migration 4), for sqlite_schema.c's table.
 */
#ifndef PEMN_STORAGE_SQLITE_OCI_H
#define PEMN_STORAGE_SQLITE_OCI_H

extern const char sq_schema_v4_oci[];

#endif
