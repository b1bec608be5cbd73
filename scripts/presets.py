#!/usr/bin/env python3
"""The mixed method's presets side by side on whole files: each file compressed at the
default level (or ``--level max``, with its model and one segment per block) once per
preset named (``auto``: the level's own choice, which may give way
to a binary preset after the first block), per redundancy threshold named (text blocks
that zlib at level 1 keeps less than this share of take long segments,
``records.REDUNDANT_RATIO``; 0: never), per binary segment length named (records and
machine code, ``records.BINARY_SEGMENT_BYTES``), per text segment length named (the
default level's, ``levels.TEXT_SEGMENT_BYTES``), per long-text threshold named (text
streams at least that long go without the network, ``levels.LONG_TEXT_BYTES``; 0: never,
whose columns with ``auto`` are the level as it was before long texts) and per
configuration named for long texts (``config.LONG_TEXT``, or a preset; either with fields
of its own, as ``long:final_shift=18``), every archive decoded and checked, with its
size, both speeds, and xz -9e's compression speed in the same run as a yardstick for a
shared, noisy machine.

    python scripts/presets.py FILE... [--presets 1,6,auto] [--ratios 0,0.2]
                                      [--segment-bytes 16384,65536] [--min-redundant 64]
                                      [--text-segment-bytes 1024,2048] [--level max]
                                      [--long-text 0,1048576] [--long-config 36,42,long]
                                      [--long-config long:final_shift=18:match_min=5]

Use it when adding a preset (docs/DESIGN.md, section 7), on files of several kinds that
the preset is meant for, never on one benchmark file.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import itertools
import lzma
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nncompress import levels, records  # noqa: E402
from nncompress.config import LONG_TEXT, PRESETS, Config  # noqa: E402
from nncompress.engine import compress_stream, decompress_stream  # noqa: E402
from nncompress.zoo import load_model  # noqa: E402


def parse_long_config(spec: str) -> Config:
    """``long`` or a preset number, then ``:field=value`` for each integer field replaced."""
    name, *fields = spec.split(":")
    config = LONG_TEXT if name == "long" else PRESETS[int(name)]
    changes = {k: int(v) for k, v in (f.split("=", 1) for f in fields)}
    return dataclasses.replace(config, **changes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--presets", default="1,auto", help="comma-separated, or auto")
    parser.add_argument(
        "--ratios",
        default=str(records.REDUNDANT_RATIO),
        help=f"redundancy thresholds, comma-separated (the encoder's: {records.REDUNDANT_RATIO})",
    )
    parser.add_argument(
        "--min-redundant",
        type=int,
        default=records.MIN_REDUNDANT_SEGMENTS,
        help="the fewest segments of a redundant text block "
        f"(the encoder's: {records.MIN_REDUNDANT_SEGMENTS})",
    )
    parser.add_argument(
        "--segment-bytes",
        default=str(records.BINARY_SEGMENT_BYTES),
        help="binary segment lengths, comma-separated "
        f"(the encoder's: {records.BINARY_SEGMENT_BYTES})",
    )
    parser.add_argument(
        "--text-segment-bytes",
        default=str(levels.TEXT_SEGMENT_BYTES),
        help="text segment lengths, comma-separated "
        f"(the default level's: {levels.TEXT_SEGMENT_BYTES})",
    )
    parser.add_argument(
        "--long-text",
        default=str(levels.LONG_TEXT_BYTES),
        help="the default level's long-text thresholds in bytes, comma-separated: text "
        "streams at least this long go without the network in one segment a block "
        f"(levels.Level.long_text; the encoder's: {levels.LONG_TEXT_BYTES}; 0: never)",
    )
    parser.add_argument(
        "--long-config",
        default="long",
        help="the configurations long texts take, comma-separated: preset numbers, or "
        "long (config.LONG_TEXT, the encoder's), each with integer fields replaced as "
        "long:final_shift=18:match_min=5",
    )
    parser.add_argument(
        "--level",
        choices=("default", "max"),
        default="default",
        help="the level whose model and segments are used (--text-segment-bytes: default only)",
    )
    args = parser.parse_args()
    records.MIN_REDUNDANT_SEGMENTS = args.min_redundant
    # One column per combination of the values named: (preset, redundancy threshold,
    # binary segment length, text segment length, long-text threshold, long-text
    # configuration), named by the values of the dimensions given more than one.
    dims = [
        args.presets.split(","),
        args.ratios.split(","),
        args.segment_bytes.split(","),
        args.text_segment_bytes.split(","),
        args.long_text.split(","),
        args.long_config.split(","),
    ]
    marks = ("", "", "", "t", "L", "c")
    columns = list(itertools.product(*dims))
    names = [
        "/".join(
            m + v
            for i, (m, v) in enumerate(zip(marks, col, strict=True))
            if i == 0 or len(dims[i]) > 1
        )
        for col in columns
    ]
    configs = [
        (
            None if p == "auto" else PRESETS[int(p)],
            float(r),
            int(b),
            int(t),
            int(g),
            parse_long_config(c),
        )
        for p, r, b, t, g, c in columns
    ]
    model = load_model(levels.LEVELS[args.level].model)
    default = levels.LEVELS["default"]
    print(
        f"{'file':<24} {'bytes':>10} "
        + " ".join(f"{'preset ' + n:>13}" for n in names)
        + f" {'ratio':>6}   KB/s comp/decomp per preset; xz -9e comp KB/s"
    )
    totals = [0] * len(configs)
    for path in args.files:
        data = path.read_bytes()
        sizes, speeds = [], []
        for config, ratio, length, text, long, long_config in configs:
            out = io.BytesIO()
            records.REDUNDANT_RATIO = ratio
            records.BINARY_SEGMENT_BYTES = length
            levels.LEVELS["default"] = dataclasses.replace(
                default,
                segments=lambda n, t=text: levels.text_segments(n, t),
                long_text=long,
                long_config=long_config,
            )
            start = time.perf_counter()
            compress_stream(io.BytesIO(data), out, model, level=args.level, config=config)
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
