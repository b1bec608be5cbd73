#!/usr/bin/env python3
"""The mixed method's presets side by side on whole files: each file compressed at the
default level once per preset named (``auto``: the level's own choice, which may give way
to a binary preset after the first block) and per redundancy threshold named (text blocks
that zlib at level 1 keeps less than this share of take long segments,
``records.REDUNDANT_RATIO``; 0: never), every archive decoded and checked, with its size,
both speeds, and xz -9e's compression speed in the same run as a yardstick for a shared,
noisy machine.

    python scripts/presets.py FILE... [--presets 1,6,auto] [--ratios 0,0.2]

Use it when adding a preset (docs/DESIGN.md, section 7), on files of several kinds that
the preset is meant for, never on one benchmark file.
"""

from __future__ import annotations

import argparse
import io
import lzma
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nncompress import records  # noqa: E402
from nncompress.config import PRESETS  # noqa: E402
from nncompress.engine import compress_stream, decompress_stream  # noqa: E402
from nncompress.zoo import load_model  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--presets", default="1,auto", help="comma-separated, or auto")
    parser.add_argument(
        "--ratios",
        default=str(records.REDUNDANT_RATIO),
        help=f"redundancy thresholds, comma-separated (the encoder's: {records.REDUNDANT_RATIO})",
    )
    args = parser.parse_args()
    columns = [(p, float(r)) for p in args.presets.split(",") for r in args.ratios.split(",")]
    names = [f"{p}" if len(args.ratios.split(",")) == 1 else f"{p}/{r:g}" for p, r in columns]
    configs = [(None if p == "auto" else PRESETS[int(p)], r) for p, r in columns]
    model = load_model("default")
    print(
        f"{'file':<24} {'bytes':>10} "
        + " ".join(f"{'preset ' + n:>13}" for n in names)
        + f" {'ratio':>6}   KB/s comp/decomp per preset; xz -9e comp KB/s"
    )
    totals = [0] * len(configs)
    for path in args.files:
        data = path.read_bytes()
        sizes, speeds = [], []
        for config, ratio in configs:
            out = io.BytesIO()
            records.REDUNDANT_RATIO = ratio
            start = time.perf_counter()
            compress_stream(io.BytesIO(data), out, model, config=config)
            mid = time.perf_counter()
            back = io.BytesIO()
            decompress_stream(io.BytesIO(out.getvalue()), back, lambda _: model)
            end = time.perf_counter()
            if back.getvalue() != data:
                raise SystemExit(f"{path}: round trip failed")
            sizes.append(len(out.getvalue()))
            speeds.append(
                f"{len(data) / 1e3 / (mid - start):.1f}/{len(data) / 1e3 / (end - mid):.1f}"
            )
        start = time.perf_counter()
        lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
        xz = len(data) / 1e3 / (time.perf_counter() - start)
        totals = [t + s for t, s in zip(totals, sizes, strict=True)]
        print(
            f"{path.name[:24]:<24} {len(data):>10,} "
            + " ".join(f"{s:>13,}" for s in sizes)
            + f" {sizes[-1] / sizes[0]:>6.3f}   {' '.join(speeds)}; xz {xz:.0f}"
        )
    print(
        f"{'total':<24} {'':>10} "
        + " ".join(f"{t:>13,}" for t in totals)
        + f" {totals[-1] / max(1, totals[0]):>6.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
