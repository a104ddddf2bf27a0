/*
 * proto/pkg_internal.h — the in-memory form of an opened package (internal to proto/).
 */
#ifndef PEMN_PROTO_PKG_INTERNAL_H
#define PEMN_PROTO_PKG_INTERNAL_H

#include "proto/maskcode.h"

#include <pemn/pkg.h>
#include <pthread.h>
#include <stdatomic.h>

struct pkg_proto {
    uint32_t kind;
    uint32_t gen;
    uint64_t length;
    float scale;
    uint8_t seed[32];
    const uint8_t *data;     /* explicit: little-endian f32 values in the file */
    _Atomic(float *) values; /* generated/converted values, or NULL until first use */
};

struct pkg_tensor {
    const char *name;
    uint32_t name_len;
    pemn_dtype dtype;
    uint32_t ndim;
    uint64_t shape[PEMN_MAX_DIMS];
    uint64_t numel;
    int masked;
    uint32_t proto;
    uint64_t offset;
    float scale;
    uint32_t encoding;
    uint64_t kept;
    const uint8_t *data; /* stored block: mask (in its encoding) or dense data */
    uint64_t data_len;
    const uint8_t *bits; /* masked, encoding 1: the packed mask bits (= data); encoding 2: NULL */
    /* masked, encoding 2: the whole decoded mask (owned), made on first use by proto_pkg_bits
     * only (expansion decodes ranges from the checkpoints instead) */
    _Atomic(uint8_t *) decoded;
    struct proto_maskcode_ckpt *ckpt; /* encoding 2: proto_maskcode_n_ckpt(mask bytes) (owned) */
};

struct pkg_meta {
    const char *key;
    const char *value;
};

struct pemn_pkg {
    const uint8_t *bytes;
    size_t len;      /* the whole file (identity), co-signatures included */
    size_t core_len; /* the header's file length: the trailer ends here */
    uint32_t n_cosigs;
    const uint8_t *cosigs; /* n_cosigs entries of PKG_COSIG_ENTRY bytes, or NULL */
    void *owned;           /* malloc'ed copy, or NULL */
    void *map;             /* mmap base, or NULL */
    size_t map_len;

    uint16_t major, minor;
    const char *name, *version, *strategy;
    uint64_t release;
    int64_t created;
    float density;

    uint32_t n_meta, n_protos, n_tensors;
    struct pkg_meta *meta;
    struct pkg_proto *protos;
    struct pkg_tensor *tensors;
    uint32_t *by_name; /* tensor indices sorted by name */

    uint64_t n_params, n_masked, f32_size;

    pthread_mutex_t lock; /* serialises lazy prototype value generation */
};

/* Streaming: tells the kernel that the mapped file bytes holding elements [first, first+n)
 * of tensor i's mask will not be needed soon (whole pages only), so a long streaming
 * expansion does not keep the whole mapped package resident. No-op for packages in memory
 * or decoded masks. The bytes stay readable (they are read again from the file). */
void proto_pkg_release(const pemn_pkg *pkg, uint32_t i, uint64_t first, uint64_t n);
/* The same for bytes [p, p + n) of the mapped file (whole pages inside the range). */
void proto_pkg_release_bytes(const pemn_pkg *pkg, const uint8_t *p, uint64_t n);

/* The packed mask bits of masked tensor t: the stored bits (encoding 1), or the whole mask
 * decoded on first use and kept until the package is freed (encoding 2; thread-safe). NULL
 * when out of memory (err set). */
const uint8_t *proto_pkg_bits(const struct pkg_tensor *t, struct pemn_err *err);

/* Values of prototype i (lazily materialised). */
pemn_rc proto_pkg_values(const pemn_pkg *pkg, uint32_t i, const float **values,
                         struct pemn_err *err);

#endif
