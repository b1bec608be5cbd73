"""Records: finding a block's record length, the binary preset, and record blocks coded and
decoded through every path (the block header's record length, the record contexts)."""

from __future__ import annotations

import hashlib
import io
import marshal
import os
import struct
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import compress, decompress, numbers, sample_text, walk_blocks
from hypothesis import given, settings
from hypothesis import strategies as st
from test_filters import machine_code

from nncompress import coder, contexts, engine, records
from nncompress import format as fmt
from nncompress.adaptive import StreamState
from nncompress.config import (
    BINARY,
    BINARY_2,
    BINARY_3,
    BINARY_3_MIXERS,
    BINARY_4,
    BINARY_SPARSE_MIXERS,
    BITMAP,
    COLOUR_24,
    COLOUR_32,
    DEFAULT,
    DEFAULT_MIXERS,
    FINE_MAX,
    FINE_TEXT,
    IMAGE_MIXERS,
    MAX_HISTORIES,
    MAX_REFINED,
    MAX_TEXT,
    TEXT_MIXERS,
    TEXT_PRESETS,
    Config,
    like_level,
    preset_of,
    refined,
    slotted,
    with_fine,
    with_histories,
)
from nncompress.contexts import RECORD_KINDS
from nncompress.engine import compress_block, list_stream
from nncompress.levels import LEVELS
from nncompress.model import IntModel

WORD_KINDS = {contexts.ALIGN_4, contexts.SKIP_4, contexts.SKIP_1_4}
NAMES = [b"anchor", b"bolt", b"cable", b"drill", b"eyelet", b"flange", b"gasket", b"hinge"]


def at_default(config: Config) -> Config:
    """What the default level makes of the binary preset ``config`` for a stream:
    ``slotted``, with fine probabilities (presets 37-41)."""
    return with_fine(slotted(config))


def table(rows: int, seed: int = 0) -> bytes:
    """Fixed records of 24 bytes, as a program writes them: an id counting up, a name padded
    to 12 bytes, a price, a quantity and flags."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(rows):
        name = NAMES[int(rng.integers(len(NAMES)))]
        price = float(np.round(rng.gamma(2.0, 20.0), 2))
        qty = int(rng.integers(0, 500))
        out.append(struct.pack("<I12sfHH", 1000 + i, name, price, qty, i % 3))
    return b"".join(out)


def bitmap(width_bytes: int, rows: int, seed: int = 0) -> bytes:
    """A 1-bit picture: each row is the one above with a few changes (edges move)."""
    rng = np.random.default_rng(seed)
    ink = rng.random(width_bytes) < 0.4
    row = np.where(ink, rng.integers(0, 256, width_bytes), 0).astype(np.uint8)
    out = []
    for _ in range(rows):
        row = row.copy()
        for _ in range(int(rng.integers(0, 2 + width_bytes // 20))):
            row[int(rng.integers(width_bytes))] ^= np.uint8(1 << int(rng.integers(8)))
        out.append(row.tobytes())
    return b"".join(out)


# ----------------------------------------------------------------------------- detection
@pytest.mark.parametrize(
    "data, length",
    [
        (table(2000), 24),
        (table(300, 5), 24),
        (bitmap(216, 200), 216),
        (bitmap(1500, 40, 3), 1500),
        (np.arange(20000, dtype="<u2").tobytes(), 2),  # 16-bit samples
        (np.linspace(0, 1, 5000).astype("<f4").tobytes(), 4),  # an array of floats
    ],
)
def test_detect_finds_the_record_length(data: bytes, length: int) -> None:
    assert records.detect(data) == length


@pytest.mark.parametrize(
    "data",
    [
        sample_text(200_000, 1),
        sample_text(5000, 2),
        np.random.default_rng(0).bytes(100_000),
        bytes(100_000),  # a run is no table
        b"",
        table(40),  # under MIN_BYTES
    ],
)
def test_detect_finds_none(data: bytes) -> None:
    assert records.detect(data) == 0


def test_detect_prefers_the_record_to_its_multiples() -> None:
    data = table(4000, 7)
    assert records.detect(data) == 24
    assert records.detect(data[10:]) == 24  # wherever the block starts in the table


def screenshot(width: int, strokes: int) -> bytes:
    """An 8-bit gray picture of about 200 KB: flat boxes on a light background, whose
    vertical edges make the byte where a row changes value equal to the one ``width``
    back and to the one above-right (``width - 1`` back) alike, and ``strokes`` strokes
    slanting down to the left, one pixel a row, which make distance ``width - 1`` common
    enough to be a candidate. Computed with a generator of our own."""
    rand = numbers(13)
    height = max(200, 210_000 // width)
    img = bytearray([250]) * (width * height)
    for _ in range(40):
        x0, y0 = rand(width - 40), rand(height - 60)
        w, h, v = 10 + rand(30), 20 + rand(40), rand(200)
        for y in range(y0, y0 + h):
            img[y * width + x0 : y * width + x0 + w] = bytes([v]) * w
    for _ in range(strokes):
        x0, y0, v = 30 + rand(width - 30), rand(height - 30), 200 + rand(40)
        for t in range(25):
            img[(y0 + t) * width + x0 - t] = v
    return bytes(img)


@pytest.mark.parametrize("width", [301, 640, 1000, 3024])
def test_detect_finds_a_screenshots_row_not_the_pixel_above_right(width: int) -> None:
    """The row and the row less one pixel share the bytes equal to the one they point
    back to about as much; the row is the distance that separates them far more often,
    and the counts decide."""
    data = screenshot(width, 2)
    assert records.detect(data) == width
    a = np.frombuffer(data[: records.SAMPLE], dtype=np.uint8)
    fresh, counts = records._distances(a, records.SEARCH_MAX)
    assert counts[width] > counts[width - 1] > 0
    assert records._best_record(a, fresh, [width - 1, width], counts) == width
    swapped = counts.copy()
    swapped[[width - 1, width]] = counts[[width, width - 1]]
    assert records._best_record(a, fresh, [width - 1, width], swapped) == width - 1


def near_repeats(row: int, above: int, n: int = 200_000) -> bytes:
    """Bytes of which ``above`` percent repeat the one a ``row`` back and 70% one 2 to 14
    bytes back (as a bitmap of text repeats its glyphs' bytes along a row), the rest
    new: short distances between equal bytes outnumber the row's. Computed with a
    generator of our own, so the bytes never change."""
    rand = numbers(5)
    out = bytearray()
    for i in range(n):
        c = rand(100)
        if i >= row and c < above:
            out.append(out[i - row])
        elif i >= 40 and c < above + 70:
            out.append(out[i - 2 - rand(13)])
        else:
            out.append(rand(256))
    return bytes(out)


def test_detect_finds_a_record_that_shorter_distances_outnumber() -> None:
    """The most frequent distances between equal bytes are all short here, and none is
    a record length; the row stands out from its neighbours' counts and is found. Without
    the row's repeats, nothing is."""
    assert records.detect(near_repeats(216, 10)) == 216
    assert records.detect(near_repeats(216, 0)) == 0


def thin_page(lines: int = 60, width: int = 216) -> bytes:
    """A 1-bit page of glyphs in strokes one pixel wide: 400 glyphs of random pixels, 8 by
    10, each row of a glyph often the one above, in lines of text 14 rows high. Its
    pixels agree across a byte's edge no more often than within it, so it passes no
    bitmap test. Computed with a generator of our own."""
    rand = numbers(11)
    glyphs = []
    for _ in range(400):
        rows, row = [], rand(256)
        for _ in range(10):
            if rand(3) == 0:
                row = rand(256)
            rows.append(row)
        glyphs.append(rows)
    out = bytearray()
    for _ in range(lines):
        text = [glyphs[rand(len(glyphs))] if rand(6) else None for _ in range(width)]
        for y in range(14):
            out += bytes(g[y] if g is not None and y < 10 else 0 for g in text)
    return bytes(out)


def test_a_bitmap_of_thin_strokes_takes_the_bitmap_preset(tiny_model: IntModel) -> None:
    """A 1-bit page that ``looks_like_bitmap`` misses has long records, so its stream
    would take the 8-bit image preset; a trial of both on its start (without the network)
    finds the bitmap preset smaller, and the stream takes it. A smooth 8-bit picture's
    trial keeps the image preset."""
    data = thin_page()
    assert not records.looks_like_bitmap(data) and records.detect(data) == 216
    assert records.config_for(TEXT_MIXERS, data) == records.IMAGE_MIXERS_CONFIG
    blob = compress(data, tiny_model)
    assert list_stream(io.BytesIO(blob)).config == at_default(records.BITMAP_MIXERS_CONFIG)
    assert decompress(blob, tiny_model) == data
    assert engine._bitmap_config(tiny_model, smooth_image(400, 120)) is None


def test_segments_keep_rows_together() -> None:
    n = 1 << 20
    default = fmt.segment_count(n)
    assert records.segments(n, default) == default  # text
    long = records.BINARY_SEGMENT_BYTES
    assert long == 32768
    assert records.segments(n, default, 24) == n // long  # binary: 32 KiB, 1,365 rows
    assert records.segments(n, default, 0, True) == n // long  # x86 code
    assert records.segments(n, default, records.IMAGE_RECORD - 1) == n // long
    image = records.IMAGE_SEGMENT_BYTES
    assert image == 16384
    assert records.segments(n, default, 216) == n // image  # 75 rows of a bitmap
    assert records.segments(n, default, 216, True) == n // long  # ...but x86 code
    assert records.segments(n, default, 1100) == n // (16 * 1100)  # 16 long rows
    assert records.segments(n, default, 2100) == n // (16 * 2100)
    assert records.segments(n, default, 100_000) == fmt.fewest_segments(n)
    small = 3000
    assert records.segments(small, fmt.segment_count(small), 1000) == fmt.fewest_segments(small)
    # Small blocks keep MIN_BINARY_SEGMENTS (the default count at most) where rows allow.
    few = records.MIN_BINARY_SEGMENTS
    assert few == 8
    assert records.segments(small, fmt.segment_count(small), 0, True) == few
    assert records.segments(small, 2, 0, True) == 2
    assert records.segments(38_000, fmt.segment_count(38_000), 12) == few
    assert records.segments(50_000, fmt.segment_count(50_000), 1000) == 50_000 // 16_000


def test_the_binary_preset_is_for_streams_that_start_with_records_or_code() -> None:
    assert records.config_for(DEFAULT, table(1000)) == BINARY_3
    assert records.config_for(DEFAULT, sample_text(20_000)) == DEFAULT
    assert records.config_for(DEFAULT, machine_code(50_000)) == BINARY_3  # code, no records
    # Long records (a bitmap's rows) keep the preset without the machine-word contexts.
    wide = bitmap(records.IMAGE_RECORD, 200)
    assert records.detect(wide) == records.IMAGE_RECORD
    assert records.config_for(DEFAULT, wide) == BINARY_2
    narrow = bitmap(records.IMAGE_RECORD - 16, 200)
    assert records.detect(narrow) == records.IMAGE_RECORD - 16
    assert records.config_for(DEFAULT, narrow) == BINARY_3
    other = BINARY.__class__(contexts=(1, 2, 3))
    assert records.config_for(other, table(1000)) == other  # a caller's choice is kept
    assert records.config_for(BINARY, table(1000)) == BINARY
    # Each binary preset is the one before it and more contexts, all reading the records.
    assert BINARY.contexts[: len(DEFAULT.contexts)] == DEFAULT.contexts
    assert BINARY_2.contexts[: len(BINARY.contexts)] == BINARY.contexts
    expected = RECORD_KINDS - contexts.BIT_KINDS - contexts.IMAGE_KINDS - contexts.COLOUR_KINDS
    assert set(BINARY_2.contexts) - set(DEFAULT.contexts) == expected
    assert BINARY_2.network_weight == BINARY.network_weight
    assert BINARY_3.contexts[: len(BINARY_2.contexts)] == BINARY_2.contexts
    assert set(BINARY_3.contexts) - set(BINARY_2.contexts) == WORD_KINDS
    assert BINARY_3.network_weight == BINARY.network_weight
    assert BINARY_4.contexts[: len(BINARY_2.contexts)] == BINARY_2.contexts
    assert set(BINARY_4.contexts) - set(BINARY_2.contexts) == {
        contexts.BIT_PIXELS,
        contexts.BIT_PIXELS_2,
    }
    assert contexts.BIT_KINDS <= RECORD_KINDS
    assert BINARY_4.network_weight == BINARY.network_weight
    # The bitmaps' preset with mixers: every bit-level kind, the record kinds but the
    # 8-bit image ones, few others.
    assert RECORD_KINDS - contexts.IMAGE_KINDS - contexts.COLOUR_KINDS <= set(BITMAP.contexts)
    assert BITMAP.mixers == (contexts.MIX_PIXELS, contexts.MIX_PIXELS_NEAR)
    assert BITMAP.network_weight == BINARY.network_weight


def picture(width_bytes: int = 64, rows: int = 300) -> bytes:
    """A 1-bit picture with runs of pixels, as scanned pages and plots have them: filled
    discs and strokes like lines of text (``scripts/make_golden.py``'s, any size)."""
    from test_golden import make_golden

    return make_golden.picture_data(8 * width_bytes, rows)


def gray_image(width: int = 300, rows: int = 200) -> bytes:
    """An 8-bit grayscale image: smooth shading and noise."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:rows, 0:width]
    img = 128 + 60 * np.sin(x / 23) * np.cos(y / 31) + rng.normal(0, 1, (rows, width))
    return np.clip(img, 0, 255).astype(np.uint8).tobytes()


def test_a_1_bit_bitmap_gets_the_bit_level_pixels() -> None:
    data = picture()
    assert records.looks_like_bitmap(data)
    assert records.detect(data) == 64
    assert records.config_for(DEFAULT, data) == BINARY_4
    # A level whose text preset has mixers: the bitmaps' own, short bitmaps too (their
    # two weight tables are small).
    assert records.config_for(TEXT_MIXERS, data) == BITMAP
    assert records.config_for(DEFAULT_MIXERS, data[:6000]) == BITMAP


@pytest.mark.parametrize(
    "data",
    [
        table(1000),
        sample_text(20_000),
        machine_code(50_000),
        np.linspace(0, 1, 5000).astype("<f4").tobytes(),
        gray_image(),
        np.repeat(np.frombuffer(gray_image(), dtype=np.uint8), 3).tobytes(),  # 24-bit
        bytes(50_000),  # blank: nothing to tell
        bytes([0, 255] * 20_000),
    ],
)
def test_other_data_does_not_look_like_a_1_bit_bitmap(data: bytes) -> None:
    assert not records.looks_like_bitmap(data)


def test_an_8_bit_image_keeps_the_byte_pixels() -> None:
    data = gray_image()
    assert records.detect(data) == 300
    assert records.config_for(DEFAULT, data) == BINARY_2


def _pixels(block: np.ndarray, r: int) -> np.ndarray:
    """The block's pixels as [rows, 8 r] (the leftmost pixel of a byte is its top bit)."""
    return np.unpackbits(block[: len(block) // r * r].reshape(-1, r), axis=1)


def _bit_hash(kind: int, block: np.ndarray, pos: int, j: int, r: int) -> int:
    """Bit-level context ``kind`` for bit ``j`` of the byte at ``pos`` (a segment from 0)."""
    rows = _hash(kind, bytearray(block.tobytes()), pos, r)
    c0 = (1 << j) | (int(block[pos]) >> (8 - j))
    return int(contexts.bit_hash(kind, np.uint64(rows), j, c0))


@pytest.mark.parametrize(
    "kind, windows",
    [
        # (rows up: the pixel offsets seen, left and right of the one being coded)
        (contexts.BIT_PIXELS, {0: range(-4, 0), 1: range(-2, 3), 2: range(-1, 2)}),
        (contexts.BIT_PIXELS_2, {0: range(-6, 0), 1: range(-2, 3), 2: range(-2, 3)}),
        (
            contexts.BIT_PIXELS_3,
            {0: range(-6, 0), 1: range(-3, 4), 2: range(-2, 3), 3: range(-1, 2)},
        ),
        (contexts.BIT_PIXELS_4, {0: range(-8, 0), 1: range(-4, 5)}),
        (
            contexts.BIT_PIXELS_5,
            {0: range(-2, 0), 1: range(-1, 2), 2: range(-1, 2), 3: range(-1, 2)},
        ),
    ],
)
def test_the_bit_level_pixels_see_a_window_centred_on_the_pixel(
    kind: int, windows: dict[int, range]
) -> None:
    """Flipping one pixel changes the context of bit j exactly when the pixel is in the
    kind's window around pixel j: left of it in its row, or in the rows above."""
    _check_window(lambda block, j: _bit_hash(kind, block, 80, j, 24), kind, windows)


def _check_window(context, seed: int, windows: dict[int, range]) -> None:
    """``context(block, j)``, of bit j of the byte at column 8 of row 3 in rows of 24
    bytes, changes when one pixel flips exactly where ``windows`` says: by rows up (0:
    the pixels left in the byte's own row), the offsets from pixel j it sees."""
    r, pos = 24, 80
    block = np.random.default_rng(seed).integers(0, 256, 120, dtype=np.uint8)
    for j in range(8):
        before = context(block, j)
        for up in (0, 1, 2, 3):
            for dx in range(-9, 10 if up else 0):
                x = 8 * (pos % r) + j + dx
                where = (pos // r - up) * r + x // 8
                flipped = block.copy()
                flipped[where] ^= np.uint8(0x80 >> (x % 8))
                seen = context(flipped, j) != before
                assert seen == (dx in windows.get(up, ())), (j, up, dx)


def _mixer_set(kind: int, block: np.ndarray, pos: int, j: int, r: int) -> int:
    """The weight set pixel mixer ``kind`` picks for bit j of the byte at ``pos``."""
    data = bytearray(block.tobytes())
    rows = _hash(contexts.BIT_PIXELS, data, pos, r)  # pixel_rows, as the coder passes it
    c0 = (1 << j) | (int(block[pos]) >> (8 - j))
    last8 = np.uint64(int.from_bytes(bytes(data[pos - 8 : pos]), "big"))
    return int(contexts.mixer_select(kind, last8, c0, j, 0, -1, np.uint64(rows)))


@pytest.mark.parametrize(
    "kind, windows",
    [
        (contexts.MIX_PIXELS, {0: range(-4, 0), 1: range(-2, 3), 2: range(-1, 2)}),
        (contexts.MIX_PIXELS_NEAR, {0: range(-2, 0), 1: range(-1, 2)}),
    ],
)
def test_the_pixel_mixers_see_a_window_centred_on_the_pixel(
    kind: int, windows: dict[int, range]
) -> None:
    _check_window(lambda block, j: _mixer_set(kind, block, 80, j, 24), kind, windows)


@pytest.mark.parametrize("kind", [*sorted(contexts.BIT_KINDS), -contexts.MIX_PIXELS])
def test_the_bit_level_pixels_are_the_same_at_any_bit_of_a_byte(kind: int) -> None:
    """The picture moved one pixel right gives bit j + 1 the context bit j had (a negative
    kind: that pixel mixer's weight set)."""
    r, pos = 24, 80
    block = np.random.default_rng(3).integers(0, 256, 120, dtype=np.uint8)
    pixels = _pixels(block, r)
    moved = np.packbits(np.roll(pixels, 1, axis=1), axis=1).reshape(-1)
    of = _bit_hash if kind > 0 else lambda k, *a: _mixer_set(-k, *a)
    for j in range(7):
        assert of(kind, moved, pos, j + 1, r) == of(kind, block, pos, j, r)


def test_the_bit_level_pixels_know_only_what_the_segment_has_coded() -> None:
    """Rows above a segment's start read as blank, not as another segment's bytes."""
    r, pos = 24, 30
    block = np.random.default_rng(4).integers(0, 256, 120, dtype=np.uint8)
    data = bytearray(block.tobytes())
    full = _hash(contexts.BIT_PIXELS, data, pos, r)
    late = _hash(contexts.BIT_PIXELS, data, pos, r, first=pos - 2)
    assert full >> 8 != 0 and late >> 8 == 0


def _hash(
    kind: int,
    block: bytearray,
    pos: int,
    r: int,
    first: int = 0,
    expected: int = -1,
    bucket: int = 0,
) -> int:
    """Context ``kind`` of a segment that starts at offset ``first`` of ``block``, about to
    code the byte at ``pos``, in records of ``r`` bytes, the match model expecting
    ``expected`` (-1: nothing) after a match of length class ``bucket``."""
    lines = np.zeros((6, 1), dtype=np.int64)
    lines[0, 0], lines[1, 0], lines[2, 0], lines[4, 0], lines[5, 0] = 0, pos, -1, r, first
    last8 = int.from_bytes(bytes(block[max(pos - 8, 0) : pos]), "big")
    words = np.zeros((3, 1), dtype=np.uint64)
    data = np.frombuffer(bytes(block), dtype=np.uint8)
    h = contexts.context_hash(kind, np.uint64(last8), words, lines, data, 0, expected, bucket)
    return int(h)


@pytest.mark.parametrize(
    "kind, offset, bits, seen",
    [
        # PIXELS: the byte above, the 2 pixels of each byte beside it nearest to it, the
        # last byte's 4 pixels nearest to the one being coded (pixels: top bit leftmost).
        (contexts.PIXELS, 24, 0xFF, True),  # above
        (contexts.PIXELS, 25, 0x03, True),  # above-left, its last two pixels
        (contexts.PIXELS, 25, 0xFC, False),
        (contexts.PIXELS, 23, 0xC0, True),  # above-right, its first two pixels
        (contexts.PIXELS, 23, 0x3F, False),
        (contexts.PIXELS, 1, 0x0F, True),  # the last byte's last four pixels
        (contexts.PIXELS, 1, 0xF0, False),
        (contexts.PIXELS, 48, 0xFF, False),  # two rows above
        # PIXELS_2: the bytes one and two rows above, the last byte's last two pixels.
        (contexts.PIXELS_2, 24, 0xFF, True),
        (contexts.PIXELS_2, 48, 0xFF, True),
        (contexts.PIXELS_2, 1, 0x03, True),
        (contexts.PIXELS_2, 1, 0xFC, False),
        (contexts.PIXELS_2, 25, 0xFF, False),
    ],
)
def test_the_pixel_contexts_see_the_neighbouring_pixels(
    kind: int, offset: int, bits: int, seen: bool
) -> None:
    """Flipping ``bits`` of the byte ``offset`` back changes the context only where the
    context is meant to see those pixels."""
    rng = np.random.default_rng(kind + offset)
    block = bytearray(rng.integers(0, 256, 100, dtype=np.uint8).tobytes())
    pos, r = 80, 24
    before = _hash(kind, block, pos, r)
    for bit in range(8):
        if bits >> bit & 1:
            flipped = bytearray(block)
            flipped[pos - offset] ^= 1 << bit
            assert (_hash(kind, flipped, pos, r) != before) == seen, f"bit {bit}"


@pytest.mark.parametrize(
    "kind, offsets",
    [
        (contexts.ALIGN_4, {1}),
        (contexts.SKIP_4, {4, 8}),
        (contexts.SKIP_1_4, {1, 4}),
    ],
)
def test_the_machine_word_contexts_see_their_bytes(kind: int, offsets: set[int]) -> None:
    """A machine-word context changes with the bytes it names (``offsets`` back) and with
    the offset mod 4 where it reads that, and with nothing else."""
    rng = np.random.default_rng(kind)
    block = bytearray(rng.integers(0, 256, 100, dtype=np.uint8).tobytes())
    pos = 80
    before = _hash(kind, block, pos, 0)
    for back in range(1, 9):
        flipped = bytearray(block)
        flipped[pos - back] ^= 0x21
        assert (_hash(kind, flipped, pos, 0) != before) == (back in offsets), back
    # The same bytes before another offset: mod 4 matters to the two that read it.
    assert _hash(kind, bytearray(4) + block, pos + 4, 0) == before
    shifted = _hash(kind, bytearray(1) + block, pos + 1, 0)
    assert (shifted == before) == (kind == contexts.SKIP_1_4)


@pytest.mark.parametrize(
    "kind, seen",
    [
        (contexts.SKIP_1, {2: 0xFF}),
        (contexts.SKIP_1_3, {2: 0xFF, 4: 0xFF}),
        (contexts.NIBBLES_3, {1: 0xF0, 2: 0xF0, 3: 0xF0}),
        (contexts.EXPECTED, {}),
    ],
)
def test_the_sparse_contexts_see_their_bits(kind: int, seen: dict[int, int]) -> None:
    """A sparse context changes with the bits it names (``seen``: bytes back -> their
    bits it reads) and with nothing else: not the offset, not the match model, except
    ``EXPECTED``, which reads nothing but the match model."""
    rng = np.random.default_rng(kind)
    block = bytearray(rng.integers(0, 256, 100, dtype=np.uint8).tobytes())
    pos = 80
    before = _hash(kind, block, pos, 0)
    for back in range(1, 9):
        for bit in range(8):
            flipped = bytearray(block)
            flipped[pos - back] ^= 1 << bit
            changed = _hash(kind, flipped, pos, 0) != before
            assert changed == bool(seen.get(back, 0) >> bit & 1), (back, bit)
    assert _hash(kind, bytearray(1) + block, pos + 1, 0) == before
    assert _hash(kind, block, pos, 24) == before  # no record length read
    matches = ((-1, 0), (0, 5), (7, 5), (7, 6), (7, 5 + 24))  # + 24: lent by another segment
    by_match = {_hash(kind, block, pos, 0, expected=e, bucket=b) for e, b in matches}
    assert len(by_match) == (len(matches) if kind == contexts.EXPECTED else 1)


def smooth_image(width: int = 300, rows: int = 200, seed: int = 0) -> bytes:
    """An 8-bit grayscale picture of shading and grain, as a photograph has: a pixel is
    seldom equal to the one above it, but close to it."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:width]
    shade = 60 + 0.4 * x + 0.3 * y + 0.002 * (x - width / 2) ** 2 - 0.003 * (y - 90) ** 2
    grain = rng.integers(-5, 6, (rows, width))
    return np.clip(shade + grain, 0, 255).astype(np.uint8).tobytes()


def colour_image(width: int = 420, rows: int = 200, pixel: int = 3, seed: int = 0) -> bytes:
    """A 24-bit (``pixel`` 3) or 32-bit (4) picture as a screenshot has it: rectangles of
    colours, some pixels slightly off, in rows padded to 4 bytes as a BMP file has them."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((rows, width, pixel), dtype=np.int64)
    pixels[:] = rng.integers(0, 256, pixel)
    for _ in range(60):
        y0, x0 = rng.integers(0, rows), rng.integers(0, width)
        h, w = rng.integers(5, rows // 2), rng.integers(5, width // 2)
        pixels[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, pixel)
    pixels += rng.integers(-2, 3, pixels.shape) * (rng.random((rows, width, 1)) < 0.3)
    out = np.zeros((rows, -(-width * pixel // 4) * 4), dtype=np.uint8)
    out[:, : width * pixel] = np.clip(pixels, 0, 255).reshape(rows, width * pixel)
    return out.tobytes()


@pytest.mark.parametrize(
    "pixel, width, seed", [(3, 420, 0), (4, 420, 1), (3, 301, 2), (4, 333, 3), (3, 1500, 4)]
)
def test_colour_images_have_rows_behind_their_pixels(pixel: int, width: int, seed: int) -> None:
    """A 24- or 32-bit image's bytes repeat by the pixel, which the search finds first;
    in a stream of images the row is found behind it, and the encoder's trial looks at
    the row (``row_candidate``), also where it is longer than other records are looked
    for (1,500 pixels: 4,500 bytes), give or take a pixel (in a picture of flat
    rectangles the pixel above and the one above and beside it agree alike). Data of
    4-byte records without a row keep the record."""
    image = colour_image(width, pixel=pixel, seed=seed)
    row = -(-width * pixel // 4) * 4
    assert records.detect(image) == pixel
    found = records.detect(image, rows=True)
    assert found in (row - pixel, row, row + pixel)
    assert found == row or width > 1000
    assert records.row_candidate(image) == (pixel, found)
    walk = np.cumsum(np.random.default_rng(3).normal(0, 1, 60_000)).astype("<f4").tobytes()
    assert records.detect(walk) == 4 and records.row_candidate(walk) == (4, 0)
    assert records.detect(walk, rows=True) == 4


@pytest.mark.parametrize(
    "pixel, preset, block", [(3, COLOUR_24, 128 * 1024), (4, COLOUR_32, 168_000)]
)
def test_colour_images_take_the_colour_preset_in_rows(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch, pixel: int, preset: Config, block: int
) -> None:
    """A 24- or 32-bit image's stream takes the colour preset of its pixel size where the
    trial on its start says so, and its blocks the row as their record length: smaller
    than the preset of short records in pixels, which it had before; the round trip holds
    either way."""
    image = colour_image(pixel=pixel)
    blob = compress(image, tiny_model, block_size=block)
    assert decompress(blob, tiny_model) == image
    assert fmt.read_header(io.BytesIO(blob))[0].config == at_default(preset)
    blocks = list_stream(io.BytesIO(blob)).blocks
    assert {(b.method, b.record) for b in blocks} == {(fmt.METHOD_MIXED, 420 * pixel)}
    monkeypatch.setattr(engine, "_image_config", lambda model, data: None)
    before = compress(image, tiny_model, block_size=block)
    assert decompress(before, tiny_model) == image
    assert fmt.read_header(io.BytesIO(before))[0].config == at_default(BINARY_SPARSE_MIXERS)
    assert {b.record for b in list_stream(io.BytesIO(before)).blocks} == {pixel}
    assert len(blob) < len(before)


def test_a_picture_that_starts_all_one_colour_is_trusted_to_its_row(tiny_model: IntModel) -> None:
    """Where the trial's bytes are one colour (a screenshot's empty top), both presets
    code them alike, and the row found behind the pixel decides."""
    image = colour_image(pixel=3, rows=300)
    flat = bytes(image[:3]) * (records.IMAGE_TRIAL_BYTES // 3 + 1000)
    data = flat + image
    assert records.row_candidate(data) == (3, 1260)
    assert engine._image_config(tiny_model, data) == COLOUR_24


def test_colour_kinds_read_the_same_channel() -> None:
    """The 24-bit colour kinds see the same channel of the pixels around (W a pixel back,
    N a row back, NW and NE a row and a pixel away) and the previous channel's own moves
    (the bytes 1, a pixel and 1, a row and 1 back): bytes anywhere else change none of
    their hashes, and the pixel to the left changes every one. In a row no longer than
    the pixel (a block of a colour stream where no row was found) they read no NE, which
    would be the byte being coded."""
    row, pixel = 12, 3
    pos = 2 * row + 2 * pixel
    a = (100 + np.arange(64) * 7 % 40).astype(np.uint8)  # no clamping at 0 or 255
    read = {pixel, 2 * pixel, row, row + pixel, row - pixel, 1, pixel + 1, row + 1}
    b = a.copy()
    for q in range(pos + 1):
        if pos - q not in read:
            b[q] ^= 0x55
    left = a.copy()
    left[pos - pixel] += 16
    lines = np.zeros((6, 1), dtype=np.int64)
    lines[0, 0] = pos  # column, with the line at the block's start
    words = np.zeros((3, 1), dtype=np.uint64)

    def hashes(block: np.ndarray, r: int) -> list[int]:
        lines[4, 0] = r
        c = np.uint64(int.from_bytes(bytes(block[pos - 8 : pos]), "big"))
        kinds = range(contexts.COLOUR_3, contexts.COLOUR_3 + contexts.COLOUR_KINDS_EACH)
        return [int(contexts.context_hash(k, c, words, lines, block, 0, -1, 0)) for k in kinds]

    assert hashes(a, row) == hashes(b, row)
    assert all(x != y for x, y in zip(hashes(a, row), hashes(left, row), strict=True))
    coded = a.copy()
    coded[pos] ^= 0x55
    assert hashes(a, pixel) == hashes(coded, pixel)
    assert records.ROW_CONFIGS == (IMAGE_MIXERS, COLOUR_24, COLOUR_32)


@pytest.mark.parametrize("width, seed", [(300, 0), (450, 1), (301, 2)])
def test_smooth_data_has_records_where_equal_bytes_show_none(width: int, seed: int) -> None:
    """A photograph's rows (or the row and a pixel: the shading runs along it) are found by
    bytes close to the one R back, where too few are equal to it to tell; not a multiple
    of the row."""
    image = smooth_image(width, seed=seed)
    a = np.frombuffer(image, dtype=np.uint8)
    longest = min(records.SEARCH_MAX, len(image) // records.MIN_ROWS)
    assert records._equal_record(a, *records._distances(a, longest)) == 0
    assert records.detect(image) in (width - 1, width, width + 1)
    assert records.config_for(TEXT_MIXERS, image) == IMAGE_MIXERS


def test_text_and_noise_are_not_smooth() -> None:
    """Text is not searched for smooth records, and has none; nor has noise."""
    for text in (sample_text(60_000), ansi_colour_text()):
        t = np.frombuffer(text, dtype=np.uint8)
        assert records._texty(t) and records.smooth_record(t, 3750) == 0
    assert records.detect(sample_text(60_000)) == 0
    noise = np.random.default_rng(2).integers(0, 256, 60_000, dtype=np.uint8)
    assert not records._texty(noise) and records.smooth_record(noise, 3750) == 0


@pytest.mark.parametrize(
    "kind, seen",
    [
        (contexts.IMAGE_GRADIENT, {1, 40, 41}),
        (contexts.IMAGE_QUANT, {1, 39, 40, 41}),
        (contexts.IMAGE_AVERAGE, {1, 39, 40}),
        (contexts.IMAGE_SLOPE, {1, 2, 40}),
    ],
)
def test_the_image_contexts_see_their_neighbours(kind: int, seen: set[int]) -> None:
    """In rows of 40 bytes, an image kind changes with the bytes it reads (``seen``: how
    far back) and with no other, and knows where the segment has no row above."""
    rng = np.random.default_rng(kind)
    block = bytearray(rng.integers(96, 128, 200, dtype=np.uint8).tobytes())
    pos, r = 150, 40
    before = _hash(kind, block, pos, r)
    for back in range(1, 2 * r + 2):
        flipped = bytearray(block)
        flipped[pos - back] ^= 0x10
        assert (_hash(kind, flipped, pos, r) != before) == (back in seen), back
    # The row above not coded by this segment: not the same as a row of zeros.
    zeros = bytearray(block)
    for back in seen - {1, 2}:
        zeros[pos - back] = 0
    assert _hash(kind, block, pos, r, first=pos - 30) != _hash(kind, zeros, pos, r)
    assert _hash(kind, block, pos, 0) != before  # no record length: a constant


def test_images_and_wide_tables_get_the_image_preset_with_the_mixers() -> None:
    """Records of 64 bytes or more take preset 14 where the level's text preset has extra
    mixers, preset 3 where it has not or the stream is short; preset 14 is preset 9 and
    the four image kinds."""
    image = smooth_image()
    assert records.config_for(DEFAULT_MIXERS, image) == IMAGE_MIXERS
    assert records.config_for(DEFAULT, image) == BINARY_2
    assert records.config_for(TEXT_MIXERS, image[:6000]) == BINARY_2
    assert IMAGE_MIXERS.contexts[: len(BINARY_2.contexts)] == BINARY_2.contexts
    assert set(IMAGE_MIXERS.contexts) - set(BINARY_2.contexts) == contexts.IMAGE_KINDS
    assert contexts.IMAGE_KINDS <= RECORD_KINDS
    assert IMAGE_MIXERS.mixers == TEXT_MIXERS.mixers


def test_the_strongest_levels_text_preset_gives_way_to_the_binary_ones() -> None:
    """--max's text preset (15) is a text preset like 7 and 11: text keeps it, short text
    takes preset 1, and code, images and bitmaps the binary presets with the mixers."""
    text = sample_text(20_000)
    assert len(text) >= records.NEARBY_MIN
    assert records.config_for(MAX_TEXT, text) == MAX_TEXT
    assert records.config_for(MAX_TEXT, text[:4000]) == DEFAULT
    assert records.config_for(MAX_TEXT, machine_code(30_000)) == BINARY_SPARSE_MIXERS
    assert records.config_for(MAX_TEXT, smooth_image()) == IMAGE_MIXERS
    assert replace(MAX_TEXT, final_shift=16, apm_rate=6, network_weight=3 << 14) == DEFAULT_MIXERS


def test_the_strongest_level_gives_binary_streams_its_refinements(tiny_model: IntModel) -> None:
    """--max's text preset (42) has bit histories, slot groups, the mixers' warm-up, a
    match context of 2 bytes and fine probabilities, and a binary stream of --max takes
    the binary preset the default level would, with them (43: preset 13's; 45 for a 1-bit
    bitmap, preset 12's). The default level's binary streams take the same but for bit
    histories (37: ``slotted`` with fine probabilities), --wide's none of them (a device
    runs its presets), and short streams, whose presets have no mixers, go without; each
    archive decodes."""
    assert LEVELS["max"].config == FINE_MAX and FINE_MAX in TEXT_PRESETS
    assert LEVELS["default"].config == FINE_TEXT and FINE_TEXT in TEXT_PRESETS
    code = machine_code(30_000)
    for data, level, expected in [
        (code, "max", with_fine(refined(BINARY_SPARSE_MIXERS))),
        (code, "default", at_default(BINARY_SPARSE_MIXERS)),
        (code, "wide", BINARY_SPARSE_MIXERS),
        (code[:6000], "max", BINARY_3),
        (sample_text(20_000), "max", FINE_MAX),
        (sample_text(20_000), "default", FINE_TEXT),
    ]:
        blob = compress(data, tiny_model, level=level)
        info = list_stream(io.BytesIO(blob))
        assert info.config == expected, level
        assert fmt.Header(64, 1, "", expected).pack()[5] == preset_of(expected)
        assert decompress(blob, tiny_model) == data
    assert preset_of(with_histories(BINARY_SPARSE_MIXERS)) == 20
    assert preset_of(with_histories(BITMAP)) == 22
    assert preset_of(refined(BINARY_SPARSE_MIXERS)) == 26
    assert preset_of(refined(BITMAP)) == 28
    assert preset_of(slotted(BINARY_SPARSE_MIXERS)) == 31
    assert preset_of(slotted(BITMAP)) == 33
    assert slotted(BITMAP) == replace(refined(BITMAP), histories=0)
    assert slotted(refined(BITMAP)) == refined(BITMAP) == slotted(slotted(refined(BITMAP)))
    assert like_level(BITMAP, MAX_HISTORIES) == with_histories(BITMAP)
    assert like_level(BITMAP, TEXT_MIXERS) == BITMAP
    assert like_level(BITMAP, TEXT_MIXERS, slots=True) == slotted(BITMAP)
    assert like_level(TEXT_MIXERS, TEXT_MIXERS, slots=True) == TEXT_MIXERS
    assert refined(MAX_REFINED) == MAX_REFINED == like_level(MAX_REFINED, MAX_REFINED)
    # Fine probabilities, where the level's text preset has them (36, 42).
    assert [preset_of(with_fine(refined(c))) for c in (BINARY_SPARSE_MIXERS, BITMAP)] == [43, 45]
    assert [preset_of(at_default(c)) for c in (BINARY_SPARSE_MIXERS, BITMAP)] == [37, 39]
    assert like_level(BITMAP, FINE_TEXT, slots=True) == at_default(BITMAP)
    assert like_level(BITMAP, FINE_TEXT) == with_fine(BITMAP)
    assert like_level(FINE_TEXT, FINE_TEXT, slots=True) == FINE_TEXT
    assert like_level(BITMAP, FINE_MAX) == with_fine(refined(BITMAP))
    assert like_level(FINE_MAX, FINE_MAX) == FINE_MAX == with_fine(refined(FINE_MAX))


def test_only_the_bit_level_kinds_are_hashed_bit_by_bit() -> None:
    """The coder hashes ``BIT_KINDS`` by ``bit_hash`` and every other kind, including the
    ones numbered after them, from its byte hash and the partial byte."""
    from nncompress.adaptive import _bit_kind

    assert {k for k in contexts.NAMES if _bit_kind(k)} == contexts.BIT_KINDS


def test_code_gets_the_sparse_preset_with_the_mixers() -> None:
    """x86 code, records and compiled Python take preset 13 where the level's text preset
    has extra mixers, preset 4 where it has not or the stream is short; the preset is
    preset 8 and the four sparse and match kinds."""
    code = machine_code(30_000)
    assert records.config_for(TEXT_MIXERS, code) == BINARY_SPARSE_MIXERS
    assert records.config_for(DEFAULT_MIXERS, code) == BINARY_SPARSE_MIXERS
    assert records.config_for(DEFAULT, code) == BINARY_3
    assert records.config_for(TEXT_MIXERS, code[:5000]) == BINARY_3
    assert BINARY_SPARSE_MIXERS.contexts[: len(BINARY_3.contexts)] == BINARY_3.contexts
    extra = set(BINARY_SPARSE_MIXERS.contexts) - set(BINARY_3.contexts)
    assert extra == {contexts.SKIP_1, contexts.SKIP_1_3, contexts.NIBBLES_3, contexts.EXPECTED}
    assert replace(BINARY_SPARSE_MIXERS, contexts=BINARY_3.contexts) == BINARY_3_MIXERS


def test_the_pixel_contexts_know_what_the_segment_has_not_coded() -> None:
    """Above a segment's first row there is nothing: a value of its own, not a byte."""
    block = bytearray(100)
    assert _hash(contexts.PIXELS, block, 10, 24) != _hash(contexts.PIXELS, block, 30, 24)
    assert _hash(contexts.PIXELS_2, block, 30, 24) != _hash(contexts.PIXELS_2, block, 50, 24)


# ----------------------------------------------------------------------------- coding
def test_a_table_stream_uses_the_record_preset(tiny_model: IntModel) -> None:
    data = table(1500) + sample_text(6000, 3) + bitmap(100, 120)
    blob = compress(data, tiny_model, block_size=12_000)
    assert decompress(blob, tiny_model) == data
    header, _ = fmt.read_header(io.BytesIO(blob))
    assert header.config == at_default(BINARY_SPARSE_MIXERS)  # the level's text preset's mixers too
    blocks = [bh for _, bh, _ in walk_blocks(blob)]
    mixed = [bh.record for bh in blocks if bh.method == fmt.METHOD_MIXED]
    assert mixed and mixed[0] == 24
    assert [b.record for b in list_stream(io.BytesIO(blob)).blocks] == [b.record for b in blocks]


def compiled_python() -> bytes:
    """Compiled Python (``marshal``): binary data of no kind the encoder names (no record
    length, no x86 code), as object files of other machines are."""
    source = (Path(coder.__file__).parent / "engine.py").read_text(encoding="utf-8")
    return marshal.dumps(compile(source, "engine.py", "exec"))


def ansi_colour_text() -> bytes:
    """Text with ANSI colour escapes on every match, as ``grep --color=always`` writes it:
    the most control bytes text has (about 13%)."""
    text = sample_text(20_000, 6).decode()
    lines = [text[i : i + 60] for i in range(0, len(text), 60)]
    red, plain = "\x1b[01;31m\x1b[K", "\x1b[m\x1b[K"
    return "".join(
        f"{red}{line[:4]}{plain}{line[4 : 12 + i % 29]}\n" for i, line in enumerate(lines)
    ).encode()


def message_catalogue(strings: int) -> bytes:
    """A message catalogue as gettext writes it: a header, two tables of (length, offset)
    pairs, then the original strings and their translations, each ending in a NUL."""
    text = sample_text(60 * strings, 8).decode()
    originals = [text[i * 60 : i * 60 + 20 + i % 37] for i in range(strings)]
    translations = [s.upper()[::-1] for s in originals]
    body, lengths, offsets = b"", [], []
    start = 28 + 16 * strings
    for s in originals + translations:
        lengths.append(len(s))
        offsets.append(start + len(body))
        body += s.encode() + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, strings, 28, 28 + 8 * strings, 0, 0)
    pairs = b"".join(struct.pack("<II", n, o) for n, o in zip(lengths, offsets, strict=True))
    return header + pairs + body


def test_text_with_binary_parts_looks_mixed() -> None:
    """A message catalogue's tables make it neither text nor binary, and so does a
    terminal's colour escapes; text, binary data and short blocks are not mixed."""
    catalogue = message_catalogue(800)
    assert records.looks_mixed(catalogue) and not records.looks_binary(catalogue)
    assert records.looks_mixed(ansi_colour_text())
    noise = np.random.default_rng(2).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    others = (sample_text(20_000), compiled_python(), table(1000), catalogue[:1000], noise)
    for other in others:
        assert not records.looks_mixed(other)


def test_binary_data_of_no_kind_looks_binary() -> None:
    data = compiled_python()
    assert records.looks_binary(data) and not records.detect(data)
    assert records.looks_binary(table(1000))
    # Bytes of every value alike (compressed data) have 11% of control bytes: they are
    # left to the text path, where storing wins anyway.
    noise = np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
    assert not records.looks_binary(noise)
    for text in (sample_text(20_000), ansi_colour_text(), bytes(100), b"\x00" * 1023):
        assert not records.looks_binary(text)
    assert records.looks_binary(b"\x00" * 1024)
    # It takes the binary preset; short, without the mixers.
    assert records.config_for(TEXT_MIXERS, data) == BINARY_SPARSE_MIXERS
    assert records.config_for(TEXT_MIXERS, data[:5000]) == BINARY_3


def test_binary_blocks_of_no_kind_go_without_the_network(tiny_model: IntModel) -> None:
    """Compiled Python: the binary preset, every mixed block without the network, in one
    segment, no record length; the text after it keeps the network."""
    data = compiled_python()[:40_000] + sample_text(20_000, 7)
    blob = compress(data, tiny_model, block_size=20_000)
    assert decompress(blob, tiny_model) == data
    assert fmt.read_header(io.BytesIO(blob))[0].config == at_default(BINARY_SPARSE_MIXERS)
    blocks = list_stream(io.BytesIO(blob)).blocks
    assert [b.method for b in blocks] == [fmt.METHOD_MIXED] * 3
    assert [(b.flat, b.segments, b.record, b.x86) for b in blocks[:2]] == [(True, 1, 0, False)] * 2
    assert not blocks[2].flat


def test_text_streams_keep_the_text_preset(tiny_model: IntModel, small_tables) -> None:
    data = sample_text(20_000, 4) + table(1000)
    blob = compress(data, tiny_model, block_size=20_000)
    assert fmt.read_header(io.BytesIO(blob))[0].config == FINE_TEXT
    assert all(bh.record == 0 for _, bh, _ in walk_blocks(blob))  # (not written: unused)
    assert decompress(blob, tiny_model) == data


def test_record_contexts_pay_on_a_table(tiny_model: IntModel, small_tables) -> None:
    """The point of it all: a table codes smaller with the record contexts."""
    data = table(3000, 2)
    plain, _ = coder.encode_block_mixed(tiny_model, data, StreamState(DEFAULT, len(data)))
    with_records, _ = coder.encode_block_mixed(
        tiny_model, data, StreamState(BINARY, len(data)), record=24
    )
    assert len(with_records) < 0.9 * len(plain)


def test_compress_block_writes_the_length_it_used(tiny_model: IntModel, small_tables) -> None:
    data = bitmap(216, 100, 1)
    state = StreamState(BINARY, len(data))
    choice = compress_block(tiny_model, data, (fmt.METHOD_MIXED,), state)
    assert (choice.method, choice.record, choice.x86) == (fmt.METHOD_MIXED, 216, False)
    assert choice.flat  # binary: without the network
    segments = choice.param
    n, default = len(data), fmt.segment_count(len(data))
    rows = records.segments(n, default, 216, flat=True)
    assert rows == records.segments(n, default, 216) > 1  # an image keeps its rows' segments
    assert segments in (rows, 1)  # ...or codes smaller in one (engine._if_smaller)
    back = coder.decode_block_mixed(
        tiny_model,
        choice.payload,
        n,
        segments,
        StreamState(BINARY, n),
        record=216,
        flat=True,
    )
    assert back == data


@settings(max_examples=25, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=3000),
    record=st.integers(fmt.MIN_RECORD, 4000),
    segments=st.integers(1, 12),
)
def test_any_record_length_round_trips(
    tiny_model: IntModel, data: bytes, record: int, segments: int
) -> None:
    """The record contexts read only bytes a segment has coded, whatever the length (longer
    than a segment, than the block) and the layout."""
    segments = min(segments, len(data))
    state = StreamState(BINARY, 4096)
    payload, _ = coder.encode_block_mixed(tiny_model, data, state, None, segments, False, record)
    out = coder.decode_block_mixed(
        tiny_model, payload, len(data), segments, StreamState(BINARY, 4096), None, False, record
    )
    assert out == data


def test_the_wrong_record_length_is_caught(tiny_model: IntModel) -> None:
    """A record length damaged in the header decodes other bytes, which the check catches."""
    data = table(600, 4)
    blob = bytearray(compress(data, tiny_model))
    (at, bh, _) = next(x for x in walk_blocks(bytes(blob)) if x[1].record)
    head = bh.pack(len(data))
    where = bytes(blob).index(head, at)
    assert head[-1] == 24
    blob[where + len(head) - 1] = 25
    with pytest.raises(fmt.FormatError):
        decompress(bytes(blob), tiny_model)


def test_verbose_says_what_each_block_was_taken_for(
    model_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-v`` names the preset and what the mixed blocks were taken for; ``-lv`` each block."""
    from test_cli import run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.bin").write_bytes(table(1500, 6))
    r = run(["-v", "-k", "t.bin"])
    assert r.exit_code == 0, r.stderr
    blocks = list_stream(io.BytesIO((tmp_path / "t.bin.nnc").read_bytes())).blocks
    kind = "records of 24 bytes, without the network"
    assert [(b.method, b.kind) for b in blocks] == [(fmt.METHOD_MIXED, kind)]
    assert f"mixed ({kind}): 1 block" in r.stderr
    assert (
        "mixed method: preset 37 (binary with sparse and match contexts, slot groups and"
        " fine probabilities)" in r.stderr
    )
    alone = next(x for x in r.stderr.splitlines() if "bpb of each model alone" in x)
    assert "network" not in alone and "record " in alone  # no network ran
    r = run(["-lv", "t.bin.nnc"])
    assert r.exit_code == 0
    assert "segments, records of 24 bytes" in r.stdout


# ----------------------------------------------------------------------------- redundant text
def package_log(lines: int) -> bytes:
    """A package manager's log: timestamps counting up, a package at a time going through
    its states, with versions of any length (so the lines are of no fixed length)."""
    rng = np.random.default_rng(3)
    pkgs = ["libc6", "python3-minimal", "zlib1g", "libssl3", "openssh-server", "vim-tiny"]
    pkgs += ["tzdata", "git", "curl", "libgcc-s1", "ca-certificates", "nginx-common"]
    states = ["unpacked", "half-configured", "installed", "half-installed", "config-files"]
    out = []
    pkg = version = ""
    for i in range(lines):
        if i % 6 == 0:
            pkg = pkgs[int(rng.integers(len(pkgs)))]
            version = ".".join(str(v) for v in rng.integers(0, 300, int(rng.integers(1, 5))))
        t = f"2026-12-02 10:{i // 60 % 60:02d}:{i % 60:02d}"
        if i % 6 == 5:
            out.append(f"{t} startup packages configure\n")
        else:
            out.append(f"{t} status {states[i % 5]} {pkg}:amd64 {version}\n")
    return "".join(out).encode()


def test_redundant_text_takes_long_segments(
    tiny_model: IntModel, small_tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text that zlib's fastest level squeezes below REDUNDANT_RATIO (a log) is coded
    without the network in one segment; with the network (``FLAT_BLOCKS`` off, the
    encoder of older archives), in segments of REDUNDANT_SEGMENT_BYTES, at least
    MIN_REDUNDANT_SEGMENTS of them; other text keeps the default count, binary blocks
    their own rule, --max one segment."""
    floor = records.MIN_REDUNDANT_SEGMENTS
    assert records.segments(100_000, fmt.segment_count(100_000), redundant=True) == floor
    monkeypatch.setattr(records, "MIN_REDUNDANT_SEGMENTS", 16)  # a short log suffices
    log = package_log(800)
    n = len(log)
    assert records.looks_redundant(log) and not records.detect(log)  # text, not records
    assert not records.looks_redundant(sample_text(n, 1))
    default = fmt.segment_count(n)
    assert records.segments(n, default) == default
    assert records.segments(n, default, redundant=True) == records.MIN_REDUNDANT_SEGMENTS
    big = 4 << 20
    assert records.segments(big, fmt.segment_count(big), redundant=True) == big // 8192
    assert records.segments(n, 1, redundant=True) == 1  # --max
    assert records.segments(big, fmt.fewest_segments(big), redundant=True) == 4
    assert records.segments(n, default, 24) == records.segments(n, default, 24, redundant=True)
    assert records.segments(n, default, redundant=True, flat=True) == 1
    blob = compress(log, tiny_model, block_size=n)
    (block,) = list_stream(io.BytesIO(blob)).blocks
    assert (block.method, block.segments, block.flat) == (fmt.METHOD_MIXED, 1, True)
    assert decompress(blob, tiny_model) == log
    monkeypatch.setattr(records, "FLAT_BLOCKS", False)
    blob = compress(log, tiny_model, block_size=n)
    (block,) = list_stream(io.BytesIO(blob)).blocks
    expected = (fmt.METHOD_MIXED, records.MIN_REDUNDANT_SEGMENTS, False)
    assert (block.method, block.segments, block.flat) == expected
    assert decompress(blob, tiny_model) == log


def test_short_binary_streams_go_without_the_extra_mixers() -> None:
    """A level whose text preset has extra mixers gives binary streams of at least
    NEARBY_MIN bytes the binary preset with them, shorter ones the preset without them
    (their weights take longer to set up than such a stream to code)."""
    data = table(1000, 3)  # 24,000 bytes of records
    assert records.config_for(TEXT_MIXERS, data) == BINARY_SPARSE_MIXERS
    short = data[: records.NEARBY_MIN - 1]
    assert records.config_for(TEXT_MIXERS, short) == BINARY_3
    assert records.config_for(TEXT_MIXERS, short[:100]) == DEFAULT  # too short for records


# --------------------------------------------------------- a block of two record lengths
def two_kinds(n_start: int, rows: int, seed: int = 0) -> bytes:
    """16-bit samples (records of 2 bytes) for ``n_start`` bytes, then a table of 24-byte
    records: a block whose start shows one record length and most of it another."""
    samples = (np.arange(n_start // 2) * 7 % 5000).astype("<u2").tobytes()
    return samples + table(rows, seed)


def test_alternative_is_the_record_most_of_a_block_shows() -> None:
    chunk = records.CHUNK
    data = two_kinds(2 * chunk, 6 * chunk // 24)
    assert records.SAMPLE <= 2 * chunk  # the start alone is what detect reads
    assert records.detect(data) == 2
    assert records.alternative(data, 2) == 24
    assert records.alternative(data, 24) is None  # the block's own
    half = two_kinds(4 * chunk, 4 * chunk // 24)
    assert records.alternative(half, 2) is None  # no majority: half and half
    assert records.alternative(data[: 3 * chunk], 2) is None  # too short to ask
    assert records.alternative(table(8 * chunk // 24), 24) is None


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Chunks of 8 KiB and a detection sample of 16 KiB: blocks of 64 KiB behave as blocks
    of 1 MiB do, at a sixteenth of the coding time."""
    monkeypatch.setattr(records, "CHUNK", 1 << 13)
    monkeypatch.setattr(records, "SAMPLE", 1 << 14)
    return 1 << 16


def test_a_block_mostly_of_another_record_length_is_coded_with_it(
    tiny_model: IntModel, small_tables, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table after the samples codes smaller with its own record length; the block
    after it is coded from the statistics that coding left (the decoder's)."""
    block = small_chunks
    first = two_kinds(block // 4, 3 * block // 4 // 24, 1)
    assert len(first) == block and records.detect(first) == 2
    data = first + table(2000, 2)
    blob = compress(data, tiny_model, block_size=block)
    assert decompress(blob, tiny_model) == data
    blocks = list_stream(io.BytesIO(blob)).blocks
    assert [(b.method, b.flat, b.record) for b in blocks] == [(fmt.METHOD_MIXED, True, 24)] * 2
    monkeypatch.setattr(records, "alternative", lambda data, record, rows=False: None)
    start_only = compress(data, tiny_model, block_size=block)
    assert [b.record for b in list_stream(io.BytesIO(start_only)).blocks] == [2, 24]
    assert len(blob) < len(start_only)


def test_an_alternative_that_codes_larger_is_dropped(
    tiny_model: IntModel, small_tables, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table offered a record length it does not have keeps its own, and the archive is
    the one coded without the offer: the statistics are the first coding's."""
    data = table(2 * small_chunks // 24 + 500, 3)
    offered: list[int] = []

    def seven(block: bytes, record: int, rows: bool = False) -> int:
        offered.append(record)
        return 7

    monkeypatch.setattr(records, "alternative", seven)
    blob = compress(data, tiny_model, block_size=small_chunks)
    assert offered == [24, 24, 24]
    assert [b.record for b in list_stream(io.BytesIO(blob)).blocks] == [24] * 3
    monkeypatch.setattr(records, "alternative", lambda block, record, rows=False: None)
    assert compress(data, tiny_model, block_size=small_chunks) == blob
    assert decompress(blob, tiny_model) == data


def test_the_strongest_level_tries_the_record_length_and_the_network_from_one_start(
    tiny_model: IntModel, small_tables, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At ``max`` a binary block whose chunks show another record length is coded that way
    too, and then with the network: every coding of the block starts from the statistics
    before it, as the decoder's do, whichever of them wins."""
    block = small_chunks
    data = table(block // 24, 2) + two_kinds(block // 4, 3 * block // 4 // 24, 1)
    starts: list[tuple[int, bool, str]] = []
    real = engine.encode_block_mixed

    def watched(model, data, state, progress, segments, pipelined, record, flat):  # type: ignore[no-untyped-def]
        tables = getattr(state, "ctx_stats", None)
        seen = "" if tables is None else hashlib.sha256(tables.tobytes()).hexdigest()
        starts.append((record, flat, seen))
        return real(model, data, state, progress, segments, pipelined, record, flat)

    monkeypatch.setattr(engine, "encode_block_mixed", watched)
    blob = compress(data, tiny_model, block_size=block, level="max")
    assert decompress(blob, tiny_model) == data
    second = [s for s in starts if s[2]]  # the codings of the second block
    ways = sorted((record, flat) for record, flat, _ in second)
    assert ways in ([(2, True), (24, False), (24, True)], [(2, False), (2, True), (24, True)])
    assert len({seen for _, _, seen in second}) == 1


@pytest.mark.parametrize("kind", ["image", "two record lengths"])
def test_a_second_coding_runs_beside_the_first_and_changes_nothing(
    kind: str,
    tiny_model: IntModel,
    small_tables,
    small_chunks: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An image's block in its rows' segments and then in one, and a block of two record
    lengths coded with each: with a second core the second coding runs in a thread of its
    own beside the first, and the archive is the one a single thread writes."""
    block = small_chunks
    if kind == "image":
        data = bitmap(256, 3 * block // 256, 1)
    else:
        data = two_kinds(block // 4, 3 * block // 4 // 24, 1) + table(2000, 2)
    threads: list[str] = []
    real = engine.encode_block_mixed

    def watched(*args):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(engine, "encode_block_mixed", watched)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    archives = []
    for n in (1, 2):
        out = io.BytesIO()
        engine.compress_stream(io.BytesIO(data), out, tiny_model, block, threads=n)
        archives.append(out.getvalue())
        beside = [t for t in threads if t.startswith("nncompress-beside")]
        assert bool(beside) == (n == 2), threads
        threads.clear()
    assert archives[0] == archives[1]
    assert decompress(archives[1], tiny_model) == data


@pytest.mark.parametrize("who", ["the block is lost", "the caller gives up"])
def test_a_second_coding_beside_stops_when_it_is_not_wanted(
    who: str, tiny_model: IntModel, small_tables
) -> None:
    """A coding beside the first stops at its next step where the first coding failed
    (``abandon``) or the thread's caller gave up (``coder.stopping``), rather than
    running on to its end (seconds a block, which Ctrl-C would wait for)."""
    data = table(1 << 13, 4)  # 192 KiB: some 48 steps of the compiled loop
    start = StreamState(BINARY, len(data)).snapshot()
    caller = threading.Event()
    with coder.stopping(caller):
        second = engine._Second(tiny_model, data, start, (1, False, 24, True), True)
    if who == "the block is lost":
        second.abandon()
    else:
        caller.set()
    with pytest.raises(coder.Cancelled):
        second.result()
    # Told nothing, it codes the block as the thread that asked would have.
    piece = data[:5000]
    fresh = StreamState(BINARY, len(piece)).snapshot()
    payload, _ = engine._Second(tiny_model, piece, fresh, (1, False, 24, True), True).result()
    state = StreamState(BINARY, len(piece))
    back = coder.decode_block_mixed(tiny_model, payload, len(piece), 1, state, record=24, flat=True)
    assert back == piece


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_blocks_of_every_kind_in_one_stream_round_trip_at_every_level(
    level: str, tiny_model: IntModel, small_tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table, a block of two record lengths, x86 code, a 1-bit picture, text, a run,
    noise and a copy of the first block, one after another in one stream: each block's
    trials (another record length, an image's segments, the network at ``max``, LZMA2,
    storing, repeats and copies) start from the state the blocks before it left, and the
    decoder must follow whichever each kept. Blocks of 32 KiB in chunks of 4 KiB behave
    as blocks of 1 MiB do."""
    monkeypatch.setattr(records, "CHUNK", 1 << 12)
    monkeypatch.setattr(records, "SAMPLE", 1 << 13)
    block = 1 << 15
    rng = np.random.default_rng(5)
    walk = np.cumsum(rng.integers(-300, 300, block // 8)).astype("<u2").tobytes()
    first = table(block // 24 + 1, 5)[:block]
    kinds = [
        first,
        (walk + table(block // 24, 6))[:block],  # samples, then mostly a table
        machine_code(block, 7),
        bitmap(256, block // 256, 8),
        sample_text(block, 9),
        bytes(block),
        rng.bytes(block),
        first,
    ]
    assert all(len(k) == block for k in kinds)
    tried: list[tuple[int, bool]] = []  # the second codings: record length, without network
    real = engine._Second

    def second(model, data, start, how, parallel):  # type: ignore[no-untyped-def]
        tried.append((how[2], how[3]))
        return real(model, data, start, how, parallel)

    monkeypatch.setattr(engine, "_Second", second)
    data = b"".join(kinds)
    blob = compress(data, tiny_model, block_size=block, level=level)
    assert decompress(blob, tiny_model) == data
    assert len(list_stream(io.BytesIO(blob)).blocks) == len(kinds)
    if fmt.METHOD_MIXED in LEVELS[level].methods:
        network = LEVELS[level].network_trial  # (max: binary blocks with the network too)
        assert (24, True) in tried  # the second block with the table's record length
        assert (256, not network) in tried  # the picture in one segment, or at max (where
        # it is one segment) with the network
        assert ((24, False) in tried) == network


def test_codings_without_the_network_leave_the_blas_threads_alone(
    tiny_model: IntModel, small_tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block without the network runs no BLAS, so it does not limit BLAS's threads: two
    such codings side by side (``engine._Second``) would set and restore the process's
    limit over each other, and could leave it at one thread."""

    def limited() -> None:
        raise AssertionError("BLAS limited for a coding without the network")

    monkeypatch.setattr(coder, "_one_blas_thread", limited)
    data = bitmap(256, 200, 2)
    segments = records.segments(len(data), fmt.segment_count(len(data)), 256, flat=True)
    assert segments > 1  # in rows' segments: the lockstep loop, not the one-segment run
    payload, _ = coder.encode_block_mixed(
        tiny_model, data, StreamState(IMAGE_MIXERS, len(data)), None, segments, False, 256, True
    )
    back = coder.decode_block_mixed(
        tiny_model, payload, len(data), segments, StreamState(IMAGE_MIXERS, len(data)),
        record=256, flat=True,
    )  # fmt: skip
    assert back == data
