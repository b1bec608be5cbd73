#!/usr/bin/env python3
"""Where the mixed method's bits and time go inside a block.

Compresses FILE with the default level, and prints, for the mixed blocks at or after
``--from-block``, the bits per byte spent at each position range inside the lockstep
segments (byte 0-4 of every segment, 5-15, ...) with the share of bytes the match model
predicted there. Segment starts are where the lockstep layout costs ratio: the network
starts cold, the context statistics see no context, the match model has nothing to look up.
With ``--profile``, also runs cProfile over the first 192 KiB coded as one mixed block and
prints the most expensive functions.

    python scripts/segment_costs.py ../shared/corpus/calgary/book1
    cat book1 book1 > x2; python scripts/segment_costs.py x2 -B 768771 --from-block 1
    OPENBLAS_NUM_THREADS=1 python scripts/segment_costs.py book1 --profile
    python scripts/segment_costs.py FILE --segment-bytes 1024   # the default's text blocks
                                                               # in segments of 1 KiB

``--segment-bytes`` cuts the default level's text blocks into segments of that length
(``levels.TEXT_SEGMENT_BYTES``), to see which positions a shorter segment pays for: the
geometry a device needs has many more segments a block (docs/DESIGN.md, section 10).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import pstats
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nncompress import adaptive, levels  # noqa: E402
from nncompress.cli import parse_size  # noqa: E402
from nncompress.coder import encode_block_mixed  # noqa: E402
from nncompress.engine import compress_stream  # noqa: E402
from nncompress.zoo import load_model  # noqa: E402

RANGES = ((0, 5), (5, 16), (16, 32), (32, 64), (64, 128), (128, 256), (256, 1 << 30))


def costs_by_position(data: bytes, block_size: int, from_block: int) -> None:
    per_t: dict[int, list[float]] = {}  # step -> [bits, bytes, matched bytes]
    original = adaptive.BlockCoder.code_byte
    seen_blocks: list[object] = []  # what a block's segment groups share, block by block

    def code_byte(self: adaptive.BlockCoder, freqs, byte: np.ndarray, enc) -> None:
        t = self.t
        original(self, freqs, byte, enc)
        if not seen_blocks or seen_blocks[-1] is not self.sh:
            seen_blocks.append(self.sh)
        if len(seen_blocks) - 1 >= from_block:
            k = len(byte)
            row = per_t.setdefault(t, [0.0, 0, 0])
            row[0] += float(self.byte_bits[:k].sum())
            row[1] += k
            row[2] += int(np.count_nonzero(self.seg[adaptive._MATCHED, :k]))

    adaptive.BlockCoder.code_byte = code_byte  # type: ignore[method-assign]
    try:
        out = io.BytesIO()
        info = compress_stream(
            io.BytesIO(data), out, load_model(), block_size, account=True, threads=1
        )
    finally:
        adaptive.BlockCoder.code_byte = original  # type: ignore[method-assign]
    print(f"{len(data):,} bytes -> {info.archive_len:,}; mixed blocks from block {from_block}:")
    total = sum(r[0] for r in per_t.values()) / 8
    print(f"  {total:,.0f} bytes of ideal code length")
    for lo, hi in RANGES:
        rows = [per_t[t] for t in range(lo, min(hi, len(per_t))) if t in per_t]
        if not rows:
            continue
        bits, n, matched = (sum(r[i] for r in rows) for i in range(3))
        label = f"{lo}-{hi - 1}" if hi < (1 << 30) else f"{lo}+"
        print(
            f"  segment bytes {label:>8}: {bits / 8:>10,.0f} bytes, {bits / n:.3f} bpb, "
            f"match model predicted {matched / n:.0%}"
        )


def profile(data: bytes) -> None:
    model = load_model()
    sample = data[: 192 << 10]
    prof = cProfile.Profile()
    prof.enable()
    # One thread, so that the profile sees the network's steps too.
    encode_block_mixed(model, sample, adaptive.StreamState(), pipelined=False)
    prof.disable()
    print(f"cProfile of one mixed block of {len(sample):,} bytes:")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(
        "_step_compiled|_gru_kernel|_freqs_kernel|code_byte|encode|_code_mixed"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("-B", "--block-size", default="1M")
    ap.add_argument("--from-block", type=int, default=0, help="skip the blocks before this")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--segment-bytes", type=int, default=levels.TEXT_SEGMENT_BYTES)
    args = ap.parse_args()
    data = args.file.read_bytes()
    if args.segment_bytes != levels.TEXT_SEGMENT_BYTES:
        levels.LEVELS["default"] = dataclasses.replace(
            levels.LEVELS["default"],
            segments=lambda n: levels.text_segments(n, args.segment_bytes),
        )
    costs_by_position(data, parse_size(args.block_size), args.from_block)
    if args.profile:
        profile(data)


if __name__ == "__main__":
    main()
