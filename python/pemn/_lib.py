"""pemn._lib — finds libpemn.so and declares the C API the binding uses (ctypes).

Nothing here knows the package format: every byte is read, checked, expanded and written by
libpemn. The structures mirror include/pemn/*.h field for field; tests/integration/
test_python.sh compares their sizes and offsets with the C compiler's.

Library lookup, first hit wins:
  1. $PEMN_LIB (a path to libpemn.so*),
  2. the build tree this package sits in (build/$PEMN_VARIANT or build/release),
  3. the installed library next to an installed package ($PREFIX/lib/libpemn.so.0 for
     $PREFIX/lib/python3/dist-packages/pemn),
  4. the dynamic linker's search path (libpemn.so.0).
"""
import ctypes
import ctypes.util
import os

_HERE = os.path.dirname(os.path.abspath(__file__))

c_u8 = ctypes.c_uint8
c_u16 = ctypes.c_uint16
c_u32 = ctypes.c_uint32
c_u64 = ctypes.c_uint64
c_i64 = ctypes.c_int64
c_int = ctypes.c_int
c_float = ctypes.c_float
c_double = ctypes.c_double
c_size_t = ctypes.c_size_t
c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
POINTER = ctypes.POINTER

MAX_DIMS = 8
ERR_MSG_MAX = 256
LABEL_BUF = 129
URL_BUF = 1024
DIGEST_TEXT_MAX = 72
KEYID_TEXT_MAX = 17


class Err(ctypes.Structure):
    _fields_ = [("rc", c_int), ("offset", c_u64), ("msg", ctypes.c_char * ERR_MSG_MAX)]


class PubKey(ctypes.Structure):
    _fields_ = [("bytes", c_u8 * 32)]


class SecKey(ctypes.Structure):
    _fields_ = [("bytes", c_u8 * 64)]


class PkgInfo(ctypes.Structure):
    _fields_ = [
        ("name", c_char_p), ("version", c_char_p), ("strategy", c_char_p),
        ("release", c_u64), ("created", c_i64), ("density", c_float),
        ("format_major", c_u16), ("format_minor", c_u16),
        ("n_tensors", c_u32), ("n_protos", c_u32), ("n_meta", c_u32),
        ("file_size", c_u64), ("n_params", c_u64), ("n_masked", c_u64), ("f32_size", c_u64),
        ("signer", PubKey), ("signer_id", c_u8 * 8),
    ]


class ProtoInfo(ctypes.Structure):
    _fields_ = [("kind", c_u32), ("length", c_u64), ("generator", c_u32), ("scale", c_float),
                ("seed", c_u8 * 32)]


class TensorInfo(ctypes.Structure):
    _fields_ = [
        ("name", c_char_p), ("dtype", c_int), ("ndim", c_u32), ("shape", c_u64 * MAX_DIMS),
        ("numel", c_u64), ("masked", c_int), ("proto", c_u32), ("offset", c_u64),
        ("scale", c_float), ("mask_encoding", c_u32), ("kept", c_u64),
        ("mask", POINTER(c_u8)), ("data", c_void_p), ("stored_bytes", c_u64),
    ]


class StTensor(ctypes.Structure):
    _fields_ = [("name", c_char_p), ("dtype", c_int), ("ndim", c_u32),
                ("shape", c_u64 * MAX_DIMS), ("numel", c_u64), ("data", c_void_p),
                ("nbytes", c_u64)]


class PackOpts(ctypes.Structure):
    _fields_ = [
        ("name", c_char_p), ("version", c_char_p), ("release", c_u64), ("density", c_double),
        ("strategy", c_int), ("seeded", c_int), ("generator", c_u32), ("seed", c_u8 * 32),
        ("n_seeds", c_size_t), ("seeds", POINTER(c_u8 * 32)), ("seeds_from_meta", c_int),
        ("created", c_i64), ("n_meta", c_size_t), ("meta_keys", POINTER(c_char_p)),
        ("meta_values", POINTER(c_char_p)), ("mask_encoding", c_u32),
    ]


class PackLayer(ctypes.Structure):
    _fields_ = [
        ("name", c_char_p), ("dtype", c_int), ("ndim", c_u32), ("shape", c_u64 * MAX_DIMS),
        ("numel", c_u64), ("masked", c_int), ("mask_from", c_int), ("proto", c_u32),
        ("offset", c_u64), ("scale", c_float), ("kept", c_u64), ("st_index", c_u32),
    ]


class PackProto(ctypes.Structure):
    _fields_ = [("d_v", c_u64), ("seeded", c_int), ("ref_layer", c_u32), ("seed", c_u8 * 32)]


class PackReport(ctypes.Structure):
    _fields_ = [
        ("strategy", c_int), ("density", c_double), ("n_layers", c_u32),
        ("layers", POINTER(PackLayer)), ("n_protos", c_u32), ("protos", POINTER(PackProto)),
        ("n_params", c_u64), ("n_masked_params", c_u64), ("n_kept", c_u64),
        ("proto_values", c_u64),
    ]


PROGRESS_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_u64, c_u64)


class ClientOptions(ctypes.Structure):
    _fields_ = [
        ("token", c_char_p), ("trusted", c_void_p), ("cache_dir", c_char_p),
        ("user_agent", c_char_p), ("connect_timeout_ms", c_u32), ("stall_timeout_ms", c_u32),
        ("stall_bytes_per_s", c_u32), ("deadline_ms", c_u64), ("max_attempts", c_u32),
        ("backoff_base_ms", c_u32), ("backoff_max_ms", c_u32), ("retry_after_max_ms", c_u32),
        ("max_package_size", c_u64), ("max_json_bytes", c_u32),
        ("max_recv_bytes_per_s", c_u64), ("progress", PROGRESS_FN), ("progress_user", c_void_p),
        ("root", c_void_p),  # const struct pemn_root * (pemn/trust.h); None here
    ]


class Resolved(ctypes.Structure):
    _fields_ = [
        ("model", ctypes.c_char * LABEL_BUF), ("version", ctypes.c_char * LABEL_BUF),
        ("tag", ctypes.c_char * LABEL_BUF), ("release", c_u64),
        ("digest", ctypes.c_char * DIGEST_TEXT_MAX), ("size", c_u64),
        ("package_url", ctypes.c_char * URL_BUF), ("signer", ctypes.c_char * KEYID_TEXT_MAX),
        ("strategy", ctypes.c_char * LABEL_BUF), ("created", c_i64), ("pushed", c_i64),
        ("density", c_double), ("ratio", c_double), ("n_params", c_u64), ("f32_size", c_u64),
    ]


class TagEntry(ctypes.Structure):
    _fields_ = [("tag", ctypes.c_char * LABEL_BUF), ("version", ctypes.c_char * LABEL_BUF)]


class Listing(ctypes.Structure):
    _fields_ = [("count", c_size_t), ("versions", POINTER(Resolved)),
                ("n_versions", POINTER(c_u64)), ("n_tags", c_size_t),
                ("tags", POINTER(TagEntry))]


class FetchOptions(ctypes.Structure):
    _fields_ = [("min_release", c_u64), ("flags", ctypes.c_uint), ("progress", PROGRESS_FN),
                ("progress_user", c_void_p), ("base_path", c_char_p)]


class FetchStats(ctypes.Structure):
    _fields_ = [("bytes_received", c_u64), ("requests", c_u32), ("resumes", c_u32),
                ("restarts", c_u32), ("from_cache", c_int), ("delta_used", c_int),
                ("delta_bytes", c_u64)]


# name -> ctypes structure, for the ABI check of the tests
STRUCTS = {
    "pemn_err": Err, "pemn_pkg_info": PkgInfo, "pemn_proto_info": ProtoInfo,
    "pemn_tensor_info": TensorInfo, "pemn_st_tensor": StTensor, "pemn_pack_opts": PackOpts, "pemn_pack_layer": PackLayer,
    "pemn_pack_proto": PackProto, "pemn_pack_report": PackReport,
    "pemn_client_options": ClientOptions, "pemn_resolved": Resolved,
    "pemn_tag_entry": TagEntry, "pemn_listing": Listing,
    "pemn_fetch_options": FetchOptions, "pemn_fetch_stats": FetchStats,
}

_P = c_void_p  # opaque handles (pemn_pkg *, pemn_keyring *, pemn_st *, ...)
_PE = POINTER(Err)

# (name, restype, argtypes)
_API = [
    ("pemn_init", c_int, []),
    ("pemn_strerror", c_char_p, [c_int]),
    ("pemn_rc_name", c_char_p, [c_int]),
    ("pemn_dtype_name", c_char_p, [c_int]),
    ("pemn_dtype_size", c_size_t, [c_int]),
    ("pemn_gen_name", c_char_p, [c_u32]),
    ("pemn_gen_parse", c_int, [c_char_p, POINTER(c_u32)]),
    ("pemn_gen_fill", c_int, [c_u32, POINTER(c_u8), c_float, c_u64, c_void_p, c_size_t]),
    ("pemn_topk_count", c_u64, [c_u64, c_double]),
    ("pemn_topk_mask", c_int, [c_void_p, c_u64, c_double, c_void_p]),
    ("pemn_digest_format", None, [POINTER(c_u8), ctypes.c_char_p]),
    ("pemn_keyid_format", None, [POINTER(c_u8), ctypes.c_char_p]),
    ("pemn_pubkey_format", None, [POINTER(PubKey), ctypes.c_char_p]),
    # keys
    ("pemn_keyring_new", c_int, [POINTER(_P)]),
    ("pemn_keyring_free", None, [_P]),
    ("pemn_keyring_add_file", c_int, [_P, c_char_p, _PE]),
    ("pemn_keyring_count", c_size_t, [_P]),
    ("pemn_seckey_load", c_int, [c_char_p, POINTER(SecKey), _PE]),
    ("pemn_seckey_wipe", None, [POINTER(SecKey)]),
    ("pemn_key_generate", c_int, [POINTER(SecKey), POINTER(PubKey)]),
    ("pemn_key_save", c_int, [c_char_p, POINTER(SecKey), _PE]),
    # packages
    ("pemn_pkg_open_file", c_int, [c_char_p, ctypes.c_uint, POINTER(_P), _PE]),
    ("pemn_pkg_open_mem", c_int, [c_void_p, c_size_t, ctypes.c_uint, POINTER(_P), _PE]),
    ("pemn_pkg_free", None, [_P]),
    ("pemn_pkg_info", c_int, [_P, POINTER(PkgInfo)]),
    ("pemn_pkg_meta", c_int, [_P, c_u32, POINTER(c_char_p), POINTER(c_char_p)]),
    ("pemn_pkg_proto", c_int, [_P, c_u32, POINTER(ProtoInfo)]),
    ("pemn_pkg_tensor_count", c_u32, [_P]),
    ("pemn_pkg_tensor", c_int, [_P, c_u32, POINTER(TensorInfo)]),
    ("pemn_pkg_find", c_int, [_P, c_char_p, POINTER(c_u32)]),
    ("pemn_pkg_digest", None, [_P, POINTER(c_u8)]),
    ("pemn_pkg_verify", c_int, [_P, _P, _PE]),
    ("pemn_pkg_expand", c_int, [_P, c_u32, c_void_p, c_u64, _PE]),
    # safetensors (the in-memory checkpoint handed to the packer)
    ("pemn_st_writer_new", c_int, [POINTER(_P)]),
    ("pemn_st_writer_free", None, [_P]),
    ("pemn_st_writer_add", c_int,
     [_P, c_char_p, c_int, c_u32, POINTER(c_u64), c_void_p, c_u64, _PE]),
    ("pemn_st_writer_add_meta", c_int, [_P, c_char_p, c_char_p]),
    ("pemn_st_writer_write_mem", c_int, [_P, POINTER(POINTER(c_u8)), POINTER(c_size_t), _PE]),
    ("pemn_st_open_mem", c_int, [c_void_p, c_size_t, ctypes.c_uint, POINTER(_P), _PE]),
    ("pemn_st_free", None, [_P]),
    ("pemn_st_open_file", c_int, [c_char_p, POINTER(_P), _PE]),
    ("pemn_st_count", c_u32, [_P]),
    ("pemn_st_tensor", c_int, [_P, c_u32, POINTER(StTensor)]),
    ("pemn_st_meta_count", c_u32, [_P]),
    ("pemn_st_meta", c_int, [_P, c_u32, POINTER(c_char_p), POINTER(c_char_p)]),
    ("pemn_st_writer_write_file", c_int, [_P, c_char_p, _PE]),
    # packing
    ("pemn_pack_opts_init", None, [POINTER(PackOpts)]),
    ("pemn_pack_strategy_parse", c_int, [c_char_p, POINTER(c_int)]),
    ("pemn_pack_strategy_name", c_char_p, [c_int]),
    ("pemn_pack_safetensors", c_int,
     [_P, POINTER(PackOpts), POINTER(SecKey), POINTER(POINTER(c_u8)), POINTER(c_size_t),
      POINTER(PackReport), _PE]),
    ("pemn_pack_report_free", None, [POINTER(PackReport)]),
    # client
    ("pemn_client_options_init", None, [POINTER(ClientOptions)]),
    ("pemn_client_new", c_int, [c_char_p, POINTER(ClientOptions), POINTER(_P), _PE]),
    ("pemn_client_free", None, [_P]),
    ("pemn_client_parse_ref", c_int, [c_char_p, c_char_p, c_char_p, c_char_p, _PE]),
    ("pemn_client_resolve", c_int, [_P, c_char_p, c_char_p, c_char_p, POINTER(Resolved), _PE]),
    ("pemn_client_list", c_int, [_P, c_char_p, POINTER(POINTER(Listing)), _PE]),
    ("pemn_listing_free", None, [POINTER(Listing)]),
    ("pemn_client_push", c_int, [_P, c_char_p, POINTER(Resolved), POINTER(c_int), _PE]),
    ("pemn_client_tag", c_int, [_P, c_char_p, c_char_p, c_char_p, POINTER(Resolved), _PE]),
    ("pemn_client_untag", c_int, [_P, c_char_p, c_char_p, _PE]),
    ("pemn_client_pull", c_int,
     [_P, c_char_p, c_char_p, c_char_p, c_char_p, POINTER(FetchOptions), POINTER(Resolved),
      POINTER(FetchStats), _PE]),
]


def _candidates():
    env = os.environ.get("PEMN_LIB")
    if env:
        yield env
        return
    root = os.path.dirname(os.path.dirname(_HERE))  # python/pemn -> repository root
    variants = [os.environ.get("PEMN_VARIANT") or "release"]
    for v in variants:
        yield os.path.join(root, "build", v, "lib", "libpemn.so.0")
    # $PREFIX/lib/python3/dist-packages/pemn -> $PREFIX/lib
    yield os.path.normpath(os.path.join(_HERE, "..", "..", "..", "libpemn.so.0"))
    found = ctypes.util.find_library("pemn")
    yield found or "libpemn.so.0"


def _load():
    tried = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append(path + " (missing)")
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            continue
        for name, res, args in _API:
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        lib.pemn_init()
        return lib, path
    raise ImportError("pemn: cannot load libpemn.so; tried " + "; ".join(tried) +
                      " (set PEMN_LIB to the library's path)")


lib, path = _load()
