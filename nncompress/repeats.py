"""Repetition the encoder looks for before it codes: a block that is one period said over
and over (written as a repeat block, ``format.STORED_REPEAT``), the strings parts of an
input share (kept in one frame rather than cut into frames that cannot see each other),
and a block its frame held before (a copy block, ``format.STORED_COPY``).

All of it only steers the encoder's choices; a decoder never runs it (a repeat or copy
block says what it repeats), so it may improve without touching the format.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import format as fmt

#: How many places where the block's start comes again ``period`` tries.
PERIOD_TRIES = 4


def period(data: bytes) -> int:
    """The shortest period ``p`` of ``data`` (``data[p:] == data[:-p]``) if it is at most
    half its length, else 0. A period's bytes are the block's start, found again at ``p``:
    the first few places where the first 256 bytes (at most half the block) come again are
    checked, comparing the block with itself in place (a fraction of a millisecond a MiB;
    data with no period rarely has its start again at all)."""
    n = len(data)
    if n < 2:
        return 0
    head, view = data[: min(256, n // 2)], memoryview(data)
    p = data.find(head, 1)
    for _ in range(PERIOD_TRIES):
        if not 0 < p <= n // 2:
            return 0
        if data.startswith(view[: n - p], p):
            return p
        p = data.find(head, p + 1)
    return 0


#: ``shared``'s strings: ``ANCHOR_WORDS`` words of 8 bytes from each anchor, a place where
#: a hash of the 8 bytes there has its top ``ANCHOR_BITS`` bits equal to 1: about one place
#: a KiB, the same places in every copy of the same bytes wherever the copy stands, and
#: none in a run of zeros (whose hash is 0).
WORD = 8
ANCHOR_WORDS = 4
ANCHOR_BITS = 10
#: Positions hashed at a time (arrays of a few MiB each).
CHUNK = 1 << 20
_MUL = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xC2B2AE3D27D4EB4F)


def _anchors(data: bytes | memoryview) -> tuple[np.ndarray, np.ndarray]:
    """The anchors of ``data`` in order: where each is, and the 64-bit key of the string
    of ``ANCHOR_WORDS`` words there."""
    a = np.frombuffer(data, dtype=np.uint8)
    span = ANCHOR_WORDS * WORD
    n = len(a) - span + 1
    places, keys = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.uint64)]
    top = np.uint64(64 - ANCHOR_BITS)
    with np.errstate(over="ignore"):
        for lo in range(0, max(n, 0), CHUNK):
            hi = min(n, lo + CHUNK)
            part = a[lo : hi + span - 1].astype(np.uint64)
            m = len(part) - WORD + 1
            h = np.zeros(m, dtype=np.uint64)
            for j in range(WORD):  # each position's word, hashed
                h = h * _MUL + part[j : j + m]
            h *= _MIX
            at = np.flatnonzero((h[: hi - lo] >> top) == 1)
            key = h[at]
            for q in range(1, ANCHOR_WORDS):
                key = key * _MUL + h[at + q * WORD]
            places.append(at + lo)
            keys.append(key)
    return np.concatenate(places), np.concatenate(keys)


def _anchored(data: bytes | memoryview) -> np.ndarray:
    """The distinct 64-bit keys of the strings of ``ANCHOR_WORDS`` words at ``data``'s
    anchors."""
    return np.unique(_anchors(data)[1])


def shared(first: bytes, second: bytes) -> float:
    """The share of the distinct anchored strings of ``second`` (32 bytes each) that occur
    in ``first``: 0 where the two parts have nothing long in common, 1 where ``second``
    repeats ``first``. Text, code and tables share under 1% between their halves; a file
    stored twice in a tar archive, most of it. About 0.15 s for 16 MiB on the development
    VM (``scripts/frame_cost.py --shared``)."""
    return _share(_anchored(second), _anchored(first))


def _share(theirs: np.ndarray, ours: np.ndarray) -> float:
    """The share of the distinct keys ``theirs`` that are among ``ours`` (0 for none)."""
    return float(np.isin(theirs, ours).mean()) if len(theirs) else 0.0


def frame_parts(parts: Sequence[bytes], least: float) -> int:
    """How many of ``parts`` (the next pieces of an input, a default frame each, in order)
    the next frame should take: up to and including the last part that has at least
    ``least`` of its distinct anchored strings in the parts before it (as ``shared``
    counts them), else only the first. A copy within their reach is then coded in the
    frame that holds its source, where the match model finds it; parts that share
    nothing stay frames of their own. About 0.15 s a part of 16 MiB."""
    keys = [_anchored(p) for p in parts] if len(parts) > 1 else []
    take = 1
    for j in range(1, len(parts)):
        if _share(keys[j], np.concatenate(keys[:j])) >= least:
            take = j + 1
    return take


#: How many of a block's anchors ``Copies.next`` looks up (a string that recurs in the
#: frame may point elsewhere than the copy; each distance is checked once).
COPY_TRIES = 32


class Copies:
    """Where a block of a frame occurred earlier in it (for a copy block,
    ``format.STORED_COPY``): the frame's anchored strings so far, each at its latest
    place, are looked up for the block's first few anchors, and the distance each gives is
    checked against the bytes. Anchors are about a KiB apart (``shared``'s), so blocks of
    a few KiB may have none, and go without; those of the default 1 MiB have a thousand.
    Only the encoder runs this; a decoder is told the distance."""

    def __init__(self, frame: bytes, window: int) -> None:
        self.frame, self.window = memoryview(frame), window
        self.seen: dict[int, int] = {}
        self.start = 0  # where the next block starts

    def next(self, n: int, look: bool) -> int:
        """For the frame's next block, of ``n`` bytes: where ``look``, the distance back
        at which its bytes occurred whole before (``format.copied``; at most ``window``
        and the block's start), else 0; then its anchored strings are learnt."""
        start, block = self.start, self.frame[self.start : self.start + n]
        places, keys = _anchors(block)
        distance = 0
        if look:
            distance = self._find(block, places[:COPY_TRIES].tolist(), keys[:COPY_TRIES].tolist())
        self.seen.update(zip(keys.tolist(), (places + start).tolist(), strict=True))
        self.start += n
        return distance

    def _find(self, block: memoryview, places: list[int], keys: list[int]) -> int:
        start, tried = self.start, set()
        for place, key in zip(places, keys, strict=True):
            earlier = self.seen.get(key)
            if earlier is None or (distance := start + place - earlier) in tried:
                continue
            tried.add(distance)
            if 0 < distance <= min(start, self.window):
                if fmt.copied(self.frame[:start], distance, len(block)) == block:
                    return distance
        return 0
