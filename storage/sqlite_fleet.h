/*
 * storage/sqlite_fleet.h — the fleets schema (migration 2), for sqlite_schema.c's table, and
 * the fleet side of a tag move, for sqlite_versions.c.
 */
#ifndef PEMN_STORAGE_SQLITE_FLEET_H
#define PEMN_STORAGE_SQLITE_FLEET_H

#include "storage/sqlite_int.h"

extern const char sq_schema_v2_fleets[];

/* Inside the caller's write transaction on c, after tag `tag` of v->model was set to v: every
 * fleet whose target follows that model+tag and is not already v starts a new rollout to v
 * with its own percentage and abort rule (as store_fleet_put would), one "fleet.follow"
 * audit row each. *moved: how many fleets. */
pemn_rc sq_fleet_follow_tag(struct sq_conn *c, const struct store_version *v, const char *tag,
                            const char *actor, unsigned *moved, struct pemn_err *err);

#endif
