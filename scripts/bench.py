#!/usr/bin/env python3
"""Benchmark nncompress against gzip -9 (zlib level 9) and xz -9e, measured side by side.

Prints Markdown: the machine, a per-file table of the Canterbury corpus, and the speeds on
Calgary's book1 (text) and pic (a bitmap, binary data) with nncompress's speed as a
fraction of xz -9e's from the same run (this machine is shared and noisy: ratios between
codecs timed together are the stable number).

    python scripts/bench.py                      # ../shared/corpus, default model
    python scripts/bench.py --model my.nnm --corpus DIR --speed FILE [FILE...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nncompress.compare import collect_inputs, run_comparison, select_codecs, to_markdown  # noqa: E402


def machine() -> str:
    """The machine (``compare.machine``: CPU, cores, system, Python), numpy and its BLAS
    threads, and the date: the line every benchmark prints first."""
    import numpy

    from nncompress.compare import machine as cpu

    # Mixed blocks hold BLAS to one thread while the network's steps run on a thread of
    # their own; the setting applies to everything else.
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "all") + " (mixed blocks: 1)"
    return (
        f"{cpu()}, numpy {numpy.__version__}, BLAS threads: {threads}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def main() -> int:
    shared = ROOT.parent / "shared" / "corpus"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=shared / "canterbury")
    ap.add_argument(
        "--speed",
        type=Path,
        nargs="+",
        default=[shared / "calgary" / "book1", shared / "calgary" / "pic"],
        help="files to time (default: Calgary's book1 and pic)",
    )
    ap.add_argument("--model", help="model name or .nnm path (default: the shipped one)")
    ap.add_argument("--codecs", default="nncompress,zlib-9,xz-9e")
    ap.add_argument("--skip-corpus", action="store_true", help="only the speeds")
    ap.add_argument(
        "--level",
        default="max",
        choices=["default", "max"],
        help="max (the default) also times nncompress --max; default times the default alone",
    )
    args = ap.parse_args()

    codecs = select_codecs(args.codecs, args.level, [args.model] if args.model else [])
    print(f"Machine: {machine()}\n")
    if args.corpus.exists() and not args.skip_corpus:
        report = run_comparison(collect_inputs([args.corpus]), codecs)
        print(f"### {args.corpus.name}\n")
        print(to_markdown(report))
        if report.failed:
            return 1
    for path in args.speed:
        if not path.exists():
            continue
        report = run_comparison(collect_inputs([path]), codecs)
        rows = {r.codec: r.metrics for r in report.files}
        nn = next(r for name, r in rows.items() if name.startswith("nncompress"))
        xz = rows.get("xz-9e")
        print(f"\n### {path.name} ({nn.original_size:,} bytes)\n")
        print("| codec | bpb | compress KB/s | decompress KB/s |")
        print("|---|---|---|---|")
        for name, m in rows.items():
            print(
                f"| {name} | {m.bits_per_byte:.3f} | {m.compress_mb_s * 1e3:,.1f} | "
                f"{m.decompress_mb_s * 1e3:,.1f} |"
            )
        if xz is not None:
            print(
                f"\nnncompress speed / xz -9e speed: compress "
                f"{nn.compress_mb_s / xz.compress_mb_s:.3f}, decompress "
                f"{nn.decompress_mb_s / xz.decompress_mb_s:.4f}"
            )
        if report.failed:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
