/*
 * tests/common/pkgfix.h — fixtures for package tests: deterministic keys and small packages.
 */
#ifndef PEMN_TESTS_PKGFIX_H
#define PEMN_TESTS_PKGFIX_H

#include <pemn/builder.h>
#include <pemn/pkg.h>

/* A deterministic key pair derived from one byte (seed = 32 copies of it). */
void pkgfix_key(uint8_t tag, struct pemn_seckey *sk, struct pemn_pubkey *pk);

/* A small signed package (about 1.5 KiB): explicit prototype of 7 values, a masked 3x5
 * tensor "w" (offset 2, scale 0.5), a dense F32 "b" [3], a dense I64 0-d "count" = 42 and
 * metadata {"framework": "pemn-test"}. Created 1700000000, release 7, name "tiny", version
 * "v1", strategy "rp", density 0.5. *out is malloc'ed. */
void pkgfix_small(const struct pemn_seckey *sk, uint8_t **out, size_t *len);
/* The same with a seeded prototype instead of the explicit one (generator uniform). */
void pkgfix_small_seeded(const struct pemn_seckey *sk, uint8_t **out, size_t *len);

/* The values the fixtures use. */
extern const float pkgfix_proto[7];
extern const uint8_t pkgfix_mask[15];
extern const float pkgfix_bias[3];

/* Reads a whole file (malloc'ed); NULL on error. */
uint8_t *pkgfix_read(const char *path, size_t *len);
/* Writes a whole file; 0 or -1. */
int pkgfix_write(const char *path, const void *data, size_t len);
/* A fresh temporary directory (mkdtemp under $TMPDIR or /tmp); the path is static. */
const char *pkgfix_tmpdir(void);
/* rm -r of a directory tree made by pkgfix_tmpdir (one level of files). */
void pkgfix_rmdir(const char *dir);

#endif
