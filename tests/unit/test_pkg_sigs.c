/*
 * Unit tests: packages with several signatures (format 1.1 co-signatures, docs/FORMAT.md):
 * adding them, reading every signer, verification, malformed co-signature blocks, and
 * format 1.0 packages (tests/data/compat/format-1.0.pemn) still read and verify.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <pemn/pkg.h>
#include "proto/err.h"
#include "proto/pkg_layout.h"
#include "tests/common/pkgfix.h"

static pemn_pkg *open_bytes(const uint8_t *b, size_t n, pemn_rc want)
{
    pemn_pkg *p = NULL;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_pkg_open_mem(b, n, PEMN_OPEN_COPY, &p, &e);
    if (rc != want)
        fail_msg("open: %s (%s), wanted %s", pemn_rc_name(rc), e.msg, pemn_rc_name(want));
    return p;
}

/* pkgfix_small by key 1, co-signed by keys 2..1+extra. */
static uint8_t *cosigned(int extra, size_t *len)
{
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(1, &sk, &pk);
    uint8_t *b;
    pkgfix_small(&sk, &b, len);
    for (int i = 0; i < extra; i++) {
        pemn_pkg *p = open_bytes(b, *len, PEMN_OK);
        pkgfix_key((uint8_t)(2 + i), &sk, &pk);
        uint8_t *nb;
        size_t nl;
        struct pemn_err e = {0};
        assert_int_equal(pemn_pkg_add_signature(p, &sk, &nb, &nl, &e), PEMN_OK);
        pemn_pkg_free(p);
        free(b);
        b = nb;
        *len = nl;
    }
    return b;
}

static void test_add_and_read_signers(void **state)
{
    (void)state;
    size_t n0, n2;
    uint8_t *b0 = cosigned(0, &n0), *b2 = cosigned(2, &n2);
    assert_int_equal(n2, n0 + PKG_COSIG_HDR + 2 * PKG_COSIG_ENTRY);
    assert_memory_equal(b0, b2, n0); /* the content, its digest and the trailer are kept */
    pemn_pkg *p = open_bytes(b2, n2, PEMN_OK);
    assert_int_equal(pemn_pkg_signer_count(p), 3);
    for (uint32_t i = 0; i < 3; i++) {
        struct pemn_seckey sk;
        struct pemn_pubkey want, got;
        uint8_t id[PEMN_KEYID_BYTES], wid[PEMN_KEYID_BYTES];
        pkgfix_key((uint8_t)(1 + i), &sk, &want);
        assert_int_equal(pemn_pkg_signer(p, i, &got, id), PEMN_OK);
        assert_memory_equal(got.bytes, want.bytes, PEMN_PUBKEY_BYTES);
        pemn_key_id(&want, wid);
        assert_memory_equal(id, wid, PEMN_KEYID_BYTES);
    }
    struct pemn_pubkey x;
    assert_int_equal(pemn_pkg_signer(p, 3, &x, NULL), PEMN_ENOTFOUND);
    struct pemn_pkg_info info;
    assert_int_equal(pemn_pkg_info(p, &info), PEMN_OK);
    assert_int_equal(info.file_size, n2);
    assert_int_equal(info.format_minor, 1);
    assert_int_equal(pemn_pkg_verify_signatures(p, NULL), PEMN_OK);
    /* the identity covers the co-signatures */
    uint8_t d0[32], d2[32];
    pemn_sha256(b0, n0, d0);
    pemn_pkg_digest(p, d2);
    assert_memory_not_equal(d0, d2, 32);
    pemn_pkg_free(p);
    free(b0);
    free(b2);
}

static void test_verify_any_signer_trusted(void **state)
{
    (void)state;
    size_t n;
    uint8_t *b = cosigned(1, &n);
    pemn_pkg *p = open_bytes(b, n, PEMN_OK);
    struct pemn_seckey sk;
    struct pemn_pubkey k1, k2, k9;
    pkgfix_key(1, &sk, &k1);
    pkgfix_key(2, &sk, &k2);
    pkgfix_key(9, &sk, &k9);
    pemn_keyring *kr;
    assert_int_equal(pemn_keyring_new(&kr), PEMN_OK);
    assert_int_equal(pemn_keyring_add(kr, &k9), PEMN_OK);
    struct pemn_err e = {0};
    assert_int_equal(pemn_pkg_verify(p, kr, &e), PEMN_EUNTRUSTED);
    assert_non_null(strstr(e.msg, "none of the 2 signers"));
    assert_int_equal(pemn_keyring_add(kr, &k2), PEMN_OK); /* the co-signer alone suffices */
    assert_int_equal(pemn_pkg_verify(p, kr, &e), PEMN_OK);
    pemn_keyring_free(kr);
    assert_int_equal(pemn_keyring_new(&kr), PEMN_OK);
    assert_int_equal(pemn_keyring_add(kr, &k1), PEMN_OK);
    assert_int_equal(pemn_pkg_verify(p, kr, &e), PEMN_OK);
    pemn_keyring_free(kr);
    pemn_pkg_free(p);
    free(b);
}

static void test_add_refusals(void **state)
{
    (void)state;
    size_t n;
    uint8_t *b = cosigned(1, &n);
    pemn_pkg *p = open_bytes(b, n, PEMN_OK);
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    uint8_t *out = (uint8_t *)1;
    size_t ol = 1;
    struct pemn_err e = {0};
    for (uint8_t k = 1; k <= 2; k++) { /* trailer signer, then co-signer */
        pkgfix_key(k, &sk, &pk);
        assert_int_equal(pemn_pkg_add_signature(p, &sk, &out, &ol, &e), PEMN_EEXIST);
        assert_null(out);
        assert_int_equal(ol, 0);
    }
    assert_int_equal(pemn_pkg_add_signature(NULL, &sk, &out, &ol, &e), PEMN_EINVAL);
    pemn_pkg_free(p);
    free(b);

    /* up to PEMN_PKG_MAX_SIGNERS, then ETOOBIG */
    b = cosigned((int)PEMN_PKG_MAX_SIGNERS - 1, &n);
    p = open_bytes(b, n, PEMN_OK);
    assert_int_equal(pemn_pkg_signer_count(p), PEMN_PKG_MAX_SIGNERS);
    assert_int_equal(pemn_pkg_verify_signatures(p, &e), PEMN_OK);
    pkgfix_key(200, &sk, &pk);
    assert_int_equal(pemn_pkg_add_signature(p, &sk, &out, &ol, &e), PEMN_ETOOBIG);
    pemn_pkg_free(p);
    free(b);
}

static void test_format_1_0_compat(void **state)
{
    (void)state;
    size_t n;
    uint8_t *b = pkgfix_read("tests/data/compat/format-1.0.pemn", &n);
    assert_non_null(b);
    pemn_pkg *p = open_bytes(b, n, PEMN_OK);
    struct pemn_pkg_info info;
    assert_int_equal(pemn_pkg_info(p, &info), PEMN_OK);
    assert_int_equal(info.format_minor, 0);
    assert_int_equal(pemn_pkg_signer_count(p), 1);
    pemn_keyring *kr;
    assert_int_equal(pemn_keyring_new(&kr), PEMN_OK);
    struct pemn_err e = {0};
    assert_int_equal(pemn_keyring_add_file(kr, "tests/data/signer.pub", &e), PEMN_OK);
    assert_int_equal(pemn_pkg_verify(p, kr, &e), PEMN_OK);
    pemn_keyring_free(kr);
    /* a 1.0 header cannot announce co-signatures */
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(2, &sk, &pk);
    uint8_t *out;
    size_t ol;
    assert_int_equal(pemn_pkg_add_signature(p, &sk, &out, &ol, &e), PEMN_EVERSION);
    pemn_pkg_free(p);
    /* bytes after a 1.0 package stay an error, even a well-formed co-signature block */
    size_t n1;
    uint8_t *b1 = cosigned(1, &n1);
    size_t tail = PKG_COSIG_HDR + PKG_COSIG_ENTRY;
    uint8_t *x = malloc(n + tail);
    memcpy(x, b, n);
    memcpy(x + n, b1 + n1 - tail, tail);
    pemn_pkg_free(open_bytes(x, n + tail, PEMN_ECORRUPT));
    free(x);
    free(b1);
    free(b);
}

/* Each damage of the co-signature block of a 2-signature package, and its result. */
static void test_malformed_blocks(void **state)
{
    (void)state;
    size_t n;
    uint8_t *b = cosigned(1, &n);
    size_t core = n - PKG_COSIG_HDR - PKG_COSIG_ENTRY;
    uint8_t *x = malloc(n + 200);
    struct {
        const char *what;
        size_t off;
        int value; /* byte to write, or -1 */
        long grow; /* bytes appended (or, negative, removed) */
        pemn_rc open_rc, verify_rc;
    } cases[] = {
        {"bad magic", core, 'X', 0, PEMN_ECORRUPT, PEMN_OK},
        {"count 0", core + 8, 0, 0, PEMN_ECORRUPT, PEMN_OK},
        {"count 2 for one entry", core + 8, 2, 0, PEMN_ECORRUPT, PEMN_OK},
        {"count 16", core + 8, 16, 0, PEMN_ECORRUPT, PEMN_OK},
        {"reserved not 0", core + 12, 1, 0, PEMN_ECORRUPT, PEMN_OK},
        {"truncated entry", 0, -1, -1, PEMN_ECORRUPT, PEMN_OK},
        {"appended byte", 0, -1, 1, PEMN_ECORRUPT, PEMN_OK},
        {"header only", 0, -1, -(long)PKG_COSIG_ENTRY, PEMN_ECORRUPT, PEMN_OK},
        {"short of a header", 0, -1, -(long)(PKG_COSIG_ENTRY + 4), PEMN_ECORRUPT, PEMN_OK},
        {"co-signature damaged", n - 1, 0x55, 0, PEMN_OK, PEMN_EBADSIG},
        {"co-signer key damaged", core + PKG_COSIG_HDR, 0x55, 0, PEMN_OK, PEMN_EBADSIG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(x, b, n);
        size_t len = (size_t)((long)n + cases[i].grow);
        if (cases[i].grow > 0)
            memset(x + n, 0, (size_t)cases[i].grow);
        if (cases[i].value >= 0)
            x[cases[i].off] = (uint8_t)cases[i].value;
        pemn_pkg *p = NULL;
        struct pemn_err e = {0};
        pemn_rc rc = pemn_pkg_open_mem(x, len, PEMN_OPEN_COPY, &p, &e);
        if (rc != cases[i].open_rc)
            fail_msg("%s: open %s (%s)", cases[i].what, pemn_rc_name(rc), e.msg);
        if (p) {
            rc = pemn_pkg_verify_signatures(p, &e);
            if (rc != cases[i].verify_rc)
                fail_msg("%s: verify %s (%s)", cases[i].what, pemn_rc_name(rc), e.msg);
            pemn_pkg_free(p);
        }
    }
    /* a co-signature by the trailer's own key, or the same key twice */
    struct pemn_seckey sk;
    struct pemn_pubkey pk1;
    pkgfix_key(1, &sk, &pk1);
    memcpy(x, b, n);
    memcpy(x + core + PKG_COSIG_HDR, pk1.bytes, PEMN_PUBKEY_BYTES);
    pemn_pkg_free(open_bytes(x, n, PEMN_ECORRUPT));
    size_t n3;
    uint8_t *b3 = cosigned(2, &n3);
    size_t core3 = n3 - PKG_COSIG_HDR - 2 * PKG_COSIG_ENTRY;
    memcpy(b3 + core3 + PKG_COSIG_HDR + PKG_COSIG_ENTRY, b3 + core3 + PKG_COSIG_HDR,
           PEMN_PUBKEY_BYTES);
    pemn_pkg_free(open_bytes(b3, n3, PEMN_ECORRUPT));
    free(b3);
    free(x);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_and_read_signers),
        cmocka_unit_test(test_verify_any_signer_trusted),
        cmocka_unit_test(test_add_refusals),
        cmocka_unit_test(test_format_1_0_compat),
        cmocka_unit_test(test_malformed_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
