/*
 * server/srv_upload.c — bounded request bodies: a small per-request memory buffer drawn from a
 * global budget, spilling to an unlinked temporary file (srv_upload.h).
 */
#include "server/srv_upload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct srv_uploads {
    char tmp_dir[1024];
    uint64_t buffer, memory_max, spill_max;
    atomic_uint_least64_t memory, spilled;
};

struct srv_uploads *srv_uploads_new(const char *tmp_dir, uint64_t buffer, uint64_t memory_max,
                                    uint64_t spill_max)
{
    struct srv_uploads *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    snprintf(u->tmp_dir, sizeof u->tmp_dir, "%s", tmp_dir);
    u->buffer = buffer;
    u->memory_max = memory_max;
    u->spill_max = spill_max;
    atomic_init(&u->memory, 0);
    atomic_init(&u->spilled, 0);
    return u;
}

void srv_uploads_free(struct srv_uploads *u)
{
    free(u);
}

uint64_t srv_uploads_memory(const struct srv_uploads *u)
{
    return atomic_load(&((struct srv_uploads *)u)->memory);
}

uint64_t srv_uploads_spilled(const struct srv_uploads *u)
{
    return atomic_load(&((struct srv_uploads *)u)->spilled);
}

/* Takes n bytes from a counter bounded by max (0: unbounded). */
static bool reserve(atomic_uint_least64_t *c, uint64_t max, uint64_t n)
{
    uint64_t cur = atomic_load(c);
    do {
        if (max && (cur + n > max || cur + n < cur))
            return false;
    } while (!atomic_compare_exchange_weak(c, &cur, cur + n));
    return true;
}

void srv_body_init(struct srv_body *b)
{
    memset(b, 0, sizeof *b);
    b->fd = -1;
}

static int spill_open(const struct srv_uploads *u)
{
    int fd = open(u->tmp_dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    char path[1100];
    snprintf(path, sizeof path, "%s/.pemnd-upload-XXXXXX", u->tmp_dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w == 0)
            errno = ENOSPC;
        if (w <= 0)
            return -1;
        b += w, n -= (size_t)w;
    }
    return 0;
}

/* Writes to the spill file, counting against spill_max. 0 or -1 with errno. */
static int spill_write(struct srv_uploads *u, struct srv_body *b, const void *p, size_t n)
{
    if (!reserve(&u->spilled, u->spill_max, n)) {
        errno = ENOSPC;
        return -1;
    }
    b->spilled += n;
    return write_all(b->fd, p, n);
}

static void drop_memory(struct srv_uploads *u, struct srv_body *b)
{
    free(b->buf);
    atomic_fetch_sub(&u->memory, b->cap);
    b->buf = NULL;
    b->len = b->cap = 0;
}

/* Grows the memory buffer to hold need bytes within both limits; false: spill instead. */
static bool grow(struct srv_uploads *u, struct srv_body *b, size_t need)
{
    if (need <= b->cap)
        return true;
    if (need > u->buffer)
        return false;
    size_t cap = b->cap ? b->cap : 16 * 1024;
    while (cap < need)
        cap *= 2;
    if (cap > u->buffer)
        cap = (size_t)u->buffer;
    if (!reserve(&u->memory, u->memory_max, cap - b->cap))
        return false;
    uint8_t *nb = realloc(b->buf, cap);
    if (!nb) {
        atomic_fetch_sub(&u->memory, cap - b->cap);
        return false;
    }
    b->buf = nb;
    b->cap = cap;
    return true;
}

int srv_body_append(struct srv_uploads *u, struct srv_body *b, uint64_t limit, const void *data,
                    size_t n)
{
    if (b->too_large || b->size + n > limit || b->size + n < b->size) {
        b->too_large = true;
        b->size += n;
        return 1;
    }
    b->size += n;
    if (b->failed)
        return 0; /* discarding: the caller answers once the body has been read */
    if (b->fd < 0 && grow(u, b, b->len + n)) {
        memcpy(b->buf + b->len, data, n);
        b->len += n;
        return 0;
    }
    if (b->fd < 0) {
        if ((b->fd = spill_open(u)) < 0 || (b->len && spill_write(u, b, b->buf, b->len))) {
            b->failed = errno ? errno : EIO;
            drop_memory(u, b);
            return 0;
        }
        drop_memory(u, b);
    }
    if (spill_write(u, b, data, n)) {
        b->failed = errno ? errno : EIO;
        return 0;
    }
    return 0;
}

int srv_body_finish(struct srv_body *b)
{
    if (b->fd < 0 || b->map || b->size == 0)
        return 0;
    void *m = mmap(NULL, (size_t)b->size, PROT_READ, MAP_PRIVATE, b->fd, 0);
    if (m == MAP_FAILED)
        return -1;
    b->map = m;
    return 0;
}

void srv_body_data(const struct srv_body *b, const uint8_t **data, size_t *len)
{
    if (b->map) {
        *data = b->map;
        *len = (size_t)b->size;
    } else {
        *data = b->buf ? b->buf : (const uint8_t *)"";
        *len = b->len;
    }
}

void srv_body_release(struct srv_uploads *u, struct srv_body *b)
{
    if (b->map)
        munmap(b->map, (size_t)b->size);
    if (b->fd >= 0)
        close(b->fd);
    drop_memory(u, b);
    atomic_fetch_sub(&u->spilled, b->spilled);
    b->spilled = 0;
    b->map = NULL;
    b->fd = -1;
}
