#!/usr/bin/env python3
"""What frames cost in ratio: the same input compressed with several frame sizes.

Frames restart the adaptive statistics (that is what lets them be decoded alone and in
parallel), so every frame start codes its first bytes cold. This prints, per input and
frame size, the archive size and its cost against one frame for the whole input.

    python scripts/frame_cost.py                        # book1+book2+news, and a 20 MB tree
    python scripts/frame_cost.py --frames 1M,4M,16M FILE...
    python scripts/frame_cost.py --shared FILE...       # what each input's halves share
    python scripts/frame_cost.py --plan FILE...         # the frames of a longer input

``--shared`` prints, instead, the share of the second half's anchored strings that occur
in the first (``repeats.shared``), which decides whether the encoder cuts an input of 8
to 32 MiB into two frames (``levels.SPLIT_SHARED``). ``--plan`` prints the frames the
encoder makes of an input longer than two default frames, where one takes several default
frames' worth if a later one repeats an earlier one (``levels.merged_frame``), and how
long planning them took; no frame is coded. With ``--xz`` it also prints, for each frame
that took several, how much more LZMA2 (xz's preset 6 with a 64 MiB dictionary, a quick
stand-in for the mixed method's match model) writes for its bytes in default frames than
whole: what keeping them together is worth.

The default 20 MB input is the ``.py`` files of this Python's standard library, joined in
sorted path order (source code of a kind the model was not trained on in bulk, and the
size of a project tarball).
"""

from __future__ import annotations

import argparse
import io
import lzma
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from own_texts import stdlib_sources  # noqa: E402

from nncompress import levels, repeats  # noqa: E402
from nncompress.engine import compress_stream  # noqa: E402
from nncompress.zoo import load_model  # noqa: E402

CALGARY = ROOT.parent / "shared" / "corpus" / "calgary"


def lzma_cut(data: bytes, frame: int) -> tuple[int, int]:
    """LZMA2 (preset 6, a 64 MiB dictionary) on ``data`` whole, and in pieces of
    ``frame`` bytes: its sizes each way."""
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 6, "dict_size": 64 << 20}]

    def packed(d: bytes) -> int:
        return len(lzma.compress(d, format=lzma.FORMAT_RAW, filters=filters))

    return packed(data), sum(packed(data[i : i + frame]) for i in range(0, len(data), frame))


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
    ap.add_argument("--plan", action="store_true", help="print the frames of longer inputs")
    ap.add_argument("--xz", action="store_true", help="with --plan: LZMA2 on merged frames")
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
    if args.plan:
        print("| input | bytes | frames (MiB) | seconds |")
        print("|---|---:|---|---:|")
        for name, data in inputs:
            t, frames, rest = time.perf_counter(), [], memoryview(data)
            if len(data) > 2 * levels.DEFAULT_FRAME:
                while len(rest) > levels.DEFAULT_FRAME:
                    n = levels.merged_frame(rest, levels.DEFAULT_FRAME)
                    if n >= len(rest):
                        break
                    frames.append(n)
                    rest = rest[n:]
            frames.append(len(rest))
            mib = " + ".join(f"{n / (1 << 20):.1f}" for n in frames)
            print(f"| {name} | {len(data):,} | {mib} | {time.perf_counter() - t:.2f} |")
            start = 0
            for n in frames:
                if args.xz and n > levels.DEFAULT_FRAME:
                    whole, cut = lzma_cut(data[start : start + n], levels.DEFAULT_FRAME)
                    print(
                        f"|   at {start / (1 << 20):.0f} MiB | {n:,} | LZMA2 whole {whole:,},"
                        f" in default frames {cut:,} ({100 * (cut - whole) / whole:+.1f}%) | |",
                        flush=True,
                    )
                start += n
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
