/*
 * server/srv_upload.h — bounded request bodies (uploads), reusable by every route that takes
 * one (pushes, fleet JSON, other wire protocols).
 *
 * A body is kept in memory up to `buffer` bytes per request, and only while the memory held
 * by all uploads together stays under `memory_max`; past either it is spilled to an unlinked
 * temporary file in `tmp_dir` (O_TMPFILE, else mkostemp + unlink). Spilled bytes in all count
 * against `spill_max` (0: only the disk bounds them). A spill that fails (disk full, over
 * spill_max, I/O error) marks the body failed with an errno; the caller keeps reading (and
 * discarding) the rest of the body and then answers 507 (ENOSPC) or 503, so the client gets
 * an answer instead of a dropped connection.
 *
 * Thread-safety: one struct srv_uploads is shared by every request thread (atomic counters);
 * a struct srv_body belongs to one request.
 */
#ifndef PEMN_SERVER_SRV_UPLOAD_H
#define PEMN_SERVER_SRV_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct srv_uploads;

struct srv_body {
    uint8_t *buf;
    size_t len, cap;  /* cap bytes are reserved from the pool */
    int fd;           /* spilled to a temp file when >= 0 */
    uint64_t size;    /* total received */
    uint64_t spilled; /* bytes written to fd (counted against spill_max) */
    void *map;        /* mmap of the temp file once complete */
    bool too_large;
    int failed; /* errno of a failed spill (0: none); the rest of the body is discarded */
};

/* NULL when out of memory. tmp_dir is copied. */
struct srv_uploads *srv_uploads_new(const char *tmp_dir, uint64_t buffer, uint64_t memory_max,
                                    uint64_t spill_max);
void srv_uploads_free(struct srv_uploads *u); /* NULL is a no-op */
/* Bytes of memory held by upload buffers now / spilled bytes held on disk now. */
uint64_t srv_uploads_memory(const struct srv_uploads *u);
uint64_t srv_uploads_spilled(const struct srv_uploads *u);

/* Initialises an empty body. */
void srv_body_init(struct srv_body *b);
/* Appends n bytes, keeping at most limit in all. 0 stored (or discarded after a failed
 * spill: see b->failed); 1 over the limit (discarded, b->too_large). */
int srv_body_append(struct srv_uploads *u, struct srv_body *b, uint64_t limit, const void *data,
                    size_t n);
/* Maps a spilled body for reading. 0 ok; -1 with errno. */
int srv_body_finish(struct srv_body *b);
/* The whole body (valid until srv_body_release). */
void srv_body_data(const struct srv_body *b, const uint8_t **data, size_t *len);
/* Frees the body and returns its memory and disk to the pool. */
void srv_body_release(struct srv_uploads *u, struct srv_body *b);

#endif
