/*
 * server/srv_rollout.c — stable rollout buckets and the abort rule (see srv_rollout.h).
 */
#include "server/srv_rollout.h"

#include "proto/err.h"

#include <math.h>
#include <sodium.h>
#include <string.h>

static const char bucket_domain[] = "pemn-rollout"; /* hashed with its NUL */

uint32_t srv_rollout_bucket(const char *rollout_id, const char *device_id)
{
    crypto_generichash_state st;
    uint8_t h[8];
    (void)pemn_init();
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)bucket_domain, sizeof bucket_domain);
    crypto_generichash_update(&st, (const unsigned char *)rollout_id, strlen(rollout_id) + 1);
    crypto_generichash_update(&st, (const unsigned char *)device_id, strlen(device_id));
    crypto_generichash_final(&st, h, sizeof h);
    return (uint32_t)(proto_le64(h) % SRV_ROLLOUT_BUCKETS);
}

bool srv_rollout_member(const char *rollout_id, const char *device_id, uint32_t percent_bp)
{
    if (percent_bp >= SRV_ROLLOUT_BUCKETS)
        return true;
    if (percent_bp == 0)
        return false;
    return srv_rollout_bucket(rollout_id, device_id) < percent_bp;
}

pemn_rc srv_percent_to_bp(double percent, uint32_t *bp)
{
    if (!isfinite(percent) || percent < 0.0 || percent > 100.0)
        return PEMN_EINVAL;
    *bp = (uint32_t)lround(percent * 100.0);
    return PEMN_OK;
}

double srv_bp_to_percent(uint32_t bp)
{
    return (double)bp / 100.0;
}

bool srv_rollout_should_abort(const struct srv_abort_rule *rule, uint64_t failed,
                              uint64_t reporting)
{
    if (!rule || rule->failure_bp == 0 || reporting == 0)
        return false;
    if (reporting < rule->min_devices)
        return false;
    if (failed > reporting)
        failed = reporting;
    /* failed / reporting >= failure_bp / 10000, in exact integer arithmetic; counts are far
     * below 2^50, so neither product overflows. */
    return (unsigned __int128)failed * SRV_ROLLOUT_BUCKETS >=
           (unsigned __int128)rule->failure_bp * reporting;
}

void srv_rollout_new_id(char out[33])
{
    uint8_t r[16];
    (void)pemn_init();
    randombytes_buf(r, sizeof r);
    proto_hex(r, sizeof r, out);
}
