/*
 * server/srv_routes_misc.c — GET /v1/health, GET /metrics, GET /v1/keys.
 */
#include "server/srv.h"
#include "server/srv_trust.h"

#include <pemn/key.h>
#include <stdlib.h>

static enum MHD_Result health(struct srv_req *r)
{
    return srv_reply_json(r, 200,
                          json_pack("{s:s,s:s,s:i}", "status", "ok", "version", PEMN_VERSION_STRING,
                                    "schema", store_schema_version(srv_store(r->srv))));
}

static enum MHD_Result metrics(struct srv_req *r)
{
    size_t len = 0;
    char *text = srv_metrics_render(r->srv, &len);
    if (!text)
        return srv_reply_error(r, 500, "internal", "cannot render metrics");
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8");
    return srv_queue(r, 200, resp, len);
}

struct key_list {
    json_t *arr;
    const pemn_root *root; /* latest root of trust, or NULL */
};

static int key_cb(void *ctx, const struct store_key *k)
{
    struct key_list *l = ctx;
    char text[PEMN_PUBKEY_TEXT_MAX];
    pemn_pubkey_format(&k->pub, text);
    uint8_t id[PEMN_KEYID_BYTES];
    pemn_key_id(&k->pub, id);
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:b}", "id", k->id, "name", k->name, "public_key", text,
                          "added", (json_int_t)k->added, "revoked",
                          l->root && pemn_root_is_revoked(l->root, id));
    return o ? json_array_append_new(l->arr, o) : -1;
}

static enum MHD_Result keys(struct srv_req *r)
{
    pemn_root *root = NULL;
    struct key_list l = {json_array(), NULL};
    struct pemn_err e;
    pemn_rc rc = l.arr ? srv_trust_latest_root(srv_store(r->srv), &root, &e) : PEMN_ENOMEM;
    l.root = root;
    if (!rc)
        rc = store_key_list(srv_store(r->srv), key_cb, &l, &e);
    pemn_root_free(root);
    if (rc) {
        json_decref(l.arr);
        return srv_reply_store_error(r, rc, &e);
    }
    return srv_reply_json(r, 200, json_pack("{s:o}", "keys", l.arr));
}

const struct srv_route srv_routes_misc[] = {
    {"health", SRV_GET | SRV_HEAD, "/v1/health", SRV_OPEN, 0, health},
    {"metrics", SRV_GET, "/metrics", SRV_OPEN_READ, 0, metrics},
    {"keys", SRV_GET | SRV_HEAD, "/v1/keys", SRV_OPEN_READ, 0, keys},
    {0},
};
