/*
 * Unit tests: allocation failure. The Nth allocation of an operation is made to fail, for
 * N = 0, 1, 2, ... until the operation succeeds; every failing run must return PEMN_ENOMEM
 * (or the code the operation documents) and leave no allocation behind.
 *
 * The allocator is interposed in this executable (malloc, calloc, realloc, free,
 * posix_memalign over glibc's __libc_* entry points) and counts live blocks. Under a
 * sanitizer, which owns the allocator, the interposition is compiled out and the test is
 * skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/builder.h>
#include <pemn/gen.h>
#include <pemn/pkg.h>
#include "tests/common/pkgfix.h"

#if defined(__SANITIZE_ADDRESS__)
#define NO_INTERPOSE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NO_INTERPOSE 1
#endif
#endif

static long fail_at = -1; /* index of the allocation to fail, -1: none */
static long n_allocs;
static long live;

#ifndef NO_INTERPOSE
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static int should_fail(void)
{
    return fail_at >= 0 && n_allocs++ == fail_at;
}

void *malloc(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = __libc_malloc(n);
    if (p)
        live++;
    return p;
}

void *calloc(size_t a, size_t b)
{
    if (should_fail())
        return NULL;
    void *p = __libc_calloc(a, b);
    if (p)
        live++;
    return p;
}

void *realloc(void *old, size_t n)
{
    if (!old)
        return malloc(n);
    if (n == 0) {
        free(old);
        return NULL;
    }
    if (should_fail())
        return NULL;
    return __libc_realloc(old, n);
}

void free(void *p)
{
    if (p)
        live--;
    __libc_free(p);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (should_fail())
        return ENOMEM;
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    live++;
    *out = p;
    return 0;
}
#endif

typedef pemn_rc (*op_fn)(void *ctx);

/* Runs op with the Nth allocation failing, N = 0.. until it succeeds; returns the number
 * of failing runs. */
static long chaos(const char *what, op_fn op, void *ctx, pemn_rc also_ok)
{
    for (long n = 0; n < 100000; n++) {
        long before = live;
        n_allocs = 0;
        fail_at = n;
        pemn_rc rc = op(ctx);
        fail_at = -1;
        if (rc == PEMN_OK) {
            print_message("%s: %ld allocation failures survived\n", what, n);
            return n;
        }
        if (rc != PEMN_ENOMEM && rc != also_ok)
            fail_msg("%s: allocation %ld failing gave %s", what, n, pemn_rc_name(rc));
        if (live != before)
            fail_msg("%s: allocation %ld failing leaked %ld blocks", what, n, live - before);
    }
    fail_msg("%s never succeeded", what);
    return -1;
}

static uint8_t *pkg_buf;
static size_t pkg_len;

static pemn_rc op_open(void *ctx)
{
    unsigned flags = *(unsigned *)ctx;
    pemn_pkg *pkg = NULL;
    pemn_rc rc = pemn_pkg_open_mem(pkg_buf, pkg_len, flags, &pkg, NULL);
    if (rc == PEMN_OK) {
        const float *v;
        /* the seeded prototype is generated lazily: that allocation can fail too */
        rc = pemn_pkg_proto_values(pkg, 0, &v, NULL);
        if (rc == PEMN_OK) {
            float out[15];
            rc = pemn_pkg_expand(pkg, 0, out, 15, NULL);
        }
        pemn_pkg_free(pkg);
    }
    return rc;
}

static pemn_rc op_build(void *ctx)
{
    (void)ctx;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(1, &sk, &pk);
    pemn_builder *b = NULL;
    pemn_rc rc = pemn_builder_new("m", "1", 1, &b, NULL);
    if (rc)
        return rc;
    float v[3] = {1, 2, 3};
    uint8_t seed[32] = {1};
    uint8_t mask[6] = {1, 0, 1, 1, 0, 1};
    uint64_t sh[2] = {2, 3};
    uint32_t p;
    int64_t c = 1;
    uint8_t *out = NULL;
    size_t len;
    if (!(rc = pemn_builder_add_meta(b, "k", "v")) && !(rc = pemn_builder_add_meta(b, "k", "w")) &&
        !(rc = pemn_builder_add_proto_values(b, v, 3, &p)) &&
        !(rc = pemn_builder_add_proto_seeded(b, PEMN_GEN_UNIFORM, seed, 1.0f, 6, &p)) &&
        !(rc = pemn_builder_add_masked(b, "w", 2, sh, 0, 1, 1.0f, mask, NULL)) &&
        !(rc = pemn_builder_add_masked(b, "s", 2, sh, 1, 0, 1.0f, mask, NULL)) &&
        !(rc = pemn_builder_add_dense(b, "c", PEMN_DT_I64, 0, NULL, &c, 8, NULL)) &&
        !(rc = pemn_builder_finish(b, &sk, &out, &len, NULL))) {
        pemn_pkg *pkg = NULL;
        rc = pemn_pkg_open_mem(out, len, 0, &pkg, NULL);
        pemn_pkg_free(pkg);
        free(out);
    }
    pemn_builder_free(b);
    return rc;
}

static pemn_rc op_keyring(void *ctx)
{
    (void)ctx;
    pemn_keyring *kr = NULL;
    pemn_rc rc = pemn_keyring_new(&kr);
    struct pemn_pubkey k;
    memset(k.bytes, 0, sizeof k.bytes);
    for (uint32_t i = 0; i < 40 && rc == PEMN_OK; i++) {
        memcpy(k.bytes, &i, 4);
        rc = pemn_keyring_add(kr, &k);
    }
    pemn_keyring_free(kr);
    return rc;
}

static void test_oom(void **state)
{
    (void)state;
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(1, &sk, &pk);
    pkgfix_small_seeded(&sk, &pkg_buf, &pkg_len);
    unsigned borrowed = 0, copied = PEMN_OPEN_COPY;
    int inject = 1;
#ifdef NO_INTERPOSE
    inject = 0;
#endif
    if (getenv("PEMN_VALGRIND"))
        inject = 0;
    if (!inject) {
        /* the allocator is not ours: the operations must at least succeed */
        assert_int_equal(op_open(&borrowed), PEMN_OK);
        assert_int_equal(op_open(&copied), PEMN_OK);
        assert_int_equal(op_build(NULL), PEMN_OK);
        assert_int_equal(op_keyring(NULL), PEMN_OK);
        free(pkg_buf);
        skip();
        return; /* skip() does not return; said for static analysers */
    }
    /* each operation allocates, so at least one run must have failed */
    assert_true(chaos("open", op_open, &borrowed, PEMN_OK) >= 3);
    assert_true(chaos("open copy", op_open, &copied, PEMN_OK) >= 4);
    assert_true(chaos("build", op_build, NULL, PEMN_ETOOBIG) >= 10);
    assert_true(chaos("keyring", op_keyring, NULL, PEMN_OK) >= 2);
    free(pkg_buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
