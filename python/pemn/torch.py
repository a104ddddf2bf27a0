"""pemn.torch — edge-popup layers whose frozen weights come from pemn's seeded generators,
so a model trained in PyTorch ships as masks plus a 32-byte seed.

    import pemn, pemn.torch as pt
    net = nn.Sequential(pt.MaskedConv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), ...,
                        pt.MaskedLinear(512, 10))
    pt.init_prototypes(net, strategy="rp", ratio=1e-3, generator="signed", seed=1)
    ... train net.parameters() (the scores, batch-norm, biases) ...
    pt.pack(net, "net.pemn", key="alice.key", name="net", version="1.0")
    dense.load_state_dict(pt.load_state_dict("net.pemn", trust=["alice.pub"]))

The layers follow `pemn train` exactly (train/edgepopup.h): the frozen weight of a masked
layer is w[i] = scale_L * u[i mod d_v] (one binary32 multiply) with u the generator's unit
output for the prototype's seed; scale_L = sqrt(2 / (k * fan_in)) / sd(generator) per layer
(or with the fan-in of the largest layer, layer_scale=False); prototypes per strategy:
mask (one per layer, as long as the layer), one-layer (one per distinct weight shape), mp
(one, as long as the largest layer), rp (one of floor(N_max * ratio) + 1 values). A
training seed S gives the prototype seeds `pemn train --seed S` uses (BLAKE2b), so the same
architecture gets the same frozen weights in C and in PyTorch. Scores keep the top-k of
|score| per layer by the rule of docs/PACKING.md (n - floor((1 - k) n) kept; ties: lower
index; NaN lowest) and learn through the straight-through gradient
d score = (dL/dw_eff * w) * sign(score).
"""
import collections
import hashlib
import json
import math

import numpy as np
import torch as _t
import torch.nn as _nn
import torch.nn.functional as _F

from . import package as _pkg
from . import errors as _errors

STRATEGIES = ("mask", "one-layer", "mp", "rp")


def topk_mask(scores, density):
    """The mask (float32, scores' shape) keeping n - floor((1 - k) n) weights of largest
    |score|; equal |score| (also -0.0 vs 0.0): lower index first; NaN ranks lowest.
    Identical to pemn.topk_mask / pemn_topk_mask."""
    a = scores.detach().abs().reshape(-1)
    a = _t.where(_t.isnan(a), _t.full_like(a, -1.0), a)
    n = a.numel()
    keep = n - int(math.floor((1.0 - float(density)) * n))
    m = _t.zeros(n, dtype=scores.dtype, device=scores.device)
    if keep > 0:
        idx = _t.sort(a, descending=True, stable=True).indices[:keep]
        m[idx] = 1.0
    return m.reshape(scores.shape)


class _GetSubnet(_t.autograd.Function):
    @staticmethod
    def forward(ctx, abs_scores, density):
        return topk_mask(abs_scores, density)

    @staticmethod
    def backward(ctx, g):
        return g, None  # straight-through


class _Masked(_nn.Module):
    """Common part of the masked layers: a frozen `weight` buffer, learned `scores`."""

    def _setup(self, shape, fan_in, density, bias, out_features):
        if not (0.0 < density <= 1.0):
            raise ValueError("density %r outside (0, 1]" % (density,))
        self.density = float(density)
        self.fan_in = int(fan_in)
        self.register_buffer("weight", _t.zeros(shape))
        a = 1.0 / math.sqrt(fan_in)
        self.scores = _nn.Parameter(_t.empty(shape).uniform_(-a, a))
        if bias:
            self.bias = _nn.Parameter(_t.empty(out_features).uniform_(-a, a))
        else:
            self.register_parameter("bias", None)
        self.pemn = None  # set by init_prototypes: proto index, generator, seed, d_v, scale

    def mask(self):
        """The current mask (uint8, weight's shape)."""
        return topk_mask(self.scores, self.density).to(_t.uint8)

    def effective_weight(self):
        return self.weight * _GetSubnet.apply(self.scores.abs(), self.density)

    def extra_repr(self):
        s = super().extra_repr()
        return s + ", density=%g" % self.density


class MaskedLinear(_Masked):
    """nn.Linear with frozen prototype weights and a learned top-k mask."""

    def __init__(self, in_features, out_features, bias=False, density=0.5):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._setup((out_features, in_features), in_features, density, bias, out_features)

    def forward(self, x):
        return _F.linear(x, self.effective_weight(), self.bias)

    def extra_repr(self):
        return "in_features=%d, out_features=%d, bias=%s, density=%g" % (
            self.in_features, self.out_features, self.bias is not None, self.density)


class MaskedConv2d(_Masked):
    """nn.Conv2d with frozen prototype weights and a learned top-k mask."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=False, density=0.5):
        super().__init__()
        k = _nn.modules.utils._pair(kernel_size)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
        self.stride, self.padding = _nn.modules.utils._pair(stride), padding
        self.dilation, self.groups = _nn.modules.utils._pair(dilation), groups
        if isinstance(padding, int):
            self.padding = _nn.modules.utils._pair(padding)
        shape = (out_channels, in_channels // groups) + k
        self._setup(shape, (in_channels // groups) * k[0] * k[1], density, bias, out_channels)

    def forward(self, x):
        return _F.conv2d(x, self.effective_weight(), self.bias, self.stride, self.padding,
                         self.dilation, self.groups)

    def extra_repr(self):
        return "%d, %d, kernel_size=%s, stride=%s, padding=%s, bias=%s, density=%g" % (
            self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding,
            self.bias is not None, self.density)


def masked_layers(model):
    """(qualified name, layer) of every masked layer, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _Masked)]


def proto_seed(seed, j):
    """The 32-byte seed of prototype j for training seed `seed`, as `pemn train` derives it:
    BLAKE2b-256 of "pemn-train-proto" | seed (u64 LE) | j (u32 LE) | 4 zero bytes."""
    msg = b"pemn-train-proto" + int(seed).to_bytes(8, "little") + int(j).to_bytes(4, "little")
    return hashlib.blake2b(msg + bytes(4), digest_size=32).digest()


def generator_sd(generator):
    """Standard deviation of a generator's unit output (uniform 1/sqrt(3), others 1)."""
    return 1.0 / math.sqrt(3.0) if _pkg.generator_id(generator) == 1 else 1.0


def rp_length(n_max, ratio):
    return int(math.floor(float(n_max) * float(ratio))) + 1


def init_prototypes(model, strategy="rp", ratio=1e-3, generator="signed", seed=1,
                    layer_scale=True, seeds=None):
    """Plans the prototypes of `strategy` over the masked layers of `model` (module order),
    as train_ep_init does, and fills every frozen weight with scale_L * u[i mod d_v] from
    pemn's generator. `seed` is a training seed (int: prototype seeds derived as
    `pemn train` does) unless `seeds` gives the 32-byte prototype seeds explicitly.
    Returns the plan: a list of {"seed", "generator", "d_v"} per prototype."""
    if strategy not in STRATEGIES:
        raise ValueError("strategy %r: one of %s" % (strategy, ", ".join(STRATEGIES)))
    gen = _pkg.generator_id(generator)
    layers = masked_layers(model)
    if not layers:
        raise ValueError("the model has no masked layer")
    if strategy == "rp" and not (0.0 < ratio <= 1.0):
        raise ValueError("RP ratio %r outside (0, 1]" % (ratio,))
    n_max, fan_max = 0, 0
    for _, m in layers:
        if m.weight.numel() > n_max:
            n_max, fan_max = m.weight.numel(), m.fan_in
    plan, owner_shape = [], []
    for name, m in layers:
        numel = m.weight.numel()
        pid = len(plan)
        if strategy == "one-layer":
            for j, shp in enumerate(owner_shape):
                if shp == tuple(m.weight.shape):
                    pid = j
        elif strategy in ("mp", "rp") and plan:
            pid = 0
        if pid == len(plan):
            d_v = n_max if strategy == "mp" else rp_length(n_max, ratio) if strategy == "rp" \
                else numel
            s = _pkg._seed_bytes(seeds[pid]) if seeds is not None else proto_seed(seed, pid)
            plan.append({"seed": s, "generator": gen, "d_v": d_v})
            owner_shape.append(tuple(m.weight.shape))
        fan = m.fan_in if layer_scale else fan_max
        scale = np.float32(math.sqrt(2.0 / (m.density * fan)) / generator_sd(gen))
        p = plan[pid]
        u = _pkg.prototype(gen, p["seed"], p["d_v"])
        w = scale * np.resize(u, numel)  # one binary32 multiply per element
        with _t.no_grad():
            m.weight.copy_(_t.from_numpy(w.reshape(tuple(m.weight.shape))))
        m.pemn = {"proto": pid, "generator": gen, "seed": p["seed"], "d_v": p["d_v"],
                  "scale": float(scale)}
    model.pemn_plan = {"strategy": strategy, "generator": gen, "ratio": ratio,
                       "layer_scale": bool(layer_scale), "protos": plan}
    return plan


def _np(v):
    v = v.detach().cpu()
    if v.dtype == _t.bfloat16:
        raise _errors.UnsupportedError(18, "bfloat16 tensors: convert them before packing")
    return v.numpy()


def checkpoint(model):
    """The tensors pemn.pack takes for `model`: X.weight + X.mask (uint8, the mask the model
    uses now) for every masked layer, every other state_dict entry as it is; X.scores are
    left out. Returns an ordered dict of numpy arrays."""
    masked = {n + ("." if n else ""): m for n, m in masked_layers(model)}
    out = collections.OrderedDict()
    for k, v in model.state_dict().items():
        prefix = k[:k.rfind(".") + 1]
        m = masked.get(prefix)
        if m is not None and k == prefix + "scores":
            out[prefix + "mask"] = m.mask().cpu().numpy()
            continue
        out[k] = _np(v)
    return out


def _seed_meta(model):
    layers = masked_layers(model)
    md = collections.OrderedDict()
    kw = {}
    if layers:
        plan = getattr(model, "pemn_plan", None)
        if plan is None or any(m.pemn is None for _, m in layers):
            raise ValueError("call pemn.torch.init_prototypes(model, ...) first")
        dens = {m.density for _, m in layers}
        gname = _pkg.generator_name(plan["generator"])
        md["pemn.generator"] = gname
        md["pemn.protos"] = json.dumps([{"seed": p["seed"].hex(), "d_v": p["d_v"]}
                                        for p in plan["protos"]])
        if len(dens) == 1:
            md["pemn.density"] = repr(next(iter(dens)))
        md["pemn.train.strategy"] = plan["strategy"]
        kw = dict(strategy=plan["strategy"], generator=gname,
                  seeds=[p["seed"] for p in plan["protos"]])
    return md, kw


def save_checkpoint(model, path, meta=None):
    """Writes the model's state_dict as a safetensors edge-popup checkpoint (X.weight +
    X.scores for masked layers, everything else as it is) with the metadata `pemn pack
    --seeds-from-meta` reads (pemn.generator, pemn.protos, pemn.density), atomically."""
    md, _ = _seed_meta(model)
    for k, v in (meta or {}).items():
        md[k] = v
    _pkg.save_safetensors({k: _np(v) for k, v in model.state_dict().items()}, path, md)


def pack(model, out=None, *, key, name, version, release=1, meta=None, created=None):
    """Packs a model with masked layers (after init_prototypes) into a signed package whose
    prototypes are the seeds (32 bytes each), or a model without masked layers as a dense
    package. Metadata: pemn.generator, pemn.protos, pemn.density and `meta`. Returns
    pemn.PackResult; writes `out` atomically when given."""
    md, kw = _seed_meta(model)
    for k, v in (meta or {}).items():
        md[k] = v
    return _pkg.pack(checkpoint(model), out, key=key, name=name, version=version,
                     release=release, meta=md, created=created, **kw)


def load_state_dict(path, trust, device=None):
    """A verified package as a dense state_dict of torch tensors (masked layers expanded to
    float32, bit for bit weight * mask; dense tensors in their dtype), for a model with
    ordinary nn.Linear / nn.Conv2d layers."""
    arrays = _pkg.load(path, trust)
    sd = collections.OrderedDict()
    for k, a in arrays.items():
        t = _t.from_numpy(a)
        sd[k] = t.to(device) if device is not None else t
    return sd


__all__ = ["MaskedLinear", "MaskedConv2d", "init_prototypes", "pack", "checkpoint",
           "save_checkpoint",
           "load_state_dict", "topk_mask", "proto_seed", "masked_layers", "STRATEGIES"]
