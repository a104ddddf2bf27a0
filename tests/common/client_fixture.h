/*
 * tests/common/client_fixture.h — packages and registry JSON for the client tests.
 */
#ifndef PEMN_TESTS_CLIENT_FIXTURE_H
#define PEMN_TESTS_CLIENT_FIXTURE_H

#include <pemn/client.h>
#include <pemn/key.h>
#include <stddef.h>
#include <stdint.h>

/* Builds a signed package: a masked tensor "w" of n_weights elements (random mask, seeded
 * uniform prototype) and a dense F32 bias "b" of 10 values. Returns malloc'ed bytes
 * (free()), or NULL. */
uint8_t *fx_make_pkg(const char *name, const char *version, uint64_t release,
                     const struct pemn_seckey *sk, uint64_t n_weights, size_t *len);
/* "sha256:<hex>" of a buffer. */
void fx_digest(const void *p, size_t len, char out[PEMN_DIGEST_TEXT_MAX]);
/* A version object as the registry sends it (malloc'ed). package_url may be NULL. */
char *fx_version_json(const char *name, const char *version, uint64_t release,
                      const char *digest, uint64_t size, const char *package_url,
                      const char *tag);
/* Fills a resolved struct for a package served at url. */
void fx_resolved(struct pemn_resolved *r, const char *name, const char *version,
                 uint64_t release, const uint8_t *pkg, size_t len, const char *url);
/* A fresh temporary directory (malloc'ed path) and its recursive removal. */
char *fx_tmpdir(void);
void fx_rmrf(const char *dir);
int fx_exists(const char *path);
/* Reads a whole file (malloc'ed) or NULL. */
uint8_t *fx_read(const char *path, size_t *len);

#endif
