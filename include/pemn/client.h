/*
 * pemn/client.h — talking to a pemnd registry over HTTP (libcurl): push, list, resolve,
 * tag, and pull with resume, verification against pinned keys and atomic install.
 *
 * Contract:
 *   - The registry protocol is docs/API.md (routes under /v1). Error bodies
 *     {"error":{"code","message"}} become a pemn_rc plus "HTTP <status> <code>: <message>"
 *     in struct pemn_err.
 *   - A fetch never installs an unverified package. The bytes stream into "<dest>.part"
 *     (same directory) while being hashed; only when the SHA-256 of the whole file equals
 *     the expected digest, the package opens, its signature verifies, its signer is in the
 *     trusted keyring and its release is not below the caller's minimum, is the file
 *     fsync'ed, renamed over dest and the directory fsync'ed. On any failure dest is left
 *     as it was. A ".part" survives only a transport failure or a cancellation, so that
 *     the next fetch can resume it (its prefix is re-hashed, never trusted: if the result
 *     fails the digest, the download is redone once from byte 0); after any verification
 *     failure it is removed.
 *   - Robust transfer: a dropped or stalled connection resumes with "Range: bytes=N-"; a
 *     206 is accepted only when its Content-Range starts at N and names the expected total,
 *     otherwise (200, wrong range, 416) the download restarts cleanly from 0. Connection
 *     errors, 5xx and 429 are retried with exponential backoff and full jitter
 *     (base * 2^n, capped), honouring Retry-After (seconds or HTTP date); attempts without
 *     progress are bounded by max_attempts and everything by the operation deadline.
 *   - Optional content-addressed cache: CACHE/blobs/sha256/<hex> holds verified packages
 *     only. A hit is re-hashed (and re-verified) before use and costs no download.
 *   - The bearer token is sent only to URLs under the base URL, never to an absolute
 *     package_url on another host.
 *   - GETs of mutable routes (models, versions, tags) are remembered with their ETag in the
 *     client and revalidated with If-None-Match (a 304 reuses the remembered body).
 *
 * Result codes used here (besides PEMN_OK):
 *   PEMN_EINVAL     bad argument, malformed URL/name/reference, or server said bad_request
 *   PEMN_ENOMEM     allocation failed
 *   PEMN_EIO        local file error (open/write/fsync/rename; errno text in the message)
 *   PEMN_EHTTP      transport failure (cannot connect, reset) after the retries, an
 *                   unexpected status, a 5xx/429 that outlasted the retries, or a response
 *                   that is not the JSON documented in docs/API.md
 *   PEMN_ETIMEOUT   the operation deadline passed
 *   PEMN_EAUTH      401/403 (missing, unknown or revoked token; insufficient scope)
 *   PEMN_ENOTFOUND  404 (no such model, version, tag or blob)
 *   PEMN_ECONFLICT  409 (another package under the same version, release not newer), a
 *                   package whose manifest name/version/release differ from what the
 *                   registry announced for it, or another fetch writing the same .part
 *   PEMN_ETOOBIG    413, a package or JSON body above options.max_package_size /
 *                   max_json_bytes
 *   PEMN_EDIGEST    the downloaded bytes do not hash to the expected digest, or their
 *                   length differs from the announced size
 *   PEMN_ECORRUPT   the package is malformed (locally, or the server said corrupt)
 *   PEMN_EBADSIG    the signature does not verify
 *   PEMN_EUNTRUSTED the signer is not in the trusted keyring (or no keyring was given)
 *   PEMN_EROLLBACK  the package's release is below fetch options.min_release
 *   PEMN_ECANCELED  the progress callback asked to stop
 *
 * Thread-safety: a pemn_client is used by one thread at a time (it owns a libcurl easy
 * handle); use one client per thread. Distinct clients are independent. pemn_client_new
 * initialises libcurl and libsodium once, thread-safely.
 */
#ifndef PEMN_CLIENT_H
#define PEMN_CLIENT_H

#include <pemn/common.h>
#include <pemn/key.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pemn_client pemn_client;
struct pemn_root;

/* Progress: bytes done so far and the total (0 while not known). Called from inside
 * transfers (by libcurl's progress hook, so also while stalled), every 100 ms while waiting
 * to retry (JSON requests included, with done = total = 0), and once at the end. `done`
 * never decreases, except once when a download has to restart from byte 0 (the server
 * ignored Range). Return 0 to continue, nonzero to stop with PEMN_ECANCELED. */
typedef int (*pemn_progress_fn)(void *user, uint64_t done, uint64_t total);

#define PEMN_LABEL_BUF (128 + 1)
#define PEMN_URL_BUF 1024

struct pemn_client_options {
    const char *token;             /* bearer token or NULL (copied; wiped on free) */
    const pemn_keyring *trusted;   /* keys a fetched package must be signed by (borrowed:
                                      must outlive the client); NULL = trust nothing */
    const char *cache_dir;         /* content-addressed cache root or NULL (copied) */
    const char *user_agent;        /* NULL = "pemn/<version>" (copied) */
    uint32_t connect_timeout_ms;   /* TCP+TLS connect, per attempt; default 10000 */
    uint32_t stall_timeout_ms;     /* the window of the minimum transfer rate: an attempt that
                                      averages < stall_bytes_per_s over this long is aborted
                                      and counts as an attempt without progress (so at most
                                      max_attempts of them); default 30000 */
    uint32_t stall_bytes_per_s;    /* minimum transfer rate; default 1024 */
    uint64_t deadline_ms;          /* total time of one operation (all attempts);
                                      default 3600000 (1 h) */
    uint32_t max_attempts;         /* consecutive attempts without progress; default 6 */
    uint32_t backoff_base_ms;      /* first backoff ceiling; default 250 */
    uint32_t backoff_max_ms;       /* backoff ceiling cap; default 15000 */
    uint32_t retry_after_max_ms;   /* longest Retry-After honoured (still capped by the
                                      deadline); default 60000 */
    uint64_t max_package_size;     /* largest package fetched or pushed; default 16 GiB */
    uint32_t max_json_bytes;       /* largest JSON response accepted; default 16 MiB */
    uint64_t max_recv_bytes_per_s; /* download rate cap (polite devices, benchmarks);
                                      0 = unlimited */
    pemn_progress_fn progress;     /* default progress callback for push and fetch, or NULL */
    void *progress_user;
    const struct pemn_root *root; /* root of trust (pemn/trust.h) or NULL (borrowed: must
                                     outlive the client). When set, a fetched package must
                                     also pass pemn_root_check_package for the model asked
                                     for (publisher allowed for that model, its threshold,
                                     no revoked signer) and the root must not be expired
                                     (PEMN_EEXPIRED); `trusted` may then be NULL. */
};

/* Fills *o with the defaults above (all pointers NULL). */
void pemn_client_options_init(struct pemn_client_options *o);

/* A new client for a registry at base_url ("http://host:port" or with a path prefix; a
 * trailing '/' is ignored). opts may be NULL (defaults). *out is new; free with
 * pemn_client_free. PEMN_EINVAL for a URL that is not http:// or https://. */
PEMN_WARN_UNUSED pemn_rc pemn_client_new(const char *base_url,
                                         const struct pemn_client_options *opts, pemn_client **out,
                                         struct pemn_err *err);
void pemn_client_free(pemn_client *c); /* NULL is a no-op; wipes the token */

/* ---- what the registry says about a version ------------------------------------------ */
struct pemn_resolved {
    char model[PEMN_LABEL_BUF];
    char version[PEMN_LABEL_BUF];
    char tag[PEMN_LABEL_BUF]; /* "" unless resolved through a tag */
    uint64_t release;
    char digest[PEMN_DIGEST_TEXT_MAX]; /* "sha256:<hex>" */
    uint64_t size;                     /* package bytes; 0 = unknown */
    char package_url[PEMN_URL_BUF];    /* absolute, or a path relative to the base URL */
    char signer[PEMN_KEYID_TEXT_MAX];  /* 16 hex key id, "" if not given */
    char strategy[PEMN_LABEL_BUF];
    int64_t created, pushed;
    double density, ratio;
    uint64_t n_params, f32_size;
};

/* Parses "NAME", "NAME:VERSION" or "NAME@TAG" into the buffers (each PEMN_LABEL_BUF);
 * version/tag become "" when absent. PEMN_EINVAL when a part is empty, too long or not
 * [A-Za-z0-9][A-Za-z0-9._-]*. */
pemn_rc pemn_client_parse_ref(const char *ref, char *name, char *version, char *tag,
                              struct pemn_err *err);

/* Resolves a model to one version: by version (version != NULL/""), by tag (tag !=
 * NULL/""), or the latest version (both empty). Fills *out. Giving both: PEMN_EINVAL. */
PEMN_WARN_UNUSED pemn_rc pemn_client_resolve(pemn_client *c, const char *name, const char *version,
                                             const char *tag, struct pemn_resolved *out,
                                             struct pemn_err *err);

/* ---- listing ---------------------------------------------------------------------------- */
struct pemn_tag_entry {
    char tag[PEMN_LABEL_BUF];
    char version[PEMN_LABEL_BUF];
};
struct pemn_listing {
    size_t count;                   /* entries in `versions` */
    struct pemn_resolved *versions; /* all models: the latest version of each;
                                       one model: every version, newest first */
    uint64_t *n_versions;           /* all models only: versions per model; else NULL */
    size_t n_tags;                  /* one model only */
    struct pemn_tag_entry *tags;
};
/* Lists every model (name NULL or "") or one model's versions and tags. *out is new; free
 * with pemn_listing_free. */
PEMN_WARN_UNUSED pemn_rc pemn_client_list(pemn_client *c, const char *name,
                                          struct pemn_listing **out, struct pemn_err *err);
void pemn_listing_free(struct pemn_listing *l); /* NULL is a no-op */

/* ---- publishing ------------------------------------------------------------------------- */
/* Uploads the package file at path to /v1/models/<name>/versions/<version> (name and
 * version from its manifest; the package is opened and checked structurally first).
 * *created (may be NULL) is 1 for a new version, 0 for an identical re-push. out (may be
 * NULL) receives the version object. Retried like a fetch: PUT of the same bytes is
 * idempotent. */
PEMN_WARN_UNUSED pemn_rc pemn_client_push(pemn_client *c, const char *path,
                                          struct pemn_resolved *out, int *created,
                                          struct pemn_err *err);
/* Points tag at version (PUT /v1/models/<name>/tags/<tag>); out may be NULL. */
PEMN_WARN_UNUSED pemn_rc pemn_client_tag(pemn_client *c, const char *name, const char *version,
                                         const char *tag, struct pemn_resolved *out,
                                         struct pemn_err *err);
/* Removes a tag (DELETE). PEMN_ENOTFOUND when it does not exist. */
PEMN_WARN_UNUSED pemn_rc pemn_client_untag(pemn_client *c, const char *name, const char *tag,
                                           struct pemn_err *err);

/* ---- fetching --------------------------------------------------------------------------- */
#define PEMN_FETCH_NO_CACHE 1u /* neither read nor fill the cache for this fetch */
/* accept a release below the highest one installed through this cache for the model (the
 * client with a cache_dir keeps that record in CACHE/releases and otherwise refuses such a
 * package with PEMN_EROLLBACK) */
#define PEMN_FETCH_ALLOW_DOWNGRADE 2u
/* never ask for a delta (issue 12): always download the whole package */
#define PEMN_FETCH_NO_DELTA 4u
/* check the digest and that every signature verifies, but leave the trust decision to the
 * caller (the agent's root of trust, pemn/trust.h): options.trusted is not consulted */
#define PEMN_FETCH_SIGNATURES_ONLY 8u

struct pemn_fetch_options {
    uint64_t min_release;      /* refuse (PEMN_EROLLBACK) a package with release below this;
                                  0 = no check */
    unsigned flags;            /* PEMN_FETCH_* */
    pemn_progress_fn progress; /* overrides the client's callback when not NULL */
    void *progress_user;
    const char *base_path; /* an older package to update from by delta, or NULL (then the
                              destination file and the cache's older versions are tried) */
};

struct pemn_fetch_stats {
    uint64_t bytes_received; /* body bytes received over HTTP (all attempts) */
    uint32_t requests;       /* HTTP requests made */
    uint32_t resumes;        /* Range requests accepted with 206 */
    uint32_t restarts;       /* downloads restarted from byte 0 */
    int from_cache;          /* 1 when served by the cache (or dest already held it) */
    int delta_used;          /* 1 when the package was rebuilt from a delta */
    uint64_t delta_bytes;    /* bytes of that delta (included in bytes_received) */
};

/* Deltas: unless opts->flags has PEMN_FETCH_NO_DELTA, a fetch that holds an older version of
 * the model (opts->base_path, the file at dest_path, or an older version in the cache)
 * first asks the registry for a delta from it (GET /v1/blobs/<new>/delta?from=<old>),
 * patches, and verifies the result exactly as a download; when there is no delta or it
 * fails in any way (404, transfer error, corrupt delta, digest mismatch) the whole package
 * is downloaded instead.
 *
 * Downloads the package r->package_url (relative to the base URL, or absolute), expected to
 * hash to r->digest (required) and be r->size bytes (0 = unknown), verifies it as described
 * at the top and installs it at dest_path. When r->model / r->version / r->release are set
 * the manifest must match them (PEMN_ECONFLICT otherwise). opts and stats may be NULL. */
PEMN_WARN_UNUSED pemn_rc pemn_client_fetch(pemn_client *c, const struct pemn_resolved *r,
                                           const char *dest_path,
                                           const struct pemn_fetch_options *opts,
                                           struct pemn_fetch_stats *stats, struct pemn_err *err);

/* Resolve (as pemn_client_resolve) then fetch. resolved (may be NULL) receives what the
 * registry said. */
PEMN_WARN_UNUSED pemn_rc pemn_client_pull(pemn_client *c, const char *name, const char *version,
                                          const char *tag, const char *dest_path,
                                          const struct pemn_fetch_options *opts,
                                          struct pemn_resolved *resolved,
                                          struct pemn_fetch_stats *stats, struct pemn_err *err);

/* Path of a digest in the cache ("CACHE/blobs/sha256/<hex>") into buf; PEMN_EINVAL when the
 * client has no cache or the digest is malformed, PEMN_ETOOBIG when buf is too small. The
 * file need not exist. */
pemn_rc pemn_client_cache_path(const pemn_client *c, const char *digest, char *buf, size_t n);

/* ---- root of trust (pemn/trust.h, docs/TRUST.md) ----------------------------------------- */
#define PEMN_ROOT_WALK_MAX 1024u /* default bound on the links one update walks */
/* GET /v1/root/{version} (0: /v1/root/latest), parsed and checked alone (pemn_root_parse:
 * its own threshold); a numbered answer of another version is PEMN_ECORRUPT. *out is new.
 * PEMN_ENOTFOUND when the registry has no such version. */
PEMN_WARN_UNUSED pemn_rc pemn_client_get_root(pemn_client *c, uint64_t version,
                                              struct pemn_root **out, struct pemn_err *err);
/* The chain walk of TUF's client workflow: from `trusted` (not modified), fetches versions
 * N+1, N+2, ... until the registry answers 404, checking every link against the previous
 * version (pemn_root_verify_next). At most max_links links (0: PEMN_ROOT_WALK_MAX; beyond:
 * PEMN_ETOOBIG). *out: the newest root reached (new; a copy of trusted when nothing is
 * newer); *links (may be NULL): links walked. A link that fails ends the walk with its error
 * (PEMN_EUNTRUSTED, PEMN_EVERSION, PEMN_ECORRUPT, PEMN_EHTTP...) and *out still holds the
 * newest root verified before it (as in TUF, verified links are kept; NULL only when the
 * walk could not start). Expiry is the caller's (pemn_root_check_expiry on *out). */
PEMN_WARN_UNUSED pemn_rc pemn_client_update_root(pemn_client *c, const struct pemn_root *trusted,
                                                 unsigned max_links, struct pemn_root **out,
                                                 unsigned *links, struct pemn_err *err);

#ifdef __cplusplus
}
#endif
#endif
