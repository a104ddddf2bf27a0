/*
 * libFuzzer target: the safetensors reader on arbitrary bytes. Whatever opens must expose
 * only in-bounds tensors, and must survive a write / re-read round trip unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/safetensors.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pemn_st *st = NULL;
    struct pemn_err err;
    if (pemn_st_open_mem(data, size, 0, &st, &err) != PEMN_OK)
        return 0;
    pemn_st_writer *w = NULL;
    if (pemn_st_writer_new(&w) != PEMN_OK)
        abort();
    uint32_t n = pemn_st_count(st);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct pemn_st_tensor t;
        if (pemn_st_tensor(st, i, &t) != PEMN_OK)
            abort();
        const uint8_t *p = t.data;
        if (t.nbytes && (p < data || p + t.nbytes > data + size))
            abort();
        uint8_t x = 0;
        for (uint64_t k = 0; k < t.nbytes; k++)
            x ^= p[k];
        (void)x;
        total += t.nbytes;
        uint32_t idx;
        if (pemn_st_find(st, t.name, &idx) != PEMN_OK || idx != i)
            abort();
        if (pemn_st_writer_add(w, t.name, t.dtype, t.ndim, t.shape, t.data, t.nbytes, &err) !=
            PEMN_OK)
            abort();
    }
    if (total > size)
        abort();
    for (uint32_t i = 0; i < pemn_st_meta_count(st); i++) {
        const char *k, *v;
        if (pemn_st_meta(st, i, &k, &v) != PEMN_OK || pemn_st_meta_get(st, k) == NULL)
            abort();
        if (pemn_st_writer_add_meta(w, k, v) != PEMN_OK)
            abort();
    }
    uint8_t *out = NULL;
    size_t len = 0;
    pemn_rc rc = pemn_st_writer_write_mem(w, &out, &len, &err);
    if (rc == PEMN_OK) {
        pemn_st *back = NULL;
        if (pemn_st_open_mem(out, len, 0, &back, &err) != PEMN_OK)
            abort();
        if (pemn_st_count(back) != n || pemn_st_meta_count(back) != pemn_st_meta_count(st))
            abort();
        for (uint32_t i = 0; i < n; i++) {
            struct pemn_st_tensor a, b;
            if (pemn_st_tensor(st, i, &a) != PEMN_OK || pemn_st_tensor(back, i, &b) != PEMN_OK)
                abort();
            if (strcmp(a.name, b.name) != 0 || a.dtype != b.dtype || a.ndim != b.ndim ||
                a.nbytes != b.nbytes || memcmp(a.shape, b.shape, sizeof a.shape) != 0 ||
                (a.nbytes && memcmp(a.data, b.data, a.nbytes) != 0))
                abort();
        }
        pemn_st_free(back);
        free(out);
    } else if (rc != PEMN_ETOOBIG && rc != PEMN_ENOMEM) {
        abort();
    }
    pemn_st_writer_free(w);
    pemn_st_free(st);
    return 0;
}
