/*
 * server/srv_signer.c — signs desired-state answers with the online metadata key (see
 * server/srv_signer.h; wire format in docs/TRUST.md, "Signed desired state").
 */
#include "server/srv_signer.h"
#include "server/srv.h"
#include "server/srv_signer_root.h"
#include "storage/store_metadata.h"

#include "proto/err.h"

#include <pemn/key.h>

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What the 304 fast path needs to know of a device's stored answer, without the database:
 * a direct-mapped table keyed by a hash of the device id. An entry only ever lets pemnd say
 * "not modified" to a device that already holds exactly that signed body while the answer is
 * still the same and fresh; every body (200) comes from the store. So a stale entry (another
 * replica signed a newer body for the same answer) at worst delays that identical newer body;
 * it can never make a device see an older version than it has. */
#define HOT_SLOTS 65536u
#define HOT_LOCKS 64u

struct hot {
    uint8_t dev[16]; /* SHA-256(device id), first 16 bytes; all zero = empty */
    char answer[17]; /* first 16 hex of the answer hash */
    uint64_t version;
    int64_t issued, expires;
};

struct srv_signer {
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    char keyid[PEMN_KEYID_TEXT_MAX];
    uint64_t expiry;
    pthread_mutex_t locks[HOT_LOCKS];
    struct hot *hot; /* HOT_SLOTS entries */
};

static unsigned hot_slot(const char *device, uint8_t dev[16])
{
    uint8_t d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(d, (const unsigned char *)device, strlen(device));
    memcpy(dev, d, 16);
    return ((unsigned)d[16] | (unsigned)d[17] << 8 | (unsigned)d[18] << 16) % HOT_SLOTS;
}

static void hot_put(struct srv_signer *sg, const char *device, const struct store_metadata *m)
{
    uint8_t dev[16];
    unsigned i = hot_slot(device, dev);
    pthread_mutex_t *mu = &sg->locks[i % HOT_LOCKS];
    pthread_mutex_lock(mu);
    struct hot *h = &sg->hot[i];
    memcpy(h->dev, dev, sizeof dev);
    snprintf(h->answer, sizeof h->answer, "%.16s", m->answer_hash);
    h->version = m->version;
    h->issued = m->issued;
    h->expires = m->expires;
    pthread_mutex_unlock(mu);
}

/* True (and *out filled) when device's entry is there. */
static bool hot_get(struct srv_signer *sg, const char *device, struct hot *out)
{
    uint8_t dev[16];
    unsigned i = hot_slot(device, dev);
    pthread_mutex_t *mu = &sg->locks[i % HOT_LOCKS];
    pthread_mutex_lock(mu);
    *out = sg->hot[i];
    pthread_mutex_unlock(mu);
    return sodium_memcmp(out->dev, dev, sizeof dev) == 0;
}

pemn_rc srv_signer_new(const char *key_path, uint64_t expiry, struct store *st,
                       struct srv_signer **out, struct pemn_err *err)
{
    *out = NULL;
    if (expiry < 2)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "metadata expiry too short");
    struct srv_signer *sg = sodium_malloc(sizeof *sg);
    if (!sg)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    memset(sg, 0, sizeof *sg);
    for (unsigned i = 0; i < HOT_LOCKS; i++)
        pthread_mutex_init(&sg->locks[i], NULL);
    sg->hot = calloc(HOT_SLOTS, sizeof *sg->hot);
    if (!sg->hot) {
        srv_signer_free(sg);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    pemn_rc rc = pemn_seckey_load(key_path, &sg->sk, err);
    if (rc) {
        srv_signer_free(sg);
        return rc;
    }
    pemn_seckey_public(&sg->sk, &sg->pk);
    pemn_key_id_hex(&sg->pk, sg->keyid);
    sg->expiry = expiry;
    if ((rc = srv_signer_root_names(st, &sg->pk, err))) {
        srv_signer_free(sg);
        return rc;
    }
    *out = sg;
    return PEMN_OK;
}

void srv_signer_free(struct srv_signer *sg)
{
    if (!sg)
        return;
    for (unsigned i = 0; i < HOT_LOCKS; i++)
        pthread_mutex_destroy(&sg->locks[i]);
    free(sg->hot);
    sodium_free(sg); /* zeroes the key */
}

/* SHA-256 (hex) of what the answer says plus what it is signed with: a new key or a new
 * lifetime is a new answer. */
static pemn_rc answer_hash(const struct srv_signer *sg, const json_t *answer,
                           char out[STORE_METADATA_HASH_MAX], struct pemn_err *err)
{
    char *text = json_dumps(answer, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, (const unsigned char *)text, strlen(text));
    char tail[64];
    int n = snprintf(tail, sizeof tail, "|%s|%llu", sg->keyid, (unsigned long long)sg->expiry);
    crypto_hash_sha256_update(&h, (const unsigned char *)tail, (size_t)n);
    free(text);
    uint8_t d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&h, d);
    sodium_bin2hex(out, STORE_METADATA_HASH_MAX, d, sizeof d);
    return PEMN_OK;
}

static pemn_rc copy_body(const char *text, char **body, size_t *len, struct pemn_err *err)
{
    size_t n = strlen(text);
    char *b = malloc(n + 1);
    if (!b)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    memcpy(b, text, n + 1);
    *body = b;
    *len = n;
    return PEMN_OK;
}

static void etag_of(const char *answer_hash, uint64_t version, int64_t issued,
                    char etag[SRV_SIGNER_ETAG_MAX])
{
    snprintf(etag, SRV_SIGNER_ETAG_MAX, "\"%.16s-%llx-%llx\"", answer_hash,
             (unsigned long long)version, (unsigned long long)issued);
}

static void make_etag(const struct store_metadata *m, char etag[SRV_SIGNER_ETAG_MAX])
{
    etag_of(m->answer_hash, m->version, m->issued, etag);
}

/* Whether a stored answer with this hash and these times can be served again now. */
static bool reusable(const struct srv_signer *sg, int64_t issued, int64_t expires, int64_t now)
{
    return expires - now > (int64_t)(sg->expiry / 2) && issued <= now + 60;
}

/* The body of m to the caller, or "not modified" when the client has it. */
static pemn_rc deliver(const struct store_metadata *m, const char *if_none_match, char **body,
                       size_t *len, char etag[SRV_SIGNER_ETAG_MAX], bool *not_modified,
                       struct pemn_err *err)
{
    make_etag(m, etag);
    if (srv_etag_matches(if_none_match, etag)) {
        *not_modified = true;
        return PEMN_OK;
    }
    return copy_body(m->body, body, len, err);
}

pemn_rc srv_signer_answer(struct srv_signer *sg, struct store *st, const char *fleet,
                          const char *device, const json_t *answer, const char *if_none_match,
                          char **body, size_t *len, char etag[SRV_SIGNER_ETAG_MAX],
                          bool *not_modified, struct pemn_err *err)
{
    *body = NULL;
    *len = 0;
    *not_modified = false;
    etag[0] = 0;
    char hash[STORE_METADATA_HASH_MAX];
    pemn_rc rc = answer_hash(sg, answer, hash, err);
    if (rc)
        return rc;
    int64_t now = (int64_t)time(NULL);
    /* fast path: the device holds exactly the stored body of this (unchanged, fresh) answer */
    struct hot h;
    if (if_none_match && hot_get(sg, device, &h) && !strncmp(h.answer, hash, 16) &&
        reusable(sg, h.issued, h.expires, now)) {
        etag_of(hash, h.version, h.issued, etag);
        if (srv_etag_matches(if_none_match, etag)) {
            *not_modified = true;
            return PEMN_OK;
        }
    }
    struct store_metadata *m = malloc(sizeof *m);
    if (!m)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    bool found = false;
    rc = store_metadata_get(st, device, m, &found, err);
    /* the same answer, more than half of its life left: serve it again (no signing) */
    if (!rc && found && !strcmp(m->answer_hash, hash) && !strcmp(m->fleet, fleet) &&
        reusable(sg, m->issued, m->expires, now)) {
        hot_put(sg, device, m);
        rc = deliver(m, if_none_match, body, len, etag, not_modified, err);
        free(m);
        return rc;
    }
    uint64_t version = 0;
    if (!rc)
        rc = store_metadata_next_version(st, device, &version, err);
    json_t *sig = NULL;
    if (!rc) {
        sig = json_deep_copy(answer);
        if (!sig || json_object_set_new(sig, "_type", json_string(SRV_DESIRED_TYPE)) ||
            json_object_set_new(sig, "metadata_version", json_integer((json_int_t)version)) ||
            json_object_set_new(sig, "issued", json_integer((json_int_t)now)) ||
            json_object_set_new(sig, "expires",
                                json_integer((json_int_t)(now + (int64_t)sg->expiry))))
            rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    char *text = NULL;
    if (!rc)
        rc = srv_signer_envelope(sig, &sg->sk, &text, err);
    json_decref(sig);
    if (!rc && strlen(text) + 1 > sizeof m->body)
        rc = proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "signed answer too long");
    if (!rc) {
        memset(m, 0, sizeof *m);
        m->version = version;
        snprintf(m->fleet, sizeof m->fleet, "%s", fleet);
        memcpy(m->answer_hash, hash, sizeof hash);
        m->issued = now;
        m->expires = now + (int64_t)sg->expiry;
        snprintf(m->body, sizeof m->body, "%s", text); /* ends in a newline */
        bool stored = false;
        rc = store_metadata_put(st, device, m, &stored, err);
        if (!rc && stored)
            hot_put(sg, device, m);
        /* not stored: a concurrent poll signed a newer one; this one is valid all the same */
        if (!rc)
            rc = deliver(m, if_none_match, body, len, etag, not_modified, err);
    }
    free(text);
    free(m);
    return rc;
}
