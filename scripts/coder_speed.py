#!/usr/bin/env python3
"""How fast the mixed method's range coder codes binary decisions, called as a device's
step would call it: one call per bit position of a step, for that step's S segments
(``rangecoder.code_bits``, the compiled coder ``torchmix`` uses), and constriction's coder
called the same way from Python, beside it. Each way, encoding and decoding, with the
decisions per second and the bytes per second they allow (8 decisions a byte): the
ceiling the coder puts on a device that computes the probabilities.

    python scripts/coder_speed.py [--segments 64,1024,4096] [--bits 8388608]

The probabilities are drawn so that a decision costs about 0.3 bits (text at some
2.4 bits a byte), and the bits from them; both coders must write the same words.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench import machine  # noqa: E402

from nncompress import rangecoder  # noqa: E402
from nncompress.jit import direct  # noqa: E402


def decisions(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``n`` probabilities of 1 (of 65536) and bits drawn from them."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(0, 4, n)
    p = np.clip(np.rint(65536 / (1 + np.exp(-logit))), 1, 65535).astype(np.int64)
    bits = (rng.random(n) * 65536 < p).astype(np.int64)
    return bits, p


def ours(bits: np.ndarray, p: np.ndarray, s: int) -> tuple[bytes, float, float]:
    """Our coder in calls of ``s`` decisions: the payload, encode and decode seconds.
    Called as ``torchmix`` calls it: the compiled function found once (``jit.direct``),
    on arrays made before (a step's rows of bits and probabilities)."""
    calls = range(0, len(bits), s)
    bit_rows, p_rows = [bits[i : i + s] for i in calls], [p[i : i + s] for i in calls]
    enc = rangecoder.BitEncoder()
    enc.reserve(len(bits))
    encode = direct(rangecoder.code_bits, bits[:s], p[:s], False, enc.state, enc.out)
    t = time.perf_counter()
    for b, q in zip(bit_rows, p_rows, strict=True):
        encode(b, q, False, enc.state, enc.out)
    payload = enc.payload()
    t_enc = time.perf_counter() - t
    dec = rangecoder.BitDecoder(payload)
    out = np.zeros(len(bits), dtype=np.int64)
    out_rows = [out[i : i + s] for i in calls]
    decode = direct(rangecoder.code_bits, out[:s], p[:s], True, dec.state, dec.words)
    t = time.perf_counter()
    for b, q in zip(out_rows, p_rows, strict=True):
        if decode(b, q, True, dec.state, dec.words):
            raise SystemExit("our decoder refused its own words")
    t_dec = time.perf_counter() - t
    if not np.array_equal(out, bits):
        raise SystemExit("our decoder gave other bits")
    return payload, t_enc, t_dec


def theirs(bits: np.ndarray, p: np.ndarray, s: int) -> tuple[bytes, float, float]:
    """constriction's coder, called the same way."""
    import constriction

    family = constriction.stream.model.Categorical(perfect=False)
    probs = np.stack([65536 - p, p], axis=1).astype(np.float32)
    symbols = bits.astype(np.int32)
    enc = constriction.stream.queue.RangeEncoder()
    t = time.perf_counter()
    for i in range(0, len(bits), s):
        enc.encode(symbols[i : i + s], family, probs[i : i + s])
    words = enc.get_compressed()
    t_enc = time.perf_counter() - t
    dec = constriction.stream.queue.RangeDecoder(words)
    parts = []
    t = time.perf_counter()
    for i in range(0, len(bits), s):
        parts.append(dec.decode(family, probs[i : i + s]))
    t_dec = time.perf_counter() - t
    if not np.array_equal(np.concatenate(parts), symbols):
        raise SystemExit("constriction's decoder gave other bits")
    return words.astype("<u4").tobytes(), t_enc, t_dec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--segments", default="64,1024,4096", help="decisions per call")
    ap.add_argument("--bits", type=int, default=1 << 23, help="decisions in all")
    args = ap.parse_args()
    bits, p = decisions(args.bits)
    ours(bits[:4096], p[:4096], 64)  # compile, or load the compiled module
    print(machine())
    cost = -np.mean(np.where(bits == 1, np.log2(p / 65536), np.log2(1 - p / 65536)))
    print(f"{args.bits:,} decisions, {cost:.3f} bits each\n")
    print("| coder | per call | encode M/s | decode M/s | encode MB/s | decode MB/s | payload |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s in [int(x) for x in args.segments.split(",")]:
        payloads = []
        for name, fn in (("rangecoder", ours), ("constriction", theirs)):
            payload, t_enc, t_dec = fn(bits, p, s)
            payloads.append(payload)
            m = args.bits / 1e6
            print(
                f"| {name} | {s:,} | {m / t_enc:.1f} | {m / t_dec:.1f} "
                f"| {m / 8 / t_enc:.2f} | {m / 8 / t_dec:.2f} | {len(payload):,} |",
                flush=True,
            )
        if payloads[0] != payloads[1]:
            print("the two coders wrote different words", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
