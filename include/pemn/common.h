/*
 * pemn/common.h — result codes, the error struct, dtypes, digests.
 *
 * Contract: every fallible pemn function returns a pemn_rc (PEMN_OK == 0) and takes an
 * optional `struct pemn_err *err` (may be NULL) that receives the code, a byte offset into
 * the input where one applies, and a one-line message. The library never prints, never
 * exits and never asserts on input.
 *
 * Thread-safety: everything here is pure and thread-safe.
 */
#ifndef PEMN_COMMON_H
#define PEMN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PEMN_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define PEMN_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define PEMN_WARN_UNUSED
#endif

/* ---- result codes ------------------------------------------------------------------ */
typedef enum pemn_rc {
    PEMN_OK = 0,
    PEMN_ENOMEM,       /* allocation failed */
    PEMN_EINVAL,       /* bad argument or option */
    PEMN_EIO,          /* read/write/open failed (errno in the message) */
    PEMN_ECORRUPT,     /* malformed, truncated or inconsistent input */
    PEMN_EBADSIG,      /* signature does not verify */
    PEMN_EUNTRUSTED,   /* signature valid, signer not in the trusted set */
    PEMN_ENOTFOUND,    /* no such tensor / model / version / key */
    PEMN_EEXIST,       /* already exists */
    PEMN_ETOOBIG,      /* over a configured or format limit */
    PEMN_EVERSION,     /* unsupported format major version */
    PEMN_EDB,          /* storage (SQLite) error */
    PEMN_EHTTP,        /* HTTP transport or unexpected status */
    PEMN_EDIGEST,      /* content digest differs from the expected one */
    PEMN_EROLLBACK,    /* release lower than the installed one */
    PEMN_EAUTH,        /* missing/invalid token or insufficient scope */
    PEMN_ECONFLICT,    /* state conflict (e.g. different package under same version) */
    PEMN_ETIMEOUT,     /* deadline passed */
    PEMN_EUNSUPPORTED, /* valid but unknown generator / encoding / dtype for this op */
    PEMN_ECANCELED,    /* stopped by a callback or a signal */
    PEMN_EEXPIRED,     /* signed metadata (a root, a desired state) is past its expiry */
    PEMN_EREVOKED,     /* signer key revoked by the root of trust or the registry */
    PEMN_RC_COUNT_
} pemn_rc;

/* Static English text for a code ("corrupt input", ...). Never NULL. */
const char *pemn_strerror(pemn_rc rc);
/* Stable short identifier ("ECORRUPT", ...), for logs and JSON. Never NULL. */
const char *pemn_rc_name(pemn_rc rc);

#define PEMN_ERR_MSG_MAX 256
#define PEMN_NO_OFFSET UINT64_MAX
struct pemn_err {
    pemn_rc rc;
    uint64_t offset; /* byte offset in the input the error refers to, or PEMN_NO_OFFSET */
    char msg[PEMN_ERR_MSG_MAX];
};

/* ---- dtypes (the safetensors set) ----------------------------------------------------- */
typedef enum pemn_dtype {
    PEMN_DT_BOOL = 0,
    PEMN_DT_U8,
    PEMN_DT_I8,
    PEMN_DT_I16,
    PEMN_DT_U16,
    PEMN_DT_F16,
    PEMN_DT_BF16,
    PEMN_DT_I32,
    PEMN_DT_U32,
    PEMN_DT_F32,
    PEMN_DT_F64,
    PEMN_DT_I64,
    PEMN_DT_U64,
    PEMN_DT_F8_E4M3,
    PEMN_DT_F8_E5M2,
    PEMN_DT_COUNT_
} pemn_dtype;

/* Bytes per element (0 for an invalid dtype). */
size_t pemn_dtype_size(pemn_dtype dt);
/* safetensors spelling ("F32", "BOOL", ...); NULL for an invalid dtype. */
const char *pemn_dtype_name(pemn_dtype dt);
/* Parse a safetensors dtype name. PEMN_EINVAL when unknown. */
pemn_rc pemn_dtype_parse(const char *name, pemn_dtype *out);

#define PEMN_MAX_DIMS 8

/* ---- digests -------------------------------------------------------------------------- */
#define PEMN_DIGEST_BYTES 32
/* "sha256:" + 64 hex + NUL */
#define PEMN_DIGEST_TEXT_MAX 72
/* SHA-256 of a buffer (libsodium). */
void pemn_sha256(const void *data, size_t len, uint8_t out[PEMN_DIGEST_BYTES]);
/* Writes "sha256:<64 lowercase hex>" into out (PEMN_DIGEST_TEXT_MAX bytes). */
void pemn_digest_format(const uint8_t d[PEMN_DIGEST_BYTES], char out[PEMN_DIGEST_TEXT_MAX]);
/* Parses "sha256:<64 hex>" (hex case-insensitive). PEMN_EINVAL otherwise. */
pemn_rc pemn_digest_parse(const char *text, uint8_t out[PEMN_DIGEST_BYTES]);

/* Initialise libsodium once (idempotent, thread-safe). Every pemn entry point that needs
 * it calls it; exposed for programs that call libsodium themselves. */
pemn_rc pemn_init(void);

#ifdef __cplusplus
}
#endif
#endif
