/*
 * Unit tests: hand-crafted malformed packages (tests/data/invalid/) and unusual but valid ones
 * (tests/data/valid/), each with a sidecar NAME.expect holding "<open result> [<verify
 * result>]" as pemn_rc_name spellings. Verification uses the key of tests/data/signer.pub.
 *
 * The cases are generated here: a small valid package is split into its sections, one field
 * is changed, and the sections are reassembled and re-signed, so every case is validly signed
 * and only the structural checks can catch it. The files on disk must equal what the
 * generator makes; PEMN_REGEN_CORPUS=1 rewrites them (and the fuzz seed corpus).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/builder.h>
#include <pemn/gen.h>
#include <pemn/pkg.h>
#include "proto/err.h"
#include "proto/pkg_layout.h"
#include "tests/common/pkgfix.h"

#define INVALID_DIR "tests/data/invalid"
#define VALID_DIR "tests/data/valid"
#define FUZZ_DIR "tests/fuzz/corpus/pkg"
#define SIGNER_PUB "tests/data/signer.pub"

/* ---- split / assemble ---------------------------------------------------------------------- */
struct xsec {
    uint32_t type, flags;
    uint8_t *data;
    size_t len;
};
struct xpkg {
    struct xsec s[16];
    int n;
};

static struct pemn_seckey fix_sk;
static struct pemn_pubkey fix_pk;

static void split(const uint8_t *buf, size_t len, struct xpkg *x)
{
    (void)len;
    uint32_t n = proto_le32(buf + PKG_H_NSECT);
    x->n = (int)n;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = buf + PKG_HEADER_SIZE + i * PKG_SECT_ENTRY;
        struct xsec *s = &x->s[i];
        s->type = proto_le32(e);
        s->flags = proto_le32(e + 4);
        s->len = proto_le64(e + 16);
        s->data = malloc(s->len + 256); /* room to grow a section in place */
        memset(s->data, 0, s->len + 256);
        memcpy(s->data, buf + proto_le64(e + 8), s->len);
    }
}

static void xfree(struct xpkg *x)
{
    for (int i = 0; i < x->n; i++)
        free(x->s[i].data);
}

static struct xsec *sec(struct xpkg *x, uint32_t type)
{
    for (int i = 0; i < x->n; i++)
        if (x->s[i].type == type)
            return &x->s[i];
    fail_msg("no section %u", type);
    return NULL;
}

/* digest + signature over everything before the trailer */
static void resign(uint8_t *buf, size_t len)
{
    uint8_t *tr = buf + len - PKG_TRAILER_SIZE;
    memcpy(tr, fix_pk.bytes, 32);
    pemn_sha256(buf, len - PKG_TRAILER_SIZE, tr + 32);
    uint8_t msg[PKG_SIG_DOMAIN_LEN + 32];
    memcpy(msg, PKG_SIG_DOMAIN, PKG_SIG_DOMAIN_LEN);
    memcpy(msg + PKG_SIG_DOMAIN_LEN, tr + 32, 32);
    crypto_sign_detached(tr + 64, NULL, msg, sizeof msg, fix_sk.bytes);
}

static uint8_t *assemble(const struct xpkg *x, size_t *len)
{
    uint64_t pos = pkg_align_up(PKG_HEADER_SIZE + (uint64_t)x->n * PKG_SECT_ENTRY);
    uint64_t off[16];
    for (int i = 0; i < x->n; i++) {
        off[i] = pos;
        pos = pkg_align_up(pos + x->s[i].len);
    }
    size_t total = (size_t)pos + PKG_TRAILER_SIZE;
    uint8_t *buf = calloc(1, total);
    memcpy(buf, PKG_MAGIC, PKG_MAGIC_LEN);
    proto_put16(buf + PKG_H_MAJOR, PKG_MAJOR);
    proto_put16(buf + PKG_H_MINOR, PKG_MINOR);
    proto_put64(buf + PKG_H_FILE_LEN, total);
    proto_put32(buf + PKG_H_NSECT, (uint32_t)x->n);
    proto_put64(buf + PKG_H_TABLE_OFF, PKG_HEADER_SIZE);
    for (int i = 0; i < x->n; i++) {
        uint8_t *e = buf + PKG_HEADER_SIZE + i * PKG_SECT_ENTRY;
        proto_put32(e, x->s[i].type);
        proto_put32(e + 4, x->s[i].flags);
        proto_put64(e + 8, off[i]);
        proto_put64(e + 16, x->s[i].len);
        memcpy(buf + off[i], x->s[i].data, x->s[i].len);
    }
    resign(buf, total);
    *len = total;
    return buf;
}

/* entry i of a table section */
static uint8_t *entry(struct xpkg *x, uint32_t type, uint32_t i)
{
    struct xsec *s = sec(x, type);
    return s->data + PKG_TABLE_HDR + (size_t)i * proto_le32(s->data + 4);
}

/* ---- the cases ----------------------------------------------------------------------------- */
struct pcase {
    const char *name;
    uint8_t *buf;
    size_t len;
    pemn_rc open_rc, verify_rc; /* verify_rc checked when open_rc == PEMN_OK */
    int valid;                  /* goes to tests/data/valid */
};

#define MAX_CASES 96
static struct pcase cases[MAX_CASES];
static int n_cases;

static void add_case(const char *name, uint8_t *buf, size_t len, pemn_rc orc, pemn_rc vrc)
{
    assert_true(n_cases < MAX_CASES);
    cases[n_cases++] = (struct pcase){name, buf, len, orc, vrc, orc == PEMN_OK && vrc == PEMN_OK};
}

static uint8_t *base_bytes(int seeded, size_t *len)
{
    uint8_t *b;
    if (seeded)
        pkgfix_small_seeded(&fix_sk, &b, len);
    else
        pkgfix_small(&fix_sk, &b, len);
    return b;
}

/* A change to the assembled bytes (header level), re-signed. */
typedef void (*bytes_fn)(uint8_t *buf, size_t *len);
/* A change to the sections before assembly. */
typedef void (*sect_fn)(struct xpkg *x);

static void case_sect(const char *name, int seeded, sect_fn f, pemn_rc orc, pemn_rc vrc)
{
    size_t len;
    uint8_t *b = base_bytes(seeded, &len);
    struct xpkg x;
    split(b, len, &x);
    free(b);
    if (f)
        f(&x);
    b = assemble(&x, &len);
    xfree(&x);
    add_case(name, b, len, orc, vrc);
}

static void case_bytes(const char *name, bytes_fn f, int sign, pemn_rc orc, pemn_rc vrc)
{
    size_t len;
    uint8_t *b0 = base_bytes(0, &len);
    uint8_t *b = realloc(b0, len + 4096);
    if (!b)
        free(b0);
    assert_non_null(b);
    memset(b + len, 0, 4096);
    f(b, &len);
    if (sign && len >= PKG_TRAILER_SIZE)
        resign(b, len);
    add_case(name, b, len, orc, vrc);
}

/* header-level mutations */
static void m_magic(uint8_t *b, size_t *l)
{
    (void)l;
    b[1] = 'X';
}
static void m_major99(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put16(b + PKG_H_MAJOR, 99);
}
static void m_major0(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put16(b + PKG_H_MAJOR, 0);
}
static void m_minor7(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put16(b + PKG_H_MINOR, 7);
}
static void m_reserved(uint8_t *b, size_t *l)
{
    (void)l;
    memset(b + 40, 0xab, 24); /* reserved header bytes are ignored */
}
static void m_filelen(uint8_t *b, size_t *l)
{
    proto_put64(b + PKG_H_FILE_LEN, *l + 64);
}
static void m_truncated(uint8_t *b, size_t *l)
{
    (void)b;
    *l -= 64;
}
static void m_trailing_garbage(uint8_t *b, size_t *l)
{
    (void)b;
    *l += 64;
}
static void m_hflags(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put32(b + PKG_H_FLAGS, 1);
}
static void m_nsect_huge(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put32(b + PKG_H_NSECT, 0xffffffffu);
}
static void m_nsect_zero(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put32(b + PKG_H_NSECT, 0);
}
static void m_table_oob(uint8_t *b, size_t *l)
{
    proto_put64(b + PKG_H_TABLE_OFF, *l);
}
static void m_table_small(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put64(b + PKG_H_TABLE_OFF, 8);
}
static void m_table_wrap(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put64(b + PKG_H_TABLE_OFF, UINT64_MAX - 7);
}
static uint8_t *sentry(uint8_t *b, uint32_t type)
{
    for (uint32_t i = 0; i < proto_le32(b + PKG_H_NSECT); i++)
        if (proto_le32(b + PKG_HEADER_SIZE + i * PKG_SECT_ENTRY) == type)
            return b + PKG_HEADER_SIZE + i * PKG_SECT_ENTRY;
    return NULL;
}
static void m_sec_oob(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put64(sentry(b, PKG_SEC_DATA) + 16, UINT64_C(1) << 40);
}
static void m_sec_wrap(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put64(sentry(b, PKG_SEC_DATA) + 16, UINT64_MAX - 63);
}
static void m_sec_into_trailer(uint8_t *b, size_t *l)
{
    uint8_t *e = sentry(b, PKG_SEC_DATA);
    proto_put64(e + 16, *l - proto_le64(e + 8) - 64);
}
static void m_sec_misaligned(uint8_t *b, size_t *l)
{
    (void)l;
    uint8_t *e = sentry(b, PKG_SEC_STRINGS);
    proto_put64(e + 8, proto_le64(e + 8) + 8);
}
static void m_sec_overlap(uint8_t *b, size_t *l)
{
    (void)l;
    uint8_t *e = sentry(b, PKG_SEC_STRINGS);
    proto_put64(e + 8, proto_le64(sentry(b, PKG_SEC_MANIFEST) + 8));
}
static void m_sec_over_table(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put64(sentry(b, PKG_SEC_MANIFEST) + 8, 64);
}
static void m_sec_dup(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put32(sentry(b, PKG_SEC_META), PKG_SEC_STRINGS);
}
static void m_sec_unknown_required(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put32(sentry(b, PKG_SEC_META), 100);
}
static void m_sec_missing(uint8_t *b, size_t *l)
{
    (void)l;
    uint8_t *e = sentry(b, PKG_SEC_META);
    proto_put32(e, 100);
    proto_put32(e + 4, PKG_SECF_OPTIONAL);
}
static void m_sec_flags(uint8_t *b, size_t *l)
{
    (void)l;
    proto_put32(sentry(b, PKG_SEC_TENSORS) + 4, 6);
}
static void m_empty(uint8_t *b, size_t *l)
{
    (void)b;
    *l = 0;
}
static void m_garbage(uint8_t *b, size_t *l)
{
    for (size_t i = 0; i < 300; i++)
        b[i] = (uint8_t)(i * 131 + 7);
    *l = 300;
}
static void m_short_header(uint8_t *b, size_t *l)
{
    (void)b;
    *l = 40;
}
static void m_bad_sig(uint8_t *b, size_t *l)
{
    b[*l - 5] ^= 0x10;
}
static void m_bad_digest(uint8_t *b, size_t *l)
{
    b[*l - 90] ^= 0x10;
}
static void m_content_changed(uint8_t *b, size_t *l)
{
    /* the release number in the manifest: structure intact, digest wrong */
    uint8_t *m = b + proto_le64(sentry(b, PKG_SEC_MANIFEST) + 8);
    (void)l;
    m[PKG_M_RELEASE] ^= 1;
}

/* section-level mutations (pkgfix_small: tensors w, b, count; proto 0 explicit or seeded) */
static void s_manifest_short(struct xpkg *x)
{
    sec(x, PKG_SEC_MANIFEST)->len = 60;
}
static void s_manifest_long(struct xpkg *x)
{
    struct xsec *s = sec(x, PKG_SEC_MANIFEST);
    memset(s->data + 64, 0x5a, 64); /* future optional manifest fields: ignored */
    s->len = 128;
}
static void s_manifest_flags(struct xpkg *x)
{
    proto_put32(sec(x, PKG_SEC_MANIFEST)->data + PKG_M_FLAGS, 1);
}
static void s_density_nan(struct xpkg *x)
{
    proto_put32(sec(x, PKG_SEC_MANIFEST)->data + PKG_M_DENSITY, 0x7fc00000u);
}
static void s_density_two(struct xpkg *x)
{
    proto_put32(sec(x, PKG_SEC_MANIFEST)->data + PKG_M_DENSITY, 0x40000000u);
}
static void s_name_label(struct xpkg *x)
{
    sec(x, PKG_SEC_STRINGS)->data[2] = ' '; /* "ti y" */
}
static void s_name_empty(struct xpkg *x)
{
    /* a well-formed empty string: the NUL after "tiny" */
    proto_put32(sec(x, PKG_SEC_MANIFEST)->data + PKG_M_NAME, 4);
    proto_put32(sec(x, PKG_SEC_MANIFEST)->data + PKG_M_NAME + 4, 0);
}
static void s_version_leading_dot(struct xpkg *x)
{
    sec(x, PKG_SEC_STRINGS)->data[5] = '.'; /* ".1" */
}
static void s_strategy_ctrl(struct xpkg *x)
{
    sec(x, PKG_SEC_STRINGS)->data[8] = '\n'; /* "r\n" */
}
static void s_strref_oob(struct xpkg *x)
{
    proto_put32(sec(x, PKG_SEC_MANIFEST)->data + PKG_M_NAME, 1000000);
}
static void s_strref_max(struct xpkg *x)
{
    proto_put32(sec(x, PKG_SEC_MANIFEST)->data + PKG_M_NAME, 0xffffffffu);
    proto_put32(sec(x, PKG_SEC_MANIFEST)->data + PKG_M_NAME + 4, 0xffffffffu);
}
static void s_str_no_nul(struct xpkg *x)
{
    proto_put32(sec(x, PKG_SEC_MANIFEST)->data + PKG_M_NAME + 4, 3); /* "tin" then 'y' */
}
static void s_str_inner_nul(struct xpkg *x)
{
    proto_put32(sec(x, PKG_SEC_MANIFEST)->data + PKG_M_NAME + 4, 7); /* "tiny\0v1" */
}
static void s_strings_empty(struct xpkg *x)
{
    sec(x, PKG_SEC_STRINGS)->len = 0;
}
static void s_meta_dup(struct xpkg *x)
{
    struct xsec *s = sec(x, PKG_SEC_META);
    proto_put32(s->data, 2);
    memcpy(s->data + PKG_TABLE_HDR + 16, s->data + PKG_TABLE_HDR, 16);
    s->len += 16;
}
static void s_meta_count_mismatch(struct xpkg *x)
{
    proto_put32(sec(x, PKG_SEC_META)->data, 2);
}
static void s_meta_count_huge(struct xpkg *x)
{
    proto_put32(sec(x, PKG_SEC_META)->data, 0xffffffffu);
}
static void s_tensor_count_overflow(struct xpkg *x)
{
    /* 0x20000001 * 128 wraps to 128 in 32 bits: must not be believed */
    proto_put32(sec(x, PKG_SEC_TENSORS)->data, 0x20000001u);
}
static void s_tensor_count_high(struct xpkg *x)
{
    proto_put32(sec(x, PKG_SEC_TENSORS)->data, 65537);
}
static void s_tensor_esize_small(struct xpkg *x)
{
    proto_put32(sec(x, PKG_SEC_TENSORS)->data + 4, 64);
}
static void s_tensor_esize_odd(struct xpkg *x)
{
    proto_put32(sec(x, PKG_SEC_TENSORS)->data + 4, 129);
}
static void s_tensor_esize_long(struct xpkg *x)
{
    /* entries of 136 bytes: the 8 extra bytes are unknown optional fields, ignored */
    struct xsec *s = sec(x, PKG_SEC_TENSORS);
    uint32_t n = proto_le32(s->data);
    uint8_t *nd = calloc(1, PKG_TABLE_HDR + n * 136 + 256);
    memcpy(nd, s->data, PKG_TABLE_HDR);
    proto_put32(nd + 4, 136);
    for (uint32_t i = 0; i < n; i++) {
        memcpy(nd + PKG_TABLE_HDR + i * 136, s->data + PKG_TABLE_HDR + i * 128, 128);
        memset(nd + PKG_TABLE_HDR + i * 136 + 128, 0xee, 8);
    }
    free(s->data);
    s->data = nd;
    s->len = PKG_TABLE_HDR + n * 136;
}
static void s_tables_hdr_short(struct xpkg *x)
{
    sec(x, PKG_SEC_PROTOS)->len = 8;
}
static void s_proto_oob(struct xpkg *x)
{
    proto_put32(entry(x, PKG_SEC_TENSORS, 0) + PKG_T_PROTO, 5);
}
static void s_offset_ge_dv(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_TENSORS, 0) + PKG_T_OFFSET, 7);
}
static void s_offset_huge(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_TENSORS, 0) + PKG_T_OFFSET, UINT64_MAX);
}
static void s_mask_len(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_TENSORS, 0) + PKG_T_DATA_LEN, 3);
}
static void s_mask_trailing(struct xpkg *x)
{
    uint8_t *e = entry(x, PKG_SEC_TENSORS, 0);
    uint64_t off = proto_le64(e + PKG_T_DATA_OFF);
    sec(x, PKG_SEC_DATA)->data[off + 1] |= 0x80; /* element 15 of 15 */
}
static void s_shape_overflow(struct xpkg *x)
{
    uint8_t *e = entry(x, PKG_SEC_TENSORS, 0);
    proto_put32(e + PKG_T_NDIM, 3);
    proto_put64(e + PKG_T_SHAPE, UINT64_C(1) << 32);
    proto_put64(e + PKG_T_SHAPE + 8, UINT64_C(1) << 32);
    proto_put64(e + PKG_T_SHAPE + 16, 2);
}
static void s_shape_zero_then_huge(struct xpkg *x)
{
    /* a zero dimension does not excuse an overflowing product before it */
    uint8_t *e = entry(x, PKG_SEC_TENSORS, 1);
    proto_put32(e + PKG_T_NDIM, 3);
    proto_put64(e + PKG_T_SHAPE, UINT64_C(1) << 40);
    proto_put64(e + PKG_T_SHAPE + 8, UINT64_C(1) << 40);
    proto_put64(e + PKG_T_SHAPE + 16, 0);
}
static void s_shape_mismatch(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_TENSORS, 0) + PKG_T_SHAPE, 1000); /* 1000x5 vs 2 mask bytes */
}
static void s_ndim9(struct xpkg *x)
{
    proto_put32(entry(x, PKG_SEC_TENSORS, 1) + PKG_T_NDIM, 9);
}
static void s_unused_dim(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_TENSORS, 1) + PKG_T_SHAPE + 8 * 7, 1);
}
static void s_dense_len(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_TENSORS, 1) + PKG_T_DATA_LEN, 8);
}
static void s_dtype_unknown(struct xpkg *x)
{
    proto_put32(entry(x, PKG_SEC_TENSORS, 2) + PKG_T_DTYPE, 99);
}
static void s_masked_not_f32(struct xpkg *x)
{
    proto_put32(entry(x, PKG_SEC_TENSORS, 0) + PKG_T_DTYPE, PEMN_DT_F16);
}
static void s_dense_encoding(struct xpkg *x)
{
    proto_put32(entry(x, PKG_SEC_TENSORS, 1) + PKG_T_ENCODING, 1);
}
static void s_mask_encoding(struct xpkg *x)
{
    proto_put32(entry(x, PKG_SEC_TENSORS, 0) + PKG_T_ENCODING, 3);
}
static void s_tensor_kind(struct xpkg *x)
{
    proto_put32(entry(x, PKG_SEC_TENSORS, 1) + PKG_T_KIND, 3);
}
static void s_scale_inf(struct xpkg *x)
{
    proto_put32(entry(x, PKG_SEC_TENSORS, 0) + PKG_T_SCALE, 0x7f800000u);
}
static void s_data_oob(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_TENSORS, 1) + PKG_T_DATA_OFF, 1u << 20);
}
static void s_data_wrap(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_TENSORS, 1) + PKG_T_DATA_OFF, UINT64_MAX - 63);
}
static void s_data_misaligned(struct xpkg *x)
{
    uint8_t *e = entry(x, PKG_SEC_TENSORS, 1);
    proto_put64(e + PKG_T_DATA_OFF, proto_le64(e + PKG_T_DATA_OFF) + 4);
}
static void s_data_overlap(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_TENSORS, 1) + PKG_T_DATA_OFF,
                proto_le64(entry(x, PKG_SEC_TENSORS, 0) + PKG_T_DATA_OFF));
}
static void s_data_overlap_proto(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_TENSORS, 2) + PKG_T_DATA_OFF,
                proto_le64(entry(x, PKG_SEC_PROTOS, 0) + PKG_P_DATA_OFF));
}
static void s_dup_name(struct xpkg *x)
{
    memcpy(entry(x, PKG_SEC_TENSORS, 1) + PKG_T_NAME, entry(x, PKG_SEC_TENSORS, 0) + PKG_T_NAME, 8);
}
static void s_tensor_name_empty(struct xpkg *x)
{
    uint8_t *ref = entry(x, PKG_SEC_TENSORS, 1) + PKG_T_NAME; /* "b": point at its NUL */
    proto_put32(ref, proto_le32(ref) + 1);
    proto_put32(ref + 4, 0);
}
static void s_proto_len_huge(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_PROTOS, 0) + PKG_P_LENGTH, 1000000000ull);
}
static void s_proto_len_zero(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_PROTOS, 0) + PKG_P_LENGTH, 0);
}
static void s_proto_kind(struct xpkg *x)
{
    proto_put32(entry(x, PKG_SEC_PROTOS, 0) + PKG_P_KIND, 7);
}
static void s_proto_misaligned(struct xpkg *x)
{
    uint8_t *e = entry(x, PKG_SEC_PROTOS, 0);
    proto_put64(e + PKG_P_DATA_OFF, proto_le64(e + PKG_P_DATA_OFF) + 4);
}
static void s_gen_unknown(struct xpkg *x)
{
    proto_put32(entry(x, PKG_SEC_PROTOS, 0) + PKG_P_GEN, 9);
}
static void s_seeded_len_cap(struct xpkg *x)
{
    proto_put64(entry(x, PKG_SEC_PROTOS, 0) + PKG_P_LENGTH, UINT64_C(1) << 40);
}
static void s_seeded_len_unused(struct xpkg *x)
{
    /* 10^6 values, but its tensors use only 15: a 4 MB allocation for nothing */
    proto_put64(entry(x, PKG_SEC_PROTOS, 0) + PKG_P_LENGTH, 1000000);
}
static void s_seeded_len_free(struct xpkg *x)
{
    /* up to 65536 values are always allowed */
    proto_put64(entry(x, PKG_SEC_PROTOS, 0) + PKG_P_LENGTH, 65536);
}
static void s_seeded_scale_nan(struct xpkg *x)
{
    proto_put32(entry(x, PKG_SEC_PROTOS, 0) + PKG_P_SCALE, 0x7fc00000u);
}
static void s_unknown_optional(struct xpkg *x)
{
    struct xsec *s = &x->s[x->n++];
    s->type = 4242;
    s->flags = PKG_SECF_OPTIONAL;
    s->len = 100;
    s->data = malloc(100);
    memset(s->data, 0x77, 100);
}
static void s_no_tensors(struct xpkg *x)
{
    struct xsec *s = sec(x, PKG_SEC_TENSORS);
    proto_put32(s->data, 0);
    s->len = PKG_TABLE_HDR;
}

/* Every dtype, 0-d and 8-d masked tensors, both prototype kinds: a rich seed for fuzzing. */
static void case_rich(void)
{
    pemn_builder *b;
    assert_int_equal(pemn_builder_new("rich", "1.0", 3, &b, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_set_created(b, 1700000000), PEMN_OK);
    assert_int_equal(pemn_builder_set_strategy(b, "one-layer"), PEMN_OK);
    float v[5] = {1.0f, -2.0f, 0.5f, 3.0f, -0.25f};
    uint8_t seed[32] = {9};
    uint32_t p0, p1;
    assert_int_equal(pemn_builder_add_proto_values(b, v, 5, &p0), PEMN_OK);
    assert_int_equal(pemn_builder_add_proto_seeded(b, PEMN_GEN_SIGNED, seed, 0.5f, 40, &p1),
                     PEMN_OK);
    uint64_t s8[8] = {2, 1, 3, 1, 2, 1, 1, 2};
    uint8_t mask[24] = {1, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1};
    assert_int_equal(pemn_builder_add_masked(b, "m8", 8, s8, p0, 4, 2.0f, mask, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "m0", 0, NULL, p1, 39, 1.0f, mask, NULL), PEMN_OK);
    uint64_t s2[1] = {2}, s40[2] = {4, 10};
    uint8_t big[40];
    memset(big, 1, sizeof big);
    assert_int_equal(pemn_builder_add_masked(b, "s", 2, s40, p1, 0, 1.0f, big, NULL), PEMN_OK);
    uint16_t h[2] = {0x3c00, 0x8001};
    double d[2] = {0.1, -1e40};
    int64_t i64[2] = {-1, 1};
    uint8_t bo[2] = {0, 1};
    assert_int_equal(pemn_builder_add_dense(b, "f16", PEMN_DT_F16, 1, s2, h, 4, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_add_dense(b, "bf16", PEMN_DT_BF16, 1, s2, h, 4, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_add_dense(b, "f64", PEMN_DT_F64, 1, s2, d, 16, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_add_dense(b, "i64", PEMN_DT_I64, 1, s2, i64, 16, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_add_dense(b, "bool", PEMN_DT_BOOL, 1, s2, bo, 2, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_add_meta(b, "k", "v"), PEMN_OK);
    uint8_t *buf;
    size_t len;
    assert_int_equal(pemn_builder_finish(b, &fix_sk, &buf, &len, NULL), PEMN_OK);
    pemn_builder_free(b);
    add_case("rich", buf, len, PEMN_OK, PEMN_OK);
}

/* Mask encoding 2 (format 1.1): a 1000-element mask at density ~0.1 and a 13-element one,
 * both entropy-coded (forced), next to a bit-packed one. */
static void case_rans(void)
{
    pemn_builder *b;
    assert_int_equal(pemn_builder_new("coded", "v1", 2, &b, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_set_created(b, 1700000000), PEMN_OK);
    uint8_t seed[32] = {7};
    uint32_t p;
    assert_int_equal(pemn_builder_add_proto_seeded(b, PEMN_GEN_UNIFORM, seed, 1.0f, 64, &p),
                     PEMN_OK);
    uint8_t m[1000];
    uint32_t r = 12345;
    for (int i = 0; i < 1000; i++) {
        r = r * 1103515245u + 12345u;
        m[i] = (r >> 16) % 10 == 0;
    }
    uint64_t s1[2] = {40, 25}, s2[1] = {13};
    assert_int_equal(pemn_builder_add_masked(b, "plain", 1, s2, p, 5, 1.0f, m, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_set_mask_encoding(b, PEMN_MASK_RANS), PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "coded", 2, s1, p, 0, 0.5f, m, NULL), PEMN_OK);
    assert_int_equal(pemn_builder_add_masked(b, "tiny", 1, s2, p, 63, 2.0f, m + 7, NULL), PEMN_OK);
    uint8_t *buf;
    size_t len;
    assert_int_equal(pemn_builder_finish(b, &fix_sk, &buf, &len, NULL), PEMN_OK);
    pemn_builder_free(b);
    add_case("mask-rans", buf, len, PEMN_OK, PEMN_OK);
}

static void make_cases(void)
{
    if (n_cases)
        return;
    pkgfix_key(1, &fix_sk, &fix_pk);
    /* valid */
    case_sect("base", 0, NULL, PEMN_OK, PEMN_OK);
    case_sect("base-seeded", 1, NULL, PEMN_OK, PEMN_OK);
    case_sect("unknown-optional-section", 0, s_unknown_optional, PEMN_OK, PEMN_OK);
    case_sect("manifest-longer", 0, s_manifest_long, PEMN_OK, PEMN_OK);
    case_sect("tensor-entry-longer", 0, s_tensor_esize_long, PEMN_OK, PEMN_OK);
    case_sect("seeded-length-free", 1, s_seeded_len_free, PEMN_OK, PEMN_OK);
    case_sect("no-tensors", 0, s_no_tensors, PEMN_OK, PEMN_OK);
    case_rich();
    case_rans();
    case_bytes("future-minor", m_minor7, 1, PEMN_OK, PEMN_OK);
    case_bytes("reserved-header-bytes", m_reserved, 1, PEMN_OK, PEMN_OK);
    /* structurally fine, signature or digest wrong */
    case_bytes("bad-signature", m_bad_sig, 0, PEMN_OK, PEMN_EBADSIG);
    case_bytes("bad-digest", m_bad_digest, 0, PEMN_OK, PEMN_ECORRUPT);
    case_bytes("content-changed", m_content_changed, 0, PEMN_OK, PEMN_ECORRUPT);
    /* header and section table */
    case_bytes("bad-magic", m_magic, 1, PEMN_ECORRUPT, 0);
    case_bytes("major-99", m_major99, 1, PEMN_EVERSION, 0);
    case_bytes("major-0", m_major0, 1, PEMN_EVERSION, 0);
    case_bytes("empty-file", m_empty, 0, PEMN_ECORRUPT, 0);
    case_bytes("garbage", m_garbage, 0, PEMN_ECORRUPT, 0);
    case_bytes("short-header", m_short_header, 0, PEMN_ECORRUPT, 0);
    case_bytes("file-length-mismatch", m_filelen, 1, PEMN_ECORRUPT, 0);
    case_bytes("truncated", m_truncated, 0, PEMN_ECORRUPT, 0);
    case_bytes("trailing-garbage", m_trailing_garbage, 0, PEMN_ECORRUPT, 0);
    case_bytes("header-flags", m_hflags, 1, PEMN_ECORRUPT, 0);
    case_bytes("section-count-huge", m_nsect_huge, 1, PEMN_ECORRUPT, 0);
    case_bytes("section-count-zero", m_nsect_zero, 1, PEMN_ECORRUPT, 0);
    case_bytes("table-offset-oob", m_table_oob, 1, PEMN_ECORRUPT, 0);
    case_bytes("table-offset-in-header", m_table_small, 1, PEMN_ECORRUPT, 0);
    case_bytes("table-offset-wrap", m_table_wrap, 1, PEMN_ECORRUPT, 0);
    case_bytes("section-oob", m_sec_oob, 1, PEMN_ECORRUPT, 0);
    case_bytes("section-length-wrap", m_sec_wrap, 1, PEMN_ECORRUPT, 0);
    case_bytes("section-into-trailer", m_sec_into_trailer, 1, PEMN_ECORRUPT, 0);
    case_bytes("section-misaligned", m_sec_misaligned, 1, PEMN_ECORRUPT, 0);
    case_bytes("sections-overlap", m_sec_overlap, 1, PEMN_ECORRUPT, 0);
    case_bytes("section-over-table", m_sec_over_table, 1, PEMN_ECORRUPT, 0);
    case_bytes("section-duplicate", m_sec_dup, 1, PEMN_ECORRUPT, 0);
    case_bytes("section-unknown-required", m_sec_unknown_required, 1, PEMN_EUNSUPPORTED, 0);
    case_bytes("section-missing", m_sec_missing, 1, PEMN_ECORRUPT, 0);
    case_bytes("section-flags", m_sec_flags, 1, PEMN_ECORRUPT, 0);
    /* manifest, strings, metadata */
    case_sect("manifest-short", 0, s_manifest_short, PEMN_ECORRUPT, 0);
    case_sect("manifest-flags", 0, s_manifest_flags, PEMN_ECORRUPT, 0);
    case_sect("density-nan", 0, s_density_nan, PEMN_ECORRUPT, 0);
    case_sect("density-two", 0, s_density_two, PEMN_ECORRUPT, 0);
    case_sect("name-not-label", 0, s_name_label, PEMN_ECORRUPT, 0);
    case_sect("name-empty", 0, s_name_empty, PEMN_ECORRUPT, 0);
    case_sect("version-leading-dot", 0, s_version_leading_dot, PEMN_ECORRUPT, 0);
    case_sect("strategy-control-char", 0, s_strategy_ctrl, PEMN_ECORRUPT, 0);
    case_sect("string-ref-oob", 0, s_strref_oob, PEMN_ECORRUPT, 0);
    case_sect("string-ref-max", 0, s_strref_max, PEMN_ECORRUPT, 0);
    case_sect("string-not-terminated", 0, s_str_no_nul, PEMN_ECORRUPT, 0);
    case_sect("string-inner-nul", 0, s_str_inner_nul, PEMN_ECORRUPT, 0);
    case_sect("strings-empty", 0, s_strings_empty, PEMN_ECORRUPT, 0);
    case_sect("meta-duplicate-key", 0, s_meta_dup, PEMN_ECORRUPT, 0);
    case_sect("meta-count-mismatch", 0, s_meta_count_mismatch, PEMN_ECORRUPT, 0);
    case_sect("meta-count-huge", 0, s_meta_count_huge, PEMN_ETOOBIG, 0);
    /* tables and tensors */
    case_sect("tensor-count-overflow", 0, s_tensor_count_overflow, PEMN_ETOOBIG, 0);
    case_sect("tensor-count-over-limit", 0, s_tensor_count_high, PEMN_ETOOBIG, 0);
    case_sect("tensor-entry-small", 0, s_tensor_esize_small, PEMN_ECORRUPT, 0);
    case_sect("tensor-entry-odd", 0, s_tensor_esize_odd, PEMN_ECORRUPT, 0);
    case_sect("table-header-short", 0, s_tables_hdr_short, PEMN_ECORRUPT, 0);
    case_sect("proto-index-oob", 0, s_proto_oob, PEMN_ECORRUPT, 0);
    case_sect("offset-ge-dv", 0, s_offset_ge_dv, PEMN_ECORRUPT, 0);
    case_sect("offset-huge", 0, s_offset_huge, PEMN_ECORRUPT, 0);
    case_sect("mask-length-wrong", 0, s_mask_len, PEMN_ECORRUPT, 0);
    case_sect("mask-trailing-bits", 0, s_mask_trailing, PEMN_ECORRUPT, 0);
    case_sect("mask-encoding-unknown", 0, s_mask_encoding, PEMN_EUNSUPPORTED, 0);
    case_sect("shape-overflow", 0, s_shape_overflow, PEMN_ECORRUPT, 0);
    case_sect("shape-overflow-before-zero", 0, s_shape_zero_then_huge, PEMN_ECORRUPT, 0);
    case_sect("shape-data-mismatch", 0, s_shape_mismatch, PEMN_ECORRUPT, 0);
    case_sect("ndim-9", 0, s_ndim9, PEMN_ECORRUPT, 0);
    case_sect("unused-dim-nonzero", 0, s_unused_dim, PEMN_ECORRUPT, 0);
    case_sect("dense-length-wrong", 0, s_dense_len, PEMN_ECORRUPT, 0);
    case_sect("dtype-unknown", 0, s_dtype_unknown, PEMN_ECORRUPT, 0);
    case_sect("masked-not-f32", 0, s_masked_not_f32, PEMN_ECORRUPT, 0);
    case_sect("dense-with-encoding", 0, s_dense_encoding, PEMN_ECORRUPT, 0);
    case_sect("tensor-kind-unknown", 0, s_tensor_kind, PEMN_ECORRUPT, 0);
    case_sect("scale-inf", 0, s_scale_inf, PEMN_ECORRUPT, 0);
    case_sect("data-oob", 0, s_data_oob, PEMN_ECORRUPT, 0);
    case_sect("data-offset-wrap", 0, s_data_wrap, PEMN_ECORRUPT, 0);
    case_sect("data-misaligned", 0, s_data_misaligned, PEMN_ECORRUPT, 0);
    case_sect("data-overlap", 0, s_data_overlap, PEMN_ECORRUPT, 0);
    case_sect("data-overlap-proto", 0, s_data_overlap_proto, PEMN_ECORRUPT, 0);
    case_sect("tensor-name-duplicate", 0, s_dup_name, PEMN_ECORRUPT, 0);
    case_sect("tensor-name-empty", 0, s_tensor_name_empty, PEMN_ECORRUPT, 0);
    /* prototypes */
    case_sect("proto-length-huge", 0, s_proto_len_huge, PEMN_ECORRUPT, 0);
    case_sect("proto-length-zero", 0, s_proto_len_zero, PEMN_ECORRUPT, 0);
    case_sect("proto-kind-unknown", 0, s_proto_kind, PEMN_ECORRUPT, 0);
    case_sect("proto-misaligned", 0, s_proto_misaligned, PEMN_ECORRUPT, 0);
    case_sect("generator-unknown", 1, s_gen_unknown, PEMN_EUNSUPPORTED, 0);
    case_sect("seeded-length-over-cap", 1, s_seeded_len_cap, PEMN_ETOOBIG, 0);
    case_sect("seeded-length-unused", 1, s_seeded_len_unused, PEMN_ETOOBIG, 0);
    case_sect("seeded-scale-nan", 1, s_seeded_scale_nan, PEMN_ECORRUPT, 0);
}

/* ---- checking ------------------------------------------------------------------------------ */
static pemn_keyring *ring(void)
{
    pemn_keyring *kr;
    assert_int_equal(pemn_keyring_new(&kr), PEMN_OK);
    assert_int_equal(pemn_keyring_add_file(kr, SIGNER_PUB, NULL), PEMN_OK);
    return kr;
}

/* Opens (from a private exact-size copy), walks, expands and verifies; checks the codes. */
static void check_one(const char *name, const uint8_t *buf, size_t len, pemn_rc orc, pemn_rc vrc,
                      const pemn_keyring *kr)
{
    uint8_t *c = malloc(len ? len : 1);
    memcpy(c, buf, len);
    pemn_pkg *pkg = NULL;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_pkg_open_mem(c, len, 0, &pkg, &e);
    if (rc != orc)
        fail_msg("%s: open gave %s (%s), expected %s", name, pemn_rc_name(rc), e.msg,
                 pemn_rc_name(orc));
    if (rc == PEMN_OK) {
        for (uint32_t i = 0; i < pemn_pkg_tensor_count(pkg); i++) {
            struct pemn_tensor_info t;
            assert_int_equal(pemn_pkg_tensor(pkg, i, &t), PEMN_OK);
            float *out = malloc((size_t)t.numel * 4 + 4);
            pemn_rc xr = pemn_pkg_expand(pkg, i, out, t.numel, NULL);
            assert_true(xr == PEMN_OK || xr == PEMN_EUNSUPPORTED);
            free(out);
        }
        rc = pemn_pkg_verify(pkg, kr, &e);
        if (rc != vrc)
            fail_msg("%s: verify gave %s (%s), expected %s", name, pemn_rc_name(rc), e.msg,
                     pemn_rc_name(vrc));
        pemn_pkg_free(pkg);
    } else {
        assert_null(pkg);
        assert_int_equal(e.rc, orc);
        assert_true(e.msg[0] != '\0');
    }
    free(c);
}

static void test_generated_cases(void **state)
{
    (void)state;
    make_cases();
    pemn_keyring *kr = ring();
    for (int i = 0; i < n_cases; i++)
        check_one(cases[i].name, cases[i].buf, cases[i].len, cases[i].open_rc, cases[i].verify_rc,
                  kr);
    pemn_keyring_free(kr);
}

static pemn_rc parse_rc(const char *s)
{
    for (int rc = 0; rc < PEMN_RC_COUNT_; rc++)
        if (strcmp(s, pemn_rc_name((pemn_rc)rc)) == 0)
            return (pemn_rc)rc;
    fail_msg("unknown result name %s", s);
    return PEMN_EINVAL;
}

/* Every NAME.pemn in dir has a NAME.expect, and behaves as it says. Returns the count. */
static int check_dir(const char *dir, const pemn_keyring *kr)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".pemn") != 0)
            continue;
        char path[1024], exp[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        snprintf(exp, sizeof exp, "%s/%.*s.expect", dir, (int)(l - 5), de->d_name);
        size_t blen, elen;
        uint8_t *buf = pkgfix_read(path, &blen);
        char *txt = (char *)pkgfix_read(exp, &elen);
        if (!buf || !txt)
            fail_msg("%s: cannot read it or its .expect", path);
        char *t2 = realloc(txt, elen + 1);
        if (!t2)
            free(txt);
        assert_non_null(t2);
        txt = t2;
        txt[elen] = 0;
        char o[32] = "", v[32] = "OK";
        int k = sscanf(txt, "%31s %31s", o, v);
        assert_true(k >= 1);
        check_one(path, buf, blen, parse_rc(o), parse_rc(v), kr);
        free(buf);
        free(txt);
        n++;
    }
    closedir(d);
    return n;
}

static void write_case(const char *dir, const struct pcase *c, int with_expect)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.pemn", dir, c->name);
    assert_int_equal(pkgfix_write(path, c->buf, c->len), 0);
    if (!with_expect)
        return;
    char txt[64];
    int n = c->open_rc == PEMN_OK
                ? snprintf(txt, sizeof txt, "%s %s\n", "OK", pemn_rc_name(c->verify_rc))
                : snprintf(txt, sizeof txt, "%s\n", pemn_rc_name(c->open_rc));
    snprintf(path, sizeof path, "%s/%s.expect", dir, c->name);
    assert_int_equal(pkgfix_write(path, txt, (size_t)n), 0);
}

static void test_corpus_on_disk(void **state)
{
    (void)state;
    make_cases();
    const char *regen = getenv("PEMN_REGEN_CORPUS");
    if (regen && strcmp(regen, "1") == 0) {
        char pub[PEMN_PUBKEY_TEXT_MAX + 1];
        pemn_pubkey_format(&fix_pk, pub);
        strcat(pub, "\n");
        assert_int_equal(pkgfix_write(SIGNER_PUB, pub, strlen(pub)), 0);
        for (int i = 0; i < n_cases; i++) {
            write_case(cases[i].valid ? VALID_DIR : INVALID_DIR, &cases[i], 1);
            write_case(FUZZ_DIR, &cases[i], 0);
        }
    }
    pemn_keyring *kr = ring();
    int nv = check_dir(VALID_DIR, kr), ni = check_dir(INVALID_DIR, kr);
    int want_v = 0;
    for (int i = 0; i < n_cases; i++)
        want_v += cases[i].valid;
    assert_true(nv >= want_v);
    assert_true(ni >= n_cases - want_v);
    /* every generated case is on disk, byte for byte */
    for (int i = 0; i < n_cases; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.pemn", cases[i].valid ? VALID_DIR : INVALID_DIR,
                 cases[i].name);
        size_t len;
        uint8_t *buf = pkgfix_read(path, &len);
        if (!buf || len != cases[i].len || memcmp(buf, cases[i].buf, len) != 0)
            fail_msg("%s is missing or stale: run PEMN_REGEN_CORPUS=1 %s", path,
                     "build/release/tests/test_pkg_corpus");
        free(buf);
    }
    pemn_keyring_free(kr);
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < n_cases; i++)
        free(cases[i].buf);
    n_cases = 0;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_cases),
        cmocka_unit_test(test_corpus_on_disk),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
