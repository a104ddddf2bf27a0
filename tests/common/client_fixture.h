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
char *fx_version_json(const char *name, const char *version, uint64_t release, const char *digest,
                      uint64_t size, const char *package_url, const char *tag);
/* Fills a resolved struct for a package served at url. */
void fx_resolved(struct pemn_resolved *r, const char *name, const char *version, uint64_t release,
                 const uint8_t *pkg, size_t len, const char *url);
/* A fresh temporary directory (malloc'ed path) and its recursive removal. */
char *fx_tmpdir(void);
void fx_rmrf(const char *dir);
int fx_exists(const char *path);
/* Reads a whole file (malloc'ed) or NULL. */
uint8_t *fx_read(const char *path, size_t *len);

/* Tool mode of test_client_pull, for integration tests and benchmarks:
 *   keygen BASE                      BASE.key + BASE.pub
 *   make-pkg KEY NAME VERSION RELEASE LAYERS OUT
 *       LAYERS = "784x300,300x100,100x10": per layer a masked weight fcI.weight [rows,cols]
 *       (random mask, density 0.5) over one shared explicit prototype of 4096 values (rp),
 *       and a dense F32 bias fcI.bias [cols]
 *   expand PKG OUT                   pemn_pkg_write_safetensors
 * Returns a process exit code. */
int fx_tool(int argc, char **argv);

#endif
