/*
 * client/client_int.h — internals shared by the client/ sources (prefix client_).
 * Not installed; never included outside client/ and tests.
 */
#ifndef PEMN_CLIENT_INT_H
#define PEMN_CLIENT_INT_H

#include <pemn/client.h>

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>

#define CLIENT_MEMO_MAX 32          /* remembered ETag'ed GET responses */
#define CLIENT_ERRBODY_MAX 65536u   /* error bodies kept for their JSON message */
#define CLIENT_MAX_TOTAL_TRIES 1000 /* hard cap on requests in one operation */

struct client_memo {
    char *url;
    char *etag;
    char *body;
    size_t len;
};

struct pemn_client {
    CURL *curl;
    char *base; /* without trailing '/' */
    char *token;
    char *userpwd; /* "user:password" for HTTP Basic (OCI registries), or NULL */
    bool follow;   /* follow redirects (OCI registries hand blobs to a CDN); credentials are
                      never sent to another host (libcurl's default) */
    char *cache_dir;
    char *ua;
    struct pemn_client_options o; /* pointers above replace the caller's */
    struct client_memo memo[CLIENT_MEMO_MAX];
    unsigned memo_next;
};

/* ---- time and retry ------------------------------------------------------------------- */
uint64_t client_now_ms(void);
void client_sleep_ms(uint64_t ms);

struct client_retry {
    uint64_t start_ms, deadline_ms; /* absolute, monotonic */
    uint32_t fails;                 /* consecutive attempts without progress */
    uint32_t tries;                 /* requests made */
    pemn_progress_fn progress;      /* asked during waits; nonzero cancels */
    void *progress_user;
    uint64_t done, total; /* what to report to it */
};
void client_retry_init(const pemn_client *c, struct client_retry *rt);
/* Milliseconds left before the deadline (0 when passed). */
uint64_t client_retry_left(const struct client_retry *rt);
/* Called after a failed attempt that may be retried. Counts it (unless `progressed`),
 * decides whether another attempt is allowed and sleeps the backoff (or retry_after_ms
 * when >= 0, capped). Returns PEMN_OK to try again, or fills err from `why` with
 * PEMN_ETIMEOUT / `final_rc` when the budget is spent. */
pemn_rc client_retry_wait(const pemn_client *c, struct client_retry *rt, bool progressed,
                          int64_t retry_after_ms, pemn_rc final_rc, const char *why,
                          struct pemn_err *err);
/* Parses a Retry-After value (delta seconds or an HTTP date); -1 when absent/invalid. */
int64_t client_parse_retry_after(const char *v);

/* "bytes a-b/t" with a <= b < t -> true; anything else (such as the unsatisfied-range form) false.
 */
bool client_parse_content_range(const char *v, uint64_t *a, uint64_t *b, uint64_t *t);

/* ---- requests ------------------------------------------------------------------------- */
/* Headers of the last response seen by the header callback. */
struct client_hdrs {
    char content_range[128];
    char retry_after[128];
    char etag[160];
    char content_type[128];
};
size_t client_header_cb(char *buf, size_t size, size_t n, void *user);

/* Resets the easy handle and applies what every request shares: URL, user agent, bearer
 * token, timeouts (bounded by what is left of rt), no signals, http/https only. */
pemn_rc client_curl_setup(pemn_client *c, const char *url, const struct client_retry *rt,
                          struct pemn_err *err);

/* Replaces the credentials sent to the base URL: a bearer token, or Basic "user:password"
 * (either may be NULL; both NULL = anonymous). Copies; the old ones are wiped. */
pemn_rc client_set_auth(pemn_client *c, const char *bearer, const char *userpwd,
                        struct pemn_err *err);

/* Builds base + path (path starting with '/') or takes an absolute http(s) URL. Returns
 * a malloc'ed string or NULL. */
char *client_url(const pemn_client *c, const char *path);

/* True for statuses worth retrying: 408, 429, 5xx except 501/505. */
bool client_status_retryable(long status);
/* Maps an error response (status + body, possibly JSON {"error":{code,message}}) to a
 * pemn_rc and fills err with "HTTP <status> <code>: <message> (<what>)". */
pemn_rc client_status_error(long status, const char *body, size_t len, const char *what,
                            struct pemn_err *err);

struct client_json_req {
    const char *method; /* GET, PUT, DELETE */
    const char *path;   /* relative to the base URL */
    const uint8_t *body;
    size_t body_len;
    const char *content_type;
    pemn_progress_fn progress; /* upload progress */
    void *progress_user;
};
/* Performs a request with retries and returns the response body parsed as JSON (*out new,
 * may be NULL for 204) and the final status. Statuses other than 2xx map to an error.
 * GETs use the ETag memo (If-None-Match). */
pemn_rc client_json(pemn_client *c, const struct client_json_req *rq, long *status, json_t **out,
                    struct pemn_err *err);

/* ---- JSON shapes ---------------------------------------------------------------------- */
/* Fills *out from a version object (docs/API.md). PEMN_EHTTP when a required field is
 * missing or malformed. */
pemn_rc client_parse_version(const json_t *o, struct pemn_resolved *out, struct pemn_err *err);
/* Name, version and tag pattern [A-Za-z0-9][A-Za-z0-9._-]{0,127}. */
bool client_label_ok(const char *s);

/* ---- files ---------------------------------------------------------------------------- */
/* SHA-256 of the first `len` bytes of an open file (from offset 0) into st. */
pemn_rc client_hash_prefix(int fd, uint64_t len, void *sha_state, struct pemn_err *err);
/* SHA-256 of a whole file by path; *size receives its length. */
pemn_rc client_hash_file(const char *path, uint8_t out[PEMN_DIGEST_BYTES], uint64_t *size,
                         struct pemn_err *err);
/* fsync the directory containing path. */
pemn_rc client_fsync_dir_of(const char *path, struct pemn_err *err);
/* Copies src to dst (created exclusively), fsync'ed. */
pemn_rc client_copy_file(const char *src, const char *dst, struct pemn_err *err);

/* ---- cache (cache.c) ------------------------------------------------------------------ */
/* When the cache holds a blob with this digest that still hashes right, links or copies
 * it to tmp_path and returns PEMN_OK; PEMN_ENOTFOUND when absent or damaged (a damaged
 * entry is removed). */
pemn_rc client_cache_get(pemn_client *c, const char *digest, const char *tmp_path,
                         struct pemn_err *err);
/* Stores a verified file under the digest (link, else copy). Failure is not fatal to the
 * caller; returns the rc for tests. */
/* The highest release installed per model, in CACHE/releases (releases.c). get: PEMN_OK,
 * PEMN_ENOTFOUND (no record, or no cache), PEMN_ECORRUPT, PEMN_EIO. note: raises the record
 * to release (never lowers it), crash-safe; PEMN_OK when there is no cache. */
pemn_rc client_release_get(const pemn_client *c, const char *model, uint64_t *out);
pemn_rc client_release_note(const pemn_client *c, const char *model, uint64_t release,
                            struct pemn_err *err);
pemn_rc client_cache_put(pemn_client *c, const char *digest, const char *path,
                         struct pemn_err *err);

/* ---- deltas (delta.c) ------------------------------------------------------------------ */
/* Rebuilds the package r from a delta against a base the client holds (opts->base_path,
 * dest_path, older versions in the cache) into part, which then holds bytes hashing to
 * want (still to be verified). Any error means: download the whole package. */
pemn_rc client_delta_fetch(pemn_client *c, const struct pemn_resolved *r, const char *dest_path,
                           const char *part, const uint8_t want[PEMN_DIGEST_BYTES],
                           const struct pemn_fetch_options *o, struct pemn_fetch_stats *st,
                           struct pemn_err *err);

#endif
