"""pemn (the ctypes binding): ABI, generators, top-k, pack/load round trips, bad input."""
import json
import os
import re
import subprocess

import numpy as np
import pytest

import pemn
from pemn import _lib
from conftest import ROOT, BUILD, PEMN_BIN, run


# ---- the binding's view of the C structures --------------------------------------------------

def test_abi_matches_c_layout():
    tool = os.path.join(ROOT, BUILD, "tests", "tools", "pemn_abi")
    out = subprocess.run([tool], check=True, capture_output=True, text=True).stdout
    seen = 0
    for line in out.splitlines():
        what, kind, n = line.split()
        if kind == "size":
            assert _lib.STRUCTS[what] and ctypes_sizeof(_lib.STRUCTS[what]) == int(n), what
        else:
            s, f = what.split(".")
            assert getattr(_lib.STRUCTS[s], f).offset == int(n), what
        seen += 1
    assert seen > 100


def ctypes_sizeof(cls):
    import ctypes
    return ctypes.sizeof(cls)


def test_library_found_in_build_tree():
    assert pemn.library_path.startswith(ROOT) or os.environ.get("PEMN_LIB")


# ---- generators: the test vectors of docs/FORMAT.md ---------------------------------------------

def format_vectors():
    text = open(os.path.join(ROOT, "docs", "FORMAT.md")).read()
    text = text[text.index("### Test vectors"):]
    vecs = []
    gen = None
    cur = None
    for line in text.splitlines():
        m = re.match(r"#### (chacha20-\w+)", line)
        if m:
            gen = m.group(1)
        m = re.match(r"scale = ([\d.]+), first = (\d+)", line)
        if m:
            cur = (gen, float(m.group(1)), int(m.group(2)))
        m = re.match(r"\s+bits: (.*)", line)
        if m and cur:
            vecs.append(cur + ([int(b, 16) for b in m.group(1).split()],))
            cur = None
    return vecs


def test_generator_test_vectors():
    vecs = format_vectors()
    assert len(vecs) == 24  # 3 generators x 2 scales x 4 first indices
    seed = bytes(range(32))
    for gen, scale, first, bits in vecs:
        v = pemn.prototype(gen, seed, 8, scale=scale, first=first)
        assert v.dtype == np.float32
        assert list(v.view(np.uint32)) == bits, (gen, scale, first)


def test_generator_names_ids_and_errors():
    assert pemn.generator_id("signed") == 3 and pemn.generator_id("chacha20-uniform") == 1
    assert pemn.generator_name(2) == "chacha20-normal"
    with pytest.raises(pemn.UnsupportedError):
        pemn.prototype("gaussian", bytes(32), 4)
    with pytest.raises(pemn.InvalidError):
        pemn.prototype("signed", bytes(31), 4)
    with pytest.raises(pemn.InvalidError) as e:
        pemn.prototype("signed", bytes(32), 8, first=2**64 - 4)  # first + n overflows
    assert e.value.code == "EINVAL" and e.value.rc == 2
    # a range equals the same slice of a longer run
    a = pemn.prototype("normal", "ab" * 32, 100)
    b = pemn.prototype("normal", "ab" * 32, 10, first=37)
    assert np.array_equal(a[37:47].view(np.uint32), b.view(np.uint32))


# ---- top-k ---------------------------------------------------------------------------------------

def test_topk_rule():
    s = np.array([0.5, -0.5, 0.0, -0.0, np.nan, 2.0, -3.0, 0.5], dtype=np.float32)
    assert pemn.topk_count(8, 0.5) == 4
    # |s| order: -3.0 (6), 2.0 (5), 0.5 (0), -0.5 (1), 0.5 (7) ... ties -> lower index
    assert list(pemn.topk_mask(s, 0.5)) == [1, 1, 0, 0, 0, 1, 1, 0]
    assert list(pemn.topk_mask(s, 1.0)) == [1] * 8
    # NaN ranks below every number, -0.0 ties with 0.0 (lower index first)
    assert pemn.topk_count(8, 0.7) == 6  # int(0.30000000000000004 * 8) = 2 dropped
    assert list(pemn.topk_mask(s, 0.7)) == [1, 1, 1, 0, 0, 1, 1, 1]
    with pytest.raises(pemn.InvalidError):
        pemn.topk_mask(s, 0.0)


# ---- pack / load round trips -------------------------------------------------------------------

DTYPES = [np.bool_, np.uint8, np.int8, np.int16, np.uint16, np.float16, np.int32, np.uint32,
          np.float32, np.float64, np.int64, np.uint64]


def test_roundtrip_every_dtype(tmp_path, keys):
    rng = np.random.default_rng(1)
    t = {}
    for dt in DTYPES:
        if dt == np.bool_:
            a = rng.integers(0, 2, (3, 5)).astype(dt)
        elif np.issubdtype(dt, np.integer):
            info = np.iinfo(dt)
            a = rng.integers(info.min, info.max, (3, 5), dtype=dt, endpoint=True)
        else:
            a = rng.standard_normal((3, 5)).astype(dt)
            a[0, 0], a[0, 1], a[0, 2] = np.inf, -0.0, np.nan
        t["t_" + np.dtype(dt).name] = a
    t["scalar"] = np.array(7, dtype=np.int64)      # 0-d (num_batches_tracked)
    t["empty"] = np.zeros((0, 4), dtype=np.float32)
    t["big_endian"] = np.arange(6, dtype=">f4").reshape(2, 3)
    out = tmp_path / "d.pemn"
    res = pemn.pack(t, out, key=keys[0], name="dt", version="1.0", release=3,
                    meta={"who": "test"})
    assert res.strategy == "dense" and res.size == os.path.getsize(out)
    d = pemn.load(out, trust=[keys[1]])
    assert list(d.keys()) == list(t.keys())
    for k, a in t.items():
        b = d[k]
        assert b.shape == a.shape, k
        assert b.dtype == a.dtype.newbyteorder("<") or b.dtype == a.dtype, k
        assert a.astype(b.dtype).tobytes() == b.tobytes(), k
    assert d.manifest["name"] == "dt" and d.manifest["release"] == 3
    assert d.manifest["digest"] == res.digest
    assert d.meta["who"] == "test"


def tiled(proto, shape, scale):
    n = int(np.prod(shape))
    return (np.float32(scale) * np.resize(proto, n)).astype(np.float32).reshape(shape)


def expected_expansion(w, m):
    return (w * m.astype(np.float32)).astype(np.float32)


@pytest.mark.parametrize("strategy", ["rp", "mp", "one-layer", "mask", "auto"])
@pytest.mark.parametrize("seeded", [False, True])
@pytest.mark.parametrize("source", ["mask", "scores"])
def test_roundtrip_strategies(tmp_path, keys, strategy, seeded, source):
    rng = np.random.default_rng(7)
    shapes = [(16, 24), (8, 16), (16, 24), (4, 2, 3, 3)]
    gen = "uniform"
    if strategy in ("rp", "mp", "auto"):
        n_max = max(int(np.prod(s)) for s in shapes)
        d_v = 37 if strategy in ("rp", "auto") else n_max
        seeds = [bytes([9]) * 32]
        u = pemn.prototype(gen, seeds[0], d_v) if seeded else \
            rng.standard_normal(d_v).astype(np.float32)
        protos = [u] * len(shapes)
        # explicit prototypes: the reference (longest) layer has scale 1.0, others powers of 2
        scales = [1.0, 0.5, 1.0, 0.25] if not seeded else [0.3, 1.7, 0.3, 0.05]
    elif strategy == "one-layer":
        seeds = [bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32]
        per = {}
        protos = []
        for s in shapes:
            if s not in per:
                k = len(per)
                n = int(np.prod(s))
                per[s] = pemn.prototype(gen, seeds[k], n) if seeded else \
                    rng.standard_normal(n).astype(np.float32)
            protos.append(per[s])
        scales = [1.0, 1.0, 2.0, 1.0] if not seeded else [0.3, 0.2, 0.6, 0.1]
    else:
        seeds = [bytes([k + 1]) * 32 for k in range(len(shapes))]
        protos = [pemn.prototype(gen, seeds[k], int(np.prod(s))) if seeded else
                  rng.standard_normal(int(np.prod(s))).astype(np.float32)
                  for k, s in enumerate(shapes)]
        scales = [1.0] * 4 if not seeded else [0.3, 0.2, 0.6, 0.1]
    t = {}
    masks = {}
    for k, (s, p, sc) in enumerate(zip(shapes, protos, scales)):
        w = tiled(p, s, sc)
        t["l%d.weight" % k] = w
        if source == "mask":
            m = (rng.random(s) < 0.4).astype(np.uint8)
            t["l%d.mask" % k] = m
        else:
            sc_ = rng.standard_normal(s).astype(np.float32)
            t["l%d.scores" % k] = sc_
            m = pemn.topk_mask(sc_, 0.3)
        masks["l%d.weight" % k] = m
    t["bn.running_var"] = rng.random(8).astype(np.float32)
    t["bn.num_batches_tracked"] = np.array(12, dtype=np.int64)
    kw = dict(seeds=seeds, generator=gen) if seeded else {}
    if seeded and strategy == "auto":
        kw["seeds"] = seeds[:1]
    out = tmp_path / "m.pemn"
    res = pemn.pack(t, out, key=keys[0], name="s", version="1", strategy=strategy,
                    density=0.3, **kw)
    want = {"auto": "rp"}.get(strategy, strategy)
    assert res.strategy == want
    info = pemn.inspect(out)
    if seeded:
        assert info["sizes"]["proto_value_bytes"] == 0
        assert all(p["kind"] == "seeded" for p in info["protos"])
        assert [p["seed"] for p in info["protos"]] == [s.hex() for s in kw["seeds"]]
    d = pemn.load(out, trust=keys[1])
    assert sorted(d) == sorted(list(masks) + ["bn.running_var", "bn.num_batches_tracked"])
    for name, m in masks.items():
        want_w = expected_expansion(t[name], m)
        assert d[name].dtype == np.float32
        assert d[name].view(np.uint32).tobytes() == want_w.view(np.uint32).tobytes(), name
    assert d["bn.num_batches_tracked"].dtype == np.int64


def test_inspect_equals_cli(tmp_path, keys):
    w = tiled(pemn.prototype("signed", bytes(32), 10), (20, 10), 0.25)
    out = tmp_path / "i.pemn"
    pemn.pack({"a.weight": w, "a.mask": (w > 0).astype(np.uint8),
               "b": np.ones(3, np.float16)}, out, key=keys[0], name="i", version="2",
              seeds=[bytes(32)], generator="signed", meta={"k": "v"})
    cli = json.loads(run(PEMN_BIN, "inspect", out, "--json").stdout)
    py = pemn.inspect(out)
    for k in ("name", "version", "release", "created", "strategy", "format", "digest",
              "signer", "signer_key", "meta", "protos", "tensors"):
        assert py[k] == pytest.approx(cli[k]) if k == "density" else py[k] == cli[k], k
    for k, v in cli["sizes"].items():
        assert py["sizes"][k] == pytest.approx(v), k


def test_safetensors_roundtrip_and_cli_pack(tmp_path, keys):
    u = pemn.prototype("signed", bytes(range(32)), 5)
    w = tiled(u, (6, 5), 0.5)
    m = np.tile([1, 0, 1, 1, 0], 6).reshape(6, 5).astype(np.uint8)
    t = {"fc.weight": w, "fc.mask": m, "fc.bias": np.arange(6, dtype=np.float64)}
    st = tmp_path / "c.safetensors"
    pemn.save_safetensors(t, st, meta={"pemn.density": "0.5"})
    back = pemn.load_safetensors(st)
    assert back.meta == {"pemn.density": "0.5"}
    for k in t:
        assert back[k].dtype == t[k].dtype and back[k].tobytes() == t[k].tobytes()
    # `pemn pack` of the file and pemn.pack of the arrays give the same network
    run(PEMN_BIN, "pack", "--in", st, "--key", keys[0], "--name", "c", "--version", "1",
        "--release", "1", "--seed", bytes(range(32)).hex(), "--generator", "signed", "--out", tmp_path / "cli.pemn")
    pemn.pack(t, tmp_path / "py.pemn", key=keys[0], name="c", version="1",
              seeds=[bytes(range(32))], generator="signed")
    a = pemn.load(tmp_path / "cli.pemn", trust=keys[1])
    b = pemn.load(tmp_path / "py.pemn", trust=keys[1])
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].tobytes() == b[k].tobytes()
    assert a.info["protos"] == b.info["protos"]


# ---- bad input ---------------------------------------------------------------------------------

@pytest.fixture()
def good(tmp_path, keys):
    w = tiled(pemn.prototype("normal", bytes(32), 64), (32, 16), 0.1)
    out = tmp_path / "good.pemn"
    pemn.pack({"x.weight": w, "x.mask": (w > 0).astype(np.uint8)}, out, key=keys[0],
              name="g", version="1", seeds=[bytes(32)], generator="normal")
    return out


def test_corrupt_package(tmp_path, keys, good):
    data = bytearray(good.read_bytes())
    bad = tmp_path / "bad.pemn"
    data[len(data) - 200] ^= 0x01  # inside DATA: structure fine, digest wrong
    bad.write_bytes(bytes(data))
    with pytest.raises(pemn.CorruptError) as e:
        pemn.load(bad, trust=keys[1])
    assert e.value.rc == 4 and e.value.code == "ECORRUPT" and isinstance(e.value, pemn.Error)
    with pytest.raises(pemn.CorruptError):
        pemn.verify(bad, trust=keys[1])
    bad.write_bytes(good.read_bytes()[:-1])  # truncated: structure refused at open
    with pytest.raises(pemn.CorruptError):
        pemn.inspect(bad)
    bad.write_bytes(b"not a package at all" * 20)
    with pytest.raises(pemn.CorruptError):
        pemn.load(bad, trust=keys[1])
    sig = bytearray(good.read_bytes())
    sig[-1] ^= 0x80  # the signature
    bad.write_bytes(bytes(sig))
    with pytest.raises(pemn.BadSignatureError):
        pemn.load(bad, trust=keys[1])


def test_untrusted_signer(good, keys):
    with pytest.raises(pemn.UntrustedError) as e:
        pemn.load(good, trust=[keys[3]])
    assert "not trusted" in str(e.value)
    with pytest.raises(pemn.UntrustedError):
        pemn.load(good, trust=[])
    assert pemn.verify(good, trust=[keys[3], keys[1]])["name"] == "g"


def test_missing_files(tmp_path, keys):
    with pytest.raises(pemn.Error):
        pemn.load(tmp_path / "nope.pemn", trust=keys[1])
    with pytest.raises(pemn.Error):
        pemn.load(tmp_path / "nope.pemn", trust=tmp_path / "nope.pub")


def test_non_tiling_weight_leaves_nothing(tmp_path, keys):
    u = pemn.prototype("signed", bytes(32), 10)
    w = tiled(u, (10, 10), 1.0)
    w[7, 3] = np.nextafter(w[7, 3], np.float32(9))  # one weight off the tiling
    d = tmp_path / "out"
    d.mkdir()
    existing = d / "model.pemn"
    existing.write_bytes(b"previous release")
    with pytest.raises(pemn.UnsupportedError) as e:
        pemn.pack({"fc.weight": w, "fc.mask": np.ones((10, 10), np.uint8)}, existing,
                  key=keys[0], name="n", version="1", seeds=[bytes(32)], generator="signed",
                  strategy="rp")
    assert "fc.weight" in str(e.value)
    assert os.listdir(d) == ["model.pemn"]
    assert existing.read_bytes() == b"previous release"
    with pytest.raises(pemn.UnsupportedError):  # explicit: fc2 is no prefix of fc's tiling
        pemn.pack({"fc.weight": w, "fc.mask": np.ones((10, 10), np.uint8),
                   "fc2.weight": np.random.default_rng(1).random((3, 4), np.float32),
                   "fc2.mask": np.ones((3, 4), np.uint8)}, d / "x.pemn",
                  key=keys[0], name="n", version="1", strategy="rp")
    assert os.listdir(d) == ["model.pemn"]


def test_bad_arguments(tmp_path, keys):
    w = np.ones((2, 2), np.float32)
    with pytest.raises(pemn.InvalidError):
        pemn.pack({"w": w}, tmp_path / "a.pemn", key=keys[0], name="bad name!", version="1")
    with pytest.raises(pemn.InvalidError):
        pemn.pack({"w": w}, tmp_path / "a.pemn", key=keys[0], name="n", version="1",
                  strategy="zigzag")
    with pytest.raises(pemn.Error):
        pemn.pack({"w": w}, tmp_path / "a.pemn", key=tmp_path / "none.key", name="n",
                  version="1")
    with pytest.raises(pemn.InvalidError):
        pemn.pack({"w": np.array(["s"])}, tmp_path / "a.pemn", key=keys[0], name="n",
                  version="1")
    with pytest.raises(pemn.CorruptError):  # both siblings at once
        pemn.pack({"a.weight": w, "a.mask": w.astype(np.uint8), "a.scores": w},
                  tmp_path / "a.pemn", key=keys[0], name="n", version="1")
    with pytest.raises(pemn.ExistsError):
        pemn.keygen(keys[0][:-4])  # never overwrites a key
    assert not os.path.exists(tmp_path / "a.pemn")


def test_package_object(good, keys):
    with pemn.open(good) as p:
        assert p.manifest["name"] == "g"
        assert p.tensors()[0]["masked"] is True
        p.verify(keys[1])
        a = p.array("x.weight")
        assert a.shape == (32, 16)
        with pytest.raises(pemn.NotFoundError):
            p.array("nope")
    with pytest.raises(pemn.InvalidError):
        p.array(0)  # closed
    with pemn.Package(data=good.read_bytes()) as q:  # from memory (copied)
        q.verify([keys[1]])
        assert q.array(0).tobytes() == pemn.load(good, trust=keys[1])["x.weight"].tobytes()
    with pytest.raises(pemn.CorruptError):
        pemn.Package(data=bytes(300))
    with pytest.raises(pemn.VersionError):  # magic, then major version 0
        pemn.Package(data=b"\x89PEMN\r\n\x1a" + bytes(300))
