/*
 * storage/pg_conn.c — the PostgreSQL backend's connections, statements, transactions with
 * bounded retries, the audit helper, open/close and the operation table (pg_int.h).
 */
#include "storage/store_metadata.h"
#include "storage/pg_int.h"
#include "storage/store_oci.h"
#include "storage/store_console.h"
#include "storage/store_delta.h"
#include "storage/store_devguard.h"
#include "storage/store_verify.h"
#include "storage/store_trust.h"

#include "proto/err.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- parameters and columns ------------------------------------------------------------ */
void pg_p_init(struct pg_params *p)
{
    p->n = 0;
}

static void p_add(struct pg_params *p, const char *v, int len, int fmt)
{
    if (p->n >= PG_PARAMS_MAX)
        return; /* a programming error; the statement then fails on the count */
    p->v[p->n] = v;
    p->len[p->n] = len;
    p->fmt[p->n] = fmt;
    p->n++;
}

void pg_p_text(struct pg_params *p, const char *s)
{
    p_add(p, s ? s : "", 0, 0);
}

void pg_p_i64(struct pg_params *p, int64_t v)
{
    if (p->n >= PG_PARAMS_MAX)
        return;
    snprintf(p->num[p->n], sizeof p->num[p->n], "%" PRId64, v);
    p_add(p, p->num[p->n], 0, 0);
}

void pg_p_f64(struct pg_params *p, double v)
{
    if (p->n >= PG_PARAMS_MAX)
        return;
    snprintf(p->num[p->n], sizeof p->num[p->n], "%.17g", v);
    p_add(p, p->num[p->n], 0, 0);
}

void pg_p_bin(struct pg_params *p, const void *data, size_t len)
{
    static const char empty[1];
    p_add(p, len ? (const char *)data : empty, (int)len, 1);
}

void pg_text(const PGresult *r, int row, int col, char *dst, size_t cap)
{
    const char *t = PQgetvalue(r, row, col);
    size_t n = (size_t)PQgetlength(r, row, col);
    if (!t || PQgetisnull(r, row, col))
        n = 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, t, n);
    dst[n] = '\0';
}

int64_t pg_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

double pg_f64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    return strtod(PQgetvalue(r, row, col), NULL);
}

/* ---- failures -------------------------------------------------------------------------- */
/* Classifies a failure: which SQLSTATEs may be retried, which mean the connection is gone. */
static void classify(struct pg_conn *c, const char *state)
{
    if (PQstatus(c->db) != CONNECTION_OK) {
        c->broken = c->retry = true;
        return;
    }
    if (!state)
        return;
    if (!strcmp(state, "40001") || !strcmp(state, "40P01"))
        c->retry = true;
    /* 08xxx connection exceptions, 57P01..03 shutdown / cannot connect now */
    if (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3))
        c->broken = c->retry = true;
}

static pemn_rc fail_msg(struct pg_conn *c, const char *what, const char *msg, struct pemn_err *err)
{
    char m[200];
    snprintf(m, sizeof m, "%s", msg && *msg ? msg : (c ? PQerrorMessage(c->db) : "no connection"));
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
        m[--n] = '\0';
    return proto_err(err, PEMN_EDB, PEMN_NO_OFFSET, "%.60s: %s", what, m);
}

/* ---- statements ------------------------------------------------------------------------ */
static int stmt_index(struct pg_conn *c, const char *sql, char state[6], struct pemn_err *err)
{
    for (int i = 0; i < c->n_stmt; i++)
        if (c->stmt_sql[i] == sql)
            return i;
    if (c->n_stmt >= PG_STMT_MAX)
        return -2; /* no room: run unprepared */
    char name[16];
    snprintf(name, sizeof name, "s%d", c->n_stmt);
    PGresult *r = PQprepare(c->db, name, sql, 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state)
            snprintf(state, 6, "%s", st ? st : "");
        classify(c, st);
        fail_msg(c, "prepare", PQresultErrorMessage(r), err);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    c->stmt_sql[c->n_stmt] = sql;
    return c->n_stmt++;
}

PGresult *pg_exec(struct pg_conn *c, const char *sql, const struct pg_params *p, bool binary_out,
                  const char *what, char state[6], struct pemn_err *err)
{
    if (state)
        state[0] = '\0';
    int i = stmt_index(c, sql, state, err);
    if (i == -1)
        return NULL;
    int n = p ? p->n : 0;
    PGresult *r;
    if (i >= 0) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        r = PQexecPrepared(c->db, name, n, p ? p->v : NULL, p ? p->len : NULL, p ? p->fmt : NULL,
                           binary_out ? 1 : 0);
    } else {
        r = PQexecParams(c->db, sql, n, NULL, p ? p->v : NULL, p ? p->len : NULL, p ? p->fmt : NULL,
                         binary_out ? 1 : 0);
    }
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
        return r;
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state)
        snprintf(state, 6, "%s", st ? st : "");
    classify(c, st);
    fail_msg(c, what, r ? PQresultErrorMessage(r) : NULL, err);
    PQclear(r);
    return NULL;
}

pemn_rc pg_cmd(struct pg_conn *c, const char *sql, const struct pg_params *p, const char *what,
               struct pemn_err *err)
{
    PGresult *r = pg_exec(c, sql, p, false, what, NULL, err);
    if (!r)
        return PEMN_EDB;
    PQclear(r);
    return PEMN_OK;
}

pemn_rc pg_simple(struct pg_conn *c, const char *sql, struct pemn_err *err)
{
    PGresult *r = PQexec(c->db, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        PQclear(r);
        return PEMN_OK;
    }
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    classify(c, st);
    pemn_rc rc = fail_msg(c, sql, r ? PQresultErrorMessage(r) : NULL, err);
    PQclear(r);
    return rc;
}

pemn_rc pg_audit(struct pg_conn *c, const char *actor, const char *action, const char *target,
                 const char *detail, struct pemn_err *err)
{
    static const char sql[] = "INSERT INTO audit(at, actor, action, target, detail)"
                              " VALUES(" PG_NOW ", $1, $2, $3, $4)";
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, actor);
    pg_p_text(&p, action);
    pg_p_text(&p, target);
    pg_p_text(&p, detail);
    return pg_cmd(c, sql, &p, "audit", err);
}

void pg_hook(struct store *st, const char *point)
{
    if (store_test_hook)
        store_test_hook(st, point);
}

/* ---- connections ----------------------------------------------------------------------- */
static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* the library never prints; notices (e.g. "already exists") are noise */
}

static void conn_close(struct pg_conn *c)
{
    if (!c)
        return;
    PQfinish(c->db);
    free(c);
}

static pemn_rc conn_open(struct pg_store *q, struct pg_conn **out, struct pemn_err *err)
{
    struct pg_conn *c = calloc(1, sizeof *c);
    if (!c)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    const char *const keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *const vals[] = {q->conninfo, "pemnd", "5", NULL};
    c->db = PQconnectdbParams(keys, vals, 1);
    if (!c->db || PQstatus(c->db) != CONNECTION_OK) {
        pemn_rc rc = fail_msg(c->db ? c : NULL, "cannot connect to PostgreSQL",
                              c->db ? PQerrorMessage(c->db) : "out of memory", err);
        conn_close(c);
        return rc;
    }
    PQsetNoticeProcessor(c->db, quiet_notices, NULL);
    pemn_rc rc = pg_simple(c,
                           "SET default_transaction_isolation = 'read committed';"
                           " SET idle_in_transaction_session_timeout = '60s';"
                           " SET lock_timeout = '30s'",
                           err);
    if (rc) {
        conn_close(c);
        return rc;
    }
    *out = c;
    return PEMN_OK;
}

pemn_rc pg_acquire(struct store *st, struct pg_conn **out, struct pemn_err *err)
{
    struct pg_store *q = st->be;
    pthread_mutex_lock(&q->mu);
    struct pg_conn *c = q->idle;
    if (c) {
        q->idle = c->next;
        q->n_idle--;
    }
    pthread_mutex_unlock(&q->mu);
    if (c) {
        c->next = NULL;
        c->retry = c->broken = false;
        *out = c;
        return PEMN_OK;
    }
    return conn_open(q, out, err);
}

/* After one connection broke, the idle ones very likely broke with it (a restart or a
 * failover): drop them all, new ones are opened on demand. */
static void drop_idle(struct pg_store *q)
{
    pthread_mutex_lock(&q->mu);
    struct pg_conn *c = q->idle;
    q->idle = NULL;
    q->n_idle = 0;
    pthread_mutex_unlock(&q->mu);
    while (c) {
        struct pg_conn *next = c->next;
        conn_close(c);
        c = next;
    }
}

void pg_release(struct store *st, struct pg_conn *c)
{
    if (!c)
        return;
    struct pg_store *q = st->be;
    if (!c->broken && PQstatus(c->db) == CONNECTION_OK &&
        PQtransactionStatus(c->db) != PQTRANS_IDLE)
        (void)pg_simple(c, "ROLLBACK", NULL);
    if (c->broken || PQstatus(c->db) != CONNECTION_OK ||
        PQtransactionStatus(c->db) != PQTRANS_IDLE) {
        conn_close(c);
        drop_idle(q);
        return;
    }
    pthread_mutex_lock(&q->mu);
    if (q->n_idle < PG_IDLE_MAX) {
        c->next = q->idle;
        q->idle = c;
        q->n_idle++;
        c = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    conn_close(c);
}

/* ---- transactions ---------------------------------------------------------------------- */
static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pause_before_retry(int attempt)
{
    /* 10 ms doubling up to 1 s, with jitter so racing replicas do not retry in step */
    long ms = 10L << (attempt < 7 ? attempt : 7);
    if (ms > 1000)
        ms = 1000;
    ms = ms / 2 + (long)randombytes_uniform((uint32_t)(ms / 2 + 1));
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

pemn_rc pg_run(struct store *st, enum pg_mode mode, pg_body body, void *ctx, struct pemn_err *err)
{
    double deadline = mono_now() + PG_RETRY_SECONDS;
    int conflicts = 0;
    for (int attempt = 0;; attempt++) {
        struct pg_conn *c = NULL;
        pemn_rc rc = pg_acquire(st, &c, err);
        if (rc) {
            /* cannot connect (PostgreSQL restarting, failing over): wait and try again */
            if (rc == PEMN_EDB && mono_now() < deadline) {
                pause_before_retry(attempt);
                continue;
            }
            return rc;
        }
        bool commit_sent = false, read_only = mode != PG_WRITE;
        if (mode != PG_SINGLE)
            rc = pg_simple(
                c, mode == PG_READ ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN",
                err);
        if (!rc)
            rc = body(c, ctx, err);
        if (!rc && mode != PG_SINGLE) {
            commit_sent = true;
            rc = pg_simple(c, "COMMIT", err);
        }
        bool retry = rc && c->retry;
        bool broken = c->broken;
        pg_release(st, c); /* rolls back an open transaction */
        if (!rc)
            return PEMN_OK;
        if (retry && broken && commit_sent && !read_only)
            return proto_err(err, PEMN_EDB, PEMN_NO_OFFSET,
                             "the connection to PostgreSQL broke during COMMIT: the write may or "
                             "may not have been stored; retry it");
        if (!retry)
            return rc;
        if (!broken && ++conflicts >= PG_RETRIES)
            return rc; /* serialization failures / deadlocks: bounded */
        if (mono_now() >= deadline)
            return rc;
        pause_before_retry(broken ? attempt : conflicts);
    }
}

/* ---- open / close ---------------------------------------------------------------------- */
static void pg_close(struct store *st)
{
    struct pg_store *q = st->be;
    if (!q)
        return;
    pg_touch_stop(st);
    drop_idle(q);
    pthread_mutex_destroy(&q->mu);
    if (q->conninfo)
        sodium_memzero(q->conninfo, strlen(q->conninfo));
    free(q->conninfo);
    free(q);
    st->be = NULL;
}

static pemn_rc pg_open(struct store *st, const char *conninfo, struct pemn_err *err)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        pemn_rc rc = proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad PostgreSQL URI: %s",
                               perr ? perr : "out of memory");
        PQfreemem(perr);
        return rc;
    }
    bool has_password = false;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val && o->val[0])
            has_password = true;
    PQconninfoFree(opts);
    if (has_password)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "the PostgreSQL URI holds a password: command lines are visible to "
                         "every user; put it in a password file (PGPASSFILE, ~/.pgpass) or a "
                         "service file (PGSERVICEFILE) instead");
    struct pg_store *q = calloc(1, sizeof *q);
    if (!q || !(q->conninfo = strdup(conninfo))) {
        free(q);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    pthread_mutex_init(&q->mu, NULL);
    st->be = q;
    struct pg_conn *c = NULL;
    pemn_rc rc = pg_acquire(st, &c, err); /* fail fast at start when nothing answers */
    pg_release(st, c);
    if (!rc)
        rc = pg_migrate(st, &st->schema, err);
    if (!rc)
        rc = pg_touch_start(st, err);
    return rc;
}

const struct store_ops pg_ops = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .schema_latest = pg_schema_latest,
    .put_package = pg_put_package,
    .get_version = pg_get_version,
    .get_latest = pg_get_latest,
    .list_models = pg_list_models,
    .list_versions = pg_list_versions,
    .tag_set = pg_tag_set,
    .tag_get = pg_tag_get,
    .tag_delete = pg_tag_delete,
    .list_tags = pg_list_tags,
    .blob_find = pg_blob_find,
    .blob_read = pg_blob_read,
    .key_add = pg_key_add,
    .key_remove = pg_key_remove,
    .key_list = pg_key_list,
    .token_insert = pg_token_insert,
    .token_revoke = pg_token_revoke,
    .token_find = pg_token_find,
    .token_list = pg_token_list,
    .audit_list = pg_audit_list,
    .stats = pg_stats,
    .fleet = &pg_fleet_ops,
    .oci = &pg_oci_ops,
    .console = &pg_console_ops,
    .verify = &pg_verify_ops,
    .devguard = &pg_devguard_ops,
    .trust = &pg_trust_ops,
    .delta = &pg_delta_ops,
    .metadata = &pg_metadata_ops,
};
