/*
 * proto/trust_root.c — the root of trust: parsing, chain links, expiry, getters, package
 * checks (docs/TRUST.md). Editing and signing are in proto/trust_edit.c.
 */
#include "proto/err.h"
#include "proto/trust_root_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BAD(...) proto_err(err, PEMN_ECORRUPT, PEMN_NO_OFFSET, __VA_ARGS__)

/* ---- small helpers ------------------------------------------------------------------------- */
static int id_cmp(const uint8_t *a, const uint8_t *b)
{
    return memcmp(a, b, PEMN_KEYID_BYTES);
}

int proto_root_find_key(const struct root_key *v, size_t n, const uint8_t id[PEMN_KEYID_BYTES])
{
    for (size_t i = 0; i < n; i++)
        if (id_cmp(v[i].id, id) == 0)
            return (int)i;
    return -1;
}

int proto_root_find_pub(const pemn_root *r, const uint8_t id[PEMN_KEYID_BYTES])
{
    for (size_t i = 0; i < r->n_pubs; i++)
        if (id_cmp(r->pubs[i].key.id, id) == 0)
            return (int)i;
    return -1;
}

static int rev_find(const pemn_root *r, const uint8_t id[PEMN_KEYID_BYTES])
{
    for (size_t i = 0; i < r->n_revoked; i++)
        if (id_cmp(r->revoked[i], id) == 0)
            return (int)i;
    return -1;
}

void proto_root_clear(pemn_root *r)
{
    free(r->keys);
    free(r->mkeys);
    for (size_t i = 0; i < r->n_pubs; i++) {
        for (size_t j = 0; j < r->pubs[i].n_pat; j++)
            free(r->pubs[i].pat[j]);
        free(r->pubs[i].pat);
    }
    free(r->pubs);
    for (size_t i = 0; i < r->n_thr; i++)
        free(r->thr[i].pattern);
    free(r->thr);
    free(r->revoked);
    pemn_envelope_free(r->env);
    free(r->bytes);
    memset(r, 0, sizeof *r);
}

void pemn_root_free(pemn_root *root)
{
    if (!root)
        return;
    proto_root_clear(root);
    free(root);
}

/* ---- patterns ------------------------------------------------------------------------------ */
static bool pat_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '*';
}

bool pemn_pattern_valid(const char *p)
{
    if (!p)
        return false;
    size_t n = 0;
    for (; p[n]; n++)
        if (n >= PEMN_MAX_LABEL || !pat_char(p[n]))
            return false;
    return n > 0;
}

/* Glob with '*' only: greedy with one backtrack point, O(len(p) * len(s)). */
bool pemn_pattern_match(const char *p, const char *s)
{
    if (!p || !s)
        return false;
    const char *star = NULL, *mark = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            mark = s;
        } else if (*p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++mark;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* ---- parsing ------------------------------------------------------------------------------- */
static pemn_rc parse_hex_key(json_t *v, const char *keyid, struct root_key *out,
                             struct pemn_err *err)
{
    if (!json_is_string(v) || json_string_length(v) != 2 * PEMN_PUBKEY_BYTES ||
        proto_unhex(json_string_value(v), 2 * PEMN_PUBKEY_BYTES, out->key.bytes) != 0)
        return BAD("key %s: not 64 hex digits", keyid);
    pemn_key_id(&out->key, out->id);
    char want[PEMN_KEYID_TEXT_MAX];
    pemn_keyid_format(out->id, want);
    if (strcmp(want, keyid) != 0)
        return BAD("key id %s does not match its key (%s)", keyid, want);
    return PEMN_OK;
}

static int key_sort(const void *a, const void *b)
{
    return id_cmp(((const struct root_key *)a)->id, ((const struct root_key *)b)->id);
}

/* An object keyid -> hex key, into a new array sorted by id. */
static pemn_rc parse_keymap(json_t *obj, const char *what, size_t min, size_t max,
                            struct root_key **out, size_t *n_out, struct pemn_err *err)
{
    if (!json_is_object(obj))
        return BAD("\"%s\" is not an object", what);
    size_t n = json_object_size(obj);
    if (n < min || n > max)
        return proto_err(err, n > max ? PEMN_ETOOBIG : PEMN_ECORRUPT, PEMN_NO_OFFSET,
                         "\"%s\" has %zu keys, allowed %zu..%zu", what, n, min, max);
    struct root_key *v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    size_t i = 0;
    const char *k;
    json_t *m;
    json_object_foreach(obj, k, m)
    {
        pemn_rc rc = parse_hex_key(m, k, &v[i++], err);
        if (rc) {
            free(v);
            return rc;
        }
    }
    qsort(v, n, sizeof *v, key_sort);
    *out = v;
    *n_out = n;
    return PEMN_OK;
}

static pemn_rc get_int(json_t *sd, const char *name, int64_t min, int64_t max, int64_t *out,
                       struct pemn_err *err)
{
    json_t *v = json_object_get(sd, name);
    if (!json_is_integer(v))
        return BAD("\"%s\" is missing or not an integer", name);
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return BAD("\"%s\" = %lld outside [%lld, %lld]", name, (long long)x, (long long)min,
                   (long long)max);
    *out = (int64_t)x;
    return PEMN_OK;
}

/* A sorted array of unique strings, each accepted by ok(). */
static pemn_rc parse_sorted_strings(json_t *arr, const char *what, size_t min, size_t max,
                                    bool (*ok)(const char *), struct pemn_err *err)
{
    if (!json_is_array(arr))
        return BAD("%s is not an array", what);
    size_t n = json_array_size(arr);
    if (n < min || n > max)
        return proto_err(err, n > max ? PEMN_ETOOBIG : PEMN_ECORRUPT, PEMN_NO_OFFSET,
                         "%s has %zu entries, allowed %zu..%zu", what, n, min, max);
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(arr, i);
        if (!json_is_string(s) || !ok(json_string_value(s)))
            return BAD("%s[%zu] is not valid", what, i);
        if (prev && strcmp(prev, json_string_value(s)) >= 0)
            return BAD("%s is not sorted and unique at [%zu]", what, i);
        prev = json_string_value(s);
    }
    return PEMN_OK;
}

static bool keyid_text_ok(const char *s)
{
    uint8_t id[PEMN_KEYID_BYTES];
    if (strlen(s) != 2 * PEMN_KEYID_BYTES)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return proto_unhex(s, 2 * PEMN_KEYID_BYTES, id) == 0;
}

static int pub_sort(const void *a, const void *b)
{
    return id_cmp(((const struct root_pub *)a)->key.id, ((const struct root_pub *)b)->key.id);
}

static pemn_rc parse_publishers(pemn_root *r, json_t *obj, struct pemn_err *err)
{
    if (!json_is_object(obj))
        return BAD("\"publishers\" is not an object");
    size_t n = json_object_size(obj);
    if (n > PEMN_ROOT_MAX_PUBLISHERS)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "%zu publishers, at most %u", n,
                         PEMN_ROOT_MAX_PUBLISHERS);
    r->pubs = calloc(n ? n : 1, sizeof *r->pubs);
    if (!r->pubs)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    const char *k;
    json_t *m;
    json_object_foreach(obj, k, m)
    {
        struct root_pub *p = &r->pubs[r->n_pubs];
        json_t *key = json_object_get(m, "key"), *models = json_object_get(m, "models");
        if (!json_is_object(m) || json_object_size(m) != 2 || !key || !models)
            return BAD("publisher %s is not {\"key\", \"models\"}", k);
        pemn_rc rc = parse_hex_key(key, k, &p->key, err);
        if (!rc)
            rc = parse_sorted_strings(models, "publisher models", 1, PEMN_ROOT_MAX_PATTERNS,
                                      pemn_pattern_valid, err);
        if (rc)
            return rc;
        size_t np = json_array_size(models);
        p->pat = calloc(np, sizeof *p->pat);
        if (!p->pat)
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        r->n_pubs++;
        for (size_t j = 0; j < np; j++) {
            p->pat[j] = strdup(json_string_value(json_array_get(models, j)));
            if (!p->pat[j])
                return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
            p->n_pat++;
        }
    }
    qsort(r->pubs, r->n_pubs, sizeof *r->pubs, pub_sort);
    return PEMN_OK;
}

static pemn_rc parse_thresholds(pemn_root *r, json_t *obj, struct pemn_err *err)
{
    if (!json_is_object(obj))
        return BAD("\"model_thresholds\" is not an object");
    size_t n = json_object_size(obj);
    if (n > PEMN_ROOT_MAX_THRESHOLDS)
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "%zu model thresholds, at most %u", n,
                         PEMN_ROOT_MAX_THRESHOLDS);
    r->thr = calloc(n ? n : 1, sizeof *r->thr);
    if (!r->thr)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    const char *k;
    json_t *m;
    json_object_foreach(obj, k, m)
    {
        if (!pemn_pattern_valid(k))
            return BAD("model threshold pattern \"%.64s\" is not valid", k);
        if (!json_is_integer(m) || json_integer_value(m) < 2 ||
            json_integer_value(m) > PEMN_ROOT_MAX_THRESHOLD)
            return BAD("threshold of \"%s\" is not an integer in [2, %u]", k,
                       PEMN_ROOT_MAX_THRESHOLD);
        r->thr[r->n_thr].pattern = strdup(k);
        if (!r->thr[r->n_thr].pattern)
            return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        r->thr[r->n_thr++].threshold = (unsigned)json_integer_value(m);
    }
    return PEMN_OK;
}

static pemn_rc parse_revoked(pemn_root *r, json_t *arr, struct pemn_err *err)
{
    pemn_rc rc =
        parse_sorted_strings(arr, "\"revoked\"", 0, PEMN_ROOT_MAX_REVOKED, keyid_text_ok, err);
    if (rc)
        return rc;
    size_t n = json_array_size(arr);
    r->revoked = calloc(n ? n : 1, sizeof *r->revoked);
    if (!r->revoked)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    for (size_t i = 0; i < n; i++)
        (void)proto_unhex(json_string_value(json_array_get(arr, i)), 2 * PEMN_KEYID_BYTES,
                          r->revoked[i]);
    r->n_revoked = n;
    return PEMN_OK;
}

/* Cross-field rules: no key both named and revoked; the online metadata key holds no other
 * role (a compromised server must not be able to sign packages or roots). */
pemn_rc proto_root_check_roles(const pemn_root *r, struct pemn_err *err)
{
    char hex[PEMN_KEYID_TEXT_MAX];
    for (size_t i = 0; i < r->n_revoked; i++) {
        const uint8_t *id = r->revoked[i];
        if (proto_root_find_key(r->keys, r->n_keys, id) >= 0 ||
            proto_root_find_key(r->mkeys, r->n_mkeys, id) >= 0 || proto_root_find_pub(r, id) >= 0) {
            pemn_keyid_format(id, hex);
            return BAD("key %s is both revoked and named", hex);
        }
    }
    for (size_t i = 0; i < r->n_mkeys; i++) {
        const uint8_t *id = r->mkeys[i].id;
        if (proto_root_find_key(r->keys, r->n_keys, id) >= 0 || proto_root_find_pub(r, id) >= 0) {
            pemn_keyid_format(id, hex);
            return BAD("metadata key %s is also a root or publisher key", hex);
        }
    }
    return PEMN_OK;
}

static const char *const root_fields[] = {
    "_type",          "spec_version",  "version",    "expires",          "root_keys",
    "root_threshold", "metadata_keys", "publishers", "model_thresholds", "revoked",
};
#define N_ROOT_FIELDS (sizeof root_fields / sizeof root_fields[0])

static pemn_rc parse_signed(pemn_root *r, json_t *sd, struct pemn_err *err)
{
    if (strcmp(json_string_value(json_object_get(sd, "_type")), PEMN_ROOT_TYPE) != 0)
        return BAD("\"_type\" is not \"%s\"", PEMN_ROOT_TYPE);
    int64_t spec, version, expires, thr;
    pemn_rc rc = get_int(sd, "spec_version", 1, INT64_MAX, &spec, err);
    if (rc)
        return rc;
    if (spec != PEMN_ROOT_SPEC_VERSION)
        return proto_err(err, PEMN_EVERSION, PEMN_NO_OFFSET,
                         "root spec_version %lld; this library reads %d", (long long)spec,
                         PEMN_ROOT_SPEC_VERSION);
    /* a later spec_version may add fields: the version is judged first */
    const char *k;
    json_t *m;
    json_object_foreach(sd, k, m)
    {
        size_t i = 0;
        while (i < N_ROOT_FIELDS && strcmp(root_fields[i], k) != 0)
            i++;
        if (i == N_ROOT_FIELDS)
            return BAD("unknown field \"%.64s\" in a root", k);
    }
    for (size_t i = 0; i < N_ROOT_FIELDS; i++)
        if (!json_object_get(sd, root_fields[i]))
            return BAD("a root needs \"%s\"", root_fields[i]);
    if ((rc = get_int(sd, "version", 1, INT64_MAX, &version, err)) ||
        (rc = get_int(sd, "expires", 1, INT64_MAX, &expires, err)) ||
        (rc = parse_keymap(json_object_get(sd, "root_keys"), "root_keys", 1, PEMN_ROOT_MAX_KEYS,
                           &r->keys, &r->n_keys, err)) ||
        (rc = get_int(sd, "root_threshold", 1, (int64_t)r->n_keys, &thr, err)) ||
        (rc = parse_keymap(json_object_get(sd, "metadata_keys"), "metadata_keys", 0,
                           PEMN_ROOT_MAX_KEYS, &r->mkeys, &r->n_mkeys, err)) ||
        (rc = parse_publishers(r, json_object_get(sd, "publishers"), err)) ||
        (rc = parse_thresholds(r, json_object_get(sd, "model_thresholds"), err)) ||
        (rc = parse_revoked(r, json_object_get(sd, "revoked"), err)))
        return rc;
    r->version = (uint64_t)version;
    r->expires = expires;
    r->threshold = (unsigned)thr;
    return proto_root_check_roles(r, err);
}

pemn_rc proto_root_self_check(const pemn_root *r, struct pemn_err *err)
{
    struct pemn_pubkey keys[PEMN_ROOT_MAX_KEYS];
    for (size_t i = 0; i < r->n_keys; i++)
        keys[i] = r->keys[i].key;
    unsigned good = 0;
    pemn_rc rc = pemn_envelope_verify(r->env, keys, r->n_keys, r->threshold, &good, NULL);
    if (rc)
        return proto_err(err, rc == PEMN_EUNTRUSTED ? PEMN_EUNTRUSTED : rc, PEMN_NO_OFFSET,
                         "root version %llu: %u of its %u required root signatures are valid",
                         (unsigned long long)r->version, good, r->threshold);
    return PEMN_OK;
}

pemn_rc pemn_root_parse(const void *data, size_t len, pemn_root **out, struct pemn_err *err)
{
    if (!out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    pemn_root *r = calloc(1, sizeof *r);
    if (!r)
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    pemn_rc rc = pemn_envelope_parse(data, len, &r->env, err);
    if (!rc)
        rc = parse_signed(r, (json_t *)proto_envelope_json(r->env), err);
    if (!rc) {
        /* the structure rebuilt from what was read must be exactly what was signed */
        json_t *again = proto_root_to_json(r);
        char *canon = NULL;
        size_t n = 0;
        if (!again)
            rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        else
            rc = proto_json_dump_canonical(again, &canon, &n, err);
        size_t sn;
        const char *sd = pemn_envelope_signed(r->env, &sn);
        if (!rc && (n != sn || memcmp(canon, sd, n) != 0))
            rc = BAD("root is not in canonical form");
        free(canon);
        json_decref(again);
    }
    if (!rc)
        rc = proto_root_self_check(r, err);
    if (!rc) {
        r->bytes = malloc(len ? len : 1);
        if (!r->bytes)
            rc = proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
        else {
            memcpy(r->bytes, data, len);
            r->bytes_len = len;
        }
    }
    if (rc) {
        pemn_root_free(r);
        return rc;
    }
    *out = r;
    return PEMN_OK;
}

pemn_rc pemn_root_load(const char *path, pemn_root **out, struct pemn_err *err)
{
    if (!path || !out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return proto_err(err, errno == ENOENT ? PEMN_ENOTFOUND : PEMN_EIO, PEMN_NO_OFFSET, "%s: %s",
                         path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: not a regular file", path);
    }
    if (st.st_size > (off_t)PEMN_TRUST_MAX_BYTES) {
        close(fd);
        return proto_err(err, PEMN_ETOOBIG, PEMN_NO_OFFSET, "%s: over %u bytes", path,
                         PEMN_TRUST_MAX_BYTES);
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = malloc(n ? n : 1);
    if (!buf) {
        close(fd);
        return proto_err(err, PEMN_ENOMEM, PEMN_NO_OFFSET, "out of memory");
    }
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    pemn_rc rc = got == n ? pemn_root_parse(buf, n, out, err)
                          : proto_err(err, PEMN_EIO, PEMN_NO_OFFSET, "%s: short read", path);
    free(buf);
    if (rc && err && rc != PEMN_EIO) {
        char tmp[PEMN_ERR_MSG_MAX];
        snprintf(tmp, sizeof tmp, "%s", err->msg);
        proto_err(err, rc, err->offset, "%s: %s", path, tmp);
    }
    return rc;
}

/* ---- chain and expiry ------------------------------------------------------------------------ */
pemn_rc pemn_root_verify_next(const pemn_root *prev, const pemn_root *next, struct pemn_err *err)
{
    if (!prev || !next || !prev->env || !next->env)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    if (prev->version == UINT64_MAX || next->version != prev->version + 1)
        return proto_err(err, PEMN_EVERSION, PEMN_NO_OFFSET,
                         "root version %llu does not follow version %llu",
                         (unsigned long long)next->version, (unsigned long long)prev->version);
    struct pemn_pubkey keys[PEMN_ROOT_MAX_KEYS];
    for (size_t i = 0; i < prev->n_keys; i++)
        keys[i] = prev->keys[i].key;
    unsigned good = 0;
    pemn_rc rc = pemn_envelope_verify(next->env, keys, prev->n_keys, prev->threshold, &good, NULL);
    if (rc)
        return proto_err(err, rc, PEMN_NO_OFFSET,
                         "root version %llu: %u of the %u required signatures by version %llu's "
                         "root keys are valid",
                         (unsigned long long)next->version, good, prev->threshold,
                         (unsigned long long)prev->version);
    return PEMN_OK;
}

pemn_rc pemn_root_parse_next(const pemn_root *prev, const void *data, size_t len, pemn_root **out,
                             struct pemn_err *err)
{
    if (!out)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    *out = NULL;
    pemn_root *r = NULL;
    pemn_rc rc = pemn_root_parse(data, len, &r, err);
    if (!rc)
        rc = pemn_root_verify_next(prev, r, err);
    if (rc) {
        pemn_root_free(r);
        return rc;
    }
    *out = r;
    return PEMN_OK;
}

pemn_rc pemn_root_check_expiry(const pemn_root *root, int64_t now, struct pemn_err *err)
{
    if (!root)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "no root");
    if (now >= root->expires)
        return proto_err(
            err, PEMN_EEXPIRED, PEMN_NO_OFFSET, "root version %llu expired at %lld (now %lld)",
            (unsigned long long)root->version, (long long)root->expires, (long long)now);
    return PEMN_OK;
}

/* ---- getters ------------------------------------------------------------------------------- */
uint64_t pemn_root_version(const pemn_root *root)
{
    return root ? root->version : 0;
}
int64_t pemn_root_expires(const pemn_root *root)
{
    return root ? root->expires : 0;
}
const uint8_t *pemn_root_bytes(const pemn_root *root, size_t *len)
{
    if (len)
        *len = root && root->bytes ? root->bytes_len : 0;
    return root ? root->bytes : NULL;
}
const char *pemn_root_signed(const pemn_root *root, size_t *len)
{
    if (len)
        *len = 0;
    return root && root->env ? pemn_envelope_signed(root->env, len) : NULL;
}
pemn_rc pemn_root_digest(const pemn_root *root, uint8_t out[PEMN_DIGEST_BYTES])
{
    if (!root || !root->bytes)
        return PEMN_EINVAL;
    pemn_sha256(root->bytes, root->bytes_len, out);
    return PEMN_OK;
}
unsigned pemn_root_threshold(const pemn_root *root)
{
    return root ? root->threshold : 0;
}
size_t pemn_root_key_count(const pemn_root *root)
{
    return root ? root->n_keys : 0;
}
const struct pemn_pubkey *pemn_root_key(const pemn_root *root, size_t i)
{
    return root && i < root->n_keys ? &root->keys[i].key : NULL;
}
size_t pemn_root_metadata_key_count(const pemn_root *root)
{
    return root ? root->n_mkeys : 0;
}
const struct pemn_pubkey *pemn_root_metadata_key(const pemn_root *root, size_t i)
{
    return root && i < root->n_mkeys ? &root->mkeys[i].key : NULL;
}
bool pemn_root_is_metadata_key(const pemn_root *root, const struct pemn_pubkey *pk)
{
    if (!root || !pk)
        return false;
    uint8_t id[PEMN_KEYID_BYTES];
    pemn_key_id(pk, id);
    int i = proto_root_find_key(root->mkeys, root->n_mkeys, id);
    return i >= 0 && rev_find(root, id) < 0 &&
           sodium_memcmp(root->mkeys[i].key.bytes, pk->bytes, PEMN_PUBKEY_BYTES) == 0;
}
pemn_rc pemn_root_check_metadata(const pemn_root *root, const pemn_envelope *env,
                                 struct pemn_err *err)
{
    if (!root || !env)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    struct pemn_pubkey keys[PEMN_ROOT_MAX_KEYS];
    size_t n = 0;
    for (size_t i = 0; i < root->n_mkeys; i++)
        if (rev_find(root, root->mkeys[i].id) < 0) /* never true for a parsed root */
            keys[n++] = root->mkeys[i].key;
    if (n && pemn_envelope_verify(env, keys, n, 1, NULL, NULL) == PEMN_OK)
        return PEMN_OK;
    return proto_err(err, PEMN_EUNTRUSTED, PEMN_NO_OFFSET,
                     "signed by no metadata key of root version %llu",
                     (unsigned long long)root->version);
}

size_t pemn_root_publisher_count(const pemn_root *root)
{
    return root ? root->n_pubs : 0;
}
pemn_rc pemn_root_publisher(const pemn_root *root, size_t i, struct pemn_root_publisher *out)
{
    if (!root || !out || i >= root->n_pubs)
        return PEMN_ENOTFOUND;
    out->key = root->pubs[i].key.key;
    memcpy(out->id, root->pubs[i].key.id, PEMN_KEYID_BYTES);
    out->n_patterns = root->pubs[i].n_pat;
    out->patterns = (const char *const *)root->pubs[i].pat;
    return PEMN_OK;
}
size_t pemn_root_model_threshold_count(const pemn_root *root)
{
    return root ? root->n_thr : 0;
}
pemn_rc pemn_root_model_threshold_at(const pemn_root *root, size_t i, const char **pattern,
                                     unsigned *threshold)
{
    if (!root || i >= root->n_thr)
        return PEMN_ENOTFOUND;
    if (pattern)
        *pattern = root->thr[i].pattern;
    if (threshold)
        *threshold = root->thr[i].threshold;
    return PEMN_OK;
}
unsigned pemn_root_model_threshold(const pemn_root *root, const char *model)
{
    unsigned t = 1;
    for (size_t i = 0; root && model && i < root->n_thr; i++)
        if (root->thr[i].threshold > t && pemn_pattern_match(root->thr[i].pattern, model))
            t = root->thr[i].threshold;
    return t;
}
size_t pemn_root_revoked_count(const pemn_root *root)
{
    return root ? root->n_revoked : 0;
}
pemn_rc pemn_root_revoked_at(const pemn_root *root, size_t i, uint8_t id[PEMN_KEYID_BYTES])
{
    if (!root || i >= root->n_revoked)
        return PEMN_ENOTFOUND;
    memcpy(id, root->revoked[i], PEMN_KEYID_BYTES);
    return PEMN_OK;
}
bool pemn_root_is_revoked(const pemn_root *root, const uint8_t id[PEMN_KEYID_BYTES])
{
    return root && id && rev_find(root, id) >= 0;
}

/* ---- package checks ------------------------------------------------------------------------ */
static bool pub_allows(const struct root_pub *p, const char *model)
{
    for (size_t j = 0; j < p->n_pat; j++)
        if (pemn_pattern_match(p->pat[j], model))
            return true;
    return false;
}

pemn_rc pemn_root_check_signers(const pemn_root *root, const char *model,
                                const struct pemn_pubkey *signers, size_t n, struct pemn_err *err)
{
    if (!root || !model || (!signers && n))
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    unsigned need = pemn_root_model_threshold(root, model), good = 0;
    char hex[PEMN_KEYID_TEXT_MAX];
    const char *why = NULL;
    for (size_t i = 0; i < n; i++) {
        uint8_t id[PEMN_KEYID_BYTES];
        pemn_key_id(&signers[i], id);
        pemn_keyid_format(id, hex);
        if (rev_find(root, id) >= 0)
            return proto_err(err, PEMN_EREVOKED, PEMN_NO_OFFSET,
                             "signer %s is revoked by root version %llu", hex,
                             (unsigned long long)root->version);
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++)
            dup = memcmp(signers[j].bytes, signers[i].bytes, PEMN_PUBKEY_BYTES) == 0;
        if (dup)
            continue;
        int at = proto_root_find_pub(root, id);
        if (at < 0 ||
            sodium_memcmp(root->pubs[at].key.key.bytes, signers[i].bytes, PEMN_PUBKEY_BYTES)) {
            why = "is not a publisher";
            continue;
        }
        if (!pub_allows(&root->pubs[at], model)) {
            why = "may not sign this model";
            continue;
        }
        good++;
    }
    if (good >= need)
        return PEMN_OK;
    if (n == 1 && why)
        return proto_err(err, PEMN_EUNTRUSTED, PEMN_NO_OFFSET,
                         "signer %s %s (model %.128s, root version %llu)", hex, why, model,
                         (unsigned long long)root->version);
    return proto_err(err, PEMN_EUNTRUSTED, PEMN_NO_OFFSET,
                     "model %.128s needs %u signatures by its publishers, the package has %u "
                     "(root version %llu)",
                     model, need, good, (unsigned long long)root->version);
}

pemn_rc pemn_root_check_package(const pemn_root *root, const char *model, const pemn_pkg *pkg,
                                struct pemn_err *err)
{
    if (!root || !pkg)
        return proto_err(err, PEMN_EINVAL, PEMN_NO_OFFSET, "invalid arguments");
    pemn_rc rc = pemn_pkg_verify_signatures(pkg, err);
    if (rc)
        return rc;
    struct pemn_pkg_info info;
    rc = pemn_pkg_info(pkg, &info);
    if (rc)
        return proto_err(err, rc, PEMN_NO_OFFSET, "package info: %s", pemn_strerror(rc));
    if (model && strcmp(model, info.name) != 0)
        return proto_err(err, PEMN_EUNTRUSTED, PEMN_NO_OFFSET,
                         "package is model %.128s, not %.128s", info.name, model);
    uint32_t n = pemn_pkg_signer_count(pkg);
    struct pemn_pubkey signers[PEMN_PKG_MAX_SIGNERS];
    for (uint32_t i = 0; i < n && i < PEMN_PKG_MAX_SIGNERS; i++)
        if ((rc = pemn_pkg_signer(pkg, i, &signers[i], NULL)))
            return proto_err(err, rc, PEMN_NO_OFFSET, "signer %u: %s", i, pemn_strerror(rc));
    return pemn_root_check_signers(root, info.name, signers,
                                   n < PEMN_PKG_MAX_SIGNERS ? n : PEMN_PKG_MAX_SIGNERS, err);
}
