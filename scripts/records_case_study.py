#!/usr/bin/env python3
"""The case for ``nncompress train``: small records compressed one file at a time.

Cuts a log file into records of a few lines each (one file per record), holds out the
records at its end, trains a model on the others (``nncompress train``, a time budget) and
a zstd dictionary on the same files (``zstd --train``), then compresses every held-out
record on its own with each codec, checks each round trip and prints a Markdown table of
total sizes. Every size is a whole output file, headers included, as a user would store it.

    python scripts/records_case_study.py                       # apache logs, 10 minutes
    python scripts/records_case_study.py --source FILE --lines 4 --time 2m

The default source is ../shared/corpus/train/logs/apache_logs.log. The default model was
trained on all but the last 2% of each training file; the default held-out span (the last
180 lines) lies inside that tail, so no model here has seen it (the script checks).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import machine  # noqa: E402  (scripts/ is on sys.path)

from nncompress.api import compress_bytes, decompress_bytes  # noqa: E402
from nncompress.zoo import load_model  # noqa: E402

DEFAULT_SOURCE = ROOT.parent / "shared" / "corpus" / "train" / "logs" / "apache_logs.log"


def make_records(source: Path, lines: int, holdout: int, workdir: Path) -> tuple[Path, Path, int]:
    """Write ``workdir/train/*`` and ``workdir/test/*``: one record of ``lines`` lines per
    file; the last ``holdout`` lines of the source make the test records. Also returns the
    length in bytes of those last lines."""
    rows = source.read_bytes().splitlines(keepends=True)
    cut = len(rows) - holdout
    dirs = (workdir / "train", workdir / "test")
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    for lo, hi, d in ((0, cut, dirs[0]), (cut, len(rows), dirs[1])):
        for i in range(lo, hi - lines + 1, lines):
            (d / f"{i // lines:06d}.rec").write_bytes(b"".join(rows[i : i + lines]))
    return dirs[0], dirs[1], sum(len(r) for r in rows[cut:])


def run(cmd: list[str], data: bytes | None = None) -> bytes:
    return subprocess.run(cmd, input=data, capture_output=True, check=True).stdout


def external(name: str, comp: list[str], decomp: list[str]):
    def codec(data: bytes) -> tuple[bytes, bytes]:
        blob = run(comp, data)
        return blob, run(decomp, blob)

    return name, codec


def in_process(name: str, model, level: str = "default"):
    def codec(data: bytes) -> tuple[bytes, bytes]:
        blob = compress_bytes(data, model, level=level)
        return blob, decompress_bytes(blob, model)

    return name, codec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--lines", type=int, default=6, help="lines per record")
    ap.add_argument("--holdout", type=int, default=180, help="held-out lines at the end")
    ap.add_argument("--time", default="10m", help="training budget for nncompress train")
    ap.add_argument(
        "--segment",
        type=int,
        default=256,
        help="training segment length (records code in segments of 256-511 bytes)",
    )
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "records")
    ap.add_argument("--skip-train", action="store_true", help="reuse WORKDIR/records.nnm")
    ap.add_argument("--prime", default="256K", help="nncompress train --prime (0: none)")
    args = ap.parse_args()
    if not args.source.is_file():
        sys.exit(f"{args.source}: not found (see --source)")
    for tool in ("zstd", "xz"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is required")

    train_dir, test_dir, tail = make_records(args.source, args.lines, args.holdout, args.workdir)
    train_files = sorted(train_dir.iterdir())
    test_files = sorted(test_dir.iterdir())
    dictionary = args.workdir / "zstd.dict"
    t0 = time.monotonic()
    run(["zstd", "-q", "-f", "--train", *map(str, train_files), "-o", str(dictionary)])
    dict_seconds = time.monotonic() - t0

    model_path = args.workdir / "records.nnm"
    trained = "reused (--skip-train)"
    if not args.skip_train:
        t0 = time.monotonic()
        cmd = [sys.executable, "-m", "nncompress", "train", str(train_dir), "-o", str(model_path)]
        cmd += [
            "-f",
            "-q",
            "--time",
            args.time,
            "--segment",
            str(args.segment),
            "--name",
            "records",
            "--prime",
            args.prime,
        ]
        subprocess.run(cmd, check=True)
        trained = f"{time.monotonic() - t0:.0f} s"
    # The shipped network with a prime of the training records: no training at all.
    primed_path = args.workdir / "default-primed.nnm"
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "nncompress", "train", str(train_dir), "-o", str(primed_path)]
    cmd += ["-f", "-q", "--base", "default", "--prime", args.prime, "--name", "default-primed"]
    subprocess.run(cmd, check=True)
    prime_seconds = time.monotonic() - t0

    codecs = [
        external("xz -9e", ["xz", "-9e", "-c"], ["xz", "-dc"]),
        external("zstd -19", ["zstd", "-19", "-q", "-c"], ["zstd", "-dqc"]),
        external(
            "zstd -19 + dictionary",
            ["zstd", "-19", "-q", "-c", "-D", str(dictionary)],
            ["zstd", "-dqc", "-D", str(dictionary)],
        ),
        in_process("nncompress, default model", load_model()),
        in_process("nncompress, default model + prime", load_model(str(primed_path))),
        in_process("nncompress, trained model", load_model(str(model_path))),
        in_process("nncompress --max, trained model", load_model(str(model_path)), "max"),
    ]
    raw = sum(f.stat().st_size for f in test_files)
    # nncompress.train.split_data holds out the last int(len * 0.02) bytes of each file.
    unseen = tail <= int(args.source.stat().st_size * 0.02)
    totals: dict[str, int] = {}
    for name, codec in codecs:
        total = 0
        for f in test_files:
            data = f.read_bytes()
            blob, back = codec(data)
            if back != data:
                sys.exit(f"{name}: round trip of {f} failed")
            total += len(blob)
        totals[name] = total

    ref = totals["zstd -19 + dictionary"]
    sizes = [f.stat().st_size for f in test_files]
    print(f"Machine: {machine()}")
    print(
        f"Source: {args.source.name}; {len(train_files)} training records, {len(test_files)} "
        f"held-out records of {args.lines} lines ({min(sizes)}-{max(sizes)} bytes, "
        f"{raw:,} in all); inside the default model's held-out tail: "
        f"{'yes' if unseen else 'NO'}."
    )
    print(
        f"zstd --train: {dict_seconds:.1f} s, dictionary {dictionary.stat().st_size:,} bytes; "
        f"nncompress train: {trained}, model {model_path.stat().st_size:,} bytes; "
        f"nncompress train --base default: {prime_seconds:.1f} s (prime {args.prime})."
    )
    print()
    print("| codec | bytes | bytes per record | bits per byte | vs zstd -19 + dictionary |")
    print("|---|---:|---:|---:|---:|")
    for name, total in totals.items():
        print(
            f"| {name} | {total:,} | {total / len(test_files):.0f} | {8 * total / raw:.3f} "
            f"| {total / ref:.2f}x |"
        )
    command_line_costs(test_files[len(test_files) // 2], dictionary, primed_path)


def command_line_costs(record: Path, dictionary: Path, primed: Path) -> None:
    """Seconds and peak resident memory of one record through each command line, as a
    user who calls it once per file pays them (program start included; best of two):
    a primed model learns its prime at the start of every call."""
    from memory import peak  # scripts/memory.py

    nnc = [sys.executable, "-m", "nncompress"]
    rows = [
        (
            "zstd -19 + dictionary",
            ["zstd", "-19", "-q", "-c", "-D", str(dictionary)],
            ["zstd", "-dqc", "-D", str(dictionary)],
        ),
        ("nncompress, default model", [*nnc, "-c"], [*nnc, "-dc"]),
        (
            "nncompress, default model + prime",
            [*nnc, "-c", "-m", str(primed)],
            [*nnc, "-dc", "-m", str(primed)],
        ),
    ]
    print()
    print(f"One record ({record.stat().st_size} bytes) per command, program start included:")
    print()
    print("| codec | compress | decompress | peak memory |")
    print("|---|---:|---:|---:|")
    tmp = record.parent.parent / "cli"
    tmp.mkdir(exist_ok=True)
    for name, comp, decomp in rows:
        packed, back = tmp / "packed", tmp / "back"
        c = min(peak(comp, record, packed) for _ in range(2))
        d = min(peak(decomp, packed, back) for _ in range(2))
        if back.read_bytes() != record.read_bytes():
            sys.exit(f"{name}: command-line round trip failed")
        print(f"| {name} | {c[0]:.2f} s | {d[0]:.2f} s | {max(c[1], d[1]) / 2**20:.0f} MiB |")


if __name__ == "__main__":
    main()
