/*
 * cli/pemn/util.c — helpers shared by the `pemn` subcommands.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/pemn/cmd.h"
#include "cli/pemn/util.h"
#include "proto/err.h"

#include <pemn/pkg.h>

int cli_fail(const char *cmd, pemn_rc rc, const struct pemn_err *e)
{
    const char *msg = (e && e->rc == rc && e->msg[0]) ? e->msg : pemn_strerror(rc);
    fprintf(stderr, "pemn %s: %s (%s)\n", cmd, CLI_ESC(msg), pemn_rc_name(rc));
    return cli_exit_code(rc);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "pemn %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see 'pemn %s --help')\n", cmd);
    return CLI_EXIT_USAGE;
}

pemn_rc cli_load_trust(char *const *paths, size_t n, pemn_keyring **out, struct pemn_err *e)
{
    pemn_keyring *kr = NULL;
    pemn_rc rc = pemn_keyring_new(&kr);
    if (rc != PEMN_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if ((rc = pemn_keyring_add_file(kr, paths[i], e)) != PEMN_OK) {
            pemn_keyring_free(kr);
            return rc;
        }
    }
    *out = kr;
    return PEMN_OK;
}

int cli_pull_trust(const char *cmd, char *const *paths, size_t n, size_t max, pemn_keyring **out)
{
    char *env = NULL;
    char **files = calloc(max ? max : 1, sizeof *files);
    if (!files)
        return CLI_EXIT_FAIL;
    for (size_t i = 0; i < n && i < max; i++)
        files[i] = paths[i];
    const char *t = getenv("PEMN_TRUST");
    if (n == 0 && t && *t) {
        if (!(env = strdup(t))) {
            free(files);
            return CLI_EXIT_FAIL;
        }
        for (char *save = NULL, *p = strtok_r(env, ":", &save); p && n < max;
             p = strtok_r(NULL, ":", &save))
            files[n++] = p;
    }
    int ex = 0;
    struct pemn_err e = {0};
    pemn_rc rc;
    if (n == 0)
        ex = cli_usage(cmd, "give at least one --trust KEY.pub (or set PEMN_TRUST): a package "
                            "is installed only when a trusted key signed it");
    else if ((rc = cli_load_trust(files, n, out, &e)) != PEMN_OK)
        ex = cli_fail(cmd, rc, &e); /* the message names the file */
    free(env);
    free(files);
    return ex;
}

const char *cli_human_size(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, cap, "%.*f %s", v < 10 ? 2 : 1, v, units[u]);
    return buf;
}

const char *cli_shape(uint32_t ndim, const uint64_t *shape, char *buf, size_t cap)
{
    size_t n = 0;
    int w = snprintf(buf, cap, "[");
    n = w > 0 ? (size_t)w : 0;
    for (uint32_t i = 0; i < ndim && n < cap; i++) {
        w = snprintf(buf + n, cap - n, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
    return buf;
}

int cli_help_or_usage(int ch, void (*usage)(FILE *))
{
    if (ch == 'h') {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    usage(stderr);
    return CLI_EXIT_USAGE;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_double(const char *s, double *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int cli_parse_mask_encoding(const char *s, uint32_t *out)
{
    if (s && strcmp(s, "auto") == 0)
        *out = 0;
    else if (s && strcmp(s, "bits") == 0)
        *out = PEMN_MASK_BITS;
    else
        return -1;
    return 0;
}

int cli_parse_hex(const char *s, uint8_t *out, size_t n)
{
    if (!s || strlen(s) != 2 * n)
        return -1;
    return proto_unhex(s, 2 * n, out);
}

static pemn_rc io_err(struct pemn_err *e, const char *what, const char *path)
{
    if (e) {
        e->rc = PEMN_EIO;
        e->offset = PEMN_NO_OFFSET;
        snprintf(e->msg, sizeof e->msg, "%s %.200s: %s", what, path, strerror(errno));
    }
    return PEMN_EIO;
}

pemn_rc cli_write_file(const char *path, const void *buf, size_t len, struct pemn_err *e)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp)
        return PEMN_ENOMEM;
    snprintf(tmp, pl + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        pemn_rc rc = io_err(e, "cannot create a file beside", path);
        free(tmp);
        return rc;
    }
    const uint8_t *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    free(tmp);
    return PEMN_OK;
fail:;
    pemn_rc rc = io_err(e, "cannot write", path);
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    return rc;
}

int cli_print_json(const char *cmd, json_t *v)
{
    if (!v) {
        fprintf(stderr, "pemn %s: out of memory building JSON\n", cmd);
        return CLI_EXIT_FAIL;
    }
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(v);
    if (!s) {
        fprintf(stderr, "pemn %s: cannot encode JSON\n", cmd);
        return CLI_EXIT_FAIL;
    }
    puts(s);
    free(s);
    return CLI_EXIT_OK;
}
