"""Context kinds of the mixed method: what each one hashes, by a stable id.

A context is a function of what a segment has coded so far (its last bytes, its words, its
line layout) that picks a slot of bit statistics in the adaptive tables (``adaptive.py``).
Which contexts a stream uses, and in which order, is data: the stream's configuration
(``config.py``) lists their ids. The code of a kind, once released, never changes: an
archive of format 1 names its contexts by id and must keep decoding the same way. A new
idea is a new id with a new branch here, beside the old ones (docs/DESIGN.md, section 7,
which also says how to add a context).
"""

from __future__ import annotations

import numpy as np

from .jit import jit

#: Multipliers of the hashes (odd 64-bit constants; the top bits of a product pick a slot).
PRIMES = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
    ],
    dtype=np.uint64,
)

#: Kind ids (part of the format) and their names (for ``-v`` and the configuration's text).
ORDER = {k: k for k in range(1, 9)}  # order-k: the last k bytes, k = 1..8
WORD = 9  # the current word (letters case-folded, digits, '_' and non-ASCII bytes)
WORD_2 = 10  # the current word and the one before it
WORD_BYTE = 11  # the current word and the last byte
COLUMN = 12  # the column and the byte above it in the previous line
COLUMN_2 = 13  # the column and the last two bytes
SPARSE = 14  # the two bytes before the last one
INDENT = 15  # the line's indentation (and whether it is still being written), the last byte
LINE = 16  # the line's first byte and the last two bytes
SPARSE_2 = 17  # the third and fourth bytes back
WORD_3 = 18  # the current word and the two words before it
VERTICAL = 19  # the two bytes above in the previous line, and the last byte
# Records: fixed-length rows of R bytes (tables, spreadsheets, bitmaps, numeric arrays),
# R given by the block (its header's record length; 0: none, and these hash a constant).
# "Above" is the byte R back, known once the segment has coded R bytes.
RECORD = 20  # the position in the record and the byte above
RECORD_2 = 21  # the bytes one and two records above, and the last byte
RECORD_3 = 22  # the three bytes above (left, straight, right) and the last byte
# 1-bit bitmaps (pixels packed 8 to a byte, the leftmost in the top bit): the neighbours
# of the pixels being coded, without the far bits of whole bytes beside them.
PIXELS = 23  # the byte above, the 2 nearest pixels of each byte beside it, the 4 nearest left
PIXELS_2 = 24  # the bytes one and two rows above, and the 2 nearest pixels to the left
# Machine words: code and short records lay out values of 2, 4 or 8 bytes at aligned
# offsets (``pos``: the block offset of the byte being coded), and a field repeats every
# 4 or 8 bytes more often than the bytes just before it predict.
ALIGN_4 = 25  # the offset mod 4 and the last byte
SKIP_4 = 26  # the bytes 4 and 8 back, and the offset mod 4
SKIP_1_4 = 27  # the last byte and the byte 4 back
# 1-bit bitmaps again, bit by bit: the pixels around the one being coded, wherever in its
# byte it lies, so that a window of pixels centred on it is one context whichever bit of
# the byte it is (the byte-wide kinds above see a window that shifts with the bit). The
# byte step packs the rows around the byte (``pixel_rows``); each bit's hash is then made
# from them and the bits coded so far (``bit_hash``), not from the byte's hash and the
# partial byte as for every other kind.
BIT_PIXELS = 28  # 5 pixels above, 3 two rows above, the 4 to the left
BIT_PIXELS_2 = 29  # 5 pixels above, 5 two rows above, the 6 to the left
# Wider and taller windows, from three rows above (``wide_rows`` packs them): the larger a
# window, the more of a letter's or a line's shape it sees; the smaller, the sooner its
# statistics are learnt. A bitmap's mixers weigh them by the pixels around
# (``MIX_PIXELS``).
BIT_PIXELS_3 = 30  # 7 pixels above, 5 two rows above, 3 three rows above, the 6 to the left
BIT_PIXELS_4 = 31  # 9 pixels above, the 8 to the left
BIT_PIXELS_5 = 32  # 3 pixels above, 3 two rows above, 3 three rows above, the 2 to the left
# Sparse and match contexts for binary data. An instruction's operand bytes follow from its
# opcode a byte or three back more than from the byte just before; a field of a table or an
# array of numbers from the same field a few bytes back; and the high half of a byte (its
# range: small numbers, ASCII, addresses) says more about the next than its exact value
# where those values vary. The match model's expected byte is a context too, so that the
# statistics learn how far a match of each length is to be trusted after each byte, as
# the match model's own input (one probability per length) cannot.
SKIP_1 = 33  # the second byte back alone
SKIP_1_3 = 34  # the second and fourth bytes back
NIBBLES_3 = 35  # the high halves of the last three bytes
EXPECTED = 36  # the byte the match model expects (or none) and its match length class
# 8-bit images (and other smooth data in rows of R bytes): a pixel is seldom equal to a
# neighbour but close to what its neighbours predict. With W the last byte, WW the one
# before, N, NW and NE the bytes R, R + 1 and R - 1 back (0 where the segment has not
# coded them), each also says whether the segment has coded the byte R back.
IMAGE_GRADIENT = 37  # W + N - NW, clamped to 0-255 (a plane through the three)
IMAGE_QUANT = 38  # the top 5 bits of W, N, NE and NW
IMAGE_AVERAGE = 39  # the mean of W and NE, and the top 6 bits of N
IMAGE_SLOPE = 40  # 2 W - WW, clamped to 0-255 (the row's slope carried on), top 6 bits of N
# 24- and 32-bit images (rows of R bytes, pixels of P = 3 or 4): the same four with W, WW,
# NW and NE the bytes P, 2 P, R + P and R - P back, the same colour channel of the pixels
# around (in the kinds above, W is the pixel's previous channel), and a fifth across the
# channels: the pixel's previous channel has already moved from its left and upper
# neighbours by as much as this one is likely to. One set of five for each pixel size.
COLOUR_3 = 41  # pixels of 3 bytes: kinds 41-45
COLOUR_4 = 46  # pixels of 4 bytes: kinds 46-50
COLOUR_GRADIENT = 0  # W + N - NW, clamped to 0-255
COLOUR_QUANT = 1  # the top 5 bits of W, N, NE and NW
COLOUR_AVERAGE = 2  # the mean of W and NE, and the top 6 bits of N
COLOUR_SLOPE = 3  # 2 W - WW, clamped to 0-255, and the top 6 bits of N
COLOUR_CROSS = 4  # W and N each moved by the previous channel's move from its own W and N
COLOUR_KINDS_EACH = 5

NAMES: dict[int, str] = {
    **{k: f"order-{k}" for k in ORDER},
    WORD: "word",
    WORD_2: "word-2",
    WORD_BYTE: "word-byte",
    COLUMN: "column",
    COLUMN_2: "column-2",
    SPARSE: "sparse",
    INDENT: "indent",
    LINE: "line",
    SPARSE_2: "sparse-2",
    WORD_3: "word-3",
    VERTICAL: "vertical",
    RECORD: "record",
    RECORD_2: "record-2",
    RECORD_3: "record-3",
    PIXELS: "pixels",
    PIXELS_2: "pixels-2",
    ALIGN_4: "align-4",
    SKIP_4: "skip-4",
    SKIP_1_4: "skip-1-4",
    BIT_PIXELS: "bit-pixels",
    BIT_PIXELS_2: "bit-pixels-2",
    BIT_PIXELS_3: "bit-pixels-3",
    BIT_PIXELS_4: "bit-pixels-4",
    BIT_PIXELS_5: "bit-pixels-5",
    SKIP_1: "skip-1",
    SKIP_1_3: "skip-1-3",
    NIBBLES_3: "nibbles-3",
    EXPECTED: "expected",
    IMAGE_GRADIENT: "image-gradient",
    IMAGE_QUANT: "image-quant",
    IMAGE_AVERAGE: "image-average",
    IMAGE_SLOPE: "image-slope",
    **{
        base + k: f"colour-{pixel}-{name}"
        for pixel, base in ((3, COLOUR_3), (4, COLOUR_4))
        for k, name in enumerate(("gradient", "quant", "average", "slope", "cross"))
    },
}
#: The kinds hashed bit by bit (``bit_hash``): the ids from the first of them to the last.
BIT_KINDS = frozenset((BIT_PIXELS, BIT_PIXELS_2, BIT_PIXELS_3, BIT_PIXELS_4, BIT_PIXELS_5))
#: The 8-bit image kinds.
IMAGE_KINDS = frozenset((IMAGE_GRADIENT, IMAGE_QUANT, IMAGE_AVERAGE, IMAGE_SLOPE))
#: The colour image kinds, 24-bit then 32-bit.
COLOUR_KINDS = frozenset(range(COLOUR_3, COLOUR_4 + COLOUR_KINDS_EACH))
#: The record kinds, which read the block's record length.
RECORD_KINDS = frozenset(
    (RECORD, RECORD_2, RECORD_3, PIXELS, PIXELS_2, *BIT_KINDS, *IMAGE_KINDS, *COLOUR_KINDS)
)
#: Kinds counted by the second mixer's selector ("how many of the longer contexts have been
#: seen before"): the orders from 2 on.
SEEN_KINDS = frozenset(range(2, 9))

_ORDER_MASK = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
#: Which multiplier each order uses (orders 1, 2, 3, 4, 6 and 8 as the first released
#: configuration has them; 5 and 7 share their neighbours', their masks differ).
_ORDER_PRIME = np.array([0, 0, 1, 2, 3, 4, 4, 5, 5], dtype=np.int64)


@jit
def context_hash(kind, c, words, lines, block, i, expected, bucket) -> np.uint64:
    """The 64-bit hash of context ``kind`` for segment ``i`` before its next byte.

    ``c``: the segment's last 8 bytes (the latest in the low byte); ``words``: [3, S] hashes
    of the current word and the two before it; ``lines``: [6, S] column, block offset of the
    line's start, of the previous line's start (-1: none), the indentation, the block's
    record length (0: none) and the segment's start; ``block``: the block's bytes so far;
    ``expected``: the byte the match model expects (-1: it has none) and ``bucket`` the
    class of its match length (``adaptive._length_bucket``, plus 24 for a match lent by
    another segment). For the bit-level kinds (``BIT_KINDS``) it is not a hash but the
    packed pixel rows that ``bit_hash`` reads. Returns 0 for an unknown kind
    (configurations are checked before use, so that does not happen)."""
    if kind <= 8:
        return ((c & _ORDER_MASK[kind]) + np.uint64(kind)) * PRIMES[_ORDER_PRIME[kind]]
    if kind >= IMAGE_GRADIENT:
        return _record_hash(kind, c, lines, block, i)
    if kind >= SKIP_1:
        return _sparse_hash(kind, c, expected, bucket)
    if kind >= BIT_PIXELS_3:
        return wide_rows(c, lines, block, i)
    if kind >= BIT_PIXELS:
        return pixel_rows(c, lines, block, i)
    if kind >= ALIGN_4:
        return _word_hash(kind, c, lines, i)
    if kind >= RECORD:
        return _record_hash(kind, c, lines, block, i)
    w0, w1, w2 = words[0, i], words[1, i], words[2, i]
    if kind == WORD:
        return (w0 + np.uint64(1)) * PRIMES[4]
    if kind == WORD_2:
        return (w0 ^ (w1 * PRIMES[3])) * PRIMES[1]
    if kind == WORD_BYTE:
        v = (w0 + np.uint64(12345)) * PRIMES[0] + (c & np.uint64(0xFF))
        return (v + np.uint64(1)) * PRIMES[3]
    if kind == WORD_3:
        v = w0 ^ (w1 * PRIMES[3]) ^ (w2 * PRIMES[4])
        return (v + np.uint64(77)) * PRIMES[5]
    if kind == SPARSE:
        v = ((c >> np.uint64(8)) & np.uint64(0xFFFF)) + np.uint64(7000001)
        return v * PRIMES[1]
    if kind == SPARSE_2:
        v = ((c >> np.uint64(16)) & np.uint64(0xFFFF)) + np.uint64(9000007)
        return v * PRIMES[3]
    col = lines[0, i]
    if kind == COLUMN_2:
        v = np.uint64(min(col, 255)) * np.uint64(65536) + (c & np.uint64(0xFFFF))
        return (v + np.uint64(900002)) * PRIMES[4]
    if kind == INDENT:
        lead = 1 if lines[0, i] == lines[3, i] else 0
        v = np.uint64(min(lines[3, i], 63) * 512 + lead * 256) + (c & np.uint64(0xFF))
        return (v + np.uint64(3000017)) * PRIMES[0]
    if kind == LINE:
        first = np.int64(block[lines[1, i]]) + 1 if col > 0 else 0
        v = np.uint64(first * 65536) + (c & np.uint64(0xFFFF))
        return (v + np.uint64(5000011)) * PRIMES[2]
    above = 0
    if lines[2, i] >= 0 and lines[2, i] + col < lines[1, i]:
        above = np.int64(block[lines[2, i] + col]) + 1
    if kind == COLUMN:
        return np.uint64(min(col, 63) * 512 + above + 100000) * PRIMES[2]
    if kind == VERTICAL:
        above2 = 0
        if lines[2, i] >= 0 and lines[2, i] + col + 1 < lines[1, i]:
            above2 = np.int64(block[lines[2, i] + col + 1]) + 1
        v = np.uint64(above * 512 + above2) * np.uint64(256) + (c & np.uint64(0xFF))
        return (v + np.uint64(4242)) * PRIMES[1]
    return np.uint64(0)


@jit
def _sparse_hash(kind, c, expected, bucket) -> np.uint64:
    """The sparse and match kinds (``SKIP_1`` to ``EXPECTED``)."""
    if kind == SKIP_1:
        return (((c >> np.uint64(8)) & np.uint64(0xFF)) + np.uint64(3300001)) * PRIMES[0]
    if kind == SKIP_1_3:
        v = ((c >> np.uint64(8)) & np.uint64(0xFF)) << np.uint64(8)
        v |= (c >> np.uint64(24)) & np.uint64(0xFF)
        return (v + np.uint64(3400003)) * PRIMES[4]
    if kind == NIBBLES_3:
        return ((c & np.uint64(0xF0F0F0)) + np.uint64(3500017)) * PRIMES[3]
    if kind == EXPECTED:
        v = np.uint64((expected + 1) * 64 + bucket)
        return (v + np.uint64(3600011)) * PRIMES[1]
    return np.uint64(0)


@jit
def _image_hash(kind, c, block, pos, first, r, up) -> np.uint64:
    """The 8-bit image kinds (``IMAGE_GRADIENT`` to ``IMAGE_SLOPE``), for the byte at block
    offset ``pos`` in rows of ``r`` bytes; ``up`` is ``_above``'s byte ``r`` back. The
    colour kinds go on to ``_colour_hash``."""
    if kind >= COLOUR_3:
        return _colour_hash(kind, c, block, pos, first, r, up)
    n = max(up - 1, 0)
    nw = max(_above(block, pos, r + 1, first) - 1, 0)
    ne = max(_above(block, pos, r - 1, first) - 1, 0)  # R >= 2: a coded byte
    w = np.int64(c & np.uint64(0xFF))
    if kind == IMAGE_GRADIENT:
        v = min(max(w + n - nw, 0), 255)
    elif kind == IMAGE_QUANT:
        v = (((w >> 3) * 32 + (n >> 3)) * 32 + (ne >> 3)) * 32 + (nw >> 3)
    elif kind == IMAGE_AVERAGE:
        v = ((w + ne + 1) >> 1) * 64 + (n >> 2)
    elif kind == IMAGE_SLOPE:
        ww = np.int64((c >> np.uint64(8)) & np.uint64(0xFF))
        v = min(max(2 * w - ww, 0), 255) * 64 + (n >> 2)
    else:
        return np.uint64(0)
    v = v * 2 + (1 if up > 0 else 0)
    return (np.uint64(v) + np.uint64(kind * 1000003)) * PRIMES[kind % 6]


@jit
def _colour_hash(kind, c, block, pos, first, r, up) -> np.uint64:
    """The colour image kinds (``COLOUR_3`` on), for the byte at block offset ``pos`` in
    rows of ``r`` bytes; ``up`` is ``_above``'s byte ``r`` back. The neighbours are the
    same channel's, a pixel of ``px`` bytes away; a row no longer than a pixel (a block of
    a colour stream where no row was found) has no NE."""
    px = 3 if kind < COLOUR_4 else 4
    k = (kind - COLOUR_3) % COLOUR_KINDS_EACH
    n = max(up - 1, 0)
    w = max(_above(block, pos, px, first) - 1, 0)
    if k == COLOUR_GRADIENT:
        nw = max(_above(block, pos, r + px, first) - 1, 0)
        v = min(max(w + n - nw, 0), 255)
    elif k == COLOUR_QUANT:
        nw = max(_above(block, pos, r + px, first) - 1, 0)
        ne = max(_above(block, pos, r - px, first) - 1, 0) if r > px else 0
        v = (((w >> 3) * 32 + (n >> 3)) * 32 + (ne >> 3)) * 32 + (nw >> 3)
    elif k == COLOUR_AVERAGE:
        ne = max(_above(block, pos, r - px, first) - 1, 0) if r > px else 0
        v = ((w + ne + 1) >> 1) * 64 + (n >> 2)
    elif k == COLOUR_SLOPE:
        ww = max(_above(block, pos, 2 * px, first) - 1, 0)
        v = min(max(2 * w - ww, 0), 255) * 64 + (n >> 2)
    else:
        c1 = np.int64(c & np.uint64(0xFF))
        c1w = max(_above(block, pos, px + 1, first) - 1, 0)
        c1n = max(_above(block, pos, r + 1, first) - 1, 0)
        v = min(max(w + c1 - c1w, 0), 255) * 64 + (min(max(n + c1 - c1n, 0), 255) >> 2)
    v = v * 2 + (1 if up > 0 else 0)
    return (np.uint64(v) + np.uint64(kind * 1000003)) * PRIMES[kind % 6]


@jit
def _above(block, pos, back, first) -> np.int64:
    """The byte ``back`` before block offset ``pos``, plus 1, if the segment (which starts
    at ``first``) has coded it; else 0."""
    q = pos - back
    return np.int64(block[q]) + 1 if q >= first else np.int64(0)


@jit
def _record_hash(kind, c, lines, block, i) -> np.uint64:
    r = lines[4, i]
    if r <= 0:
        return (np.uint64(kind) + np.uint64(6000011)) * PRIMES[5]
    pos, first = lines[1, i] + lines[0, i], lines[5, i]
    up = _above(block, pos, r, first)
    if kind >= IMAGE_GRADIENT:
        return _image_hash(kind, c, block, pos, first, r, up)
    last = c & np.uint64(0xFF)
    if kind == RECORD:
        v = np.uint64(min(pos % r, 4095) * 512 + up)
        return (v + np.uint64(7700001)) * PRIMES[3]
    if kind == RECORD_2:
        v = np.uint64(up * 512 + _above(block, pos, 2 * r, first)) * np.uint64(256) + last
        return (v + np.uint64(8800003)) * PRIMES[0]
    if kind == RECORD_3:
        left_up = _above(block, pos, r + 1, first)
        right_up = _above(block, pos, r - 1, first)
        v = np.uint64((left_up * 512 + up) * 512 + right_up) * np.uint64(256) + last
        return (v + np.uint64(9900007)) * PRIMES[2]
    if kind == PIXELS:
        # The above-left byte's last 2 pixels and the above-right byte's first 2 (4: none).
        left_up = _above(block, pos, r + 1, first)
        right_up = _above(block, pos, r - 1, first)
        ru = (right_up - 1) >> 6 if right_up > 0 else 4
        lu = (left_up - 1) & 3 if left_up > 0 else 4
        v = np.uint64(((up * 8 + ru) * 8 + lu) * 16) + (last & np.uint64(0xF))
        return (v + np.uint64(1200007)) * PRIMES[1]
    if kind == PIXELS_2:
        v = np.uint64((_above(block, pos, 2 * r, first) * 512 + up) * 4) + (last & np.uint64(3))
        return (v + np.uint64(1600007)) * PRIMES[5]
    return np.uint64(0)


@jit
def _word_hash(kind, c, lines, i) -> np.uint64:
    """The machine-word kinds (``ALIGN_4``, ``SKIP_4``, ``SKIP_1_4``)."""
    pos4 = np.uint64((lines[1, i] + lines[0, i]) & 3)
    last = c & np.uint64(0xFF)
    back4 = (c >> np.uint64(24)) & np.uint64(0xFF)
    if kind == ALIGN_4:
        return ((pos4 << np.uint64(8)) + last + np.uint64(2600011)) * PRIMES[2]
    if kind == SKIP_4:
        back8 = (c >> np.uint64(56)) & np.uint64(0xFF)
        v = (pos4 << np.uint64(16)) + back4 * np.uint64(256) + back8
        return (v + np.uint64(2700013)) * PRIMES[4]
    if kind == SKIP_1_4:
        return (back4 * np.uint64(256) + last + np.uint64(2800019)) * PRIMES[3]
    return np.uint64(0)


@jit
def pixel_rows(c, lines, block, i) -> np.uint64:
    """The pixels around the byte to be coded, packed for ``bit_hash``: bits 0-7 the last
    byte; bits 8-19 the row above, 12 pixels (the 2 nearest left of the byte above, its 8,
    the 2 nearest right of it; the leftmost in the top bit); bits 20-31 the row two above,
    the same way. Pixels of bytes the segment has not coded read as 0, as the first rows
    of a segment have none above them."""
    return _pack_rows(c, lines, block, i, 2, 2)


@jit
def wide_rows(c, lines, block, i) -> np.uint64:
    """The pixels around the byte to be coded, for the wide bit-level kinds (from
    ``BIT_PIXELS_3`` on): bits 0-7 the last byte; then the three rows above, nearest first,
    16 pixels each (the 4 nearest left of the byte above, its 8, the 4 nearest right of
    it; the leftmost in the top bit) at bits 8, 24 and 40. Pixels of bytes the segment has
    not coded read as 0."""
    return _pack_rows(c, lines, block, i, 3, 4)


@jit
def _pack_rows(c, lines, block, i, n_rows, side) -> np.uint64:
    """The last byte in bits 0-7, then ``n_rows`` rows above, each 8 + 2 ``side`` pixels
    wide: the ``side`` nearest pixels of the bytes left and right of the byte above."""
    r = lines[4, i]
    if r <= 0:
        return np.uint64(0)
    pos, first = lines[1, i] + lines[0, i], lines[5, i]
    rows = c & np.uint64(0xFF)
    s = np.uint64(side)
    for k in range(n_rows):
        back = (k + 1) * r
        up = _above(block, pos, back, first)
        left = _above(block, pos, back + 1, first)
        right = _above(block, pos, back - 1, first)
        w = np.uint64(0)
        if up > 0:
            w |= np.uint64(up - 1) << s
        if left > 0:
            w |= (np.uint64(left - 1) & ((np.uint64(1) << s) - np.uint64(1))) << (np.uint64(8) + s)
        if right > 0:
            w |= np.uint64(right - 1) >> (np.uint64(8) - s)
        rows |= w << np.uint64(8 + (8 + 2 * side) * k)
    return rows


@jit
def bit_hash(kind, rows, j, c0) -> np.uint64:
    """The hash of bit-level kind ``kind`` for bit ``j`` (0: the top, the leftmost pixel)
    of the byte around which ``pixel_rows`` packed ``rows``; ``c0`` is 1 followed by the
    byte's ``j`` bits coded so far. Windows are centred on the pixel: the same pixels
    around it give the same context at any bit of the byte."""
    jj = np.uint64(j)
    left = _left_pixels(rows, j, c0)
    if kind >= BIT_PIXELS_3:
        return _wide_hash(kind, rows, jj, left)
    if kind == BIT_PIXELS:
        return (pixel_window(rows, j, c0) + np.uint64(28000057)) * PRIMES[4]
    if kind == BIT_PIXELS_2:
        # Pixel j of a byte is bit 9 - j of its 12-pixel row: centred windows of 5.
        up5 = (rows >> (np.uint64(15) - jj)) & np.uint64(0x1F)
        up5_2 = (rows >> (np.uint64(27) - jj)) & np.uint64(0x1F)
        v = (up5 << np.uint64(11)) | (up5_2 << np.uint64(6)) | (left & np.uint64(0x3F))
        return (v + np.uint64(29000063)) * PRIMES[5]
    return np.uint64(0)


@jit
def _left_pixels(rows, j, c0) -> np.uint64:
    """The 8 pixels left of pixel ``j`` of the byte around which ``pixel_rows`` or
    ``wide_rows`` packed ``rows`` (the byte's bits coded so far, then the last byte's),
    the nearest in bit 0."""
    return ((rows << np.uint64(j)) | np.uint64(c0 - (1 << j))) & np.uint64(0xFF)


@jit
def pixel_window(rows, j, c0) -> np.uint64:
    """The window of ``BIT_PIXELS`` around pixel ``j``, unhashed (12 bits): the 5 pixels
    above it, the 3 two rows above, the 4 to its left, from ``pixel_rows``' ``rows``
    (pixel j of a byte is bit 9 - j of a 12-pixel row, which starts at bit 8 or 20).
    The mixer context ``MIX_PIXELS`` picks its weight set by it."""
    jj = np.uint64(j)
    up5 = (rows >> (np.uint64(15) - jj)) & np.uint64(0x1F)
    up3_2 = (rows >> (np.uint64(28) - jj)) & np.uint64(7)
    left = _left_pixels(rows, j, c0)
    return (up5 << np.uint64(7)) | (up3_2 << np.uint64(4)) | (left & np.uint64(0xF))


@jit
def _wide_hash(kind, rows, jj, left) -> np.uint64:
    """``bit_hash`` of the wide kinds, from ``wide_rows``' three rows and the 8 pixels
    ``left`` of pixel ``jj``. Pixel j of a byte is bit 11 - j of its 16-pixel row: a
    centred window of w pixels starts at bit 11 - j - w // 2."""
    r1 = (rows >> np.uint64(8)) & np.uint64(0xFFFF)
    r2 = (rows >> np.uint64(24)) & np.uint64(0xFFFF)
    r3 = (rows >> np.uint64(40)) & np.uint64(0xFFFF)
    if kind == BIT_PIXELS_3:
        up7 = (r1 >> (np.uint64(8) - jj)) & np.uint64(0x7F)
        up5 = (r2 >> (np.uint64(9) - jj)) & np.uint64(0x1F)
        up3 = (r3 >> (np.uint64(10) - jj)) & np.uint64(7)
        v = (up7 << np.uint64(14)) | (up5 << np.uint64(9)) | (up3 << np.uint64(6))
        return ((v | (left & np.uint64(0x3F))) + np.uint64(30000071)) * PRIMES[2]
    if kind == BIT_PIXELS_4:
        up9 = (r1 >> (np.uint64(7) - jj)) & np.uint64(0x1FF)
        return (((up9 << np.uint64(8)) | left) + np.uint64(31000073)) * PRIMES[3]
    if kind == BIT_PIXELS_5:
        up3 = (r1 >> (np.uint64(10) - jj)) & np.uint64(7)
        up3_2 = (r2 >> (np.uint64(10) - jj)) & np.uint64(7)
        up3_3 = (r3 >> (np.uint64(10) - jj)) & np.uint64(7)
        v = (up3 << np.uint64(8)) | (up3_2 << np.uint64(5)) | (up3_3 << np.uint64(2))
        return ((v | (left & np.uint64(3))) + np.uint64(32000077)) * PRIMES[1]
    return np.uint64(0)


# Mixer contexts: what picks the weight set of each of a configuration's extra mixers
# (``config.Config.mixers``), by a stable id of their own (not context kinds: they select
# weights, not statistics). Each sees the segment's last bytes ``c``, the partial byte
# ``c0`` and bit position ``j``, the column, the match model's expected byte
# (``expected``, -1 when it has none), and the pixels around the byte as ``pixel_rows``
# packs them (``rows``; 0 where the block has no record length).
MIX_CLASSES_2 = 1  # the classes of the last two bytes, the column (0-3) and the bit position
MIX_CLASSES_3 = 2  # the classes of the last three bytes and the bit position
MIX_WORD = 3  # the word's length so far (0-8), the last byte's class, c0's top 5 bits
MIX_ORDER_1 = 4  # the last byte and the partial byte
MIX_EXPECTED = 5  # the match model's expected byte (or none) and the partial byte
# 1-bit bitmaps: where the pixels around are all one colour, the small windows say nearly
# everything; at an edge or a letter's stroke, the wide ones. Centred on the pixel being
# coded, as the bit-level kinds are.
MIX_PIXELS = 6  # the 5 pixels above, the 3 two rows above, the 4 to the left
MIX_PIXELS_NEAR = 7  # the 3 pixels above, the 2 to the left, and the bit position

MIXER_NAMES: dict[int, str] = {
    MIX_CLASSES_2: "classes-2",
    MIX_CLASSES_3: "classes-3",
    MIX_WORD: "word-length",
    MIX_ORDER_1: "order-1",
    MIX_EXPECTED: "expected",
    MIX_PIXELS: "pixels",
    MIX_PIXELS_NEAR: "pixels-near",
}
#: How many weight sets each mixer context selects among.
MIXER_SETS: dict[int, int] = {
    MIX_CLASSES_2: 8 * 8 * 4 * 8,
    MIX_CLASSES_3: 8 * 8 * 8 * 8,
    MIX_WORD: 9 * 8 * 32,
    MIX_ORDER_1: 256 * 256,
    MIX_EXPECTED: 257 * 256,
    MIX_PIXELS: 32 * 8 * 16,
    MIX_PIXELS_NEAR: 8 * 4 * 8,
}


@jit
def byte_class(b) -> int:
    """One of 8 classes of a byte: lower-case letters, upper-case letters, digits, space,
    line feed, non-ASCII, the punctuation that ends a clause (. , ; :), anything else."""
    if 97 <= b <= 122:
        return 0
    if 65 <= b <= 90:
        return 1
    if 48 <= b <= 57:
        return 2
    if b == 32:
        return 3
    if b == 10:
        return 4
    if b >= 128:
        return 5
    if b == 46 or b == 44 or b == 59 or b == 58:
        return 6
    return 7


@jit
def mixer_select(kind, c, c0, j, col, expected, rows) -> int:
    """The weight set (0 .. ``MIXER_SETS[kind]`` - 1) that mixer context ``kind`` picks
    for bit ``j`` of the byte after ``c`` (the segment's last 8 bytes, the latest in the
    low byte; zeros before its first), ``c0`` being 1 followed by the byte's bits so far.
    Returns 0 for an unknown kind (configurations are checked before use)."""
    if kind == MIX_PIXELS:
        return np.int64(pixel_window(rows, j, c0))
    if kind == MIX_PIXELS_NEAR:
        # The 3 pixels above (bits 9 - j - 1 to 9 - j + 1 of the row at bit 8), 2 left.
        up3 = (rows >> (np.uint64(16) - np.uint64(j))) & np.uint64(7)
        near = (up3 << np.uint64(2)) | (_left_pixels(rows, j, c0) & np.uint64(3))
        return np.int64(near) * 8 + j
    b1 = np.int64(c & np.uint64(0xFF))
    if kind == MIX_ORDER_1:
        return b1 * 256 + c0
    if kind == MIX_EXPECTED:
        return (expected + 1) * 256 + c0
    a = byte_class(b1)
    if kind == MIX_WORD:
        n = 0
        for q in range(8):
            if byte_class(np.int64((c >> np.uint64(8 * q)) & np.uint64(0xFF))) > 2:
                break
            n += 1
        return (n * 8 + a) * 32 + (c0 >> 3)
    b = byte_class(np.int64((c >> np.uint64(8)) & np.uint64(0xFF)))
    if kind == MIX_CLASSES_2:
        return ((a * 8 + b) * 4 + min(col, 3)) * 8 + j
    if kind == MIX_CLASSES_3:
        d = byte_class(np.int64((c >> np.uint64(16)) & np.uint64(0xFF)))
        return ((a * 8 + b) * 8 + d) * 8 + j
    return 0
