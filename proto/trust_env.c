/*
 * proto/trust_env.c — canonical JSON and signed envelopes (docs/TRUST.md "Envelopes").
 */
#include "proto/err.h"
#include "proto/trust_int.h"

#include <pemn/trust.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define DOMAIN_LEN (sizeof PEMN_JSON_SIG_DOMAIN) /* includes the NUL */

struct env_sig {
    uint8_t id[PEMN_KEYID_BYTES];
    uint8_t sig[PEMN_SIG_BYTES];
};

struct pemn_envelope {
    json_t *signed_obj; /* owned */
    char *canon;        /* canonical bytes of signed_obj */
    size_t canon_len;
    const char *type; /* borrowed from signed_obj */
    size_t n_sigs;
    struct env_sig sigs[PEMN_TRUST_MAX_SIGS];
};

/* ---- canonical JSON ------------------------------------------------------------------------ */
/* Reals have no single text form, so signed data holds integers only. */
static pemn_rc check_value(const json_t *v, int depth, struct pemn_err *err)
{
    if (depth > 32)
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "JSON nested deeper than 32");
    if (json_is_real(v))
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                         "signed JSON holds a real number (only integers are canonical)");
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m)
        {
            pemn_rc rc = check_value(m, depth + 1, err);
            if (rc)
                return rc;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            pemn_rc rc = check_value(m, depth + 1, err);
            if (rc)
                return rc;
        }
    }
    return PEMN_OK;
}

pemn_rc proto_json_dump_canonical(const json_t *v, char **out, size_t *out_len,
                                  struct pemn_err *err)
{
    pemn_rc rc = check_value(v, 0, err);
    if (rc)
        return rc;
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!s)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory encoding JSON");
    size_t n = strlen(s);
    if (n > PEMN_TRUST_MAX_BYTES) {
        free(s);
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "canonical JSON over %u bytes",
                         PEMN_TRUST_MAX_BYTES);
    }
    *out = s;
    if (out_len)
        *out_len = n;
    return PEMN_OK;
}

json_t *proto_json_load(const void *data, size_t len, size_t flags, struct pemn_err *err)
{
    if (!data && len)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no data"), NULL;
    if (len > PEMN_TRUST_MAX_BYTES)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "%zu bytes, over the %u limit", len,
                         PEMN_TRUST_MAX_BYTES),
               NULL;
    json_error_t je;
    json_t *v = json_loadb(data ? data : "", len, JSON_REJECT_DUPLICATES | flags, &je);
    if (!v)
        proto_err(err, PEMN_ECORRUPT, (uint64_t)je.position, "bad JSON: %s (line %d)", je.text,
                  je.line);
    return v;
}

pemn_rc pemn_json_canonical(const char *json, size_t len, char **out, size_t *out_len,
                            struct pemn_err *err)
{
    if (!out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    json_t *v = proto_json_load(json, len, JSON_DECODE_ANY, err);
    if (!v)
        return err ? err->rc : PEMN_ECORRUPT;
    pemn_rc rc = proto_json_dump_canonical(v, out, out_len, err);
    json_decref(v);
    return rc;
}

/* ---- envelopes ----------------------------------------------------------------------------- */
/* Takes a reference to obj. */
static pemn_rc env_from_signed(json_t *obj, pemn_envelope **out, struct pemn_err *err)
{
    if (!json_is_object(obj))
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "\"signed\" is not an object");
    json_t *t = json_object_get(obj, "_type");
    if (!json_is_string(t) || json_string_length(t) == 0)
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "\"signed\" has no \"_type\" string");
    pemn_envelope *e = calloc(1, sizeof *e);
    if (!e)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    pemn_rc rc = proto_json_dump_canonical(obj, &e->canon, &e->canon_len, err);
    if (rc) {
        free(e);
        return rc;
    }
    e->signed_obj = json_incref(obj);
    e->type = json_string_value(t);
    *out = e;
    return PEMN_OK;
}

static int find_sig(const pemn_envelope *e, const uint8_t id[PEMN_KEYID_BYTES])
{
    for (size_t i = 0; i < e->n_sigs; i++)
        if (memcmp(e->sigs[i].id, id, PEMN_KEYID_BYTES) == 0)
            return (int)i;
    return -1;
}

static pemn_rc parse_sigs(pemn_envelope *e, json_t *arr, struct pemn_err *err)
{
    if (!json_is_array(arr))
        return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "\"signatures\" is not an array");
    if (json_array_size(arr) > PEMN_TRUST_MAX_SIGS)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "%zu signatures, at most %u",
                         json_array_size(arr), PEMN_TRUST_MAX_SIGS);
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s)
    {
        json_t *kid = json_object_get(s, "keyid"), *sig = json_object_get(s, "sig");
        struct env_sig es;
        if (!json_is_object(s) || json_object_size(s) != 2 || !json_is_string(kid) ||
            !json_is_string(sig) || json_string_length(kid) != 2 * PEMN_KEYID_BYTES ||
            json_string_length(sig) != 2 * PEMN_SIG_BYTES ||
            proto_unhex(json_string_value(kid), 2 * PEMN_KEYID_BYTES, es.id) != 0 ||
            proto_unhex(json_string_value(sig), 2 * PEMN_SIG_BYTES, es.sig) != 0)
            return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                             "signature %zu is not {\"keyid\": 16 hex, \"sig\": 128 hex}", i);
        if (find_sig(e, es.id) >= 0)
            return proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, "two signatures by key %s",
                             json_string_value(kid));
        e->sigs[e->n_sigs++] = es;
    }
    return PEMN_OK;
}

pemn_rc pemn_envelope_parse(const void *data, size_t len, pemn_envelope **out, struct pemn_err *err)
{
    if (!out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    json_t *root = proto_json_load(data, len, 0, err);
    if (!root)
        return err ? err->rc : PEMN_ECORRUPT;
    pemn_rc rc;
    json_t *sd = json_object_get(root, "signed"), *sigs = json_object_get(root, "signatures");
    if (!json_is_object(root) || json_object_size(root) != 2 || !sd || !sigs) {
        rc = proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET,
                       "an envelope holds exactly \"signed\" and \"signatures\"");
    } else {
        pemn_envelope *e = NULL;
        rc = env_from_signed(sd, &e, err);
        if (!rc)
            rc = parse_sigs(e, sigs, err);
        if (rc)
            pemn_envelope_free(e);
        else
            *out = e;
    }
    json_decref(root);
    return rc;
}

pemn_rc pemn_envelope_new(const char *signed_json, size_t len, pemn_envelope **out,
                          struct pemn_err *err)
{
    if (!out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    json_t *v = proto_json_load(signed_json, len, 0, err);
    if (!v)
        return err ? err->rc : PEMN_ECORRUPT;
    pemn_rc rc = env_from_signed(v, out, err);
    json_decref(v);
    return rc;
}

pemn_rc proto_envelope_from_json(json_t *signed_obj, pemn_envelope **out, struct pemn_err *err)
{
    *out = NULL;
    return env_from_signed(signed_obj, out, err);
}

void pemn_envelope_free(pemn_envelope *env)
{
    if (!env)
        return;
    json_decref(env->signed_obj);
    free(env->canon);
    free(env);
}

const char *pemn_envelope_type(const pemn_envelope *env)
{
    return env ? env->type : NULL;
}

const char *pemn_envelope_signed(const pemn_envelope *env, size_t *len)
{
    if (!env)
        return NULL;
    if (len)
        *len = env->canon_len;
    return env->canon;
}

const json_t *proto_envelope_json(const pemn_envelope *env)
{
    return env->signed_obj;
}

size_t pemn_envelope_sig_count(const pemn_envelope *env)
{
    return env ? env->n_sigs : 0;
}

pemn_rc pemn_envelope_sig(const pemn_envelope *env, size_t i, uint8_t keyid[PEMN_KEYID_BYTES],
                          uint8_t sig[PEMN_SIG_BYTES])
{
    if (!env || i >= env->n_sigs)
        return PEMN_ENOTFOUND;
    if (keyid)
        memcpy(keyid, env->sigs[i].id, PEMN_KEYID_BYTES);
    if (sig)
        memcpy(sig, env->sigs[i].sig, PEMN_SIG_BYTES);
    return PEMN_OK;
}

/* "pemn-json-v1\0" || canonical bytes, into a new buffer. */
static uint8_t *signed_message(const pemn_envelope *e, size_t *n)
{
    uint8_t *m = malloc(DOMAIN_LEN + e->canon_len);
    if (!m)
        return NULL;
    memcpy(m, PEMN_JSON_SIG_DOMAIN, DOMAIN_LEN);
    memcpy(m + DOMAIN_LEN, e->canon, e->canon_len);
    *n = DOMAIN_LEN + e->canon_len;
    return m;
}

pemn_rc pemn_envelope_sign(pemn_envelope *env, const struct pemn_seckey *sk, struct pemn_err *err)
{
    if (!env || !sk)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    if (pemn_init() != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "libsodium failed to initialise");
    struct pemn_pubkey pk;
    pemn_seckey_public(sk, &pk);
    struct env_sig es;
    pemn_key_id(&pk, es.id);
    int at = find_sig(env, es.id);
    if (at < 0 && env->n_sigs >= PEMN_TRUST_MAX_SIGS)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "already %u signatures",
                         PEMN_TRUST_MAX_SIGS);
    size_t n;
    uint8_t *m = signed_message(env, &n);
    if (!m)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    crypto_sign_detached(es.sig, NULL, m, n, sk->bytes);
    free(m);
    if (at >= 0)
        env->sigs[at] = es;
    else
        env->sigs[env->n_sigs++] = es;
    return PEMN_OK;
}

pemn_rc pemn_envelope_verify(const pemn_envelope *env, const struct pemn_pubkey *keys,
                             size_t n_keys, unsigned threshold, unsigned *n_valid,
                             struct pemn_err *err)
{
    if (n_valid)
        *n_valid = 0;
    if (!env || (!keys && n_keys))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    if (threshold == 0)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "threshold 0");
    if (pemn_init() != PEMN_OK)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "libsodium failed to initialise");
    size_t n;
    uint8_t *m = signed_message(env, &n);
    if (!m)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    unsigned good = 0;
    for (size_t k = 0; k < n_keys; k++) {
        int dup = 0; /* a key listed twice counts once */
        for (size_t j = 0; j < k && !dup; j++)
            dup = sodium_memcmp(keys[j].bytes, keys[k].bytes, PEMN_PUBKEY_BYTES) == 0;
        if (dup)
            continue;
        uint8_t id[PEMN_KEYID_BYTES];
        pemn_key_id(&keys[k], id);
        int at = find_sig(env, id);
        if (at >= 0 && crypto_sign_verify_detached(env->sigs[at].sig, m, n, keys[k].bytes) == 0)
            good++;
    }
    free(m);
    if (n_valid)
        *n_valid = good;
    if (good < threshold)
        return proto_err(err, PEMN_EUNTRUSTED, PEMN_NO_OFFSET,
                         "%u of the %u required signatures are valid", good, threshold);
    return PEMN_OK;
}

static int sig_cmp(const void *a, const void *b)
{
    return memcmp(((const struct env_sig *)a)->id, ((const struct env_sig *)b)->id,
                  PEMN_KEYID_BYTES);
}

pemn_rc pemn_envelope_serialize(const pemn_envelope *env, char **out, size_t *out_len,
                                struct pemn_err *err)
{
    if (!env || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    struct env_sig sorted[PEMN_TRUST_MAX_SIGS];
    memcpy(sorted, env->sigs, env->n_sigs * sizeof sorted[0]);
    qsort(sorted, env->n_sigs, sizeof sorted[0], sig_cmp);
    json_t *arr = json_array(), *doc = json_object();
    pemn_rc rc = PEMN_OK;
    if (!arr || !doc)
        rc = PEMN_ENOMEM;
    for (size_t i = 0; !rc && i < env->n_sigs; i++) {
        char kid[2 * PEMN_KEYID_BYTES + 1], sig[2 * PEMN_SIG_BYTES + 1];
        proto_hex(sorted[i].id, PEMN_KEYID_BYTES, kid);
        proto_hex(sorted[i].sig, PEMN_SIG_BYTES, sig);
        if (json_array_append_new(arr, json_pack("{s:s,s:s}", "keyid", kid, "sig", sig)))
            rc = PEMN_ENOMEM;
    }
    if (!rc && (json_object_set(doc, "signed", env->signed_obj) ||
                json_object_set(doc, "signatures", arr)))
        rc = PEMN_ENOMEM;
    json_decref(arr);
    char *s = NULL;
    size_t n = 0;
    if (!rc)
        rc = proto_json_dump_canonical(doc, &s, &n, err);
    else
        proto_err(err, rc, PEMN_NO_OFFSET, "out of memory");
    json_decref(doc);
    if (rc)
        return rc;
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    *out = t;
    if (out_len)
        *out_len = n + 1;
    return PEMN_OK;
}
