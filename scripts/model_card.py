#!/usr/bin/env python3
"""Measure a model for its model card: size, parameters, held-out bits per byte of the
integer network (on the validation tail that ``nncompress train`` held out of each training
file), the network-only lockstep speed, and with ``--unseen`` the network alone on files
unlike the training data, through the lockstep coder (what ``nncompress --fast`` spends,
without the container).

    python scripts/model_card.py models/default.nnm ../shared/corpus/train \
        --unseen ../shared/corpus/canterbury/{alice29,asyoulik,lcet10,plrabn12}.txt

The held-out tails of Project Gutenberg books are mostly the licence text every book ends
with, so the held-out figure flatters the model; the unseen files are the honest test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from nncompress.coder import encode_block  # noqa: E402
from nncompress.model import IntModel  # noqa: E402
from nncompress.train import collect_files, int_bpb, split_data, val_streams  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("data", nargs="+", help="the training inputs (files or directories)")
    ap.add_argument("--val-fraction", type=float, default=0.02)
    ap.add_argument("--segments", type=int, default=64, help="held-out segments to score")
    ap.add_argument("--segment", type=int, default=4096)
    ap.add_argument(
        "--checkpoint",
        type=Path,
        help="the float checkpoint (NAME.nnm.ckpt) to compare with: needs torch",
    )
    ap.add_argument("--unseen", nargs="*", type=Path, default=[], help="files to score")
    args = ap.parse_args()

    m = IntModel.load(args.model)
    print(f"model: {m.name} sha256 {m.sha256}")
    print(
        f"file: {args.model.stat().st_size:,} bytes; GRU {m.layers}x{m.hidden}; "
        f"{m.parameters:,} weights in matrix products"
    )
    print("metadata: " + ", ".join(f"{k}={v}" for k, v in sorted(m.meta.items())))
    files = collect_files(args.data)
    _, val = split_data((f.read_bytes() for f in files), args.val_fraction)
    streams = val_streams(val, args.segment, args.segments)
    t = time.perf_counter()
    bpb = int_bpb(m, streams)
    print(
        f"held-out: {streams.size:,} bytes in {len(streams)} segments of {args.segment}: "
        f"{bpb:.4f} bpb (integer network alone) [{time.perf_counter() - t:.1f} s]"
    )
    if args.checkpoint:
        from safetensors.numpy import load_file

        from nncompress.train import PRESETS, FloatGRU, _load_state, _torch, float_bpb

        fm = FloatGRU(*PRESETS[m.meta.get("preset", "small")], "cpu")
        _load_state(fm, _torch().optim.Adam(fm.net.parameters()), load_file(str(args.checkpoint)))
        print(f"float network on the same segments: {float_bpb(fm, streams, 128):.4f} bpb")
    data = val[: 1 << 20].tobytes()
    t = time.perf_counter()
    payload, segments = encode_block(m, data)
    dt = time.perf_counter() - t
    print(
        f"network-only lockstep coding of 1 MiB held-out ({segments} segments): "
        f"{8 * len(payload) / len(data):.4f} bpb, {len(data) / dt / 1e3:,.1f} KB/s"
    )
    total_in = total_out = 0
    for f in args.unseen:
        data = f.read_bytes()
        payload, _ = encode_block(m, data)
        total_in, total_out = total_in + len(data), total_out + len(payload)
        print(
            f"unseen {f.name}: {len(data):,} -> {len(payload):,} bytes, "
            f"{8 * len(payload) / len(data):.3f} bpb (network alone)"
        )
    if total_in:
        print(
            f"unseen total: {total_in:,} -> {total_out:,} bytes, "
            f"{8 * total_out / total_in:.3f} bpb (network alone)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
