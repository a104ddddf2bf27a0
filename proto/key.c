/*
 * proto/key.c — Ed25519 publisher keys, key files and trusted keyrings (libsodium).
 */
#include "proto/err.h"

#include <errno.h>
#include <fcntl.h>
#include <pemn/key.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PUB_PREFIX "pemn-ed25519-pub "
#define SEC_PREFIX "pemn-ed25519-sec "
#define PREFIX_LEN 17
#define KEY_HEX 64
#define KEYFILE_MAX 256 /* a key file is one short line; anything longer is not a key file */
#define KEYRING_MAX 4096

/* ---- keys ------------------------------------------------------------------------------- */
pemn_rc pemn_key_generate(struct pemn_seckey *sk, struct pemn_pubkey *pk)
{
    if (!sk || !pk)
        return PEMN_EINVAL;
    if (pemn_init() != PEMN_OK)
        return PEMN_EINVAL;
    crypto_sign_keypair(pk->bytes, sk->bytes);
    return PEMN_OK;
}

void pemn_seckey_public(const struct pemn_seckey *sk, struct pemn_pubkey *pk)
{
    /* libsodium layout: seed (32) || public key (32) */
    memcpy(pk->bytes, sk->bytes + 32, PEMN_PUBKEY_BYTES);
}

void pemn_seckey_wipe(struct pemn_seckey *sk)
{
    if (sk)
        sodium_memzero(sk->bytes, sizeof sk->bytes);
}

void pemn_key_id(const struct pemn_pubkey *pk, uint8_t id[PEMN_KEYID_BYTES])
{
    uint8_t d[PEMN_DIGEST_BYTES];
    pemn_sha256(pk->bytes, PEMN_PUBKEY_BYTES, d);
    memcpy(id, d, PEMN_KEYID_BYTES);
}

void pemn_keyid_format(const uint8_t id[PEMN_KEYID_BYTES], char out[PEMN_KEYID_TEXT_MAX])
{
    proto_hex(id, PEMN_KEYID_BYTES, out);
}

void pemn_key_id_hex(const struct pemn_pubkey *pk, char out[PEMN_KEYID_TEXT_MAX])
{
    uint8_t id[PEMN_KEYID_BYTES];
    pemn_key_id(pk, id);
    pemn_keyid_format(id, out);
}

void pemn_pubkey_format(const struct pemn_pubkey *pk, char out[PEMN_PUBKEY_TEXT_MAX])
{
    memcpy(out, PUB_PREFIX, PREFIX_LEN);
    proto_hex(pk->bytes, PEMN_PUBKEY_BYTES, out + PREFIX_LEN);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* "<prefix><64 hex>" followed only by whitespace. */
static pemn_rc parse_line(const char *text, size_t len, const char *prefix, uint8_t out[32],
                          struct pemn_err *err)
{
    if (!text)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no key text");
    if (len < PREFIX_LEN + KEY_HEX || memcmp(text, prefix, PREFIX_LEN) != 0)
        return proto_err(err, PEMN_EINVAL, 0, "not a key: expected \"%.16s <64 hex digits>\"",
                         prefix);
    for (size_t i = PREFIX_LEN + KEY_HEX; i < len; i++)
        if (!is_space(text[i]))
            return proto_err(err, PEMN_EINVAL, i, "unexpected text after the key");
    uint8_t tmp[32];
    if (proto_unhex(text + PREFIX_LEN, KEY_HEX, tmp) != 0) {
        sodium_memzero(tmp, sizeof tmp);
        return proto_err(err, PEMN_EINVAL, PREFIX_LEN, "key is not 64 hex digits");
    }
    memcpy(out, tmp, 32);
    sodium_memzero(tmp, sizeof tmp);
    return PEMN_OK;
}

pemn_rc pemn_pubkey_parse(const char *text, size_t len, struct pemn_pubkey *pk,
                          struct pemn_err *err)
{
    if (!pk)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no output key");
    return parse_line(text, len, PUB_PREFIX, pk->bytes, err);
}

/* ---- key files -------------------------------------------------------------------------- */
static pemn_rc write_all(int fd, const char *buf, size_t n, const char *path, struct pemn_err *err)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "write %s: %s", path, strerror(errno));
        }
        buf += w;
        n -= (size_t)w;
    }
    return PEMN_OK;
}

/* Creates path exclusively with the given mode and writes text; removes it on failure. */
static pemn_rc write_new_file(const char *path, const char *text, size_t n, mode_t mode,
                              struct pemn_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            return proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET, "%s already exists", path);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "create %s: %s", path, strerror(errno));
    }
    /* the umask may have removed bits, never added: force the exact mode */
    pemn_rc rc = fchmod(fd, mode) == 0 ? PEMN_OK
                                       : proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "chmod %s: %s",
                                                   path, strerror(errno));
    if (rc == PEMN_OK)
        rc = write_all(fd, text, n, path, err);
    if (rc == PEMN_OK && fsync(fd) != 0)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "fsync %s: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == PEMN_OK)
        rc = proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "close %s: %s", path, strerror(errno));
    if (rc != PEMN_OK)
        unlink(path);
    return rc;
}

pemn_rc pemn_key_save(const char *base, const struct pemn_seckey *sk, struct pemn_err *err)
{
    if (!base || !sk || !*base)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no key path");
    size_t bl = strlen(base);
    if (bl > 4000)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "key path too long");
    char kpath[4096], ppath[4096];
    snprintf(kpath, sizeof kpath, "%s.key", base);
    snprintf(ppath, sizeof ppath, "%s.pub", base);

    /* refuse before writing anything if either file is present */
    struct stat st;
    if (lstat(kpath, &st) == 0)
        return proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET, "%s already exists", kpath);
    if (lstat(ppath, &st) == 0)
        return proto_err(err, PEMN_EEXIST, PEMN_NO_OFFSET, "%s already exists", ppath);

    char line[PREFIX_LEN + KEY_HEX + 2];
    memcpy(line, SEC_PREFIX, PREFIX_LEN);
    proto_hex(sk->bytes, 32, line + PREFIX_LEN);
    line[PREFIX_LEN + KEY_HEX] = '\n';
    pemn_rc rc = write_new_file(kpath, line, PREFIX_LEN + KEY_HEX + 1, 0600, err);
    sodium_memzero(line, sizeof line);
    if (rc != PEMN_OK)
        return rc;

    struct pemn_pubkey pk;
    pemn_seckey_public(sk, &pk);
    char pub[PEMN_PUBKEY_TEXT_MAX + 1];
    pemn_pubkey_format(&pk, pub);
    size_t n = strlen(pub);
    pub[n++] = '\n';
    rc = write_new_file(ppath, pub, n, 0644, err);
    if (rc != PEMN_OK)
        unlink(kpath); /* all or nothing */
    return rc;
}

/* Reads a small text file into buf (NUL-terminated); *n receives its length. */
/* secret: refuse a file that group or others may read or write, as ssh does: a leaked
 * publisher key signs packages every device trusts. */
static pemn_rc read_small(const char *path, char *buf, size_t cap, size_t *n, int secret,
                          struct pemn_err *err)
{
    if (!path)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no key path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return proto_err(err, PEMN_ENOTFOUND, PEMN_NO_OFFSET, "%s: no such file", path);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "open %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (secret && fstat(fd, &st) == 0 && (st.st_mode & 077)) {
        close(fd);
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "%s: permissions %04o are too open for a secret key (chmod 600)", path,
                         (unsigned)(st.st_mode & 07777));
    }
    size_t len = 0;
    for (;;) {
        if (len == cap - 1) {
            /* one more byte means the file is too long to be a key */
            char c;
            ssize_t r = read(fd, &c, 1);
            if (r > 0) {
                close(fd);
                sodium_memzero(buf, cap);
                return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "%s: not a key file", path);
            }
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            sodium_memzero(buf, cap);
            return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "read %s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    *n = len;
    return PEMN_OK;
}

pemn_rc pemn_pubkey_load(const char *path, struct pemn_pubkey *pk, struct pemn_err *err)
{
    if (!pk)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no output key");
    char buf[KEYFILE_MAX];
    size_t n;
    pemn_rc rc = read_small(path, buf, sizeof buf, &n, 0, err);
    if (rc != PEMN_OK)
        return rc;
    rc = pemn_pubkey_parse(buf, n, pk, err);
    if (rc != PEMN_OK && err)
        proto_err(err, rc, err->offset, "%s: not a pemn public key", path);
    return rc;
}

pemn_rc pemn_seckey_load(const char *path, struct pemn_seckey *sk, struct pemn_err *err)
{
    if (!sk)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no output key");
    if (pemn_init() != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "libsodium failed to initialise");
    char buf[KEYFILE_MAX];
    size_t n;
    pemn_rc rc = read_small(path, buf, sizeof buf, &n, 1, err);
    if (rc != PEMN_OK)
        return rc;
    uint8_t seed[32];
    rc = parse_line(buf, n, SEC_PREFIX, seed, err);
    sodium_memzero(buf, sizeof buf);
    if (rc != PEMN_OK) {
        sodium_memzero(seed, sizeof seed);
        return proto_err(err, rc, PEMN_NO_OFFSET, "%s: not a pemn secret key", path);
    }
    uint8_t pk[32];
    crypto_sign_seed_keypair(pk, sk->bytes, seed);
    sodium_memzero(seed, sizeof seed);
    return PEMN_OK;
}

/* ---- keyrings --------------------------------------------------------------------------- */
struct ring_entry {
    uint8_t id[PEMN_KEYID_BYTES];
    struct pemn_pubkey pk;
};

struct pemn_keyring {
    struct ring_entry *keys;
    size_t n, cap;
};

pemn_rc pemn_keyring_new(pemn_keyring **out)
{
    if (!out)
        return PEMN_EINVAL;
    *out = calloc(1, sizeof **out);
    return *out ? PEMN_OK : PEMN_ENOMEM;
}

void pemn_keyring_free(pemn_keyring *kr)
{
    if (!kr)
        return;
    free(kr->keys);
    free(kr);
}

pemn_rc pemn_keyring_add(pemn_keyring *kr, const struct pemn_pubkey *pk)
{
    if (!kr || !pk)
        return PEMN_EINVAL;
    for (size_t i = 0; i < kr->n; i++)
        if (memcmp(kr->keys[i].pk.bytes, pk->bytes, PEMN_PUBKEY_BYTES) == 0)
            return PEMN_OK;
    if (kr->n >= KEYRING_MAX)
        return PEMN_ETOOBIG;
    if (kr->n == kr->cap) {
        size_t nc = kr->cap ? kr->cap * 2 : 8;
        if (nc > KEYRING_MAX)
            nc = KEYRING_MAX;
        struct ring_entry *nk = realloc(kr->keys, nc * sizeof *nk);
        if (!nk)
            return PEMN_ENOMEM;
        kr->keys = nk;
        kr->cap = nc;
    }
    struct ring_entry *e = &kr->keys[kr->n++];
    e->pk = *pk;
    pemn_key_id(pk, e->id);
    return PEMN_OK;
}

pemn_rc pemn_keyring_add_file(pemn_keyring *kr, const char *path, struct pemn_err *err)
{
    if (!kr)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no keyring");
    struct pemn_pubkey pk;
    pemn_rc rc = pemn_pubkey_load(path, &pk, err);
    if (rc != PEMN_OK)
        return rc;
    rc = pemn_keyring_add(kr, &pk);
    if (rc != PEMN_OK)
        return proto_err(err, rc, PEMN_NO_OFFSET, "%s: %s", path, pemn_strerror(rc));
    return PEMN_OK;
}

size_t pemn_keyring_count(const pemn_keyring *kr)
{
    return kr ? kr->n : 0;
}

const struct pemn_pubkey *pemn_keyring_find(const pemn_keyring *kr,
                                            const uint8_t id[PEMN_KEYID_BYTES])
{
    if (!kr || !id)
        return NULL;
    for (size_t i = 0; i < kr->n; i++)
        if (memcmp(kr->keys[i].id, id, PEMN_KEYID_BYTES) == 0)
            return &kr->keys[i].pk;
    return NULL;
}
