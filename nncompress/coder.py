"""Lockstep range coding of one block with an integer model.

A block of n bytes is cut into S segments (S a function of n alone, recorded in the block
header). One batched model step advances every segment by one byte, and one vectorised
constriction call codes the S symbols of that step, so Python's overhead is paid once per
step rather than once per byte. Segment i holds bytes [start_i, start_i + len_i); the first
``n % S`` segments are one byte longer than the rest, so at every step the active segments
are a prefix of the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .model import IntModel

#: Target segment length: shorter segments give more parallelism and speed, longer ones
#: less cost for each segment's cold start.
SEGMENT_BYTES = 4096
MAX_SEGMENTS = 1024


def segment_count(n: int) -> int:
    """The number of lockstep segments for a block of ``n`` bytes (part of the format)."""
    return max(1, min(MAX_SEGMENTS, n // SEGMENT_BYTES))


def _layout(n: int, segments: int) -> tuple[int, int]:
    """(length of the short segments, number of segments one byte longer)."""
    return n // segments, n % segments


def _grid(data: bytes, segments: int) -> np.ndarray:
    """The block as a [S, steps] matrix of segment rows, zero-padded on the right."""
    base, extra = _layout(len(data), segments)
    steps = base + (extra > 0)
    arr = np.frombuffer(data, dtype=np.uint8)
    grid = np.zeros((segments, steps), dtype=np.int64)
    long_part = extra * (base + 1)
    if extra:
        grid[:extra] = arr[:long_part].reshape(extra, base + 1)
    if base:
        grid[extra:, :base] = arr[long_part:].reshape(segments - extra, base)
    return grid


def _ungrid(grid: np.ndarray, n: int) -> bytes:
    segments = grid.shape[0]
    base, extra = _layout(n, segments)
    parts = [grid[:extra].astype(np.uint8).tobytes()]
    if base:
        parts.append(grid[extra:, :base].astype(np.uint8).tobytes())
    return b"".join(parts)


def _active(t: int, segments: int, base: int, extra: int) -> int:
    return segments if t < base else extra


def encode_block(
    model: IntModel, data: bytes, progress: Callable[[int], None] | None = None
) -> tuple[bytes, int]:
    """Range-code ``data`` with ``model``; returns (payload, segment count)."""
    import constriction

    n = len(data)
    segments = segment_count(n)
    base, extra = _layout(n, segments)
    grid = _grid(data, segments)
    ops = model.ops
    symbols = grid.astype(np.int32)
    prev = ops.asarray(np.zeros(segments, dtype=np.int64))
    state = model.initial_state(segments)
    enc = constriction.stream.queue.RangeEncoder()
    family = constriction.stream.model.Categorical(perfect=False)
    for t in range(grid.shape[1]):
        k = _active(t, segments, base, extra)
        freqs, state = model.step(prev, state)
        f = ops.to_numpy(freqs[:k]).astype(np.float32)
        enc.encode(np.ascontiguousarray(symbols[:k, t]), family, f)
        prev = ops.asarray(grid[:, t])
        if progress and t % 256 == 255:
            progress(256 * segments)
    return enc.get_compressed().astype("<u4").tobytes(), segments


def decode_block(
    model: IntModel,
    payload: bytes,
    n: int,
    segments: int,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """Invert ``encode_block``. The caller checks the result's CRC: a damaged payload decodes
    to wrong bytes, never to an exception the user would see as a crash."""
    import constriction

    if len(payload) % 4:
        raise ValueError("model block payload is not a whole number of 32-bit words")
    base, extra = _layout(n, segments)
    steps = base + (extra > 0)
    grid = np.zeros((segments, steps), dtype=np.int64)
    ops = model.ops
    prev = ops.asarray(np.zeros(segments, dtype=np.int64))
    state = model.initial_state(segments)
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    dec = constriction.stream.queue.RangeDecoder(words)
    family = constriction.stream.model.Categorical(perfect=False)
    for t in range(steps):
        k = _active(t, segments, base, extra)
        freqs, state = model.step(prev, state)
        f = ops.to_numpy(freqs[:k]).astype(np.float32)
        grid[:k, t] = dec.decode(family, f)
        prev = ops.asarray(grid[:, t])
        if progress and t % 256 == 255:
            progress(256 * segments)
    return _ungrid(grid, n)
