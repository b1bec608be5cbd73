#!/usr/bin/env python3
"""Throughput against thread count, side by side with ``xz -T`` and ``zstd -T``.

Runs the command line as a user does (program start included) on one input, for each
``-T`` in turn, compressing and decompressing, checks that every ``-T`` gives the same
archive and that each decodes, and prints a Markdown table: seconds, KB/s, speed-up over
``-T1``, and for nncompress the worker processes it ran and their peak memory (``-v``),
then the same for ``xz -9 -T N`` and ``zstd -19 -T N`` (``-T`` is threads for them).

    python scripts/scaling.py                        # 12 MB of Python source, -T 1,2
    python scripts/scaling.py --threads 1,2,4,8,16 --frame-size 4M FILE
    python scripts/scaling.py --variant="--wide on a GPU|--wide --device cuda|--device cuda"

``--variant="LABEL|COMPRESS ARGS|DECOMPRESS ARGS"`` (repeatable) runs nncompress with
those arguments after ``-T`` (so a variant's own ``-T`` wins) in place of the plain
default; each variant's archives must be the same at every ``-T``, and with
``--same-archives`` the same as every other variant's. A variant with ``--device`` runs
without ``-v``: its accounting of where the bits went is kept by the compiled loops
alone, so with it the predictor would not run on the device at all (its workers column
says ``-``; its frames go to threads on the device, ``nncompress/devicepool.py``).

The default input is the ``.py`` files of this Python's standard library, joined in
sorted path order and cut at 12 MiB (data of a kind the model was not trained on in bulk).
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from bench import machine  # noqa: E402
from own_texts import stdlib_sources  # noqa: E402


def timed(cmd: list[str], src: Path, dst: Path) -> tuple[float, str]:
    with open(src, "rb") as i, open(dst, "wb") as o:
        t = time.perf_counter()
        run = subprocess.run(cmd, stdin=i, stdout=o, stderr=subprocess.PIPE, check=True)
        return time.perf_counter() - t, run.stderr.decode(errors="replace")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file", nargs="?", type=Path)
    ap.add_argument("--threads", default="1,2", help="-T values, comma-separated")
    ap.add_argument("--frame-size", default=None, help="nncompress -F (default: its own)")
    ap.add_argument("--mb", type=int, default=12, help="size of the default input, MiB")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        help='"LABEL|COMPRESS ARGS|DECOMPRESS ARGS" for nncompress (repeatable)',
    )
    ap.add_argument(
        "--same-archives",
        action="store_true",
        help="the variants must write the same archive (one level on two devices)",
    )
    args = ap.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    # The installed command, else the package run from this tree (a lent GPU machine
    # runs the scripts without installing).
    exe = shutil.which("nncompress") or Path(sys.executable).parent / "nncompress"
    nnc = [str(exe)] if Path(exe).exists() else [sys.executable, "-m", "nncompress"]
    work = Path(tempfile.mkdtemp(prefix="nnc-scaling-"))
    try:
        src = args.file or work / "input"
        if args.file is None:
            src.write_bytes(stdlib_sources(args.mb << 20))
        n = src.stat().st_size
        name = args.file.name if args.file else f"stdlib .py, {n:,} bytes"
        print(f"Machine: {machine()}\n\nInput: {name}\n")
        print(
            "| codec | -T | compress s | KB/s | × -T1 | decompress s | KB/s | × -T1 | "
            "size | workers, peak memory each |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        frame = ["-F", args.frame_size] if args.frame_size else []
        variants = [v.split("|") for v in args.variant] or [["nncompress", "", ""]]

        def verbose(extra: list[str]) -> list[str]:
            device = any(a == "--device" or a.startswith("--device=") for a in extra)
            return [] if device else ["-v"]

        tools = [
            (
                label,
                lambda t, c=c: [*nnc, *verbose(c), f"-T{t}", *frame, *c],
                lambda t, d=d: [*nnc, "-d", *verbose(d), f"-T{t}", *d],
            )
            for label, c, d in ((v[0], shlex.split(v[1]), shlex.split(v[2])) for v in variants)
        ] + [
            (
                "xz -9",
                lambda t: ["xz", "-9", f"-T{t}", "-c"],
                lambda t: ["xz", "-d", f"-T{t}", "-c"],
            ),
            (
                "zstd -19",
                lambda t: ["zstd", "-19", f"-T{t}", "-c", "-q"],
                lambda t: ["zstd", "-d", "-c", "-q"],
            ),
        ]
        status = 0
        archives: set[bytes] = set()
        for label, comp, decomp in tools:
            if shutil.which(comp(1)[0]) is None:
                print(f"| {label} | — | not installed | | | | | | | |")
                continue
            base: tuple[float, float] | None = None
            first: bytes | None = None
            ours = comp(1)[: len(nnc)] == nnc
            for t in counts:
                packed, back = work / "packed", work / "back"
                tc, log_c = timed(comp(t), src, packed)
                td, log_d = timed(decomp(t), packed, back)
                blob = packed.read_bytes()
                if back.read_bytes() != src.read_bytes():
                    print(f"| {label} | {t} | ROUND TRIP FAILED | | | | | | | |")
                    status = 1
                    continue
                if ours:
                    archives.add(blob)
                    first = first or blob
                    if blob != first:
                        print(
                            f"| {label} | {t} | ARCHIVE DIFFERS FROM -T{counts[0]} | | | | | | | |"
                        )
                        status = 1
                base = base or (tc, td)
                workers = " / ".join(
                    f"{m.group(1)} x {m.group(2)} MiB"
                    for m in re.finditer(
                        r"(\d+) worker processes .*? up to ([\d,]+) MiB", log_c + log_d
                    )
                ) or ("-" if ours else "")
                row = [f"{tc:.1f}", f"{n / tc / 1e3:,.1f}", f"{base[0] / tc:.2f}"]
                row += [f"{td:.1f}", f"{n / td / 1e3:,.1f}", f"{base[1] / td:.2f}"]
                row += [f"{len(blob):,}", workers]
                print(f"| {label} | {t} | " + " | ".join(row) + " |", flush=True)
        if args.same_archives and len(archives) > 1:
            print("\nThe variants wrote different archives.")
            status = 1
        return status
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
