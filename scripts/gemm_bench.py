#!/usr/bin/env python3
"""The network's matrix products three ways, for the next speed step: numpy's float32 GEMM
(what the CPU coder runs today: int8 values on float32 carriers, exact because every
partial sum stays below 2**24), torch's bfloat16 GEMM, and torch's int8 GEMM with int32
accumulation (``torch._int_mm``), on the shapes of one lockstep step.

For each it checks that the result is the exact integer product, on random int8 values
and on the worst case (every value +-127, where a kernel that sums pairs of u8 x s8
products in 16 bits, as AVX2's vpmaddubsw does, would saturate), and prints microseconds
per product and the bytes per second the products alone would allow (one step's product
serves one byte per segment).

    OPENBLAS_NUM_THREADS=1 python scripts/gemm_bench.py [--rows 376 1024] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

K = 256  # the hidden size of the shipped model
OUTPUTS = (768, 256)  # the recurrent product (three gates) and the head


def timed(fn, n: int = 50) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def cases(rows: int, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(rows * n)
    rand = (rng.integers(-127, 128, (rows, K)), rng.integers(-127, 128, (K, n)))
    top = (np.full((rows, K), 127), np.full((K, n), 127))
    mixed = (np.full((rows, K), -127), np.full((K, n), 127))
    return [(a.astype(np.int8), b.astype(np.int8)) for a, b in (rand, top, mixed)]


def measure(rows: int, n: int, torch) -> None:
    """Time and check each way of computing one [rows, K] x [K, n] product."""
    pairs = cases(rows, n)
    exact = [a.astype(np.int64) @ b.astype(np.int64) for a, b in pairs]
    a, b = pairs[0]
    af, bf = a.astype(np.float32), b.astype(np.float32)
    # name: (the product of any int8 pair, a timed call on prepared operands)
    ways = {
        "numpy float32": (lambda x, y: x.astype(np.float32) @ y.astype(np.float32), lambda: af @ bf)
    }
    if torch is not None:
        ab, bb = torch.from_numpy(af).bfloat16(), torch.from_numpy(bf).bfloat16()
        at, bt = torch.from_numpy(a), torch.from_numpy(b)
        ways["torch bfloat16"] = (
            lambda x, y: (
                (torch.from_numpy(x).bfloat16() @ torch.from_numpy(y).bfloat16()).float().numpy()
            ),
            lambda: ab @ bb,
        )
        ways["torch int8 (_int_mm)"] = (
            lambda x, y: torch._int_mm(torch.from_numpy(x), torch.from_numpy(y)).numpy(),
            lambda: torch._int_mm(at, bt),
        )
    for name, (product, call) in ways.items():
        ok = all(np.array_equal(product(x, y), e) for (x, y), e in zip(pairs, exact, strict=True))
        sec = timed(call)
        print(
            f"rows {rows:5} x {K} x {n:4}: {name:22} {sec * 1e6:8.0f} us "
            f"({2 * rows * K * n / sec / 1e9:6.1f} GOP/s, {rows / sec / 1e3:7.1f} K "
            f"steps' bytes/s)  exact: {'yes' if ok else 'NO'}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[376, 1024])
    ap.add_argument("--threads", type=int, default=1, help="torch's intra-op threads")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("torch is not installed: only numpy's float32 product can be measured")
        torch = None
    else:
        torch.set_num_threads(args.threads)
    for rows in args.rows:
        for n in OUTPUTS:
            measure(rows, n, torch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
