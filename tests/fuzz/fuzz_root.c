/*
 * libFuzzer target: root-of-trust files (pemn_root_parse), envelopes and canonical JSON,
 * which devices read from the network. Invariants: a parsed root re-parses from its own
 * bytes to the same content; it never follows itself; every getter stays in bounds; an
 * unsigned successor never serialises; results are only the documented codes.
 */
#include <pemn/trust.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1); /* exact size: overreads are reported */
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    char *canon = NULL;
    if (pemn_json_canonical((const char *)buf, size, &canon, NULL, NULL) == PEMN_OK) {
        char *again = NULL;
        if (pemn_json_canonical(canon, strlen(canon), &again, NULL, NULL) != PEMN_OK ||
            strcmp(canon, again) != 0)
            abort(); /* canonical form is a fixed point */
        free(again);
        free(canon);
    }
    pemn_envelope *env = NULL;
    if (pemn_envelope_parse(buf, size, &env, NULL) == PEMN_OK) {
        size_t n;
        const char *sd = pemn_envelope_signed(env, &n);
        if (!sd || strlen(sd) != n || !pemn_envelope_type(env))
            abort();
        pemn_envelope_free(env);
    }
    pemn_root *r = NULL;
    struct pemn_err e = {0};
    pemn_rc rc = pemn_root_parse(buf, size, &r, &e);
    if (rc == PEMN_OK) {
        size_t bl;
        const uint8_t *b = pemn_root_bytes(r, &bl);
        pemn_root *r2 = NULL;
        if (!b || pemn_root_parse(b, bl, &r2, NULL) != PEMN_OK ||
            pemn_root_version(r2) != pemn_root_version(r) ||
            pemn_root_verify_next(r, r2, NULL) != PEMN_EVERSION)
            abort();
        pemn_root_free(r2);
        if (pemn_root_threshold(r) < 1 || pemn_root_threshold(r) > pemn_root_key_count(r))
            abort();
        for (size_t i = 0; i < pemn_root_key_count(r); i++)
            if (!pemn_root_key(r, i))
                abort();
        struct pemn_pubkey keys[4];
        size_t nk = 0;
        for (size_t i = 0; i < pemn_root_publisher_count(r) && nk < 4; i++) {
            struct pemn_root_publisher p;
            if (pemn_root_publisher(r, i, &p) != PEMN_OK || p.n_patterns < 1)
                abort();
            keys[nk++] = p.key;
            pemn_rc c = pemn_root_check_signers(r, p.patterns[0], keys, nk, NULL);
            if (c != PEMN_OK && c != PEMN_EUNTRUSTED && c != PEMN_EREVOKED)
                abort();
        }
        if (pemn_root_check_expiry(r, 0, NULL) != PEMN_OK) /* expires >= 1 */
            abort();
        pemn_root *next = NULL;
        char *text = NULL;
        if (pemn_root_next(r, &next) == PEMN_OK &&
            pemn_root_serialize(next, &text, NULL, NULL) == PEMN_OK)
            abort(); /* nobody signed it */
        free(text);
        pemn_root_free(next);
        pemn_root_free(r);
    } else if (r || (rc != PEMN_ECORRUPT && rc != PEMN_EUNTRUSTED && rc != PEMN_EVERSION &&
                     rc != PEMN_ETOOBIG && rc != PEMN_ENOMEM)) {
        abort();
    }
    free(buf);
    return 0;
}
