#!/usr/bin/env python3
"""What the encoder takes blocks for, and what that gains: per file (its first block), the
record length ``records.detect`` finds, whether ``filters.looks_like_x86`` takes it for
code, and the mixed method's payload coded plainly (default preset, no transform) and as
the encoder codes it (the binary preset, the record length, the x86 transform), with the shipped
model. ``--presets 2,3`` codes the binary blocks with each of those presets in turn, to
compare them (the ratio column is then the last against the first).

    python scripts/block_kinds.py FILE...  [--block 1M] [--presets 2,3]

Use it when changing ``records.py``, ``filters.py`` or the record contexts, on data of
several kinds (tables, bitmaps, arrays, executables, and text, which must come out plain).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nncompress import filters, records  # noqa: E402
from nncompress import format as fmt  # noqa: E402
from nncompress.adaptive import StreamState  # noqa: E402
from nncompress.coder import encode_block_mixed  # noqa: E402
from nncompress.config import DEFAULT, PRESETS, preset_of  # noqa: E402
from nncompress.model import IntModel  # noqa: E402
from nncompress.workers import parse_size  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--block", default="1M", help="bytes of each file to code (1M)")
    parser.add_argument("--model", type=Path, default=REPO / "models" / "default.nnm")
    parser.add_argument(
        "--presets",
        default=str(preset_of(records.BINARY_CONFIG)),
        help="binary presets to code with, comma-separated (default: the encoder's)",
    )
    parser.add_argument(
        "--network-weight",
        type=int,
        help="the binary presets' initial network weight, Q16 (default: their own)",
    )
    parser.add_argument(
        "--segment-bytes",
        type=int,
        default=records.BINARY_SEGMENT_BYTES,
        help=f"shortest segment of binary blocks (its own: {records.BINARY_SEGMENT_BYTES})",
    )
    args = parser.parse_args()
    numbers = [int(p) for p in args.presets.split(",")]
    binaries = [PRESETS[p] for p in numbers]
    if args.network_weight is not None:
        binaries = [dataclasses.replace(b, network_weight=args.network_weight) for b in binaries]
    records.BINARY_SEGMENT_BYTES = args.segment_bytes
    model = IntModel.load(args.model)
    limit = parse_size(args.block)
    names = [f"preset {p}" for p in numbers]
    print(
        f"{'file':<28} {'bytes':>9} {'x86':>3} {'R':>5} {'segs':>5} {'plain':>9} "
        + " ".join(f"{n:>9}" for n in names)
        + f" {'ratio':>6} {'KB/s':>6}"
    )
    totals = [0] * (1 + len(binaries))
    for path in args.files:
        data = path.read_bytes()[:limit]
        if not data:
            continue
        n = len(data)
        plain, _ = encode_block_mixed(model, data, StreamState(DEFAULT, n))
        x86 = filters.looks_like_x86(data)
        coded = filters.x86_encode(data) if x86 else data
        r = records.detect(coded)
        segments = records.segments(n, fmt.segment_count(n), r, x86)
        sizes = [len(plain)]
        for binary in binaries:
            start = time.perf_counter()
            config = binary if r or x86 else DEFAULT
            kinds, _ = encode_block_mixed(
                model, coded, StreamState(config, n), None, segments, None, r
            )
            speed = n / 1e3 / (time.perf_counter() - start)
            sizes.append(len(kinds))
        totals = [t + s for t, s in zip(totals, sizes, strict=True)]
        base = sizes[0] if len(sizes) == 2 else sizes[1]
        print(
            f"{path.name[:28]:<28} {n:>9,} {'yes' if x86 else '-':>3} {r:>5} {segments:>5} "
            + " ".join(f"{s:>9,}" for s in sizes)
            + f" {sizes[-1] / base:>6.3f} {speed:>6.1f}"
        )
    base = totals[0] if len(totals) == 2 else totals[1]
    print(
        f"{'total':<28} {'':>9} {'':>3} {'':>5} {'':>5} "
        + " ".join(f"{t:>9,}" for t in totals)
        + f" {totals[-1] / max(1, base):>6.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
