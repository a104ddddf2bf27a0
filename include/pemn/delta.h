/*
 * pemn/delta.h — package deltas (.pemnd): the bytes that turn one package into the next.
 *
 * A delta between two packages OLD and NEW (docs/FORMAT.md, "Delta files") rebuilds NEW
 * byte for byte from OLD. A mask of NEW whose tensor exists in OLD with the same number of
 * elements is sent as the positions of the bits that flip, Golomb-coded near their entropy;
 * the rest of NEW as copies of OLD's bytes or literal bytes. A delta carries no trust of
 * its own: it names OLD and NEW by their SHA-256 digests, pemn_delta_apply checks both,
 * and the rebuilt package must then be verified (pemn_pkg_verify) like any download.
 *
 * Thread-safety: the functions hold no state; different calls may run concurrently.
 */
#ifndef PEMN_DELTA_H
#define PEMN_DELTA_H

#include <pemn/common.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits a reader enforces. */
#define PEMN_DELTA_MAX_OPS (1u << 24)
/* NEW may be at most 2 * OLD + delta length + 1 MiB (PEMN_ETOOBIG beyond). */
#define PEMN_DELTA_SLACK (1u << 20)

struct pemn_delta_info {
    uint16_t format_major, format_minor;
    uint8_t old_digest[PEMN_DIGEST_BYTES]; /* SHA-256 of the whole OLD file */
    uint8_t new_digest[PEMN_DIGEST_BYTES]; /* SHA-256 of the whole NEW file */
    uint64_t old_len, new_len;
    uint32_t n_ops;
    uint32_t body_encoding; /* 0 raw ops, 1 zlib-compressed ops */
    uint64_t body_len;      /* bytes of the ops (after inflating) */
};

struct pemn_delta_stats {
    uint64_t delta_bytes;   /* size of the delta file */
    uint64_t mask_tensors;  /* masks sent as flips */
    uint64_t mask_bits;     /* elements of those masks */
    uint64_t flips;         /* bits that differ */
    double ideal_bytes;     /* sum over those masks of numel * H(flips / numel) / 8 */
    uint64_t flip_bytes;    /* bytes the coded flip positions take (payloads only) */
    uint64_t copied_bytes;  /* NEW bytes copied from OLD */
    uint64_t literal_bytes; /* NEW bytes sent verbatim */
};

/* Makes the delta from OLD to NEW (both must open as packages; they are not verified).
 * *out is malloc'ed. stats may be NULL. */
PEMN_WARN_UNUSED pemn_rc pemn_delta_make(const uint8_t *old_pkg, size_t old_len,
                                         const uint8_t *new_pkg, size_t new_len, uint8_t **out,
                                         size_t *out_len, struct pemn_delta_stats *stats,
                                         struct pemn_err *err);

/* Reads a delta's header (checks its structure, not OLD). */
PEMN_WARN_UNUSED pemn_rc pemn_delta_info(const uint8_t *delta, size_t len,
                                         struct pemn_delta_info *out, struct pemn_err *err);

/* Rebuilds NEW from OLD and the delta. *out is malloc'ed. PEMN_EDIGEST when OLD is not the
 * base the delta was made from, or when the result's SHA-256 is not the NEW digest the
 * delta names; PEMN_ECORRUPT (err->offset into the delta) or PEMN_ETOOBIG for a malformed
 * delta; PEMN_EVERSION for an unknown major version. Nothing is trusted until the caller
 * verifies the result's signature. */
PEMN_WARN_UNUSED pemn_rc pemn_delta_apply(const uint8_t *old_pkg, size_t old_len,
                                          const uint8_t *delta, size_t delta_len, uint8_t **out,
                                          size_t *out_len, struct pemn_err *err);

#ifdef __cplusplus
}
#endif
#endif
