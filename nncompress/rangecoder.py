"""The range coder of the mixed method's binary decisions, in compiled code.

The format names constriction's range coder (``stream.queue.RangeEncoder`` with
``stream.model.Categorical(perfect=False)``, docs/FORMAT.md, "Mixed (3)"). Called from
Python, it cost a dozen Python calls per bit of every step when decoding (each bit must
be known before the next is predicted), and a quarter of the encoder's time on small
steps: as much as the mixing itself where a step has few segments (logs, tables,
bitmaps). This module writes and reads the same words with the same arithmetic inside
the compiled per-byte loop (``adaptive._code_byte``), so a
group's byte costs one call from Python. ``tests/test_rangecoder.py`` holds it to
constriction: the split of every probability, the same words from the same bits, and
the same bits from the same words, valid or not.

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
  word (if any) fills point's low half;
* the encoder keeps the same lower and range, and at each shift writes lower's top word,
  or holds it back while lower + range wraps past 2^64 (a carry may still come), to write
  the held words once it is known whether one came (``_release``); it ends with the top
  word of lower + 2^32 - 1, and a zero word if that is also the top word of lower + range.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .jit import entry, jit

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


def splits() -> np.ndarray:
    """``split`` of every probability, indexed by p (0 .. 65535; p = 0 is never coded),
    as int64: the same float32 product, rounded once, so a device that looks the split up
    (``tritonkernels._decode_bits``) needs no floating point of its own."""
    p = np.arange(1 << 16, dtype=np.int64)
    product = (65536 - p).astype(np.float32) * _SCALE
    return product.astype(np.int64) + 1


class BitDecoder:
    """The decoder of one block's payload: its words and the state [lower, range, point,
    next word], which ``decode_bit`` advances inside ``adaptive._code_byte``. ``device``:
    where a device decodes the block's settled steps, its copy of them
    (``torchmix.DeviceBits``), else None."""

    def __init__(self, payload: bytes) -> None:
        """Raises ValueError on a payload that is not whole words."""
        if len(payload) % 4:
            raise ValueError("block payload is not a whole number of 32-bit words")
        self.words = np.frombuffer(payload, dtype="<u4").astype(np.uint64)
        point = 0
        for w in self.words[:2]:
            point = (point << 32) | int(w)
        if len(self.words) == 1:
            point <<= 32
        self.state = np.array([0, (1 << 64) - 1, point, min(len(self.words), 2)], dtype=np.uint64)
        self.device: Any = None


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


_MAX_WORD = np.uint64(0xFFFFFFFF)


class BitEncoder:
    """constriction's range encoder for the binary decisions, run inside the compiled
    per-byte loop (``adaptive._code_byte``): its state [lower, range, words held back
    while a carry is possible, the first of them, words written] and the words.
    ``device``: where a device predicts the block's settled steps, the steps whose
    decisions it holds, to be coded in their turn (``torchmix.DeviceProbs``), else None."""

    def __init__(self) -> None:
        self.state = np.array([0, (1 << 64) - 1, 0, 0, 0], dtype=np.uint64)
        self.out = np.zeros(1 << 10, dtype=np.uint64)
        self.device: Any = None

    def reserve(self, bits: int) -> None:
        """Make room for coding ``bits`` more bits: each writes at most one word, besides
        the held-back ones, and the end at most two."""
        need = int(self.state[4]) + int(self.state[2]) + bits + 2
        if need > len(self.out):
            grown = np.zeros(max(need, 2 * len(self.out)), dtype=np.uint64)
            grown[: len(self.out)] = self.out
            self.out = grown

    def payload(self) -> bytes:
        """End the code and return its words (little-endian), as constriction's
        ``get_compressed`` would."""
        self.reserve(0)
        finish(self.state, self.out)
        return self.out[: int(self.state[4])].astype("<u4").tobytes()


@jit
def _write(word, state, out) -> None:
    n = np.int64(state[4])
    out[n] = word
    state[4] = np.uint64(n + 1)


@jit
def _release(state, out, carried) -> None:
    """Write the words held back while a carry was possible: the first plus the carry,
    the rest all ones (no carry) or all zeros (carried)."""
    first = state[3]
    rest = _MAX_WORD
    if carried:
        first = (first + _ONE) & _MAX_WORD
        rest = np.uint64(0)
    _write(first, state, out)
    for _ in range(np.int64(state[2]) - 1):
        _write(rest, state, out)
    state[2] = np.uint64(0)


@jit
def encode_bit(bit, p, state, out) -> None:
    """Encode ``bit`` with P(1) = p / 65536 into ``out`` (``BitEncoder.reserve`` made
    room)."""
    lower, rng = state[0], state[1]
    scale = rng >> np.uint64(PRECISION)
    s = split(p)
    new_lower = lower
    if bit:
        new_lower = lower + scale * s
        rng = scale * (_TOTAL - s)
    else:
        rng = scale * s
    if state[2] > 0 and new_lower + rng > new_lower:
        _release(state, out, new_lower < lower)
    lower = new_lower
    if rng < _LOW:
        rng <<= _WORD
        word = lower >> _WORD
        lower <<= _WORD
        if state[2] > 0:
            state[2] += _ONE
        elif lower + rng > lower:
            _write(word, state, out)
        else:
            state[2] = _ONE
            state[3] = word
    state[0], state[1] = lower, rng


@jit
def code_step_bits(bit, p, decode, state, words) -> int:
    """Code one bit of each segment of a step, bit ``i`` at P(1) = ``p[i]`` / 65536: the
    encoder (``decode`` false) writes ``bit`` into ``words`` (a ``BitEncoder``'s words,
    reserved), the decoder reads them into ``bit``. Returns 0, or -1 where the words are
    not an encoder's."""
    for i in range(len(bit)):
        if decode:
            b = decode_bit(p[i], state, words)
            if b < 0:
                return -1
            bit[i] = b
        else:
            encode_bit(bit[i], p[i], state, words)
    return 0


@entry
def code_bits(bit, p, decode, state, words) -> int:
    """``code_step_bits`` called from Python, for predictions made outside the compiled
    loops (``torchmix``)."""
    return code_step_bits(bit, p, decode, state, words)


@entry
def finish(state, out) -> None:
    """Write the words that end the payload (none if nothing was encoded)."""
    lower, rng = state[0], state[1]
    if rng == np.uint64(0xFFFFFFFFFFFFFFFF):
        return
    point = lower + (_LOW - _ONE)
    if state[2] > 0:
        _release(state, out, point < lower)
    top = point >> _WORD
    _write(top, state, out)
    if ((lower + rng) >> _WORD) == top:
        _write(np.uint64(0), state, out)
