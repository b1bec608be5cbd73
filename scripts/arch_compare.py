#!/usr/bin/env python3
"""Which network family to ship: train each candidate for the same time on the same data,
then measure held-out bits per byte and lockstep step speed.

Candidates (all byte-level, embedding -> core -> 256-way head):

* ``gru-256``, ``gru-128``: the shipped family (one GRU layer). Also exported to the
  integer model and measured through the real coder (integer bpb, coder KB/s).
* ``mingru-2x256``: two minGRU layers (gates from the input only, so training computes all
  matrix products for a whole window at once and only an elementwise recurrence runs
  step by step), residual connections.
* ``transformer-2x128``: two pre-norm causal self-attention layers of width 128, 4 heads,
  context of 128 bytes; evaluated sliding (every byte after the first window sees 64-127
  bytes of context).

Training follows ``nncompress.train``: 128 rows of 128-byte windows; recurrent models carry
their state across windows for 4096-byte segments from an empty state, as the coder runs.
Held-out: 16 segments of 4096 bytes from the tails ``nncompress train`` holds out.

Step speed: one batched inference step for 1,024 lockstep segments in float32 torch on the
CPU (what any family pays per byte before integer arithmetic, range coding and the
adaptive layer), as bytes per second.

    python scripts/arch_compare.py --minutes 5            # about 25 minutes in all
    python scripts/arch_compare.py --only gru-128 --minutes 1
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from bench import machine  # noqa: E402  (scripts/ is on sys.path)
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from nncompress.coder import encode_block  # noqa: E402
from nncompress.model import IntModel, save_model  # noqa: E402
from nncompress.train import (  # noqa: E402
    FloatGRU,
    StreamSampler,
    collect_files,
    int_bpb,
    split_data,
    val_streams,
)

SEGMENT, WINDOW, BATCH, LANES = 4096, 128, 128, 1024


class GRUCandidate(nn.Module):
    """The shipped family, through ``train.FloatGRU`` so it exports like a trained model."""

    recurrent = True

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.inner = FloatGRU(hidden, 1, "cpu")
        self.net = self.inner.net
        self.hidden = hidden

    def forward(self, x, h):
        return self.inner.forward(x, h)

    def zero_state(self, batch: int):
        return self.inner.zero_state(batch)

    def step(self, x, h):
        return self.forward(x[:, None], h)

    def per_byte_params(self) -> int:
        return sum(p.numel() for n, p in self.net.named_parameters() if "embed" not in n)


class MinGRULayer(nn.Module):
    """minGRU: h_t = (1 - z_t) h_{t-1} + z_t g(u_t), z_t = sigmoid(W_z x_t), u_t = W_u x_t,
    with g(u) = u + 1/2 for u >= 0 and sigmoid(u) below, so the state stays positive and a
    whole window's recurrence is one parallel scan in the log domain (logcumsumexp): no
    step-by-step loop in training. Steps (inference) use the recurrence directly."""

    H0 = 0.5  # the empty state (must be positive for the log-domain scan)

    def __init__(self, d: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d, 2 * d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x, h):  # x [B, T, d], h [B, d] (positive)
        k, u = self.proj(self.norm(x)).chunk(2, dim=-1)
        log_z, log_keep = -F.softplus(-k), -F.softplus(k)  # log z, log (1 - z)
        log_g = torch.where(u >= 0, (F.relu(u) + 0.5).log(), -F.softplus(-u))
        a_star = F.pad(torch.cumsum(log_keep, dim=1), (0, 0, 1, 0))
        values = torch.cat([h.clamp_min(1e-20).log()[:, None], log_z + log_g], dim=1)
        hs = (a_star + torch.logcumsumexp(values - a_star, dim=1))[:, 1:].exp()
        return x + hs, hs[:, -1]

    def step(self, x, h):  # x [B, d]
        k, u = self.proj(self.norm(x)).chunk(2, dim=-1)
        z = torch.sigmoid(k)
        g = torch.where(u >= 0, u + 0.5, torch.sigmoid(u))
        h = (1 - z) * h + z * g
        return x + h, h


class MinGRUCandidate(nn.Module):
    recurrent = True

    def __init__(self, d: int, layers: int) -> None:
        super().__init__()
        self.d, self.layers = d, layers
        self.embed = nn.Embedding(256, d)
        self.cores = nn.ModuleList(MinGRULayer(d) for _ in range(layers))
        self.head = nn.Linear(d, 256)

    def forward(self, x, h):
        y, hs = self.embed(x), []
        for i, layer in enumerate(self.cores):
            y, hi = layer(y, h[i])
            hs.append(hi)
        return self.head(y), torch.stack(hs)

    def zero_state(self, batch: int):
        return torch.full((self.layers, batch, self.d), MinGRULayer.H0)

    def step(self, x, h):
        y, hs = self.embed(x), []
        for i, layer in enumerate(self.cores):
            y, hi = layer.step(y, h[i])
            hs.append(hi)
        return self.head(y), torch.stack(hs)

    def per_byte_params(self) -> int:
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith("embed"))


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def attend(self, x, cache=None):
        """x [B, T, d]; with ``cache`` (k, v of earlier positions) x is the newest position."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.n1(x)).split(d, dim=-1)
        q, k, v = (u.view(b, t, self.heads, d // self.heads).transpose(1, 2) for u in (q, k, v))
        if cache is not None:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=cache is None)
        x = x + self.out(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.n2(x)), (k, v)


class TransformerCandidate(nn.Module):
    recurrent = False

    def __init__(self, d: int, layers: int, heads: int, context: int) -> None:
        super().__init__()
        self.context = context
        self.embed = nn.Embedding(256, d)
        self.pos = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, 256)

    def forward(self, x, h=None):
        y = self.embed(x) + self.pos(torch.arange(x.shape[1]))
        for blk in self.blocks:
            y, _ = blk.attend(y)
        return self.head(self.norm(y)), None

    def zero_state(self, batch: int):
        return None

    def step_speed_state(self, lanes: int):
        """Caches as full as they get in steady state (context - 1 earlier positions)."""
        d, hd = self.embed.embedding_dim, self.blocks[0].heads
        shape = (lanes, hd, self.context - 1, d // hd)
        return [(torch.randn(shape), torch.randn(shape)) for _ in self.blocks]

    def step(self, x, caches):
        y = self.embed(x)[:, None] + self.pos.weight[-1]
        for i, blk in enumerate(self.blocks):
            y, _ = blk.attend(y, caches[i])
        return self.head(self.norm(y)), caches

    def per_byte_params(self) -> int:
        skip = ("embed", "pos")  # table lookups, not products
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith(skip))


CANDIDATES = {
    "gru-256": lambda: GRUCandidate(256),
    "gru-128": lambda: GRUCandidate(128),
    "mingru-2x256": lambda: MinGRUCandidate(256, 2),
    "transformer-2x128": lambda: TransformerCandidate(128, 2, 4, WINDOW),
}


def train(model, data: np.ndarray, seconds: float, seed: int) -> tuple[int, float]:
    """Adam with warm-up and cosine decay for ``seconds``; returns (bytes seen, seconds)."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sampler = StreamSampler(data, BATCH, WINDOW, SEGMENT if model.recurrent else WINDOW, seed)
    h, step, seen, start = None, 0, 0, time.monotonic()
    while (elapsed := time.monotonic() - start) < seconds:
        frac = elapsed / seconds
        lr = 3e-3 * min(1.0, (step + 1) / 200) * (0.1 + 0.45 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        inp, tgt, fresh = sampler.next()
        if fresh or h is None:
            h = model.zero_state(BATCH)
        logits, h = model(inp, h)
        if h is not None:
            h = h.detach()
        loss = F.cross_entropy(logits.reshape(-1, 256), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step, seen = step + 1, seen + inp.numel()
    return seen, time.monotonic() - start


@torch.no_grad()
def heldout_bpb(model, streams: np.ndarray) -> float:
    """Float bits per byte on held-out segments, run as the coder would run the family."""
    model.eval()
    x = torch.from_numpy(streams.astype(np.int64))
    inp = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)
    total = 0.0
    if model.recurrent:
        h = model.zero_state(len(x))
        for t in range(0, x.shape[1], WINDOW):
            logits, h = model(inp[:, t : t + WINDOW], h)
            total += F.cross_entropy(
                logits.reshape(-1, 256), x[:, t : t + WINDOW].reshape(-1), reduction="sum"
            ).item()
    else:  # sliding context: first window whole, then the last half of each next window
        half = WINDOW // 2
        logits, _ = model(inp[:, :WINDOW])
        total += F.cross_entropy(
            logits.reshape(-1, 256), x[:, :WINDOW].reshape(-1), reduction="sum"
        ).item()
        for s in range(half, x.shape[1] - WINDOW + 1, half):
            logits, _ = model(inp[:, s : s + WINDOW])
            total += F.cross_entropy(
                logits[:, half:].reshape(-1, 256),
                x[:, s + half : s + WINDOW].reshape(-1),
                reduction="sum",
            ).item()
    model.train()
    return total / x.numel() / math.log(2)


@torch.no_grad()
def step_speed(model, steps: int = 48) -> float:
    """Bytes per second of batched float32 inference steps over LANES lockstep segments."""
    model.eval()
    x = torch.zeros(LANES, dtype=torch.long)
    h = model.step_speed_state(LANES) if not model.recurrent else model.zero_state(LANES)
    for _ in range(4):
        model.step(x, h)
    t0 = time.perf_counter()
    for _ in range(steps):
        logits, h2 = model.step(x, h)
        if model.recurrent:
            h = h2
    model.train()
    return LANES * steps / (time.perf_counter() - t0)


def coder_numbers(model: GRUCandidate, val: np.ndarray, streams: np.ndarray, out: Path):
    """Integer bpb on held-out segments, and the lockstep coder's KB/s (numpy, 1 thread's
    worth of work on this process's BLAS) on 512 KiB of held-out data (1,024 segments)."""
    tensors, meta = model.inner.export({"name": out.stem, "preset": "compare"})
    save_model(out, tensors, meta)
    imodel = IntModel.load(out)
    ibpb = int_bpb(imodel, streams)
    sample = val[: 512 << 10].tobytes()
    t0 = time.perf_counter()
    encode_block(imodel, sample)
    return ibpb, len(sample) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "corpus" / "train")
    ap.add_argument("--minutes", type=float, default=5.0, help="training time per candidate")
    ap.add_argument("--only", nargs="*", choices=sorted(CANDIDATES), help="candidates to run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "arch")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    files = collect_files([args.data])
    data, val = split_data((f.read_bytes() for f in files), 0.02)
    streams = val_streams(val, SEGMENT, 16)
    print(
        f"Machine: {machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {args.minutes:g} min of training each, "
        f"{len(data):,} training bytes, held-out {streams.size:,} bytes"
    )
    print()
    print(
        "| family | params per byte | bytes seen | held-out bpb (float) | integer bpb "
        "| float step KB/s (1,024 lanes) | coder KB/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.only or CANDIDATES:
        model = CANDIDATES[name]()
        seen, secs = train(model, data, args.minutes * 60, args.seed)
        bpb = heldout_bpb(model, streams)
        speed = step_speed(model) / 1e3
        ibpb, coder = "—", "—"
        if isinstance(model, GRUCandidate):
            i, c = coder_numbers(model, val, streams, args.workdir / f"{name}.nnm")
            ibpb, coder = f"{i:.3f}", f"{c / 1e3:.1f}"
        print(
            f"| {name} | {model.per_byte_params():,} | {seen:,} | {bpb:.3f} | {ibpb} "
            f"| {speed:.1f} | {coder} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
