/*
 * Unit tests: pemn/trust.h — canonical JSON, signed envelopes, roots (parse, chain links,
 * thresholds, expiry, patterns, revocation, package checks, editing).
 *
 * Data-driven cases: tests/data/trust/{valid,invalid}/NAME.json, each with NAME.expect
 * holding the pemn_rc_name of pemn_root_parse's result. They are generated here from
 * deterministic keys (Ed25519 signatures are deterministic), every invalid one re-signed
 * after its damage so that only the check under test can catch it. The files on disk must
 * equal what the generator makes; PEMN_REGEN_CORPUS=1 rewrites them and the fuzz seed
 * corpus tests/fuzz/corpus/root/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pemn/trust.h>
#include "tests/common/pkgfix.h"

#define EXPIRES 2000000000
#define DATA_DIR "tests/data/trust"
#define FUZZ_DIR "tests/fuzz/corpus/root"

static struct pemn_pubkey pk_of(uint8_t tag)
{
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(tag, &sk, &pk);
    return pk;
}
static struct pemn_seckey sk_of(uint8_t tag)
{
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    pkgfix_key(tag, &sk, &pk);
    return sk;
}
static void id_of(uint8_t tag, uint8_t id[PEMN_KEYID_BYTES])
{
    struct pemn_pubkey pk = pk_of(tag);
    pemn_key_id(&pk, id);
}

/* Keys: 1, 2, 3 root; 10 metadata; 20 alice (mnist-*, net), 21 bob (*); 30 revoked. */
static pemn_root *base_root(void)
{
    pemn_root *r;
    assert_int_equal(pemn_root_new(EXPIRES, &r), PEMN_OK);
    struct pemn_pubkey k;
    k = pk_of(1);
    assert_int_equal(pemn_root_add_key(r, &k), PEMN_OK);
    k = pk_of(2);
    assert_int_equal(pemn_root_add_key(r, &k), PEMN_OK);
    assert_int_equal(pemn_root_set_threshold(r, 2), PEMN_OK);
    k = pk_of(10);
    assert_int_equal(pemn_root_add_metadata_key(r, &k), PEMN_OK);
    k = pk_of(20);
    assert_int_equal(pemn_root_add_publisher(r, &k, "net"), PEMN_OK);
    assert_int_equal(pemn_root_add_publisher(r, &k, "mnist-*"), PEMN_OK);
    k = pk_of(21);
    assert_int_equal(pemn_root_add_publisher(r, &k, "*"), PEMN_OK);
    assert_int_equal(pemn_root_set_model_threshold(r, "secure-*", 2), PEMN_OK);
    uint8_t id[PEMN_KEYID_BYTES];
    id_of(30, id);
    assert_int_equal(pemn_root_revoke(r, id), PEMN_OK);
    return r;
}

static char *sign_serialize(pemn_root *r, const uint8_t *signers, size_t n, pemn_rc want)
{
    struct pemn_err e = {0};
    for (size_t i = 0; i < n; i++) {
        struct pemn_seckey sk = sk_of(signers[i]);
        assert_int_equal(pemn_root_sign(r, &sk, &e), PEMN_OK);
    }
    char *text = NULL;
    pemn_rc rc = pemn_root_serialize(r, &text, NULL, &e);
    if (rc != want)
        fail_msg("serialize: %s (%s), wanted %s", pemn_rc_name(rc), e.msg, pemn_rc_name(want));
    return text;
}

static char *base_text(void)
{
    pemn_root *r = base_root();
    static const uint8_t s12[] = {1, 2};
    char *t = sign_serialize(r, s12, 2, PEMN_OK);
    pemn_root_free(r);
    return t;
}

/* The signed object of an envelope text, as jansson JSON (new reference). */
static json_t *signed_of(const char *text)
{
    pemn_envelope *env;
    assert_int_equal(pemn_envelope_parse(text, strlen(text), &env, NULL), PEMN_OK);
    size_t n;
    const char *s = pemn_envelope_signed(env, &n);
    json_t *j = json_loadb(s, n, 0, NULL);
    pemn_envelope_free(env);
    assert_non_null(j);
    return j;
}

/* Envelope text of a signed object, signed by the given key tags. */
static char *envelope_of(json_t *sd, const uint8_t *signers, size_t n)
{
    char *s = json_dumps(sd, JSON_COMPACT);
    pemn_envelope *env;
    struct pemn_err e = {0};
    if (pemn_envelope_new(s, strlen(s), &env, &e) != PEMN_OK)
        fail_msg("envelope_new: %s", e.msg);
    free(s);
    for (size_t i = 0; i < n; i++) {
        struct pemn_seckey sk = sk_of(signers[i]);
        assert_int_equal(pemn_envelope_sign(env, &sk, NULL), PEMN_OK);
    }
    char *out;
    assert_int_equal(pemn_envelope_serialize(env, &out, NULL, NULL), PEMN_OK);
    pemn_envelope_free(env);
    return out;
}

static pemn_rc parse_text(const char *t, pemn_root **out, struct pemn_err *e)
{
    return pemn_root_parse(t, strlen(t), out, e);
}

/* ---- corpus ---------------------------------------------------------------------------------- */
struct tcase {
    const char *name;
    char *text;
    pemn_rc want;
};
#define MAX_CASES 64
static struct tcase cases[MAX_CASES];
static size_t n_cases;

static void add_case(const char *name, char *text, pemn_rc want)
{
    assert_true(n_cases < MAX_CASES);
    cases[n_cases++] = (struct tcase){name, text, want};
}

static const uint8_t S12[] = {1, 2};

/* Mutates a copy of the base signed object with fn, re-signs it by 1 and 2. */
static void mut_case(const char *name, void (*fn)(json_t *), pemn_rc want)
{
    char *base = base_text();
    json_t *sd = signed_of(base);
    free(base);
    fn(sd);
    add_case(name, envelope_of(sd, S12, 2), want);
    json_decref(sd);
}

/* The same without re-signing (for content the library would refuse to sign). */
static void raw_case(const char *name, void (*fn)(json_t *), pemn_rc want)
{
    char *base = base_text();
    json_t *env = json_loads(base, 0, NULL);
    free(base);
    fn(json_object_get(env, "signed"));
    add_case(name, json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS), want);
    json_decref(env);
}

static void m_unknown(json_t *s)
{
    json_object_set_new(s, "targets", json_object());
}
static void m_missing(json_t *s)
{
    json_object_del(s, "revoked");
}
static void m_spec2(json_t *s)
{
    json_object_set_new(s, "spec_version", json_integer(2));
}
static void m_real(json_t *s)
{
    json_object_set_new(s, "expires", json_real(2e9));
}
static void m_thr0(json_t *s)
{
    json_object_set_new(s, "root_threshold", json_integer(0));
}
static void m_thr3(json_t *s)
{
    json_object_set_new(s, "root_threshold", json_integer(3));
}
static void m_version0(json_t *s)
{
    json_object_set_new(s, "version", json_integer(0));
}
static void m_expires_neg(json_t *s)
{
    json_object_set_new(s, "expires", json_integer(-5));
}
static void m_type(json_t *s)
{
    json_object_set_new(s, "_type", json_string("pemn-targets"));
}
static void m_version_str(json_t *s)
{
    json_object_set_new(s, "version", json_string("1"));
}
static void m_no_keys(json_t *s)
{
    json_object_set_new(s, "root_keys", json_object());
}
static json_t *first_pub(json_t *s)
{
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(s, "publishers"), k, v) return v;
    return NULL;
}
static void m_unsorted(json_t *s)
{
    json_t *p = first_pub(s);
    json_object_set_new(p, "models", json_pack("[s,s]", "z", "a"));
}
static void m_dup_model(json_t *s)
{
    json_object_set_new(first_pub(s), "models", json_pack("[s,s]", "a", "a"));
}
static void m_no_models(json_t *s)
{
    json_object_set_new(first_pub(s), "models", json_array());
}
static void m_bad_pattern(json_t *s)
{
    json_object_set_new(first_pub(s), "models", json_pack("[s]", "../etc"));
}
static void m_pub_extra(json_t *s)
{
    json_object_set_new(first_pub(s), "threshold", json_integer(1));
}
static void m_keyid(json_t *s)
{
    /* a key filed under another key's id */
    json_t *rk = json_object_get(s, "root_keys");
    const char *k;
    json_t *v;
    char first[32] = "";
    json_object_foreach(rk, k, v)
    {
        if (!first[0]) {
            snprintf(first, sizeof first, "%s", k);
        } else {
            json_object_set(rk, first, v);
            break;
        }
    }
}
static void m_upper(json_t *s)
{
    json_t *rk = json_object_get(s, "root_keys");
    const char *k;
    json_t *v;
    json_object_foreach(rk, k, v)
    {
        char up[80];
        snprintf(up, sizeof up, "%s", json_string_value(v));
        for (char *c = up; *c; c++)
            if (*c >= 'a' && *c <= 'f')
                *c = (char)(*c - 32);
        json_object_set_new(rk, k, json_string(up));
        break;
    }
}
static void m_short_key(json_t *s)
{
    json_t *rk = json_object_get(s, "root_keys");
    const char *k;
    json_t *v;
    json_object_foreach(rk, k, v)
    {
        json_object_set_new(rk, k, json_string("abcd"));
        break;
    }
}
static void m_revoked_named(json_t *s)
{
    char hex[PEMN_KEYID_TEXT_MAX];
    struct pemn_pubkey k = pk_of(21);
    pemn_key_id_hex(&k, hex);
    json_t *rv = json_array();
    json_array_append_new(rv, json_string(hex));
    json_object_set_new(s, "revoked", rv);
}
static void m_revoked_unsorted(json_t *s)
{
    json_object_set_new(s, "revoked", json_pack("[s,s]", "ffffffffffffffff", "0000000000000000"));
}
static void m_revoked_bad(json_t *s)
{
    json_object_set_new(s, "revoked", json_pack("[s]", "xyz"));
}
static void m_meta_is_pub(json_t *s)
{
    json_t *pubs = json_object_get(s, "publishers");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(s, "metadata_keys"), k, v)
    {
        json_object_set_new(pubs, k, json_pack("{s:O,s:[s]}", "key", v, "models", "*"));
        break;
    }
}
static void m_mthr1(json_t *s)
{
    json_object_set_new(json_object_get(s, "model_thresholds"), "x", json_integer(1));
}
static void m_mthr_big(json_t *s)
{
    json_object_set_new(json_object_get(s, "model_thresholds"), "x", json_integer(65));
}

static void build_cases(void)
{
    if (n_cases)
        return;
    /* valid */
    add_case("valid/base", base_text(), PEMN_OK);
    {
        pemn_root *r;
        assert_int_equal(pemn_root_new(EXPIRES, &r), PEMN_OK);
        struct pemn_pubkey k = pk_of(1);
        assert_int_equal(pemn_root_add_key(r, &k), PEMN_OK);
        static const uint8_t s1[] = {1};
        add_case("valid/minimal", sign_serialize(r, s1, 1, PEMN_OK), PEMN_OK);
        pemn_root_free(r);
    }
    {
        /* another layout of the same envelope: parsing canonicalises */
        char *b = base_text();
        json_t *j = json_loads(b, 0, NULL);
        free(b);
        add_case("valid/pretty", json_dumps(j, JSON_INDENT(3) | JSON_PRESERVE_ORDER), PEMN_OK);
        json_decref(j);
    }
    {
        /* a signature by a stranger is ignored */
        char *b = base_text();
        json_t *sd = signed_of(b);
        free(b);
        static const uint8_t s129[] = {1, 2, 9};
        add_case("valid/extra-signature", envelope_of(sd, s129, 3), PEMN_OK);
        json_decref(sd);
    }
    /* invalid: structure */
    mut_case("invalid/unknown-field", m_unknown, PEMN_ECORRUPT);
    mut_case("invalid/missing-field", m_missing, PEMN_ECORRUPT);
    mut_case("invalid/spec-version-2", m_spec2, PEMN_EVERSION);
    raw_case("invalid/real-number", m_real, PEMN_ECORRUPT);
    mut_case("invalid/threshold-zero", m_thr0, PEMN_ECORRUPT);
    mut_case("invalid/threshold-above-keys", m_thr3, PEMN_ECORRUPT);
    mut_case("invalid/version-zero", m_version0, PEMN_ECORRUPT);
    mut_case("invalid/version-string", m_version_str, PEMN_ECORRUPT);
    mut_case("invalid/expires-negative", m_expires_neg, PEMN_ECORRUPT);
    mut_case("invalid/wrong-type", m_type, PEMN_ECORRUPT);
    mut_case("invalid/no-root-keys", m_no_keys, PEMN_ECORRUPT);
    mut_case("invalid/models-unsorted", m_unsorted, PEMN_ECORRUPT);
    mut_case("invalid/models-duplicate", m_dup_model, PEMN_ECORRUPT);
    mut_case("invalid/models-empty", m_no_models, PEMN_ECORRUPT);
    mut_case("invalid/bad-pattern", m_bad_pattern, PEMN_ECORRUPT);
    mut_case("invalid/publisher-extra-field", m_pub_extra, PEMN_ECORRUPT);
    mut_case("invalid/keyid-mismatch", m_keyid, PEMN_ECORRUPT);
    mut_case("invalid/uppercase-hex", m_upper, PEMN_ECORRUPT);
    mut_case("invalid/short-key", m_short_key, PEMN_ECORRUPT);
    mut_case("invalid/revoked-and-named", m_revoked_named, PEMN_ECORRUPT);
    mut_case("invalid/revoked-unsorted", m_revoked_unsorted, PEMN_ECORRUPT);
    mut_case("invalid/revoked-not-a-keyid", m_revoked_bad, PEMN_ECORRUPT);
    mut_case("invalid/metadata-key-is-publisher", m_meta_is_pub, PEMN_ECORRUPT);
    mut_case("invalid/model-threshold-one", m_mthr1, PEMN_ECORRUPT);
    mut_case("invalid/model-threshold-too-big", m_mthr_big, PEMN_ECORRUPT);
    /* invalid: signatures */
    {
        char *b = base_text();
        json_t *sd = signed_of(b);
        static const uint8_t s1[] = {1}, s9[] = {8, 9};
        add_case("invalid/under-signed", envelope_of(sd, s1, 1), PEMN_EUNTRUSTED);
        add_case("invalid/signed-by-strangers", envelope_of(sd, s9, 2), PEMN_EUNTRUSTED);
        json_decref(sd);
        /* content changed after signing */
        char *t = strdup(b);
        char *p = strstr(t, "\"net\"");
        assert_non_null(p);
        p[1] = 'x';
        add_case("invalid/tampered", t, PEMN_EUNTRUSTED);
        /* a signature's bytes damaged: it no longer counts */
        t = strdup(b);
        p = strstr(t, "\"sig\":\"");
        p[7] = p[7] == '0' ? '1' : '0';
        add_case("invalid/damaged-signature", t, PEMN_EUNTRUSTED);
        /* envelope structure */
        t = strdup(b);
        p = strstr(t, "\"sig\":\"");
        p[7] = 'g';
        add_case("invalid/signature-not-hex", t, PEMN_ECORRUPT);
        json_t *env = json_loads(b, 0, NULL);
        json_t *sigs = json_object_get(env, "signatures");
        json_array_append(sigs, json_array_get(sigs, 0));
        add_case("invalid/duplicate-signature", json_dumps(env, JSON_COMPACT), PEMN_ECORRUPT);
        json_object_set_new(env, "extra", json_true());
        add_case("invalid/envelope-extra-member", json_dumps(env, JSON_COMPACT), PEMN_ECORRUPT);
        json_decref(env);
        size_t n = strlen(b);
        t = malloc(n + 32);
        memcpy(t, b, n);
        snprintf(t + n, 32, "{}");
        add_case("invalid/trailing-data", t, PEMN_ECORRUPT);
        t = strdup(b);
        t[n / 2] = '\0';
        add_case("invalid/truncated", t, PEMN_ECORRUPT);
        /* duplicate member in the signed object (text level) */
        t = malloc(n + 64);
        p = strstr(b, "\"signed\":{");
        size_t at = (size_t)(p - b) + strlen("\"signed\":{");
        memcpy(t, b, at);
        snprintf(t + at, n + 64 - at, "\"version\":7,%s", b + at);
        add_case("invalid/duplicate-member", t, PEMN_ECORRUPT);
        add_case("invalid/not-json", strdup("pemn-root"), PEMN_ECORRUPT);
        add_case("invalid/array", strdup("[]"), PEMN_ECORRUPT);
        free(b);
    }
}

static void test_corpus(void **state)
{
    (void)state;
    build_cases();
    const char *regen = getenv("PEMN_REGEN_CORPUS");
    if (regen && *regen == '1') {
        mkdir(DATA_DIR, 0755);
        mkdir(DATA_DIR "/valid", 0755);
        mkdir(DATA_DIR "/invalid", 0755);
        mkdir(FUZZ_DIR, 0755);
    }
    for (size_t i = 0; i < n_cases; i++) {
        char path[256], expect[256], fz[256];
        snprintf(path, sizeof path, "%s/%s.json", DATA_DIR, cases[i].name);
        snprintf(expect, sizeof expect, "%s/%s.expect", DATA_DIR, cases[i].name);
        const char *slash = strchr(cases[i].name, '/');
        snprintf(fz, sizeof fz, "%s/%s", FUZZ_DIR, slash + 1);
        const char *want = pemn_rc_name(cases[i].want);
        size_t tl = strlen(cases[i].text);
        if (regen && *regen == '1') {
            char line[32];
            snprintf(line, sizeof line, "%s\n", want);
            assert_int_equal(pkgfix_write(path, cases[i].text, tl), 0);
            assert_int_equal(pkgfix_write(expect, line, strlen(line)), 0);
            assert_int_equal(pkgfix_write(fz, cases[i].text, tl), 0);
        }
        size_t n, en;
        uint8_t *buf = pkgfix_read(path, &n), *eb = pkgfix_read(expect, &en);
        if (!buf || n != tl || memcmp(buf, cases[i].text, n) != 0 || !eb ||
            en != strlen(want) + 1 || memcmp(eb, want, en - 1) != 0)
            fail_msg(
                "%s is missing or stale: run PEMN_REGEN_CORPUS=1 build/release/tests/test_trust",
                path);
        pemn_root *r = NULL;
        struct pemn_err e = {0};
        pemn_rc rc = pemn_root_parse(buf, n, &r, &e);
        if (rc != cases[i].want)
            fail_msg("%s: %s (%s), expected %s", cases[i].name, pemn_rc_name(rc), e.msg, want);
        if (rc == PEMN_OK) {
            /* what was parsed serialises back to the canonical envelope */
            size_t bl;
            assert_non_null(pemn_root_bytes(r, &bl));
            assert_int_equal(bl, n);
        } else {
            assert_null(r);
            assert_true(e.msg[0] != '\0');
        }
        pemn_root_free(r);
        free(buf);
        free(eb);
    }
}

/* ---- canonical JSON and envelopes ------------------------------------------------------------ */
static void test_canonical(void **state)
{
    (void)state;
    char *out;
    size_t n;
    const char *in = "{ \"b\": [1, {\"z\":null, \"a\":true}], \"a\": \"\\u00e9\\n\" }";
    assert_int_equal(pemn_json_canonical(in, strlen(in), &out, &n, NULL), PEMN_OK);
    assert_string_equal(out, "{\"a\":\"\xc3\xa9\\n\",\"b\":[1,{\"a\":true,\"z\":null}]}");
    assert_int_equal(n, strlen(out));
    free(out);
    struct pemn_err e = {0};
    static const char *const bad[] = {
        "{\"a\":1.5}",
        "{\"a\":1,\"a\":2}",
        "{\"a\":\"\\u0000\"}",
        "{\"a\":\"\xff\"}",
        "{\"a\":[1e3]}",
        "{",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = (char *)1;
        if (pemn_json_canonical(bad[i], strlen(bad[i]), &out, NULL, &e) != PEMN_ECORRUPT)
            fail_msg("canonical accepted %s", bad[i]);
    }
    char *big = malloc(PEMN_TRUST_MAX_BYTES + 16);
    memset(big, ' ', PEMN_TRUST_MAX_BYTES + 16);
    big[0] = '1';
    assert_int_equal(pemn_json_canonical(big, PEMN_TRUST_MAX_BYTES + 16, &out, NULL, &e),
                     PEMN_ETOOBIG);
    free(big);
}

static void test_envelope_threshold(void **state)
{
    (void)state;
    const char *sd = "{\"_type\":\"pemn-test\",\"n\":1}";
    pemn_envelope *env;
    assert_int_equal(pemn_envelope_new(sd, strlen(sd), &env, NULL), PEMN_OK);
    assert_string_equal(pemn_envelope_type(env), "pemn-test");
    struct pemn_pubkey keys[4] = {pk_of(1), pk_of(2), pk_of(3), pk_of(1)};
    unsigned good = 99;
    struct pemn_err e = {0};
    assert_int_equal(pemn_envelope_verify(env, keys, 3, 1, &good, &e), PEMN_EUNTRUSTED);
    assert_int_equal(good, 0);
    struct pemn_seckey s1 = sk_of(1), s2 = sk_of(2), s9 = sk_of(9);
    assert_int_equal(pemn_envelope_sign(env, &s1, NULL), PEMN_OK);
    assert_int_equal(pemn_envelope_sign(env, &s1, NULL), PEMN_OK); /* replaces, not adds */
    assert_int_equal(pemn_envelope_sign(env, &s9, NULL), PEMN_OK);
    assert_int_equal(pemn_envelope_sig_count(env), 2);
    assert_int_equal(pemn_envelope_verify(env, keys, 3, 1, &good, &e), PEMN_OK);
    assert_int_equal(good, 1);
    /* a key listed twice counts once */
    assert_int_equal(pemn_envelope_verify(env, keys, 4, 2, &good, &e), PEMN_EUNTRUSTED);
    assert_int_equal(good, 1);
    assert_int_equal(pemn_envelope_sign(env, &s2, NULL), PEMN_OK);
    assert_int_equal(pemn_envelope_verify(env, keys, 4, 2, &good, &e), PEMN_OK);
    assert_int_equal(good, 2);
    assert_int_equal(pemn_envelope_verify(env, keys, 3, 0, &good, &e), PEMN_EINVAL);
    /* round trip through text; signatures sorted by key id */
    char *text;
    size_t tl;
    assert_int_equal(pemn_envelope_serialize(env, &text, &tl, NULL), PEMN_OK);
    pemn_envelope *env2;
    assert_int_equal(pemn_envelope_parse(text, tl, &env2, &e), PEMN_OK);
    assert_int_equal(pemn_envelope_verify(env2, keys, 3, 2, &good, &e), PEMN_OK);
    uint8_t a[8], b[8];
    assert_int_equal(pemn_envelope_sig(env2, 0, a, NULL), PEMN_OK);
    assert_int_equal(pemn_envelope_sig(env2, 1, b, NULL), PEMN_OK);
    assert_true(memcmp(a, b, 8) < 0);
    assert_int_equal(pemn_envelope_sig(env2, 3, a, NULL), PEMN_ENOTFOUND);
    char *text2;
    assert_int_equal(pemn_envelope_serialize(env2, &text2, NULL, NULL), PEMN_OK);
    assert_string_equal(text, text2);
    free(text2);
    pemn_envelope_free(env2);
    /* the signature covers the domain-separated canonical bytes only */
    size_t cl;
    const char *canon = pemn_envelope_signed(env, &cl);
    assert_string_equal(canon, sd);
    free(text);
    pemn_envelope_free(env);
    /* a signed object needs "_type" */
    assert_int_equal(pemn_envelope_new("{\"a\":1}", 7, &env, &e), PEMN_ECORRUPT);
    assert_int_equal(pemn_envelope_new("[1]", 3, &env, &e), PEMN_ECORRUPT);
    pemn_envelope_free(NULL);
}

/* ---- roots: getters, chain, expiry ------------------------------------------------------------
 */
static void test_getters(void **state)
{
    (void)state;
    char *t = base_text();
    pemn_root *r;
    struct pemn_err e = {0};
    assert_int_equal(parse_text(t, &r, &e), PEMN_OK);
    assert_int_equal(pemn_root_version(r), 1);
    assert_int_equal(pemn_root_expires(r), EXPIRES);
    assert_int_equal(pemn_root_threshold(r), 2);
    assert_int_equal(pemn_root_key_count(r), 2);
    assert_null(pemn_root_key(r, 2));
    assert_int_equal(pemn_root_metadata_key_count(r), 1);
    struct pemn_pubkey k10 = pk_of(10), k20 = pk_of(20);
    assert_memory_equal(pemn_root_metadata_key(r, 0)->bytes, k10.bytes, 32);
    assert_true(pemn_root_is_metadata_key(r, &k10));
    assert_false(pemn_root_is_metadata_key(r, &k20));
    assert_int_equal(pemn_root_publisher_count(r), 2);
    struct pemn_root_publisher p;
    size_t found = 0;
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(pemn_root_publisher(r, i, &p), PEMN_OK);
        if (memcmp(p.key.bytes, k20.bytes, 32) == 0) {
            assert_int_equal(p.n_patterns, 2);
            assert_string_equal(p.patterns[0], "mnist-*");
            assert_string_equal(p.patterns[1], "net");
            found++;
        }
    }
    assert_int_equal(found, 1);
    assert_int_equal(pemn_root_publisher(r, 2, &p), PEMN_ENOTFOUND);
    assert_int_equal(pemn_root_model_threshold_count(r), 1);
    assert_int_equal(pemn_root_model_threshold(r, "secure-a"), 2);
    assert_int_equal(pemn_root_model_threshold(r, "net"), 1);
    assert_int_equal(pemn_root_revoked_count(r), 1);
    uint8_t id[8], id30[8];
    id_of(30, id30);
    assert_int_equal(pemn_root_revoked_at(r, 0, id), PEMN_OK);
    assert_memory_equal(id, id30, 8);
    assert_true(pemn_root_is_revoked(r, id30));
    size_t bl, sl;
    assert_memory_equal(pemn_root_bytes(r, &bl), t, strlen(t));
    assert_int_equal(bl, strlen(t));
    assert_non_null(strstr(pemn_root_signed(r, &sl), "\"_type\":\"pemn-root\""));
    uint8_t d[32], d2[32];
    assert_int_equal(pemn_root_digest(r, d), PEMN_OK);
    pemn_sha256(t, strlen(t), d2);
    assert_memory_equal(d, d2, 32);
    /* expiry: valid strictly before `expires` */
    assert_int_equal(pemn_root_check_expiry(r, EXPIRES - 1, &e), PEMN_OK);
    assert_int_equal(pemn_root_check_expiry(r, EXPIRES, &e), PEMN_EEXPIRED);
    assert_int_equal(pemn_root_check_expiry(r, INT64_MAX, &e), PEMN_EEXPIRED);
    assert_non_null(strstr(e.msg, "expired"));
    /* desired-state metadata: signed by the metadata key (10), not by a publisher (20) */
    const char *ds = "{\"_type\":\"pemn-desired\",\"version\":1}";
    pemn_envelope *env;
    assert_int_equal(pemn_envelope_new(ds, strlen(ds), &env, NULL), PEMN_OK);
    assert_int_equal(pemn_root_check_metadata(r, env, &e), PEMN_EUNTRUSTED);
    struct pemn_seckey s20 = sk_of(20), s10 = sk_of(10);
    assert_int_equal(pemn_envelope_sign(env, &s20, NULL), PEMN_OK);
    assert_int_equal(pemn_root_check_metadata(r, env, &e), PEMN_EUNTRUSTED);
    assert_non_null(strstr(e.msg, "no metadata key of root version 1"));
    assert_int_equal(pemn_envelope_sign(env, &s10, NULL), PEMN_OK);
    assert_int_equal(pemn_root_check_metadata(r, env, &e), PEMN_OK);
    pemn_envelope_free(env);
    pemn_root_free(r);
    free(t);
}

static char *successor(const char *prev_text, const uint8_t *signers, size_t n,
                       void (*edit)(pemn_root *), pemn_rc want)
{
    pemn_root *prev, *next;
    assert_int_equal(parse_text(prev_text, &prev, NULL), PEMN_OK);
    assert_int_equal(pemn_root_next(prev, &next), PEMN_OK);
    assert_int_equal(pemn_root_version(next), pemn_root_version(prev) + 1);
    if (edit)
        edit(next);
    char *t = sign_serialize(next, signers, n, want);
    pemn_root_free(prev);
    pemn_root_free(next);
    return t;
}

static void rotate_2_to_3(pemn_root *r)
{
    uint8_t id[8];
    id_of(2, id);
    assert_int_equal(pemn_root_remove_key(r, id), PEMN_OK);
    struct pemn_pubkey k = pk_of(3);
    assert_int_equal(pemn_root_add_key(r, &k), PEMN_OK);
}

static void test_chain(void **state)
{
    (void)state;
    char *v1 = base_text();
    static const uint8_t s12[] = {1, 2}, s13[] = {1, 3}, s123[] = {1, 2, 3}, s1[] = {1};
    char *v2 = successor(v1, s12, 2, NULL, PEMN_OK);
    char *v3 = successor(v2, s123, 3, rotate_2_to_3, PEMN_OK); /* rotation: old and new sign */
    char *v3b = successor(v2, s13, 2, rotate_2_to_3, PEMN_OK); /* only 1 of v2's keys */
    char *v2b = successor(v1, s1, 1, NULL, PEMN_EUNTRUSTED);   /* under its own threshold */
    assert_null(v2b);
    pemn_root *r1, *r2, *r3, *r3b, *x;
    struct pemn_err e = {0};
    assert_int_equal(parse_text(v1, &r1, NULL), PEMN_OK);
    assert_int_equal(parse_text(v2, &r2, NULL), PEMN_OK);
    assert_int_equal(parse_text(v3, &r3, NULL), PEMN_OK);
    assert_int_equal(parse_text(v3b, &r3b, NULL), PEMN_OK); /* valid alone */
    assert_int_equal(pemn_root_verify_next(r1, r2, &e), PEMN_OK);
    assert_int_equal(pemn_root_verify_next(r2, r3, &e), PEMN_OK);
    assert_int_equal(pemn_root_verify_next(r2, r3b, &e), PEMN_EUNTRUSTED);
    assert_non_null(strstr(e.msg, "1 of the 2 required signatures by version 2"));
    assert_int_equal(pemn_root_verify_next(r1, r3, &e), PEMN_EVERSION); /* skips v2 */
    assert_int_equal(pemn_root_verify_next(r2, r2, &e), PEMN_EVERSION);
    assert_int_equal(pemn_root_verify_next(r2, r1, &e), PEMN_EVERSION);
    assert_int_equal(pemn_root_parse_next(r2, v3, strlen(v3), &x, &e), PEMN_OK);
    assert_int_equal(pemn_root_version(x), 3);
    pemn_root_free(x);
    x = (pemn_root *)1;
    assert_int_equal(pemn_root_parse_next(r2, v3b, strlen(v3b), &x, &e), PEMN_EUNTRUSTED);
    assert_null(x);
    assert_int_equal(pemn_root_verify_next(NULL, r1, &e), PEMN_EINVAL);
    pemn_root_free(r1);
    pemn_root_free(r2);
    pemn_root_free(r3);
    pemn_root_free(r3b);
    free(v1);
    free(v2);
    free(v3);
    free(v3b);
}

/* ---- patterns and package checks
 * ----------------------------------------------------------------- */
static void test_patterns(void **state)
{
    (void)state;
    static const struct {
        const char *p, *s;
        bool m;
    } t[] = {
        {"net", "net", true},
        {"net", "net2", false},
        {"net", "ne", false},
        {"*", "anything", true},
        {"mnist-*", "mnist-", true},
        {"mnist-*", "mnist-a", true},
        {"mnist-*", "mnist", false},
        {"*-v2", "a-v2", true},
        {"*-v2", "a-v3", false},
        {"a*b*c", "abc", true},
        {"a*b*c", "aXbYc", true},
        {"a*b*c", "aXbY", false},
        {"a*b*c", "acb", false},
        {"**", "x", true},
        {"a*a*a*a*b", "aaaaaaaaaaaa", false},
        {"Net", "net", false},
        {"*a", "bab", false},
        {"*ab", "aab", true},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (pemn_pattern_match(t[i].p, t[i].s) != t[i].m)
            fail_msg("pattern %s on %s: expected %d", t[i].p, t[i].s, t[i].m);
    assert_true(pemn_pattern_valid("a.b_c-d*"));
    assert_false(pemn_pattern_valid(""));
    assert_false(pemn_pattern_valid("a/b"));
    assert_false(pemn_pattern_valid("a?"));
    assert_false(pemn_pattern_valid("[a]"));
    assert_false(pemn_pattern_valid(NULL));
    char longp[200];
    memset(longp, 'a', sizeof longp);
    longp[128] = '\0';
    assert_true(pemn_pattern_valid(longp));
    longp[128] = 'a';
    longp[129] = '\0';
    assert_false(pemn_pattern_valid(longp));
}

static void test_check_signers(void **state)
{
    (void)state;
    char *t = base_text();
    pemn_root *r;
    assert_int_equal(parse_text(t, &r, NULL), PEMN_OK);
    struct pemn_err e = {0};
    struct pemn_pubkey alice = pk_of(20), bob = pk_of(21), mallory = pk_of(30), eve = pk_of(40);
    struct pemn_pubkey one[1] = {alice}, ab[2] = {alice, bob}, aa[2] = {alice, alice};
    assert_int_equal(pemn_root_check_signers(r, "net", one, 1, &e), PEMN_OK);
    assert_int_equal(pemn_root_check_signers(r, "mnist-x", one, 1, &e), PEMN_OK);
    assert_int_equal(pemn_root_check_signers(r, "other", one, 1, &e), PEMN_EUNTRUSTED);
    assert_non_null(strstr(e.msg, "may not sign"));
    one[0] = bob;
    assert_int_equal(pemn_root_check_signers(r, "other", one, 1, &e), PEMN_OK);
    one[0] = eve;
    assert_int_equal(pemn_root_check_signers(r, "net", one, 1, &e), PEMN_EUNTRUSTED);
    assert_non_null(strstr(e.msg, "not a publisher"));
    one[0] = mallory;
    assert_int_equal(pemn_root_check_signers(r, "net", one, 1, &e), PEMN_EREVOKED);
    /* a revoked co-signer taints a package even when the others meet the threshold */
    struct pemn_pubkey abm[3] = {alice, bob, mallory};
    assert_int_equal(pemn_root_check_signers(r, "net", abm, 3, &e), PEMN_EREVOKED);
    /* thresholds: secure-* needs 2 distinct allowed publishers */
    one[0] = bob;
    assert_int_equal(pemn_root_check_signers(r, "secure-a", one, 1, &e), PEMN_EUNTRUSTED);
    assert_non_null(strstr(e.msg, "needs 2 signatures"));
    assert_int_equal(pemn_root_check_signers(r, "secure-a", aa, 2, &e), PEMN_EUNTRUSTED);
    /* alice may not sign secure-a: only bob counts */
    assert_int_equal(pemn_root_check_signers(r, "secure-a", ab, 2, &e), PEMN_EUNTRUSTED);
    assert_int_equal(pemn_root_check_signers(r, "net", NULL, 0, &e), PEMN_EUNTRUSTED);
    assert_int_equal(pemn_root_check_signers(r, NULL, one, 1, &e), PEMN_EINVAL);
    pemn_root_free(r);
    free(t);
}

static pemn_pkg *cosigned_pkg(uint8_t first, uint8_t second, uint8_t **bytes)
{
    struct pemn_seckey sk = sk_of(first);
    uint8_t *b;
    size_t n;
    pkgfix_small(&sk, &b, &n); /* model "tiny" */
    pemn_pkg *p;
    assert_int_equal(pemn_pkg_open_mem(b, n, PEMN_OPEN_COPY, &p, NULL), PEMN_OK);
    free(b);
    b = NULL;
    if (second) {
        sk = sk_of(second);
        assert_int_equal(pemn_pkg_add_signature(p, &sk, &b, &n, NULL), PEMN_OK);
        pemn_pkg_free(p);
        assert_int_equal(pemn_pkg_open_mem(b, n, PEMN_OPEN_COPY, &p, NULL), PEMN_OK);
    }
    *bytes = b;
    return p;
}

static void tiny_needs_two(pemn_root *r)
{
    struct pemn_pubkey k = pk_of(20);
    assert_int_equal(pemn_root_add_publisher(r, &k, "tiny"), PEMN_OK);
    assert_int_equal(pemn_root_set_model_threshold(r, "t*", 2), PEMN_OK);
}

static void test_check_package(void **state)
{
    (void)state;
    char *v1 = base_text();
    static const uint8_t s12[] = {1, 2};
    char *v2 = successor(v1, s12, 2, tiny_needs_two, PEMN_OK);
    pemn_root *r1, *r2;
    assert_int_equal(parse_text(v1, &r1, NULL), PEMN_OK);
    assert_int_equal(parse_text(v2, &r2, NULL), PEMN_OK);
    struct pemn_err e = {0};
    uint8_t *b = NULL;
    pemn_pkg *p = cosigned_pkg(20, 0, &b);                                         /* alice alone */
    assert_int_equal(pemn_root_check_package(r1, NULL, p, &e), PEMN_EUNTRUSTED);   /* not tiny */
    assert_int_equal(pemn_root_check_package(r2, "tiny", p, &e), PEMN_EUNTRUSTED); /* 1 of 2 */
    assert_int_equal(pemn_root_check_package(r2, "other", p, &e), PEMN_EUNTRUSTED);
    assert_non_null(strstr(e.msg, "package is model tiny, not other"));
    pemn_pkg_free(p);
    free(b);
    p = cosigned_pkg(20, 21, &b); /* alice + bob */
    assert_int_equal(pemn_root_check_package(r2, "tiny", p, &e), PEMN_OK);
    assert_int_equal(pemn_root_check_package(r2, NULL, p, &e), PEMN_OK);
    pemn_pkg_free(p);
    free(b);
    /* a damaged co-signature is a bad signature, not "too few" */
    size_t n;
    uint8_t *d = NULL;
    p = cosigned_pkg(20, 21, &d);
    pemn_pkg_free(p);
    struct pemn_seckey sk = sk_of(20);
    uint8_t *one;
    pkgfix_small(&sk, &one, &n);
    size_t full = n + 16 + 96;
    d[full - 1] ^= 1;
    assert_int_equal(pemn_pkg_open_mem(d, full, PEMN_OPEN_COPY, &p, NULL), PEMN_OK);
    assert_int_equal(pemn_root_check_package(r2, "tiny", p, &e), PEMN_EBADSIG);
    pemn_pkg_free(p);
    free(one);
    free(d);
    p = cosigned_pkg(30, 20, &d); /* revoked + alice */
    assert_int_equal(pemn_root_check_package(r2, "tiny", p, &e), PEMN_EREVOKED);
    pemn_pkg_free(p);
    free(d);
    pemn_root_free(r1);
    pemn_root_free(r2);
    free(v1);
    free(v2);
}

/* ---- editing ----------------------------------------------------------------------------------
 */
static void test_edit_rules(void **state)
{
    (void)state;
    pemn_root *r = base_root();
    struct pemn_pubkey k1 = pk_of(1), k10 = pk_of(10), k20 = pk_of(20), k30 = pk_of(30);
    uint8_t id1[8], id20[8], id30[8], id99[8];
    id_of(1, id1);
    id_of(20, id20);
    id_of(30, id30);
    id_of(99, id99);
    assert_int_equal(pemn_root_add_key(r, &k1), PEMN_EEXIST);
    assert_int_equal(pemn_root_add_publisher(r, &k20, "net"), PEMN_EEXIST);
    assert_int_equal(pemn_root_add_publisher(r, &k20, "a/b"), PEMN_EINVAL);
    assert_int_equal(pemn_root_add_publisher(r, &k30, "x"), PEMN_EREVOKED);
    assert_int_equal(pemn_root_add_key(r, &k30), PEMN_EREVOKED);
    assert_int_equal(pemn_root_add_metadata_key(r, &k20), PEMN_ECONFLICT);   /* is a publisher */
    assert_int_equal(pemn_root_add_publisher(r, &k10, "x"), PEMN_ECONFLICT); /* is metadata */
    assert_int_equal(pemn_root_revoke(r, id1), PEMN_EINVAL);                 /* a root key */
    assert_int_equal(pemn_root_revoke(r, id30), PEMN_EEXIST);
    assert_int_equal(pemn_root_remove_key(r, id99), PEMN_ENOTFOUND);
    assert_int_equal(pemn_root_remove_publisher(r, id99), PEMN_ENOTFOUND);
    assert_int_equal(pemn_root_set_threshold(r, 0), PEMN_EINVAL);
    assert_int_equal(pemn_root_set_model_threshold(r, "x", 0), PEMN_EINVAL);
    assert_int_equal(pemn_root_set_model_threshold(r, "secure-*", 1), PEMN_OK); /* removes */
    assert_int_equal(pemn_root_model_threshold_count(r), 0);
    assert_int_equal(pemn_root_set_expires(r, 0), PEMN_EINVAL);
    /* revoking a publisher removes it */
    assert_int_equal(pemn_root_revoke(r, id20), PEMN_OK);
    assert_int_equal(pemn_root_publisher_count(r), 1);
    assert_true(pemn_root_is_revoked(r, id20));
    /* signing, then changing: the signatures are dropped */
    static const uint8_t s12[] = {1, 2}, s1[] = {1};
    char *t = sign_serialize(r, s12, 2, PEMN_OK);
    free(t);
    assert_int_equal(pemn_root_set_expires(r, EXPIRES + 1), PEMN_OK);
    assert_null(pemn_root_bytes(r, NULL));
    t = sign_serialize(r, s1, 1, PEMN_EUNTRUSTED); /* 1 of 2 */
    assert_null(t);
    t = sign_serialize(r, s12 + 1, 1, PEMN_OK); /* key 2 joins key 1's signature */
    pemn_root *back;
    assert_int_equal(parse_text(t, &back, NULL), PEMN_OK);
    assert_int_equal(pemn_root_expires(back), EXPIRES + 1);
    pemn_root_free(back);
    free(t);
    /* the threshold above the keys left is refused at serialisation */
    assert_int_equal(pemn_root_remove_key(r, id1), PEMN_OK);
    t = sign_serialize(r, s12, 2, PEMN_EINVAL);
    assert_null(t);
    pemn_root_free(r);
    /* an empty root cannot be written */
    assert_int_equal(pemn_root_new(EXPIRES, &r), PEMN_OK);
    t = sign_serialize(r, NULL, 0, PEMN_EINVAL);
    pemn_root_free(r);
    assert_int_equal(pemn_root_new(0, &r), PEMN_EINVAL);
    pemn_root_free(NULL);
}

static void test_load_file(void **state)
{
    (void)state;
    const char *dir = pkgfix_tmpdir();
    char path[600];
    snprintf(path, sizeof path, "%s/root.json", dir);
    char *t = base_text();
    assert_int_equal(pkgfix_write(path, t, strlen(t)), 0);
    pemn_root *r;
    struct pemn_err e = {0};
    assert_int_equal(pemn_root_load(path, &r, &e), PEMN_OK);
    pemn_root_free(r);
    snprintf(path, sizeof path, "%s/none.json", dir);
    assert_int_equal(pemn_root_load(path, &r, &e), PEMN_ENOTFOUND);
    assert_int_equal(pemn_root_load(dir, &r, &e), PEMN_EIO);
    snprintf(path, sizeof path, "%s/bad.json", dir);
    assert_int_equal(pkgfix_write(path, "{}", 2), 0);
    assert_int_equal(pemn_root_load(path, &r, &e), PEMN_ECORRUPT);
    assert_non_null(strstr(e.msg, "bad.json"));
    free(t);
    pkgfix_rmdir(dir);
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_cases; i++)
        free(cases[i].text);
    n_cases = 0;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical),     cmocka_unit_test(test_envelope_threshold),
        cmocka_unit_test(test_getters),       cmocka_unit_test(test_chain),
        cmocka_unit_test(test_patterns),      cmocka_unit_test(test_check_signers),
        cmocka_unit_test(test_check_package), cmocka_unit_test(test_edit_rules),
        cmocka_unit_test(test_load_file),     cmocka_unit_test_teardown(test_corpus, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
