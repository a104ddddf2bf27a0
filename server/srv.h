/*
 * server/srv.h — pemnd internals: configuration, the daemon, requests, routes, replies.
 *
 * The daemon is libmicrohttpd in thread-pool + epoll mode. A request's state (struct srv_req)
 * hangs on MHD's *req_cls from its first callback and is freed in the completion callback.
 * On the first callback the route is matched, path parameters validated, the token checked
 * and the declared body size bounded, so a request that will be refused is refused before
 * its body is read. Bodies are read chunk by chunk into a small bounded buffer that spills to
 * an unlinked temporary file (srv_upload.h: upload_buffer, upload_memory_max, upload_spill_max).
 *
 * Routes are declared in tables (struct srv_route[], ended by a zeroed entry); a module adds
 * its routes by defining a table and listing it in srv_route_tables (srv_router.c).
 *
 * Thread-safety: handlers run on MHD's pool threads; everything they share (store, metrics,
 * config) is thread-safe or read-only.
 */
#ifndef PEMN_SERVER_SRV_H
#define PEMN_SERVER_SRV_H

#include "server/srv_upload.h"
#include "storage/store.h"

#include <jansson.h>
#include <microhttpd.h>
#include <pemn/common.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* ---- configuration (srv_config.c) ------------------------------------------------------ */
enum srv_log_level { SRV_LOG_DEBUG, SRV_LOG_INFO, SRV_LOG_WARN, SRV_LOG_ERROR };
enum srv_log_format { SRV_LOG_TEXT, SRV_LOG_JSON };

struct srv_config {
    char listen[128]; /* HOST:PORT, [v6]:PORT */
    char db[1024];
    char tmp_dir[1024]; /* for spilled uploads; "" = the database's directory */
    char ui_dir[1024];  /* the web console's files; "" = found next to the binary */
    uint64_t max_package_size;
    uint64_t upload_memory_max; /* memory held by all upload buffers together */
    uint64_t upload_buffer;     /* memory one upload may hold before it spills to disk */
    uint64_t upload_spill_max;  /* disk all spilled uploads may hold (0: the disk's size) */
    uint64_t threads;
    uint64_t connection_limit;
    uint64_t per_ip_connection_limit;
    uint64_t connection_timeout;      /* seconds */
    uint64_t header_timeout;          /* seconds for a whole request head */
    uint64_t body_min_rate;           /* bytes/s a request body must average (0: none) */
    uint64_t body_rate_window;        /* seconds before body_min_rate is enforced */
    uint64_t connection_memory_limit; /* bytes per connection (headers, small buffers) */
    uint64_t cache_size;
    uint64_t cache_item_max;
    uint64_t shutdown_timeout; /* seconds to let in-flight requests finish */
    int log_level;
    int log_format;
    bool read_token_required;
    bool sendfile;
    bool allow_unbound_device_tokens;  /* device tokens bound to nothing may act */
    uint64_t device_registrations_max; /* devices one token may register (0: no limit) */
    uint64_t device_registration_rate; /* devices one token may register per minute */
    uint64_t scrub_interval;           /* seconds between background scrubs (0: none) */
    uint64_t scrub_rate;               /* bytes/s a background scrub may read */
    uint64_t delta_max_package;        /* larger packages are not diffed (srv_routes_delta.c) */
    uint64_t delta_concurrency;        /* delta computations at once (503 beyond) */
    uint64_t delta_min_saving;         /* percent of the package a delta must save */
    char metadata_key[1024];  /* signs desired-state answers ("" = unsigned); docs/TRUST.md */
    uint64_t metadata_expiry; /* seconds a signed answer stays valid */
};

/* Fills every field with its default. */
void srv_config_defaults(struct srv_config *cfg);
/* Sets one key ("max_package_size" or "max-package-size") from text, with the key's type and
 * bounds. Sizes take K/M/G suffixes (powers of 1024); booleans true/false/yes/no/on/off/1/0.
 * PEMN_EINVAL with a message naming the key and the accepted values. */
pemn_rc srv_config_set(struct srv_config *cfg, const char *key, const char *value,
                       struct pemn_err *err);
/* Whether key is a boolean (a command-line flag may then omit its value). */
bool srv_config_is_bool(const char *key);
/* Whether key exists. */
bool srv_config_known(const char *key);
/* Loads "key = value" lines ('#' comments, blank lines). Errors name the file and line. */
pemn_rc srv_config_load_file(struct srv_config *cfg, const char *path, struct pemn_err *err);
/* Cross-field checks (db set, listen parses, cache_item_max <= cache_size, ...). */
pemn_rc srv_config_validate(const struct srv_config *cfg, struct pemn_err *err);
/* Writes every key with its current value, one "key = value" line each (for --help and
 * the example config). Returns the number of bytes srv_config_dump would write. */
void srv_config_print(const struct srv_config *cfg, void (*line)(void *ctx, const char *text),
                      void *ctx);
/* Parses HOST:PORT into a socket address. */
struct sockaddr_storage;
pemn_rc srv_parse_listen(const char *text, struct sockaddr_storage *ss, unsigned *len,
                         struct pemn_err *err);

/* ---- logging (srv_log.c) --------------------------------------------------------------- */
void srv_log_setup(int level, int format);
bool srv_log_enabled(int level);
void srv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void srv_log_request(const char *method, const char *path, unsigned status, uint64_t bytes,
                     double seconds, const char *actor);

/* ---- the daemon (srv_http.c) ----------------------------------------------------------- */
struct srv;
struct srv_metrics;

/* Opens the store and starts listening. */
PEMN_WARN_UNUSED pemn_rc srv_start(const struct srv_config *cfg, struct srv **out,
                                   struct pemn_err *err);
/* The bound TCP port. */
unsigned srv_port(const struct srv *s);
/* Graceful stop: stops accepting, lets in-flight requests finish (bounded by
 * shutdown_timeout), stops the daemon, closes the store. NULL is a no-op. */
void srv_stop(struct srv *s);

struct store *srv_store(struct srv *s);
const struct srv_config *srv_cfg(struct srv *s);
struct srv_metrics *srv_get_metrics(struct srv *s);
struct srv_respcache *srv_get_respcache(struct srv *s);
/* The directory for upload files (tmp_dir, or the database's directory). */
const char *srv_tmp_dir(struct srv *s);
struct srv_uploads *srv_get_uploads(struct srv *s);
struct srv_guard *srv_get_guard(struct srv *s);
struct srv_signer *srv_get_signer(struct srv *s); /* NULL when answers are not signed */

/* ---- requests and routes --------------------------------------------------------------- */
#define SRV_MAX_PARAMS 4

enum srv_method {
    SRV_GET = 1,
    SRV_HEAD = 2,
    SRV_PUT = 4,
    SRV_DELETE = 8,
    SRV_POST = 16,
    SRV_PATCH = 32,
};

/* Rights a route needs (STORE_SCOPE_* bits). SRV_OPEN_READ: STORE_SCOPE_READ, but only when
 * the server runs with read_token_required; otherwise anyone may read. */
#define SRV_OPEN 0u
#define SRV_OPEN_READ 0x100u

/* max_body: 0 = the route takes no body; SRV_BODY_PACKAGE = the configured
 * max_package_size; otherwise a byte limit. */
#define SRV_BODY_PACKAGE UINT64_MAX

struct srv_req;
struct srv_route {
    const char *name;    /* metrics label, e.g. "version_put" */
    unsigned methods;    /* enum srv_method bits */
    const char *pattern; /* "/v1/models/{name}/versions/{version}"; {digest} is a digest */
    unsigned need;       /* STORE_SCOPE_* bits (any of them suffices), SRV_OPEN[_READ] */
    uint64_t max_body;
    enum MHD_Result (*handler)(struct srv_req *r);
};

struct srv_req {
    struct srv *srv;
    struct MHD_Connection *conn;
    const struct srv_route *route;
    int route_index; /* metrics index; -1 when no route matched */
    enum srv_method method;
    const char *method_text;
    char *path;
    int n_params;
    const char *param_names[SRV_MAX_PARAMS];
    char params[SRV_MAX_PARAMS][STORE_LABEL_MAX];
    unsigned rights; /* STORE_SCOPE_* rights of the presented token (0: none) */
    char actor[STORE_LABEL_MAX];
    char bound_device[STORE_LABEL_MAX]; /* the token's device binding, "" when unbound */
    char bound_fleet[STORE_LABEL_MAX];  /* the token's fleet binding, "" when unbound */
    struct srv_body body;
    unsigned status;
    uint64_t bytes;
    bool queued;
    bool has_body;
    bool admitted;
    struct timespec t0;
};

/* A path parameter by name ("name", "version", ...); NULL when absent. */
const char *srv_param(const struct srv_req *r, const char *name);
/* The complete request body (valid until the request completes). */
void srv_body_get(struct srv_req *r, const uint8_t **data, size_t *len);
/* A request header (borrowed) or NULL. */
const char *srv_header(const struct srv_req *r, const char *name);

/* Replies. Each queues exactly one response and returns MHD's result. */
enum MHD_Result srv_queue(struct srv_req *r, unsigned status, struct MHD_Response *resp,
                          uint64_t body_bytes);
/* Steals obj. */
/* JSON reply (steals obj). A 200 answer to a GET carries a strong ETag over its bytes and
 * Cache-Control: no-cache, and becomes 304 (no body) when If-None-Match names that ETag, so
 * polling clients revalidate mutable routes cheaply. */
enum MHD_Result srv_reply_json(struct srv_req *r, unsigned status, json_t *obj);
/* RFC 9110 If-None-Match / If-Range list check: "*" or a list of (weak or strong) entity
 * tags; etag is quoted ("\"...\""). Hex is compared case-insensitively; a bare unquoted
 * token is compared with etag's contents. NULL header: false. */
bool srv_etag_matches(const char *header, const char *etag);
enum MHD_Result srv_reply_error(struct srv_req *r, unsigned status, const char *code,
                                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Maps a store error to a reply (404 not_found, 409, 500 ...). */
enum MHD_Result srv_reply_store_error(struct srv_req *r, pemn_rc rc, const struct pemn_err *e);
enum MHD_Result srv_reply_empty(struct srv_req *r, unsigned status);
/* The Cache-Control value for a response: immutable package bytes may be kept a year,
 * anything else revalidated ("no-cache"); with read_token_required both are "private" so a
 * shared cache in front never hands one client's authorized bytes to another. */
const char *srv_cache_control(const struct srv_req *r, bool immutable);

/* Name pattern of docs/API.md: [A-Za-z0-9][A-Za-z0-9._-]{0,127}. */
bool srv_valid_label(const char *s, size_t len);

/* ---- routing (srv_router.c) ------------------------------------------------------------ */
/* Every route table, NULL-terminated. */
extern const struct srv_route *const srv_route_tables[];
size_t srv_route_count(void);
const struct srv_route *srv_route_at(size_t i);
/* Matches a path against the tables. Returns 0 and sets *route, fills params; -404 when no
 * pattern matches; -405 when the path matches but not the method (allow: the methods that
 * would); -400 when a parameter is malformed (which: the parameter name). */
int srv_route_match(struct srv_req *r, const char *path, enum srv_method m, unsigned *allow,
                    const char **which);

/* ---- shared JSON (srv_routes_models.c) ------------------------------------------------- */
/* The "version object" of docs/API.md (new reference). */
json_t *srv_version_json(const struct store_version *v);

/* ---- device tokens (srv_devguard.c) --------------------------------------------------- */
/* Whether the request's device token may act for device in fleet: unbound tokens only when
 * allowed, no moving a device out of another fleet, registration count and rate. false
 * after queueing a 403 / 429. */
bool srv_device_guard(struct srv_req *r, const char *fleet, const char *device,
                      enum MHD_Result *ret);

/* ---- auth (srv_auth.c) ----------------------------------------------------------------- */
/* Checks the request's token against the route's needs. Returns MHD_YES when allowed (and
 * sets r->rights, r->actor); otherwise queues 401/403 and sets *refused. */
enum MHD_Result srv_auth_check(struct srv_req *r, bool *refused);

/* ---- metrics (srv_metrics.c) ----------------------------------------------------------- */
struct srv_metrics *srv_metrics_new(size_t n_routes);
void srv_metrics_free(struct srv_metrics *m);
void srv_metrics_request(struct srv_metrics *m, int route_index, unsigned status, uint64_t bytes,
                         double seconds);
/* A refused push, by error code ("corrupt", "untrusted", ...). */
void srv_metrics_push_rejected(struct srv_metrics *m, const char *code);
void srv_metrics_push_accepted(struct srv_metrics *m, uint64_t bytes);
/* A blob whose stored bytes do not hash to its digest: found while serving (scrub false) or
 * by the background scrub (scrub true). */
void srv_metrics_blob_corrupt(struct srv_metrics *m, bool scrub);
struct store_scrub_stats;
/* A background scrub ended (completed: it walked every blob). */
void srv_metrics_scrub_done(struct srv_metrics *m, const struct store_scrub_stats *sx,
                            bool completed);
/* Prometheus text exposition (malloc'ed, NUL-terminated). */
char *srv_metrics_render(struct srv *s, size_t *len);

/* ---- package bytes (srv_routes_blobs.c) ------------------------------------------------ */
/* Serves a stored blob (GET/HEAD, ETag, If-None-Match, one Range) as /v1/blobs does. */
enum MHD_Result srv_blob_serve(struct srv_req *r, const char *digest, bool immutable);
/* ---- background scrub (srv_scrub.c) ----------------------------------------------------- */
struct srv_scrub;
/* Starts the periodic scrub thread (NULL when scrub_interval is 0 or it cannot start). */
struct srv_scrub *srv_scrub_start(struct srv *s);
/* Stops it and waits (a running scrub stops between chunks). NULL is a no-op. */
void srv_scrub_stop(struct srv_scrub *sc);

/* ---- route tables ---------------------------------------------------------------------- */
extern const struct srv_route srv_routes_models[];
extern const struct srv_route srv_routes_blobs[];
extern const struct srv_route srv_routes_fleet[];
extern const struct srv_route srv_routes_misc[];
extern const struct srv_route srv_routes_oci[];
extern const struct srv_route srv_routes_console[];
extern const struct srv_route srv_routes_ui[];

/* ---- the web console (srv_routes_ui.c) ------------------------------------------------- */
/* The directory the console's files are served from: cfg->ui_dir, or the default found next
 * to the running binary ("" when there is none). */
const char *srv_ui_dir(const struct srv_config *cfg);

/* Rollout progress samples are taken at most this often per fleet (seconds), apart from
 * state and percentage changes (storage/store_console.h). */
#define SRV_PROGRESS_STEP 1
/* Records a progress sample of the fleet's current rollout when one is due (force: now);
 * failures are logged, never fatal to the request that triggered it (srv_routes_console.c). */
void srv_progress_sample(struct srv *s, const char *fleet, bool force);

#endif
