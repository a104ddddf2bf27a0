/*
 * proto/delta.c — package deltas (.pemnd; docs/FORMAT.md "Delta files"): making them
 * (masks as Golomb-coded flip positions, everything else as copies of aligned OLD blocks
 * or literal bytes) and applying them (two passes: every field checked before anything is
 * allocated, then the output is built and its SHA-256 compared).
 */
#include "proto/delta_int.h"
#include "proto/err.h"
#include "proto/maskcode.h"
#include "proto/pkg_internal.h"

#include <math.h>
#include <stdint.h>
#include <zlib.h>
#include <pemn/delta.h>
#include <pemn/pkg.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable output ------------------------------------------------------------------- */
struct obuf {
    uint8_t *p;
    size_t n, cap, max;
    int oom;
};

static uint8_t *ob_reserve(struct obuf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (n > b->max - b->n) {
        b->oom = 1;
        return NULL;
    }
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + n)
            c = c > b->max / 2 ? b->max : c * 2;
        uint8_t *q = realloc(b->p, c);
        if (!q) {
            b->oom = 1;
            return NULL;
        }
        b->p = q;
        b->cap = c;
    }
    uint8_t *r = b->p + b->n;
    b->n += n;
    return r;
}

static void ob_put(struct obuf *b, const void *d, size_t n)
{
    uint8_t *r = ob_reserve(b, n);
    if (r && n)
        memcpy(r, d, n);
}

/* ---- bits (LSB-first within bytes; values MSB-first) -------------------------------------- */
struct bitw {
    struct obuf *b;
    size_t start;
    uint64_t nbits;
};

static void bw_bit(struct bitw *w, unsigned bit)
{
    if (w->nbits % 8 == 0) {
        uint8_t *r = ob_reserve(w->b, 1);
        if (!r)
            return;
        *r = 0;
    }
    if (bit && !w->b->oom)
        w->b->p[w->start + w->nbits / 8] |= (uint8_t)(1u << (w->nbits % 8));
    w->nbits++;
}

static void bw_bits(struct bitw *w, uint64_t v, unsigned n)
{
    while (n--)
        bw_bit(w, (unsigned)(v >> n) & 1u);
}

/* b = ceil(log2 M) (0 for M = 1), u = 2^b - M: remainders below u take b-1 bits. */
static void golomb_params(uint64_t m, unsigned *b, uint64_t *u)
{
    unsigned k = 0;
    while (k < 64 && (UINT64_C(1) << k) < m)
        k++;
    *b = k;
    *u = (k == 64 ? 0 : (UINT64_C(1) << k)) - m;
}

static uint64_t golomb_cost(const uint64_t *gaps, uint64_t n, uint64_t m)
{
    unsigned b;
    uint64_t u, c = 0;
    golomb_params(m, &b, &u);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t q = gaps[i] / m, r = gaps[i] % m;
        c += q + 1 + (b == 0 ? 0 : r < u ? b - 1 : b);
    }
    return c;
}

/* Best Golomb parameter for the gaps: the geometric optimum and its neighbourhood. */
static uint64_t golomb_choose(const uint64_t *gaps, uint64_t n, uint64_t nbits)
{
    if (n == 0)
        return 1;
    double p = (double)n / (double)nbits;
    double m0 = p >= 1 ? 1 : ceil(-log(2 - p) / log1p(-p));
    uint64_t base = m0 < 1 ? 1 : m0 > 1e15 ? (uint64_t)1e15 : (uint64_t)m0;
    uint64_t best = base, bestc = golomb_cost(gaps, n, base);
    for (int s = -16; s <= 16; s++) {
        double f = pow(1.06, s);
        uint64_t m = (uint64_t)((double)base * f + 0.5);
        if (m < 1)
            m = 1;
        uint64_t c = golomb_cost(gaps, n, m);
        if (c < bestc)
            best = m, bestc = c;
    }
    return best;
}

/* ---- header and ops ---------------------------------------------------------------------- */
struct hdr {
    uint32_t body_enc, n_ops, dict_len;
    uint64_t total, old_len, new_len, body_len;
};

static void put_header(uint8_t *h, const struct hdr *v, const uint8_t od[32], const uint8_t nd[32])
{
    memset(h, 0, DELTA_HDR);
    memcpy(h, DELTA_MAGIC, 8);
    proto_put16(h + 8, DELTA_MAJOR);
    proto_put16(h + 10, DELTA_MINOR);
    proto_put32(h + 12, v->body_enc);
    proto_put64(h + 16, v->total);
    proto_put64(h + 24, v->old_len);
    proto_put64(h + 32, v->new_len);
    proto_put32(h + 40, v->n_ops);
    proto_put32(h + 44, v->dict_len);
    memcpy(h + 48, od, 32);
    memcpy(h + 80, nd, 32);
    proto_put64(h + 112, v->body_len);
}

/* The body deflated with OLD's first dict_len bytes as preset dictionary, into out after
 * the header. 0, or -1 (then the raw body is used). */
static int deflate_body(const uint8_t *body, size_t n, const uint8_t *dict, uInt dict_len,
                        uint8_t **out, size_t *out_len)
{
    if (n > UINT32_MAX / 2)
        return -1;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    uLong cap = deflateBound(&z, (uLong)n);
    uint8_t *o = malloc(DELTA_HDR + (size_t)cap);
    int ok = o && (!dict_len || deflateSetDictionary(&z, dict, dict_len) == Z_OK);
    if (ok) {
        z.next_in = (Bytef *)(uintptr_t)body;
        z.avail_in = (uInt)n;
        z.next_out = o + DELTA_HDR;
        z.avail_out = (uInt)cap;
        ok = deflate(&z, Z_FINISH) == Z_STREAM_END;
    }
    size_t got = (size_t)z.total_out;
    deflateEnd(&z);
    if (!ok) {
        free(o);
        return -1;
    }
    *out = o;
    *out_len = DELTA_HDR + got;
    return 0;
}

struct maker {
    struct obuf out;
    const uint8_t *old, *nw;
    size_t old_len, new_len;
    uint32_t n_ops;
    struct pemn_delta_stats st;
    /* aligned 64-byte blocks of OLD: open addressing, offset + 1, 0 = empty */
    uint64_t *tab;
    uint64_t tab_mask;
};

static void put_op(struct maker *mk, uint32_t type, uint32_t arg, uint64_t out_len, uint64_t src,
                   uint64_t payload, uint32_t enc, uint32_t param)
{
    uint8_t *e = ob_reserve(&mk->out, DELTA_OP);
    if (!e)
        return;
    memset(e, 0, DELTA_OP);
    proto_put32(e + 0, type);
    proto_put32(e + 4, arg);
    proto_put64(e + 8, out_len);
    proto_put64(e + 16, src);
    proto_put64(e + 24, payload);
    proto_put32(e + 32, enc);
    proto_put32(e + 36, param);
    mk->n_ops++;
}

static uint64_t block_hash(const uint8_t *p)
{
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < DELTA_BLOCK; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static int index_old(struct maker *mk)
{
    uint64_t nblk = mk->old_len / DELTA_BLOCK, cap = 16;
    while (cap < 2 * nblk)
        cap *= 2;
    mk->tab = calloc((size_t)cap, sizeof *mk->tab);
    if (!mk->tab)
        return -1;
    mk->tab_mask = cap - 1;
    for (uint64_t i = 0; i < nblk; i++) {
        uint64_t j = block_hash(mk->old + i * DELTA_BLOCK) & mk->tab_mask;
        while (mk->tab[j])
            j = (j + 1) & mk->tab_mask;
        mk->tab[j] = i * DELTA_BLOCK + 1;
    }
    return 0;
}

/* An OLD offset whose 64 bytes equal NEW's at p, or UINT64_MAX. */
static uint64_t find_block(const struct maker *mk, uint64_t p)
{
    const uint8_t *n = mk->nw + p;
    if (p + DELTA_BLOCK <= mk->old_len && memcmp(mk->old + p, n, DELTA_BLOCK) == 0)
        return p;
    if (p % DELTA_BLOCK)
        return UINT64_MAX;
    uint64_t j = block_hash(n) & mk->tab_mask;
    for (int probes = 0; mk->tab[j] && probes < 64; probes++) {
        uint64_t o = mk->tab[j] - 1;
        if (memcmp(mk->old + o, n, DELTA_BLOCK) == 0)
            return o;
        j = (j + 1) & mk->tab_mask;
    }
    return UINT64_MAX;
}

static void emit_literal(struct maker *mk, uint64_t a, uint64_t b)
{
    if (b <= a)
        return;
    put_op(mk, DELTA_OP_DATA, 0, b - a, 0, b - a, 0, 0);
    ob_put(&mk->out, mk->nw + a, (size_t)(b - a));
    mk->st.literal_bytes += b - a;
}

/* NEW bytes [a, b) as copies of OLD and literals. */
static void diff_bytes(struct maker *mk, uint64_t a, uint64_t b)
{
    uint64_t p = a, lit = a;
    while (p < b) {
        uint64_t q = p + DELTA_BLOCK <= b ? find_block(mk, p) : UINT64_MAX;
        if (q == UINT64_MAX && p + DELTA_BLOCK > b && b <= mk->old_len &&
            memcmp(mk->old + p, mk->nw + p, (size_t)(b - p)) == 0) {
            /* a short tail equal at the same offset */
            emit_literal(mk, lit, p);
            put_op(mk, DELTA_OP_COPY, 0, b - p, p, 0, 0, 0);
            mk->st.copied_bytes += b - p;
            p = lit = b;
            break;
        }
        if (q == UINT64_MAX) {
            p += DELTA_BLOCK - p % DELTA_BLOCK;
            continue;
        }
        uint64_t len = DELTA_BLOCK;
        while (p + len < b && q + len < mk->old_len && mk->nw[p + len] == mk->old[q + len])
            len++;
        /* grow backwards into the pending literal */
        while (p > lit && q > 0 && mk->nw[p - 1] == mk->old[q - 1])
            p--, q--, len++;
        emit_literal(mk, lit, p);
        put_op(mk, DELTA_OP_COPY, 0, len, q, 0, 0, 0);
        mk->st.copied_bytes += len;
        p += len;
        lit = p;
    }
    emit_literal(mk, lit, b < p ? b : p);
}

static double h2(double k)
{
    return k <= 0 || k >= 1 ? 0 : -k * log2(k) - (1 - k) * log2(1 - k);
}

/* A MASK op for NEW tensor block [off, off + len) from OLD tensor oi. 0, or -1 when the
 * block cannot be rebuilt from flips (then the caller sends it as bytes). */
static int diff_mask(struct maker *mk, const pemn_pkg *op, uint32_t oi, const struct pkg_tensor *nt,
                     uint64_t nbytes, struct pemn_err *err)
{
    const struct pkg_tensor *ot = &op->tensors[oi];
    const uint8_t *obits = proto_pkg_bits(ot, err), *nbits = proto_pkg_bits(nt, err);
    if (!obits || !nbits) {
        mk->out.oom = 1;
        return 0;
    }
    if (nt->encoding == PEMN_MASK_RANS) {
        /* the patcher re-encodes: only when that reproduces NEW's block exactly */
        uint8_t *re;
        uint64_t rl;
        if (proto_maskcode_encode(nbits, nbytes, 0, &re, &rl, err) != PEMN_OK)
            return -1;
        int same = rl == nt->data_len && memcmp(re, nt->data, (size_t)rl) == 0;
        free(re);
        if (!same)
            return -1;
    }
    uint64_t nflips = 0;
    for (uint64_t i = 0; i < nbytes; i++)
        nflips += (uint64_t)__builtin_popcount(obits[i] ^ nbits[i]);
    uint64_t *gaps = malloc((size_t)(nflips ? nflips : 1) * sizeof *gaps);
    if (!gaps) {
        mk->out.oom = 1;
        return 0;
    }
    uint64_t k = 0, next = 0;
    for (uint64_t i = 0; i < nbytes; i++) {
        unsigned x = obits[i] ^ nbits[i];
        while (x) {
            uint64_t pos = i * 8 + (uint64_t)__builtin_ctz(x);
            x &= x - 1;
            gaps[k++] = pos - next;
            next = pos + 1;
        }
    }
    uint64_t m = golomb_choose(gaps, nflips, nt->numel);
    if (m > UINT32_MAX)
        m = UINT32_MAX;
    size_t at = mk->out.n;
    put_op(mk, DELTA_OP_MASK, oi, nt->data_len, nflips, 0, nt->encoding, (uint32_t)m);
    struct bitw w = {&mk->out, mk->out.n, 0};
    unsigned b;
    uint64_t u;
    golomb_params(m, &b, &u);
    for (uint64_t i = 0; i < nflips; i++) {
        uint64_t q = gaps[i] / m, r = gaps[i] % m;
        for (uint64_t j = 0; j < q; j++)
            bw_bit(&w, 1);
        bw_bit(&w, 0);
        if (b && r < u)
            bw_bits(&w, r, b - 1);
        else if (b)
            bw_bits(&w, r + u, b);
    }
    free(gaps);
    uint64_t pl = (w.nbits + 7) / 8;
    if (!mk->out.oom)
        proto_put64(mk->out.p + at + 24, pl);
    mk->st.mask_tensors++;
    mk->st.mask_bits += nt->numel;
    mk->st.flips += nflips;
    mk->st.ideal_bytes += (double)nt->numel * h2((double)nflips / (double)nt->numel) / 8;
    mk->st.flip_bytes += pl;
    return 0;
}

struct region {
    uint64_t off, len;
    uint32_t new_i, old_i;
};

static int cmp_region(const void *a, const void *b)
{
    const struct region *x = a, *y = b;
    return (x->off > y->off) - (x->off < y->off);
}

pemn_rc pemn_delta_make(const uint8_t *old_pkg, size_t old_len, const uint8_t *new_pkg,
                        size_t new_len, uint8_t **out, size_t *out_len,
                        struct pemn_delta_stats *stats, struct pemn_err *err)
{
    if (!old_pkg || !new_pkg || !out || !out_len)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    *out_len = 0;
    if (pemn_init() != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "libsodium failed to initialise");
    pemn_pkg *op = NULL, *np = NULL;
    struct region *rg = NULL;
    struct maker mk;
    memset(&mk, 0, sizeof mk);
    struct pemn_err e2 = {0};
    pemn_rc rc = pemn_pkg_open_mem(old_pkg, old_len, 0, &op, &e2);
    if (rc) {
        proto_err(err, rc, PEMN_NO_OFFSET, "old package: %s", e2.msg);
        goto out;
    }
    rc = pemn_pkg_open_mem(new_pkg, new_len, 0, &np, &e2);
    if (rc) {
        proto_err(err, rc, PEMN_NO_OFFSET, "new package: %s", e2.msg);
        goto out;
    }
    mk.old = op->bytes;
    mk.nw = np->bytes;
    mk.old_len = old_len;
    mk.new_len = new_len;
    mk.out.max = SIZE_MAX / 2;
    rc = PEMN_ENOMEM;
    if (index_old(&mk) != 0)
        goto oom;
    rg = calloc(np->n_tensors ? np->n_tensors : 1, sizeof *rg);
    if (!rg)
        goto oom;
    uint32_t nr = 0;
    for (uint32_t i = 0; i < np->n_tensors; i++) {
        const struct pkg_tensor *t = &np->tensors[i];
        uint32_t oi;
        if (!t->masked || t->numel == 0 || pemn_pkg_find(op, t->name, &oi) != PEMN_OK)
            continue;
        if (!op->tensors[oi].masked || op->tensors[oi].numel != t->numel)
            continue;
        rg[nr++] = (struct region){(uint64_t)(t->data - np->bytes), t->data_len, i, oi};
    }
    qsort(rg, nr, sizeof *rg, cmp_region);

    uint64_t pos = 0;
    for (uint32_t r = 0; r < nr; r++) {
        const struct pkg_tensor *t = &np->tensors[rg[r].new_i];
        diff_bytes(&mk, pos, rg[r].off);
        size_t before_mask = mk.out.n;
        uint32_t ops_mask = mk.n_ops;
        struct pemn_delta_stats keep2 = mk.st;
        if (diff_mask(&mk, op, rg[r].old_i, t, (t->numel + 7) / 8, NULL) != 0 ||
            mk.out.n - before_mask >= DELTA_OP + rg[r].len) {
            /* flips would not be smaller than the block itself: send it as bytes */
            mk.out.n = before_mask;
            mk.n_ops = ops_mask;
            mk.st = keep2;
            diff_bytes(&mk, rg[r].off, rg[r].off + rg[r].len);
        }
        pos = rg[r].off + rg[r].len;
    }
    diff_bytes(&mk, pos, new_len);
    if (mk.out.oom)
        goto oom;
    if (mk.n_ops > PEMN_DELTA_MAX_OPS) {
        rc = proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "delta needs %u operations (at most %u)",
                       mk.n_ops, PEMN_DELTA_MAX_OPS);
        goto out;
    }
    uint8_t od[32], nd[32];
    pemn_sha256(old_pkg, old_len, od);
    pemn_sha256(new_pkg, new_len, nd);
    /* dictionary: OLD up to its first data block (header, tables, strings: what NEW's
     * non-mask bytes resemble), at most half a window so that it stays within reach */
    uint64_t dict = old_len < DELTA_DICT_MAX / 2 ? old_len : DELTA_DICT_MAX / 2;
    for (uint32_t i = 0; i < op->n_tensors; i++)
        if (op->tensors[i].data_len && (uint64_t)(op->tensors[i].data - op->bytes) < dict)
            dict = (uint64_t)(op->tensors[i].data - op->bytes);
    for (uint32_t i = 0; i < op->n_protos; i++)
        if (op->protos[i].data && (uint64_t)(op->protos[i].data - op->bytes) < dict)
            dict = (uint64_t)(op->protos[i].data - op->bytes);
    struct hdr h = {DELTA_BODY_ZLIB, mk.n_ops, (uint32_t)dict, 0, old_len, new_len, mk.out.n};
    uint8_t *res = NULL;
    size_t res_len = 0;
    if (deflate_body(mk.out.p, mk.out.n, old_pkg, h.dict_len, &res, &res_len) != 0 ||
        res_len >= DELTA_HDR + mk.out.n) {
        free(res);
        res = malloc(DELTA_HDR + mk.out.n);
        if (!res)
            goto oom;
        memcpy(res + DELTA_HDR, mk.out.p, mk.out.n);
        res_len = DELTA_HDR + mk.out.n;
        h.body_enc = DELTA_BODY_RAW;
        h.dict_len = 0;
    }
    h.total = res_len;
    put_header(res, &h, od, nd);
    mk.st.delta_bytes = res_len;
    if (stats)
        *stats = mk.st;
    *out = res;
    *out_len = res_len;
    rc = PEMN_OK;
    goto out;
oom:
    rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
out:
    free(mk.out.p);
    free(mk.tab);
    free(rg);
    pemn_pkg_free(op);
    pemn_pkg_free(np);
    return rc;
}
