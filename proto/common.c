/*
 * proto/common.c — result codes, error struct, dtypes, digests, library init.
 */
#include "proto/err.h"

#include <pemn/common.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *text;
} rc_table[PEMN_RC_COUNT_] = {
    [PEMN_OK] = {"OK", "success"},
    [PEMN_ENOMEM] = {"ENOMEM", "out of memory"},
    [PEMN_EINVAL] = {"EINVAL", "invalid argument"},
    [PEMN_EIO] = {"EIO", "input/output error"},
    [PEMN_ECORRUPT] = {"ECORRUPT", "corrupt or truncated data"},
    [PEMN_EBADSIG] = {"EBADSIG", "bad signature"},
    [PEMN_EUNTRUSTED] = {"EUNTRUSTED", "signer is not trusted"},
    [PEMN_ENOTFOUND] = {"ENOTFOUND", "not found"},
    [PEMN_EEXIST] = {"EEXIST", "already exists"},
    [PEMN_ETOOBIG] = {"ETOOBIG", "too large"},
    [PEMN_EVERSION] = {"EVERSION", "unsupported format version"},
    [PEMN_EDB] = {"EDB", "database error"},
    [PEMN_EHTTP] = {"EHTTP", "HTTP error"},
    [PEMN_EDIGEST] = {"EDIGEST", "digest mismatch"},
    [PEMN_EROLLBACK] = {"EROLLBACK", "release is older than the installed one"},
    [PEMN_EAUTH] = {"EAUTH", "not authorized"},
    [PEMN_ECONFLICT] = {"ECONFLICT", "conflict"},
    [PEMN_ETIMEOUT] = {"ETIMEOUT", "timed out"},
    [PEMN_EUNSUPPORTED] = {"EUNSUPPORTED", "unsupported"},
    [PEMN_ECANCELED] = {"ECANCELED", "canceled"},
    [PEMN_EEXPIRED] = {"EEXPIRED", "signed metadata has expired"},
    [PEMN_EREVOKED] = {"EREVOKED", "signer key is revoked"},
};

const char *pemn_strerror(pemn_rc rc)
{
    if ((unsigned)rc >= PEMN_RC_COUNT_)
        return "unknown error";
    return rc_table[rc].text;
}

const char *pemn_rc_name(pemn_rc rc)
{
    if ((unsigned)rc >= PEMN_RC_COUNT_)
        return "EUNKNOWN";
    return rc_table[rc].name;
}

pemn_rc proto_err(struct pemn_err *err, pemn_rc rc, uint64_t offset, const char *fmt, ...)
{
    if (!err)
        return rc;
    err->rc = rc;
    err->offset = offset;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(err->msg, sizeof err->msg, "%s", pemn_strerror(rc));
    return rc;
}

/* ---- dtypes ------------------------------------------------------------------------- */
static const struct {
    const char *name;
    size_t size;
} dt_table[PEMN_DT_COUNT_] = {
    [PEMN_DT_BOOL] = {"BOOL", 1},       [PEMN_DT_U8] = {"U8", 1},
    [PEMN_DT_I8] = {"I8", 1},           [PEMN_DT_I16] = {"I16", 2},
    [PEMN_DT_U16] = {"U16", 2},         [PEMN_DT_F16] = {"F16", 2},
    [PEMN_DT_BF16] = {"BF16", 2},       [PEMN_DT_I32] = {"I32", 4},
    [PEMN_DT_U32] = {"U32", 4},         [PEMN_DT_F32] = {"F32", 4},
    [PEMN_DT_F64] = {"F64", 8},         [PEMN_DT_I64] = {"I64", 8},
    [PEMN_DT_U64] = {"U64", 8},         [PEMN_DT_F8_E4M3] = {"F8_E4M3", 1},
    [PEMN_DT_F8_E5M2] = {"F8_E5M2", 1},
};

size_t pemn_dtype_size(pemn_dtype dt)
{
    return (unsigned)dt < PEMN_DT_COUNT_ ? dt_table[dt].size : 0;
}

const char *pemn_dtype_name(pemn_dtype dt)
{
    return (unsigned)dt < PEMN_DT_COUNT_ ? dt_table[dt].name : NULL;
}

pemn_rc pemn_dtype_parse(const char *name, pemn_dtype *out)
{
    if (!name || !out)
        return PEMN_EINVAL;
    for (unsigned i = 0; i < PEMN_DT_COUNT_; i++) {
        if (strcmp(name, dt_table[i].name) == 0) {
            *out = (pemn_dtype)i;
            return PEMN_OK;
        }
    }
    return PEMN_EINVAL;
}

/* ---- digests ------------------------------------------------------------------------ */
void proto_hex(const uint8_t *in, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int proto_unhex(const char *in, size_t n_hex, uint8_t *out)
{
    if (n_hex % 2)
        return -1;
    for (size_t i = 0; i < n_hex; i += 2) {
        int hi = hexval(in[i]), lo = hexval(in[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

void pemn_sha256(const void *data, size_t len, uint8_t out[PEMN_DIGEST_BYTES])
{
    (void)pemn_init();
    crypto_hash_sha256(out, data, len);
}

void pemn_digest_format(const uint8_t d[PEMN_DIGEST_BYTES], char out[PEMN_DIGEST_TEXT_MAX])
{
    memcpy(out, "sha256:", 7);
    proto_hex(d, PEMN_DIGEST_BYTES, out + 7);
}

pemn_rc pemn_digest_parse(const char *text, uint8_t out[PEMN_DIGEST_BYTES])
{
    if (!text || strncmp(text, "sha256:", 7) != 0 || strlen(text) != 7 + 2 * PEMN_DIGEST_BYTES)
        return PEMN_EINVAL;
    return proto_unhex(text + 7, 2 * PEMN_DIGEST_BYTES, out) == 0 ? PEMN_OK : PEMN_EINVAL;
}

pemn_rc pemn_init(void)
{
    /* sodium_init is itself thread-safe and idempotent: 0 first time, 1 afterwards. */
    return sodium_init() < 0 ? PEMN_EINVAL : PEMN_OK;
}
