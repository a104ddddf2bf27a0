/*
 * bench_trust — time of a root-chain walk on a device (docs/BENCHMARKS.md, "Root of trust").
 *
 *   bench_trust [LINKS] [REPEATS]      default 100 links (versions 1 -> 101), 20 repeats
 *
 * Builds a chain of LINKS+1 root versions in memory (2-of-3 root keys, a metadata key, 8
 * publishers, a revoked key; each version rotates one root key and is signed by the two
 * keys it shares with the previous version: a threshold of both), then times the walk a
 * device does:
 * pemn_root_parse_next for each version from the pinned v1 (parse, canonicalise, check,
 * verify its own threshold and the previous one's), and the expiry of the newest.
 * Peer, same run: the bare Ed25519 verifications that walk needs (libsodium
 * crypto_sign_verify_detached of the same messages, same count) — the floor any design
 * with these thresholds pays. Prints the median and best walk, per link, and the ratio.
 */
#include <pemn/trust.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void key(unsigned tag, struct pemn_seckey *sk, struct pemn_pubkey *pk)
{
    uint8_t seed[32];
    memset(seed, 0, sizeof seed);
    memcpy(seed, &tag, sizeof tag);
    crypto_sign_seed_keypair(pk->bytes, sk->bytes, seed);
}

static int die(const char *what, const struct pemn_err *e)
{
    fprintf(stderr, "bench_trust: %s: %s\n", what, e && e->msg[0] ? e->msg : "failed");
    return 1;
}

static unsigned parse_arg(const char *s, unsigned dflt)
{
    char *end;
    unsigned long v = s ? strtoul(s, &end, 10) : dflt;
    return s && (*end || v == 0 || v > 100000) ? dflt : (unsigned)v;
}

int main(int argc, char **argv)
{
    unsigned links = parse_arg(argc > 1 ? argv[1] : NULL, 100);
    unsigned reps = parse_arg(argc > 2 ? argv[2] : NULL, 20);
    if (pemn_init() != PEMN_OK)
        return 1;
    struct pemn_err e = {0};
    char **text = calloc(links + 1, sizeof *text);
    size_t *len = calloc(links + 1, sizeof *len);
    if (!text || !len)
        return 1;
    /* version 1: root keys 1000, 1001, 1002 (threshold 2) */
    pemn_root *r;
    if (pemn_root_new((int64_t)time(NULL) + 86400, &r))
        return die("new", NULL);
    struct pemn_seckey sk;
    struct pemn_pubkey pk;
    for (unsigned k = 0; k < 3; k++) {
        key(1000 + k, &sk, &pk);
        if (pemn_root_add_key(r, &pk))
            return die("add key", NULL);
    }
    (void)pemn_root_set_threshold(r, 2);
    key(1, &sk, &pk);
    (void)pemn_root_add_metadata_key(r, &pk);
    for (unsigned p = 0; p < 8; p++) {
        key(100 + p, &sk, &pk);
        (void)pemn_root_add_publisher(r, &pk, p % 2 ? "mnist-*" : "*");
    }
    uint8_t rid[PEMN_KEYID_BYTES];
    key(99, &sk, &pk);
    pemn_key_id(&pk, rid);
    (void)pemn_root_revoke(r, rid);
    for (unsigned k = 0; k < 2; k++) {
        key(1000 + k, &sk, &pk);
        if (pemn_root_sign(r, &sk, &e))
            return die("sign", &e);
    }
    if (pemn_root_serialize(r, &text[0], &len[0], &e))
        return die("serialize v1", &e);
    /* version v+1 replaces root key (1000 + v - 1) by (1000 + v + 2) and is signed by the
     * two keys both versions hold (1000 + v, 1000 + v + 1): 2 of 3 of each. */
    for (unsigned v = 1; v <= links; v++) {
        pemn_root *next;
        if (pemn_root_next(r, &next))
            return die("next", NULL);
        uint8_t id[PEMN_KEYID_BYTES];
        key(1000 + v - 1, &sk, &pk);
        pemn_key_id(&pk, id);
        (void)pemn_root_remove_key(next, id);
        key(1000 + v + 2, &sk, &pk);
        (void)pemn_root_add_key(next, &pk);
        for (unsigned k = v; k <= v + 1; k++) {
            key(1000 + k, &sk, &pk);
            if (pemn_root_sign(next, &sk, &e))
                return die("sign", &e);
        }
        if (pemn_root_serialize(next, &text[v], &len[v], &e))
            return die("serialize", &e);
        pemn_root_free(r);
        r = next;
    }
    pemn_root_free(r);

    /* the signatures the walk verifies, for the peer: v1's two once (its own threshold),
     * every later version's two twice (its own threshold and the previous one's) */
    size_t n_ver = 2 + 4 * (size_t)links;
    struct item {
        uint8_t *msg;
        size_t n;
        uint8_t sig[64];
        uint8_t pk[32];
    } *items = calloc(n_ver, sizeof *items);
    size_t ni = 0;
    for (unsigned v = 0; v <= links; v++) {
        pemn_envelope *env;
        if (pemn_envelope_parse(text[v], len[v], &env, &e))
            return die("envelope", &e);
        size_t cl;
        const char *canon = pemn_envelope_signed(env, &cl);
        for (unsigned pass = 0; pass < (v ? 2u : 1u); pass++)
            for (size_t s = 0; s < pemn_envelope_sig_count(env) && ni < n_ver; s++) {
                uint8_t kid[8];
                struct item *it = &items[ni++];
                (void)pemn_envelope_sig(env, s, kid, it->sig);
                it->msg = malloc(13 + cl);
                memcpy(it->msg, PEMN_JSON_SIG_DOMAIN, 13);
                memcpy(it->msg + 13, canon, cl);
                it->n = 13 + cl;
                for (unsigned k = 0; k < links + 4; k++) { /* the key of this id */
                    key(1000 + k, &sk, &pk);
                    uint8_t id[8];
                    pemn_key_id(&pk, id);
                    if (!memcmp(id, kid, 8)) {
                        memcpy(it->pk, pk.bytes, 32);
                        break;
                    }
                }
            }
        pemn_envelope_free(env);
    }
    sodium_memzero(&sk, sizeof sk);

    double *tw = calloc(reps, sizeof *tw), *tp = calloc(reps, sizeof *tp);
    size_t bytes = 0;
    for (unsigned v = 0; v <= links; v++)
        bytes += len[v];
    for (unsigned rep = 0; rep < reps; rep++) {
        double t0 = now_s();
        pemn_root *cur;
        if (pemn_root_parse(text[0], len[0], &cur, &e))
            return die("parse v1", &e);
        for (unsigned v = 1; v <= links; v++) {
            pemn_root *next;
            if (pemn_root_parse_next(cur, text[v], len[v], &next, &e))
                return die("walk", &e);
            pemn_root_free(cur);
            cur = next;
        }
        if (pemn_root_check_expiry(cur, (int64_t)time(NULL), &e))
            return die("expiry", &e);
        pemn_root_free(cur);
        double t1 = now_s();
        unsigned bad = 0;
        for (size_t i = 0; i < ni; i++)
            bad += crypto_sign_verify_detached(items[i].sig, items[i].msg, items[i].n,
                                               items[i].pk) != 0;
        double t2 = now_s();
        if (bad)
            return die("peer verification", NULL);
        tw[rep] = t1 - t0;
        tp[rep] = t2 - t1;
    }
    qsort(tw, reps, sizeof *tw, cmp_d);
    qsort(tp, reps, sizeof *tp, cmp_d);
    double mw = tw[reps / 2], mp = tp[reps / 2];
    printf("chain: %u links (versions 1..%u), %zu bytes of roots, %zu Ed25519 verifications "
           "in the peer\n",
           links, links + 1, bytes, ni);
    printf("pemn   root chain walk   median %8.3f ms  best %8.3f ms  (%.1f us/link)\n", mw * 1e3,
           tw[0] * 1e3, mw * 1e6 / links);
    printf("peer   bare Ed25519      median %8.3f ms  best %8.3f ms  (%.1f us/link)\n", mp * 1e3,
           tp[0] * 1e3, mp * 1e6 / links);
    printf("ratio  walk / bare verify = %.2fx (median), %.2fx (best)\n", mw / mp, tw[0] / tp[0]);
    for (size_t i = 0; i < ni; i++)
        free(items[i].msg);
    for (unsigned v = 0; v <= links; v++)
        free(text[v]);
    free(items);
    free(text);
    free(len);
    free(tw);
    free(tp);
    return 0;
}
