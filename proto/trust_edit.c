/*
 * proto/trust_edit.c — making roots: new, next version, modifiers, signing, serializing
 * (the offline side of docs/TRUST.md, used by `pemn root`).
 */
#include "proto/err.h"
#include "proto/trust_root_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- to JSON ------------------------------------------------------------------------------- */
static json_t *keymap(const struct root_key *v, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < n; i++) {
        char id[PEMN_KEYID_TEXT_MAX], hex[2 * PEMN_PUBKEY_BYTES + 1];
        pemn_keyid_format(v[i].id, id);
        proto_hex(v[i].key.bytes, PEMN_PUBKEY_BYTES, hex);
        if (json_object_set_new(o, id, json_string(hex))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static json_t *publishers(const pemn_root *r)
{
    json_t *o = json_object();
    for (size_t i = 0; o && i < r->n_pubs; i++) {
        const struct root_pub *p = &r->pubs[i];
        char id[PEMN_KEYID_TEXT_MAX], hex[2 * PEMN_PUBKEY_BYTES + 1];
        pemn_keyid_format(p->key.id, id);
        proto_hex(p->key.key.bytes, PEMN_PUBKEY_BYTES, hex);
        json_t *models = json_array();
        for (size_t j = 0; models && j < p->n_pat; j++)
            if (json_array_append_new(models, json_string(p->pat[j]))) {
                json_decref(models);
                models = NULL;
            }
        if (!models ||
            json_object_set_new(o, id, json_pack("{s:s,s:o}", "key", hex, "models", models))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *proto_root_to_json(const pemn_root *r)
{
    json_t *thr = json_object(), *rev = json_array();
    for (size_t i = 0; thr && i < r->n_thr; i++)
        if (json_object_set_new(thr, r->thr[i].pattern, json_integer(r->thr[i].threshold))) {
            json_decref(thr);
            thr = NULL;
        }
    for (size_t i = 0; rev && i < r->n_revoked; i++) {
        char id[PEMN_KEYID_TEXT_MAX];
        pemn_keyid_format(r->revoked[i], id);
        if (json_array_append_new(rev, json_string(id))) {
            json_decref(rev);
            rev = NULL;
        }
    }
    json_t *rk = keymap(r->keys, r->n_keys), *mk = keymap(r->mkeys, r->n_mkeys),
           *pubs = publishers(r);
    if (!thr || !rev || !rk || !mk || !pubs) {
        json_decref(thr);
        json_decref(rev);
        json_decref(rk);
        json_decref(mk);
        json_decref(pubs);
        return NULL;
    }
    /* "o" steals each reference, also when json_pack fails */
    return json_pack("{s:s,s:i,s:I,s:I,s:o,s:i,s:o,s:o,s:o,s:o}", "_type", PEMN_ROOT_TYPE,
                     "spec_version", PEMN_ROOT_SPEC_VERSION, "version", (json_int_t)r->version,
                     "expires", (json_int_t)r->expires, "root_keys", rk, "root_threshold",
                     (int)r->threshold, "metadata_keys", mk, "publishers", pubs, "model_thresholds",
                     thr, "revoked", rev);
}

/* ---- new / next ---------------------------------------------------------------------------- */
pemn_rc pemn_root_new(int64_t expires, pemn_root **out)
{
    if (!out)
        return PEMN_EINVAL;
    *out = NULL;
    if (expires <= 0)
        return PEMN_EINVAL;
    pemn_root *r = calloc(1, sizeof *r);
    if (!r)
        return PEMN_ENOMEM;
    r->version = 1;
    r->expires = expires;
    r->threshold = 1;
    *out = r;
    return PEMN_OK;
}

static void *dup_mem(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

pemn_rc pemn_root_next(const pemn_root *prev, pemn_root **out)
{
    if (!prev || !out)
        return PEMN_EINVAL;
    *out = NULL;
    if (prev->version >= (uint64_t)INT64_MAX)
        return PEMN_ETOOBIG;
    pemn_root *r = calloc(1, sizeof *r);
    if (!r)
        return PEMN_ENOMEM;
    r->version = prev->version + 1;
    r->expires = prev->expires;
    r->threshold = prev->threshold;
    r->keys = dup_mem(prev->keys, prev->n_keys * sizeof *r->keys);
    r->mkeys = dup_mem(prev->mkeys, prev->n_mkeys * sizeof *r->mkeys);
    r->revoked = dup_mem(prev->revoked, prev->n_revoked * sizeof *r->revoked);
    r->pubs = calloc(prev->n_pubs ? prev->n_pubs : 1, sizeof *r->pubs);
    r->thr = calloc(prev->n_thr ? prev->n_thr : 1, sizeof *r->thr);
    bool ok = r->keys && r->mkeys && r->revoked && r->pubs && r->thr;
    if (ok) {
        r->n_keys = prev->n_keys;
        r->n_mkeys = prev->n_mkeys;
        r->n_revoked = prev->n_revoked;
    }
    for (size_t i = 0; ok && i < prev->n_pubs; i++) {
        struct root_pub *p = &r->pubs[i];
        p->key = prev->pubs[i].key;
        p->pat = calloc(prev->pubs[i].n_pat, sizeof *p->pat);
        ok = p->pat != NULL;
        r->n_pubs++;
        for (size_t j = 0; ok && j < prev->pubs[i].n_pat; j++) {
            p->pat[j] = strdup(prev->pubs[i].pat[j]);
            ok = p->pat[j] != NULL;
            if (ok)
                p->n_pat++;
        }
    }
    for (size_t i = 0; ok && i < prev->n_thr; i++) {
        r->thr[i].pattern = strdup(prev->thr[i].pattern);
        r->thr[i].threshold = prev->thr[i].threshold;
        ok = r->thr[i].pattern != NULL;
        if (ok)
            r->n_thr++;
    }
    if (!ok) {
        pemn_root_free(r);
        return PEMN_ENOMEM;
    }
    *out = r;
    return PEMN_OK;
}

/* ---- modifiers ----------------------------------------------------------------------------- */
static void touched(pemn_root *r)
{
    pemn_envelope_free(r->env);
    r->env = NULL;
    free(r->bytes);
    r->bytes = NULL;
    r->bytes_len = 0;
}

static bool revoked(const pemn_root *r, const uint8_t *id)
{
    return pemn_root_is_revoked(r, id);
}

pemn_rc pemn_root_set_expires(pemn_root *root, int64_t expires)
{
    if (!root || expires <= 0)
        return PEMN_EINVAL;
    root->expires = expires;
    touched(root);
    return PEMN_OK;
}

pemn_rc pemn_root_set_threshold(pemn_root *root, unsigned threshold)
{
    if (!root || threshold < 1 || threshold > PEMN_ROOT_MAX_THRESHOLD)
        return PEMN_EINVAL;
    root->threshold = threshold;
    touched(root);
    return PEMN_OK;
}

/* Inserts k into the sorted array *v of *n (capacity grows by one). */
static pemn_rc key_insert(struct root_key **v, size_t *n, size_t max, const struct pemn_pubkey *pk)
{
    struct root_key k;
    k.key = *pk;
    pemn_key_id(pk, k.id);
    if (proto_root_find_key(*v, *n, k.id) >= 0)
        return PEMN_EEXIST;
    if (*n >= max)
        return PEMN_ETOOBIG;
    struct root_key *g = realloc(*v, (*n + 1) * sizeof *g);
    if (!g)
        return PEMN_ENOMEM;
    size_t at = 0;
    while (at < *n && memcmp(g[at].id, k.id, PEMN_KEYID_BYTES) < 0)
        at++;
    memmove(&g[at + 1], &g[at], (*n - at) * sizeof *g);
    g[at] = k;
    *v = g;
    (*n)++;
    return PEMN_OK;
}

static pemn_rc key_remove(struct root_key *v, size_t *n, const uint8_t *id)
{
    int at = proto_root_find_key(v, *n, id);
    if (at < 0)
        return PEMN_ENOTFOUND;
    memmove(&v[at], &v[at + 1], (*n - (size_t)at - 1) * sizeof *v);
    (*n)--;
    return PEMN_OK;
}

/* The metadata key must hold no other role, and no named key may be revoked. */
static pemn_rc role_ok(const pemn_root *r, const struct pemn_pubkey *pk, bool as_metadata)
{
    uint8_t id[PEMN_KEYID_BYTES];
    pemn_key_id(pk, id);
    if (revoked(r, id))
        return PEMN_EREVOKED;
    if (as_metadata)
        return proto_root_find_key(r->keys, r->n_keys, id) >= 0 || proto_root_find_pub(r, id) >= 0
                   ? PEMN_ECONFLICT
                   : PEMN_OK;
    return proto_root_find_key(r->mkeys, r->n_mkeys, id) >= 0 ? PEMN_ECONFLICT : PEMN_OK;
}

pemn_rc pemn_root_add_key(pemn_root *root, const struct pemn_pubkey *pk)
{
    if (!root || !pk)
        return PEMN_EINVAL;
    pemn_rc rc = role_ok(root, pk, false);
    if (!rc)
        rc = key_insert(&root->keys, &root->n_keys, PEMN_ROOT_MAX_KEYS, pk);
    if (!rc)
        touched(root);
    return rc;
}

pemn_rc pemn_root_remove_key(pemn_root *root, const uint8_t id[PEMN_KEYID_BYTES])
{
    if (!root || !id)
        return PEMN_EINVAL;
    pemn_rc rc = key_remove(root->keys, &root->n_keys, id);
    if (!rc)
        touched(root);
    return rc;
}

pemn_rc pemn_root_add_metadata_key(pemn_root *root, const struct pemn_pubkey *pk)
{
    if (!root || !pk)
        return PEMN_EINVAL;
    pemn_rc rc = role_ok(root, pk, true);
    if (!rc)
        rc = key_insert(&root->mkeys, &root->n_mkeys, PEMN_ROOT_MAX_KEYS, pk);
    if (!rc)
        touched(root);
    return rc;
}

pemn_rc pemn_root_remove_metadata_key(pemn_root *root, const uint8_t id[PEMN_KEYID_BYTES])
{
    if (!root || !id)
        return PEMN_EINVAL;
    pemn_rc rc = key_remove(root->mkeys, &root->n_mkeys, id);
    if (!rc)
        touched(root);
    return rc;
}

pemn_rc pemn_root_add_publisher(pemn_root *root, const struct pemn_pubkey *pk, const char *pattern)
{
    if (!root || !pk || !pemn_pattern_valid(pattern))
        return PEMN_EINVAL;
    pemn_rc rc = role_ok(root, pk, false);
    if (rc)
        return rc;
    uint8_t id[PEMN_KEYID_BYTES];
    pemn_key_id(pk, id);
    int at = proto_root_find_pub(root, id);
    if (at < 0) {
        if (root->n_pubs >= PEMN_ROOT_MAX_PUBLISHERS)
            return PEMN_ETOOBIG;
        struct root_pub *g = realloc(root->pubs, (root->n_pubs + 1) * sizeof *g);
        if (!g)
            return PEMN_ENOMEM;
        root->pubs = g;
        size_t i = 0;
        while (i < root->n_pubs && memcmp(g[i].key.id, id, PEMN_KEYID_BYTES) < 0)
            i++;
        memmove(&g[i + 1], &g[i], (root->n_pubs - i) * sizeof *g);
        memset(&g[i], 0, sizeof g[i]);
        g[i].key.key = *pk;
        memcpy(g[i].key.id, id, PEMN_KEYID_BYTES);
        root->n_pubs++;
        at = (int)i;
    }
    struct root_pub *p = &root->pubs[at];
    size_t j = 0;
    while (j < p->n_pat && strcmp(p->pat[j], pattern) < 0)
        j++;
    if (j < p->n_pat && strcmp(p->pat[j], pattern) == 0)
        return PEMN_EEXIST;
    if (p->n_pat >= PEMN_ROOT_MAX_PATTERNS)
        return PEMN_ETOOBIG;
    char *s = strdup(pattern);
    char **g = s ? realloc(p->pat, (p->n_pat + 1) * sizeof *g) : NULL;
    if (!g) {
        free(s);
        if (p->n_pat == 0) /* do not leave a publisher without patterns */
            (void)pemn_root_remove_publisher(root, id);
        return PEMN_ENOMEM;
    }
    memmove(&g[j + 1], &g[j], (p->n_pat - j) * sizeof *g);
    g[j] = s;
    p->pat = g;
    p->n_pat++;
    touched(root);
    return PEMN_OK;
}

pemn_rc pemn_root_remove_publisher(pemn_root *root, const uint8_t id[PEMN_KEYID_BYTES])
{
    if (!root || !id)
        return PEMN_EINVAL;
    int at = proto_root_find_pub(root, id);
    if (at < 0)
        return PEMN_ENOTFOUND;
    for (size_t j = 0; j < root->pubs[at].n_pat; j++)
        free(root->pubs[at].pat[j]);
    free(root->pubs[at].pat);
    memmove(&root->pubs[at], &root->pubs[at + 1],
            (root->n_pubs - (size_t)at - 1) * sizeof *root->pubs);
    root->n_pubs--;
    touched(root);
    return PEMN_OK;
}

pemn_rc pemn_root_set_model_threshold(pemn_root *root, const char *pattern, unsigned threshold)
{
    if (!root || !pemn_pattern_valid(pattern) || threshold < 1 ||
        threshold > PEMN_ROOT_MAX_THRESHOLD)
        return PEMN_EINVAL;
    size_t i = 0;
    while (i < root->n_thr && strcmp(root->thr[i].pattern, pattern) != 0)
        i++;
    if (i < root->n_thr) {
        if (threshold == 1) {
            free(root->thr[i].pattern);
            memmove(&root->thr[i], &root->thr[i + 1], (root->n_thr - i - 1) * sizeof *root->thr);
            root->n_thr--;
        } else {
            root->thr[i].threshold = threshold;
        }
        touched(root);
        return PEMN_OK;
    }
    if (threshold == 1)
        return PEMN_OK; /* the default: nothing to store */
    if (root->n_thr >= PEMN_ROOT_MAX_THRESHOLDS)
        return PEMN_ETOOBIG;
    char *s = strdup(pattern);
    struct root_thr *g = s ? realloc(root->thr, (root->n_thr + 1) * sizeof *g) : NULL;
    if (!g) {
        free(s);
        return PEMN_ENOMEM;
    }
    g[root->n_thr].pattern = s;
    g[root->n_thr].threshold = threshold;
    root->thr = g;
    root->n_thr++;
    touched(root);
    return PEMN_OK;
}

pemn_rc pemn_root_revoke(pemn_root *root, const uint8_t id[PEMN_KEYID_BYTES])
{
    if (!root || !id)
        return PEMN_EINVAL;
    if (proto_root_find_key(root->keys, root->n_keys, id) >= 0)
        return PEMN_EINVAL;
    if (revoked(root, id))
        return PEMN_EEXIST;
    if (root->n_revoked >= PEMN_ROOT_MAX_REVOKED)
        return PEMN_ETOOBIG;
    uint8_t(*g)[PEMN_KEYID_BYTES] = realloc(root->revoked, (root->n_revoked + 1) * sizeof *g);
    if (!g)
        return PEMN_ENOMEM;
    root->revoked = g;
    size_t i = 0;
    while (i < root->n_revoked && memcmp(g[i], id, PEMN_KEYID_BYTES) < 0)
        i++;
    memmove(&g[i + 1], &g[i], (root->n_revoked - i) * sizeof *g);
    memcpy(g[i], id, PEMN_KEYID_BYTES);
    root->n_revoked++;
    (void)pemn_root_remove_publisher(root, id);
    (void)key_remove(root->mkeys, &root->n_mkeys, id);
    touched(root);
    return PEMN_OK;
}

/* ---- signing and writing ------------------------------------------------------------------- */
static pemn_rc ensure_env(pemn_root *r, struct pemn_err *err)
{
    if (r->env)
        return PEMN_OK;
    json_t *j = proto_root_to_json(r);
    if (!j)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    pemn_rc rc = proto_envelope_from_json(j, &r->env, err);
    json_decref(j);
    return rc;
}

pemn_rc pemn_root_sign(pemn_root *root, const struct pemn_seckey *sk, struct pemn_err *err)
{
    if (!root || !sk)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    pemn_rc rc = ensure_env(root, err);
    if (!rc)
        rc = pemn_envelope_sign(root->env, sk, err);
    if (!rc) { /* the bytes no longer hold every signature */
        free(root->bytes);
        root->bytes = NULL;
        root->bytes_len = 0;
    }
    return rc;
}

pemn_rc pemn_root_serialize(pemn_root *root, char **out, size_t *out_len, struct pemn_err *err)
{
    if (!root || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    if (root->n_keys == 0)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "a root needs at least one root key");
    if (root->threshold > root->n_keys)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET,
                         "root threshold %u is more than the %zu root keys", root->threshold,
                         root->n_keys);
    pemn_rc rc = proto_root_check_roles(root, err);
    if (!rc)
        rc = ensure_env(root, err);
    if (!rc)
        rc = proto_root_self_check(root, err);
    char *text = NULL;
    size_t n = 0;
    if (!rc)
        rc = pemn_envelope_serialize(root->env, &text, &n, err);
    if (rc)
        return rc;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) {
        free(text);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    memcpy(b, text, n);
    free(root->bytes);
    root->bytes = b;
    root->bytes_len = n;
    *out = text;
    if (out_len)
        *out_len = n;
    return PEMN_OK;
}
