#!/usr/bin/env python3
"""What the context tables' size buys: each input coded with the configuration the default
level takes for it, at several table sizes, and the memory that took.

A stream's context tables hold 2^``table_bits`` slots per context (``Config.table_bits``,
21 at every level but ``--wide``; ``adaptive.table_bits`` caps it by the block size), and
the header records the size, so any size up to ``config.MAX_TABLE_BITS`` decodes. Every
byte touches eight slots per context, so a stream longer than a block or two fills them,
and what the later blocks could learn from the earlier ones is lost where slots are
claimed again. This prints, per input and size: the archive's bytes, each block's coded
bytes, the seconds the compression took, the process's peak resident memory (each size
in a process of its own), and whether the archive decoded to the input.

    python scripts/table_size.py FILE...                  # sizes 21, 22 and 23
    python scripts/table_size.py --bits 21,22 FILE...
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(path: str, bits: int) -> dict:
    """``path`` coded at table size ``bits``, in this process."""
    from nncompress import config as cfgmod
    from nncompress import engine, levels
    from nncompress.zoo import load_model

    data = Path(path).read_bytes()
    model = load_model()
    # The configuration the default level takes for a stream of several blocks, as it
    # settles it at the end of the input.
    encoder = engine.StreamEncoder(model)
    size = encoder.block_size
    encoder._settle_from([data[i : i + size] for i in range(0, len(data), size)], len(data))
    base = encoder.config
    match = max(base.match_bits, min(cfgmod.MAX_TABLE_BITS, bits + 1))
    config = replace(base, table_bits=bits, match_bits=match)
    out = io.BytesIO()
    start = time.perf_counter()
    if encoder.long_text:
        # A long text (levels.Level.long_text): the level's own way, in this configuration.
        with levels.changed("default", long_config=config):
            engine.compress_stream(io.BytesIO(data), out, model)
    else:
        engine.compress_stream(io.BytesIO(data), out, model, config=config)
    seconds = time.perf_counter() - start
    archive = out.getvalue()
    back = io.BytesIO()
    engine.decompress_stream(io.BytesIO(archive), back, lambda header: model)
    info = engine.list_stream(io.BytesIO(archive))
    return {
        "file": Path(path).name,
        "bits": bits,
        "contexts": len(config.contexts),
        "bytes": len(archive),
        "blocks": [b.coded_len for b in info.blocks],
        "seconds": round(seconds, 1),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "decoded": back.getvalue() == data,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--bits", default="21,22,23", help="table sizes (log2 slots per context)")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # (a child's run)
    args = ap.parse_args()
    bits = [int(b) for b in args.bits.split(",")]
    if args.one:
        print(json.dumps(one(args.files[0], bits[0])))
        return
    print("file bits contexts bytes seconds peak_MiB decoded blocks")
    for path in args.files:
        for b in bits:
            cmd = [sys.executable, __file__, "--one", "--bits", str(b), path]
            r = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
            print(
                r["file"], r["bits"], r["contexts"], f"{r['bytes']:,}", r["seconds"],
                r["peak_mib"], r["decoded"], r["blocks"], flush=True,
            )  # fmt: skip


if __name__ == "__main__":
    main()
