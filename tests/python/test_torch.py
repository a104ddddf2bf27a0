"""pemn.torch: layers on pemn's prototypes, top-k, gradient, pack/load, CNN smoke, interop
with `pemn train` / `pemn eval` / `pemn pull --expand`."""
import json
import os
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import pemn  # noqa: E402
import pemn.torch as pt  # noqa: E402
from conftest import PEMN_BIN, FMNIST, have_fmnist, run  # noqa: E402

torch.set_num_threads(1)
needs_data = pytest.mark.skipif(not have_fmnist(), reason="dataset-fashion-mnist missing")


def mlp(masked=True, sizes=(784, 300, 100, 10), density=0.5):
    layers = []
    for i in range(len(sizes) - 1):
        L = pt.MaskedLinear(sizes[i], sizes[i + 1], density=density) if masked else \
            nn.Linear(sizes[i], sizes[i + 1], bias=False)
        layers.append(("fc%d" % (i + 1), L))
        if i < len(sizes) - 2:
            layers.append(("relu%d" % (i + 1), nn.ReLU()))
    return nn.Sequential(__import__("collections").OrderedDict(layers))


class SmallCNN(nn.Module):
    def __init__(self, masked=True):
        super().__init__()
        C = (lambda i, o: pt.MaskedConv2d(i, o, 3, padding=1)) if masked else \
            (lambda i, o: nn.Conv2d(i, o, 3, padding=1, bias=False))
        self.c1, self.b1 = C(1, 4), nn.BatchNorm2d(4)
        self.c2, self.b2 = C(4, 4), nn.BatchNorm2d(4)
        self.fc = pt.MaskedLinear(4 * 7 * 7, 10, bias=True) if masked else nn.Linear(196, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        return self.fc(x.flatten(1))


# ---- the layers against `pemn train` -----------------------------------------------------------

@pytest.mark.parametrize("strategy", ["rp", "one-layer", "mp", "mask"])
def test_prototypes_match_pemn_train(tmp_path, keys, strategy):
    """Same architecture and seed: the same prototype seeds, lengths and per-layer scales
    as the C trainer, hence the same frozen weights."""
    if not have_fmnist():
        pytest.skip("dataset-fashion-mnist missing")
    out = tmp_path / "c.pemn"
    run(PEMN_BIN, "train", "--mode", "mask", "--strategy", strategy, "--arch", "784-32-32-10",
        "--epochs", "1", "--train-limit", "256", "--test-limit", "64", "--seed", "5",
        "--generator", "uniform", "--key", keys[0], "--name", "c", "--version", "1", "--out",
        out, "--quiet", "--no-epoch-eval")
    info = pemn.inspect(out)
    net = mlp(sizes=(784, 32, 32, 10))
    plan = pt.init_prototypes(net, strategy, 1e-3, "uniform", 5)
    assert [p["seed"].hex() for p in plan] == [p["seed"] for p in info["protos"]]
    assert [p["d_v"] for p in plan] == [p["d_v"] for p in info["protos"]]
    c = pemn.load(out, trust=keys[1])
    for (name, m), t in zip(pt.masked_layers(net), info["tensors"]):
        assert m.pemn["scale"] == t["scale"] and m.pemn["proto"] == t["proto"]
        # the C model's kept weights are exactly our frozen weights there
        w = m.weight.numpy()
        kept = c[name + ".weight"] != 0
        assert np.array_equal(w[kept].view(np.uint32), c[name + ".weight"][kept].view(np.uint32))


def test_topk_matches_library():
    g = torch.Generator().manual_seed(3)
    for n, k in [(1000, 0.5), (999, 0.3), (17, 1.0), (64, 0.01)]:
        s = torch.randn(n, generator=g)
        s[::5] = 0.0
        s[1::7] = -0.0
        s[::13] = s[0]  # ties
        s[3] = float("nan")
        s[40 % n] = float("nan")
        want = pemn.topk_mask(s.numpy(), k)
        got = pt.topk_mask(s, k).numpy().astype(np.uint8)
        assert np.array_equal(want, got), (n, k)
        assert int(got.sum()) == pemn.topk_count(n, k)


def test_straight_through_gradient():
    torch.manual_seed(0)
    L = pt.MaskedLinear(6, 4, density=0.5)
    pt.init_prototypes(nn.Sequential(L), "mask", generator="normal", seed=2)
    x = torch.randn(3, 6)
    y = L(x)
    g = torch.randn_like(y)
    y.backward(g)
    dweff = g.t() @ x  # dL/dw_eff
    want = dweff * L.weight * torch.sign(L.scores.detach())
    assert torch.allclose(L.scores.grad, want, rtol=1e-6, atol=1e-7)
    assert L.weight.grad is None and not L.weight.requires_grad
    assert "weight" not in dict(L.named_parameters())
    # the forward pass uses exactly weight * mask
    assert torch.equal(y.detach(), F.linear(x, L.weight * L.mask().float()))


def test_bad_arguments():
    with pytest.raises(ValueError):
        pt.MaskedLinear(3, 3, density=0.0)
    with pytest.raises(ValueError):
        pt.init_prototypes(nn.Sequential(nn.Linear(2, 2)), "rp")
    with pytest.raises(ValueError):
        pt.init_prototypes(mlp(sizes=(4, 4)), "zigzag")
    with pytest.raises(ValueError):  # packing before the prototypes are set
        pt.pack(mlp(sizes=(4, 4)), None, key="k", name="n", version="1")


# ---- pack / load --------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["rp", "mp", "one-layer", "mask"])
@pytest.mark.parametrize("generator", ["signed", "uniform", "normal"])
def test_pack_roundtrip(tmp_path, keys, strategy, generator):
    torch.manual_seed(1)
    net = SmallCNN()
    pt.init_prototypes(net, strategy, 0.05, generator, seed=9)
    net.train()
    net(torch.randn(8, 1, 28, 28))  # batch-norm statistics move
    net.eval()
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        want = net(x)
    res = pt.pack(net, tmp_path / "n.pemn", key=keys[0], name="cnn", version="1")
    assert res.strategy == strategy
    info = pemn.inspect(tmp_path / "n.pemn")
    assert info["sizes"]["proto_value_bytes"] == 0  # seeds only
    assert all(p["kind"] == "seeded" and len(bytes.fromhex(p["seed"])) == 32
               for p in info["protos"])
    assert json.loads(info["meta"]["pemn.protos"])[0]["seed"] == info["protos"][0]["seed"]
    dense = SmallCNN(masked=False)
    sd = pt.load_state_dict(tmp_path / "n.pemn", trust=keys[1])
    assert sd["b1.num_batches_tracked"].dtype == torch.int64
    dense.load_state_dict(sd)
    dense.eval()
    with torch.no_grad():
        got = dense(x)
    assert torch.equal(got, want)  # bit for bit
    for name, m in pt.masked_layers(net):
        a = (m.weight * m.mask().float()).numpy()
        assert a.view(np.uint32).tobytes() == sd[name + ".weight"].numpy().view(
            np.uint32).tobytes()


@pytest.mark.parametrize("strategy", ["rp", "one-layer", "mask"])
def test_checkpoint_packs_with_cli(tmp_path, keys, strategy):
    """save_checkpoint writes what `pemn pack --seeds-from-meta` takes (X.weight + X.scores
    and the seeds): the CLI's package expands to the same network as pemn.torch.pack's."""
    torch.manual_seed(2)
    net = SmallCNN()
    pt.init_prototypes(net, strategy, 0.05, "normal", seed=3)
    st = tmp_path / "ck.safetensors"
    pt.save_checkpoint(net, st)
    back = pemn.load_safetensors(st)
    assert "c1.scores" in back and "c1.mask" not in back
    run(PEMN_BIN, "pack", "--in", st, "--key", keys[0], "--name", "ck", "--version", "1",
        "--release", "1", "--strategy", strategy, "--seeds-from-meta", "--out",
        tmp_path / "cli.pemn")
    pt.pack(net, tmp_path / "py.pemn", key=keys[0], name="ck", version="1")
    a = pemn.load(tmp_path / "cli.pemn", trust=keys[1])
    b = pemn.load(tmp_path / "py.pemn", trust=keys[1])
    assert sorted(a) == sorted(b)
    for k in b:
        assert a[k].tobytes() == b[k].tobytes(), k
    assert a.info["protos"] == b.info["protos"]
    assert a.info["sizes"]["proto_value_bytes"] == 0


def test_pack_dense_model(tmp_path, keys):
    net = mlp(masked=False, sizes=(5, 3))
    res = pt.pack(net, tmp_path / "d.pemn", key=keys[0], name="d", version="1")
    assert res.strategy == "dense"
    sd = pt.load_state_dict(tmp_path / "d.pemn", trust=keys[1])
    assert torch.equal(sd["fc1.weight"], net.fc1.weight.detach())


def test_load_untrusted_raises(tmp_path, keys):
    net = mlp(sizes=(6, 3))
    pt.init_prototypes(net, "rp", 0.5)
    pt.pack(net, tmp_path / "u.pemn", key=keys[2], name="u", version="1")
    with pytest.raises(pemn.UntrustedError):
        pt.load_state_dict(tmp_path / "u.pemn", trust=[keys[1]])


# ---- a short CNN training run --------------------------------------------------------------------

@needs_data
def test_cnn_training_smoke(tmp_path, keys):
    import fmnist_cnn as ex
    rc = ex.main(["--mode", "mask", "--strategy", "rp", "--epochs", "1", "--train-limit",
                  "3000", "--test-limit", "1000", "--width", "8", "--key", keys[0], "--trust",
                  keys[1], "--out", str(tmp_path / "cnn.pemn"), "--report",
                  str(tmp_path / "r.json"), "--quiet", "--data", FMNIST])
    r = json.load(open(tmp_path / "r.json"))
    assert rc == 0
    assert r["accuracy"] > 0.5  # chance is 0.1
    assert r["accuracy"] == r["package_accuracy"] and r["identical_predictions"]
    pemn.verify(tmp_path / "cnn.pemn", trust=keys[1])
    assert r["package_bytes"] < r["f32_bytes"] / 10


# ---- interop with the C tools --------------------------------------------------------------------

def torch_from_c_model(arrays, model):
    """A torch forward function for the MLP a `pemn train` package describes."""
    inp = model["input"]
    lut = ((np.arange(256, dtype=np.float32) * np.float32(inp["scale"]) -
            np.float32(inp["mean"])) / np.float32(inp["std"])).astype(np.float32)
    mods = []
    for L in model["layers"]:
        if L["op"] == "linear":
            lin = nn.Linear(L["in"], L["out"], bias="bias" in L)
            lin.weight.data = torch.from_numpy(arrays[L["weight"]])
            if "bias" in L:
                lin.bias.data = torch.from_numpy(arrays[L["bias"]])
            mods.append(lin)
        elif L["op"] == "relu":
            mods.append(nn.ReLU())
        else:
            raise AssertionError("op " + L["op"])
    net = nn.Sequential(*mods).eval()
    return lut, net


def confusion(pred, y, n=10):
    c = np.zeros((n, n), dtype=np.int64)
    np.add.at(c, (y, pred), 1)
    return c


def eval_confusion(text):
    rows = [r for r in text.splitlines() if re.match(r"\s*\d+ .*%$", r)]
    m = np.array([[int(v) for v in r.split()[-11:-1]] for r in rows])
    assert m.shape == (10, 10), text
    return m


@needs_data
def test_interop_pemn_train_to_torch(tmp_path, keys):
    import fmnist_cnn as ex
    out = tmp_path / "c.pemn"
    run(PEMN_BIN, "train", "--mode", "mask", "--epochs", "1", "--train-limit", "3000",
        "--test-limit", "1000", "--key", keys[0], "--name", "c", "--version", "1", "--out",
        out, "--quiet")
    ev = run(PEMN_BIN, "eval", out, "--trust", keys[1], "--limit", "1000", "--verbose")
    acc = float(re.search(r"test accuracy ([\d.]+)%", ev.stdout).group(1))
    arrays = pemn.load(out, trust=keys[1])
    lut, net = torch_from_c_model(arrays, json.loads(arrays.meta["pemn.model"]))
    x, y = ex.load_split(FMNIST, "t10k", 1000)
    with torch.no_grad():
        pred = net(torch.from_numpy(lut[x.reshape(len(y), -1)])).argmax(1).numpy()
    assert np.array_equal(confusion(pred, y.astype(np.int64)), eval_confusion(ev.stdout))
    assert round(100 * float((pred == y).mean()), 2) == acc


@needs_data
def test_interop_torch_to_pull_expand(tmp_path, keys, pemnd):
    import fmnist_cnn as ex
    url, token = pemnd
    torch.manual_seed(4)
    x, y = ex.load_split(FMNIST, "train", 1000)
    lut = ex.input_lut(x)
    X = ex.to_tensor(x, lut)
    net = ex.ConvNet(masked=True, width=4)
    pt.init_prototypes(net, "rp", 1e-3, "signed", 4)
    ex.train(net, X, y, 1, 0.1, 100, 4)
    xt, yt = ex.load_split(FMNIST, "t10k", 500)
    Xt = ex.to_tensor(xt, lut)
    want = ex.predict(net, Xt)
    pkg = tmp_path / "t.pemn"
    pt.pack(net, pkg, key=keys[0], name="pycnn", version="1.0", release=1)
    with pemn.Client(url, token, trust=[keys[1]]) as c:
        v = c.push(pkg)
        assert v["created"] and v["model"] == "pycnn"
        assert c.push(pkg)["created"] is False
        c.tag("pycnn", "1.0", "stable")
        ls = c.ls("pycnn")
        assert ls["tags"] == {"stable": "1.0"} and ls["versions"][0]["digest"] == v["digest"]
        assert "pycnn" in [m["model"] for m in c.ls()]
        got = c.pull("pycnn@stable", tmp_path / "py-pulled.pemn")
        assert got["digest"] == v["digest"]
    env = dict(os.environ, PEMN_SERVER=url, PEMN_TOKEN=token)
    run(PEMN_BIN, "pull", "pycnn@stable", "--trust", keys[1], "--out", tmp_path / "p.pemn",
        "--expand", tmp_path / "p.safetensors", "--no-cache", "--quiet", env=env)
    st = pemn.load_safetensors(tmp_path / "p.safetensors")
    dense = ex.ConvNet(masked=False, width=4)
    dense.load_state_dict({k: torch.from_numpy(v) for k, v in st.items()})
    assert np.array_equal(ex.predict(dense, Xt), want)


def test_client_errors(tmp_path, keys, pemnd):
    url, token = pemnd
    with pemn.Client(url, None, trust=[keys[1]]) as c:
        with pytest.raises(pemn.NotFoundError):
            c.resolve("no-such-model")
        with pytest.raises(pemn.NotFoundError):
            c.pull("no-such-model", tmp_path / "x.pemn")
        assert not os.path.exists(tmp_path / "x.pemn")
    net = mlp(sizes=(6, 3))
    pt.init_prototypes(net, "rp", 0.5)
    pt.pack(net, tmp_path / "m.pemn", key=keys[2], name="mal", version="1")
    with pemn.Client(url, token) as c:
        with pytest.raises(pemn.Error) as e:  # the registry refuses an unknown signer
            c.push(tmp_path / "m.pemn")
        assert e.value.rc in (pemn.UntrustedError.rc, pemn.AuthError.rc)
    with pemn.Client(url, "wrong-token") as c:
        pt.pack(net, tmp_path / "a.pemn", key=keys[0], name="a", version="1")
        with pytest.raises(pemn.AuthError):
            c.push(tmp_path / "a.pemn")
    with pytest.raises(pemn.HTTPError):
        with pemn.Client("http://127.0.0.1:9", None, trust=[keys[1]], timeout=5,
                         retries=1) as c:
            c.ls()
    with pytest.raises(pemn.InvalidError):
        pemn.Client("ftp://example", None)
