/* Unit tests: publisher keys, key files, key ids and keyrings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pemn/key.h>
#include "tests/common/pkgfix.h"

static void test_generate_save_load(void **state)
{
    (void)state;
    struct pemn_seckey sk, sk2;
    struct pemn_pubkey pk, pk2, pk3;
    assert_int_equal(pemn_key_generate(&sk, &pk), PEMN_OK);
    pemn_seckey_public(&sk, &pk2);
    assert_memory_equal(pk.bytes, pk2.bytes, 32);

    const char *dir = pkgfix_tmpdir();
    assert_non_null(dir);
    char base[600], kpath[700], ppath[700];
    snprintf(base, sizeof base, "%s/pub1", dir);
    snprintf(kpath, sizeof kpath, "%s.key", base);
    snprintf(ppath, sizeof ppath, "%s.pub", base);
    struct pemn_err e;
    assert_int_equal(pemn_key_save(base, &sk, &e), PEMN_OK);

    struct stat st;
    assert_int_equal(stat(kpath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(ppath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    /* file contents are exactly the documented lines */
    size_t n;
    char *txt = (char *)pkgfix_read(ppath, &n);
    assert_non_null(txt);
    assert_int_equal(n, 17 + 64 + 1);
    char want[PEMN_PUBKEY_TEXT_MAX];
    pemn_pubkey_format(&pk, want);
    assert_memory_equal(txt, want, n - 1);
    assert_int_equal(txt[n - 1], '\n');
    assert_memory_equal(txt, "pemn-ed25519-pub ", 17);
    free(txt);
    txt = (char *)pkgfix_read(kpath, &n);
    assert_non_null(txt);
    assert_memory_equal(txt, "pemn-ed25519-sec ", 17);
    free(txt);

    assert_int_equal(pemn_seckey_load(kpath, &sk2, &e), PEMN_OK);
    assert_memory_equal(sk.bytes, sk2.bytes, 64);
    assert_int_equal(pemn_pubkey_load(ppath, &pk3, &e), PEMN_OK);
    assert_memory_equal(pk.bytes, pk3.bytes, 32);

    /* existing .key: EEXIST and nothing changes */
    struct pemn_seckey other;
    struct pemn_pubkey opk;
    assert_int_equal(pemn_key_generate(&other, &opk), PEMN_OK);
    assert_int_equal(pemn_key_save(base, &other, &e), PEMN_EEXIST);
    assert_int_equal(pemn_seckey_load(kpath, &sk2, &e), PEMN_OK);
    assert_memory_equal(sk.bytes, sk2.bytes, 64);
    /* a secret key others may read is refused, and accepted again once it is 0600 */
    assert_int_equal(chmod(kpath, 0644), 0);
    assert_int_equal(pemn_seckey_load(kpath, &sk2, &e), PEMN_EINVAL);
    assert_non_null(strstr(e.msg, "too open"));
    assert_int_equal(chmod(kpath, 0640), 0);
    assert_int_equal(pemn_seckey_load(kpath, &sk2, &e), PEMN_EINVAL);
    assert_int_equal(chmod(kpath, 0600), 0);
    assert_int_equal(pemn_seckey_load(kpath, &sk2, &e), PEMN_OK);
    /* .pub present alone also blocks, and no .key is left behind */
    char base2[600], k2[700], p2[700];
    snprintf(base2, sizeof base2, "%s/pub2", dir);
    snprintf(k2, sizeof k2, "%s.key", base2);
    snprintf(p2, sizeof p2, "%s.pub", base2);
    assert_int_equal(pkgfix_write(p2, "x", 1), 0);
    assert_int_equal(pemn_key_save(base2, &other, &e), PEMN_EEXIST);
    assert_int_not_equal(stat(k2, &st), 0);

    pemn_seckey_wipe(&sk2);
    uint8_t zero[64] = {0};
    assert_memory_equal(sk2.bytes, zero, 64);
    pemn_seckey_wipe(NULL);

    /* missing files */
    char none[700];
    snprintf(none, sizeof none, "%s/none.pub", dir);
    assert_int_equal(pemn_pubkey_load(none, &pk3, &e), PEMN_ENOTFOUND);
    assert_int_equal(pemn_seckey_load(none, &sk2, &e), PEMN_ENOTFOUND);
    /* a public key file is not a secret key file and vice versa */
    assert_int_equal(pemn_seckey_load(ppath, &sk2, &e), PEMN_EINVAL);
    assert_int_equal(pemn_pubkey_load(kpath, &pk3, &e), PEMN_EINVAL);
    /* an oversized file is not read whole */
    char big[700];
    snprintf(big, sizeof big, "%s/big.pub", dir);
    char *junk = malloc(100000);
    memset(junk, ' ', 100000);
    memcpy(junk, want, strlen(want));
    assert_int_equal(pkgfix_write(big, junk, 100000), 0);
    free(junk);
    assert_int_equal(pemn_pubkey_load(big, &pk3, &e), PEMN_EINVAL);
    pkgfix_rmdir(dir);
    pemn_seckey_wipe(&sk);
    pemn_seckey_wipe(&other);
}

static void test_pubkey_parse(void **state)
{
    (void)state;
    struct pemn_pubkey pk, back;
    struct pemn_seckey sk;
    pkgfix_key(9, &sk, &pk);
    char txt[PEMN_PUBKEY_TEXT_MAX + 8];
    pemn_pubkey_format(&pk, txt);
    assert_int_equal(strlen(txt), 17 + 64);
    struct pemn_err e;
    assert_int_equal(pemn_pubkey_parse(txt, strlen(txt), &back, &e), PEMN_OK);
    assert_memory_equal(pk.bytes, back.bytes, 32);
    strcat(txt, " \r\n\t");
    assert_int_equal(pemn_pubkey_parse(txt, strlen(txt), &back, &e), PEMN_OK);
    /* upper-case hex is accepted */
    char up[PEMN_PUBKEY_TEXT_MAX + 8];
    strcpy(up, txt);
    for (char *c = up + 17; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 32);
    assert_int_equal(pemn_pubkey_parse(up, strlen(up), &back, &e), PEMN_OK);
    assert_memory_equal(pk.bytes, back.bytes, 32);

    const char *bad[] = {
        "",
        "pemn-ed25519-pub",
        "pemn-ed25519-pub 00",
        "pemn-ed25519-sec 0000000000000000000000000000000000000000000000000000000000000000",
        "pemn-ed25519-pub 000000000000000000000000000000000000000000000000000000000000000g",
        "pemn-ed25519-pub 0000000000000000000000000000000000000000000000000000000000000000 x",
        "pemn-ed25519-pub 00000000000000000000000000000000000000000000000000000000000000000",
        "PEMN-ed25519-pub 0000000000000000000000000000000000000000000000000000000000000000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pemn_pubkey_parse(bad[i], strlen(bad[i]), &back, &e), PEMN_EINVAL);
        assert_int_equal(e.rc, PEMN_EINVAL);
    }
    assert_int_equal(pemn_pubkey_parse(NULL, 0, &back, &e), PEMN_EINVAL);
    /* embedded NUL inside the length counts as junk */
    char withnul[PEMN_PUBKEY_TEXT_MAX + 2];
    pemn_pubkey_format(&pk, withnul);
    size_t l = strlen(withnul);
    withnul[l] = '\0';
    withnul[l + 1] = 'x';
    assert_int_equal(pemn_pubkey_parse(withnul, l + 2, &back, &e), PEMN_EINVAL);
}

static void test_key_id(void **state)
{
    (void)state;
    struct pemn_pubkey pk;
    memset(pk.bytes, 0, 32);
    uint8_t id[8], d[32];
    pemn_key_id(&pk, id);
    pemn_sha256(pk.bytes, 32, d);
    assert_memory_equal(id, d, 8);
    char hex[PEMN_KEYID_TEXT_MAX];
    pemn_key_id_hex(&pk, hex);
    /* sha256 of 32 zero bytes starts 66687aadf862bd77 */
    assert_string_equal(hex, "66687aadf862bd77");
    char hex2[PEMN_KEYID_TEXT_MAX];
    pemn_keyid_format(id, hex2);
    assert_string_equal(hex, hex2);
}

static void test_keyring(void **state)
{
    (void)state;
    pemn_keyring *kr;
    assert_int_equal(pemn_keyring_new(&kr), PEMN_OK);
    assert_int_equal(pemn_keyring_count(kr), 0);
    struct pemn_seckey sk;
    struct pemn_pubkey a, b;
    pkgfix_key(10, &sk, &a);
    pkgfix_key(11, &sk, &b);
    uint8_t ida[8], idb[8];
    pemn_key_id(&a, ida);
    pemn_key_id(&b, idb);
    assert_null(pemn_keyring_find(kr, ida));
    assert_int_equal(pemn_keyring_add(kr, &a), PEMN_OK);
    assert_int_equal(pemn_keyring_add(kr, &a), PEMN_OK); /* duplicate ignored */
    assert_int_equal(pemn_keyring_count(kr), 1);
    assert_int_equal(pemn_keyring_add(kr, &b), PEMN_OK);
    assert_int_equal(pemn_keyring_count(kr), 2);
    const struct pemn_pubkey *f = pemn_keyring_find(kr, idb);
    assert_non_null(f);
    assert_memory_equal(f->bytes, b.bytes, 32);
    f = pemn_keyring_find(kr, ida);
    assert_non_null(f);
    assert_memory_equal(f->bytes, a.bytes, 32);
    uint8_t nid[8] = {0};
    assert_null(pemn_keyring_find(kr, nid));
    pemn_keyring_free(kr);

    /* limit: 4096 distinct keys, then ETOOBIG */
    assert_int_equal(pemn_keyring_new(&kr), PEMN_OK);
    struct pemn_pubkey k;
    memset(k.bytes, 0, 32);
    for (uint32_t i = 0; i < 4096; i++) {
        memcpy(k.bytes, &i, 4);
        assert_int_equal(pemn_keyring_add(kr, &k), PEMN_OK);
    }
    assert_int_equal(pemn_keyring_count(kr), 4096);
    uint32_t i = 4096;
    memcpy(k.bytes, &i, 4);
    assert_int_equal(pemn_keyring_add(kr, &k), PEMN_ETOOBIG);
    i = 17; /* an existing key is still fine */
    memcpy(k.bytes, &i, 4);
    assert_int_equal(pemn_keyring_add(kr, &k), PEMN_OK);
    assert_int_equal(pemn_keyring_count(kr), 4096);
    pemn_keyring_free(kr);
    pemn_keyring_free(NULL);

    /* add_file */
    assert_int_equal(pemn_keyring_new(&kr), PEMN_OK);
    const char *dir = pkgfix_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/a.pub", dir);
    char txt[PEMN_PUBKEY_TEXT_MAX + 1];
    pemn_pubkey_format(&a, txt);
    strcat(txt, "\n");
    assert_int_equal(pkgfix_write(path, txt, strlen(txt)), 0);
    struct pemn_err e;
    assert_int_equal(pemn_keyring_add_file(kr, path, &e), PEMN_OK);
    assert_non_null(pemn_keyring_find(kr, ida));
    assert_int_equal(pkgfix_write(path, "garbage\n", 8), 0);
    assert_int_equal(pemn_keyring_add_file(kr, path, &e), PEMN_EINVAL);
    assert_int_equal(pemn_keyring_count(kr), 1);
    pkgfix_rmdir(dir);
    pemn_keyring_free(kr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_save_load),
        cmocka_unit_test(test_pubkey_parse),
        cmocka_unit_test(test_key_id),
        cmocka_unit_test(test_keyring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
