/*
 * storage/sqlite_console.h — the schema of report history and rollout progress (migration
 * 4), for sqlite_schema.c's table.
 */
#ifndef PEMN_STORAGE_SQLITE_CONSOLE_H
#define PEMN_STORAGE_SQLITE_CONSOLE_H

extern const char sq_schema_v4_console[];

#endif
