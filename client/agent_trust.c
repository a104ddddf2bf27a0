/*
 * client/agent_trust.c — the agent's rollback record and model pinning (both modes), and the
 * dispatch to root mode (client/agent_root.c). See client/agent_trust.h.
 */
#include "client/agent_trust.h"
#include "client/agent_root.h"

#include "proto/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pemn_rc agent_trust_refuse(struct pemn_agent *a, const char *reason, pemn_rc rc,
                           struct pemn_err *err, const char *fmt, ...)
{
    snprintf(a->trust->reason, sizeof a->trust->reason, "%s", reason);
    char msg[PEMN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return proto_err(err, rc, PEMN_NO_OFFSET, "%s", msg);
}

const char *agent_trust_reason(const struct pemn_agent *a)
{
    return a->trust ? a->trust->reason : "";
}

void agent_trust_clear_reason(struct pemn_agent *a)
{
    if (a->trust)
        a->trust->reason[0] = 0;
}

bool agent_trust_root_mode(const struct pemn_agent *a)
{
    return a->trust && a->trust->root;
}

pemn_rc agent_trust_open(struct pemn_agent *a, struct pemn_err *err)
{
    a->trust = calloc(1, sizeof *a->trust);
    if (!a->trust)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    bool found;
    pemn_rc rc = agent_trust_rec_load(a->dir, &a->trust->rec, &found, err);
    if (rc)
        return rc;
    if (a->opts.model && a->opts.model[0]) {
        if (strlen(a->opts.model) >= sizeof a->trust->rec.model)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "model name too long");
        /* an explicit --model is the operator's choice: it (re)pins the directory */
        snprintf(a->trust->rec.model, sizeof a->trust->rec.model, "%s", a->opts.model);
    }
    if (a->opts.root_file && (rc = agent_root_open(a, err)))
        return rc;
    return PEMN_OK;
}

pemn_rc agent_trust_sync(struct pemn_agent *a, struct pemn_err *err)
{
    struct agent_trust_rec *rec = &a->trust->rec;
    if (a->st.has_current) {
        pemn_rc rc = agent_trust_rec_raise(rec, a->st.current.model, a->st.current.release, err);
        if (rc)
            return rc;
        if (!rec->model[0])
            snprintf(rec->model, sizeof rec->model, "%s", a->st.current.model);
    }
    return agent_trust_rec_save(a->dir, rec, err);
}

void agent_trust_free(struct pemn_agent *a)
{
    if (!a->trust)
        return;
    agent_root_free(a);
    free(a->trust);
    a->trust = NULL;
}

pemn_rc agent_trust_check_pkg(struct pemn_agent *a, const pemn_pkg *pkg,
                              const struct pemn_pkg_info *info, struct pemn_err *err)
{
    const struct agent_trust_rec *rec = &a->trust->rec;
    if (rec->model[0] && strcmp(info->name, rec->model) != 0)
        return agent_trust_refuse(a, AGENT_R_WRONG_MODEL, PEMN_ECONFLICT, err,
                                  "package is model '%s'; this agent runs only '%s'", info->name,
                                  rec->model);
    (void)pkg;
    uint64_t floor = agent_trust_rec_release(rec, info->name);
    if (!a->opts.allow_downgrade && info->release < floor)
        return agent_trust_refuse(a, AGENT_R_ROLLBACK, PEMN_EROLLBACK, err,
                                  "release %llu is older than release %llu seen before for '%s' "
                                  "(trust.json); refusing a downgrade without --allow-downgrade",
                                  (unsigned long long)info->release, (unsigned long long)floor,
                                  info->name);
    return PEMN_OK;
}

pemn_rc agent_trust_note_install(struct pemn_agent *a, const struct pemn_pkg_info *info,
                                 struct pemn_err *err)
{
    struct agent_trust_rec *rec = &a->trust->rec;
    pemn_rc rc = agent_trust_rec_raise(rec, info->name, info->release, err);
    if (rc)
        return rc;
    if (!rec->model[0])
        snprintf(rec->model, sizeof rec->model, "%s", info->name);
    return agent_trust_rec_save(a->dir, rec, err);
}

pemn_rc agent_trust_update_root(struct pemn_agent *a, struct pemn_err *err)
{
    return a->trust->root ? agent_root_update(a, err) : PEMN_OK;
}

pemn_rc agent_trust_desired(struct pemn_agent *a, const char *body, size_t len, json_t **out,
                            struct pemn_err *err)
{
    *out = NULL;
    if (a->trust->root)
        return agent_root_check_desired(a, body, len, out, err);
    /* simple mode has no metadata key to check a signed answer with: it reads the content
     * (the package signature, model pin and release record still protect it) */
    json_t *o = json_loadb(body, len, 0, NULL);
    json_t *sig = json_object_get(o, "signed");
    if (json_is_object(sig) && json_object_get(o, "signatures")) {
        json_incref(sig);
        json_decref(o);
        o = sig;
    }
    *out = o;
    return PEMN_OK;
}

pemn_rc agent_trust_check_announced(struct pemn_agent *a, const char *model, uint64_t release,
                                    struct pemn_err *err)
{
    const struct agent_trust_rec *rec = &a->trust->rec;
    if (rec->model[0] && strcmp(model, rec->model) != 0)
        return agent_trust_refuse(a, AGENT_R_WRONG_MODEL, PEMN_ECONFLICT, err,
                                  "the server wants model '%s'; this agent runs only '%s'", model,
                                  rec->model);
    uint64_t floor = agent_trust_rec_release(rec, model);
    if (!a->opts.allow_downgrade && release < floor)
        return agent_trust_refuse(a, AGENT_R_ROLLBACK, PEMN_EROLLBACK, err,
                                  "release %llu is older than release %llu seen before for '%s' "
                                  "(trust.json); refusing a downgrade without --allow-downgrade",
                                  (unsigned long long)release, (unsigned long long)floor, model);
    return PEMN_OK;
}

pemn_rc agent_trust_check_fresh(struct pemn_agent *a, struct pemn_err *err)
{
    return a->trust->root ? agent_root_check_fresh(a, err) : PEMN_OK;
}

pemn_rc agent_trust_verify_installed(const struct pemn_agent *a, const pemn_pkg *pkg,
                                     struct pemn_err *err)
{
    /* root mode: the trust decision was made (and recorded) at install time; a later root
     * that revokes the signer stops new installs, it does not take the running model away */
    if (a->trust && a->trust->root)
        return pemn_pkg_verify_signatures(pkg, err);
    return pemn_pkg_verify(pkg, a->opts.trusted, err);
}

pemn_rc agent_trust_verify_new(struct pemn_agent *a, const pemn_pkg *pkg, struct pemn_err *err)
{
    if (a->trust->root)
        return agent_root_check_pkg(a, pkg, err);
    return pemn_pkg_verify(pkg, a->opts.trusted, err);
}

bool agent_trust_root_refusal_new(struct pemn_agent *a, const char *msg)
{
    bool fresh = strcmp(a->trust->root_refusal, msg) != 0;
    snprintf(a->trust->root_refusal, sizeof a->trust->root_refusal, "%s", msg);
    return fresh;
}
