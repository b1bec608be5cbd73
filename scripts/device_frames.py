#!/usr/bin/env python3
"""A stream's frames side by side on the predictor's device (``nncompress/devicepool.py``):
the same input coded at several thread counts, each thread a frame on the device, beside
the compiled loops in one thread, with the times both ways and whether every archive is
the loops' bytes.

    python scripts/device_frames.py [FILE] [--frames 2] [--frame-kb 256]
        [--segment-bytes 1024] [--threads 1,2] [--device torch|cuda]

The input (FILE, else the standard library's ``.py`` files joined) is cut to ``--frames``
frames of ``--frame-kb`` KiB, each one block, in segments of ``--segment-bytes`` (the
format's shortest is 1 KiB: a block of 256 KiB then has 256 segments, 128 a step; the
default level's are 8 KiB). ``--device torch`` runs the predictor's torch code on CPU
tensors, ``cuda`` on the GPU (it sets ``NNCOMPRESS_TORCH_MIXING=1``). The loops' row runs
at ``-T1`` only: worker processes would not see this process's segment length.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench import machine  # noqa: E402
from own_texts import stdlib_sources  # noqa: E402

from nncompress import coder, levels  # noqa: E402
from nncompress.engine import compress_stream, decompress_stream  # noqa: E402
from nncompress.zoo import load_model  # noqa: E402


def _timed(fn, *args, **kw) -> tuple[object, float]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def _code(model, data: bytes, frame: int, threads: int) -> tuple[bytes, float, float, str]:
    """Compress and decompress ``data`` in frames (and blocks) of ``frame`` bytes; the
    archive, both times, and where the frames ran."""
    out = io.BytesIO()
    info, t_c = _timed(
        compress_stream, io.BytesIO(data), out, model, frame, frame_size=frame, threads=threads
    )
    back = io.BytesIO()
    _, t_d = _timed(
        decompress_stream, io.BytesIO(out.getvalue()), back, lambda h: model, threads=threads
    )
    if back.getvalue() != data:
        raise SystemExit(f"round trip failed at -T{threads}")
    w = info.workers
    where = "one thread" if w is None else f"{w.count} threads on {w.device}"
    if w is not None and w.device is None:
        where = f"{w.count} worker processes"
    return out.getvalue(), t_c, t_d, where


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file", nargs="?", type=Path)
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--frame-kb", type=int, default=256)
    ap.add_argument("--segment-bytes", type=int, default=1024)
    ap.add_argument("--threads", default="1,2", help="-T values, comma-separated")
    ap.add_argument("--device", default="torch", help="torch (CPU tensors) or cuda[:N]")
    a = ap.parse_args()
    if a.device.startswith("cuda"):
        os.environ[coder.TORCH_MIXING] = "1"
    frame = a.frame_kb << 10
    n = a.frames * frame
    data = a.file.read_bytes()[:n] if a.file else stdlib_sources(n)
    default = levels.LEVELS["default"]
    levels.LEVELS["default"] = dataclasses.replace(
        default, segments=lambda k: levels.text_segments(k, a.segment_bytes)
    )
    loops, device = load_model(None, "cpu"), load_model(None, a.device)
    print(f"Machine: {machine()}\n")
    print(
        f"Input: {a.file.name if a.file else 'stdlib .py'}, {len(data):,} bytes in frames of "
        f"{frame:,} (one block each), segments of {a.segment_bytes:,} bytes\n"
    )
    print(
        "| predictor | -T | frames ran on | compress s | KB/s | × -T1 | decompress s | KB/s "
        "| × -T1 | size | the loops' archive |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    ref, c0, d0, where = _code(loops, data, frame, 1)
    kb = len(data) / 1e3
    print(
        f"| compiled loops | 1 | {where} | {c0:.1f} | {kb / c0:,.1f} | | {d0:.1f} "
        f"| {kb / d0:,.1f} | | {len(ref):,} | |",
        flush=True,
    )
    status, base = 0, None
    for t in (int(x) for x in a.threads.split(",")):
        blob, tc, td, where = _code(device, data, frame, t)
        base = base or (tc, td)
        same = blob == ref
        status |= not same
        print(
            f"| torch, {a.device} | {t} | {where} | {tc:.1f} | {kb / tc:,.1f} "
            f"| {base[0] / tc:.2f} | {td:.1f} | {kb / td:,.1f} | {base[1] / td:.2f} "
            f"| {len(blob):,} | {'yes' if same else 'NO'} |",
            flush=True,
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
