/*
 * proto/pkg_read.c — opening a .pemn package: structural validation and accessors.
 *
 * The file is hostile until checked. Every count, length, offset, alignment and shape
 * product is checked before it is used; every allocation is bounded by a format limit and
 * by the size of the section that describes it, so it never exceeds a small multiple of
 * the file size. Digest and signature are not checked here (pkg_verify.c does).
 */
#include "proto/err.h"
#include "proto/pkg_internal.h"
#include "proto/pkg_layout.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <pemn/gen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define BAD(off, ...) proto_err(err, PEMN_ECORRUPT, (uint64_t)(off), __VA_ARGS__)

struct sect {
    uint32_t type, flags;
    uint64_t off, len;
    int present;
};

struct blob {
    uint64_t off, len;
};

static float le_f32(const uint8_t *p)
{
    uint32_t u = proto_le32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- strings ---------------------------------------------------------------------------- */
struct strtab {
    const uint8_t *base;
    uint64_t len;
    uint64_t file_off;
};

/* Resolves the string reference at p (u32 offset, u32 length). */
static pemn_rc get_str(const struct strtab *st, const uint8_t *p, uint64_t where, const char **out,
                       uint32_t *out_len, struct pemn_err *err)
{
    uint64_t o = proto_le32(p), l = proto_le32(p + 4);
    if (o + l >= st->len) /* no overflow: both < 2^32 */
        return BAD(where, "string reference [%llu, +%llu] outside the string table",
                   (unsigned long long)o, (unsigned long long)l);
    if (st->base[o + l] != 0)
        return BAD(st->file_off + o + l, "string not NUL-terminated");
    if (l && memchr(st->base + o, 0, l))
        return BAD(st->file_off + o, "string contains a NUL byte");
    *out = (const char *)(st->base + o);
    if (out_len)
        *out_len = (uint32_t)l;
    return PEMN_OK;
}

/* [A-Za-z0-9][A-Za-z0-9._-]{0,127} */
static int valid_label(const char *s, size_t n)
{
    if (n < 1 || n > PEMN_MAX_LABEL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

/* printable ASCII, at most PEMN_MAX_LABEL bytes, may be empty */
static int valid_strategy(const char *s, size_t n)
{
    if (n > PEMN_MAX_LABEL)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* ---- tables ----------------------------------------------------------------------------- */
/* Checks the 16-byte table header of a table section; returns the first entry. */
static pemn_rc table(const pemn_pkg *pkg, const struct sect *s, uint32_t min_entry,
                     uint32_t max_count, const char *what, uint32_t *count, uint32_t *esize,
                     const uint8_t **first, struct pemn_err *err)
{
    if (s->len < PKG_TABLE_HDR)
        return BAD(s->off, "%s section shorter than its table header", what);
    const uint8_t *p = pkg->bytes + s->off;
    uint32_t n = proto_le32(p), es = proto_le32(p + 4);
    if (es < min_entry || es > 4096 || es % 8 != 0)
        return BAD(s->off + 4, "%s entry size %u invalid (minimum %u, multiple of 8)", what, es,
                   min_entry);
    if (n > max_count)
        return proto_err(err, PEMN_ETOOBIG, s->off, "%s count %u over the limit %u", what, n,
                         max_count);
    if ((uint64_t)n * es != s->len - PKG_TABLE_HDR)
        return BAD(s->off, "%s section length %llu does not hold %u entries of %u bytes", what,
                   (unsigned long long)s->len, n, es);
    *count = n;
    *esize = es;
    *first = p + PKG_TABLE_HDR;
    return PEMN_OK;
}

/* ---- co-signatures (format 1.1) ------------------------------------------------------------ */
static pemn_rc parse_cosigs(pemn_pkg *pkg, size_t core, struct pemn_err *err)
{
    const uint8_t *c = pkg->bytes + core;
    size_t n = pkg->len - core;
    if (n < PKG_COSIG_HDR || memcmp(c, PKG_COSIG_MAGIC, PKG_MAGIC_LEN) != 0)
        return BAD(core, "%zu bytes after the header's file length are not a co-signature block",
                   n);
    uint32_t count = proto_le32(c + 8);
    if (count < 1 || count >= PEMN_PKG_MAX_SIGNERS)
        return BAD(core + 8, "%u co-signatures (allowed 1..%u)", count, PEMN_PKG_MAX_SIGNERS - 1);
    if (proto_le32(c + 12) != 0)
        return BAD(core + 12, "co-signature block: reserved field not 0");
    if (n != PKG_COSIG_HDR + (size_t)count * PKG_COSIG_ENTRY)
        return BAD(core, "co-signature block of %zu bytes for %u signatures", n, count);
    const uint8_t *e = c + PKG_COSIG_HDR;
    const uint8_t *primary = pkg->bytes + core - PKG_TRAILER_SIZE;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *k = e + (size_t)i * PKG_COSIG_ENTRY;
        if (memcmp(k, primary, PEMN_PUBKEY_BYTES) == 0)
            return BAD(core + PKG_COSIG_HDR + (uint64_t)i * PKG_COSIG_ENTRY,
                       "co-signature %u repeats the trailer's signer", i);
        for (uint32_t j = 0; j < i; j++)
            if (memcmp(k, e + (size_t)j * PKG_COSIG_ENTRY, PEMN_PUBKEY_BYTES) == 0)
                return BAD(core + PKG_COSIG_HDR + (uint64_t)i * PKG_COSIG_ENTRY,
                           "co-signatures %u and %u are by the same key", j, i);
    }
    pkg->n_cosigs = count;
    pkg->cosigs = e;
    return PEMN_OK;
}

/* ---- header and section table ----------------------------------------------------------- */
static pemn_rc parse_header(pemn_pkg *pkg, struct sect known[PKG_SEC_KNOWN_MAX + 1],
                            struct pemn_err *err)
{
    const uint8_t *b = pkg->bytes;
    size_t len = pkg->len;
    if (len < PKG_MAGIC_LEN || memcmp(b, PKG_MAGIC, PKG_MAGIC_LEN) != 0)
        return BAD(0, "not a .pemn package (bad magic)");
    /* the version decides how to read the rest, so it is checked first */
    if (len >= PKG_H_MINOR + 2) {
        pkg->major = proto_le16(b + PKG_H_MAJOR);
        pkg->minor = proto_le16(b + PKG_H_MINOR);
        if (pkg->major != PKG_MAJOR)
            return proto_err(err, PEMN_EVERSION, PKG_H_MAJOR,
                             "format major version %u is not supported (this reader: %u)",
                             pkg->major, PKG_MAJOR);
    }
    if (len < PKG_HEADER_SIZE + PKG_TRAILER_SIZE)
        return BAD(len, "truncated: %zu bytes", len);
    uint64_t flen = proto_le64(b + PKG_H_FILE_LEN);
    if (flen != len) {
        /* format 1.1: co-signatures may follow the length the header gives */
        pemn_rc rc = pkg->minor >= 1 && flen >= PKG_HEADER_SIZE + PKG_TRAILER_SIZE && flen < len
                         ? parse_cosigs(pkg, (size_t)flen, err)
                         : BAD(PKG_H_FILE_LEN, "file length %llu but the header says %llu",
                               (unsigned long long)len, (unsigned long long)flen);
        if (rc)
            return rc;
        len = (size_t)flen;
    }
    pkg->core_len = len;
    if (proto_le32(b + PKG_H_FLAGS) != 0)
        return BAD(PKG_H_FLAGS, "unknown header flags 0x%x", proto_le32(b + PKG_H_FLAGS));
    uint32_t nsect = proto_le32(b + PKG_H_NSECT);
    uint64_t toff = proto_le64(b + PKG_H_TABLE_OFF);
    uint64_t body_end = len - PKG_TRAILER_SIZE;
    if (nsect > PKG_MAX_SECTIONS)
        return BAD(PKG_H_NSECT, "%u sections (at most %u)", nsect, PKG_MAX_SECTIONS);
    if (toff < PKG_HEADER_SIZE || toff % 8 != 0 || toff > body_end ||
        (uint64_t)nsect * PKG_SECT_ENTRY > body_end - toff)
        return BAD(PKG_H_TABLE_OFF, "section table offset %llu invalid", (unsigned long long)toff);
    uint64_t table_end = toff + (uint64_t)nsect * PKG_SECT_ENTRY;

    uint64_t prev_end = table_end;
    for (uint32_t i = 0; i < nsect; i++) {
        const uint8_t *e = b + toff + (uint64_t)i * PKG_SECT_ENTRY;
        uint64_t where = toff + (uint64_t)i * PKG_SECT_ENTRY;
        struct sect s = {proto_le32(e), proto_le32(e + 4), proto_le64(e + 8), proto_le64(e + 16),
                         1};
        if (s.flags & ~PKG_SECF_OPTIONAL)
            return BAD(where + 4, "section %u: unknown flags 0x%x", i, s.flags);
        if (s.off % PKG_ALIGN != 0)
            return BAD(where + 8, "section %u: offset %llu not a multiple of %u", i,
                       (unsigned long long)s.off, PKG_ALIGN);
        if (s.off < prev_end)
            return BAD(where + 8, "section %u overlaps the table or the previous section", i);
        if (s.off > body_end || s.len > body_end - s.off)
            return BAD(where + 16, "section %u [%llu, +%llu] outside the file", i,
                       (unsigned long long)s.off, (unsigned long long)s.len);
        prev_end = s.off + s.len;
        if (s.type >= 1 && s.type <= PKG_SEC_KNOWN_MAX) {
            if (known[s.type].present)
                return BAD(where, "section type %u appears twice", s.type);
            known[s.type] = s;
        } else if (!(s.flags & PKG_SECF_OPTIONAL)) {
            return proto_err(err, PEMN_EUNSUPPORTED, where, "unknown required section type %u",
                             s.type);
        }
    }
    for (uint32_t t = 1; t <= PKG_SEC_KNOWN_MAX; t++)
        if (!known[t].present)
            return BAD(PKG_H_NSECT, "required section type %u missing", t);
    return PEMN_OK;
}

/* ---- manifest and metadata -------------------------------------------------------------- */
static pemn_rc parse_manifest(pemn_pkg *pkg, const struct sect *s, const struct strtab *st,
                              struct pemn_err *err)
{
    if (s->len < PKG_MANIFEST_SIZE)
        return BAD(s->off, "manifest shorter than %u bytes", PKG_MANIFEST_SIZE);
    const uint8_t *m = pkg->bytes + s->off;
    pkg->release = proto_le64(m + PKG_M_RELEASE);
    pkg->created = (int64_t)proto_le64(m + PKG_M_CREATED);
    pkg->density = le_f32(m + PKG_M_DENSITY);
    if (!(pkg->density >= 0.0f && pkg->density <= 1.0f))
        return BAD(s->off + PKG_M_DENSITY, "density outside [0, 1]");
    if (proto_le32(m + PKG_M_FLAGS) != 0)
        return BAD(s->off + PKG_M_FLAGS, "unknown manifest flags");
    uint32_t n;
    pemn_rc rc = get_str(st, m + PKG_M_NAME, s->off + PKG_M_NAME, &pkg->name, &n, err);
    if (rc)
        return rc;
    if (!valid_label(pkg->name, n))
        return BAD(s->off + PKG_M_NAME, "model name is not a valid label");
    rc = get_str(st, m + PKG_M_VERSION, s->off + PKG_M_VERSION, &pkg->version, &n, err);
    if (rc)
        return rc;
    if (!valid_label(pkg->version, n))
        return BAD(s->off + PKG_M_VERSION, "version label is not a valid label");
    rc = get_str(st, m + PKG_M_STRATEGY, s->off + PKG_M_STRATEGY, &pkg->strategy, &n, err);
    if (rc)
        return rc;
    if (!valid_strategy(pkg->strategy, n))
        return BAD(s->off + PKG_M_STRATEGY, "strategy label invalid");
    return PEMN_OK;
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(((const struct pkg_meta *)a)->key, ((const struct pkg_meta *)b)->key);
}

static pemn_rc parse_meta(pemn_pkg *pkg, const struct sect *s, const struct strtab *st,
                          struct pemn_err *err)
{
    uint32_t n, es;
    const uint8_t *p;
    pemn_rc rc = table(pkg, s, PKG_META_ENTRY, PEMN_MAX_META, "metadata", &n, &es, &p, err);
    if (rc)
        return rc;
    pkg->n_meta = n;
    if (n == 0)
        return PEMN_OK;
    pkg->meta = calloc(n, sizeof *pkg->meta);
    struct pkg_meta *sorted = malloc((size_t)n * sizeof *sorted);
    if (!pkg->meta || !sorted) {
        free(sorted);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = p + (uint64_t)i * es;
        uint64_t where = (uint64_t)(e - pkg->bytes);
        uint32_t kl = 0, vl = 0;
        rc = get_str(st, e, where, &pkg->meta[i].key, &kl, err);
        if (!rc)
            rc = get_str(st, e + 8, where + 8, &pkg->meta[i].value, &vl, err);
        if (!rc && (kl == 0 || kl > PEMN_MAX_NAME))
            rc = BAD(where, "metadata key %u: length %u outside [1, %u]", i, kl, PEMN_MAX_NAME);
        if (!rc && vl > PEMN_MAX_META_VALUE)
            rc = BAD(where + 8, "metadata value %u longer than %u", i, PEMN_MAX_META_VALUE);
        if (rc) {
            free(sorted);
            return rc;
        }
    }
    memcpy(sorted, pkg->meta, (size_t)n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_meta);
    for (uint32_t i = 1; i < n; i++) {
        if (strcmp(sorted[i - 1].key, sorted[i].key) == 0) {
            free(sorted);
            return BAD(s->off, "duplicate metadata key");
        }
    }
    free(sorted);
    return PEMN_OK;
}

/* ---- prototypes ------------------------------------------------------------------------- */
static pemn_rc parse_protos(pemn_pkg *pkg, const struct sect *s, const struct sect *data,
                            struct blob *blobs, uint32_t *nblobs, struct pemn_err *err)
{
    uint32_t n, es;
    const uint8_t *p;
    pemn_rc rc = table(pkg, s, PKG_PROTO_ENTRY, PEMN_MAX_PROTOS, "prototype", &n, &es, &p, err);
    if (rc)
        return rc;
    pkg->n_protos = n;
    if (n == 0)
        return PEMN_OK;
    pkg->protos = calloc(n, sizeof *pkg->protos);
    if (!pkg->protos)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = p + (uint64_t)i * es;
        uint64_t where = (uint64_t)(e - pkg->bytes);
        struct pkg_proto *pr = &pkg->protos[i];
        pr->kind = proto_le32(e + PKG_P_KIND);
        pr->gen = proto_le32(e + PKG_P_GEN);
        pr->length = proto_le64(e + PKG_P_LENGTH);
        pr->scale = le_f32(e + PKG_P_SCALE);
        memcpy(pr->seed, e + PKG_P_SEED, 32);
        atomic_init(&pr->values, NULL);
        if (pr->length == 0)
            return BAD(where + PKG_P_LENGTH, "prototype %u has length 0", i);
        if (pr->kind == PEMN_PROTO_EXPLICIT) {
            uint64_t off = proto_le64(e + PKG_P_DATA_OFF);
            if (pr->length > data->len / 4)
                return BAD(where + PKG_P_LENGTH, "prototype %u: %llu values do not fit", i,
                           (unsigned long long)pr->length);
            uint64_t bytes = pr->length * 4;
            if (off % PKG_ALIGN != 0)
                return BAD(where + PKG_P_DATA_OFF, "prototype %u: values not %u-byte aligned", i,
                           PKG_ALIGN);
            if (off > data->len || bytes > data->len - off)
                return BAD(where + PKG_P_DATA_OFF, "prototype %u: values outside the data", i);
            pr->data = pkg->bytes + data->off + off;
            blobs[(*nblobs)++] = (struct blob){off, bytes};
        } else if (pr->kind == PEMN_PROTO_SEEDED) {
            if (pr->gen != PEMN_GEN_UNIFORM && pr->gen != PEMN_GEN_NORMAL &&
                pr->gen != PEMN_GEN_SIGNED)
                return proto_err(err, PEMN_EUNSUPPORTED, where + PKG_P_GEN,
                                 "prototype %u: unknown generator %u", i, pr->gen);
            if (!isfinite(pr->scale))
                return BAD(where + PKG_P_SCALE, "prototype %u: scale not finite", i);
            if (pr->length > PKG_SEEDED_MAX_LEN || pr->length > SIZE_MAX / sizeof(float))
                return proto_err(err, PEMN_ETOOBIG, where + PKG_P_LENGTH,
                                 "prototype %u: seeded length %llu over the limit", i,
                                 (unsigned long long)pr->length);
        } else {
            return BAD(where + PKG_P_KIND, "prototype %u: unknown kind %u", i, pr->kind);
        }
    }
    return PEMN_OK;
}

/* ---- tensors ---------------------------------------------------------------------------- */
static int cmp_name(const struct pkg_tensor *a, const struct pkg_tensor *b)
{
    uint32_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
    int c = memcmp(a->name, b->name, n);
    if (c)
        return c;
    return (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

static int cmp_by_name(const void *x, const void *y, void *ctx)
{
    const pemn_pkg *pkg = ctx;
    return cmp_name(&pkg->tensors[*(const uint32_t *)x], &pkg->tensors[*(const uint32_t *)y]);
}

static uint64_t popcount_bytes(const uint8_t *p, uint64_t n)
{
    uint64_t c = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        c += (uint64_t)__builtin_popcountll(w);
    }
    for (; i < n; i++)
        c += (uint64_t)__builtin_popcount(p[i]);
    return c;
}

static pemn_rc parse_tensor(pemn_pkg *pkg, uint32_t i, const uint8_t *e, const struct strtab *st,
                            const struct sect *data, struct pemn_err *err)
{
    uint64_t where = (uint64_t)(e - pkg->bytes);
    struct pkg_tensor *t = &pkg->tensors[i];
    pemn_rc rc = get_str(st, e + PKG_T_NAME, where, &t->name, &t->name_len, err);
    if (rc)
        return rc;
    if (t->name_len == 0 || t->name_len > PEMN_MAX_NAME)
        return BAD(where, "tensor %u: name length %u outside [1, %u]", i, t->name_len,
                   PEMN_MAX_NAME);
    uint32_t kind = proto_le32(e + PKG_T_KIND);
    uint32_t dt = proto_le32(e + PKG_T_DTYPE);
    t->ndim = proto_le32(e + PKG_T_NDIM);
    if (t->ndim > PEMN_MAX_DIMS)
        return BAD(where + PKG_T_NDIM, "tensor %u: %u dimensions (at most %u)", i, t->ndim,
                   PEMN_MAX_DIMS);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < PEMN_MAX_DIMS; d++) {
        uint64_t v = proto_le64(e + PKG_T_SHAPE + 8 * d);
        if (d >= t->ndim) {
            if (v != 0)
                return BAD(where + PKG_T_SHAPE + 8 * d, "tensor %u: unused dimension not 0", i);
            continue;
        }
        t->shape[d] = v;
        if (proto_mul_overflow(numel, v, &numel))
            return BAD(where + PKG_T_SHAPE, "tensor %u: shape product overflows", i);
    }
    t->numel = numel;
    uint64_t off = proto_le64(e + PKG_T_DATA_OFF), len = proto_le64(e + PKG_T_DATA_LEN);
    t->encoding = proto_le32(e + PKG_T_ENCODING);

    if (kind == PKG_TENSOR_MASKED) {
        t->masked = 1;
        if (dt != PEMN_DT_F32)
            return BAD(where + PKG_T_DTYPE, "tensor %u: masked tensors are F32", i);
        t->dtype = PEMN_DT_F32;
        t->proto = proto_le32(e + PKG_T_PROTO);
        t->offset = proto_le64(e + PKG_T_OFFSET);
        t->scale = le_f32(e + PKG_T_SCALE);
        if (t->proto >= pkg->n_protos)
            return BAD(where + PKG_T_PROTO, "tensor %u: prototype %u does not exist", i, t->proto);
        if (t->offset >= pkg->protos[t->proto].length)
            return BAD(where + PKG_T_OFFSET, "tensor %u: offset %llu >= prototype length", i,
                       (unsigned long long)t->offset);
        if (!isfinite(t->scale))
            return BAD(where + PKG_T_SCALE, "tensor %u: scale not finite", i);
        if (t->encoding != PEMN_MASK_BITS)
            return proto_err(err, PEMN_EUNSUPPORTED, where + PKG_T_ENCODING,
                             "tensor %u: unknown mask encoding %u", i, t->encoding);
        uint64_t want = numel / 8 + (numel % 8 != 0);
        if (len != want)
            return BAD(where + PKG_T_DATA_LEN, "tensor %u: mask is %llu bytes, expected %llu", i,
                       (unsigned long long)len, (unsigned long long)want);
    } else if (kind == PKG_TENSOR_DENSE) {
        t->masked = 0;
        if (dt >= PEMN_DT_COUNT_)
            return BAD(where + PKG_T_DTYPE, "tensor %u: unknown dtype %u", i, dt);
        t->dtype = (pemn_dtype)dt;
        if (t->encoding != 0)
            return BAD(where + PKG_T_ENCODING, "tensor %u: dense tensor with an encoding", i);
        uint64_t want;
        if (proto_mul_overflow(numel, pemn_dtype_size(t->dtype), &want) || len != want)
            return BAD(where + PKG_T_DATA_LEN, "tensor %u: data is %llu bytes, expected %llu", i,
                       (unsigned long long)len, (unsigned long long)want);
    } else {
        return BAD(where + PKG_T_KIND, "tensor %u: unknown kind %u", i, kind);
    }
    if (off % PKG_ALIGN != 0)
        return BAD(where + PKG_T_DATA_OFF, "tensor %u: data not %u-byte aligned", i, PKG_ALIGN);
    if (off > data->len || len > data->len - off)
        return BAD(where + PKG_T_DATA_OFF, "tensor %u: data [%llu, +%llu] outside the data", i,
                   (unsigned long long)off, (unsigned long long)len);
    t->data = pkg->bytes + data->off + off;
    t->data_len = len;
    if (t->masked) {
        if (numel % 8 && (t->data[len - 1] >> (numel % 8)) != 0)
            return BAD(data->off + off + len - 1, "tensor %u: unused trailing mask bits set", i);
        t->kept = popcount_bytes(t->data, len);
    }
    return PEMN_OK;
}

static int cmp_blob(const void *a, const void *b)
{
    const struct blob *x = a, *y = b;
    return (x->off > y->off) - (x->off < y->off);
}

/* JSON string length of s as a safetensors writer would emit it (quotes and escapes). */
static uint64_t json_len(const char *s, uint32_t n)
{
    uint64_t l = 2;
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            l += 2;
        else if (c < 0x20)
            l += 6;
        else
            l += 1;
    }
    return l;
}

static uint64_t digits(uint64_t v)
{
    uint64_t d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

/* Digits of a JSON integer written from (int64_t)v, as the safetensors writer does. */
static uint64_t int_digits(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? 1 + digits(0 - v) : digits(v);
}

/* Length of the "__metadata__":{...} member pemn_pkg_write_safetensors writes: the
 * package's pairs, then the manifest pairs of proto/pkg_st.c (which replace a package pair
 * of the same key). Kept in step with it by test_pkg (writes the file, compares sizes). */
static uint64_t meta_json_len(const pemn_pkg *pkg)
{
    char num[4][32];
    snprintf(num[0], sizeof num[0], "%llu", (unsigned long long)pkg->release);
    snprintf(num[1], sizeof num[1], "%lld", (long long)pkg->created);
    snprintf(num[2], sizeof num[2], "%.9g", (double)pkg->density);
    snprintf(num[3], sizeof num[3], "%u.%u", pkg->major, pkg->minor);
    static const char digest_like[] =
        "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    static const char signer_like[] =
        "pemn-ed25519-pub 0000000000000000000000000000000000000000000000000000000000000000";
    const char *const fixed[][2] = {
        {"format", "pt"},
        {"pemn.name", pkg->name},
        {"pemn.version", pkg->version},
        {"pemn.release", num[0]},
        {"pemn.created", num[1]},
        {"pemn.strategy", pkg->strategy},
        {"pemn.density", num[2]},
        {"pemn.format", num[3]},
        {"pemn.digest", digest_like},
        {"pemn.signer", signer_like},
        {"pemn.signer_id", "0000000000000000"},
    };
    uint64_t len = 0, pairs = 0;
    for (uint32_t i = 0; i < pkg->n_meta; i++) {
        const char *v = pkg->meta[i].value;
        for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++)
            if (strcmp(fixed[f][0], pkg->meta[i].key) == 0)
                v = fixed[f][1];
        len += json_len(pkg->meta[i].key, (uint32_t)strlen(pkg->meta[i].key)) + 1 +
               json_len(v, (uint32_t)strlen(v));
        pairs++;
    }
    for (size_t f = 0; f < sizeof fixed / sizeof fixed[0]; f++) {
        int dup = 0;
        for (uint32_t i = 0; i < pkg->n_meta && !dup; i++)
            dup = strcmp(fixed[f][0], pkg->meta[i].key) == 0;
        if (!dup) {
            len += json_len(fixed[f][0], (uint32_t)strlen(fixed[f][0])) + 1 +
                   json_len(fixed[f][1], (uint32_t)strlen(fixed[f][1]));
            pairs++;
        }
    }
    /* "__metadata__":{a,b,...} */
    return strlen("\"__metadata__\":{}") + len + (pairs - 1);
}

/* Totals, the seeded length bound and the float32 safetensors size. */
static pemn_rc totals(pemn_pkg *pkg, struct pemn_err *err)
{
    uint64_t *uses = NULL;
    if (pkg->n_protos) {
        uses = calloc(pkg->n_protos, sizeof *uses);
        if (!uses)
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    uint64_t hdr = 2, data = 0; /* "{}" */
    pemn_rc rc = PEMN_OK;
    for (uint32_t i = 0; i < pkg->n_tensors && !rc; i++) {
        const struct pkg_tensor *t = &pkg->tensors[i];
        uint64_t bytes = t->masked ? t->numel * 4 : t->data_len; /* < 8 * file length */
        /* [,]"NAME":{"dtype":"F32","shape":[a,b],"data_offsets":[B,E]} */
        const char *dtn = pemn_dtype_name(t->masked ? PEMN_DT_F32 : t->dtype);
        uint64_t h = (i ? 1 : 0) + json_len(t->name, t->name_len) + strlen(":{\"dtype\":") +
                     strlen(dtn) + 2 + strlen(",\"shape\":[") + (t->ndim ? t->ndim - 1 : 0) +
                     strlen("],\"data_offsets\":[") + digits(data) + strlen(",]}");
        for (uint32_t d = 0; d < t->ndim; d++)
            h += int_digits(t->shape[d]);
        if (proto_add_overflow(data, bytes, &data))
            rc = BAD(PEMN_NO_OFFSET, "tensor sizes overflow");
        h += digits(data);
        if (!rc && (proto_add_overflow(hdr, h, &hdr) ||
                    proto_add_overflow(pkg->n_params, t->numel, &pkg->n_params)))
            rc = BAD(PEMN_NO_OFFSET, "tensor sizes overflow");
        if (!rc && t->masked) {
            pkg->n_masked += t->numel; /* <= n_params */
            if (proto_add_overflow(uses[t->proto], t->numel, &uses[t->proto]))
                uses[t->proto] = UINT64_MAX;
        }
    }
    for (uint32_t i = 0; i < pkg->n_protos && !rc; i++) {
        const struct pkg_proto *pr = &pkg->protos[i];
        uint64_t bound = uses[i] > PKG_SEEDED_FREE_LEN ? uses[i] : PKG_SEEDED_FREE_LEN;
        if (pr->kind == PEMN_PROTO_SEEDED && pr->length > bound)
            rc = proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET,
                           "prototype %u: seeded length %llu exceeds what its tensors use "
                           "(%llu)",
                           i, (unsigned long long)pr->length, (unsigned long long)bound);
    }
    free(uses);
    if (rc)
        return rc;
    /* plus the metadata member and its separating comma */
    hdr += meta_json_len(pkg) + (pkg->n_tensors ? 1 : 0);
    hdr = (hdr + 7) & ~(uint64_t)7; /* safetensors pads its header to 8 bytes */
    if (proto_add_overflow(hdr, data, &pkg->f32_size) ||
        proto_add_overflow(pkg->f32_size, 8, &pkg->f32_size))
        return BAD(PEMN_NO_OFFSET, "tensor sizes overflow");
    return PEMN_OK;
}

static pemn_rc parse_tensors(pemn_pkg *pkg, const struct sect *s, const struct sect *data,
                             const struct strtab *st, struct blob *blobs, uint32_t *nblobs,
                             struct pemn_err *err)
{
    uint32_t n, es;
    const uint8_t *p;
    pemn_rc rc = table(pkg, s, PKG_TENSOR_ENTRY, PEMN_MAX_TENSORS, "tensor", &n, &es, &p, err);
    if (rc)
        return rc;
    pkg->n_tensors = n;
    if (n == 0)
        return PEMN_OK;
    pkg->tensors = calloc(n, sizeof *pkg->tensors);
    pkg->by_name = malloc((size_t)n * sizeof *pkg->by_name);
    if (!pkg->tensors || !pkg->by_name)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        rc = parse_tensor(pkg, i, p + (uint64_t)i * es, st, data, err);
        if (rc)
            return rc;
        if (pkg->tensors[i].data_len)
            blobs[(*nblobs)++] =
                (struct blob){(uint64_t)(pkg->tensors[i].data - pkg->bytes) - data->off,
                              pkg->tensors[i].data_len};
        pkg->by_name[i] = i;
    }
    qsort_r(pkg->by_name, n, sizeof *pkg->by_name, cmp_by_name, pkg);
    for (uint32_t i = 1; i < n; i++)
        if (cmp_name(&pkg->tensors[pkg->by_name[i - 1]], &pkg->tensors[pkg->by_name[i]]) == 0)
            return BAD(s->off, "duplicate tensor name");
    return PEMN_OK;
}

static pemn_rc parse(pemn_pkg *pkg, struct pemn_err *err)
{
    struct sect k[PKG_SEC_KNOWN_MAX + 1];
    memset(k, 0, sizeof k);
    pemn_rc rc = parse_header(pkg, k, err);
    if (rc)
        return rc;
    struct strtab st = {pkg->bytes + k[PKG_SEC_STRINGS].off, k[PKG_SEC_STRINGS].len,
                        k[PKG_SEC_STRINGS].off};
    rc = parse_manifest(pkg, &k[PKG_SEC_MANIFEST], &st, err);
    if (!rc)
        rc = parse_meta(pkg, &k[PKG_SEC_META], &st, err);
    if (rc)
        return rc;

    /* blobs in DATA: at most one per prototype and per tensor (counts bounded by the tables,
     * whose sizes are bounded by the file) */
    uint64_t maxb = (k[PKG_SEC_PROTOS].len + k[PKG_SEC_TENSORS].len) / PKG_PROTO_ENTRY + 1;
    struct blob *blobs = malloc((size_t)maxb * sizeof *blobs);
    if (!blobs)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    uint32_t nb = 0;
    rc = parse_protos(pkg, &k[PKG_SEC_PROTOS], &k[PKG_SEC_DATA], blobs, &nb, err);
    if (!rc)
        rc = parse_tensors(pkg, &k[PKG_SEC_TENSORS], &k[PKG_SEC_DATA], &st, blobs, &nb, err);
    if (!rc) {
        qsort(blobs, nb, sizeof *blobs, cmp_blob);
        for (uint32_t i = 1; i < nb && !rc; i++)
            if (blobs[i - 1].off + blobs[i - 1].len > blobs[i].off)
                rc = BAD(k[PKG_SEC_DATA].off + blobs[i].off, "overlapping data blocks");
    }
    free(blobs);
    if (!rc)
        rc = totals(pkg, err);
    return rc;
}

/* ---- open / free ------------------------------------------------------------------------ */
static pemn_rc finish_open(pemn_pkg *pkg, pemn_pkg **out, struct pemn_err *err)
{
    pemn_rc rc = parse(pkg, err);
    if (rc) {
        pemn_pkg_free(pkg);
        return rc;
    }
    *out = pkg;
    return PEMN_OK;
}

static pemn_pkg *pkg_alloc(void)
{
    pemn_pkg *pkg = calloc(1, sizeof *pkg);
    if (pkg && pthread_mutex_init(&pkg->lock, NULL) != 0) {
        free(pkg);
        return NULL;
    }
    return pkg;
}

/* A private, 64-byte-aligned copy (so every section is aligned in memory too). */
static void *aligned_copy(const void *data, size_t len)
{
    void *p = NULL;
    if (posix_memalign(&p, PKG_ALIGN, len ? len : 1) != 0)
        return NULL;
    if (len)
        memcpy(p, data, len);
    return p;
}

pemn_rc pemn_pkg_open_mem(const void *data, size_t len, unsigned flags, pemn_pkg **out,
                          struct pemn_err *err)
{
    if (!out || (!data && len))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    if (flags & ~PEMN_OPEN_COPY)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "unknown open flags 0x%x", flags);
    pemn_pkg *pkg = pkg_alloc();
    if (!pkg)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    /* borrow only memory aligned for in-place float and int64 access */
    if ((flags & PEMN_OPEN_COPY) || ((uintptr_t)data % 8) != 0) {
        pkg->owned = aligned_copy(data, len);
        if (!pkg->owned) {
            pemn_pkg_free(pkg);
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        }
        pkg->bytes = pkg->owned;
    } else {
        pkg->bytes = data;
    }
    pkg->len = len;
    return finish_open(pkg, out, err);
}

pemn_rc pemn_pkg_open_file(const char *path, unsigned flags, pemn_pkg **out, struct pemn_err *err)
{
    if (!out || !path)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    if (flags & ~PEMN_OPEN_COPY)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "unknown open flags 0x%x", flags);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "%s: no such file", path);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "open %s: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size < PKG_HEADER_SIZE + PKG_TRAILER_SIZE ||
        (uint64_t)sb.st_size > SIZE_MAX / 2) {
        /* too short to map usefully: read what is there so the error is the precise one */
        uint8_t small[PKG_HEADER_SIZE + PKG_TRAILER_SIZE];
        ssize_t r = (uint64_t)sb.st_size <= sizeof small ? read(fd, small, sizeof small) : 0;
        close(fd);
        if (r < 0)
            return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "read %s", path);
        if ((uint64_t)sb.st_size > SIZE_MAX / 2)
            return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "%s too large", path);
        return pemn_pkg_open_mem(small, (size_t)r, PEMN_OPEN_COPY, out, err);
    }
    pemn_pkg *pkg = pkg_alloc();
    if (!pkg) {
        close(fd);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    size_t len = (size_t)sb.st_size;
    if (flags & PEMN_OPEN_COPY) {
        /* read into private memory: immune to the file changing underneath */
        void *p = NULL;
        if (posix_memalign(&p, PKG_ALIGN, len) != 0) {
            close(fd);
            pemn_pkg_free(pkg);
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        }
        pkg->owned = p;
        size_t got = 0;
        while (got < len) {
            ssize_t r = read(fd, (uint8_t *)p + got, len - got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        close(fd);
        if (got != len) {
            pemn_pkg_free(pkg);
            return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "read %s: short read", path);
        }
        pkg->bytes = p;
    } else {
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        int e = errno;
        close(fd);
        if (m == MAP_FAILED) {
            pemn_pkg_free(pkg);
            return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "mmap %s: %s", path, strerror(e));
        }
        pkg->map = m;
        pkg->map_len = len;
        pkg->bytes = m;
    }
    pkg->len = len;
    return finish_open(pkg, out, err);
}

void pemn_pkg_free(pemn_pkg *pkg)
{
    if (!pkg)
        return;
    for (uint32_t i = 0; i < pkg->n_protos && pkg->protos; i++) {
        float *v = atomic_load(&pkg->protos[i].values);
        if (v && (const uint8_t *)v != pkg->protos[i].data)
            free(v);
    }
    free(pkg->protos);
    free(pkg->tensors);
    free(pkg->by_name);
    free(pkg->meta);
    if (pkg->map)
        munmap(pkg->map, pkg->map_len);
    free(pkg->owned);
    pthread_mutex_destroy(&pkg->lock);
    free(pkg);
}

/* ---- accessors -------------------------------------------------------------------------- */
const uint8_t *pemn_pkg_bytes(const pemn_pkg *pkg, size_t *len)
{
    if (!pkg) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = pkg->len;
    return pkg->bytes;
}

pemn_rc pemn_pkg_info(const pemn_pkg *pkg, struct pemn_pkg_info *out)
{
    if (!pkg || !out)
        return PEMN_EINVAL;
    memset(out, 0, sizeof *out);
    out->name = pkg->name;
    out->version = pkg->version;
    out->strategy = pkg->strategy;
    out->release = pkg->release;
    out->created = pkg->created;
    out->density = pkg->density;
    out->format_major = pkg->major;
    out->format_minor = pkg->minor;
    out->n_tensors = pkg->n_tensors;
    out->n_protos = pkg->n_protos;
    out->n_meta = pkg->n_meta;
    out->file_size = pkg->len;
    out->n_params = pkg->n_params;
    out->n_masked = pkg->n_masked;
    out->f32_size = pkg->f32_size;
    memcpy(out->signer.bytes, pkg->bytes + pkg->core_len - PKG_TRAILER_SIZE, PEMN_PUBKEY_BYTES);
    pemn_key_id(&out->signer, out->signer_id);
    return PEMN_OK;
}

pemn_rc pemn_pkg_meta(const pemn_pkg *pkg, uint32_t i, const char **key, const char **value)
{
    if (!pkg)
        return PEMN_EINVAL;
    if (i >= pkg->n_meta)
        return PEMN_ENOTFOUND;
    if (key)
        *key = pkg->meta[i].key;
    if (value)
        *value = pkg->meta[i].value;
    return PEMN_OK;
}

const char *pemn_pkg_meta_get(const pemn_pkg *pkg, const char *key)
{
    if (!pkg || !key)
        return NULL;
    for (uint32_t i = 0; i < pkg->n_meta; i++)
        if (strcmp(pkg->meta[i].key, key) == 0)
            return pkg->meta[i].value;
    return NULL;
}

pemn_rc pemn_pkg_proto(const pemn_pkg *pkg, uint32_t i, struct pemn_proto_info *out)
{
    if (!pkg || !out)
        return PEMN_EINVAL;
    if (i >= pkg->n_protos)
        return PEMN_ENOTFOUND;
    const struct pkg_proto *pr = &pkg->protos[i];
    memset(out, 0, sizeof *out);
    out->kind = pr->kind;
    out->length = pr->length;
    if (pr->kind == PEMN_PROTO_SEEDED) {
        out->generator = pr->gen;
        out->scale = pr->scale;
        memcpy(out->seed, pr->seed, 32);
    }
    return PEMN_OK;
}

uint32_t pemn_pkg_tensor_count(const pemn_pkg *pkg)
{
    return pkg ? pkg->n_tensors : 0;
}

pemn_rc pemn_pkg_tensor(const pemn_pkg *pkg, uint32_t i, struct pemn_tensor_info *out)
{
    if (!pkg || !out)
        return PEMN_EINVAL;
    if (i >= pkg->n_tensors)
        return PEMN_ENOTFOUND;
    const struct pkg_tensor *t = &pkg->tensors[i];
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->dtype = t->dtype;
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, sizeof out->shape);
    out->numel = t->numel;
    out->masked = t->masked;
    out->stored_bytes = t->data_len;
    if (t->masked) {
        out->proto = t->proto;
        out->offset = t->offset;
        out->scale = t->scale;
        out->mask_encoding = t->encoding;
        out->kept = t->kept;
        out->mask = t->data;
    } else {
        out->data = t->data;
    }
    return PEMN_OK;
}

pemn_rc pemn_pkg_find(const pemn_pkg *pkg, const char *name, uint32_t *index)
{
    if (!pkg || !name)
        return PEMN_EINVAL;
    size_t nl = strlen(name);
    if (nl == 0 || nl > PEMN_MAX_NAME)
        return PEMN_ENOTFOUND;
    struct pkg_tensor key = {.name = name, .name_len = (uint32_t)nl};
    uint32_t lo = 0, hi = pkg->n_tensors;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = cmp_name(&pkg->tensors[pkg->by_name[mid]], &key);
        if (c == 0) {
            if (index)
                *index = pkg->by_name[mid];
            return PEMN_OK;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return PEMN_ENOTFOUND;
}
