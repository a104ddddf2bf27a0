/*
 * proto/delta_apply.c — reading and applying .pemnd deltas (layout in proto/delta_int.h,
 * spec in docs/FORMAT.md "Delta files"). Hostile input: every length, count, offset and
 * index is checked in a first pass, before the output (whose size is bounded by OLD and
 * the delta) is allocated; the flip decoder never reads past its payload nor writes past
 * its mask; the result must hash to the NEW digest the delta names.
 */
#include "proto/delta_int.h"
#include "proto/err.h"
#include "proto/maskcode.h"
#include "proto/pkg_internal.h"

#include <pemn/delta.h>
#include <pemn/pkg.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define BAD(off, ...) proto_err(err, PEMN_ECORRUPT, (off), __VA_ARGS__)

pemn_rc pemn_delta_info(const uint8_t *d, size_t len, struct pemn_delta_info *out,
                        struct pemn_err *err)
{
    if (!d || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    memset(out, 0, sizeof *out);
    if (len < DELTA_HDR || memcmp(d, DELTA_MAGIC, 8) != 0)
        return BAD(0, "not a pemn delta (bad magic or shorter than %u bytes)", DELTA_HDR);
    out->format_major = proto_le16(d + 8);
    out->format_minor = proto_le16(d + 10);
    if (out->format_major != DELTA_MAJOR)
        return proto_err(err, PEMN_EVERSION, 8, "delta format %u.%u is not supported",
                         out->format_major, out->format_minor);
    out->body_encoding = proto_le32(d + 12);
    if (out->body_encoding != DELTA_BODY_RAW && out->body_encoding != DELTA_BODY_ZLIB)
        return proto_err(err, PEMN_EUNSUPPORTED, 12, "unknown delta body encoding %u",
                         out->body_encoding);
    if (proto_le64(d + 16) != len)
        return BAD(16, "delta length field %llu, file is %zu bytes",
                   (unsigned long long)proto_le64(d + 16), len);
    out->old_len = proto_le64(d + 24);
    out->new_len = proto_le64(d + 32);
    out->n_ops = proto_le32(d + 40);
    if (out->n_ops > PEMN_DELTA_MAX_OPS)
        return proto_err(err, PEMN_ETOOBIG, 40, "delta has %u operations (at most %u)", out->n_ops,
                         PEMN_DELTA_MAX_OPS);
    out->body_len = proto_le64(d + 112);
    uint32_t dict = proto_le32(d + 44);
    if (out->body_encoding == DELTA_BODY_RAW && (out->body_len != len - DELTA_HDR || dict != 0))
        return BAD(112, "raw delta body: length %llu, file has %zu bytes after the header",
                   (unsigned long long)out->body_len, len - DELTA_HDR);
    if (dict > DELTA_DICT_MAX || dict > out->old_len)
        return BAD(44, "dictionary length %u", dict);
    if ((uint64_t)out->n_ops * DELTA_OP > out->body_len)
        return BAD(40, "delta op count %u does not fit", out->n_ops);
    memcpy(out->old_digest, d + 48, 32);
    memcpy(out->new_digest, d + 80, 32);
    return PEMN_OK;
}

struct bitr {
    const uint8_t *p;
    uint64_t nbits, pos;
};

static int br_bit(struct bitr *r, unsigned *bit)
{
    if (r->pos >= r->nbits)
        return -1;
    *bit = (r->p[r->pos / 8] >> (r->pos % 8)) & 1u;
    r->pos++;
    return 0;
}

static int br_bits(struct bitr *r, unsigned n, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned b;
        if (br_bit(r, &b))
            return -1;
        x = x << 1 | b;
    }
    *v = x;
    return 0;
}

/* XORs the coded flip positions into bits (nbits elements). 0, or -1 on malformed input. */
static int apply_flips(uint8_t *bits, uint64_t nbits, uint64_t nflips, uint64_t m,
                       const uint8_t *pl, uint64_t pl_len)
{
    unsigned b = 0;
    while (b < 64 && (UINT64_C(1) << b) < m)
        b++;
    uint64_t u = (UINT64_C(1) << b) - m; /* b <= 32: m fits in u32 */
    struct bitr r = {pl, pl_len * 8, 0};
    uint64_t next = 0;
    for (uint64_t i = 0; i < nflips; i++) {
        uint64_t q = 0, rem = 0;
        unsigned bit;
        for (;;) {
            if (br_bit(&r, &bit))
                return -1;
            if (!bit)
                break;
            q++;
        }
        if (b) {
            if (br_bits(&r, b - 1, &rem))
                return -1;
            if (rem >= u) {
                if (br_bit(&r, &bit))
                    return -1;
                rem = (rem << 1 | bit) - u;
            }
        }
        if (q > nbits / m)
            return -1;
        uint64_t gap = q * m + rem;
        if (gap >= nbits - next)
            return -1;
        uint64_t pos = next + gap;
        bits[pos / 8] ^= (uint8_t)(1u << (pos % 8));
        next = pos + 1;
    }
    /* canonical: the payload is exactly the bits used, padded with zero bits */
    if ((r.pos + 7) / 8 != pl_len)
        return -1;
    for (uint64_t k = r.pos; k < r.nbits; k++)
        if ((pl[k / 8] >> (k % 8)) & 1u)
            return -1;
    return 0;
}

/* Inflates the zlib body of delta d (dictionary: OLD's first dict bytes) into exactly blen
 * bytes (malloc'ed). */
static pemn_rc inflate_body(const uint8_t *d, size_t dlen, const uint8_t *old, uint32_t dict,
                            uint64_t blen, uint8_t **out, struct pemn_err *err)
{
    *out = NULL;
    uint8_t *b = malloc(blen ? (size_t)blen : 1);
    if (!b)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15) != Z_OK) {
        free(b);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory (zlib)");
    }
    z.next_in = (Bytef *)(uintptr_t)(d + DELTA_HDR);
    z.avail_in = (uInt)(dlen - DELTA_HDR < UINT32_MAX ? dlen - DELTA_HDR : UINT32_MAX);
    z.next_out = b;
    z.avail_out = (uInt)blen;
    int r = inflate(&z, Z_FINISH);
    if (r == Z_NEED_DICT)
        r = inflateSetDictionary(&z, old, dict) == Z_OK ? inflate(&z, Z_FINISH) : Z_DATA_ERROR;
    /* (total_in does not count the bytes read before the dictionary was set) */
    int ok =
        r == Z_STREAM_END && z.avail_out == 0 && z.avail_in == 0 && dlen - DELTA_HDR <= UINT32_MAX;
    uint64_t where = dlen - z.avail_in;
    inflateEnd(&z);
    if (!ok) {
        free(b);
        return BAD(where, "delta body does not inflate to the %llu bytes announced",
                   (unsigned long long)blen);
    }
    *out = b;
    return PEMN_OK;
}

pemn_rc pemn_delta_apply(const uint8_t *old_pkg, size_t old_len, const uint8_t *d, size_t dlen,
                         uint8_t **out, size_t *out_len, struct pemn_err *err)
{
    if (!old_pkg || !d || !out || !out_len)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    *out_len = 0;
    if (pemn_init() != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "libsodium failed to initialise");
    struct pemn_delta_info in;
    pemn_rc rc = pemn_delta_info(d, dlen, &in, err);
    if (rc)
        return rc;
    uint8_t dg[32];
    pemn_sha256(old_pkg, old_len, dg);
    if (in.old_len != old_len || sodium_memcmp(dg, in.old_digest, 32) != 0)
        return proto_err(err, PEMN_EDIGEST, 48, "the delta was made from another base package");
    uint64_t bound = 2 * (uint64_t)old_len + dlen + PEMN_DELTA_SLACK;
    if (in.new_len > bound || in.new_len > SIZE_MAX / 2)
        return proto_err(err, PEMN_ETOOBIG, 32, "delta claims a %llu-byte result (at most %llu)",
                         (unsigned long long)in.new_len, (unsigned long long)bound);
    /* the body (ops), inflated when compressed */
    const uint8_t *body = d + DELTA_HDR;
    uint8_t *inflated = NULL;
    uint64_t blen = in.body_len, off0 = DELTA_HDR;
    if (in.body_encoding == DELTA_BODY_ZLIB) {
        uint64_t bb = 2 * in.new_len + (uint64_t)in.n_ops * DELTA_OP + PEMN_DELTA_SLACK;
        if (blen > bb || blen > UINT32_MAX)
            return proto_err(err, PEMN_ETOOBIG, 112, "delta body of %llu bytes (at most %llu)",
                             (unsigned long long)blen, (unsigned long long)bb);
        if ((rc = inflate_body(d, dlen, old_pkg, proto_le32(d + 44), blen, &inflated, err)))
            return rc;
        body = inflated;
        off0 = 0;
    }
    pemn_pkg *op = NULL;
    struct pemn_err e2 = {0};
    rc = pemn_pkg_open_mem(old_pkg, old_len, 0, &op, &e2);
    if (rc) {
        free(inflated);
        return proto_err(err, rc, PEMN_NO_OFFSET, "base package: %s", e2.msg);
    }

    /* pass 1: structure */
    uint64_t pos = 0, total = 0, maxmask = 0;
    for (uint32_t i = 0; i < in.n_ops; i++) {
        if (blen - pos < DELTA_OP) {
            rc = BAD(off0 + pos, "op %u: truncated", i);
            goto out;
        }
        const uint8_t *e = body + pos;
        uint32_t type = proto_le32(e), arg = proto_le32(e + 4);
        uint64_t olen = proto_le64(e + 8), src = proto_le64(e + 16), pl = proto_le64(e + 24);
        uint32_t enc = proto_le32(e + 32), prm = proto_le32(e + 36);
        if (pl > blen - pos - DELTA_OP) {
            rc = BAD(off0 + pos + 24, "op %u: payload of %llu bytes does not fit", i,
                     (unsigned long long)pl);
            goto out;
        }
        if (type == DELTA_OP_COPY) {
            if (arg || pl || enc || prm || src > old_len || olen > old_len - src) {
                rc = BAD(off0 + pos, "op %u: copy outside the base package", i);
                goto out;
            }
        } else if (type == DELTA_OP_DATA) {
            if (arg || src || enc || prm || pl != olen) {
                rc = BAD(off0 + pos, "op %u: malformed literal", i);
                goto out;
            }
        } else if (type == DELTA_OP_MASK) {
            if (arg >= op->n_tensors || !op->tensors[arg].masked) {
                rc = BAD(off0 + pos + 4, "op %u: base tensor %u is not a masked tensor", i, arg);
                goto out;
            }
            uint64_t nb = (op->tensors[arg].numel + 7) / 8;
            int ok_len = enc == PEMN_MASK_BITS ? olen == nb
                         : enc == PEMN_MASK_RANS
                             ? olen >= PROTO_MASKCODE_HDR && proto_maskcode_ratio_ok(nb, olen) &&
                                   olen <= 2 * nb + 64
                             : 0;
            if (!ok_len || prm == 0 || src > op->tensors[arg].numel) {
                rc = BAD(off0 + pos, "op %u: malformed mask operation", i);
                goto out;
            }
            maxmask = nb > maxmask ? nb : maxmask;
        } else {
            rc = BAD(off0 + pos, "op %u: unknown type %u", i, type);
            goto out;
        }
        if (proto_add_overflow(total, olen, &total) || total > in.new_len) {
            rc = BAD(off0 + pos + 8, "op %u: output longer than the %llu bytes announced", i,
                     (unsigned long long)in.new_len);
            goto out;
        }
        pos += DELTA_OP + pl;
    }
    if (pos != blen) {
        rc = BAD(off0 + pos, "%llu bytes after the last op", (unsigned long long)(blen - pos));
        goto out;
    }
    if (total != in.new_len) {
        rc = BAD(32, "ops produce %llu bytes, header says %llu", (unsigned long long)total,
                 (unsigned long long)in.new_len);
        goto out;
    }

    /* pass 2: build */
    uint8_t *res = malloc(in.new_len ? (size_t)in.new_len : 1);
    uint8_t *tmp = malloc(maxmask ? (size_t)maxmask : 1);
    if (!res || !tmp) {
        free(res);
        free(tmp);
        rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        goto out;
    }
    uint64_t w = 0;
    pos = 0;
    for (uint32_t i = 0; i < in.n_ops && !rc; i++) {
        const uint8_t *e = body + pos;
        uint32_t type = proto_le32(e), arg = proto_le32(e + 4);
        uint64_t olen = proto_le64(e + 8), src = proto_le64(e + 16), pl = proto_le64(e + 24);
        uint32_t enc = proto_le32(e + 32), prm = proto_le32(e + 36);
        const uint8_t *payload = e + DELTA_OP;
        if (type == DELTA_OP_COPY) {
            memcpy(res + w, old_pkg + src, (size_t)olen);
        } else if (type == DELTA_OP_DATA) {
            memcpy(res + w, payload, (size_t)olen);
        } else {
            const struct pkg_tensor *t = &op->tensors[arg];
            uint64_t nb = (t->numel + 7) / 8;
            const uint8_t *tb = proto_pkg_bits(t, err);
            if (!tb) {
                rc = PEMN_ENOMEM;
                break;
            }
            memcpy(tmp, tb, (size_t)nb);
            if (apply_flips(tmp, t->numel, src, prm, payload, pl) != 0) {
                rc = BAD(off0 + pos + DELTA_OP, "op %u: malformed flip positions", i);
                break;
            }
            if (enc == PEMN_MASK_BITS) {
                memcpy(res + w, tmp, (size_t)nb);
            } else {
                uint8_t *blk;
                uint64_t bl;
                rc = proto_maskcode_encode(tmp, nb, 0, &blk, &bl, err);
                if (rc)
                    break;
                if (bl != olen)
                    rc = BAD(off0 + pos + 8, "op %u: coded mask is %llu bytes, not %llu", i,
                             (unsigned long long)bl, (unsigned long long)olen);
                else
                    memcpy(res + w, blk, (size_t)bl);
                free(blk);
            }
        }
        w += olen;
        pos += DELTA_OP + pl;
    }
    free(tmp);
    if (!rc) {
        pemn_sha256(res, (size_t)in.new_len, dg);
        if (sodium_memcmp(dg, in.new_digest, 32) != 0)
            rc = proto_err(err, PEMN_EDIGEST, 80,
                           "the rebuilt package does not have the digest the delta names");
    }
    if (rc) {
        free(res);
    } else {
        *out = res;
        *out_len = (size_t)in.new_len;
    }
out:
    pemn_pkg_free(op);
    free(inflated);
    return rc;
}
