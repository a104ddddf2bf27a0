"""pemn — PEMN packages from Python, a thin binding over libpemn.so (ctypes).

    import pemn
    w = pemn.load("model.pemn", trust=["alice.pub"])      # dict name -> numpy array
    pemn.verify("model.pemn", trust="alice.pub")
    pemn.inspect("model.pemn")                            # manifest, tensors, sizes
    pemn.pack({"fc.weight": w, "fc.mask": m}, "out.pemn", key="alice.key",
              name="net", version="1.0", seeds=[seed], generator="signed")
    pemn.prototype("signed", seed, 236)                   # bit-identical to libpemn
    with pemn.Client("http://127.0.0.1:8080", token, trust=["alice.pub"]) as c:
        c.push("out.pemn"); c.pull("net@stable", "dev.pemn")

PyTorch layers are in pemn.torch (imported only on request; needs python3-torch).
The format itself is implemented once, in C; see docs/PYTHON.md.
"""
from ._lib import path as library_path
from .errors import (Error, NoMemoryError, InvalidError, IOError, CorruptError,
                     BadSignatureError, UntrustedError, NotFoundError, ExistsError, TooBigError,
                     VersionError, DatabaseError, HTTPError, DigestError, RollbackError,
                     AuthError, ConflictError, TimeoutError, UnsupportedError, CanceledError)
from .package import (Package, Keyring, Loaded, PackResult, open, load, verify, inspect, pack,
                      prototype, save_safetensors, load_safetensors, topk_count, topk_mask, keygen, generator_id, generator_name,
                      GENERATORS)
from .client import Client, parse_ref

__version__ = "0.1.0"

__all__ = [
    "library_path", "Error", "NoMemoryError", "InvalidError", "IOError", "CorruptError",
    "BadSignatureError", "UntrustedError", "NotFoundError", "ExistsError", "TooBigError",
    "VersionError", "DatabaseError", "HTTPError", "DigestError", "RollbackError", "AuthError",
    "ConflictError", "TimeoutError", "UnsupportedError", "CanceledError", "Package",
    "Keyring", "Loaded", "PackResult", "open", "load", "verify", "inspect", "pack",
    "prototype", "save_safetensors", "load_safetensors", "topk_count", "topk_mask", "keygen", "generator_id", "generator_name",
    "GENERATORS", "Client", "parse_ref",
]
