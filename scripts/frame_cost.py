#!/usr/bin/env python3
"""What frames cost in ratio: the same input compressed with several frame sizes.

Frames restart the adaptive statistics (that is what lets them be decoded alone and in
parallel), so every frame start codes its first bytes cold. This prints, per input and
frame size, the archive size and its cost against one frame for the whole input.

    python scripts/frame_cost.py                        # book1+book2+news, and a 20 MB tree
    python scripts/frame_cost.py --frames 1M,4M,16M FILE...
    python scripts/frame_cost.py --shared FILE...       # what each input's halves share

``--shared`` prints, instead, the share of the second half's anchored strings that occur
in the first (``repeats.shared``), which decides whether the encoder cuts an input of 8
to 32 MiB into two frames (``levels.SPLIT_SHARED``).

The default 20 MB input is the ``.py`` files of this Python's standard library, joined in
sorted path order (source code of a kind the model was not trained on in bulk, and the
size of a project tarball).
"""

from __future__ import annotations

import argparse
import io
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nncompress import levels, repeats  # noqa: E402
from nncompress.engine import compress_stream  # noqa: E402
from nncompress.zoo import load_model  # noqa: E402

CALGARY = ROOT.parent / "shared" / "corpus" / "calgary"


def stdlib_sources(limit: int) -> bytes:
    parts, total = [], 0
    for p in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        if total >= limit:
            break
        data = p.read_bytes()
        parts.append(data)
        total += len(data)
    return b"".join(parts)[:limit]


def size(text: str) -> int:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    return int(t[:-1] if mult > 1 else t) * mult


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--frames", default="1M,4M,16M,1G", help="frame sizes to try")
    ap.add_argument("--stdlib-mb", type=int, default=20, help="size of the default tree input")
    ap.add_argument("--shared", action="store_true", help="print what the halves share")
    args = ap.parse_args()
    inputs: list[tuple[str, bytes]] = []
    if args.files:
        inputs = [(f.name, f.read_bytes()) for f in args.files]
    else:
        books = b"".join((CALGARY / n).read_bytes() for n in ("book1", "book2", "news"))
        inputs = [
            ("book1+book2+news", books),
            (f"stdlib .py ({args.stdlib_mb} MB)", stdlib_sources(args.stdlib_mb << 20)),
        ]
    if args.shared:
        print(
            f"| input | bytes | second half's strings in the first (one frame at >= "
            f"{levels.SPLIT_SHARED:.3f}) | seconds |"
        )
        print("|---|---:|---:|---:|")
        for name, data in inputs:
            t = time.perf_counter()
            share = repeats.shared(data[: len(data) // 2], data[len(data) // 2 :])
            print(f"| {name} | {len(data):,} | {share:.4f} | {time.perf_counter() - t:.2f} |")
        return
    model = load_model(None)
    frames = [size(f) for f in args.frames.split(",")]
    print("| input | bytes | frame size | frames | archive | cost vs one frame | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, data in inputs:
        rows = []
        for fs in sorted(frames, reverse=True):
            t = time.perf_counter()
            info = compress_stream(io.BytesIO(data), io.BytesIO(), model, frame_size=fs)
            rows.append((fs, len(info.frames), info.archive_len, time.perf_counter() - t))
        whole = rows[0][2]
        for fs, n, packed, secs in sorted(rows):
            cost = 100 * (packed - whole) / whole
            print(
                f"| {name} | {len(data):,} | {fs >> 20} MiB | {n} | {packed:,} | "
                f"{cost:+.2f}% | {secs:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
