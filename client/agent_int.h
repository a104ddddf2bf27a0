/*
 * client/agent_int.h — internals of the fleet agent shared by client/agent_*.c.
 * Internal cross-file functions carry the agent_ prefix.
 */
#ifndef PEMN_CLIENT_AGENT_INT_H
#define PEMN_CLIENT_AGENT_INT_H

#include <pemn/agent.h>
#include <limits.h>
#include <stdbool.h>

#define AGENT_HEX_LEN 64
#define AGENT_STATE_MAX (64u * 1024u)
#define AGENT_DEFAULT_MAX_PACKAGE ((uint64_t)1 << 30)

struct pemn_agent {
    struct pemn_agent_opts opts; /* strings borrowed, as documented */
    char dir[PATH_MAX];
    char current_path[PATH_MAX];
    int lock_fd;
    struct pemn_agent_state st;
    /* network state of pemn_agent_run_once (client/agent_net.c) */
    char etag[160];             /* ETag of the last desired state acted on ("" = none) */
    char etag_disk[160];        /* the same as kept in state.json: successes only, so that a
                                   restarted agent (maybe with other keys or flags) re-evaluates a
                                   refusal */
    void *curl;                 /* CURL easy handle for polling and reports, kept alive */
    struct pemn_client *client; /* package downloads (pemn/client.h) */
    struct agent_trust *trust;  /* rollback record and root of trust (client/agent_trust.h) */
};

/* Frees the network state (client/agent_net.c). */
void agent_net_free(struct pemn_agent *a);

/* ---- file system helpers (client/agent_fs.c) ------------------------------------------- */
/* snprintf into a PATH_MAX buffer; PEMN_EINVAL when the path would not fit. */
pemn_rc agent_path(char out[PATH_MAX], struct pemn_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* fsync a file or directory by path. */
pemn_rc agent_fsync_path(const char *path, struct pemn_err *err);
/* Creates path (O_EXCL unless trunc), writes all bytes, fsyncs, closes. */
pemn_rc agent_write_file(const char *path, const void *data, size_t len, bool trunc,
                         struct pemn_err *err);
/* Writes dir/name atomically: dir/name.tmp, fsync, rename, fsync dir. */
pemn_rc agent_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                           struct pemn_err *err);
/* Reads a whole file of at most max bytes into a malloc'ed buffer (NUL-terminated). */
pemn_rc agent_read_file(const char *path, uint64_t max, uint8_t **out, size_t *len,
                        struct pemn_err *err);
/* Removes everything in DIR/download but the entry named keep (NULL: keep nothing): the agent
 * keeps at most the partial download of its current target. */
pemn_rc agent_prune_downloads(const char *dir, const char *keep, struct pemn_err *err);
/* Bytes held by DIR/versions and DIR/download (regular files; symlinks not followed). */
uint64_t agent_disk_usage(const char *dir);
/* Removes a directory tree of bounded depth (version directories hold plain files).
 * Missing is fine. */
pemn_rc agent_rmtree(const char *path, struct pemn_err *err);
/* True when s is exactly 64 lowercase hex digits. */
bool agent_is_hex64(const char *s);

/* ---- state.json (client/agent_state.c) ------------------------------------------------- */
/* Loads DIR/state.json (and the ETag of the last desired state acted on, "" if none); a
 * missing or unreadable file gives an empty state (recovery then
 * rebuilds it from DIR/current). */
void agent_state_load(const struct pemn_agent *a, struct pemn_agent_state *st, char *etag,
                      size_t etag_cap);
/* Writes st and a->etag_disk to DIR/state.json atomically. */
pemn_rc agent_state_save(const struct pemn_agent *a, const struct pemn_agent_state *st,
                         struct pemn_err *err);

/* ---- events ------------------------------------------------------------------------------ */
void agent_emit(struct pemn_agent *a, const char *state, pemn_rc rc, const char *message,
                const char *model, const char *version, uint64_t release, const char *digest);

#endif
