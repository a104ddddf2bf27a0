/*
 * storage/sqlite_fleet.h — the fleets schema (migration 2), for sqlite_schema.c's table.
 */
#ifndef PEMN_STORAGE_SQLITE_FLEET_H
#define PEMN_STORAGE_SQLITE_FLEET_H

extern const char sq_schema_v2_fleets[];

#endif
