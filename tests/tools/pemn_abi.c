/*
 * tests/tools/pemn_abi.c — prints the size of every public structure the Python binding
 * mirrors (python/pemn/_lib.py) and the offset of each of its fields, one per line:
 *   STRUCT size N
 *   STRUCT.FIELD offset N
 * tests/python/test_binding.py compares them with ctypes' layout of the same structures.
 */
#include <pemn/pemn.h>
#include <stddef.h>
#include <stdio.h>

#define S(t) printf("%s size %zu\n", #t, sizeof(struct t))
#define F(t, f) printf("%s.%s offset %zu\n", #t, #f, offsetof(struct t, f))

int main(void)
{
    S(pemn_err);
    F(pemn_err, rc);
    F(pemn_err, offset);
    F(pemn_err, msg);
    S(pemn_pkg_info);
    F(pemn_pkg_info, name);
    F(pemn_pkg_info, version);
    F(pemn_pkg_info, strategy);
    F(pemn_pkg_info, release);
    F(pemn_pkg_info, created);
    F(pemn_pkg_info, density);
    F(pemn_pkg_info, format_major);
    F(pemn_pkg_info, format_minor);
    F(pemn_pkg_info, n_tensors);
    F(pemn_pkg_info, n_protos);
    F(pemn_pkg_info, n_meta);
    F(pemn_pkg_info, file_size);
    F(pemn_pkg_info, n_params);
    F(pemn_pkg_info, n_masked);
    F(pemn_pkg_info, f32_size);
    F(pemn_pkg_info, signer);
    F(pemn_pkg_info, signer_id);
    S(pemn_proto_info);
    F(pemn_proto_info, kind);
    F(pemn_proto_info, length);
    F(pemn_proto_info, generator);
    F(pemn_proto_info, scale);
    F(pemn_proto_info, seed);
    S(pemn_tensor_info);
    F(pemn_tensor_info, name);
    F(pemn_tensor_info, dtype);
    F(pemn_tensor_info, ndim);
    F(pemn_tensor_info, shape);
    F(pemn_tensor_info, numel);
    F(pemn_tensor_info, masked);
    F(pemn_tensor_info, proto);
    F(pemn_tensor_info, offset);
    F(pemn_tensor_info, scale);
    F(pemn_tensor_info, mask_encoding);
    F(pemn_tensor_info, kept);
    F(pemn_tensor_info, mask);
    F(pemn_tensor_info, data);
    F(pemn_tensor_info, stored_bytes);
    S(pemn_pack_opts);
    F(pemn_pack_opts, name);
    F(pemn_pack_opts, version);
    F(pemn_pack_opts, release);
    F(pemn_pack_opts, density);
    F(pemn_pack_opts, strategy);
    F(pemn_pack_opts, seeded);
    F(pemn_pack_opts, generator);
    F(pemn_pack_opts, seed);
    F(pemn_pack_opts, n_seeds);
    F(pemn_pack_opts, seeds);
    F(pemn_pack_opts, seeds_from_meta);
    F(pemn_pack_opts, created);
    F(pemn_pack_opts, n_meta);
    F(pemn_pack_opts, meta_keys);
    F(pemn_pack_opts, meta_values);
    S(pemn_pack_layer);
    F(pemn_pack_layer, name);
    F(pemn_pack_layer, dtype);
    F(pemn_pack_layer, ndim);
    F(pemn_pack_layer, shape);
    F(pemn_pack_layer, numel);
    F(pemn_pack_layer, masked);
    F(pemn_pack_layer, mask_from);
    F(pemn_pack_layer, proto);
    F(pemn_pack_layer, offset);
    F(pemn_pack_layer, scale);
    F(pemn_pack_layer, kept);
    F(pemn_pack_layer, st_index);
    S(pemn_pack_proto);
    F(pemn_pack_proto, d_v);
    F(pemn_pack_proto, seeded);
    F(pemn_pack_proto, ref_layer);
    F(pemn_pack_proto, seed);
    S(pemn_pack_report);
    F(pemn_pack_report, strategy);
    F(pemn_pack_report, density);
    F(pemn_pack_report, n_layers);
    F(pemn_pack_report, layers);
    F(pemn_pack_report, n_protos);
    F(pemn_pack_report, protos);
    F(pemn_pack_report, n_params);
    F(pemn_pack_report, n_masked_params);
    F(pemn_pack_report, n_kept);
    F(pemn_pack_report, proto_values);
    S(pemn_client_options);
    F(pemn_client_options, token);
    F(pemn_client_options, trusted);
    F(pemn_client_options, cache_dir);
    F(pemn_client_options, user_agent);
    F(pemn_client_options, connect_timeout_ms);
    F(pemn_client_options, stall_timeout_ms);
    F(pemn_client_options, stall_bytes_per_s);
    F(pemn_client_options, deadline_ms);
    F(pemn_client_options, max_attempts);
    F(pemn_client_options, backoff_base_ms);
    F(pemn_client_options, backoff_max_ms);
    F(pemn_client_options, retry_after_max_ms);
    F(pemn_client_options, max_package_size);
    F(pemn_client_options, max_json_bytes);
    F(pemn_client_options, max_recv_bytes_per_s);
    F(pemn_client_options, progress);
    F(pemn_client_options, progress_user);
    S(pemn_resolved);
    F(pemn_resolved, model);
    F(pemn_resolved, version);
    F(pemn_resolved, tag);
    F(pemn_resolved, release);
    F(pemn_resolved, digest);
    F(pemn_resolved, size);
    F(pemn_resolved, package_url);
    F(pemn_resolved, signer);
    F(pemn_resolved, strategy);
    F(pemn_resolved, created);
    F(pemn_resolved, pushed);
    F(pemn_resolved, density);
    F(pemn_resolved, ratio);
    F(pemn_resolved, n_params);
    F(pemn_resolved, f32_size);
    S(pemn_tag_entry);
    F(pemn_tag_entry, tag);
    F(pemn_tag_entry, version);
    S(pemn_listing);
    F(pemn_listing, count);
    F(pemn_listing, versions);
    F(pemn_listing, n_versions);
    F(pemn_listing, n_tags);
    F(pemn_listing, tags);
    S(pemn_fetch_options);
    F(pemn_fetch_options, min_release);
    F(pemn_fetch_options, flags);
    F(pemn_fetch_options, progress);
    F(pemn_fetch_options, progress_user);
    F(pemn_fetch_options, base_path);
    S(pemn_fetch_stats);
    F(pemn_fetch_stats, bytes_received);
    F(pemn_fetch_stats, requests);
    F(pemn_fetch_stats, resumes);
    F(pemn_fetch_stats, restarts);
    F(pemn_fetch_stats, from_cache);
    F(pemn_fetch_stats, delta_used);
    F(pemn_fetch_stats, delta_bytes);
    return 0;
}
