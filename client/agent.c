/*
 * client/agent.c — the agent's local install machinery: recovery on start, verification,
 * rollback protection, atomic install by symlink swap, garbage collection. No HTTP here
 * (client/agent_net.c does the polling).
 */
#include "client/agent_int.h"
#include "client/agent_trust.h"

#include "proto/err.h"
#include "proto/fsutil.h"

#include <pemn/pkg.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const step_names[PEMN_AGENT_STEP_COUNT_] = {
    [PEMN_AGENT_STEP_VERSION_DIR] = "version-dir",
    [PEMN_AGENT_STEP_PACKAGE] = "package",
    [PEMN_AGENT_STEP_EXPAND] = "expand",
    [PEMN_AGENT_STEP_SYNC] = "sync",
    [PEMN_AGENT_STEP_COMMIT_DIR] = "commit-dir",
    [PEMN_AGENT_STEP_LINK] = "link",
    [PEMN_AGENT_STEP_SWAP] = "swap",
    [PEMN_AGENT_STEP_STATE] = "state",
    [PEMN_AGENT_STEP_GC] = "gc",
};

const char *pemn_agent_step_name(pemn_agent_step step)
{
    if ((unsigned)step >= PEMN_AGENT_STEP_COUNT_)
        return NULL;
    return step_names[step];
}

pemn_rc pemn_agent_step_parse(const char *name, pemn_agent_step *out)
{
    for (int i = 0; name && i < PEMN_AGENT_STEP_COUNT_; i++)
        if (!strcmp(name, step_names[i])) {
            *out = (pemn_agent_step)i;
            return PEMN_OK;
        }
    return PEMN_EINVAL;
}

const char *pemn_agent_reason(pemn_rc rc)
{
    switch (rc) {
    case PEMN_EBADSIG:
        return "bad-signature";
    case PEMN_EUNTRUSTED:
        return "untrusted";
    case PEMN_EROLLBACK:
        return "rollback-refused";
    case PEMN_EDIGEST:
        return "digest-mismatch";
    case PEMN_ECORRUPT:
    case PEMN_EVERSION:
        return "corrupt";
    case PEMN_ECONFLICT:
        return "name-mismatch";
    case PEMN_EIO:
    case PEMN_ENOMEM:
        return "disk";
    case PEMN_EHTTP:
    case PEMN_ENOTFOUND:
        return "download";
    case PEMN_EAUTH:
        return "auth";
    case PEMN_ETIMEOUT:
        return "timeout";
    case PEMN_ECANCELED:
        return "canceled";
    case PEMN_ETOOBIG:
        return "too-large";
    case PEMN_EEXPIRED:
        return "metadata-expired";
    case PEMN_EREVOKED:
        return "signer-revoked";
    default:
        return "failed";
    }
}

void pemn_agent_opts_init(struct pemn_agent_opts *opts)
{
    memset(opts, 0, sizeof *opts);
}

void agent_emit(struct pemn_agent *a, const char *state, pemn_rc rc, const char *message,
                const char *model, const char *version, uint64_t release, const char *digest)
{
    if (!a->opts.on_event)
        return;
    struct pemn_agent_event ev = {
        .state = state,
        .reason = !rc                        ? NULL
                  : agent_trust_reason(a)[0] ? agent_trust_reason(a)
                                             : pemn_agent_reason(rc),
        .message = message ? message : "",
        .model = model ? model : "",
        .version = version ? version : "",
        .release = release,
        .digest = digest ? digest : "",
        .rc = rc,
    };
    a->opts.on_event(&ev, a->opts.event_user);
}

/* ---- checking a version directory ------------------------------------------------------ */

/* Opens versions/<hex>/model.pemn and checks it completely: structure, that its SHA-256 is
 * <hex>, digest + signature, pinned signer. Fills *v (installed time from the directory). */
static pemn_rc check_version(const struct pemn_agent *a, const char *hex,
                             struct pemn_agent_version *v, struct pemn_err *err)
{
    char path[PATH_MAX];
    pemn_rc rc = agent_path(path, err, "%s/versions/%s/model.pemn", a->dir, hex);
    if (rc)
        return rc;
    pemn_pkg *pkg = NULL;
    if ((rc = pemn_pkg_open_file(path, 0, &pkg, err)))
        return rc;
    uint8_t d[PEMN_DIGEST_BYTES];
    char text[PEMN_DIGEST_TEXT_MAX];
    pemn_pkg_digest(pkg, d);
    pemn_digest_format(d, text);
    if (strcmp(text + 7, hex) != 0) {
        rc = proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET, "%s: content is %s", path, text);
        goto out;
    }
    if ((rc = agent_trust_verify_installed(a, pkg, err)))
        goto out;
    struct pemn_pkg_info info;
    if ((rc = pemn_pkg_info(pkg, &info)))
        goto out;
    memset(v, 0, sizeof *v);
    snprintf(v->model, sizeof v->model, "%s", info.name);
    snprintf(v->version, sizeof v->version, "%s", info.version);
    v->release = info.release;
    memcpy(v->digest, text, sizeof text);
    v->size = info.file_size;
    struct stat sb;
    char vdir[PATH_MAX];
    if (!agent_path(vdir, NULL, "%s/versions/%s", a->dir, hex) && stat(vdir, &sb) == 0)
        v->installed = (int64_t)sb.st_mtime;
out:
    pemn_pkg_free(pkg);
    return rc;
}

/* The <hex> DIR/current points to, or false when it is missing or not versions/<hex>. */
static bool read_current(const struct pemn_agent *a, char hex[AGENT_HEX_LEN + 1])
{
    char link[PATH_MAX], target[PATH_MAX];
    if (agent_path(link, NULL, "%s/current", a->dir))
        return false;
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return false;
    target[n] = 0;
    if (strncmp(target, "versions/", 9) != 0 || !agent_is_hex64(target + 9))
        return false;
    memcpy(hex, target + 9, AGENT_HEX_LEN + 1);
    return true;
}

/* Points DIR/current at versions/<hex> atomically: temp link, rename over, fsync DIR. */
static pemn_rc swap_current(struct pemn_agent *a, const char *hex, bool hook, struct pemn_err *err,
                            bool *crashed)
{
    char tmp[PATH_MAX], cur[PATH_MAX], target[PATH_MAX];
    pemn_rc rc;
    if ((rc = agent_path(tmp, err, "%s/current.tmp", a->dir)) ||
        (rc = agent_path(cur, err, "%s/current", a->dir)) ||
        (rc = agent_path(target, err, "versions/%s", hex)))
        return rc;
    unlink(tmp);
    if (symlink(target, tmp) != 0)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "symlink %s: %s", tmp, strerror(errno));
    if (hook && a->opts.fault && a->opts.fault(PEMN_AGENT_STEP_LINK, a->opts.fault_user)) {
        *crashed = true;
        return proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET, "stopped after step link");
    }
    if (rename(tmp, cur) != 0) {
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return rc;
    }
    /* Once renamed the new link is in place; the fsync makes it durable. */
    return agent_fsync_path(a->dir, err);
}

/* Removes every entry of versions/ that is not current or previous (and leftovers). */
static void collect_garbage(struct pemn_agent *a)
{
    char vdir[PATH_MAX];
    if (agent_path(vdir, NULL, "%s/versions", a->dir))
        return;
    DIR *d = opendir(vdir);
    if (!d)
        return;
    const char *keep[2] = {a->st.has_current ? a->st.current.digest + 7 : NULL,
                           a->st.has_previous ? a->st.previous.digest + 7 : NULL};
    struct dirent *de;
    bool removed = false;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if ((keep[0] && !strcmp(de->d_name, keep[0])) || (keep[1] && !strcmp(de->d_name, keep[1])))
            continue;
        char p[PATH_MAX];
        if (!agent_path(p, NULL, "%s/%s", vdir, de->d_name) && !agent_rmtree(p, NULL))
            removed = true;
    }
    closedir(d);
    if (removed)
        (void)agent_fsync_path(vdir, NULL);
}

/* ---- recovery ------------------------------------------------------------------------------ */

static bool same_digest(const struct pemn_agent_version *a, const struct pemn_agent_version *b)
{
    return !strcmp(a->digest, b->digest);
}

/* Carries the installed time recorded in state.json over to a freshly checked version. */
static void keep_installed_time(struct pemn_agent_version *v, const struct pemn_agent_state *old)
{
    if (old->has_current && same_digest(v, &old->current) && old->current.installed)
        v->installed = old->current.installed;
    else if (old->has_previous && same_digest(v, &old->previous) && old->previous.installed)
        v->installed = old->previous.installed;
}

static pemn_rc recover(struct pemn_agent *a, struct pemn_err *err)
{
    char p[PATH_MAX];
    pemn_rc rc;
    /* 1. leftovers of an interrupted install */
    if ((rc = agent_path(p, err, "%s/current.tmp", a->dir)))
        return rc;
    if (unlink(p) != 0 && errno != ENOENT)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "unlink %s: %s", p, strerror(errno));
    if ((rc = agent_path(p, err, "%s/state.json.tmp", a->dir)))
        return rc;
    unlink(p);

    /* 2. what state.json says, then what DIR/current verifiably is */
    struct pemn_agent_state old, st;
    char old_etag[sizeof a->etag];
    agent_state_load(a, &old, old_etag, sizeof old_etag);
    memset(&st, 0, sizeof st);
    char hex[AGENT_HEX_LEN + 1];
    bool cur_ok = read_current(a, hex) && !check_version(a, hex, &st.current, NULL);
    bool relink = false;
    if (!cur_ok) {
        /* current missing or damaged: fall back to what state.json names, newest first */
        const struct pemn_agent_version *cand[2] = {old.has_current ? &old.current : NULL,
                                                    old.has_previous ? &old.previous : NULL};
        for (int i = 0; i < 2 && !cur_ok; i++)
            if (cand[i] && !check_version(a, cand[i]->digest + 7, &st.current, NULL)) {
                cur_ok = relink = true;
                memcpy(hex, cand[i]->digest + 7, sizeof hex);
            }
    }
    if (cur_ok) {
        st.has_current = 1;
        keep_installed_time(&st.current, &old);
        /* previous: state.json's current when the crash came after the swap, else its
         * previous; kept only while it still verifies */
        const struct pemn_agent_version *cand[2] = {old.has_current ? &old.current : NULL,
                                                    old.has_previous ? &old.previous : NULL};
        for (int i = 0; i < 2 && !st.has_previous; i++)
            if (cand[i] && !same_digest(cand[i], &st.current) &&
                !check_version(a, cand[i]->digest + 7, &st.previous, NULL)) {
                st.has_previous = 1;
                keep_installed_time(&st.previous, &old);
            }
    }
    if (relink) {
        bool crashed = false;
        if ((rc = swap_current(a, hex, false, err, &crashed)))
            return rc;
    } else if (!cur_ok) {
        /* nothing verifies: no current link rather than a link to something broken */
        if ((rc = agent_path(p, err, "%s/current", a->dir)))
            return rc;
        if (unlink(p) == 0)
            (void)agent_fsync_path(a->dir, NULL);
    }
    a->st = st;
    /* the remembered answer still holds only if what runs is what state.json said */
    bool same = st.has_current == old.has_current &&
                (!st.has_current || same_digest(&st.current, &old.current));
    snprintf(a->etag, sizeof a->etag, "%s", same ? old_etag : "");
    memcpy(a->etag_disk, a->etag, sizeof a->etag);
    if ((rc = agent_state_save(a, &a->st, err)))
        return rc;
    /* 3. half-written versions and versions no longer needed */
    collect_garbage(a);
    return PEMN_OK;
}

/* ---- new / free ------------------------------------------------------------------------------ */

pemn_rc pemn_agent_new(const struct pemn_agent_opts *opts, pemn_agent **out, struct pemn_err *err)
{
    if (!out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "out is NULL");
    *out = NULL;
    if (!opts || !opts->dir || !opts->dir[0])
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "agent directory not given");
    if ((!opts->trusted || pemn_keyring_count(opts->trusted) == 0) && !opts->root_file)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no trusted keys or root given");
    if (pemn_init())
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "libsodium failed to initialise");
    struct pemn_agent *a = calloc(1, sizeof *a);
    if (!a)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    a->opts = *opts;
    a->lock_fd = -1;
    if (!a->opts.max_package)
        a->opts.max_package = AGENT_DEFAULT_MAX_PACKAGE;
    char p[PATH_MAX];
    pemn_rc rc;
    size_t dl = strlen(opts->dir);
    while (dl > 1 && opts->dir[dl - 1] == '/')
        dl--;
    if ((rc = agent_path(a->dir, err, "%.*s", (int)dl, opts->dir)) ||
        (rc = agent_path(a->current_path, err, "%s/current/model.pemn", a->dir)) ||
        (rc = proto_mkdir_p(a->dir, 0755, err)) ||
        (rc = agent_path(p, err, "%s/versions", a->dir)) || (rc = proto_mkdir_p(p, 0755, err)) ||
        (rc = agent_path(p, err, "%s/download", a->dir)) || (rc = proto_mkdir_p(p, 0755, err)) ||
        (rc = agent_path(p, err, "%s/.lock", a->dir)))
        goto fail;
    a->lock_fd = proto_open_regular(p, O_RDWR | O_CREAT, 0644, err); /* no symlink, no FIFO */
    if (a->lock_fd < 0) {
        rc = PEMN_EIO;
        goto fail;
    }
    if (flock(a->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK
                 ? proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET, "%s is in use by another agent",
                             a->dir)
                 : proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "flock %s: %s", p, strerror(errno));
        goto fail;
    }
    if ((rc = agent_trust_open(a, err)) || (rc = recover(a, err)) ||
        (rc = agent_trust_sync(a, err)))
        goto fail;
    *out = a;
    return PEMN_OK;
fail:
    pemn_agent_free(a);
    return rc;
}

void pemn_agent_free(pemn_agent *a)
{
    if (!a)
        return;
    agent_net_free(a);
    agent_trust_free(a);
    if (a->lock_fd >= 0)
        close(a->lock_fd);
    free(a);
}

pemn_rc pemn_agent_state(const pemn_agent *a, struct pemn_agent_state *out)
{
    if (!a || !out)
        return PEMN_EINVAL;
    *out = a->st;
    return PEMN_OK;
}

const char *pemn_agent_current_path(const pemn_agent *a)
{
    return a->current_path;
}

/* ---- admission (rollback protection) --------------------------------------------------------- */

pemn_rc pemn_agent_admit(const pemn_agent *a, uint64_t release, const char *digest,
                         struct pemn_err *err)
{
    if (!a)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "agent is NULL");
    if (!a->st.has_current)
        return PEMN_OK;
    const struct pemn_agent_version *c = &a->st.current;
    bool same = digest && !strcmp(digest, c->digest);
    if (same)
        return proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET, "%s %s (release %llu) is installed",
                         c->model, c->version, (unsigned long long)c->release);
    if (a->opts.allow_downgrade || release > c->release)
        return PEMN_OK;
    if (release == c->release)
        return proto_err(err, PEMN_EROLLBACK, PEMN_NO_OFFSET,
                         "release %llu is already installed as a different package (%s %s, "
                         "%.19s...); a new package needs a new release",
                         (unsigned long long)release, c->model, c->version, c->digest);
    return proto_err(err, PEMN_EROLLBACK, PEMN_NO_OFFSET,
                     "release %llu is older than the installed release %llu (%s %s); "
                     "refusing a downgrade without --allow-downgrade",
                     (unsigned long long)release, (unsigned long long)c->release, c->model,
                     c->version);
}

/* ---- install ----------------------------------------------------------------------------------
 */

#define FAULT(step)                                                                                \
    do {                                                                                           \
        if (a->opts.fault && a->opts.fault((step), a->opts.fault_user)) {                          \
            crashed = true;                                                                        \
            rc = proto_err(err, PEMN_ECANCELED, PEMN_NO_OFFSET, "stopped after step %s",           \
                           step_names[(step)]);                                                    \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* Writes versions/<hex>/ from the verified package unless it is already there. */
static pemn_rc write_version(struct pemn_agent *a, const pemn_pkg *pkg, const char *hex,
                             bool *crashed_out, struct pemn_err *err)
{
    char partial[PATH_MAX], final[PATH_MAX], file[PATH_MAX], vdir[PATH_MAX];
    pemn_rc rc;
    bool crashed = false;
    if ((rc = agent_path(partial, err, "%s/versions/%s.partial", a->dir, hex)) ||
        (rc = agent_path(final, err, "%s/versions/%s", a->dir, hex)) ||
        (rc = agent_path(vdir, err, "%s/versions", a->dir)))
        return rc;
    struct stat sb;
    if (lstat(final, &sb) == 0) {
        /* kept from before (e.g. the previous version): reuse it only if it is whole */
        struct pemn_agent_version v;
        if (S_ISDIR(sb.st_mode) && !check_version(a, hex, &v, NULL))
            return PEMN_OK;
        if ((rc = agent_rmtree(final, err)))
            return rc;
    }
    if ((rc = agent_rmtree(partial, err)))
        return rc;
    if (mkdir(partial, 0755) != 0)
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "mkdir %s: %s", partial, strerror(errno));
    FAULT(PEMN_AGENT_STEP_VERSION_DIR);
    size_t len;
    const uint8_t *bytes = pemn_pkg_bytes(pkg, &len);
    if ((rc = agent_path(file, err, "%s/model.pemn", partial)) ||
        (rc = agent_write_file(file, bytes, len, false, err)))
        goto out;
    FAULT(PEMN_AGENT_STEP_PACKAGE);
    if (a->opts.expand) {
        if ((rc = agent_path(file, err, "%s/model.safetensors", partial)) ||
            (rc = pemn_pkg_write_safetensors(pkg, file, err)))
            goto out;
        FAULT(PEMN_AGENT_STEP_EXPAND);
    }
    if ((rc = agent_fsync_path(partial, err)))
        goto out;
    FAULT(PEMN_AGENT_STEP_SYNC);
    if (rename(partial, final) != 0) {
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "rename %s: %s", partial, strerror(errno));
        goto out;
    }
    if ((rc = agent_fsync_path(vdir, err)))
        goto out;
    FAULT(PEMN_AGENT_STEP_COMMIT_DIR);
out:
    if (rc && !crashed)
        (void)agent_rmtree(partial, NULL);
    *crashed_out = crashed;
    return rc;
}

static pemn_rc install_pkg(struct pemn_agent *a, const pemn_pkg *pkg, const char *text,
                           const struct pemn_pkg_info *info, struct pemn_err *err)
{
    const char *hex = text + 7;
    pemn_rc rc;
    bool crashed = false;
    if ((rc = write_version(a, pkg, hex, &crashed, err)))
        return rc;
    if ((rc = swap_current(a, hex, true, err, &crashed)))
        goto out;
    FAULT(PEMN_AGENT_STEP_SWAP);
    /* the swap is done: from here on the new version runs, whatever happens to state.json */
    struct pemn_agent_state st;
    memset(&st, 0, sizeof st);
    st.has_current = 1;
    snprintf(st.current.model, sizeof st.current.model, "%s", info->name);
    snprintf(st.current.version, sizeof st.current.version, "%s", info->version);
    st.current.release = info->release;
    memcpy(st.current.digest, text, PEMN_DIGEST_TEXT_MAX);
    st.current.size = info->file_size;
    st.current.installed = (int64_t)time(NULL);
    if (a->st.has_current) {
        st.has_previous = 1;
        st.previous = a->st.current;
    }
    a->st = st;
    a->etag[0] = a->etag_disk[0] = 0; /* the last answer no longer describes what runs */
    if ((rc = agent_state_save(a, &a->st, err)))
        goto out;
    FAULT(PEMN_AGENT_STEP_STATE);
    collect_garbage(a);
    FAULT(PEMN_AGENT_STEP_GC);
out:
    (void)crashed;
    return rc;
}

static pemn_rc install_opened(struct pemn_agent *a, const pemn_pkg *pkg, const char *text,
                              const struct pemn_agent_expect *expect, int *changed,
                              struct pemn_err *err)
{
    pemn_rc rc;
    struct pemn_pkg_info info;
    if ((rc = agent_trust_verify_new(a, pkg, err)))
        return rc;
    if ((rc = pemn_pkg_info(pkg, &info)))
        return proto_err(err, rc, PEMN_NO_OFFSET, "cannot read the manifest");
    if (expect && expect->model && strcmp(expect->model, info.name) != 0)
        return proto_err(err, PEMN_ECONFLICT, PEMN_NO_OFFSET,
                         "package is model '%s', expected '%s'", info.name, expect->model);
    if ((rc = agent_trust_check_pkg(a, pkg, &info, err)))
        return rc;
    rc = pemn_agent_admit(a, info.release, text, err);
    if (rc == PEMN_EEXIST)
        return PEMN_OK; /* already current: nothing to do */
    if (rc)
        return rc;
    if ((rc = install_pkg(a, pkg, text, &info, err)))
        return rc;
    (void)agent_trust_note_install(a, &info, NULL); /* else redone from DIR/current at start */
    if (changed)
        *changed = 1;
    return PEMN_OK;
}

pemn_rc pemn_agent_install_mem(pemn_agent *a, const void *data, size_t len,
                               const struct pemn_agent_expect *expect, int *changed,
                               struct pemn_err *err)
{
    if (changed)
        *changed = 0;
    if (!a || (!data && len))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad arguments");
    if (len > a->opts.max_package)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                         "package of %zu bytes over the %llu limit", len,
                         (unsigned long long)a->opts.max_package);
    /* identity first: the bytes must be the ones we were told to fetch */
    uint8_t d[PEMN_DIGEST_BYTES];
    char text[PEMN_DIGEST_TEXT_MAX];
    pemn_sha256(data, len, d);
    pemn_digest_format(d, text);
    if (expect && expect->digest) {
        uint8_t want[PEMN_DIGEST_BYTES];
        if (pemn_digest_parse(expect->digest, want))
            return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad expected digest '%s'",
                             expect->digest);
        if (sodium_memcmp(want, d, sizeof d) != 0)
            return proto_err(err, PEMN_EDIGEST, PEMN_NO_OFFSET, "package is %s, expected %s", text,
                             expect->digest);
    }
    pemn_pkg *pkg = NULL;
    pemn_rc rc = pemn_pkg_open_mem(data, len, 0, &pkg, err);
    if (rc)
        return rc;
    rc = install_opened(a, pkg, text, expect, changed, err);
    pemn_pkg_free(pkg);
    return rc;
}

pemn_rc pemn_agent_install_file(pemn_agent *a, const char *path,
                                const struct pemn_agent_expect *expect, int *changed,
                                struct pemn_err *err)
{
    if (changed)
        *changed = 0;
    if (!a || !path)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "bad arguments");
    /* read into memory: what is verified is exactly what is written, even if the file
     * changes underneath */
    uint8_t *buf;
    size_t len;
    pemn_rc rc = agent_read_file(path, a->opts.max_package, &buf, &len, err);
    if (rc)
        return rc;
    rc = pemn_agent_install_mem(a, buf, len, expect, changed, err);
    free(buf);
    return rc;
}

pemn_rc pemn_agent_rollback(pemn_agent *a, struct pemn_err *err)
{
    if (!a)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "agent is NULL");
    if (!a->st.has_previous)
        return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "no previous version is kept");
    struct pemn_agent_version prev;
    pemn_rc rc = check_version(a, a->st.previous.digest + 7, &prev, err);
    if (rc)
        return rc;
    bool crashed = false;
    if ((rc = swap_current(a, a->st.previous.digest + 7, false, err, &crashed)))
        return rc;
    struct pemn_agent_version cur = a->st.current;
    a->st.current = a->st.previous;
    a->st.previous = cur;
    a->etag[0] = a->etag_disk[0] = 0;
    return agent_state_save(a, &a->st, err);
}
