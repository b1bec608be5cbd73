#!/usr/bin/env python3
"""Where a lockstep step's time goes: the network's matrix products against the whole
step, on numpy (and torch on the CPU when installed, and numpy with int8 products where
the CPU has int8 dot-product instructions), for a few segment counts.

    OPENBLAS_NUM_THREADS=1 python scripts/step_profile.py [--model PATH] [--segments 37 256 1024]

The FLOP limit it prints is bytes/s <= measured GEMM FLOP/s / (2 * weights used per byte).
On numpy the products are timed as the step runs them, their batch padded to a multiple of
``model.PRODUCT_ROWS`` rows, and also as they are ("unpadded").
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from nncompress.zoo import load_model  # noqa: E402


def timed(fn, n: int = 100) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def profile(model, segments: int, label: str) -> None:
    o, t = model.ops, model._t
    h = np.random.default_rng(0).integers(-127, 128, (segments, model.hidden))
    prev = o.asarray(np.zeros(segments, dtype=np.int64))
    state = model.initial_state(segments)
    # The products alone, on the float32 carriers the step multiplies (the weights are
    # float32 already; numpy's step keeps its hidden state in float32 for them too).
    hf = o.asarray(h.astype(np.float32))
    raw = sum(timed(lambda k=k: hf @ t[k]) for k in t if k.endswith(".w"))
    gemm = raw
    padded = ""
    if o.name == "numpy":  # as the step multiplies them (its batch padded: ``_product``)
        gemm = sum(timed(lambda k=k: model._product(hf, k[:-2])) for k in t if k.endswith(".w"))
        padded = f" (unpadded {raw * 1e6:.0f})"
    if getattr(model, "_int8", None) is not None:  # int8 products (use_int8_products)
        h8 = h.astype(np.int8)
        gemm = sum(timed(lambda k=k: model._product(h8, k[:-2])) for k in t if k.endswith(".w"))
        padded = ""
    step = timed(lambda: model.step(prev, state))
    flops = 2 * segments * model.parameters
    print(
        f"{label:>10} S={segments:>5}: step {step * 1e6:8.0f} us, of which products "
        f"{gemm * 1e6:7.0f} us{padded} ({100 * gemm / step:3.0f}%); "
        f"{segments / step / 1e3:6.1f} KB/s; "
        f"products at {flops / gemm / 1e9:5.1f} GFLOP/s -> limit "
        f"{segments / gemm / 1e3:6.1f} KB/s"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--segments", type=int, nargs="+", default=[37, 256, 1024])
    args = ap.parse_args()
    backends = ["cpu"]
    try:
        import torch  # noqa: F401

        backends.append("torch")
    except ImportError:
        pass
    for device in backends:
        model = load_model(args.model, device)
        for s in args.segments:
            profile(model, s, "numpy" if device == "cpu" else "torch-cpu")
    # The CPU step with int8 products (as the engine uses them for large models and
    # binary streams), where the CPU has int8 dot-product instructions.
    model = load_model(args.model, "cpu")
    if model.use_int8_products():
        import torch

        torch.set_num_threads(1)
        for s in args.segments:
            profile(model, s, "numpy-int8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
