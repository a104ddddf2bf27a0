/*
 * storage/sqlite_trust.h — the schema migration of the trust tables (sqlite_trust.c).
 */
#ifndef PEMN_STORAGE_SQLITE_TRUST_H
#define PEMN_STORAGE_SQLITE_TRUST_H

extern const char sq_schema_trust[];

#endif
