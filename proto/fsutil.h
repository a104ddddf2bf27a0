/*
 * proto/fsutil.h — atomic file replacement, folder creation and safe opening of state files
 * (internal).
 */
#ifndef PEMN_PROTO_FSUTIL_H
#define PEMN_PROTO_FSUTIL_H

#include <pemn/common.h>
#include <sys/types.h>

/* Writes len bytes to a new temporary file in path's directory, fsyncs it, sets mode,
 * renames it over path and fsyncs the directory. On failure nothing at path changes and
 * the temporary file is removed. */
pemn_rc proto_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                           struct pemn_err *err);

/* mkdir -p: creates path and its missing parents with mode (existing folders are fine; an
 * existing non-folder is PEMN_EIO). */
pemn_rc proto_mkdir_p(const char *path, mode_t mode, struct pemn_err *err);
/* proto_mkdir_p of the folder that holds file ("" and "." need nothing). */
pemn_rc proto_mkdir_parent(const char *file, mode_t mode, struct pemn_err *err);

/* Opens an existing file (flags as open(2); with O_CREAT it may create it) refusing a
 * symbolic link at path (O_NOFOLLOW) and anything that is not a regular file (FIFO, device,
 * directory), without ever blocking on a special file. Returns the descriptor (O_CLOEXEC,
 * blocking mode) or -1 with err set (PEMN_ENOTFOUND when absent, else PEMN_EIO) and errno. */
int proto_open_regular(const char *path, int flags, mode_t mode, struct pemn_err *err);
/* Creates path as a new regular file for writing (O_CREAT | O_EXCL | O_NOFOLLOW): whatever
 * already sits at path (a stale temporary, a planted symlink) is unlinked first, never
 * followed. Returns the descriptor or -1 with err set. */
int proto_create_exclusive(const char *path, mode_t mode, struct pemn_err *err);

#endif
