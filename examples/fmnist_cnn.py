#!/usr/bin/python3
"""A small Conv-4 style CNN on Fashion-MNIST, trained in PyTorch either densely (the
baseline) or as a PEMN with pemn.torch's edge-popup layers on a seeded prototype; packed
with the seed, optionally pushed to a pemnd registry and pulled back, then evaluated
through pemn.load. The accuracy through the package must equal PyTorch's before packing.

    /usr/bin/python3 examples/fmnist_cnn.py --mode mask --strategy rp --ratio 1e-3 \\
        --epochs 2 --key alice.key --trust alice.pub --out cnn.pemn \\
        [--server http://127.0.0.1:8080 --token $TOKEN] [--report run.json]

Data: IDX files of the Debian package dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist, or --data DIR), as `pemn train` reads them.
Exit 0 when the package's accuracy equals PyTorch's exactly, 1 otherwise.
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import pemn  # noqa: E402
import pemn.torch as pt  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"


# ---- data ----------------------------------------------------------------------------------

def read_idx(path):
    """An IDX file (optionally .gz) as a numpy array (uint8 data only)."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] or raw[1] or raw[2] != 8:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd)
    if data.size != int(np.prod(dims)):
        raise ValueError("%s: %d bytes of data for shape %s" % (path, data.size, dims))
    return data.reshape(dims)


def load_split(data_dir, split, limit=None):
    """(images uint8 N x 28 x 28, labels uint8 N) of "train" or "t10k"."""
    x = read_idx(os.path.join(data_dir, "%s-images-idx3-ubyte" % split))
    y = read_idx(os.path.join(data_dir, "%s-labels-idx1-ubyte" % split))
    if limit:
        x, y = x[:limit], y[:limit]
    return x, y


def input_lut(train_images):
    """float32 values of the 256 pixel levels: (p / 255 - mean) / std of the training set."""
    scale = np.float32(1.0 / 255.0)
    v = train_images.astype(np.float64) * float(scale)
    mean, std = np.float32(v.mean()), np.float32(v.std())
    return ((np.arange(256, dtype=np.float32) * scale - mean) / std).astype(np.float32)


def to_tensor(images, lut):
    return torch.from_numpy(lut[images][:, None, :, :].copy())


# ---- the network ---------------------------------------------------------------------------

class ConvNet(nn.Module):
    """conv(1,w)-BN-ReLU, conv(w,w)-BN-ReLU, maxpool, conv(w,2w)-BN-ReLU, conv(2w,2w)-BN-ReLU,
    maxpool, linear(2w*7*7, 128)-ReLU, linear(128, 10). masked=True: every conv and linear
    layer is a pemn.torch edge-popup layer at density k; masked=False: ordinary layers (the
    dense baseline, and the model a package is evaluated with)."""

    def __init__(self, masked=False, width=16, density=0.5):
        super().__init__()
        w = width

        def conv(i, o):
            if masked:
                return pt.MaskedConv2d(i, o, 3, padding=1, bias=False, density=density)
            return nn.Conv2d(i, o, 3, padding=1, bias=False)

        def lin(i, o):
            return pt.MaskedLinear(i, o, density=density) if masked else nn.Linear(i, o, False)

        self.c1, self.b1 = conv(1, w), nn.BatchNorm2d(w)
        self.c2, self.b2 = conv(w, w), nn.BatchNorm2d(w)
        self.c3, self.b3 = conv(w, 2 * w), nn.BatchNorm2d(2 * w)
        self.c4, self.b4 = conv(2 * w, 2 * w), nn.BatchNorm2d(2 * w)
        self.fc1 = lin(2 * w * 7 * 7, 128)
        self.fc2 = lin(128, 10)

    def forward(self, x):
        x = F.relu(self.b1(self.c1(x)))
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        x = F.relu(self.b3(self.c3(x)))
        x = F.max_pool2d(F.relu(self.b4(self.c4(x))), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def predict(model, x, batch=1000):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            out.append(model(x[i:i + batch]).argmax(1))
    return torch.cat(out).numpy()


def train(model, x, y, epochs, lr, batch, seed, wd=1e-4, log=None):
    """SGD with momentum 0.9 and a cosine schedule (as `pemn train`)."""
    g = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    steps = epochs * math.ceil(x.shape[0] / batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    yt = torch.from_numpy(y.astype(np.int64))
    t0 = time.time()
    n = 0
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(x.shape[0], generator=g)
        tot, correct = 0.0, 0
        for i in range(0, x.shape[0], batch):
            idx = perm[i:i + batch]
            out = model(x[idx])
            loss = F.cross_entropy(out, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * idx.numel()
            correct += int((out.argmax(1) == yt[idx]).sum())
            n += idx.numel()
        if log:
            log("epoch %d/%d: loss %.4f, train accuracy %.2f%%" %
                (ep + 1, epochs, tot / x.shape[0], 100.0 * correct / x.shape[0]))
    return time.time() - t0, n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get("PEMN_FMNIST", DATA_DIR))
    ap.add_argument("--mode", choices=["dense", "mask"], default="mask")
    ap.add_argument("--strategy", choices=pt.STRATEGIES, default="rp")
    ap.add_argument("--ratio", type=float, default=1e-3)
    ap.add_argument("--density", type=float, default=0.5)
    ap.add_argument("--generator", default="signed")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--test-limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--key", required=True)
    ap.add_argument("--trust", action="append", required=True)
    ap.add_argument("--name", default="fmnist-cnn")
    ap.add_argument("--version", default=None)
    ap.add_argument("--release", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--server", default=None)
    ap.add_argument("--token", default=None)
    ap.add_argument("--report", default=None)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    log = (lambda s: None) if a.quiet else (lambda s: print(s, flush=True))

    xtr, ytr = load_split(a.data, "train", a.train_limit)
    xte, yte = load_split(a.data, "t10k", a.test_limit)
    lut = input_lut(xtr)
    Xtr, Xte = to_tensor(xtr, lut), to_tensor(xte, lut)

    masked = a.mode == "mask"
    model = ConvNet(masked=masked, width=a.width, density=a.density)
    if masked:
        pt.init_prototypes(model, a.strategy, a.ratio, a.generator, a.seed)
    lr = a.lr if a.lr is not None else (0.1 if masked else 0.05)
    secs, samples = train(model, Xtr, ytr, a.epochs, lr, a.batch, a.seed, log=log)
    pred = predict(model, Xte)
    acc = float((pred == yte).mean())
    log("PyTorch test accuracy %.2f%% (%d samples), %.1f s training" % (100 * acc, len(yte), secs))

    version = a.version or "%s-%s-s%d" % (a.mode, a.strategy if masked else "dense", a.seed)
    meta = {"pemn.input": json.dumps({"shape": [28, 28], "lut": "(p/255-mean)/std",
                                      "mean_std_from": "train"})}
    res = pt.pack(model, a.out, key=a.key, name=a.name, version=version, release=a.release,
                  meta=meta)
    log("packed %s: %d bytes, strategy %s" % (a.out, res.size, res.strategy))
    path = a.out
    if a.server:
        with pemn.Client(a.server, a.token, trust=a.trust) as c:
            c.push(a.out)
            pulled = a.out + ".pulled"
            c.pull("%s:%s" % (a.name, version), pulled)
            path = pulled
            log("pushed to %s and pulled back into %s" % (a.server, pulled))
    dense = ConvNet(masked=False, width=a.width)
    dense.load_state_dict(pt.load_state_dict(path, trust=a.trust))
    pred2 = predict(dense, Xte)
    acc2 = float((pred2 == yte).mean())
    same = bool((pred == pred2).all())
    info = pemn.inspect(path)
    log("through pemn.load: %.2f%% (%s predictions)" % (100 * acc2,
                                                        "identical" if same else "DIFFERENT"))
    f32 = info["sizes"]["f32_bytes"]
    rep = {"mode": a.mode, "strategy": a.strategy if masked else "dense", "ratio": a.ratio,
           "seed": a.seed, "epochs": a.epochs, "train_samples": int(len(ytr)),
           "test_samples": int(len(yte)), "accuracy": acc, "package_accuracy": acc2,
           "identical_predictions": same, "package_bytes": info["sizes"]["file_bytes"],
           "f32_bytes": f32, "train_seconds": secs, "samples_per_sec": samples / secs,
           "protos": info["protos"], "pulled": bool(a.server)}
    if a.report:
        with open(a.report, "w") as f:
            json.dump(rep, f, indent=1)
    return 0 if same and acc == acc2 else 1


if __name__ == "__main__":
    sys.exit(main())
