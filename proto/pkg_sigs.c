/*
 * proto/pkg_sigs.c — a package's signatures: the trailer's and the co-signatures of format
 * 1.1 (docs/FORMAT.md "Digest, signature and identity", "Co-signatures").
 */
#include "proto/err.h"
#include "proto/pkg_internal.h"
#include "proto/pkg_layout.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

uint32_t pemn_pkg_signer_count(const pemn_pkg *pkg)
{
    return pkg ? 1 + pkg->n_cosigs : 0;
}

/* Key and signature bytes of signature i (borrowed). */
static void sig_at(const pemn_pkg *pkg, uint32_t i, const uint8_t **pk, const uint8_t **sig)
{
    if (i == 0) {
        const uint8_t *tr = pkg->bytes + pkg->core_len - PKG_TRAILER_SIZE;
        *pk = tr;
        *sig = tr + 64;
    } else {
        const uint8_t *e = pkg->cosigs + (size_t)(i - 1) * PKG_COSIG_ENTRY;
        *pk = e;
        *sig = e + PEMN_PUBKEY_BYTES;
    }
}

pemn_rc pemn_pkg_signer(const pemn_pkg *pkg, uint32_t i, struct pemn_pubkey *pk,
                        uint8_t id[PEMN_KEYID_BYTES])
{
    if (!pkg || !pk || i >= pemn_pkg_signer_count(pkg))
        return PEMN_ENOTFOUND;
    const uint8_t *k, *s;
    sig_at(pkg, i, &k, &s);
    memcpy(pk->bytes, k, PEMN_PUBKEY_BYTES);
    if (id)
        pemn_key_id(pk, id);
    return PEMN_OK;
}

pemn_rc pemn_pkg_verify_signatures(const pemn_pkg *pkg, struct pemn_err *err)
{
    if (!pkg)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no package");
    if (pemn_init() != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "libsodium failed to initialise");
    const uint8_t *digest = pkg->bytes + pkg->core_len - PKG_TRAILER_SIZE + 32;
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(pkg->bytes, pkg->core_len - PKG_TRAILER_SIZE, d);
    if (sodium_memcmp(d, digest, PEMN_DIGEST_BYTES) != 0)
        return proto_err(err, PEMN_ECORRUPT, pkg->core_len - PKG_TRAILER_SIZE + 32,
                         "content digest does not match the content");
    uint8_t msg[PKG_SIG_DOMAIN_LEN + PEMN_DIGEST_BYTES];
    memcpy(msg, PKG_SIG_DOMAIN, PKG_SIG_DOMAIN_LEN); /* includes the terminating NUL */
    memcpy(msg + PKG_SIG_DOMAIN_LEN, digest, PEMN_DIGEST_BYTES);
    for (uint32_t i = 0; i < pemn_pkg_signer_count(pkg); i++) {
        const uint8_t *k, *s;
        sig_at(pkg, i, &k, &s);
        if (crypto_sign_verify_detached(s, msg, sizeof msg, k) != 0) {
            char hex[PEMN_KEYID_TEXT_MAX];
            struct pemn_pubkey pk;
            memcpy(pk.bytes, k, PEMN_PUBKEY_BYTES);
            pemn_key_id_hex(&pk, hex);
            uint64_t off =
                i == 0 ? pkg->core_len - PKG_TRAILER_SIZE + 64 : (uint64_t)(s - pkg->bytes);
            return proto_err(err, PEMN_EBADSIG, off,
                             i == 0 ? "signature does not verify under the embedded signer key %s"
                                    : "co-signature by key %s does not verify",
                             hex);
        }
    }
    return PEMN_OK;
}

pemn_rc pemn_pkg_verify(const pemn_pkg *pkg, const pemn_keyring *trusted, struct pemn_err *err)
{
    pemn_rc rc = pemn_pkg_verify_signatures(pkg, err);
    if (rc)
        return rc;
    char first[PEMN_KEYID_TEXT_MAX] = "";
    for (uint32_t i = 0; i < pemn_pkg_signer_count(pkg); i++) {
        struct pemn_pubkey pk;
        uint8_t id[PEMN_KEYID_BYTES];
        (void)pemn_pkg_signer(pkg, i, &pk, id);
        const struct pemn_pubkey *k = pemn_keyring_find(trusted, id);
        if (k && sodium_memcmp(k->bytes, pk.bytes, PEMN_PUBKEY_BYTES) == 0)
            return PEMN_OK;
        if (i == 0)
            pemn_keyid_format(id, first);
    }
    if (pemn_pkg_signer_count(pkg) == 1)
        return proto_err(err, PEMN_EUNTRUSTED, PEMN_NO_OFFSET,
                         "signed by key %s, which is not trusted", first);
    return proto_err(err, PEMN_EUNTRUSTED, PEMN_NO_OFFSET,
                     "none of the %u signers (first %s) is trusted", pemn_pkg_signer_count(pkg),
                     first);
}

pemn_rc pemn_pkg_add_signature(const pemn_pkg *pkg, const struct pemn_seckey *sk, uint8_t **out,
                               size_t *out_len, struct pemn_err *err)
{
    if (!pkg || !sk || !out || !out_len)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    *out_len = 0;
    if (pkg->minor < 1)
        return proto_err(err, PEMN_EVERSION, PKG_H_MINOR,
                         "format 1.%u packages cannot carry co-signatures: re-pack it (1.1)",
                         pkg->minor);
    pemn_rc rc = pemn_pkg_verify_signatures(pkg, err);
    if (rc)
        return rc;
    struct pemn_pubkey pk;
    pemn_seckey_public(sk, &pk);
    for (uint32_t i = 0; i < pemn_pkg_signer_count(pkg); i++) {
        const uint8_t *k, *s;
        sig_at(pkg, i, &k, &s);
        if (memcmp(k, pk.bytes, PEMN_PUBKEY_BYTES) == 0) {
            char hex[PEMN_KEYID_TEXT_MAX];
            pemn_key_id_hex(&pk, hex);
            return proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET, "key %s already signed it", hex);
        }
    }
    uint32_t n = pkg->n_cosigs + 1;
    if (n >= PEMN_PKG_MAX_SIGNERS)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "already %u signatures",
                         PEMN_PKG_MAX_SIGNERS);
    size_t total = pkg->core_len + PKG_COSIG_HDR + (size_t)n * PKG_COSIG_ENTRY;
    uint8_t *b = malloc(total);
    if (!b)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    memcpy(b, pkg->bytes, pkg->core_len);
    uint8_t *c = b + pkg->core_len;
    memcpy(c, PKG_COSIG_MAGIC, PKG_MAGIC_LEN);
    proto_put32(c + 8, n);
    proto_put32(c + 12, 0);
    if (pkg->n_cosigs)
        memcpy(c + PKG_COSIG_HDR, pkg->cosigs, (size_t)pkg->n_cosigs * PKG_COSIG_ENTRY);
    uint8_t *e = c + PKG_COSIG_HDR + (size_t)pkg->n_cosigs * PKG_COSIG_ENTRY;
    uint8_t msg[PKG_SIG_DOMAIN_LEN + PEMN_DIGEST_BYTES];
    memcpy(msg, PKG_SIG_DOMAIN, PKG_SIG_DOMAIN_LEN);
    memcpy(msg + PKG_SIG_DOMAIN_LEN, pkg->bytes + pkg->core_len - PKG_TRAILER_SIZE + 32,
           PEMN_DIGEST_BYTES);
    memcpy(e, pk.bytes, PEMN_PUBKEY_BYTES);
    crypto_sign_detached(e + PEMN_PUBKEY_BYTES, NULL, msg, sizeof msg, sk->bytes);
    *out = b;
    *out_len = total;
    return PEMN_OK;
}
