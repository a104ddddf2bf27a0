"""pemn.client — a pemnd registry from Python: push, pull, ls, tag (libpemn's client)."""
import ctypes
import os

from . import errors
from ._lib import (lib, Err, ClientOptions, Resolved, Listing, FetchOptions, FetchStats,
                   c_void_p, c_int, POINTER)
from .package import Keyring, _keyring, _b, _s, _fspath


def _resolved(r):
    return {"model": _s(r.model), "version": _s(r.version), "tag": _s(r.tag),
            "release": int(r.release), "digest": _s(r.digest), "size": int(r.size),
            "package_url": _s(r.package_url), "signer": _s(r.signer),
            "strategy": _s(r.strategy), "created": int(r.created), "pushed": int(r.pushed),
            "density": float(r.density), "ratio": float(r.ratio),
            "n_params": int(r.n_params), "f32_size": int(r.f32_size)}


def parse_ref(ref):
    """"NAME", "NAME:VERSION" or "NAME@TAG" -> (name, version, tag), "" for absent parts."""
    n, v, t = (ctypes.create_string_buffer(129) for _ in range(3))
    err = Err()
    errors.check(lib.pemn_client_parse_ref(_b(ref), n, v, t, ctypes.byref(err)), err)
    return _s(n.value), _s(v.value), _s(t.value)


class Client:
    """A registry client. `server` is the base URL; `token` a bearer token (publish scope
    for push/tag); `trust` the .pub files (or a Keyring) pulled packages must be signed by;
    `cache_dir` an optional content-addressed cache; `timeout` seconds per operation.
    Errors raise pemn.Error subclasses (HTTPError, AuthError, NotFoundError, ...)."""

    def __init__(self, server=None, token=None, trust=None, cache_dir=None, timeout=None,
                 retries=None):
        server = server or os.environ.get("PEMN_SERVER")
        if not server:
            raise errors.InvalidError(2, "no server URL (argument or $PEMN_SERVER)")
        if token is None:
            token = os.environ.get("PEMN_TOKEN")
        self._kr = _keyring(trust) if trust is not None else None
        o = ClientOptions()
        lib.pemn_client_options_init(ctypes.byref(o))
        o.token = _b(token) if token else None
        o.trusted = self._kr.handle if self._kr else None
        o.cache_dir = _fspath(cache_dir) if cache_dir else None
        if timeout is not None:
            o.deadline_ms = int(timeout * 1000)
        if retries is not None:
            o.max_attempts = int(retries)
        h = c_void_p()
        err = Err()
        errors.check(lib.pemn_client_new(_b(server), ctypes.byref(o), ctypes.byref(h),
                                         ctypes.byref(err)), err, server)
        self._h = h
        self.server = server

    def close(self):
        if getattr(self, "_h", None):
            lib.pemn_client_free(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def __del__(self):
        self.close()

    def push(self, path):
        """Uploads a package file; returns the version dict with "created" (False for an
        identical re-push)."""
        r = Resolved()
        created = c_int()
        err = Err()
        errors.check(lib.pemn_client_push(self._h, _fspath(path), ctypes.byref(r),
                                          ctypes.byref(created), ctypes.byref(err)), err)
        d = _resolved(r)
        d["created"] = bool(created.value)
        return d

    def resolve(self, ref):
        """What the registry says about NAME, NAME:VERSION or NAME@TAG."""
        name, version, tag = parse_ref(ref)
        r = Resolved()
        err = Err()
        errors.check(lib.pemn_client_resolve(self._h, _b(name), _b(version), _b(tag),
                                             ctypes.byref(r), ctypes.byref(err)), err, ref)
        return _resolved(r)

    def pull(self, ref, out=None, min_release=0):
        """Downloads NAME[:VERSION|@TAG] (resuming, retrying), checks its digest and its
        signature against the client's trusted keys and installs it at `out` (default
        NAME-VERSION.pemn) only then. Returns the version dict with "path" and "stats"."""
        if self._kr is None or len(self._kr) == 0:
            raise errors.UntrustedError(6, "pull needs trusted keys (Client(trust=...))")
        name, version, tag = parse_ref(ref)
        if out is None:
            out = "%s-%s.pemn" % (name, self.resolve(ref)["version"])
        fo = FetchOptions()
        fo.min_release = int(min_release)
        r = Resolved()
        st = FetchStats()
        err = Err()
        errors.check(lib.pemn_client_pull(self._h, _b(name), _b(version), _b(tag),
                                          _fspath(out), ctypes.byref(fo), ctypes.byref(r),
                                          ctypes.byref(st), ctypes.byref(err)), err, ref)
        d = _resolved(r)
        d["path"] = os.fspath(out)
        d["stats"] = {"bytes_received": int(st.bytes_received), "requests": int(st.requests),
                      "resumes": int(st.resumes), "restarts": int(st.restarts),
                      "from_cache": bool(st.from_cache), "delta": bool(st.delta_used),
                      "delta_bytes": int(st.delta_bytes)}
        return d

    def ls(self, name=None):
        """Every model (its latest version) or, given a name, that model's versions (newest
        first) and tags: {"versions": [...], "tags": {tag: version}}."""
        lp = POINTER(Listing)()
        err = Err()
        errors.check(lib.pemn_client_list(self._h, _b(name) if name else None,
                                          ctypes.byref(lp), ctypes.byref(err)), err)
        try:
            L = lp.contents
            vs = [_resolved(L.versions[j]) for j in range(L.count)]
            if not name:
                for j, v in enumerate(vs):
                    v["n_versions"] = int(L.n_versions[j]) if L.n_versions else None
                return vs
            tags = {_s(L.tags[j].tag): _s(L.tags[j].version) for j in range(L.n_tags)}
            return {"versions": vs, "tags": tags}
        finally:
            lib.pemn_listing_free(lp)

    def tag(self, name, version, tag):
        """Points tag at a version."""
        r = Resolved()
        err = Err()
        errors.check(lib.pemn_client_tag(self._h, _b(name), _b(version), _b(tag),
                                         ctypes.byref(r), ctypes.byref(err)), err)
        return _resolved(r)

    def untag(self, name, tag):
        err = Err()
        errors.check(lib.pemn_client_untag(self._h, _b(name), _b(tag), ctypes.byref(err)), err)


__all__ = ["Client", "Keyring", "parse_ref"]
