"""Compile the per-bit loops ahead of their first use: ``python -m nncompress.warmup``.

numba compiles the adaptive layer's loops the first time they run (some 10 seconds on a
2-core machine) and caches the machine code beside the sources, so without this a
user's first compress of a 1 KB file took that long. The build hook (``hatch_build.py``)
runs this module when the package is installed in place (``pip install -e .``), so the
cost is paid once, by the install; it can also be run by hand after an upgrade of numba,
or with ``NUMBA_CACHE_DIR`` pointing at a cache shared by a fleet of machines.

It codes a few kilobytes through every path that compiles something: the mixed method's
encoder and decoder, with and without the accounting of ``-v``, the network's step (of
each model in ``models/``), and the x86 transform. Then it builds the ahead-of-time module
of those loops (``jit.build``), which lets a process run them without importing numba at
all; where that is not possible (no C compiler), it says so and numba's cache serves.
"""

from __future__ import annotations

import io
import os
import sys
import time

import numpy as np

from . import jit
from .model import IntModel, export_gru


def _two_layers() -> IntModel:
    """A small random model of two layers: the shipped ones have one, and a layer after the
    first runs a loop of its own (``model._rescale``), which models a user trains may use."""
    rng = np.random.default_rng(0)
    h = 16

    def normal(*shape: int) -> np.ndarray:
        return rng.normal(0.0, 0.5, shape)

    tensors, meta = export_gru(
        normal(256, h),
        [normal(3 * h, h) for _ in range(2)],
        [normal(3 * h, h) for _ in range(2)],
        [normal(3 * h) for _ in range(2)],
        [normal(3 * h) for _ in range(2)],
        normal(256, h),
        normal(256),
        {"name": "warm-up"},
    )
    return IntModel.from_tensors(tensors, meta, sha256="0" * 64)


class _ExactInt8:
    """What ``model._Int8Products`` computes (int8 x int8 products summed in int32), by
    numpy, which needs no torch; or, with ``refuse``, what it does for a batch size that
    failed its check (None: the caller takes the float32 product)."""

    def __init__(self, tensors: dict[str, np.ndarray], refuse: bool) -> None:
        self.w = {k[:-2]: v.astype(np.int32).T for k, v in tensors.items() if k.endswith(".w")}
        self.refuse = refuse

    def __call__(self, x: np.ndarray, key: str) -> np.ndarray | None:
        if self.refuse:
            return None
        return np.ascontiguousarray(x.astype(np.int32) @ self.w[key], dtype=np.int32)


def _loops_called_from_python(sample: bytes, segments: int = 4) -> bool:
    """Run the loops that ``torchmix`` calls from Python (``adaptive._byte_begin``,
    ``_byte_end`` and ``rangecoder.code_bits``) through its own step,
    ``torchmix.BitsFromPython``, with every bit at 1/2, encoding then decoding. Without
    torch: an install's build environment has none, and the module built there must
    still hold these loops for ``--device torch`` to run without numba. Returns whether
    the bytes came back."""
    from .adaptive import StreamState
    from .config import TEXT_MIXERS
    from .rangecoder import BitDecoder, BitEncoder
    from .torchmix import BitsFromPython

    class Half(BitsFromPython):
        def _predict_bits(self, j: int, c0: np.ndarray) -> np.ndarray:
            return np.full(len(c0), 1 << 15, dtype=np.int64)

    steps = len(sample) // segments
    grid = np.frombuffer(sample[: steps * segments], dtype=np.uint8).reshape(segments, steps)
    freqs = np.ones((segments, 256), dtype=np.int32)
    enc = BitEncoder()
    for decode in (False, True):
        state = StreamState(TEXT_MIXERS, block_size=grid.size)
        coder = Half(state.block_coder(grid.size, segments))
        dec = BitDecoder(enc.payload()) if decode else None
        for t in range(steps):
            byte = grid[:, t].astype(np.int64)
            if dec is None:
                coder.code_byte(freqs, byte, enc)
            elif not np.array_equal(coder.decode_byte(freqs, segments, dec), byte):
                return False
    return True


def main() -> int:
    start = time.perf_counter()
    # Run numba's compiler, whatever is built already: its signatures are what the
    # ahead-of-time module exports.
    os.environ[jit.FORCE_JIT] = "1"
    from .engine import compress_stream, decompress_stream
    from .zoo import available_models, load_model

    # Text that is not repetitive, so that the network runs (``records.flat``: repetitive
    # text goes without it), from a fixed sequence of words.
    vocab = (
        b"the quick brown fox jumps over a lazy dog while nncompress warms up its compiled "
        b"loops for every kind of block it codes, text or tables, and then builds them "
        b"ahead of time."
    ).split()
    picks, x = [], 1
    for _ in range(700):
        x = (x * 1103515245 + 12345) % (1 << 31)
        picks.append(vocab[(x >> 16) % len(vocab)])
    data = b" ".join(picks)[:2500]
    makers = [lambda p=path: load_model(str(p), "cpu") for path in available_models()]
    makers.append(_two_layers)
    models = [make() for make in makers]
    # The int8 products' path (torch, on CPUs with int8 dot products) hands the loops
    # int32 sums and int8 inputs, or float32 sums where a batch size failed the exactness
    # check: run both, with the same exact products from numpy.
    for make in makers:
        for refuse in (False, True):
            model = make()
            model._int8 = _ExactInt8(model.tensors, refuse)
            models.append(model)
    # ...and a repetitive one, which goes without it, in one segment (no records in it;
    # its trial codes it both ways).
    log = data * 4
    runs = [(m, data, a) for m in models for a in (False, True)]
    runs += [(models[0], log, a) for a in (False, True)]
    for model, sample, account in runs:
        packed = io.BytesIO()
        compress_stream(io.BytesIO(sample), packed, model, threads=1, account=account)
        out = io.BytesIO()
        decompress_stream(
            io.BytesIO(packed.getvalue()), out, lambda h, m=model: m, threads=1, account=account
        )
        if out.getvalue() != sample:
            print("nncompress warm-up: round trip failed", file=sys.stderr)
            return 1
    if not _loops_called_from_python(data):
        print("nncompress warm-up: the loops called from Python failed", file=sys.stderr)
        return 1
    from .filters import x86_decode, x86_encode

    code = bytes([0xE8, 1, 2, 3, 0, 0x90]) * 4
    if x86_decode(x86_encode(code)) != code:
        print("nncompress warm-up: x86 transform failed", file=sys.stderr)
        return 1
    print(f"nncompress: compiled in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    start = time.perf_counter()
    try:
        built = jit.build()
    except Exception as e:  # no C compiler, or numba's ahead-of-time compiler gone
        print(f"nncompress: not built ahead of time ({type(e).__name__}: {e})", file=sys.stderr)
        return 0
    took = time.perf_counter() - start
    print(f"nncompress: built {built.name} in {took:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
