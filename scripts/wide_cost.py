#!/usr/bin/env python3
"""What ``--wide`` (larger blocks in more segments, a geometry for a device) and other
geometries cost against the default level: size and both speeds of each input at each
level, every archive decoded and checked, beside xz -9e's compression and decompression
speed in the same run (a yardstick for a shared, noisy machine).

    python scripts/wide_cost.py                          # 16 MiB of Python source
    python scripts/wide_cost.py FILE... [--levels default,wide] [--segment-bytes 4096,8192]
                                        [--presets 7,18] [--threads 0] [--mb 64]
                                        [--text-segment-bytes 8192,1024] [--frame-mb 16]
                                        [--block-mb 16,4]

``--segment-bytes`` tries ``--wide`` at other segment lengths (``levels.WIDE_SEGMENT_BYTES``),
``--presets`` with other text presets than its own (18; 7 is the default level's, whose
tables are smaller), ``--text-segment-bytes`` the default level at other text segment
lengths (``levels.TEXT_SEGMENT_BYTES``: the default's blocks of 1 MiB, in up to 1,024
segments, the other way to give a device thousands of segments a step, with several
frames side by side), and ``--frame-mb`` frames of that size for every run instead of the
encoder's choice (which cuts an input of 8-32 MiB in two at the default level). Worker
processes cut blocks by the level's own rule, so inputs of several frames are coded in
this process (``-T1``) at other segment lengths and presets. ``--block-mb`` tries
``--wide`` in blocks of those sizes (``levels.WIDE_BLOCK``): fewer bytes in flight at once
for fewer segments a step.
The default input is the ``.py`` files of this Python's standard library, joined in sorted
path order and cut at ``--mb`` MiB (a kind of text the model was not trained on in bulk).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import lzma
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench import machine  # noqa: E402
from own_texts import stdlib_sources  # noqa: E402

from nncompress import api, levels  # noqa: E402
from nncompress.config import PRESETS, preset_of  # noqa: E402
from nncompress.engine import list_stream  # noqa: E402


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def segments_of(blob: bytes) -> str:
    """The archive's blocks by segment count, as "blocks x segments"."""
    counts: dict[int, int] = {}
    for b in list_stream(io.BytesIO(blob)).blocks:
        counts[b.segments] = counts.get(b.segments, 0) + 1
    return ", ".join(f"{n}x{s}" for s, n in sorted(counts.items(), reverse=True))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--levels", default="default,wide")
    ap.add_argument("--segment-bytes", default=str(levels.WIDE_SEGMENT_BYTES))
    wide, wide_bytes = levels.LEVELS["wide"], levels.WIDE_SEGMENT_BYTES
    wide_preset = preset_of(wide.config)
    ap.add_argument("--presets", default=str(wide_preset), help="--wide's text presets")
    ap.add_argument("--threads", type=int, default=0, help="-T (0: every core)")
    ap.add_argument("--mb", type=int, default=16, help="size of the default input, MiB")
    default, text_bytes = levels.LEVELS["default"], levels.TEXT_SEGMENT_BYTES
    ap.add_argument("--text-segment-bytes", default=str(text_bytes), help="the default's")
    ap.add_argument("--frame-mb", type=int, default=0, help="frame size (0: the encoder's)")
    ap.add_argument("--block-mb", default=str(levels.WIDE_BLOCK >> 20), help="--wide's")
    args = ap.parse_args()
    frame = args.frame_mb << 20 or None
    inputs = [(f.name, f.read_bytes()) for f in args.files] or [
        (f"stdlib .py, {args.mb} MiB", stdlib_sources(args.mb << 20))
    ]
    runs = []
    for level in args.levels.split(","):
        if level == "wide":
            runs += [
                (level, int(b), int(p), int(m) << 20)
                for m in args.block_mb.split(",")
                for p in args.presets.split(",")
                for b in args.segment_bytes.split(",")
            ]
        elif level == "default":
            runs += [(level, int(b), 0, 0) for b in args.text_segment_bytes.split(",")]
        else:
            runs.append((level, 0, 0, 0))
    print(machine())
    frames = f"{args.frame_mb} MiB" if frame else "the encoder's"
    print(f"-T {args.threads}, frames: {frames}\n")
    print(
        "| input | level | bytes | vs the first | blocks x segments | comp. KB/s "
        "| decomp. KB/s | x xz -9e comp. | x xz -9e decomp. |"
    )
    print("|---|---|---:|---:|---|---:|---:|---:|---:|")
    for name, data in inputs:
        xz, xz_c = timed(lzma.compress, data, preset=9 | lzma.PRESET_EXTREME)
        _, xz_d = timed(lzma.decompress, xz)
        base = None
        for level, length, preset, block in runs:
            if level == "wide" and length:
                levels.WIDE_SEGMENT_BYTES = length
                levels.LEVELS["wide"] = dataclasses.replace(
                    wide, config=PRESETS[preset], block=block
                )
            if level == "default":
                levels.LEVELS["default"] = dataclasses.replace(
                    default, segments=lambda n, b=length: levels.text_segments(n, b)
                )
                own = length == text_bytes
            else:
                own = length in (0, wide_bytes) and preset in (0, wide_preset)
                own = own and block in (0, wide.block)
            threads = args.threads if own else 1
            blob, t_c = timed(api.compress, data, level, threads=threads, frame_size=frame)
            back, t_d = timed(api.decompress, blob, threads=threads)
            if back != data:
                print(f"ROUND TRIP FAILED: {name} at {level}", file=sys.stderr)
                return 1
            base = base or len(blob)
            if level == "wide" and length:
                label = f"{level} ({block >> 20} MiB blocks, {length} B, preset {preset})"
            elif level == "default" and not own:
                label = f"{level} ({length} B segments)"
            else:
                label = level
            label += "" if own else ", -T1"
            kb = len(data) / 1e3
            print(
                f"| {name} | {label} | {len(blob):,} | {100 * (len(blob) / base - 1):+.2f}% "
                f"| {segments_of(blob)} | {kb / t_c:.1f} | {kb / t_d:.1f} "
                f"| {xz_c / t_c:.3f} | {xz_d / t_d:.4f} |",
                flush=True,
            )
        print(
            f"| {name} | xz -9e | {len(xz):,} | | | {kb / xz_c:.0f} | {kb / xz_d:.0f} | 1 | 1 |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
