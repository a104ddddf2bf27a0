/*
 * server/srv_router.c — the route tables and path matching.
 *
 * Paths are matched segment by segment against patterns like
 * "/v1/models/{name}/versions/{version}". MHD is configured not to decode percent escapes
 * (srv_http.c), so a parameter is exactly the bytes between two slashes; it must match
 * [A-Za-z0-9][A-Za-z0-9._-]{0,127} ({digest}: "sha256:" + 64 hex), so "..", "%2F", NUL and
 * over-long names are refused with 400 before anything else sees them.
 *
 * Adding routes: define a table `const struct srv_route srv_routes_X[]` ended by a zeroed
 * entry and list it below.
 */
#include "server/srv.h"
#include "server/srv_trust.h"

#include <string.h>

static const struct srv_route *const builtin_tables[] = {
    srv_routes_misc,    /* health, metrics, keys */
    srv_routes_models,  /* models, versions, tags */
    srv_routes_blobs,   /* package bytes */
    srv_routes_fleet,   /* fleets, devices, rollouts */
    srv_routes_console, /* the console's reads (srv_routes_console.c) */
    srv_routes_ui,      /* the console's files (srv_routes_ui.c) */
    srv_routes_trust,   /* the root of trust (srv_trust.c) */
};

static size_t table_count(void)
{
    return sizeof builtin_tables / sizeof builtin_tables[0];
}

static const struct srv_route *table_at(size_t i)
{
    return i < table_count() ? builtin_tables[i] : NULL;
}

size_t srv_route_count(void)
{
    size_t n = 0;
    for (size_t t = 0; t < table_count(); t++)
        for (const struct srv_route *r = table_at(t); r->pattern; r++)
            n++;
    return n;
}

const struct srv_route *srv_route_at(size_t i)
{
    for (size_t t = 0; t < table_count(); t++)
        for (const struct srv_route *r = table_at(t); r->pattern; r++)
            if (i-- == 0)
                return r;
    return NULL;
}

bool srv_valid_label(const char *s, size_t len)
{
    if (len == 0 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

static bool valid_digest(const char *s, size_t len)
{
    if (len != 71 || memcmp(s, "sha256:", 7) != 0)
        return false;
    for (size_t i = 7; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

/* Matches path against one pattern. 1 match, 0 no match, -1 a parameter is malformed. */
static int match_one(const char *pattern, const char *path, struct srv_req *r, const char **which)
{
    const char *p = pattern, *u = path;
    int n = 0;
    while (*p && *u) {
        if (*p != '/' || *u != '/')
            return 0;
        p++, u++;
        const char *pe = strchr(p, '/'), *ue = strchr(u, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), ul = ue ? (size_t)(ue - u) : strlen(u);
        if (*p == '{') {
            if (n >= SRV_MAX_PARAMS || pl < 3)
                return 0;
            const char *name = p + 1;
            size_t nl = pl - 2;
            bool ok = (nl == 6 && memcmp(name, "digest", 6) == 0) ? valid_digest(u, ul)
                                                                  : srv_valid_label(u, ul);
            if (r) {
                if (!ok) {
                    /* remember which one; the caller reports 400 if nothing else matches */
                    *which = name;
                    return -1;
                }
                memcpy(r->params[n], u, ul);
                r->params[n][ul] = '\0';
                r->param_names[n] = name; /* points into the pattern: "{name}..." */
            } else if (!ok) {
                return -1;
            }
            n++;
        } else if (pl != ul || memcmp(p, u, pl) != 0) {
            return 0;
        }
        p += pl, u += ul;
    }
    if (*p || *u)
        return 0;
    if (r)
        r->n_params = n;
    return 1;
}

int srv_route_match(struct srv_req *r, const char *path, enum srv_method m, unsigned *allow,
                    const char **which)
{
    *allow = 0;
    int bad = 0, idx = 0;
    for (size_t t = 0; t < table_count(); t++) {
        for (const struct srv_route *rt = table_at(t); rt->pattern; rt++, idx++) {
            int k = match_one(rt->pattern, path, NULL, which);
            if (k < 0) {
                bad = 1;
                match_one(rt->pattern, path, r, which);
                continue;
            }
            if (k == 0)
                continue;
            if (!(rt->methods & m)) {
                *allow |= rt->methods;
                continue;
            }
            match_one(rt->pattern, path, r, which);
            r->route = rt;
            r->route_index = idx;
            return 0;
        }
    }
    if (*allow)
        return -405;
    return bad ? -400 : -404;
}

const char *srv_param(const struct srv_req *r, const char *name)
{
    size_t nl = strlen(name);
    for (int i = 0; i < r->n_params; i++)
        if (strncmp(r->param_names[i], name, nl) == 0 && r->param_names[i][nl] == '}')
            return r->params[i];
    return NULL;
}
