#!/usr/bin/env python3
"""A newcomer's first minutes, timed: a fresh clone, ``pip install -e .``, the first round
trip of a 1 KB file, and warm ones, beside xz in the same run.

    python scripts/first_call.py              # clones this checkout's HEAD into a temp dir
    python scripts/first_call.py --keep DIR   # ... into DIR, and keeps it

Needs git and network access to the package index (the install is real). Each call runs
the installed console script as a user's shell does (program start included) and reports
its seconds and peak resident memory (GNU time's ``%M`` where installed, see memory.py).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from bench import machine  # noqa: E402
from memory import peak  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", type=Path, help="clone into this folder and keep it")
    ap.add_argument("--warm", type=int, default=3, help="warm round trips to time")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="nnc-first-"))
    clone = work / "nncompress"
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        t = time.perf_counter()
        venv = clone / ".venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "-e", str(clone)],
            check=True,
            stderr=subprocess.DEVNULL,
        )
        install = time.perf_counter() - t
        nnc = str(venv / "bin" / "nncompress")
        src = work / "one-kb"
        src.write_bytes((clone / "README.md").read_bytes()[:1024])
        packed, back = work / "one-kb.nnc", work / "one-kb.out"
        print(f"Machine: {machine()}\n")
        print(f"Fresh clone, `pip install -e .` (with its compile step): {install:.1f} s\n")
        print("| run | codec | compress s | peak MiB | decompress s | peak MiB |")
        print("|---|---|---:|---:|---:|---:|")
        codecs = {
            "nncompress": ([nnc, "-c"], [nnc, "-dc"]),
            "xz -9e": (["xz", "-9e", "-c"], ["xz", "-dc"]),
        }
        for run in ["first"] + [f"warm {i + 1}" for i in range(args.warm)]:
            for name, (enc, dec) in codecs.items():
                if run != "first" and name != "nncompress" and run != "warm 1":
                    continue
                ct, cm = peak(enc, src, packed)
                dt, dm = peak(dec, packed, back)
                if back.read_bytes() != src.read_bytes():
                    raise SystemExit(f"{name}: round trip failed")
                print(
                    f"| {run} | {name} | {ct:.2f} | {cm / 2**20:,.0f} | {dt:.2f} | "
                    f"{dm / 2**20:,.0f} |",
                    flush=True,
                )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
