"""Training a byte model, in float, and exporting it as an integer model file.

The network trains in float32 with PyTorch (CUDA when available); what ships is the integer
model of ``model.py``, and only that is ever used to code. Training follows the regime the
coder runs in: each batch row is a stream that starts from the empty state and the start
byte 0, and its hidden state is carried across consecutive windows for one segment length
(``--segment`` bytes), exactly as the lockstep coder runs each segment.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .model import IntModel, export_gru, save_model

#: Size presets: hidden width and layer count of the GRU.
PRESETS: dict[str, tuple[int, int]] = {
    "tiny": (128, 1),
    "small": (256, 1),
    "medium": (384, 1),
    "base": (256, 2),
    "large": (512, 1),
}


@dataclass
class TrainConfig:
    preset: str = "small"
    seconds: float = 600.0
    max_steps: int = 0  # 0: until the time budget is spent
    batch: int = 128
    window: int = 128
    segment: int = 4096
    lr: float = 3e-3
    seed: int = 0
    val_fraction: float = 0.02
    device: str = "auto"
    name: str = "custom"
    threads: int = 0  # 0: torch's default
    #: Bytes of training data the model keeps as its prime (0: none): ``choose_prime``.
    prime: int = 0


def collect_files(inputs: Iterable[str | Path]) -> list[Path]:
    """Regular files named, or found recursively under named directories, in a stable order."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return out


def choose_prime(files: list[Path], size: int, val_fraction: float = 0.0) -> bytes:
    """Up to ``size`` bytes of the training data for a model's prime, as a dictionary
    holds samples of its data: whole small files (records) spread evenly over the list,
    up to 4 KiB of each, or of a few large files their last ``size`` bytes before the
    held-out tail (the most recent data, where logs and tables look most like what
    follows)."""
    if size <= 0 or not files:
        return b""
    per_file = 4 << 10
    mean = max(1, sum(f.stat().st_size for f in files) // len(files))
    take = max(1, min(len(files), -(-size // min(per_file, mean))))
    step = len(files) / take
    chosen = [files[int(i * step)] for i in range(take)]
    parts: list[bytes] = []
    room = size
    for f in chosen:
        data = f.read_bytes()
        data = data[: len(data) - int(len(data) * val_fraction)]
        if len(chosen) == 1 or len(data) > per_file:
            data = data[-max(room // max(1, take - len(parts)), 1) :]
        data = data[:room]
        parts.append(data)
        room -= len(data)
        if room <= 0:
            break
    return b"".join(parts)


def prime_model(base: Path, files: list[Path], size: int, output: Path, name: str) -> str:
    """A model with ``base``'s network and a prime chosen from ``files`` (``choose_prime``):
    the counterpart of ``zstd --train``, in seconds and without torch. Returns its
    SHA-256."""
    from safetensors.numpy import load_file

    from .model import _read_metadata, check_model_file, with_prime

    check_model_file(base)
    tensors = load_file(str(base))
    tensors.pop("prime", None)
    meta = _read_metadata(base.read_bytes())
    prime = choose_prime(files, size)
    if not prime:
        raise ValueError("no data to prime the model with")
    tensors, meta = with_prime(tensors, meta, prime, name)
    meta["base_model"] = meta.get("base_model", base.stem)
    return save_model(output, tensors, meta)


def split_data(blobs: Iterable[bytes], val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation bytes: the last ``val_fraction`` of each input is held out,
    so every kind of input is represented on both sides."""
    train, val = [], []
    for b in blobs:
        cut = len(b) - int(len(b) * val_fraction)
        train.append(b[:cut])
        val.append(b[cut:])
    return (
        np.frombuffer(b"".join(train), dtype=np.uint8),
        np.frombuffer(b"".join(val), dtype=np.uint8),
    )


def _torch():
    import torch

    return torch


class FloatGRU:
    """The float twin of ``model.IntModel``: embedding, GRU layers, linear head."""

    def __init__(self, hidden: int, layers: int, device: str) -> None:
        torch = _torch()
        nn = torch.nn
        self.hidden, self.layers = hidden, layers
        self.net = nn.ModuleDict(
            {
                "embed": nn.Embedding(256, hidden),
                "gru": nn.GRU(hidden, hidden, layers, batch_first=True),
                "head": nn.Linear(hidden, 256),
            }
        ).to(device)
        self.device = device

    def forward(self, x, h):
        out, h = self.net["gru"](self.net["embed"](x), h)
        return self.net["head"](out), h

    def zero_state(self, batch: int):
        return _torch().zeros(self.layers, batch, self.hidden, device=self.device)

    def export(self, meta: dict[str, str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        g = self.net["gru"]

        def get(name: str) -> np.ndarray:
            return getattr(g, name).detach().cpu().double().numpy()

        r = range(self.layers)
        return export_gru(
            self.net["embed"].weight.detach().cpu().double().numpy(),
            [get(f"weight_ih_l{i}") for i in r],
            [get(f"weight_hh_l{i}") for i in r],
            [get(f"bias_ih_l{i}") for i in r],
            [get(f"bias_hh_l{i}") for i in r],
            self.net["head"].weight.detach().cpu().double().numpy(),
            self.net["head"].bias.detach().cpu().double().numpy(),
            meta,
        )


class StreamSampler:
    """Batch rows that read contiguous data from random offsets, restarting (empty state,
    start byte 0) every ``segment`` bytes, as the coder's segments do.

    The data lives on the training device and batches are cut there, so a GPU is never
    kept waiting for the CPU to gather bytes."""

    def __init__(
        self, data: np.ndarray, batch: int, window: int, segment: int, seed: int, device="cpu"
    ):
        torch = _torch()
        if len(data) < window + 2:
            raise ValueError(f"too little training data ({len(data)} bytes)")
        self.data = torch.from_numpy(np.array(data, dtype=np.uint8)).to(device)
        self.batch, self.window = batch, window
        self.windows_per_segment = max(1, segment // window)
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.offsets = torch.arange(window, device=device)
        self.count = 0
        self.pos = torch.zeros(batch, dtype=torch.long, device=device)
        self.last = torch.zeros(batch, dtype=torch.long, device=device)

    def next(self):
        """(inputs [B, T], targets [B, T], whether this window starts new segments), as
        int64 tensors on the device."""
        torch = _torch()
        fresh = self.count % self.windows_per_segment == 0
        span = self.window * self.windows_per_segment
        if fresh:
            hi = max(1, len(self.data) - span - 1)
            self.pos = torch.randint(
                0, hi, (self.batch,), generator=self.gen, device=self.data.device
            )
            self.last = torch.zeros_like(self.pos)
        idx = (self.pos[:, None] + self.offsets).clamp_(max=len(self.data) - 1)
        tgt = self.data[idx].long()
        inp = torch.cat([self.last[:, None], tgt[:, :-1]], dim=1)
        self.last = tgt[:, -1]
        self.pos = self.pos + self.window
        self.count += 1
        return inp, tgt, fresh


def val_streams(val: np.ndarray, segment: int, count: int) -> np.ndarray:
    """Up to ``count`` evenly spaced validation segments, [N, segment] bytes."""
    n = min(count, len(val) // segment)
    if n == 0:
        return np.zeros((0, segment), dtype=np.uint8)
    starts = np.linspace(0, len(val) - segment, n).astype(np.int64)
    return np.stack([val[s : s + segment] for s in starts])


def float_bpb(model: FloatGRU, streams: np.ndarray, window: int) -> float:
    """Bits per byte of the float model on validation segments, run as the coder runs them."""
    torch = _torch()
    if len(streams) == 0:
        return float("nan")
    model.net.eval()
    total = 0.0
    with torch.no_grad():
        x = torch.from_numpy(streams.astype(np.int64)).to(model.device)
        inp = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1)
        h = model.zero_state(len(streams))
        for t in range(0, x.shape[1], window):
            logits, h = model.forward(inp[:, t : t + window], h)
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, 256), x[:, t : t + window].reshape(-1), reduction="sum"
            ).item()
    model.net.train()
    return total / streams.size / math.log(2)


def int_bpb(model: IntModel, streams: np.ndarray) -> float:
    """Bits per byte the integer model's frequencies give (what the coder will spend)."""
    if len(streams) == 0:
        return float("nan")
    freqs = model.forward_sequence(streams.astype(np.int64)).astype(np.float64)
    p = np.take_along_axis(freqs, streams[..., None].astype(np.int64), axis=2)[..., 0]
    return float(-np.log2(p / freqs.sum(axis=2)).mean())


def _state_tensors(model: FloatGRU, opt, step: int) -> dict[str, np.ndarray]:
    """Float weights and optimizer moments, for ``--resume`` (safetensors, no pickle)."""
    out = {f"param.{k}": v.detach().cpu().numpy() for k, v in model.net.state_dict().items()}
    for i, p in enumerate(model.net.parameters()):
        st = opt.state.get(p, {})
        for k in ("exp_avg", "exp_avg_sq"):
            if k in st:
                out[f"adam.{i}.{k}"] = st[k].detach().cpu().numpy()
    out["step"] = np.array([step], dtype=np.int64)
    return out


def _load_state(model: FloatGRU, opt, tensors: dict[str, np.ndarray]) -> int:
    torch = _torch()
    sd = {k[6:]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith("param.")}
    model.net.load_state_dict(sd)
    step = int(tensors["step"][0])
    for i, p in enumerate(model.net.parameters()):
        if f"adam.{i}.exp_avg" in tensors:
            opt.state[p] = {
                "step": torch.tensor(float(step)),
                "exp_avg": torch.from_numpy(tensors[f"adam.{i}.exp_avg"]).to(p.device),
                "exp_avg_sq": torch.from_numpy(tensors[f"adam.{i}.exp_avg_sq"]).to(p.device),
            }
    return step


def train(
    files: list[Path],
    output: Path,
    cfg: TrainConfig,
    resume: Path | None = None,
    log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
    progress: Callable[[float, dict[str, float]], None] | None = None,
) -> dict[str, float | str]:
    """Train on ``files``, write the integer model to ``output`` (and the float checkpoint
    beside it as ``output.ckpt``), and return a summary with validation bpb."""
    torch = _torch()
    from safetensors.numpy import load_file, save_file

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(cfg.seed)
    hidden, layers = PRESETS[cfg.preset]
    data, val = split_data((f.read_bytes() for f in files), cfg.val_fraction)
    log(
        f"training on {len(files)} files: {len(data):,} bytes, {len(val):,} held out; "
        f"preset {cfg.preset} (GRU {layers}x{hidden}) on {device}"
    )
    model = FloatGRU(hidden, layers, device)
    opt = torch.optim.Adam(model.net.parameters(), lr=cfg.lr)
    step = 0
    ckpt = output.with_name(output.name + ".ckpt")
    if resume is not None:
        step = _load_state(model, opt, load_file(str(resume)))
        log(f"resumed from {resume} at step {step}")
    sampler = StreamSampler(data, cfg.batch, cfg.window, cfg.segment, cfg.seed + step, device)
    vstreams = val_streams(val, cfg.segment, 32)
    h = model.zero_state(cfg.batch)
    start = time.monotonic()
    report_every = min(120.0, max(10.0, cfg.seconds / 10))
    last_report, seen, run_n = start, 0, 0
    run_loss = torch.zeros((), device=device)  # summed on the device: no sync per step
    stats: dict[str, float] = {}
    while True:
        elapsed = time.monotonic() - start
        frac = elapsed / cfg.seconds if not cfg.max_steps else step / cfg.max_steps
        if frac >= 1.0:
            break
        lr = cfg.lr * (
            min(1.0, (step + 1) / 200) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        inp, tgt, fresh = sampler.next()
        if fresh:
            h = model.zero_state(cfg.batch)
        logits, h = model.forward(inp, h.detach())
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), tgt.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.net.parameters(), 1.0)
        opt.step()
        step += 1
        seen += inp.numel()
        run_loss += loss.detach()
        run_n += 1
        now = time.monotonic()
        if progress and (step % 16 == 0 or step < 16):
            stats = {"step": step, "bytes": seen, "lr": lr}
            stats["train_bpb"] = run_loss.item() / run_n / math.log(2)
            progress(frac, stats)
        if now - last_report > report_every:
            stats = {"step": step, "bytes": seen, "lr": lr}
            stats["train_bpb"] = run_loss.item() / run_n / math.log(2)
            stats["val_bpb"] = float_bpb(model, vstreams, cfg.window)
            log(
                f"step {step} bytes {seen:,} train {stats['train_bpb']:.3f} bpb "
                f"val {stats['val_bpb']:.3f} bpb lr {lr:.2e} {seen / (now - start):,.0f} B/s"
            )
            save_file(_state_tensors(model, opt, step), str(ckpt))
            last_report, run_n = now, 0
            run_loss = torch.zeros((), device=device)
    elapsed = time.monotonic() - start
    save_file(_state_tensors(model, opt, step), str(ckpt))
    meta = {
        "name": cfg.name,
        "preset": cfg.preset,
        "train_steps": str(step),
        "train_bytes": str(seen),
        "train_seconds": f"{elapsed:.0f}",
        "segment": str(cfg.segment),
    }
    tensors, meta = model.export(meta)
    prime = choose_prime(list(files), cfg.prime, cfg.val_fraction)
    if prime:
        from .model import with_prime

        tensors, meta = with_prime(tensors, meta, prime, cfg.name)
    sha = save_model(output, tensors, meta)
    imodel = IntModel.load(output)
    summary: dict[str, float | str] = {
        "sha256": sha,
        "steps": step,
        "bytes": seen,
        "seconds": elapsed,
        "val_float_bpb": float_bpb(model, vstreams, cfg.window),
        "val_int_bpb": int_bpb(imodel, vstreams[:8]),
        "val_float_bpb_8": float_bpb(model, vstreams[:8], cfg.window),
    }
    log(
        f"wrote {output} (sha256 {sha[:16]}): val float {summary['val_float_bpb']:.4f} bpb, "
        f"int {summary['val_int_bpb']:.4f} bpb vs float {summary['val_float_bpb_8']:.4f} "
        f"on the same {min(8, len(vstreams))} segments"
    )
    _compare_with_default(summary, vstreams[:8], output, log)
    return summary


def _compare_with_default(
    summary: dict, vstreams: np.ndarray, output: Path, log: Callable[[str], None]
) -> None:
    """Warn when the trained network does no better than the shipped one on the held-out
    data (a short budget on a CPU often ends there): the user should know, and has a
    better choice in seconds."""
    from .model import ModelError
    from .zoo import load_model

    try:
        base = load_model(None)
    except ModelError:
        return
    summary["default_int_bpb"] = int_bpb(base, vstreams)
    if summary["val_int_bpb"] >= summary["default_int_bpb"]:
        log(
            f"warning: {output} is no better than the shipped default model on the held-out "
            f"data ({summary['val_int_bpb']:.3f} against {summary['default_int_bpb']:.3f} "
            "bpb, the networks alone): train longer (--time), or keep the default network "
            "and prime it with this data in seconds (train --base default)"
        )


def export_checkpoint(
    ckpt: Path, output: Path, name: str, preset: str, meta: dict[str, str] | None = None
) -> str:
    """Write the integer model of a float checkpoint (``OUTPUT.ckpt``); returns its SHA-256.
    ``meta``: training facts to record (steps, bytes, seconds, ...)."""
    from safetensors.numpy import load_file

    hidden, layers = PRESETS[preset]
    model = FloatGRU(hidden, layers, "cpu")
    opt = _torch().optim.Adam(model.net.parameters())
    step = _load_state(model, opt, load_file(str(ckpt)))
    info = dict(meta or {}) | {"name": name, "preset": preset, "train_steps": str(step)}
    tensors, full_meta = model.export(info)
    return save_model(output, tensors, full_meta)
