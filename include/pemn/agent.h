/*
 * pemn/agent.h — the fleet agent: keeps one device on the model its fleet wants, installing
 * packages atomically with rollback protection.
 *
 * Agent directory (DIR) layout:
 *   DIR/state.json                 what is installed (written: tmp + fsync + rename + fsync DIR)
 *   DIR/current -> versions/<hex>  symlink to the running version; DIR/current/model.pemn is
 *                                  always a whole package that verifies against the pinned keys
 *   DIR/versions/<hex>/model.pemn  one directory per installed package, <hex> = the 64 hex
 *   DIR/versions/<hex>/model.safetensors   digits of its SHA-256; safetensors only with expand
 *   DIR/versions/<hex>.partial/    a version being written (removed by recovery)
 *   DIR/current.tmp                the new link before it is renamed over DIR/current
 *   DIR/download/                  partial downloads (resumed by the next cycle)
 *   DIR/.lock                      flock held by the one agent that owns DIR
 *
 * Install order (each step a possible crash point, see pemn_agent_step): verify in memory;
 * write versions/<hex>.partial/model.pemn (+ model.safetensors), fsync the files and the
 * directory; rename it to versions/<hex>, fsync versions/; create current.tmp, rename it over
 * current, fsync DIR; rewrite state.json; remove versions other than current and previous.
 * A crash at any point leaves DIR/current on either the old or the new version, never a mix;
 * pemn_agent_new repairs the rest (recovery: removes leftovers, re-verifies DIR/current, falls
 * back to the previous version if the current one no longer verifies, rewrites state.json
 * from what DIR/current really holds).
 *
 * Rollback protection: a package whose manifest release is lower than the installed one is
 * refused (PEMN_EROLLBACK), and so is a different package with the same release, unless the
 * agent was created with allow_downgrade. The release compared is the verified manifest's,
 * never a number the server claims.
 *
 * Trust (docs/AGENT.md "Trust", docs/TRUST.md): DIR/trust.json keeps, apart from the
 * installed package, the highest release installed per model, the one model DIR runs
 * (opts.model, else the first installed), and in root mode the highest signed desired-state
 * version accepted; a release below the recorded one is refused even when DIR/current is
 * gone or the keys changed. Root mode (opts.root_file): DIR/root.json is the current root,
 * followed along the chain on the server each cycle; desired state must be signed by one of
 * its metadata keys, for this fleet and device, fresh and not older than one seen; packages
 * must be signed by publishers the root allows for the model. Refusals carry a reason
 * (pemn_agent_cycle.reason, the event's reason, the status report): "metadata-expired",
 * "metadata-replayed", "metadata-untrusted", "metadata-wrong-device", "wrong-model",
 * "signer-revoked", "signer-untrusted", "root-invalid", "root-expired", "rollback-refused".
 *
 * Thread-safety: an agent is used by one thread at a time. Two agents (in one process or
 * in two) cannot own the same DIR: the second gets PEMN_ECONFLICT.
 */
#ifndef PEMN_AGENT_H
#define PEMN_AGENT_H

#include <pemn/common.h>
#include <pemn/key.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pemn_agent pemn_agent;

/* ---- install steps (crash points) ------------------------------------------------------ */
typedef enum pemn_agent_step {
    PEMN_AGENT_STEP_VERSION_DIR = 0, /* versions/<hex>.partial created */
    PEMN_AGENT_STEP_PACKAGE,         /* model.pemn written */
    PEMN_AGENT_STEP_EXPAND,          /* model.safetensors written (only with expand) */
    PEMN_AGENT_STEP_SYNC,            /* files and the version directory fsync'ed */
    PEMN_AGENT_STEP_COMMIT_DIR,      /* renamed to versions/<hex> */
    PEMN_AGENT_STEP_LINK,            /* DIR/current.tmp created */
    PEMN_AGENT_STEP_SWAP,            /* DIR/current.tmp renamed over DIR/current */
    PEMN_AGENT_STEP_STATE,           /* state.json rewritten */
    PEMN_AGENT_STEP_GC,              /* versions other than current and previous removed */
    PEMN_AGENT_STEP_COUNT_
} pemn_agent_step;

/* "version-dir", "package", "expand", "sync", "commit-dir", "link", "swap", "state", "gc";
 * NULL for an invalid step. */
const char *pemn_agent_step_name(pemn_agent_step step);
/* Parses those names. PEMN_EINVAL when unknown. */
pemn_rc pemn_agent_step_parse(const char *name, pemn_agent_step *out);

/* Test hook, called right after each install step. Returning nonzero stops the install
 * there with PEMN_ECANCELED and *no clean-up*, as a crash would (the next pemn_agent_new
 * recovers). A hook may also end the process. */
typedef int (*pemn_agent_fault_fn)(pemn_agent_step step, void *user);

/* ---- events ---------------------------------------------------------------------------- */
/* One state change, as reported to the server: state is "downloading", "verifying",
 * "installed" or "failed" (then reason is pemn_agent_reason()). All strings borrowed for the
 * duration of the callback; model/version may be "" when not known yet. */
struct pemn_agent_event {
    const char *state;
    const char *reason;  /* NULL unless failed */
    const char *message; /* human-readable detail, may be "" */
    const char *model;
    const char *version;
    uint64_t release;
    const char *digest;
    pemn_rc rc; /* PEMN_OK unless failed */
};

/* ---- options --------------------------------------------------------------------------- */
/* Called for every state change the agent goes through (borrowed event, valid during the
 * call). Used by front ends to log; the agent itself reports to the server. */
typedef void (*pemn_agent_event_fn)(const struct pemn_agent_event *ev, void *user);

struct pemn_agent_opts {
    const char *dir;             /* required: the agent directory (created with its parents) */
    const pemn_keyring *trusted; /* required: pinned publisher keys (borrowed, must outlive) */
    int allow_downgrade;         /* accept a lower (or equal, different) release */
    int expand;                  /* also write model.safetensors next to model.pemn */
    uint64_t max_package;        /* bytes; 0 = default (1 GiB) */
    /* network (pemn_agent_run_once); all borrowed, must outlive the agent */
    const char *server; /* base URL, e.g. "http://127.0.0.1:8080" */
    const char *fleet;
    const char *device;
    const char *token;                   /* device-scope token, or NULL */
    long timeout_ms;                     /* per HTTP request; 0 = default (30 s) */
    const volatile sig_atomic_t *cancel; /* optional: nonzero stops a cycle (PEMN_ECANCELED) */
    pemn_agent_event_fn on_event;
    void *event_user;
    /* trust (docs/AGENT.md, "Trust"; borrowed) */
    const char *model;         /* the one model to run (wrong-model otherwise); NULL: the first
                                  model installed in DIR is pinned */
    const char *root_file;     /* root mode: the initial trusted root (pemn root init); once DIR
                                  holds a root, DIR/root.json (updated along the chain) is used.
                                  trusted may then be NULL (the root names the publishers) */
    pemn_agent_fault_fn fault; /* test hook, normally NULL */
    void *fault_user;
    /* when the desired state names an OCI repository ("oci://HOST/REPO", docs/OCI.md) as
     * package_url: credentials for that registry's challenge, or NULL (borrowed) */
    const char *oci_username;
    const char *oci_password;
    /* package downloads (docs/AGENT.md, "Limits"): each is bounded as a whole and by rate */
    uint64_t download_timeout_ms; /* whole download, all attempts; 0 = default (10 min) */
    uint32_t min_rate;            /* bytes/s averaged over rate_window_ms; 0 = default 1024 */
    uint32_t rate_window_ms;      /* 0 = default (30 s) */
    uint64_t max_disk;            /* bytes DIR/versions + DIR/download may hold with the new package
                                     (refused as "too-large" past it); 0 = no limit beyond max_package */
    int no_delta; /* never update by delta: always download the whole package (docs/AGENT.md) */
};
/* Zeroes *opts (every option at its default). */
void pemn_agent_opts_init(struct pemn_agent_opts *opts);

/* Opens (creating if needed) and locks DIR, loads trust.json (and the root), then runs
 * recovery (see top). *out is new; free with pemn_agent_free. PEMN_EINVAL (missing dir, or
 * neither trusted nor root_file), PEMN_ECONFLICT (DIR owned by another agent), PEMN_EIO,
 * PEMN_ECORRUPT (damaged trust.json or root), PEMN_EROLLBACK (DIR/root.json older than the
 * root version trust.json recorded). */
PEMN_WARN_UNUSED pemn_rc pemn_agent_new(const struct pemn_agent_opts *opts, pemn_agent **out,
                                        struct pemn_err *err);
void pemn_agent_free(pemn_agent *agent); /* NULL is a no-op; releases the lock */

/* ---- state ------------------------------------------------------------------------------ */
struct pemn_agent_version {
    char model[129];
    char version[129];
    uint64_t release;
    char digest[PEMN_DIGEST_TEXT_MAX]; /* "sha256:<hex>" of model.pemn */
    uint64_t size;                     /* bytes of model.pemn */
    int64_t installed;                 /* Unix seconds */
};
struct pemn_agent_state {
    int has_current; /* 0: nothing installed yet */
    struct pemn_agent_version current;
    int has_previous; /* the version kept for instant rollback */
    struct pemn_agent_version previous;
};
/* Copies the agent's state (what DIR/current and state.json hold). */
pemn_rc pemn_agent_state(const pemn_agent *agent, struct pemn_agent_state *out);
/* Path of the running package, DIR/current/model.pemn (borrowed, valid while agent lives). */
const char *pemn_agent_current_path(const pemn_agent *agent);

/* ---- installing ------------------------------------------------------------------------- */
/* What the caller was told to install; any field may be NULL/0 (not checked). */
struct pemn_agent_expect {
    const char *model;  /* the package's name must equal this */
    const char *digest; /* "sha256:<hex>" the bytes must hash to */
};

/* Would a package with this release and digest be installed? PEMN_OK yes; PEMN_EEXIST it is
 * the installed package already; PEMN_EROLLBACK lower release, or same release and other
 * digest (refused without allow_downgrade; err says which). */
pemn_rc pemn_agent_admit(const pemn_agent *agent, uint64_t release, const char *digest,
                         struct pemn_err *err);

/* Verifies and installs a package held in memory (copied to disk; data is only read).
 * Order of checks: digest against expect (PEMN_EDIGEST), structure (PEMN_ECORRUPT),
 * signature (PEMN_EBADSIG / PEMN_ECORRUPT) and pinned signer (PEMN_EUNTRUSTED), name
 * (PEMN_ECONFLICT), release (pemn_agent_admit). Installing the package that is already
 * current is PEMN_OK with *changed = 0. Disk errors: PEMN_EIO, the old model stays current.
 * changed may be NULL. */
PEMN_WARN_UNUSED pemn_rc pemn_agent_install_mem(pemn_agent *agent, const void *data, size_t len,
                                                const struct pemn_agent_expect *expect,
                                                int *changed, struct pemn_err *err);
/* The same with the package read from a file (bounded by max_package). */
PEMN_WARN_UNUSED pemn_rc pemn_agent_install_file(pemn_agent *agent, const char *path,
                                                 const struct pemn_agent_expect *expect,
                                                 int *changed, struct pemn_err *err);
/* Instant rollback: makes the previous version current again (no download, no rewrite;
 * an explicit operator action, so allowed without allow_downgrade). PEMN_ENOTFOUND when no
 * previous version is kept. */
PEMN_WARN_UNUSED pemn_rc pemn_agent_rollback(pemn_agent *agent, struct pemn_err *err);

/* ---- polling the fleet (libcurl; needs opts.server, fleet and device) ----------------- */
struct pemn_agent_cycle {
    int not_modified;        /* the server answered 304: nothing changed since the last cycle */
    int no_target;           /* the server has nothing for this device yet (404) */
    int changed;             /* a new package was installed in this cycle */
    pemn_rc result;          /* outcome of acting on the desired state (PEMN_OK, or a refusal) */
    char reason[32];         /* pemn_agent_reason(result) when result != PEMN_OK, else "" */
    uint32_t reports_failed; /* status reports the server did not accept (logged, not fatal) */
    /* what the server asked for (when it answered 200) */
    char model[129];
    char version[129];
    uint64_t release;
    char digest[PEMN_DIGEST_TEXT_MAX];
    /* the transfer of an installed update (also reported to the server, docs/AGENT.md) */
    int delta_used;            /* rebuilt from a delta against the installed version */
    uint64_t bytes_downloaded; /* body bytes received for it (delta or whole package) */
    uint64_t package_bytes;    /* size of the package installed */
};

/* One cycle: GET .../devices/<device>/desired with If-None-Match (the ETag of the last
 * answer acted on); when a different package is wanted: rollback check on the announced
 * release, report "downloading", pull it into DIR/download/ through pemn/client.h (resumed
 * from a partial download left by an earlier cycle), report "verifying", install (see
 * pemn_agent_install_file, which re-checks the manifest's release), report "installed" or
 * "failed" with pemn_agent_reason(). A refusal that a retry cannot cure (rollback, bad or
 * untrusted signature, corrupt, wrong model) is reported once per desired state; transient
 * failures (network, disk, digest mismatch in transit) are retried by the next cycle.
 * Returns PEMN_OK when the device runs what it should (or has nothing to run yet); the
 * refusal's code (PEMN_EROLLBACK, PEMN_EBADSIG, ...) when it refused; PEMN_EHTTP /
 * PEMN_ETIMEOUT / PEMN_EAUTH when the server could not be asked; PEMN_ECANCELED when
 * opts.cancel was raised. out may be NULL. */
PEMN_WARN_UNUSED pemn_rc pemn_agent_run_once(pemn_agent *agent, struct pemn_agent_cycle *out,
                                             struct pemn_err *err);

/* The status-report reason for a failure code: "bad-signature", "untrusted",
 * "rollback-refused", "digest-mismatch", "corrupt", "name-mismatch", "disk", "download",
 * "auth", "timeout", "canceled", "too-large", "failed". Never NULL. */
const char *pemn_agent_reason(pemn_rc rc);

#ifdef __cplusplus
}
#endif
#endif
