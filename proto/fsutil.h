/*
 * proto/fsutil.h — atomic file replacement and folder creation (internal).
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

#endif
