"""pemn.package — open, verify, inspect, load and pack .pemn packages through libpemn."""
import ctypes
import os
import tempfile

import numpy as np

from . import errors
from ._lib import (lib, Err, StTensor, PkgInfo, ProtoInfo, TensorInfo, PackOpts, PackReport, SecKey,
                   PubKey, c_u8, c_u32, c_u64, c_size_t, c_char_p, c_void_p, c_int, POINTER)

_libc = ctypes.CDLL(None)
_libc.free.argtypes = [c_void_p]
_libc.free.restype = None

# pemn_dtype codes (include/pemn/common.h) <-> numpy. BF16 has no numpy type: it loads as
# float32 (exact); F8 loads as its raw uint8 bits.
DTYPES = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64",
          "U64", "F8_E4M3", "F8_E5M2"]
DT_BF16, DT_F32 = 6, 9
_NP = {0: np.dtype(np.bool_), 1: np.dtype("u1"), 2: np.dtype("i1"), 3: np.dtype("<i2"),
       4: np.dtype("<u2"), 5: np.dtype("<f2"), 7: np.dtype("<i4"), 8: np.dtype("<u4"),
       9: np.dtype("<f4"), 10: np.dtype("<f8"), 11: np.dtype("<i8"), 12: np.dtype("<u8"),
       13: np.dtype("u1"), 14: np.dtype("u1")}
_FROM_NP = {np.dtype(np.bool_): 0, np.dtype("u1"): 1, np.dtype("i1"): 2, np.dtype("<i2"): 3,
            np.dtype("<u2"): 4, np.dtype("<f2"): 5, np.dtype("<i4"): 7, np.dtype("<u4"): 8,
            np.dtype("<f4"): 9, np.dtype("<f8"): 10, np.dtype("<i8"): 11, np.dtype("<u8"): 12}

GENERATORS = {"chacha20-uniform": 1, "chacha20-normal": 2, "chacha20-signed": 3}


def _b(s):
    return s.encode() if isinstance(s, str) else s


def _s(b):
    return b.decode("utf-8", "replace") if b is not None else None


def _fspath(p):
    return os.fsencode(os.fspath(p))


def generator_id(generator):
    """A generator id from a name ("chacha20-signed", "signed", ...) or an id (1, 2, 3)."""
    if isinstance(generator, int):
        if not lib.pemn_gen_name(generator):
            raise errors.UnsupportedError(18, "unknown generator %d" % generator)
        return generator
    g = c_u32()
    rc = lib.pemn_gen_parse(_b(generator), ctypes.byref(g))
    if rc:
        raise errors.make(rc, context="generator %r" % (generator,))
    return g.value


def generator_name(gen):
    """The full name of a generator id."""
    return _s(lib.pemn_gen_name(generator_id(gen)))


def _seed_bytes(seed):
    if isinstance(seed, str):
        try:
            seed = bytes.fromhex(seed)
        except ValueError:
            raise errors.InvalidError(2, "seed: not hex") from None
    seed = bytes(seed)
    if len(seed) != 32:
        raise errors.InvalidError(2, "a seed is 32 bytes, got %d" % len(seed))
    return seed


# ---- generators and top-k ------------------------------------------------------------------

def prototype(generator, seed, n, scale=1.0, first=0):
    """Values v[first .. first+n) of a seeded generator as float32: bit for bit what
    pemn_gen_fill (and so every seeded package) produces."""
    gen = generator_id(generator)
    seed = (c_u8 * 32).from_buffer_copy(_seed_bytes(seed))
    n = int(n)
    if n < 0:
        raise errors.InvalidError(2, "negative length")
    out = np.empty(n, dtype=np.float32)
    rc = lib.pemn_gen_fill(gen, seed, float(scale), int(first), out.ctypes.data, n)
    errors.check(rc, context="prototype")
    return out


def topk_count(n, density):
    """Weights kept at density k out of n: n - floor((1 - k) * n)."""
    return int(lib.pemn_topk_count(int(n), float(density)))


def topk_mask(scores, density):
    """The mask pemn keeps at density k: the topk_count largest |scores| (ties: lower
    index; NaN lowest), as uint8 of the scores' shape."""
    s = np.asarray(scores, dtype=np.float32, order="C")
    m = np.empty(s.shape, dtype=np.uint8)
    rc = lib.pemn_topk_mask(s.ctypes.data, s.size, float(density), m.ctypes.data)
    errors.check(rc, context="top-k")
    return m


# ---- keys ----------------------------------------------------------------------------------

class Keyring:
    """A set of trusted publisher keys (.pub files)."""

    def __init__(self, paths=()):
        h = c_void_p()
        errors.check(lib.pemn_keyring_new(ctypes.byref(h)), context="keyring")
        self._h = h
        if isinstance(paths, (str, bytes, os.PathLike)):
            paths = [paths]
        for p in paths:
            self.add(p)

    def add(self, path):
        err = Err()
        errors.check(lib.pemn_keyring_add_file(self._h, _fspath(path), ctypes.byref(err)), err)

    def __len__(self):
        return int(lib.pemn_keyring_count(self._h))

    def close(self):
        if self._h:
            lib.pemn_keyring_free(self._h)
            self._h = None

    def __del__(self):
        self.close()

    @property
    def handle(self):
        return self._h


def _keyring(trust):
    if isinstance(trust, Keyring):
        return trust
    if trust is None:
        trust = ()
    return Keyring(trust)


class _SecretKey:
    """A loaded .key file, wiped when the block ends."""

    def __init__(self, path):
        self.sk = SecKey()
        err = Err()
        errors.check(lib.pemn_seckey_load(_fspath(path), ctypes.byref(self.sk),
                                          ctypes.byref(err)), err)

    def __enter__(self):
        return self.sk

    def __exit__(self, *a):
        lib.pemn_seckey_wipe(ctypes.byref(self.sk))


def keygen(base):
    """Writes BASE.key (0600, never overwritten) and BASE.pub; returns the key id."""
    sk, pk = SecKey(), PubKey()
    try:
        errors.check(lib.pemn_key_generate(ctypes.byref(sk), ctypes.byref(pk)))
        err = Err()
        errors.check(lib.pemn_key_save(_fspath(base), ctypes.byref(sk), ctypes.byref(err)), err)
    finally:
        lib.pemn_seckey_wipe(ctypes.byref(sk))
    return _key_id_text(pk)


def _key_id_text(pk):
    import hashlib
    return hashlib.sha256(bytes(pk.bytes)).hexdigest()[:16]


# ---- reading -------------------------------------------------------------------------------

class Package:
    """An open .pemn package (structure checked, not yet verified). Use as a context manager
    or call close(). Tensors are expanded on request; nothing is trusted before verify()."""

    def __init__(self, path=None, data=None):
        h = c_void_p()
        err = Err()
        if (path is None) == (data is None):
            raise errors.InvalidError(2, "give a path or data")
        if path is not None:
            self.path = os.fspath(path)
            rc = lib.pemn_pkg_open_file(_fspath(path), 0, ctypes.byref(h), ctypes.byref(err))
            ctx = self.path
        else:
            self.path = None
            data = bytes(data)
            rc = lib.pemn_pkg_open_mem(data, len(data), 1, ctypes.byref(h), ctypes.byref(err))
            ctx = "package"
        errors.check(rc, err, ctx)
        self._h = h
        self._info = PkgInfo()
        errors.check(lib.pemn_pkg_info(h, ctypes.byref(self._info)))

    def close(self):
        if getattr(self, "_h", None):
            lib.pemn_pkg_free(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def __del__(self):
        self.close()

    def _handle(self):
        if not self._h:
            raise errors.InvalidError(2, "package is closed")
        return self._h

    # -- manifest
    @property
    def manifest(self):
        i = self._info
        return {"name": _s(i.name), "version": _s(i.version), "release": int(i.release),
                "created": int(i.created), "strategy": _s(i.strategy),
                "density": float(i.density),
                "format": "%d.%d" % (i.format_major, i.format_minor),
                "signer": bytes(i.signer_id).hex(), "digest": self.digest}

    @property
    def meta(self):
        out = {}
        k, v = c_char_p(), c_char_p()
        for j in range(self._info.n_meta):
            if lib.pemn_pkg_meta(self._handle(), j, ctypes.byref(k), ctypes.byref(v)) == 0:
                out[_s(k.value)] = _s(v.value)
        return out

    @property
    def digest(self):
        d = (c_u8 * 32)()
        lib.pemn_pkg_digest(self._handle(), d)
        return "sha256:" + bytes(d).hex()

    def protos(self):
        out = []
        for j in range(self._info.n_protos):
            p = ProtoInfo()
            errors.check(lib.pemn_pkg_proto(self._handle(), j, ctypes.byref(p)))
            if p.kind == 2:
                g = lib.pemn_gen_name(p.generator)
                out.append({"kind": "seeded", "d_v": int(p.length),
                            "generator": _s(g) if g else "unknown",
                            "seed": bytes(p.seed).hex(), "scale": float(p.scale)})
            else:
                out.append({"kind": "explicit", "d_v": int(p.length)})
        return out

    def _tensor(self, j):
        t = TensorInfo()
        errors.check(lib.pemn_pkg_tensor(self._handle(), j, ctypes.byref(t)))
        return t

    def tensors(self):
        out = []
        for j in range(self._info.n_tensors):
            t = self._tensor(j)
            d = {"name": _s(t.name), "dtype": DTYPES[t.dtype],
                 "shape": [int(t.shape[k]) for k in range(t.ndim)], "numel": int(t.numel),
                 "masked": bool(t.masked)}
            if t.masked:
                d.update(proto=int(t.proto), offset=int(t.offset), scale=float(t.scale),
                         kept=int(t.kept), mask_encoding=int(t.mask_encoding))
            d["stored_bytes"] = int(t.stored_bytes)
            out.append(d)
        return out

    def inspect(self):
        """Everything `pemn inspect --json` shows, as a dict (keys as there)."""
        i = self._info
        pub = ctypes.create_string_buffer(96)
        lib.pemn_pubkey_format(ctypes.byref(i.signer), pub)
        out = self.manifest
        out["signer_key"] = _s(pub.value)
        out["meta"] = self.meta
        out["protos"] = self.protos()
        out["tensors"] = self.tensors()
        mask_b = sum(t["stored_bytes"] for t in out["tensors"] if t["masked"])
        dense_b = sum(t["stored_bytes"] for t in out["tensors"] if not t["masked"])
        proto_b = 4 * sum(p["d_v"] for p in out["protos"] if p["kind"] == "explicit")
        out["sizes"] = {"file_bytes": int(i.file_size), "f32_bytes": int(i.f32_size),
                        "ratio": i.f32_size / i.file_size if i.file_size else 0.0,
                        "mask_bytes": mask_b, "dense_bytes": dense_b,
                        "proto_value_bytes": proto_b, "params": int(i.n_params),
                        "masked_params": int(i.n_masked)}
        return out

    def verify(self, trust):
        """Checks the content digest, the signature and that the signer is in `trust` (a
        Keyring, a .pub path or a list of them). Raises CorruptError, BadSignatureError or
        UntrustedError."""
        kr = _keyring(trust)
        err = Err()
        rc = lib.pemn_pkg_verify(self._handle(), kr.handle, ctypes.byref(err))
        errors.check(rc, err, self.path or "package")
        return self.manifest

    def array(self, name_or_index):
        """One tensor as a numpy array: masked tensors expanded to float32, dense tensors
        in their stored dtype (BF16 as float32, F8 as raw uint8 bits)."""
        j = name_or_index
        if not isinstance(j, int):
            j = self._index(name_or_index)
        t = self._tensor(j)
        shape = tuple(int(t.shape[k]) for k in range(t.ndim))
        if t.masked or t.dtype == DT_BF16:
            a = np.empty(shape, dtype=np.float32)
            err = Err()
            rc = lib.pemn_pkg_expand(self._handle(), j, a.ctypes.data, int(t.numel),
                                     ctypes.byref(err))
            errors.check(rc, err)
            return a
        a = np.empty(shape, dtype=_NP[t.dtype])
        if t.stored_bytes != a.nbytes:
            raise errors.CorruptError(4, "tensor %s: %d bytes for %d" %
                                      (_s(t.name), t.stored_bytes, a.nbytes))
        if a.nbytes:
            ctypes.memmove(a.ctypes.data, t.data, a.nbytes)
        return a

    def _index(self, name):
        idx = c_u32()
        rc = lib.pemn_pkg_find(self._handle(), _b(name), ctypes.byref(idx))
        errors.check(rc, context="tensor %r" % (name,))
        return idx.value

    def arrays(self):
        return {_s(self._tensor(j).name): self.array(j) for j in range(self._info.n_tensors)}


class Loaded(dict):
    """pemn.load's result: name -> numpy array, plus .manifest, .meta and .info (inspect)."""

    manifest = None
    meta = None
    info = None


def open(path):  # noqa: A001 (pemn.open mirrors pemn_pkg_open_file)
    """Opens a package (structure checked only; call .verify(trust) before trusting it)."""
    return Package(path)


def load(path, trust):
    """Opens, verifies against `trust` and expands a package: a dict name -> numpy array
    (masked tensors float32, dense ones in their stored dtype), with .manifest, .meta and
    .info. Raises CorruptError / BadSignatureError / UntrustedError / ... before anything is
    expanded."""
    with Package(path) as p:
        p.verify(trust)
        out = Loaded(p.arrays())
        out.manifest = p.manifest
        out.meta = p.meta
        out.info = p.inspect()
    return out


def verify(path, trust):
    """Verifies a package file against `trust`; returns its manifest or raises."""
    with Package(path) as p:
        return p.verify(trust)


def inspect(path):
    """The manifest, metadata, prototypes, tensors and sizes of a package (not verified:
    use verify/load), as `pemn inspect --json` prints them."""
    with Package(path) as p:
        return p.inspect()


# ---- packing -------------------------------------------------------------------------------

def _as_le_contiguous(name, a):
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        raise errors.InvalidError(2, "tensor %s: dtype %s has no pemn dtype" % (name, a.dtype))
    le = a.dtype.newbyteorder("<") if a.dtype.byteorder not in "|" else a.dtype
    a = np.asarray(a, dtype=le, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    if a.dtype not in _FROM_NP:
        raise errors.InvalidError(2, "tensor %s: dtype %s has no pemn dtype" % (name, a.dtype))
    if a.ndim > 8:
        raise errors.TooBigError(9, "tensor %s: %d dimensions (at most 8)" % (name, a.ndim))
    return a


def _st_writer(tensors, meta, arrays):
    """A safetensors writer holding `tensors` (numpy arrays kept alive in `arrays`)."""
    w = c_void_p()
    errors.check(lib.pemn_st_writer_new(ctypes.byref(w)))
    try:
        for tname, a in tensors.items():
            a = _as_le_contiguous(tname, a)
            arrays.append(a)
            shape = (c_u64 * 8)(*a.shape)
            err = Err()
            rc = lib.pemn_st_writer_add(w, _b(tname), _FROM_NP[a.dtype], a.ndim, shape,
                                        a.ctypes.data if a.nbytes else None, a.nbytes,
                                        ctypes.byref(err))
            errors.check(rc, err, "tensor %r" % (tname,))
        for k, v in (meta or {}).items():
            errors.check(lib.pemn_st_writer_add_meta(w, _b(k), _b(str(v))),
                         context="metadata %r" % (k,))
    except BaseException:
        lib.pemn_st_writer_free(w)
        raise
    return w


def save_safetensors(tensors, path, meta=None):
    """Writes numpy arrays (and string metadata) as a safetensors file, atomically, with
    libpemn's writer: the checkpoint format `pemn pack` and `pemn eval` read."""
    if not isinstance(tensors, dict):
        tensors = dict(tensors)
    arrays = []
    w = _st_writer(tensors, meta, arrays)
    try:
        err = Err()
        errors.check(lib.pemn_st_writer_write_file(w, _fspath(path), ctypes.byref(err)), err,
                     os.fspath(path))
    finally:
        lib.pemn_st_writer_free(w)


def load_safetensors(path):
    """Reads a safetensors file (checked by libpemn's reader) into a Loaded dict of numpy
    arrays with .meta (its __metadata__). BF16 loads as raw uint16 bits, F8 as uint8."""
    st = c_void_p()
    err = Err()
    errors.check(lib.pemn_st_open_file(_fspath(path), ctypes.byref(st), ctypes.byref(err)), err,
                 os.fspath(path))
    try:
        out = Loaded()
        for j in range(lib.pemn_st_count(st)):
            t = StTensor()
            errors.check(lib.pemn_st_tensor(st, j, ctypes.byref(t)))
            dt = _NP.get(t.dtype, np.dtype("<u2"))
            a = np.empty(tuple(int(t.shape[k]) for k in range(t.ndim)), dtype=dt)
            if a.nbytes != t.nbytes:
                raise errors.CorruptError(4, "tensor %s: size mismatch" % _s(t.name))
            if a.nbytes:
                ctypes.memmove(a.ctypes.data, t.data, a.nbytes)
            out[_s(t.name)] = a
        meta = {}
        k, v = c_char_p(), c_char_p()
        for j in range(lib.pemn_st_meta_count(st)):
            if lib.pemn_st_meta(st, j, ctypes.byref(k), ctypes.byref(v)) == 0:
                meta[_s(k.value)] = _s(v.value)
        out.meta = meta
        return out
    finally:
        lib.pemn_st_free(st)


def _atomic_write(path, data):
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


class PackResult:
    """What pemn.pack did: .data (the package bytes), .path (when written), .size,
    .digest, .strategy, .density, .layers, .protos (as the packer reported them)."""

    def __repr__(self):
        return "PackResult(%s, %d bytes, strategy=%s)" % (self.path or "<bytes>", self.size,
                                                          self.strategy)


def _report(rep):
    layers = []
    for j in range(rep.n_layers):
        L = rep.layers[j]
        d = {"name": _s(L.name), "dtype": DTYPES[L.dtype],
             "shape": [int(L.shape[k]) for k in range(L.ndim)], "masked": bool(L.masked)}
        if L.masked:
            d.update(proto=int(L.proto), scale=float(L.scale), kept=int(L.kept),
                     mask_from="scores" if L.mask_from == 1 else "mask")
        layers.append(d)
    protos = []
    for j in range(rep.n_protos):
        P = rep.protos[j]
        d = {"d_v": int(P.d_v), "seeded": bool(P.seeded)}
        if P.seeded:
            d["seed"] = bytes(P.seed).hex()
        protos.append(d)
    return layers, protos


def pack(tensors, out=None, *, key, name, version, release=1, density=None, strategy="auto",
         generator=None, seeds=None, meta=None, created=None):
    """Packs a checkpoint given as numpy arrays into a signed package, exactly as
    `pemn pack` packs a safetensors file (docs/PACKING.md): `X.weight` (float32) with
    `X.scores` (float32, top-k at `density`) or `X.mask` (uint8/bool/int8) becomes a masked
    layer, everything else is stored dense in its dtype. The masked weights must be
    reproduced bit for bit by the prototypes of `strategy` ("auto", "rp", "mp",
    "one-layer", "mask"), or the packer refuses (UnsupportedError, naming the layer).
    `seeds` (32-byte values or hex, with `generator`) stores seeded prototypes: one seed
    for rp/mp, one per distinct shape (one-layer) or per masked layer (mask). `key` is a
    .key file. Writes `out` atomically when given (nothing is left behind on failure).
    Returns a PackResult."""
    if not isinstance(tensors, dict):
        tensors = dict(tensors)
    arrays = []
    w = _st_writer(tensors, meta, arrays)
    st = c_void_p()
    buf = POINTER(c_u8)()
    res = PackResult()
    try:
        n = c_size_t()
        err = Err()
        errors.check(lib.pemn_st_writer_write_mem(w, ctypes.byref(buf), ctypes.byref(n),
                                                  ctypes.byref(err)), err)
        err = Err()
        errors.check(lib.pemn_st_open_mem(buf, n.value, 0, ctypes.byref(st), ctypes.byref(err)),
                     err)
        opts = PackOpts()
        lib.pemn_pack_opts_init(ctypes.byref(opts))
        opts.name, opts.version, opts.release = _b(name), _b(version), int(release)
        if density is not None:
            opts.density = float(density)
        s = c_int()
        if lib.pemn_pack_strategy_parse(_b(strategy), ctypes.byref(s)):
            raise errors.InvalidError(2, "unknown strategy %r" % (strategy,))
        opts.strategy = s.value
        if created is not None:
            opts.created = int(created)
        seed_arr = None
        if seeds is not None:
            if isinstance(seeds, (bytes, bytearray, str)):
                seeds = [seeds]
            seeds = [_seed_bytes(x) for x in seeds]
            if not seeds:
                raise errors.InvalidError(2, "seeds: empty list")
            if generator is None:
                raise errors.InvalidError(2, "seeds need a generator")
            opts.seeded = 1
            opts.generator = generator_id(generator)
            opts.seed = (c_u8 * 32).from_buffer_copy(seeds[0])
            if len(seeds) > 1:
                seed_arr = ((c_u8 * 32) * len(seeds))()
                for j, x in enumerate(seeds):
                    seed_arr[j] = (c_u8 * 32).from_buffer_copy(x)
                opts.n_seeds = len(seeds)
                opts.seeds = ctypes.cast(seed_arr, POINTER(c_u8 * 32))
        elif generator is not None:
            raise errors.InvalidError(2, "a generator without seeds")
        rep = PackReport()
        pbuf = POINTER(c_u8)()
        plen = c_size_t()
        try:
            with _SecretKey(key) as sk:
                err = Err()
                rc = lib.pemn_pack_safetensors(st, ctypes.byref(opts), ctypes.byref(sk),
                                               ctypes.byref(pbuf), ctypes.byref(plen),
                                               ctypes.byref(rep), ctypes.byref(err))
                errors.check(rc, err, "pack")
            res.data = ctypes.string_at(pbuf, plen.value)
            res.strategy = _s(lib.pemn_pack_strategy_name(rep.strategy))
            res.density = float(rep.density)
            res.layers, res.protos = _report(rep)
        finally:
            if pbuf:
                _libc.free(pbuf)
            lib.pemn_pack_report_free(ctypes.byref(rep))
    finally:
        lib.pemn_st_free(st)
        if buf:
            _libc.free(buf)
        lib.pemn_st_writer_free(w)
    res.size = len(res.data)
    import hashlib
    res.digest = "sha256:" + hashlib.sha256(res.data).hexdigest()
    res.path = None
    if out is not None:
        _atomic_write(out, res.data)
        res.path = os.fspath(out)
    return res
