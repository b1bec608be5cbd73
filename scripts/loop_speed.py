#!/usr/bin/env python3
"""How fast the adaptive layer's compiled loops code, in CPU seconds: the number to watch
when changing them (``adaptive.py``, ``contexts.py``, ``jit.py``).

Codes samples of four kinds as the default level's blocks without the network are coded,
in one segment (``adaptive._code_steps``: x86 code, long runs, repetitive text and
random bytes all end up there), and text at a few segment counts with the network, as the
default level codes prose (``adaptive._code_byte`` once per step). Each is encoded and
decoded (checked) ``--reps`` times in fresh statistics and the best CPU time kept (this
machine is shared and noisy; CPU time, unlike the wall clock, does not count the time the
process waits for a core). ``xz -9e`` (Python's ``lzma``) codes each sample in the same
process, for a ratio that holds across machines. The payload hashes must not change
where a change to the loops must not change archives.

    python scripts/loop_speed.py [--bytes 131072] [--reps 3] [--segments 16,256]

The samples: bytes from a quarter into numpy's compiled core (x86 code on x86 machines; another
machine's code is binary data without the x86 transform), zeros, this repository's
docs/DESIGN.md repeated, and bytes from a fixed generator.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402
from bench import machine  # noqa: E402

from nncompress import filters, levels, records  # noqa: E402
from nncompress.adaptive import StreamState  # noqa: E402
from nncompress.coder import decode_block_mixed, encode_block_mixed  # noqa: E402
from nncompress.config import Config, like_level  # noqa: E402
from nncompress.engine import LZMA_PRESET  # noqa: E402
from nncompress.model import IntModel  # noqa: E402
from nncompress.zoo import load_model  # noqa: E402


def samples(n: int) -> dict[str, bytes]:
    """``n`` bytes of each kind."""
    core = Path(np.__file__).parent / "_core"
    code = max(core.glob("_multiarray_umath*"), key=lambda p: p.stat().st_size).read_bytes()
    text = (ROOT / "docs" / "DESIGN.md").read_bytes()
    rand = np.random.default_rng(1).integers(0, 256, n, dtype=np.uint8).tobytes()
    return {
        "code": code[len(code) // 4 :][:n],
        "zeros": bytes(n),
        "text": (text * (n // len(text) + 1))[:n],
        "random": rand,
    }


def best(reps: int, fn: Callable[[Any], object], setup: Callable[[], Any] = lambda: None) -> float:
    """The least CPU time of ``reps`` calls of ``fn``, each on a fresh ``setup()`` made
    before its clock starts."""
    times = []
    for _ in range(reps):
        arg = setup()
        t = time.process_time()
        fn(arg)
        times.append(time.process_time() - t)
    return min(times)


def code(
    model: IntModel, data: bytes, config: Config, segments: int, flat: bool, reps: int
) -> tuple[bytes, float, float]:
    """The payload of ``data`` in ``segments`` segments (``flat``: without the network),
    and the best encode and decode CPU seconds."""
    out: dict[str, bytes] = {}

    def fresh() -> StreamState:
        state = StreamState(config, block_size=1 << 20)
        state.ensure_tables()
        for table in vars(state).values():  # touched, so that no page is first met timed
            if isinstance(table, np.ndarray) and table.size:
                raw = table.reshape(-1).view(np.uint8)
                raw[::4096] = raw[::4096]
        return state

    def enc(state: StreamState) -> None:
        out["payload"] = encode_block_mixed(model, data, state, None, segments, False, 0, flat)[0]

    def dec(state: StreamState) -> None:
        payload, n = out["payload"], len(data)
        if decode_block_mixed(model, payload, n, segments, state, None, False, 0, flat) != data:
            raise SystemExit("round trip failed")

    t_enc = best(reps, enc, fresh)
    return out["payload"], t_enc, best(reps, dec, fresh)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bytes", type=int, default=1 << 17, help="sample length")
    ap.add_argument("--reps", type=int, default=3, help="codings of each, the best kept")
    ap.add_argument("--segments", default="16,256", help="segment counts for text with the network")
    args = ap.parse_args()
    model = load_model(None)
    level = levels.LEVELS["default"]
    print(f"Machine: {machine()}\n")
    print(
        "| sample | segments | network | payload | sha256 | encode KB/s | decode KB/s "
        "| xz -9e KB/s | encode / xz |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    n = args.bytes
    kinds = samples(n)
    runs = [(name, data, 1, True) for name, data in kinds.items()]
    runs += [("text", kinds["text"], int(s), False) for s in args.segments.split(",") if s]
    for name, data, segments, flat in runs:
        config = level.config
        if flat:  # the stream's preset as the encoder would choose it (binary ones)
            config = records.config_for(level.config, data)
            if config.mixers:
                config = like_level(config, level.config, level.binary_slots)
            if filters.looks_like_x86(data):
                data = filters.x86_encode(data)
        payload, t_enc, t_dec = code(model, data, config, segments, flat, args.reps)
        t_xz = best(args.reps, lambda _, d=data: lzma.compress(d, preset=LZMA_PRESET))
        digest = hashlib.sha256(payload).hexdigest()[:12]
        print(
            f"| {name} | {segments} | {'no' if flat else 'yes'} | {len(payload):,} | {digest} "
            f"| {n / t_enc / 1e3:,.1f} | {n / t_dec / 1e3:,.1f} | {n / t_xz / 1e3:,.0f} "
            f"| {t_xz / t_enc:.4f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
