/*
 * tests/common/storefix.c — see storefix.h.
 */
#include "tests/common/storefix.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char storefix_db[600];
char storefix_dir[256];
static char pg_name[64];
static unsigned pg_serial;

bool storefix_pg(void)
{
    const char *h = getenv("PEMN_TEST_PG_HOST");
    return h && *h;
}

/* One statement on the cluster's maintenance database. */
static int pg_admin(const char *sql)
{
    char conn[400];
    snprintf(conn, sizeof conn, "host=%s user=postgres dbname=postgres",
             getenv("PEMN_TEST_PG_HOST"));
    PGconn *c = PQconnectdb(conn);
    int ok = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
        if (ok)
            fprintf(stderr, "storefix: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    } else {
        fprintf(stderr, "storefix: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return ok;
}

int storefix_setup(void **state)
{
    (void)state;
    snprintf(storefix_dir, sizeof storefix_dir, "/tmp/pemn-storefix-XXXXXX");
    if (!mkdtemp(storefix_dir))
        return -1;
    if (!storefix_pg()) {
        pg_name[0] = '\0';
        snprintf(storefix_db, sizeof storefix_db, "%s/t.db", storefix_dir);
        return 0;
    }
    snprintf(pg_name, sizeof pg_name, "sf_%ld_%u", (long)getpid(), pg_serial++);
    char sql[200];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s TEMPLATE pemn_tmpl", pg_name);
    if (pg_admin(sql))
        return -1;
    snprintf(storefix_db, sizeof storefix_db, "postgresql:///%s?host=%s&user=postgres", pg_name,
             getenv("PEMN_TEST_PG_HOST"));
    return 0;
}

int storefix_teardown(void **state)
{
    (void)state;
    if (pg_name[0]) {
        char sql[200];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", pg_name);
        pg_admin(sql);
        pg_name[0] = '\0';
    }
    char p[400];
    const char *suffix[] = {"t.db", "t.db-wal", "t.db-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", storefix_dir, suffix[i]);
        unlink(p);
    }
    rmdir(storefix_dir);
    return 0;
}

long long storefix_sql(const char *sqlite_sql, const char *pg_sql)
{
    long long v = -1;
    if (!storefix_pg()) {
        sqlite3 *db = NULL;
        sqlite3_stmt *s = NULL;
        if (sqlite3_open(storefix_db, &db) == SQLITE_OK &&
            sqlite3_prepare_v2(db, sqlite_sql, -1, &s, NULL) == SQLITE_OK) {
            int r = sqlite3_step(s);
            v = r == SQLITE_ROW ? sqlite3_column_int64(s, 0) : r == SQLITE_DONE ? 0 : -1;
        }
        sqlite3_finalize(s);
        sqlite3_close(db);
        return v;
    }
    PGconn *c = PQconnectdb(storefix_db);
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, pg_sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            v = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
        else if (PQresultStatus(r) == PGRES_COMMAND_OK)
            v = 0;
        PQclear(r);
    }
    PQfinish(c);
    return v;
}
