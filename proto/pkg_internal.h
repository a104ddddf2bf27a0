/*
 * proto/pkg_internal.h — the in-memory form of an opened package (internal to proto/).
 */
#ifndef PEMN_PROTO_PKG_INTERNAL_H
#define PEMN_PROTO_PKG_INTERNAL_H

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
    const uint8_t *data; /* mask bits or dense data */
    uint64_t data_len;
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

/* Values of prototype i (lazily materialised). */
pemn_rc proto_pkg_values(const pemn_pkg *pkg, uint32_t i, const float **values,
                         struct pemn_err *err);

#endif
