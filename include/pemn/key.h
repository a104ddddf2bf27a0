/*
 * pemn/key.h — Ed25519 publisher keys (libsodium) and sets of trusted keys.
 *
 * Key id: the first 8 bytes of SHA-256(public key), shown as 16 lowercase hex digits.
 * Key files are one line of text:
 *   BASE.pub  "pemn-ed25519-pub <64 hex digits: the 32-byte public key>\n"
 *   BASE.key  "pemn-ed25519-sec <64 hex digits: the 32-byte seed>\n"   (mode 0600)
 * The secret key is rebuilt from the seed with crypto_sign_seed_keypair.
 *
 * Thread-safety: a keyring is read-only after it is filled and may then be shared.
 */
#ifndef PEMN_KEY_H
#define PEMN_KEY_H

#include <pemn/common.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PEMN_PUBKEY_BYTES 32
#define PEMN_SECKEY_BYTES 64
#define PEMN_SIG_BYTES 64
#define PEMN_KEYID_BYTES 8
#define PEMN_KEYID_TEXT_MAX 17
#define PEMN_PUBKEY_TEXT_MAX 96

struct pemn_pubkey {
    uint8_t bytes[PEMN_PUBKEY_BYTES];
};
struct pemn_seckey {
    uint8_t bytes[PEMN_SECKEY_BYTES]; /* libsodium layout: seed || public key */
};

/* New random key pair. */
pemn_rc pemn_key_generate(struct pemn_seckey *sk, struct pemn_pubkey *pk);
/* Public half of a secret key. */
void pemn_seckey_public(const struct pemn_seckey *sk, struct pemn_pubkey *pk);
/* Wipes a secret key (sodium_memzero). */
void pemn_seckey_wipe(struct pemn_seckey *sk);

void pemn_key_id(const struct pemn_pubkey *pk, uint8_t id[PEMN_KEYID_BYTES]);
void pemn_key_id_hex(const struct pemn_pubkey *pk, char out[PEMN_KEYID_TEXT_MAX]);
void pemn_keyid_format(const uint8_t id[PEMN_KEYID_BYTES], char out[PEMN_KEYID_TEXT_MAX]);

/* Text form of a public key (the .pub file line without newline). */
void pemn_pubkey_format(const struct pemn_pubkey *pk, char out[PEMN_PUBKEY_TEXT_MAX]);
/* Parse the text form (trailing whitespace allowed). PEMN_EINVAL when malformed. */
pemn_rc pemn_pubkey_parse(const char *text, size_t len, struct pemn_pubkey *pk,
                          struct pemn_err *err);

/* Writes BASE.key (0600, created exclusively: PEMN_EEXIST if present) and BASE.pub. */
pemn_rc pemn_key_save(const char *base, const struct pemn_seckey *sk, struct pemn_err *err);
pemn_rc pemn_pubkey_load(const char *path, struct pemn_pubkey *pk, struct pemn_err *err);
/* Loads a .key file; the caller wipes *sk with pemn_seckey_wipe when done. */
pemn_rc pemn_seckey_load(const char *path, struct pemn_seckey *sk, struct pemn_err *err);

/* ---- trusted key sets ----------------------------------------------------------------- */
typedef struct pemn_keyring pemn_keyring;

pemn_rc pemn_keyring_new(pemn_keyring **out);
void pemn_keyring_free(pemn_keyring *kr); /* NULL is a no-op */
/* Adds a copy of pk (duplicates are ignored). At most 4096 keys: PEMN_ETOOBIG beyond. */
pemn_rc pemn_keyring_add(pemn_keyring *kr, const struct pemn_pubkey *pk);
pemn_rc pemn_keyring_add_file(pemn_keyring *kr, const char *path, struct pemn_err *err);
size_t pemn_keyring_count(const pemn_keyring *kr);
/* Borrowed pointer to the key with this id, or NULL. */
const struct pemn_pubkey *pemn_keyring_find(const pemn_keyring *kr,
                                            const uint8_t id[PEMN_KEYID_BYTES]);

#ifdef __cplusplus
}
#endif
#endif
