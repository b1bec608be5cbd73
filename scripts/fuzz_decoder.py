#!/usr/bin/env python3
"""Fuzz target for the ``.nnc`` decoder: whatever bytes it is given, ``decompress_stream`` may
only succeed or raise ``FormatError``/``ModelError`` (DESIGN.md section 6). Any other
exception is a crash a user would see as a traceback, and this harness reports it.

Two engines:

* atheris (libFuzzer, coverage guided), when it is importable::

      python scripts/fuzz_decoder.py [libFuzzer flags, e.g. -runs=100000 -max_len=4096]

* otherwise (or with ``--plain``) a seeded random-mutation loop::

      python scripts/fuzz_decoder.py --plain --iterations 20000 --seed 1

Random bytes almost never get past the CRC32 that guards every header, so the mutator is
structure-aware: besides bit flips, overwrites, insertions, deletions, truncations and
splices of valid archives, it sets header fields to boundary values and then recomputes the
checksums (``fix_crcs``), so the input reaches the field validation and the payload decoders
(stored, LZMA, and the range decoder with the model).

``fix_crcs`` also clamps the block size a header declares to ``MAX_FUZZ_BLOCK``: a model
block's decoding time is proportional to the raw length it claims (one model step per byte
per segment), whatever the size of its payload, and a fuzzer that asks for 2**28-byte blocks
would spend hours on a single input. The clamp keeps every input to a few milliseconds.

The test suite runs the same functions for a bounded number of examples
(``tests/test_format.py``); the model is a tiny random-weight GRU, built here with numpy.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import struct
import sys
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nncompress import format as fmt
from nncompress.engine import compress_stream, decompress_stream, list_stream
from nncompress.model import IntModel, ModelError, export_gru

ALLOWED = (fmt.FormatError, ModelError)
#: The largest block size a fixed-up header may declare (see the module docstring).
MAX_FUZZ_BLOCK = 512
_U32 = struct.Struct("<I")


# ----------------------------------------------------------------------------- model, seeds
def build_model(hidden: int = 16, layers: int = 1, seed: int = 0) -> IntModel:
    """A small random-weight integer model whose output favours lowercase text."""
    from safetensors.numpy import save

    rng = np.random.default_rng(seed)
    h = hidden
    head_b = np.full(256, -8.0)
    head_b[np.frombuffer(b" etaoinshrdlu", dtype=np.uint8)] = 0.0
    tensors, meta = export_gru(
        rng.normal(0, 1, (256, h)),
        [rng.normal(0, 0.5, (3 * h, h)) for _ in range(layers)],
        [rng.normal(0, 0.5, (3 * h, h)) for _ in range(layers)],
        [rng.normal(0, 0.2, 3 * h) for _ in range(layers)],
        [rng.normal(0, 0.2, 3 * h) for _ in range(layers)],
        rng.normal(0, 0.1, (256, h)),
        head_b,
        {"name": "fuzz"},
    )
    raw = save(dict(sorted(tensors.items())), metadata=meta)
    return IntModel.from_tensors(tensors, meta, sha256=hashlib.sha256(raw).hexdigest())


def seed_archives(model: IntModel) -> list[bytes]:
    """Valid archives covering every block method, empty streams and concatenation."""
    rng = np.random.default_rng(1)
    text = bytes(rng.choice(list(b" etaoinshrdlu"), 300).astype(np.uint8))
    noise = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()

    def make(data: bytes, block: int, level: str = "default") -> bytes:
        out = io.BytesIO()
        compress_stream(io.BytesIO(data), out, model, block, level)
        return out.getvalue()

    seeds = [
        make(b"", 64),
        make(b"x", 64),
        make(text[:100], 128, "fast"),
        make(text + bytes(100) + noise, 100),
        make(bytes(300), 256),
        make(noise * 2, 400),  # noise, then the same noise again: LZMA2 wins
        make(noise, 64),
    ]
    seeds.append(seeds[2] + seeds[5])
    return seeds


# ----------------------------------------------------------------------------- mutation
def fix_crcs(blob: bytes, max_block: int = MAX_FUZZ_BLOCK) -> bytes:
    """Walk ``blob`` as an archive and rewrite every checksum field so that it matches its
    record; clamp each header's block size to ``max_block``. Never raises."""
    b = bytearray(blob)
    pos = 0
    while b[pos : pos + 4] == fmt.MAGIC and pos + 11 <= len(b):
        (block_size,) = _U32.unpack_from(b, pos + 6)
        if not 0 < block_size <= max_block:
            _U32.pack_into(b, pos + 6, block_size % max_block + 1)
        end = pos + 11 + b[pos + 10] + 32
        if end + 4 > len(b):
            break
        _U32.pack_into(b, end, zlib.crc32(b[pos:end]))
        pos = end + 4
        while pos < len(b):
            if b[pos] == fmt.METHOD_END:
                if pos + fmt.END_SIZE <= len(b):
                    _U32.pack_into(b, pos + 13, zlib.crc32(b[pos : pos + 13]))
                pos += fmt.END_SIZE
                break
            if pos + fmt.BLOCK_OVERHEAD > len(b):
                return bytes(b)
            _U32.pack_into(b, pos + 17, zlib.crc32(b[pos : pos + 17]))
            (coded_len,) = _U32.unpack_from(b, pos + 5)
            pos += fmt.BLOCK_OVERHEAD + coded_len
    return bytes(b)


def _record_starts(blob: bytes) -> list[tuple[str, int]]:
    """(kind, offset) of the records of a well-formed prefix of ``blob``."""
    out: list[tuple[str, int]] = []
    pos = 0
    while blob[pos : pos + 4] == fmt.MAGIC and pos + 11 <= len(blob):
        out.append(("header", pos))
        pos += 11 + blob[pos + 10] + 32 + 4
        while pos < len(blob):
            if blob[pos] == fmt.METHOD_END:
                out.append(("end", pos))
                pos += fmt.END_SIZE
                break
            if pos + fmt.BLOCK_OVERHEAD > len(blob):
                return out
            out.append(("block", pos))
            pos += fmt.BLOCK_OVERHEAD + _U32.unpack_from(blob, pos + 5)[0]
    return out


_INTERESTING = [
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    63,
    64,
    65,
    127,
    128,
    255,
    256,
    511,
    512,
    4096,
    65535,
    65536,
    65537,
    2**24,
    2**28,
    2**31 - 1,
    2**31,
    2**32 - 1,
]
# Offsets of the u32 fields in a block header: raw_len, coded_len, segments, raw_crc.
_BLOCK_FIELDS = (1, 5, 9, 13)


def _set_field(b: bytearray, rng: random.Random) -> None:
    records = _record_starts(bytes(b))
    if not records:
        return
    kind, pos = rng.choice(records)
    if kind == "header":
        choice = rng.randrange(4)
        if choice == 0 and pos + 10 <= len(b):
            _U32.pack_into(b, pos + 6, rng.choice(_INTERESTING) & 0xFFFFFFFF)
        elif choice == 1 and pos + 5 < len(b):
            b[pos + 4 + rng.randrange(2)] = rng.randrange(256)  # version / flags
        elif choice == 2 and pos + 10 < len(b):
            b[pos + 10] = rng.randrange(256)  # name length
        elif pos + 44 < len(b):
            b[pos + 11 + rng.randrange(33)] ^= 1 << rng.randrange(8)  # name / hash
    elif kind == "block" and pos + 17 <= len(b):
        if rng.random() < 0.25:
            b[pos] = rng.choice([0, 1, 2, 3, 0x80, 0xFE, 0xFF])
        else:
            off = rng.choice(_BLOCK_FIELDS)
            _U32.pack_into(b, pos + off, rng.choice(_INTERESTING))
    elif kind == "end" and pos + 13 <= len(b):
        if rng.random() < 0.5:
            struct.pack_into("<Q", b, pos + 1, rng.choice(_INTERESTING))
        else:
            _U32.pack_into(b, pos + 9, rng.getrandbits(32))


def mutate(blob: bytes, rng: random.Random, seeds: list[bytes], max_len: int = 8192) -> bytes:
    """One to four random edits of ``blob``; with probability 3/4 checksums are then fixed."""
    b = bytearray(blob)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        n = len(b)
        if op == 0 and n:  # bit flip
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # overwrite a span
            i = rng.randrange(n)
            b[i : i + rng.randint(1, 8)] = rng.randbytes(rng.randint(1, 8))
        elif op == 2:  # insert
            i = rng.randint(0, n)
            b[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 3 and n:  # delete
            i = rng.randrange(n)
            del b[i : i + rng.randint(1, 16)]
        elif op == 4 and n:  # truncate
            del b[rng.randrange(n) :]
        elif op == 5:  # splice with another seed
            other = rng.choice(seeds)
            i, j = rng.randint(0, n), rng.randint(0, len(other))
            b = b[:i] + bytearray(other[j:])
        elif op == 6:  # duplicate a span (repeated blocks, concatenated streams)
            if n:
                i = rng.randrange(n)
                j = rng.randint(i, min(n, i + 64))
                b[j:j] = b[i:j]
        else:
            _set_field(b, rng)
    out = bytes(b[:max_len])
    return fix_crcs(out) if rng.random() < 0.75 else out


# ----------------------------------------------------------------------------- the target
def lookup_for(model: IntModel) -> Callable[[fmt.Header], IntModel]:
    def get(header: fmt.Header) -> IntModel:
        if header.model_sha256 != model.sha256:
            raise ModelError(f"archive needs model {header.model_name}, which is not installed")
        return model

    return get


def check_one(blob: bytes, model: IntModel) -> str:
    """Decode (and list) ``blob``. Returns the outcome's name; any exception other than
    FormatError/ModelError propagates -- that is the bug this harness looks for."""
    try:
        list_stream(io.BytesIO(blob))
    except fmt.FormatError:
        pass
    try:
        decompress_stream(io.BytesIO(blob), io.BytesIO(), lookup_for(model))
    except ALLOWED as e:
        return type(e).__name__
    return "ok"


def run_plain(iterations: int, seed: int, crash_dir: Path, hidden: int) -> int:
    model = build_model(hidden)
    seeds = seed_archives(model)
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    slowest = (0.0, b"")
    start = time.monotonic()
    for i in range(iterations):
        blob = mutate(rng.choice(seeds), rng, seeds)
        t0 = time.monotonic()
        try:
            outcomes[check_one(blob, model)] += 1
        except Exception:
            crash_dir.mkdir(parents=True, exist_ok=True)
            path = crash_dir / f"crash-{hashlib.sha256(blob).hexdigest()[:16]}.nnc"
            path.write_bytes(blob)
            traceback.print_exc()
            print(f"iteration {i}: unexpected exception; input saved to {path}", file=sys.stderr)
            return 1
        dt = time.monotonic() - t0
        if dt > slowest[0]:
            slowest = (dt, blob)
    elapsed = time.monotonic() - start
    summary = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    print(
        f"{iterations} inputs in {elapsed:.1f}s ({summary}); slowest input "
        f"{slowest[0] * 1e3:.1f} ms, {len(slowest[1])} bytes; no unexpected exception"
    )
    return 0


def run_atheris(argv: list[str], hidden: int) -> None:
    import atheris

    model = build_model(hidden)
    seeds = seed_archives(model)

    def test_one_input(data: bytes) -> None:
        check_one(data, model)
        check_one(fix_crcs(data), model)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if not data or rng.random() < 0.2:
            data = rng.choice(seeds)
        if rng.random() < 0.5:
            return mutate(data, rng, seeds, max_size)
        return atheris.Mutate(data, max_size)

    atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--plain",
        action="store_true",
        help="use the random-mutation loop even if atheris is importable",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=10000,
        help="inputs to try in the plain loop (default 10000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the plain loop")
    parser.add_argument(
        "--crash-dir",
        type=Path,
        default=Path("fuzz-crashes"),
        help="where the plain loop saves a crashing input",
    )
    parser.add_argument("--hidden", type=int, default=16, help="width of the test model")
    args, rest = parser.parse_known_args(argv[1:])
    try:
        import atheris  # noqa: F401
    except ImportError:
        have_atheris = False
    else:
        have_atheris = True
    if have_atheris and not args.plain:
        run_atheris([argv[0], *rest], args.hidden)
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)} (libFuzzer flags need atheris)")
    return run_plain(args.iterations, args.seed, args.crash_dir, args.hidden)


if __name__ == "__main__":
    sys.exit(main())
