/*
 * storage/sqlite_metadata.h — the schema of the signed desired-state answers
 * (storage/store_metadata.h), for sqlite_schema.c's migration table.
 */
#ifndef PEMN_STORAGE_SQLITE_METADATA_H
#define PEMN_STORAGE_SQLITE_METADATA_H

#include "storage/sqlite_int.h"

extern const char sq_schema_metadata[];

#endif
