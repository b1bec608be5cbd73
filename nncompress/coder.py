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

from .adaptive import BlockCoder, StreamState
from .format import segment_count
from .model import IntModel


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


def _ticker(progress: Callable[[int], None] | None, n: int, steps: int) -> Callable[[int], None]:
    """Report progress in bytes every 256 steps, ending exactly at ``n``."""
    done = 0

    def tick(t: int) -> None:
        nonlocal done
        if progress and (t % 256 == 255 or t == steps - 1):
            target = n * (t + 1) // steps
            progress(target - done)
            done = target

    return tick


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
    tick = _ticker(progress, n, grid.shape[1])
    for t in range(grid.shape[1]):
        k = _active(t, segments, base, extra)
        freqs, state = model.step(prev, state)
        f = ops.to_numpy(freqs[:k]).astype(np.float32)
        enc.encode(np.ascontiguousarray(symbols[:k, t]), family, f)
        prev = ops.asarray(grid[:, t])
        tick(t)
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
    tick = _ticker(progress, n, steps)
    for t in range(steps):
        k = _active(t, segments, base, extra)
        freqs, state = model.step(prev, state)
        f = ops.to_numpy(freqs[:k]).astype(np.float32)
        try:
            grid[:k, t] = dec.decode(family, f)
        except AssertionError:  # constriction's report of data no encoder could make
            raise ValueError("model block payload is invalid for this model") from None
        prev = ops.asarray(grid[:, t])
        tick(t)
    return _ungrid(grid, n)


# --------------------------------------------------------------------------- mixed method
def _code_mixed(
    model: IntModel,
    n: int,
    segments: int,
    state: StreamState,
    code_bits: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
    grid: np.ndarray | None,
    progress: Callable[[int], None] | None,
) -> np.ndarray:
    """The loop shared by encoder and decoder of the mixed method: per step, one network
    step for all segments, then 8 binary decisions mixed with the adaptive statistics.
    ``code_bits(p1, bits)`` codes known bits (encoder) or returns decoded ones (decoder)."""
    base, extra = _layout(n, segments)
    steps = base + (extra > 0)
    out = np.zeros((segments, steps), dtype=np.int64)
    ops = model.ops
    bc = BlockCoder(state, n, segments)
    prev = np.zeros(segments, dtype=np.int64)
    mstate = model.initial_state(segments)
    tick = _ticker(progress, n, steps)
    for t in range(steps):
        k = _active(t, segments, base, extra)
        freqs, mstate = model.step(ops.asarray(prev), mstate)
        bc.begin_byte(ops.to_numpy(freqs[:k]).astype(np.int64), k)
        c0 = np.ones(k, dtype=np.int64)
        for j in range(8):
            p1 = bc.predict(j, c0)
            known = None if grid is None else (grid[:k, t] >> (7 - j)) & 1
            bit = code_bits(p1, known)
            bc.update(bit)
            c0 = (c0 << 1) | bit
        byte = c0 - 256
        bc.end_byte(byte)
        out[:k, t] = byte
        prev[:k] = byte
        prev[k:] = 0
        tick(t)
    return out


def _bit_probs(p1: np.ndarray) -> np.ndarray:
    out = np.empty((len(p1), 2), dtype=np.float32)
    out[:, 1] = p1
    out[:, 0] = (1 << 16) - p1
    return out


def encode_block_mixed(
    model: IntModel,
    data: bytes,
    state: StreamState,
    progress: Callable[[int], None] | None = None,
) -> tuple[bytes, int]:
    """Range-code ``data`` with the network mixed with the stream's adaptive statistics
    (which this updates); returns (payload, segment count)."""
    import constriction

    segments = segment_count(len(data))
    grid = _grid(data, segments)
    enc = constriction.stream.queue.RangeEncoder()
    family = constriction.stream.model.Categorical(perfect=False)

    def code(p1: np.ndarray, bits: np.ndarray | None) -> np.ndarray:
        assert bits is not None
        enc.encode(bits.astype(np.int32), family, _bit_probs(p1))
        return bits

    _code_mixed(model, len(data), segments, state, code, grid, progress)
    state.append_history(data)
    return enc.get_compressed().astype("<u4").tobytes(), segments


def decode_block_mixed(
    model: IntModel,
    payload: bytes,
    n: int,
    segments: int,
    state: StreamState,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """Invert ``encode_block_mixed`` (updating ``state`` the same way)."""
    import constriction

    if len(payload) % 4:
        raise ValueError("model block payload is not a whole number of 32-bit words")
    dec = constriction.stream.queue.RangeDecoder(
        np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    )
    family = constriction.stream.model.Categorical(perfect=False)

    def code(p1: np.ndarray, bits: np.ndarray | None) -> np.ndarray:
        try:
            return dec.decode(family, _bit_probs(p1)).astype(np.int64)
        except AssertionError:  # constriction's report of data no encoder could make
            raise ValueError("mixed block payload is invalid for this model") from None

    data = _ungrid(_code_mixed(model, n, segments, state, code, None, progress), n)
    state.append_history(data)
    return data
