/*
 * server/srv_routes_ui.c — the web console's files (docs/CONSOLE.md), served at /ui/.
 *
 *   GET /ui          301 to /ui/
 *   GET /ui/         index.html
 *   GET /ui/{file}   one file of the console directory
 *
 * The directory is ui_dir, or by default the first of <bindir>/../share/pemn/ui (installed)
 * and <bindir>/../../../ui (a binary in the build tree, build/<variant>/bin) that holds an
 * index.html. {file} must match the name pattern (no '/', no leading '.', no escapes: the
 * router refuses "..", "%2F" and the like with 400), have a known extension, and be a
 * regular file that is not a symbolic link; so nothing outside the directory can be served.
 *
 * Every answer carries a strict Content-Security-Policy (scripts, styles, images and
 * requests from this origin only; no inline script or style, no framing), nosniff, and a
 * strong ETag over the file's bytes (If-None-Match: 304). The files are the API's clients:
 * these routes are open and serve no registry data.
 */
#include "server/srv.h"

#include "proto/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UI_FILE_MAX (8u << 20)

static const char csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
                          "object-src 'none'; base-uri 'none'; form-action 'none'; "
                          "frame-ancestors 'none'";

static void security_headers(struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "Content-Security-Policy", csp);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
}

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        size_t e = strlen(types[i].ext);
        if (n > e && strcmp(name + n - e, types[i].ext) == 0)
            return types[i].type;
    }
    return NULL;
}

/* ---- where the files are --------------------------------------------------------------- */
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static char default_dir[PATH_MAX];

static bool has_index(const char *dir)
{
    char p[PATH_MAX + 16];
    if ((size_t)snprintf(p, sizeof p, "%s/index.html", dir) >= sizeof p)
        return false;
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void find_default(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0'; /* the binary's directory */
    static const char *const rel[] = {"/../share/pemn/ui", "/../../../ui"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char cand[PATH_MAX + 32], real[PATH_MAX];
        snprintf(cand, sizeof cand, "%s%s", exe, rel[i]);
        if (realpath(cand, real) && has_index(real)) {
            snprintf(default_dir, sizeof default_dir, "%s", real);
            return;
        }
    }
}

const char *srv_ui_dir(const struct srv_config *cfg)
{
    if (cfg->ui_dir[0])
        return cfg->ui_dir;
    pthread_once(&default_once, find_default);
    return default_dir;
}

/* ---- replies ----------------------------------------------------------------------------- */
static enum MHD_Result ui_error(struct srv_req *r, unsigned status, const char *msg)
{
    char *text = NULL;
    size_t n = 0;
    json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code",
                          status == 404 ? "not_found" : "internal", "message", msg);
    text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return MHD_NO;
    n = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    security_headers(resp);
    return srv_queue(r, status, resp, n);
}

static enum MHD_Result serve(struct srv_req *r, const char *name)
{
    const char *type = content_type(name);
    if (!type)
        return ui_error(r, 404, "no such console file");
    const char *dir = srv_ui_dir(srv_cfg(r->srv));
    if (!dir[0])
        return ui_error(r, 404, "the console's files were not found (set ui_dir)");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return ui_error(r, 404, "the console directory cannot be opened (check ui_dir)");
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    close(dfd);
    if (fd < 0)
        return ui_error(r, 404, "no such console file");
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > (off_t)UI_FILE_MAX) {
        close(fd);
        return ui_error(r, 404, "no such console file");
    }
    size_t len = (size_t)sb.st_size, got = 0;
    char *buf = malloc(len ? len : 1);
    while (buf && got < len) {
        ssize_t k = read(fd, buf + got, len - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (!buf || got != len) {
        free(buf);
        return ui_error(r, 500, "cannot read a console file");
    }
    uint8_t h[16];
    char hex[33], etag[36];
    crypto_generichash(h, sizeof h, (const uint8_t *)buf, len, NULL, 0);
    proto_hex(h, sizeof h, hex);
    snprintf(etag, sizeof etag, "\"%s\"", hex);
    struct MHD_Response *resp;
    unsigned status = 200;
    if (srv_etag_matches(srv_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), etag)) {
        free(buf);
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        status = 304;
        len = 0;
    } else {
        resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
        if (!resp)
            free(buf);
        else
            MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    security_headers(resp);
    return srv_queue(r, status, resp, len);
}

static enum MHD_Result h_redirect(struct srv_req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/ui/");
    security_headers(resp);
    return srv_queue(r, 301, resp, 0);
}

static enum MHD_Result h_index(struct srv_req *r)
{
    return serve(r, "index.html");
}

static enum MHD_Result h_file(struct srv_req *r)
{
    return serve(r, srv_param(r, "file"));
}

const struct srv_route srv_routes_ui[] = {
    {"ui_redirect", SRV_GET | SRV_HEAD, "/ui", SRV_OPEN, 0, h_redirect},
    {"ui_index", SRV_GET | SRV_HEAD, "/ui/", SRV_OPEN, 0, h_index},
    {"ui_file", SRV_GET | SRV_HEAD, "/ui/{file}", SRV_OPEN, 0, h_file},
    {NULL, 0, NULL, 0, 0, NULL},
};
