/*
 * tests/common/storefix.h — one storage contract test, every backend.
 *
 * A contract test opens its store with store_open(storefix_db, ...) after
 * storefix_setup() and cleans up with storefix_teardown(). By default storefix_db is a
 * SQLite file in a fresh temporary directory. When PEMN_TEST_PG_HOST names the socket
 * directory of a throwaway PostgreSQL cluster (tests/pg/cluster.sh; tests/run.sh starts one
 * for the PostgreSQL leg of make test), it is a fresh database created from the cluster's
 * template, dropped again at teardown.
 */
#ifndef PEMN_TESTS_STOREFIX_H
#define PEMN_TESTS_STOREFIX_H

#include <stdbool.h>

extern char storefix_db[600];  /* the --db string for the current test */
extern char storefix_dir[256]; /* a fresh temporary directory (both backends) */

/* cmocka setup/teardown: a fresh, empty database per test. */
int storefix_setup(void **state);
int storefix_teardown(void **state);
/* True on the PostgreSQL leg. */
bool storefix_pg(void);
/* Runs one statement on the test database, outside the store: sqlite_sql on SQLite, pg_sql
 * on PostgreSQL. Returns the first column of the first row as an integer, 0 when there is
 * no row, -1 on failure. */
long long storefix_sql(const char *sqlite_sql, const char *pg_sql);

#endif
