/*
 * proto/pkg_layout.h — byte layout of a .pemn file (internal; docs/FORMAT.md is the spec).
 *
 * All integers little-endian; floats IEEE-754 binary32 little-endian.
 *
 *   [0, 64)            header
 *   [table_off, +32n)  section table: n entries of 32 bytes
 *   sections           each at a multiple of 64, sorted by offset, not overlapping
 *   [len-128, len)     trailer: signer public key (32) | content digest (32) | signature (64)
 *
 * Header (64 bytes):
 *   0  u8[8]  magic  89 'P' 'E' 'M' 'N' 0D 0A 1A
 *   8  u16    major (1)          10 u16 minor (0)
 *   12 u32    flags (0)
 *   16 u64    file length
 *   24 u32    section count      28 u32 reserved (0)
 *   32 u64    section table offset
 *   40 u8[24] reserved (0; ignored by readers)
 *
 * Section table entry (32 bytes):
 *   0 u32 type   4 u32 flags (bit 0: optional)   8 u64 offset   16 u64 length   24 u64 reserved
 *
 * Table sections (META, PROTOS, TENSORS) start with a 16-byte table header
 *   0 u32 count   4 u32 entry size (>= the size below; extra bytes are ignored)   8 u64 reserved
 * and hold exactly count * entry size bytes after it.
 *
 * A string reference (8 bytes) is u32 offset, u32 length into the STRINGS section; the byte
 * at offset + length is NUL and the string holds no NUL.
 */
#ifndef PEMN_PROTO_PKG_LAYOUT_H
#define PEMN_PROTO_PKG_LAYOUT_H

#include <stdint.h>

#define PKG_MAGIC "\x89PEMN\r\n\x1a"
#define PKG_MAGIC_LEN 8
#define PKG_MAJOR 1
#define PKG_MINOR 1 /* 1.1: a co-signature block may follow the trailer */
#define PKG_HEADER_SIZE 64
#define PKG_ALIGN 64
#define PKG_SECT_ENTRY 32
#define PKG_MAX_SECTIONS 64
#define PKG_TRAILER_SIZE 128
#define PKG_TABLE_HDR 16

/* header field offsets */
#define PKG_H_MAJOR 8
#define PKG_H_MINOR 10
#define PKG_H_FLAGS 12
#define PKG_H_FILE_LEN 16
#define PKG_H_NSECT 24
#define PKG_H_TABLE_OFF 32

/* section types */
#define PKG_SEC_MANIFEST 1
#define PKG_SEC_STRINGS 2
#define PKG_SEC_META 3
#define PKG_SEC_PROTOS 4
#define PKG_SEC_TENSORS 5
#define PKG_SEC_DATA 6
#define PKG_SEC_KNOWN_MAX 6
#define PKG_SECF_OPTIONAL 1u

/* MANIFEST section (at least 64 bytes; extra bytes ignored) */
#define PKG_MANIFEST_SIZE 64
#define PKG_M_RELEASE 0   /* u64 */
#define PKG_M_CREATED 8   /* i64 */
#define PKG_M_DENSITY 16  /* f32 */
#define PKG_M_FLAGS 20    /* u32, 0 */
#define PKG_M_NAME 24     /* strref */
#define PKG_M_VERSION 32  /* strref */
#define PKG_M_STRATEGY 40 /* strref */
/* 48..64 reserved */

/* META entry (16 bytes): strref key, strref value */
#define PKG_META_ENTRY 16

/* PROTOS entry (64 bytes) */
#define PKG_PROTO_ENTRY 64
#define PKG_P_KIND 0      /* u32: 1 explicit, 2 seeded */
#define PKG_P_GEN 4       /* u32: seeded generator, 0 for explicit */
#define PKG_P_LENGTH 8    /* u64: d_v */
#define PKG_P_SCALE 16    /* f32: seeded scale, 0 for explicit */
#define PKG_P_RESERVED 20 /* u32 */
#define PKG_P_DATA_OFF 24 /* u64: explicit: offset in DATA (multiple of 64); seeded: 0 */
#define PKG_P_SEED 32     /* u8[32]: seeded only, zero for explicit */

/* TENSORS entry (128 bytes) */
#define PKG_TENSOR_ENTRY 128
#define PKG_T_NAME 0      /* strref */
#define PKG_T_KIND 8      /* u32: 1 masked, 2 dense */
#define PKG_T_DTYPE 12    /* u32: pemn_dtype code */
#define PKG_T_NDIM 16     /* u32 */
#define PKG_T_PROTO 20    /* u32: masked only */
#define PKG_T_OFFSET 24   /* u64: masked only */
#define PKG_T_SCALE 32    /* f32: masked only */
#define PKG_T_ENCODING 36 /* u32: masked: mask encoding (1); dense: 0 */
#define PKG_T_DATA_OFF 40 /* u64: offset in DATA (multiple of 64) */
#define PKG_T_DATA_LEN 48 /* u64 */
#define PKG_T_SHAPE 56    /* u64[8]; unused dims are 0 */
/* 120..128 reserved */

#define PKG_TENSOR_MASKED 1
#define PKG_TENSOR_DENSE 2

/* Seeded prototype length bound: at most max(PKG_SEEDED_FREE_LEN, total elements of the
 * masked tensors that reference it), and never more than PKG_SEEDED_MAX_LEN. */
#define PKG_SEEDED_FREE_LEN 65536u
#define PKG_SEEDED_MAX_LEN (UINT64_C(1) << 34)

/* Signed message: PKG_SIG_DOMAIN (12 bytes incl. the NUL) || content digest */
#define PKG_SIG_DOMAIN "pemn-sig-v1"
#define PKG_SIG_DOMAIN_LEN 12

/* Co-signature block (format 1.1), right after the trailer, outside the header's file
 * length: u8[8] magic | u32 count (1..PEMN_PKG_MAX_SIGNERS-1) | u32 reserved (0) |
 * count entries of (public key 32 | signature 64). Every signature is of the same message as
 * the trailer's. */
#define PKG_COSIG_MAGIC "PEMNCSIG"
#define PKG_COSIG_HDR 16
#define PKG_COSIG_ENTRY 96

static inline uint64_t pkg_align_up(uint64_t v)
{
    return (v + (PKG_ALIGN - 1)) & ~(uint64_t)(PKG_ALIGN - 1);
}

#endif
