/*
 * proto/delta_int.h — byte layout of a .pemnd delta file (internal; docs/FORMAT.md,
 * "Delta files", is the spec).
 *
 * Header (128 bytes): magic[8] | u16 major | u16 minor | u32 body encoding (0 raw, 1 zlib) |
 *   u64 file length | u64 OLD length | u64 NEW length | u32 op count | u32 dictionary length |
 *   u8[32] OLD SHA-256 | u8[32] NEW SHA-256 | u64 body length | u64 reserved.
 * Then the body: op count ops (raw, or as one zlib stream whose preset dictionary is OLD's
 * first `dictionary length` bytes), each a 40-byte record followed by its payload:
 *   0 u32 type | 4 u32 arg | 8 u64 output length | 16 u64 src | 24 u64 payload length |
 *   32 u32 encoding | 36 u32 Golomb parameter
 */
#ifndef PEMN_PROTO_DELTA_INT_H
#define PEMN_PROTO_DELTA_INT_H

#define DELTA_MAGIC "\x89PEMND\n\x1a"
#define DELTA_MAJOR 1
#define DELTA_MINOR 0
#define DELTA_HDR 128
#define DELTA_OP 40
#define DELTA_BODY_RAW 0
#define DELTA_BODY_ZLIB 1
#define DELTA_DICT_MAX 32768u
#define DELTA_BLOCK 64 /* diff granularity: packages align every block to 64 bytes */

#define DELTA_OP_COPY 1 /* output = OLD[src, src + out_len) */
#define DELTA_OP_DATA 2 /* output = payload (payload length = out_len) */
#define DELTA_OP_MASK 3 /* output = OLD tensor arg's mask with the coded flips, encoded */

#endif
