#!/usr/bin/python3
"""Benchmarks of the Python binding (run by bench/bench_python.sh).

  load DIR        pemn.load of DIR/big.pemn vs numpy.load of the same float32 arrays
                  (DIR/npy/*.npy and DIR/big.npz): best-of-3 wall time, and the peak RSS
                  the load adds (each in a fresh process: the parent runs `peak`).
  make DIR        writes those files (a 4-layer MLP of 2048-wide layers, RP, seeded)
  peak KIND DIR   one load in this process; prints "seconds peak_added_bytes"
  train MODE T N  the edge-popup (mask) or dense 784-300-100-10 MLP of `pemn train` in
                  PyTorch with pemn.torch, T threads, one epoch over N training samples;
                  prints samples/s of the training steps
"""
import gzip
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import pemn  # noqa: E402

WIDTH = int(os.environ.get("BENCH_WIDTH", "2048"))


def make(d):
    os.makedirs(os.path.join(d, "npy"), exist_ok=True)
    if not os.path.exists(os.path.join(d, "k.key")):
        pemn.keygen(os.path.join(d, "k"))
    seed = bytes(range(32))
    d_v = 4097
    u = pemn.prototype("signed", seed, d_v)
    rng = np.random.default_rng(1)
    t = {}
    for i in range(4):
        w = (np.float32(0.03 * (i + 1)) * np.resize(u, WIDTH * WIDTH)).reshape(WIDTH, WIDTH)
        m = (rng.random((WIDTH, WIDTH)) < 0.5).astype(np.uint8)
        t["l%d.weight" % i] = w
        t["l%d.mask" % i] = m
        np.save(os.path.join(d, "npy", "l%d.weight.npy" % i), w * m)
    pemn.pack(t, os.path.join(d, "big.pemn"), key=os.path.join(d, "k.key"), name="big",
              version="1", strategy="rp", seeds=[seed], generator="signed")
    np.savez(os.path.join(d, "big.npz"), **{k[:-4]: np.load(os.path.join(d, "npy", k))
                                            for k in sorted(os.listdir(os.path.join(d, "npy")))})


def one_load(kind, d):
    if kind == "pemn":
        out = pemn.load(os.path.join(d, "big.pemn"), trust=os.path.join(d, "k.pub"))
    elif kind == "npy":
        nd = os.path.join(d, "npy")
        out = {f[:-4]: np.load(os.path.join(nd, f)) for f in sorted(os.listdir(nd))}
    else:
        with np.load(os.path.join(d, "big.npz")) as z:
            out = {k: z[k] for k in z.files}
    return sum(a.nbytes for a in out.values())


def peak(kind, d):
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    n = one_load(kind, d)
    t = time.perf_counter() - t0
    added = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
    print("%.6f %d %d" % (t, added, n))


def best_time(kind, d, reps=3):
    one_load(kind, d)  # warm the page cache
    best = 1e9
    for _ in range(reps):
        t0 = time.perf_counter()
        one_load(kind, d)
        best = min(best, time.perf_counter() - t0)
    return best


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)


def train(mode, threads, n):
    import math
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import pemn.torch as pt
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    data = os.environ.get("DATA", "/usr/share/datasets/fashion-mnist")
    x = read_idx(os.path.join(data, "train-images-idx3-ubyte.gz"))[:n].reshape(-1, 784)
    y = torch.from_numpy(read_idx(os.path.join(data, "train-labels-idx1-ubyte.gz"))[:n]
                         .astype(np.int64))
    v = x.astype(np.float64) / 255.0
    lut = torch.from_numpy(((np.arange(256, dtype=np.float32) * np.float32(1 / 255.0) -
                             np.float32(v.mean())) / np.float32(v.std())).astype(np.float32))
    xt = torch.from_numpy(x.astype(np.int64))
    sizes = (784, 300, 100, 10)
    mods = []
    for i in range(3):
        mods.append(pt.MaskedLinear(sizes[i], sizes[i + 1]) if mode == "mask" else
                    nn.Linear(sizes[i], sizes[i + 1], bias=False))
        if i < 2:
            mods.append(nn.ReLU())
    net = nn.Sequential(*mods)
    if mode == "mask":
        pt.init_prototypes(net, "rp", 1e-3, "signed", 1)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4)
    batch = 128
    steps = math.ceil(n / batch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    perm = torch.randperm(n)
    t0 = time.perf_counter()
    for i in range(0, n, batch):
        idx = perm[i:i + batch]
        out = net(lut[xt[idx]])  # the input lookup is part of the step, as in pemn train
        loss = F.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    t = time.perf_counter() - t0
    print("%.0f" % (n / t))


def main():
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2])
    elif cmd == "peak":
        peak(sys.argv[2], sys.argv[3])
    elif cmd == "time":
        print("%.6f" % best_time(sys.argv[2], sys.argv[3]))
    elif cmd == "train":
        train(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))


if __name__ == "__main__":
    main()
