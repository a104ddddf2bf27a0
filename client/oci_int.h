/*
 * client/oci_int.h — one conversation with an OCI registry (client/oci_http.c), used by
 * client/oci.c: requests with retries, the auth challenge, OCI error bodies.
 */
#ifndef PEMN_CLIENT_OCI_INT_H
#define PEMN_CLIENT_OCI_INT_H

#include "client/client_int.h"

#include <pemn/oci.h>

#define OCI_MANIFEST_MAX (4u << 20) /* the distribution-spec's advice */
#define OCI_CONFIG_MAX (64u << 10)  /* a PEMN config blob is a few hundred bytes */

struct oci_sess {
    pemn_client *c; /* base "http(s)://HOST", carries the current credentials */
    struct pemn_oci_ref ref;
    const struct pemn_oci_options *o;
    const char *scope; /* "pull" or "pull,push" */
    bool authed;       /* a challenge was answered */
};

/* What a response said. */
struct oci_resp {
    long status;
    char *body; /* malloc'ed, NUL-terminated; NULL when empty */
    size_t len;
    char location[1024];
    char digest[96];
    char range[96];
    char www[1024];
    char ctype[160];
};
void oci_resp_clear(struct oci_resp *r);

/* A request body: from memory (data) or from a file (fd at offset). */
struct oci_body {
    const uint8_t *data;
    int fd;
    uint64_t offset, len;
    const char *content_type;
    const char *content_range; /* "a-b" or NULL */
};

/* Opens a session for ref (plain_http picks the scheme). */
pemn_rc oci_sess_open(struct oci_sess *s, const char *ref, const struct pemn_oci_options *o,
                      const char *scope, struct pemn_err *err);
void oci_sess_close(struct oci_sess *s);

/* Performs method on a path ("/v2/...") or absolute URL, with retries (connection errors,
 * 5xx, 429) and one re-try after answering a 401 challenge. accept may be NULL. body may be
 * NULL. The response body is kept up to max bytes (PEMN_ETOOBIG beyond). A status that is
 * not 2xx/3xx returns an error (oci_status_error) unless it is in `ok_statuses` (0-ended). */
pemn_rc oci_request(struct oci_sess *s, const char *method, const char *url, const char *accept,
                    const struct oci_body *body, size_t max, const long *ok_statuses,
                    struct oci_resp *r, struct pemn_err *err);
/* OCI error body -> pemn_rc and "HTTP <status> <CODE>: <message> (<what>)". */
pemn_rc oci_status_error(const struct oci_resp *r, const char *what, struct pemn_err *err);

/* Fetches package r (r->digest, r->size, r->model...) from the repository at location
 * ("oci://HOST/REPO" or "oci+http://HOST/REPO") into dest, as pemn_client_fetch does (resume,
 * digest, signature, trusted keys, atomic install). co: the client options (trusted keyring,
 * timeouts); its token is not sent (username/password answer the registry's challenge). */
pemn_rc client_oci_fetch(const char *location, const struct pemn_client_options *co,
                         const char *username, const char *password, const struct pemn_resolved *r,
                         const char *dest, const struct pemn_fetch_options *fo,
                         struct pemn_fetch_stats *stats, struct pemn_err *err);

#endif
