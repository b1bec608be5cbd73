"""The x86 branch transform of mixed blocks (format: block option 2, docs/FORMAT.md).

x86 and x86-64 code calls and jumps with E8/E9 and a 32-bit offset relative to the next
instruction, so calls to one function from many places carry as many different offsets.
Adding the instruction's position turns each offset into the target's address, which
repeats, and the statistics learn it. For an offset whose top byte is 0 or 0xFF (a
target within 16 MiB), the low three bytes become (offset + position) mod 2^24; the
top byte, and so the test, is left as it was.

The encoder runs from the block's end to its start, the decoder from start to end: at each
position the decoder then sees the same opcode byte and top byte as the encoder did (the
transform at i writes only bytes i+1 .. i+3), so every decision is undone exactly,
overlapping candidates included. ``looks_like_x86`` is the encoder's guess alone: the
block header says whether the transform was applied.
"""

from __future__ import annotations

import numpy as np

from .jit import entry

#: A block is taken for x86 code with at least this many candidates per 1000 bytes
#: (executables: 7 to 40; other data below 2.5)...
MIN_DENSITY = 3.0
#: ...whose targets repeat: at most this share of distinct targets among them (code:
#: 0.23 to 0.39, as most calls go to few functions; data that happens to hold E8 bytes:
#: about 1).
MAX_DISTINCT = 0.6
MIN_CANDIDATES = 32
#: Offsets this far or closer count as targets.
NEAR = 1 << 24


@entry
def _transform(a: np.ndarray, forward: bool) -> None:
    n = len(a)
    for k in range(n - 4):
        i = n - 5 - k if forward else k
        c = a[i]
        if (c == 0xE8 or c == 0xE9) and (a[i + 4] == 0 or a[i + 4] == 0xFF):
            v = np.int64(a[i + 1]) | (np.int64(a[i + 2]) << 8) | (np.int64(a[i + 3]) << 16)
            v = (v + i if forward else v - i) & 0xFFFFFF
            a[i + 1] = v & 0xFF
            a[i + 2] = (v >> 8) & 0xFF
            a[i + 3] = (v >> 16) & 0xFF


def x86_encode(data: bytes) -> bytes:
    """``data`` with its call and jump offsets made addresses."""
    a = np.frombuffer(data, dtype=np.uint8).copy()
    _transform(a, True)
    return a.tobytes()


def x86_decode(data: bytes) -> bytes:
    """Invert ``x86_encode``."""
    a = np.frombuffer(data, dtype=np.uint8).copy()
    _transform(a, False)
    return a.tobytes()


def looks_like_x86(data: bytes) -> bool:
    """Whether ``data`` reads as x86 code: E8/E9 followed by a near offset, often, with
    targets that repeat."""
    a = np.frombuffer(data, dtype=np.uint8)
    if len(a) < 1024:
        return False
    op = np.flatnonzero(((a[:-4] & 0xFE) == 0xE8) & ((a[4:] == 0) | (a[4:] == 0xFF)))
    if len(op) < MIN_CANDIDATES or len(op) * 1000 < MIN_DENSITY * len(a):
        return False
    w = a.astype(np.int64)
    rel = w[op + 1] | w[op + 2] << 8 | w[op + 3] << 16 | w[op + 4] << 24
    rel = np.where(rel >= 1 << 31, rel - (1 << 32), rel)
    near = np.abs(rel) < NEAR
    if near.sum() < MIN_CANDIDATES:
        return False
    targets = (op + rel)[near]
    return len(np.unique(targets)) <= MAX_DISTINCT * len(targets)
