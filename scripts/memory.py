#!/usr/bin/env python3
"""Peak memory (resident set) of the command line, compressing and decompressing, beside
``xz -9e`` and ``zstd -19`` in the same run.

Each command runs as a user runs it (a fresh process, input on stdin, output to a file);
its peak resident memory is the kernel's count for that process and the processes it
waited for (GNU time's ``%M``), so worker processes are included: the largest of them, not
their sum. Prints a Markdown table.

    python scripts/memory.py                      # 8 MiB of Python source, and 1 KiB of it
    python scripts/memory.py --sizes 1K,8M -T 1   # other sizes; nncompress -T1
    python scripts/memory.py FILE                 # a file of your own (whole)
    python scripts/memory.py --tables             # each preset's adaptive tables
    python scripts/memory.py --tables --block-mb 2   # ...in a stream of 2 MiB blocks
    python scripts/memory.py --level wide         # nncompress --wide (or max, fast)

The default inputs are the first bytes of this Python's standard library sources, joined
in sorted path order (``own_texts.stdlib_sources``).
"""

from __future__ import annotations

import argparse
import os
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

TIME = shutil.which("time", path="/usr/bin:/bin")


def peak(cmd: list[str], src: Path, dst: Path) -> tuple[float, int]:
    """Seconds and peak resident bytes of ``cmd < src > dst``: as GNU time reports it
    (``%M``) where it is installed, else from ``os.wait4``, which on Linux also counts the
    memory of this (Python) process that the child started as a copy of, before exec."""
    with open(src, "rb") as i, open(dst, "wb") as o:
        t = time.perf_counter()
        proc = subprocess.Popen(
            [TIME, "-f", "%M", *cmd] if TIME else cmd, stdin=i, stdout=o, stderr=subprocess.PIPE
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(cmd)} failed: {err.strip()}")
    kib = int(err.strip().splitlines()[-1]) if TIME else usage.ru_maxrss
    return seconds, kib * 1024


def loops_mode(nnc: list[str]) -> str:
    """How the measured nncompress runs its compiled loops: "aot" (the module built ahead of
    time) or "jit" (numba), as its own Python reports it."""
    python = Path(nnc[0]).parent / "python" if nnc[0].endswith("nncompress") else nnc[0]
    code = "from nncompress import jit; print(jit.mode())"
    run = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return run.stdout.strip() or "unknown"


def parse_size(text: str) -> int:
    mult = {"k": 1 << 10, "m": 1 << 20}.get(text[-1:].lower(), 1)
    return int(text[:-1] if mult > 1 else text) * mult


def table_sizes(block_size: int) -> None:
    """What the adaptive statistics of each released preset allocate for a stream of
    blocks of ``block_size`` bytes (context and match tables, mixers, refinement stages),
    in this process. The context tables grow with the blocks up to the preset's size:
    the default level's 1 MiB blocks, and --wide's 2 MiB, get each preset's largest."""
    import numpy as np

    from nncompress.adaptive import StreamState
    from nncompress.config import PRESET_NAMES, PRESETS

    print("| preset | name | contexts | extra mixers | tables MB |")
    print("|---:|---|---:|---:|---:|")
    for number, config in PRESETS.items():
        state = StreamState(config, block_size)
        state.ensure_tables()
        size = sum(v.nbytes for v in vars(state).values() if isinstance(v, np.ndarray))
        row = f"| {number} | {PRESET_NAMES[number]} | {len(config.contexts)} |"
        print(f"{row} {len(config.mixers)} | {size / 1e6:.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file", nargs="?", type=Path)
    ap.add_argument(
        "--tables", action="store_true", help="print each preset's table sizes and exit"
    )
    ap.add_argument(
        "--block-mb", type=float, default=1, help="--tables: the stream's block size (MiB)"
    )
    ap.add_argument("--sizes", default="1K,8M", help="default inputs' sizes (K, M)")
    ap.add_argument("-T", "--threads", default="0", help="nncompress -T (default 0)")
    ap.add_argument("--level", choices=("fast", "default", "max", "wide"), default="default")
    ap.add_argument(
        "--nncompress",
        help="command that runs nncompress (default: the installed one), e.g. "
        "'python -m nncompress' with PYTHONPATH set to another checkout",
    )
    args = ap.parse_args()
    if args.tables:
        table_sizes(int(args.block_mb * (1 << 20)))
        return 0
    nnc = (
        args.nncompress.split()
        if args.nncompress
        else [shutil.which("nncompress") or str(Path(sys.executable).parent / "nncompress")]
    )
    codecs = {
        "nncompress": (
            [
                *nnc,
                "-c",
                "-T",
                args.threads,
                *([] if args.level == "default" else [f"--{args.level}"]),
            ],
            [*nnc, "-d", "-c", "-T", args.threads],
        ),
        "xz -9e": (["xz", "-9e", "-c"], ["xz", "-d", "-c"]),
        "zstd -19": (["zstd", "-19", "-c", "-q"], ["zstd", "-d", "-c", "-q"]),
    }
    work = Path(tempfile.mkdtemp(prefix="nnc-memory-"))
    try:
        inputs: list[tuple[str, Path]] = []
        if args.file:
            inputs.append((args.file.name, args.file))
        else:
            for text in args.sizes.split(","):
                path = work / f"input-{text}"
                path.write_bytes(stdlib_sources(parse_size(text)))
                inputs.append((f"stdlib .py, {path.stat().st_size:,} bytes", path))
        print(f"Machine: {machine()}")
        print(f"Compiled loops run by: {loops_mode(nnc)}; nncompress level: {args.level}\n")
        print(
            "| input | codec | compress s | compress peak MiB | decompress s | "
            "decompress peak MiB | compress / decompress |"
        )
        print("|---|---|---:|---:|---:|---:|---:|")
        for name, src in inputs:
            for codec, (enc, dec) in codecs.items():
                if shutil.which(enc[0]) is None:
                    continue
                packed, back = work / "packed", work / "back"
                ct, cm = peak(enc, src, packed)
                dt, dm = peak(dec, packed, back)
                if back.read_bytes() != src.read_bytes():
                    raise SystemExit(f"{codec}: round trip of {name} differs")
                print(
                    f"| {name} | {codec} | {ct:.2f} | {cm / 2**20:,.0f} | {dt:.2f} | "
                    f"{dm / 2**20:,.0f} | {cm / dm:.2f} |",
                    flush=True,
                )
        print()
        print("What a process holds before it reads any data (peak resident MiB):")
        print()
        empty = work / "empty"
        empty.write_bytes(b"")
        for what, code in FLOORS:
            _, m = peak([sys.executable, "-c", code], empty, work / "out")
            print(f"- {what}: {m / 2**20:,.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


#: The fixed costs under nncompress's peak: Python with numpy; the compiled loops as this
#: checkout runs them (the module built ahead of time where ``python -m nncompress.warmup``
#: built it for these sources, else numba); and numba's share where it runs them instead
#: (imported, then its runtime started with one loop loaded from its cache).
FLOORS = [
    ("Python and numpy", "import numpy"),
    (
        "and the compiled loops loaded, as this checkout runs them",
        "from nncompress import jit; import nncompress.model; jit.bind()",
    ),
    ("where numba runs them instead: numba imported", "import numpy, numba"),
    (
        "and one loop loaded through numba",
        "import os; os.environ['NNCOMPRESS_JIT'] = '1'\n"
        "import nncompress.adaptive as a; a._ilog2(5)",
    ),
]

if __name__ == "__main__":
    sys.exit(main())
