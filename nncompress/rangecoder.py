"""The range decoder of the mixed method's binary decisions, in compiled code.

Mixed blocks are written by constriction's range encoder (``stream.queue.RangeEncoder``
with ``stream.model.Categorical(perfect=False)``, docs/FORMAT.md, "Mixed (3)"), which
codes a whole step's bits in one call. Decoding cannot batch: each bit must be known
before the next one is predicted, so a decoder that called constriction from Python paid
a dozen Python calls per bit for every step, as much time as the mixing itself where a
step has few segments (logs, tables, bitmaps). This module decodes the same words with
the same arithmetic inside the compiled per-byte loop (``adaptive._decode_byte``), so a
group's byte costs one call from Python. ``tests/test_coder.py`` checks it against
constriction: the split of every probability, and bit for bit on valid and on random words.

The arithmetic, for a bit whose probability of 1 is p / 65536 (1 <= p <= 65535):

* the two symbols' weights are 65536 - p and p, as float32; constriction's fast
  quantisation gives symbol 0 the 24-bit interval [0, s) and symbol 1 [s, 2^24), with
  s = trunc(float32(65536 - p) * float32((2^24 - 2) / 65536)) + 1, the product rounded to
  float32 (``split``);
* the decoder keeps 64-bit ``lower``, ``range`` and ``point``: it starts from lower = 0,
  range = 2^64 - 1 and point = the first two 32-bit words (big-endian order, missing words
  as zeros); per bit, scale = range >> 24 and q = ((point - lower) mod 2^64) // scale; q
  >= 2^24 means the words are not an encoder's; the bit is q >= s; symbol 0 leaves lower
  and sets range = scale * s, symbol 1 adds scale * s to lower and sets range = scale *
  (2^24 - s); when range < 2^32, lower, range and point shift left by 32 bits and the next
  word (if any) fills point's low half.
"""

from __future__ import annotations

import numpy as np

from .jit import jit

PRECISION = 24
#: constriction's scale for two symbols: the 2^24 - 2 units left after each symbol's
#: guaranteed one, over the weights' sum of 65536 (exact in float32).
_SCALE = np.float32((1 << PRECISION) - 2) / np.float32(1 << 16)
_ONE = np.uint64(1)
_WORD = np.uint64(32)
_TOTAL = np.uint64(1 << PRECISION)
_LOW = np.uint64(1 << 32)


@jit
def split(p) -> np.uint64:
    """Where symbol 1's interval starts, of 2^24, for P(1) = p / 65536."""
    product = np.float32(65536 - p) * _SCALE
    return np.uint64(np.int64(product)) + _ONE


def start(payload: bytes) -> tuple[np.ndarray, np.ndarray]:
    """The words of a block's payload and the decoder's state [lower, range, point, next
    word] before its first bit. Raises ValueError on a payload that is not whole words."""
    if len(payload) % 4:
        raise ValueError("block payload is not a whole number of 32-bit words")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint64)
    point = 0
    for w in words[:2]:
        point = (point << 32) | int(w)
    if len(words) == 1:
        point <<= 32
    state = np.array([0, (1 << 64) - 1, point, min(len(words), 2)], dtype=np.uint64)
    return words, state


@jit
def decode_bit(p, state, words) -> int:
    """Decode one bit with P(1) = p / 65536 and advance ``state``; -1 for words that no
    encoder wrote (the block is then refused)."""
    lower, rng, point = state[0], state[1], state[2]
    scale = rng >> np.uint64(PRECISION)
    quantile = (point - lower) // scale
    if quantile >= _TOTAL:
        return -1
    s = split(p)
    if quantile >= s:
        bit = 1
        lower += scale * s
        rng = scale * (_TOTAL - s)
    else:
        bit = 0
        rng = scale * s
    if rng < _LOW:
        lower <<= _WORD
        rng <<= _WORD
        point <<= _WORD
        nxt = np.int64(state[3])
        if nxt < len(words):
            point |= words[nxt]
            state[3] = np.uint64(nxt + 1)
    state[0], state[1], state[2] = lower, rng, point
    return bit
