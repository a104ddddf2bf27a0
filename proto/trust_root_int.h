/*
 * proto/trust_root_int.h — the in-memory root (internal to proto/trust_*.c).
 *
 * Lists are kept sorted (keys and publishers by key id, patterns and revoked ids in byte
 * order) so that the JSON rebuilt from them is the canonical form that was signed.
 */
#ifndef PEMN_PROTO_TRUST_ROOT_INT_H
#define PEMN_PROTO_TRUST_ROOT_INT_H

#include "proto/trust_int.h"

struct root_key {
    struct pemn_pubkey key;
    uint8_t id[PEMN_KEYID_BYTES];
};

struct root_pub {
    struct root_key key;
    size_t n_pat;
    char **pat; /* sorted, unique */
};

struct root_thr {
    char *pattern;
    unsigned threshold; /* 2..PEMN_ROOT_MAX_THRESHOLD */
};

struct pemn_root {
    uint64_t version;
    int64_t expires;
    unsigned threshold;
    struct root_key *keys; /* sorted by id */
    size_t n_keys;
    struct root_key *mkeys; /* sorted by id */
    size_t n_mkeys;
    struct root_pub *pubs; /* sorted by id */
    size_t n_pubs;
    struct root_thr *thr; /* any order (a JSON object) */
    size_t n_thr;
    uint8_t (*revoked)[PEMN_KEYID_BYTES]; /* sorted */
    size_t n_revoked;
    pemn_envelope *env; /* signed content + signatures; NULL after a modification */
    uint8_t *bytes;     /* file bytes as parsed or serialized; NULL after a modification */
    size_t bytes_len;
};

int proto_root_find_key(const struct root_key *v, size_t n, const uint8_t id[PEMN_KEYID_BYTES]);
int proto_root_find_pub(const pemn_root *r, const uint8_t id[PEMN_KEYID_BYTES]);
pemn_rc proto_root_check_roles(const pemn_root *r, struct pemn_err *err);
/* At least threshold of the root's own keys signed r->env. */
pemn_rc proto_root_self_check(const pemn_root *r, struct pemn_err *err);
/* The "signed" object of r (new reference) or NULL when out of memory. */
json_t *proto_root_to_json(const pemn_root *r);
void proto_root_clear(pemn_root *r);

#endif
