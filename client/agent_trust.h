/*
 * client/agent_trust.h — what the agent has seen and must never forget (rollback and freeze
 * protection), and the trust checks of root mode (docs/AGENT.md, "Trust"). Internal to
 * client/agent_*.c.
 *
 * DIR/trust.json (format 1), kept apart from the installed package and from state.json so
 * that a new root, new --trust keys, a restart or a damaged install never reset it:
 *   {"format": 1,
 *    "model": "net",                    the one model this directory runs ("" = none yet)
 *    "releases": {"net": 7, ...},       highest release installed, per model
 *    "metadata_version": 12,            highest signed desired-state version accepted
 *    "metadata_hash": "<64 hex>",       SHA-256 of that desired state's body
 *    "metadata_expires": 1700000000,    its expiry (Unix seconds)
 *    "metadata_keys": "<64 hex>",       hash of the root's metadata key set it was signed under
 *    "root_version": 3}                 version of DIR/root.json when written
 * DIR/root.json: the current trusted root, as published (root mode only).
 * Both are written crash-safely: NAME.tmp created O_EXCL|O_NOFOLLOW, written, fsync'ed, renamed
 * over NAME, directory fsync'ed. Numbers only ever rise (a damaged trust.json is an error, not
 * a reset: the agent refuses to start rather than forget).
 */
#ifndef PEMN_CLIENT_AGENT_TRUST_H
#define PEMN_CLIENT_AGENT_TRUST_H

#include "client/agent_int.h"

#include <jansson.h>
#include <pemn/pkg.h>

#define AGENT_TRUST_MODELS_MAX 256
#define AGENT_TRUST_FILE_MAX (256u * 1024u)
#define AGENT_ROOT_MAX (1024u * 1024u) /* bytes of one root document */
#define AGENT_ROOT_WALK_MAX 1024u      /* root versions fetched in one cycle */

/* Refusal reasons (reported to the server and printed). */
#define AGENT_R_META_EXPIRED "metadata-expired"
#define AGENT_R_META_REPLAYED "metadata-replayed"
#define AGENT_R_META_UNTRUSTED "metadata-untrusted"
#define AGENT_R_META_WRONG_TARGET "metadata-wrong-device"
#define AGENT_R_WRONG_MODEL "wrong-model"
#define AGENT_R_SIGNER_REVOKED "signer-revoked"
#define AGENT_R_SIGNER_UNTRUSTED "signer-untrusted"
#define AGENT_R_ROOT_INVALID "root-invalid"
#define AGENT_R_ROOT_EXPIRED "root-expired"
#define AGENT_R_ROLLBACK "rollback-refused"

struct agent_trust_rec {
    char model[129];
    uint64_t meta_version;
    char meta_hash[65];
    int64_t meta_expires;
    char meta_keys[65];
    uint64_t root_version;
    size_t n_rel;
    struct {
        char model[129];
        uint64_t release;
    } rel[AGENT_TRUST_MODELS_MAX];
};

/* The agent's trust state (a->trust). */
struct agent_root; /* root mode: client/agent_root.c */
struct agent_trust {
    struct agent_trust_rec rec;
    char reason[32];                     /* of the last refusal, "" when none */
    char root_refusal[PEMN_ERR_MSG_MAX]; /* the last cycle's root refusal, "" none */
    struct agent_root *root;             /* NULL in simple (--trust) mode */
};

/* Loads DIR/trust.json (and in root mode DIR/root.json, or opts.root_file when DIR has none)
 * before recovery. PEMN_ECORRUPT
 * when trust.json or root.json exists but is damaged (never silently reset). */
pemn_rc agent_trust_open(struct pemn_agent *a, struct pemn_err *err);
/* After recovery: raises the record to what DIR/current holds (an agent directory from before
 * trust.json, or a crash between the install and the record), pins the model, saves. */
pemn_rc agent_trust_sync(struct pemn_agent *a, struct pemn_err *err);
void agent_trust_free(struct pemn_agent *a);

/* The reason of the last trust refusal ("" = none; cleared by agent_trust_clear_reason). */
const char *agent_trust_reason(const struct pemn_agent *a);
void agent_trust_clear_reason(struct pemn_agent *a);

/* Before installing a verified package: right model (--model or the pinned one), release not
 * below the highest seen for the model (unless allow_downgrade). Sets the reason on refusal. */
pemn_rc agent_trust_check_pkg(struct pemn_agent *a, const pemn_pkg *pkg,
                              const struct pemn_pkg_info *info, struct pemn_err *err);
/* A package about to be installed: simple mode, signed by a --trust key (pemn_pkg_verify);
 * root mode, digest and every signature valid, enough publishers the root allows for its
 * model, none revoked (signer-revoked / signer-untrusted). */
pemn_rc agent_trust_verify_new(struct pemn_agent *a, const pemn_pkg *pkg, struct pemn_err *err);
/* Integrity of an installed version (recovery): simple mode, signed by a --trust key; root
 * mode, every signature valid (trust was decided when it was installed). */
pemn_rc agent_trust_verify_installed(const struct pemn_agent *a, const pemn_pkg *pkg,
                                     struct pemn_err *err);
/* After an install: records the release and pins the model (crash-safe save). */
pemn_rc agent_trust_note_install(struct pemn_agent *a, const struct pemn_pkg_info *info,
                                 struct pemn_err *err);

/* Root mode only (no-ops returning PEMN_OK otherwise). Start of a cycle: walks the root
 * chain on the server from the current version (GET /v1/root/{N+1} until 404), checks each
 * link, stores the newest; then refuses (root-expired) when the current root is expired. */
pemn_rc agent_trust_update_root(struct pemn_agent *a, struct pemn_err *err);
/* The desired-state body as JSON (*out new, NULL when it does not parse: the caller says
 * so). Root mode: only the signed fields, after agent_root_check_desired. */
pemn_rc agent_trust_desired(struct pemn_agent *a, const char *body, size_t len, json_t **out,
                            struct pemn_err *err);
/* Before downloading what the server announces: right model, release not below the record
 * (the verified manifest is checked again after the download). */
pemn_rc agent_trust_check_announced(struct pemn_agent *a, const char *model, uint64_t release,
                                    struct pemn_err *err);
/* A 304 answer: the desired state acted on must still be unexpired (freeze attack). */
pemn_rc agent_trust_check_fresh(struct pemn_agent *a, struct pemn_err *err);
/* Sets the refusal reason and fills err (rc returned). */
pemn_rc agent_trust_refuse(struct pemn_agent *a, const char *reason, pemn_rc rc,
                           struct pemn_err *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Remembers msg as this cycle's root refusal ("" = none); true when it differs from the
 * last cycle's (so it is reported once, not every cycle). */
bool agent_trust_root_refusal_new(struct pemn_agent *a, const char *msg);
/* True in root mode. */
bool agent_trust_root_mode(const struct pemn_agent *a);

/* ---- the record file (client/agent_trust_file.c) --------------------------------------- */
/* Loads dir/trust.json into *rec; *found false (rec zeroed) when absent. PEMN_ECORRUPT. */
pemn_rc agent_trust_rec_load(const char *dir, struct agent_trust_rec *rec, bool *found,
                             struct pemn_err *err);
pemn_rc agent_trust_rec_save(const char *dir, const struct agent_trust_rec *rec,
                             struct pemn_err *err);
/* Highest release recorded for model (0 when none). */
uint64_t agent_trust_rec_release(const struct agent_trust_rec *rec, const char *model);
/* Raises model's record to release. PEMN_ETOOBIG when the table is full. */
pemn_rc agent_trust_rec_raise(struct agent_trust_rec *rec, const char *model, uint64_t release,
                              struct pemn_err *err);
/* Writes dir/name crash-safely (tmp O_EXCL|O_NOFOLLOW, fsync, rename, fsync dir). */
pemn_rc agent_trust_write(const char *dir, const char *name, const void *data, size_t len,
                          struct pemn_err *err);
/* Reads dir/name (O_NOFOLLOW, regular file, at most max bytes). PEMN_ENOTFOUND if absent. */
pemn_rc agent_trust_read(const char *dir, const char *name, size_t max, char **out, size_t *len,
                         struct pemn_err *err);
/* The same for a path. */
pemn_rc agent_trust_read_path(const char *path, size_t max, char **out, size_t *len,
                              struct pemn_err *err);

#endif
