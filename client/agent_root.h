/*
 * client/agent_root.h — root mode of the agent (pemn agent --root): the pinned root of trust
 * and its chain of versions, signed desired state, publisher rules (docs/AGENT.md, "Trust";
 * docs/TRUST.md). Internal to client/agent_*.c; called through client/agent_trust.h.
 */
#ifndef PEMN_CLIENT_AGENT_ROOT_H
#define PEMN_CLIENT_AGENT_ROOT_H

#include "client/agent_trust.h"

/* Loads DIR/root.json, or opts.root_file when DIR has none (then stored there). In root mode
 * opts.trusted is not used: the root decides (packages: pemn_root_check_package). */
pemn_rc agent_root_open(struct pemn_agent *a, struct pemn_err *err);
void agent_root_free(struct pemn_agent *a);
pemn_rc agent_root_update(struct pemn_agent *a, struct pemn_err *err);
pemn_rc agent_root_check_desired(struct pemn_agent *a, const char *body, size_t len, json_t **out,
                                 struct pemn_err *err);
pemn_rc agent_root_check_fresh(struct pemn_agent *a, struct pemn_err *err);
pemn_rc agent_root_check_pkg(struct pemn_agent *a, const pemn_pkg *pkg, struct pemn_err *err);

/* GET url (client/agent_net.c): body up to max bytes (malloc'ed, NUL-terminated), status. */
pemn_rc agent_http_get(struct pemn_agent *a, const char *url, size_t max, long *status, char **body,
                       size_t *len, struct pemn_err *err);

#endif
