/*
 * storage/pg_devguard.c — device registration records per token on PostgreSQL
 * (store_devguard.h). Table device_registrations (schema v5). A registration takes a
 * transaction-level advisory lock on the token (PG_LOCK_DEVGUARD, hashtext(token)) before
 * it counts, so concurrent registrations of one token never exceed its limits; the lock is
 * taken before any row lock and is not part of the row-lock order of pg_int.h.
 */
#include "storage/pg_int.h"
#include "storage/store_devguard.h"

#include "proto/err.h"

#include <stdio.h>
#include <string.h>

#define PG_LOCK_DEVGUARD 0x70656d6e /* "pemn": the first key of the two-key advisory lock */

struct dg_ctx {
    const char *token, *device;
    char *fleet;
    uint64_t max_total, max_minute, total, recent;
};

static pemn_rc fleet_of_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql[] =
        "SELECT f.name FROM devices d JOIN fleets f ON f.id = d.fleet_id WHERE d.id = $1";
    struct dg_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->device);
    PGresult *r = pg_exec(c, sql, &p, false, "looking up a device", NULL, err);
    if (!r)
        return PEMN_EDB;
    pemn_rc rc = PEMN_OK;
    if (PQntuples(r) == 1)
        pg_text(r, 0, 0, x->fleet, STORE_LABEL_MAX);
    else
        rc = proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "device %s is in no fleet", x->device);
    PQclear(r);
    return rc;
}

static pemn_rc pg_fleet_of(struct store *st, const char *device, char fleet_out[STORE_LABEL_MAX],
                           struct pemn_err *err)
{
    struct dg_ctx x = {.device = device, .fleet = fleet_out};
    return pg_run(st, PG_SINGLE, fleet_of_body, &x, err);
}

static pemn_rc count_on(struct pg_conn *c, struct dg_ctx *x, struct pemn_err *err)
{
    static const char sql[] = "SELECT count(*), count(*) FILTER (WHERE at > " PG_NOW " - 60)"
                              " FROM device_registrations WHERE token = $1";
    struct pg_params p;
    pg_p_init(&p);
    pg_p_text(&p, x->token);
    PGresult *r = pg_exec(c, sql, &p, false, "counting device registrations", NULL, err);
    if (!r)
        return PEMN_EDB;
    x->total = (uint64_t)pg_i64(r, 0, 0);
    x->recent = (uint64_t)pg_i64(r, 0, 1);
    PQclear(r);
    return PEMN_OK;
}

static pemn_rc register_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    static const char sql_lock[] = "SELECT pg_advisory_xact_lock($1, hashtext($2))";
    static const char sql_has[] =
        "SELECT 1 FROM device_registrations WHERE token = $1 AND device = $2";
    static const char sql_ins[] = "INSERT INTO device_registrations(token, device, at)"
                                  " VALUES($1, $2, " PG_NOW ") ON CONFLICT DO NOTHING";
    struct dg_ctx *x = vctx;
    struct pg_params p;
    pg_p_init(&p);
    pg_p_i64(&p, PG_LOCK_DEVGUARD);
    pg_p_text(&p, x->token);
    pemn_rc rc = pg_cmd(c, sql_lock, &p, "locking the token's registrations", err);
    if (rc)
        return rc;
    pg_p_init(&p);
    pg_p_text(&p, x->token);
    pg_p_text(&p, x->device);
    PGresult *r = pg_exec(c, sql_has, &p, false, "looking up a registration", NULL, err);
    if (!r)
        return PEMN_EDB;
    bool known = PQntuples(r) > 0;
    PQclear(r);
    if (known)
        return PEMN_OK;
    if ((rc = count_on(c, x, err)))
        return rc;
    if (x->max_total && x->total >= x->max_total)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                         "token '%s' has registered %llu devices, its limit", x->token,
                         (unsigned long long)x->total);
    if (x->max_minute && x->recent >= x->max_minute)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                         "token '%s' registered %llu devices in the last minute, its limit",
                         x->token, (unsigned long long)x->recent);
    return pg_cmd(c, sql_ins, &p, "recording a registration", err);
}

static pemn_rc pg_register(struct store *st, const char *token, const char *device,
                           uint64_t max_total, uint64_t max_per_minute, struct pemn_err *err)
{
    struct dg_ctx x = {
        .token = token, .device = device, .max_total = max_total, .max_minute = max_per_minute};
    return pg_run(st, PG_WRITE, register_body, &x, err);
}

static pemn_rc count_body(struct pg_conn *c, void *vctx, struct pemn_err *err)
{
    return count_on(c, vctx, err);
}

static pemn_rc pg_count(struct store *st, const char *token, uint64_t *total, uint64_t *last_minute,
                        struct pemn_err *err)
{
    struct dg_ctx x = {.token = token};
    pemn_rc rc = pg_run(st, PG_SINGLE, count_body, &x, err);
    if (!rc) {
        *total = x.total;
        *last_minute = x.recent;
    }
    return rc;
}

const struct store_devguard_ops pg_devguard_ops = {
    .fleet_of = pg_fleet_of, .reg = pg_register, .count = pg_count};
