/*
 * server/srv_config.c — pemnd configuration: one declarative table of keys with their type,
 * default and bounds, shared by command-line flags (--max-package-size 64M) and the config
 * file (max_package_size = 64M).
 */
#include "server/srv.h"

#include "proto/err.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

enum ctype { C_STR, C_SIZE, C_UINT, C_BOOL, C_LEVEL, C_FORMAT };

struct ckey {
    const char *key;
    enum ctype type;
    size_t off, cap; /* field offset; string capacity */
    const char *def;
    uint64_t min, max;
    const char *help;
};

#define F(field) offsetof(struct srv_config, field), sizeof(((struct srv_config *)0)->field)
#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define GiB (1ull << 30)

static const struct ckey keys[] = {
    {"listen", C_STR, F(listen), "127.0.0.1:8080", 0, 0, "address to listen on, HOST:PORT"},
    {"db", C_STR, F(db), "", 0, 0,
     "SQLite database file (created if missing; also sqlite:FILE), or a PostgreSQL URI "
     "postgresql://... (password from PGPASSFILE or a service file, never in the URI)"},
    {"tmp_dir", C_STR, F(tmp_dir), "", 0, 0,
     "where large uploads are spooled (default: the database file's directory; $TMPDIR or "
     "/var/tmp with PostgreSQL)"},
    {"ui_dir", C_STR, F(ui_dir), "", 0, 0,
     "the web console's files, served at /ui/ (default: ../share/pemn/ui next to the pemnd "
     "binary, or the source tree's ui/ for a binary in build/)"},
    {"max_package_size", C_SIZE, F(max_package_size), "256M", 1, 1000000000ull,
     "largest package accepted by a push (413 above)"},
    {"upload_memory_max", C_SIZE, F(upload_memory_max), "64M", 4 * KiB, 16 * GiB,
     "memory all uploads together may hold; past it they are spooled to tmp_dir"},
    {"upload_buffer", C_SIZE, F(upload_buffer), "1M", 4 * KiB, 1 * GiB,
     "memory one upload may hold before it is spooled to a temporary file"},
    {"upload_spill_max", C_SIZE, F(upload_spill_max), "0", 0, 1024 * GiB,
     "disk all spooled uploads together may use (0: no limit but the disk; 507 past it)"},
    {"threads", C_UINT, F(threads), "2", 1, 256, "HTTP worker threads (thread pool, epoll)"},
    {"connection_limit", C_UINT, F(connection_limit), "1024", 1, 65536,
     "maximum concurrent connections"},
    {"per_ip_connection_limit", C_UINT, F(per_ip_connection_limit), "32", 0, 65536,
     "maximum concurrent connections per client address (0: no limit; behind a proxy on "
     "the same host raise it to the proxy's connection count)"},
    {"connection_timeout", C_UINT, F(connection_timeout), "30", 1, 3600,
     "seconds of inactivity before a connection is closed"},
    {"header_timeout", C_UINT, F(header_timeout), "20", 1, 3600,
     "seconds a client has to send a whole request head (from connect or its previous "
     "request's end), however it trickles"},
    {"body_min_rate", C_SIZE, F(body_min_rate), "1K", 0, 1 * GiB,
     "bytes/s a request body must average once body_rate_window has passed (0: none)"},
    {"body_rate_window", C_UINT, F(body_rate_window), "10", 1, 3600,
     "seconds of a request body before body_min_rate is enforced"},
    /* libmicrohttpd zeroes this pool between the requests of a keep-alive connection:
     * 64K cost ~2.5 us per request (docs/BENCHMARKS.md); 16K holds any valid request head. */
    {"connection_memory_limit", C_SIZE, F(connection_memory_limit), "16K", 8 * KiB, 16 * MiB,
     "per-connection memory for request headers and I/O buffers"},
    {"cache_size", C_SIZE, F(cache_size), "256M", 0, 64 * GiB,
     "in-memory cache of package bytes (0: none)"},
    {"cache_item_max", C_SIZE, F(cache_item_max), "64M", 0, 64 * GiB,
     "larger packages are streamed from the database in chunks"},
    {"shutdown_timeout", C_UINT, F(shutdown_timeout), "10", 0, 600,
     "seconds in-flight requests get to finish on SIGTERM/SIGINT"},
    {"log_level", C_LEVEL, F(log_level), "info", 0, 0, "debug, info, warn or error"},
    {"log_format", C_FORMAT, F(log_format), "text", 0, 0, "text or json"},
    {"sendfile", C_BOOL, F(sendfile), "false", 0, 0,
     "send cached packages with sendfile(2) from their memfd (measured slower with "
     "libmicrohttpd 0.9.75 on loopback: docs/BENCHMARKS.md)"},
    {"allow_unbound_device_tokens", C_BOOL, F(allow_unbound_device_tokens), "false", 0, 0,
     "let device tokens bound to no device and no fleet act as any device (simulations)"},
    {"device_registrations_max", C_UINT, F(device_registrations_max), "10000", 0, 100000000,
     "devices one token not bound to a device may register (0: no limit; 429 past it)"},
    {"device_registration_rate", C_UINT, F(device_registration_rate), "600", 0, 100000000,
     "devices one token not bound to a device may register per minute (0: no limit)"},
    {"scrub_interval", C_UINT, F(scrub_interval), "86400", 0, 31536000,
     "seconds between background scrubs that hash every stored blob (0: none)"},
    {"scrub_rate", C_SIZE, F(scrub_rate), "16M", 64 * KiB, 64 * GiB,
     "bytes per second a background scrub may read"},
    {"delta_max_package", C_SIZE, F(delta_max_package), "64M", 0, 16 * GiB,
     "packages above this size are not diffed: GET .../delta answers 404 delta_too_large "
     "(a delta computation holds both packages and the delta in memory)"},
    {"delta_concurrency", C_UINT, F(delta_concurrency), "2", 0, 256,
     "delta computations running at once (503 busy with Retry-After beyond; 0: none)"},
    {"delta_min_saving", C_UINT, F(delta_min_saving), "0", 0, 99,
     "percent of the package a delta must save to be served (404 delta_not_smaller below; "
     "0: any delta smaller than the package)"},
    {"metadata_key", C_STR, F(metadata_key), "", 0, 0,
     "Ed25519 .key that signs desired-state answers (needs a root naming it; docs/TRUST.md)"},
    {"metadata_expiry", C_UINT, F(metadata_expiry), "86400", 60, 31536000,
     "seconds a signed desired-state answer is valid (re-signed after half of it)"},
    {"read_token_required", C_BOOL, F(read_token_required), "false", 0, 0,
     "whether reads need a token (read scope or better)"},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const format_names[] = {"text", "json"};

/* "max-package-size" and "max_package_size" are the same key. */
static const struct ckey *find_key(const char *key)
{
    char norm[64];
    size_t n = strlen(key);
    if (n >= sizeof norm)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        norm[i] = key[i] == '-' ? '_' : key[i];
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].key, norm) == 0)
            return &keys[i];
    return NULL;
}

bool srv_config_known(const char *key)
{
    return find_key(key) != NULL;
}

bool srv_config_is_bool(const char *key)
{
    const struct ckey *k = find_key(key);
    return k && k->type == C_BOOL;
}

static int parse_u64(const char *s, bool suffix, uint64_t *out)
{
    if (!*s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    uint64_t mul = 1;
    if (suffix && *end) {
        switch (toupper((unsigned char)*end)) {
        case 'K':
            mul = KiB;
            break;
        case 'M':
            mul = MiB;
            break;
        case 'G':
            mul = GiB;
            break;
        default:
            return -1;
        }
        end++;
        if (toupper((unsigned char)*end) == 'I')
            end++;
        if (toupper((unsigned char)*end) == 'B')
            end++;
    }
    if (*end)
        return -1;
    if (v && mul > UINT64_MAX / v)
        return -1;
    *out = (uint64_t)v * mul;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const t[] = {"true", "yes", "on", "1"};
    static const char *const f[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, t[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(s, f[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

static int parse_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

pemn_rc srv_config_set(struct srv_config *cfg, const char *key, const char *value,
                       struct pemn_err *err)
{
    const struct ckey *k = find_key(key);
    if (!k)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "unknown setting '%s'", key);
    if (!value)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "%s needs a value", k->key);
    char *field = (char *)cfg + k->off;
    uint64_t v;
    bool b;
    int i;
    switch (k->type) {
    case C_STR:
        if (strlen(value) >= k->cap)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "%s: value longer than %zu bytes",
                             k->key, k->cap - 1);
        memcpy(field, value, strlen(value) + 1);
        return PEMN_OK;
    case C_SIZE:
    case C_UINT:
        if (parse_u64(value, k->type == C_SIZE, &v))
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "%s: '%s' is not %s", k->key, value,
                             k->type == C_SIZE ? "a size (a number with optional K, M or G)"
                                               : "a whole number");
        if (v < k->min || v > k->max)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                             "%s: %s is out of range [%llu, %llu]", k->key, value,
                             (unsigned long long)k->min, (unsigned long long)k->max);
        memcpy(field, &v, sizeof v);
        return PEMN_OK;
    case C_BOOL:
        if (parse_bool(value, &b))
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                             "%s: '%s' is not true/false (yes/no, on/off, 1/0)", k->key, value);
        memcpy(field, &b, sizeof b);
        return PEMN_OK;
    case C_LEVEL:
    case C_FORMAT:
        i = k->type == C_LEVEL ? parse_name(value, level_names, 4)
                               : parse_name(value, format_names, 2);
        if (i < 0)
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "%s: '%s' is not one of %s", k->key,
                             value, k->type == C_LEVEL ? "debug, info, warn, error" : "text, json");
        memcpy(field, &i, sizeof i);
        return PEMN_OK;
    }
    return PEMN_EINVAL;
}

void srv_config_defaults(struct srv_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < N_KEYS; i++) {
        pemn_rc rc = srv_config_set(cfg, keys[i].key, keys[i].def, NULL);
        (void)rc; /* the table's defaults are valid (tested) */
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

pemn_rc srv_config_load_file(struct srv_config *cfg, const char *path, struct pemn_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: %s", path, strerror(errno));
    char line[2048];
    unsigned lineno = 0;
    pemn_rc rc = PEMN_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "%s:%u: line too long", path, lineno);
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "%s:%u: expected 'key = value'", path,
                           lineno);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
            val[vl - 1] = '\0';
            val++;
        }
        struct pemn_err e;
        if (srv_config_set(cfg, key, val, &e))
            rc = proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "%s:%u: %s", path, lineno, e.msg);
    }
    if (!rc && ferror(f))
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: read error", path);
    fclose(f);
    return rc;
}

pemn_rc srv_parse_listen(const char *text, struct sockaddr_storage *ss, unsigned *len,
                         struct pemn_err *err)
{
    char host[128];
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "listen: '%s' is not HOST:PORT (e.g. 127.0.0.1:8080)", text);
    size_t hl = (size_t)(colon - text);
    if (hl >= sizeof host)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "listen: host too long");
    memcpy(host, text, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl >= 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    uint64_t port;
    if (parse_u64(colon + 1, false, &port) || port > 65535)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "listen: bad port in '%s'", text);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res = NULL;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    int g = getaddrinfo(strcmp(host, "*") == 0 ? "0.0.0.0" : host, ps, &hints, &res);
    if (g != 0 || !res)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "listen: cannot resolve '%s': %s", host,
                         gai_strerror(g));
    memset(ss, 0, sizeof *ss);
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = (unsigned)res->ai_addrlen;
    freeaddrinfo(res);
    return PEMN_OK;
}

pemn_rc srv_config_validate(const struct srv_config *cfg, struct pemn_err *err)
{
    if (!cfg->db[0])
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "no database: give --db FILE (or db = FILE in the config file)");
    struct sockaddr_storage ss;
    unsigned len;
    pemn_rc rc = srv_parse_listen(cfg->listen, &ss, &len, err);
    if (rc)
        return rc;
    if (cfg->cache_item_max > cfg->cache_size && cfg->cache_size)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "cache_item_max (%llu) is larger than cache_size (%llu)",
                         (unsigned long long)cfg->cache_item_max,
                         (unsigned long long)cfg->cache_size);
    if (cfg->per_ip_connection_limit > cfg->connection_limit)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "per_ip_connection_limit is larger than connection_limit");
    return PEMN_OK;
}

void srv_config_print(const struct srv_config *cfg, void (*line)(void *ctx, const char *text),
                      void *ctx)
{
    char buf[1400];
    for (size_t i = 0; i < N_KEYS; i++) {
        const struct ckey *k = &keys[i];
        const char *field = (const char *)cfg + k->off;
        char val[1100];
        uint64_t v;
        bool b;
        int n;
        switch (k->type) {
        case C_STR:
            snprintf(val, sizeof val, "%s", field);
            break;
        case C_SIZE:
        case C_UINT:
            memcpy(&v, field, sizeof v);
            snprintf(val, sizeof val, "%llu", (unsigned long long)v);
            break;
        case C_BOOL:
            memcpy(&b, field, sizeof b);
            snprintf(val, sizeof val, "%s", b ? "true" : "false");
            break;
        case C_LEVEL:
        case C_FORMAT:
            memcpy(&n, field, sizeof n);
            snprintf(val, sizeof val, "%s",
                     k->type == C_LEVEL ? level_names[n & 3] : format_names[n & 1]);
            break;
        }
        snprintf(buf, sizeof buf, "# %s (default %s)\n%s = %s", k->help,
                 k->def[0] ? k->def : "\"\"", k->key, val);
        line(ctx, buf);
    }
}
