"""The ``.nnc`` container, format 1: exact layout, round trips of every record, frames, the
index, concatenation, random access, and the decoder's behaviour on anything that is not a
well-formed archive.

The safety rule is that damaged input ends in ``FormatError`` (or ``ModelError`` for a model
problem) and never in another exception or in silently wrong output. These tests check it
exhaustively on small archives: every truncation, every single bit flip.
"""

from __future__ import annotations

import dataclasses
import io
import os
import random
import re
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    CUSTOM,
    compress,
    decode_or_damage,
    decompress,
    header_size,
    lookup_for,
    memory_model,
    sample_text,
    set_segment_bytes,
    walk_blocks,
)
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nncompress import adaptive, contexts, engine, levels, records, repeats, torchmix, zoo
from nncompress import format as fmt
from nncompress.config import (
    BINARY,
    BINARY_2,
    BINARY_3,
    BINARY_4,
    BINARY_SPARSE_MIXERS,
    BITMAP,
    DEFAULT,
    DEFAULT_2,
    FINE_MAX,
    FINE_TEXT,
    IMAGE_MIXERS,
    MAX_HISTORIES,
    MAX_REFINED,
    MAX_TEXT,
    MIXERS,
    PRESETS,
    TEXT_MIXERS,
    Config,
    ConfigError,
)
from nncompress.engine import StreamEncoder, StreamInfo, decompress_stream, list_stream
from nncompress.levels import LEVELS, Level
from nncompress.model import IntModel, ModelError
from nncompress.reader import ArchiveReader

#: A registry number the shipped models do not use (tests register the tiny model there).
TINY_NUMBER = 3

MODEL_REFS = st.one_of(
    st.just((fmt.MODEL_NONE, "")),
    st.tuples(st.integers(1, 14), st.just("")),
    st.tuples(st.just(fmt.MODEL_HASH), st.binary(min_size=8, max_size=8).map(bytes.hex)),
)
CONFIGS = st.builds(
    Config,
    contexts=st.lists(
        st.sampled_from(sorted(contexts.NAMES)), min_size=1, max_size=32, unique=True
    ).map(tuple),
    mix_shifts=st.tuples(st.integers(8, 24), st.integers(8, 24), st.integers(8, 24)),
    final_shift=st.integers(8, 24),
    apm_rate=st.integers(1, 12),
    table_bits=st.integers(12, 22),
    match_bits=st.integers(12, 24),
    network_weight=st.integers(0, 65535),
    match_probes=st.integers(0, 8),
    mixers=st.lists(st.sampled_from(sorted(contexts.MIXER_NAMES)), max_size=5, unique=True).map(
        tuple
    ),
)
DAMAGE = (fmt.FormatError, ModelError)


def _random_bytes(n: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _check(head: bytes, raw: bytes, prev: int) -> bytes:
    return struct.pack("<I", zlib.crc32(head + raw, prev))


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch, tiny_model: IntModel) -> int:
    """The tiny model as shipped model number TINY_NUMBER."""
    monkeypatch.setitem(zoo.REGISTRY, TINY_NUMBER, ("tiny-test", tiny_model.sha256))
    return TINY_NUMBER


def _custom_level(monkeypatch: pytest.MonkeyPatch, config: Config) -> str:
    """A level whose blocks take the mixed method under ``config``."""
    monkeypatch.setitem(LEVELS, "custom", Level("custom", (fmt.METHOD_MIXED,), config=config))
    return "custom"


# ----------------------------------------------------------------------------- layout
def test_empty_stream_is_six_bytes(tiny_model: IntModel) -> None:
    blob = compress(b"", tiny_model)
    assert blob == b"NNC\x01\x00\x00" == fmt.Header(0).pack()
    assert decompress(blob) == b""  # no model needed
    info = list_stream(io.BytesIO(blob))
    assert (info.raw_len, info.archive_len, info.streams) == (0, 6, 1)
    assert info.blocks == [] and info.frames == []


def test_one_byte_stream_is_twelve_bytes(tiny_model: IntModel) -> None:
    """Magic, descriptor (no model: a one-block stream coded without it names none), block
    size 1; then one full stored block that ends the stream, and its check, chained from
    frame 0's seed."""
    blob = compress(b"x", tiny_model)
    header = fmt.MAGIC + b"\x00\x01"
    desc = fmt.METHOD_STORED | fmt.END_STREAM << 2 | 1 << 4
    assert desc == 0x18
    seed = fmt.frame_seed(header, 0, 0)
    assert blob == header + bytes([desc]) + b"x" + _check(bytes([desc]), b"x", seed)
    assert blob[-4:] == bytes.fromhex("ad016995")  # (pinned: a silent change of the rule fails)
    assert len(blob) == 12
    assert decompress(blob) == b"x"


@pytest.mark.parametrize("frame", [0, 1, 2, 127, 128, 300, 1 << 40])
def test_frame_seed_layout(frame: int) -> None:
    """A frame's check chain starts from the CRC32 of the stream's header bytes continued
    over the frame's number and its offset in the stream's decoded bytes, as varints:
    every frame of a stream has its own seed, which also depends on where it starts."""
    header = fmt.Header(4096, 1).pack()
    offset = frame * 4096
    seed = fmt.frame_seed(header, frame, offset)
    assert seed == zlib.crc32(fmt.varint(frame) + fmt.varint(offset), zlib.crc32(header))
    assert seed != zlib.crc32(header)
    assert seed != fmt.frame_seed(header, frame + 1, offset)
    assert seed != fmt.frame_seed(header, frame, offset + 1)
    assert seed != fmt.frame_seed(fmt.Header(4096, 2).pack(), frame, offset)


@pytest.mark.parametrize(
    "header, raw",
    [
        (fmt.Header(0), b"\x00\x00"),
        (fmt.Header(300), b"\x00\xac\x02"),
        (fmt.Header(1 << 20, 1), b"\x01\x80\x80\x40"),
        (fmt.Header(4096, 14), b"\x0e\x80\x20"),
        (
            fmt.Header(127, fmt.MODEL_HASH, "0123456789abcdef"),
            b"\x0f" + bytes.fromhex("0123456789abcdef") + b"\x7f",
        ),
        (fmt.Header(5, 1, "", DEFAULT), b"\x01\x05"),  # the default preset: no byte
        (
            fmt.Header(128, 2, "", CUSTOM),
            bytes([0x22, len(CUSTOM.pack())]) + CUSTOM.pack() + b"\x80\x01",
        ),
        (fmt.Header(5, fmt.MODEL_NONE, "", CUSTOM), b"\x00\x05"),  # no model: no configuration
    ],
)
def test_header_layout(header: fmt.Header, raw: bytes) -> None:
    """Byte-level check of headers against the spec, so a silent layout change fails."""
    assert header.pack() == fmt.MAGIC + raw
    got, got_raw = fmt.read_header(io.BytesIO(header.pack()))
    assert got_raw == header.pack()
    assert (got.block_size, got.model, got.model_prefix) == (
        header.block_size,
        header.model,
        header.model_prefix,
    )


def test_preset_configuration_written_out_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A configuration has one writing: a preset's number, never the preset written out
    (so a configuration that becomes a preset makes old archives of it unreadable only if
    they were written wrongly)."""
    raw = fmt.MAGIC + b"\x21" + bytes([len(CUSTOM.pack())]) + CUSTOM.pack() + b"\x40"
    assert fmt.Header(64, 1, "", CUSTOM).pack() == raw
    assert fmt.read_header(io.BytesIO(raw))[0].config == CUSTOM
    monkeypatch.setitem(PRESETS, 2, CUSTOM)
    with pytest.raises(fmt.FormatError, match="a preset configuration written out"):
        fmt.read_header(io.BytesIO(raw))
    assert fmt.Header(64, 1, "", CUSTOM).pack() == fmt.MAGIC + b"\x11\x02\x40"


@pytest.mark.parametrize(
    "header",
    [
        fmt.Header(64, -1),
        fmt.Header(64, 16),
        fmt.Header(-1, 1),
        fmt.Header(fmt.MAX_BLOCK + 1, 1),
        fmt.Header(fmt.MAX_BLOCK + 1),
        fmt.Header(64, fmt.MODEL_HASH),  # model 15 without its hash prefix
        fmt.Header(64, fmt.MODEL_HASH, "ab" * 5),  # a prefix of 5 bytes
        fmt.Header(64, fmt.MODEL_HASH, "AB" * 4),  # not lowercase
        fmt.Header(64, fmt.MODEL_HASH, "ab" * 9),
        fmt.Header(64, 1, "ab" * 8),  # a registered model with a hash prefix
        fmt.Header(64, fmt.MODEL_NONE, "ab" * 8),
    ],
)
def test_header_pack_refuses_what_no_reader_would_read_back(header: fmt.Header) -> None:
    """A header that cannot be written as it is raises ValueError instead of packing into
    bytes that read back as another header (or that no reader accepts)."""
    with pytest.raises(ValueError):
        header.pack()


def test_preset_configuration_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A released preset other than the default is named by its number in one byte."""
    released = [(2, BINARY), (3, BINARY_2), (4, BINARY_3), (5, BINARY_4), (6, DEFAULT_2)]
    with_mixers = [(7, DEFAULT_2), (8, BINARY_3), (9, BINARY_2), (10, BINARY_4), (11, DEFAULT)]
    released += [(n, dataclasses.replace(c, mixers=MIXERS)) for n, c in with_mixers]
    released += [(12, BITMAP), (13, BINARY_SPARSE_MIXERS), (14, IMAGE_MIXERS)]
    max_text = dataclasses.replace(
        DEFAULT, mixers=MIXERS, final_shift=18, apm_rate=5, network_weight=1 << 15
    )
    released += [(15, max_text)]
    for number, kind in ((16, contexts.COLOUR_3), (17, contexts.COLOUR_4)):
        colour = (*IMAGE_MIXERS.contexts, *range(kind, kind + 5))
        released += [(number, dataclasses.replace(IMAGE_MIXERS, contexts=colour))]
    wide = dataclasses.replace(DEFAULT_2, mixers=MIXERS, table_bits=24, match_bits=24)
    released += [(18, wide), (19, dataclasses.replace(max_text, histories=1))]
    binary = (BINARY_SPARSE_MIXERS, IMAGE_MIXERS, BITMAP, dict(released)[16], dict(released)[17])
    released += [(20 + i, dataclasses.replace(c, histories=1)) for i, c in enumerate(binary)]
    refined = dict(histories=1, slot_ways=4, warmup=1, match_min=2, mix_shifts=(14, 14, 14))
    released += [(25, dataclasses.replace(max_text, final_shift=19, **refined))]
    released += [
        (26 + i, dataclasses.replace(c, final_shift=17, **refined)) for i, c in enumerate(binary)
    ]
    slotted = dict(refined, histories=0)
    released += [
        (31 + i, dataclasses.replace(c, final_shift=17, **slotted)) for i, c in enumerate(binary)
    ]
    # 36-47: the default level's presets (7, 31-35) and --max's (25-30) with fine ones.
    released += [(36, dataclasses.replace(dict(released)[7], fine=1))]
    released += [(37 + i, dataclasses.replace(dict(released)[31 + i], fine=1)) for i in range(5)]
    released += [(42 + i, dataclasses.replace(dict(released)[25 + i], fine=1)) for i in range(6)]
    for number, config in released:
        named = fmt.MAGIC + bytes([0x11, number, 0x40])
        assert fmt.Header(64, 1, "", config).pack() == named
        assert fmt.read_header(io.BytesIO(named))[0].config == config
    assert [n for n, _ in released] == list(range(2, 48))
    raw = fmt.MAGIC + b"\x11\x30\x40"
    with pytest.raises(fmt.FormatError, match="unknown mixed-method preset 48"):
        fmt.read_header(io.BytesIO(raw))
    monkeypatch.setitem(PRESETS, 48, CUSTOM)
    assert fmt.Header(64, 1, "", CUSTOM).pack() == raw
    assert fmt.read_header(io.BytesIO(raw)) == (fmt.Header(64, 1, "", CUSTOM), raw)


@pytest.mark.parametrize(
    "block, block_size, raw",
    [
        (fmt.BlockHeader(fmt.METHOD_STORED, 100, 100), 4096, b"\x00\x64"),
        (fmt.BlockHeader(fmt.METHOD_STORED, 4096, 4096, 0, fmt.END_FRAME), 4096, b"\x14"),
        # A repeat block (bit 5 of a stored block's descriptor): its period's length.
        (fmt.BlockHeader(fmt.METHOD_STORED, 100, 1, fmt.STORED_REPEAT), 4096, b"\x20\x64\x01"),
        # A copy block (bit 6): no payload, the distance back in its frame.
        (
            fmt.BlockHeader(fmt.METHOD_STORED, 100, 0, fmt.STORED_COPY, distance=300),
            4096,
            b"\x40\x64\xac\x02",
        ),
        (
            fmt.BlockHeader(
                fmt.METHOD_STORED, 4096, 0, fmt.STORED_COPY, fmt.END_STREAM, distance=1
            ),
            4096,
            b"\x58\x01",
        ),
        (
            fmt.BlockHeader(fmt.METHOD_STORED, 4096, 300, fmt.STORED_REPEAT, fmt.END_STREAM),
            4096,
            b"\x38\xac\x02",
        ),
        (
            fmt.BlockHeader(fmt.METHOD_LZMA, 300, 200, 6, fmt.END_STREAM),
            4096,
            b"\xca\xac\x02\xc8\x01",
        ),
        (
            fmt.BlockHeader(fmt.METHOD_MODEL, 4096, 1000, fmt.segment_count(4096), fmt.END_INDEX),
            4096,
            b"\x1d\xe8\x07",
        ),
        # The fewest segments (--max): named by the descriptor (bits 5-6 = 1), no varint.
        (fmt.BlockHeader(fmt.METHOD_MIXED, 4096, 1000, 1), 4096, b"\x33\xe8\x07"),
        (
            fmt.BlockHeader(fmt.METHOD_MIXED, (2 << 20) + 1, 1000, 3),
            fmt.MAX_BLOCK,
            b"\x23\x81\x80\x80\x01\xe8\x07",
        ),
        # Another count (bits 5-6 = 2): a varint after the lengths.
        (
            fmt.BlockHeader(fmt.METHOD_MODEL, 4096, 1000, 2, fmt.END_INDEX),
            4096,
            b"\x5d\xe8\x07\x02",
        ),
        (
            fmt.BlockHeader(fmt.METHOD_MIXED, (2 << 20) + 1, 1000, 1000),
            fmt.MAX_BLOCK,
            b"\x43\x81\x80\x80\x01\xe8\x07\xe8\x07",
        ),
        (
            fmt.BlockHeader(fmt.METHOD_MIXED, 200, 150, 1, fmt.END_FRAME),
            4096,
            b"\x07\xc8\x01\x96\x01",
        ),
    ],
)
def test_block_header_layout(block: fmt.BlockHeader, block_size: int, raw: bytes) -> None:
    """Descriptor (method, end code, full bit, LZMA variant / how the segment count is
    given / repeat), then the raw length unless full, the coded length unless stored (a
    repeat block's: its period), the segment count if neither the default nor the
    fewest."""
    assert block.pack(block_size) == raw
    header = fmt.Header(block_size, 1)
    f = io.BytesIO(raw)
    assert fmt.read_block_header(f, header) == (block, raw)
    assert f.read() == b""


@pytest.mark.parametrize("n", [1, 2, 127, 128, 1000, 16383, 16384, 65536, (1 << 20) - 1, 1 << 20])
@pytest.mark.parametrize("method", sorted(fmt.METHOD_NAMES))
def test_one_block_framing_cost(n: int, method: int) -> None:
    """A stream of one block costs 10 bytes plus its varints (block size, coded length), at
    most 16 bytes for blocks up to 1 MiB (a named model costs 8 bytes more). The fewest
    segments (``--max``) cost nothing more, being named by the descriptor; only another
    count costs its varint."""
    coded = n if method == fmt.METHOD_STORED else max(1, n - 1)
    param = {fmt.METHOD_LZMA: 3, fmt.METHOD_STORED: 0}.get(method, fmt.segment_count(n))
    block = fmt.BlockHeader(method, n, coded, param, fmt.END_STREAM)
    lengths = len(fmt.varint(n)) + (len(fmt.varint(coded)) if method else 0)
    for ref, prefix, extra in [(1, "", 0), (fmt.MODEL_HASH, "ab" * 8, 8)]:
        cost = len(fmt.Header(n, ref, prefix).pack()) + len(block.pack(n)) + fmt.CHECK_SIZE
        assert cost == 10 + extra + lengths
        assert cost - extra <= 16
    lo, hi = fmt.fewest_segments(n), fmt.segment_count(n)
    if method in fmt.MODEL_METHODS and lo < hi:
        fewest = fmt.BlockHeader(method, n, coded, lo, fmt.END_STREAM)
        assert len(fewest.pack(n)) == len(block.pack(n))
        assert fewest.pack(n)[0] >> 5 == fmt.SEGMENTS_FEWEST
        if hi - lo > 1:
            given = fmt.BlockHeader(method, n, coded, hi - 1, fmt.END_STREAM)
            assert len(given.pack(n)) == len(block.pack(n)) + len(fmt.varint(hi - 1))
            assert given.pack(n)[0] >> 5 == fmt.SEGMENTS_GIVEN


@pytest.mark.parametrize(
    "data, level",
    [
        (sample_text(10, seed=1), "default"),
        (sample_text(300, seed=2), "default"),
        (sample_text(3000, seed=3), "default"),
        (sample_text(300, seed=4), "fast"),
        (sample_text(2000, seed=5), "max"),  # the fewest segments (one), not the default
        (_random_bytes(300), "default"),
        (bytes(1000), "default"),
    ],
    ids=["text-10", "text-300", "text-3000", "fast", "max", "random", "zeros"],
)
def test_one_block_stream_cost(
    data: bytes, level: str, tiny_model: IntModel, registered: int, small_tables: None
) -> None:
    """End to end: a one-block stream is its payload plus 10 bytes plus its varints."""
    blob = compress(data, tiny_model, level=level)
    info = list_stream(io.BytesIO(blob))
    [b] = info.blocks
    varints = len(fmt.varint(len(data)))
    if b.method != fmt.METHOD_STORED or b.segments == fmt.STORED_REPEAT:
        varints += len(fmt.varint(b.coded_len))
    varints += b.flat  # repetitive text goes without the network: one options byte
    assert len(blob) - b.coded_len == 10 + varints <= 16  # --max too: no segment count
    if b.method in fmt.MODEL_METHODS:
        rule = fmt.fewest_segments if level == "max" or b.flat else fmt.segment_count
        assert b.segments == rule(len(data))
    if level == "max":
        assert b.method == fmt.METHOD_MIXED and b.segments == 1 < fmt.segment_count(len(data))
    # The header names the (registered) model only if the block needs it.
    assert blob[4] == (registered if b.method in fmt.MODEL_METHODS else fmt.MODEL_NONE)
    assert decompress(blob, tiny_model) == data


# ----------------------------------------------------------------------------- varints
@pytest.mark.parametrize(
    "limit, size", [(1, 1), (127, 1), (128, 2), (fmt.MAX_BLOCK, 5), (2**35, 6), (2**62, 9)]
)
def test_varint_length_follows_the_limit(limit: int, size: int) -> None:
    """A field may take as many bytes as its largest value needs (``(bits + 6) // 7``):
    that value reads back, a longer varint is refused as too long."""
    assert len(fmt.varint(limit)) == size == (limit.bit_length() + 6) // 7
    assert fmt.read_varint(io.BytesIO(fmt.varint(limit)), "x", limit) == (limit, fmt.varint(limit))
    with pytest.raises(fmt.FormatError, match="x too long"):
        fmt.read_varint(io.BytesIO(b"\x80" * size + b"\x01"), "x", limit)
    with pytest.raises(fmt.FormatError, match=f"x (too long|{limit + 1} out of range)"):
        fmt.read_varint(io.BytesIO(fmt.varint(limit + 1)), "x", limit)


@given(st.integers(0, 2**35 - 1))
def test_varint_round_trip(n: int) -> None:
    raw = fmt.varint(n)
    assert len(raw) == max(1, -(-n.bit_length() // 7))
    f = io.BytesIO(raw + b"junk")
    assert fmt.read_varint(f, "x", 2**35) == (n, raw)
    assert f.read() == b"junk"


@given(n=st.integers(0, 2**28), pad=st.integers(1, 4))
def test_non_minimal_varints_are_refused(n: int, pad: int) -> None:
    """The same value with zero high groups appended: never a second reading of a field."""
    raw = fmt.varint(n)
    longer = raw[:-1] + bytes([raw[-1] | 0x80]) + b"\x80" * (pad - 1) + b"\x00"
    with pytest.raises(fmt.FormatError, match="shortest form|too long"):
        fmt.read_varint(io.BytesIO(longer), "x", 2**35)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x80\x00", "x not in its shortest form"),
        (b"\x81\x00", "not in its shortest form"),
        (b"\xff\x80\x00", "not in its shortest form"),
        (b"\x80\x80\x80\x80\x00", "not in its shortest form"),
        (b"\x80\x80\x80\x80\x80\x00", "x too long"),
        (b"\xff\xff\xff\xff\x0f", "x 4294967295 out of range"),
        (fmt.varint(fmt.MAX_BLOCK + 1), "out of range"),
        (b"\x80", "truncated archive: unexpected end of data in x"),
        (b"", "truncated"),
    ],
)
def test_bad_varints(raw: bytes, message: str) -> None:
    assert fmt.read_varint(io.BytesIO(fmt.varint(fmt.MAX_BLOCK)), "x")[0] == fmt.MAX_BLOCK
    with pytest.raises(fmt.FormatError, match=message):
        fmt.read_varint(io.BytesIO(raw), "x")


def test_non_minimal_varints_in_archives_are_refused() -> None:
    """The minimal-varint rule holds for every field of a stream (block size, raw length,
    coded length, segment count), which would otherwise each have many readings."""
    header = fmt.MAGIC + b"\x01\x80\x20"  # model 1, blocks of 4096
    with pytest.raises(fmt.FormatError, match="block size not in its shortest form"):
        fmt.read_header(io.BytesIO(fmt.MAGIC + b"\x01\xc0\x00"))
    h, _ = fmt.read_header(io.BytesIO(header))
    assert fmt.read_block_header(io.BytesIO(b"\x41\xa0\x1f\x05\x02"), h)[0].param == 2
    cases = {
        "block length": b"\x00\x8a\x00",  # stored, 10 bytes
        "coded length": b"\x02\x0a\x85\x00",  # LZMA, 10 -> 5 bytes
        "segment count": b"\x41\xa0\x1f\x05\x82\x00",  # model, 4000 bytes in 2 segments
    }
    for what, block in cases.items():
        f = io.BytesIO(header + block)
        h, _ = fmt.read_header(f)
        with pytest.raises(fmt.FormatError, match=f"{what} not in its shortest form"):
            fmt.read_block_header(f, h)


# ----------------------------------------------------------------------------- round trips
@given(
    block_size=st.integers(0, fmt.MAX_BLOCK),
    ref=MODEL_REFS,
    config=st.one_of(st.just(DEFAULT), CONFIGS),
    split=st.integers(0, 4),
)
def test_header_round_trip(
    block_size: int, ref: tuple[int, str], config: Config, split: int
) -> None:
    """Every header reads back as written, also when the decoder has already consumed part
    of the magic (as it does to detect a concatenated stream). A stream that names no model
    names no configuration either (only model blocks use it)."""
    header = fmt.Header(block_size, *ref, config)
    if block_size == 0 and header.needs_model:  # (no reader would read it back)
        with pytest.raises(ValueError):
            header.pack()
        return
    raw = header.pack()
    f = io.BytesIO(raw[split:] + b"more")
    got, got_raw = fmt.read_header(f, raw[:split])
    expect = header if header.needs_model else fmt.Header(block_size)
    assert (got, got_raw) == (expect, raw)
    assert f.read() == b"more"
    config_bytes = 0
    if header.needs_model and config != DEFAULT:
        config_bytes = 1 + len(config.pack())
    prefix = fmt.HASH_PREFIX if ref[0] == fmt.MODEL_HASH else 0
    assert len(raw) == 5 + prefix + config_bytes + len(fmt.varint(block_size))


@st.composite
def valid_blocks(draw: st.DrawFn) -> tuple[fmt.Header, fmt.BlockHeader]:
    block_size = draw(st.integers(1, fmt.MAX_BLOCK))
    header = fmt.Header(block_size, *draw(MODEL_REFS.filter(lambda r: r[0] != fmt.MODEL_NONE)))
    method = draw(st.sampled_from(sorted(fmt.METHOD_NAMES)))
    raw_len = draw(st.one_of(st.just(block_size), st.integers(1, block_size)))
    if method == fmt.METHOD_STORED:
        coded_len, param = raw_len, 0
    else:
        least = 0  # a model block's payload must be able to hold its bytes
        if method in fmt.MODEL_METHODS:
            least = max(0, -(-raw_len // fmt.MAX_EXPANSION[method]) - fmt.PAYLOAD_SLACK)
        coded_len = draw(st.integers(least, raw_len + (1 << 16)))
        if method in fmt.MODEL_METHODS:
            lo, hi = fmt.fewest_segments(raw_len), fmt.segment_count(raw_len)
            param = draw(st.one_of(st.just(hi), st.just(lo), st.integers(lo, hi)))
        else:  # LZMA: the index of its filter settings
            param = draw(st.integers(0, fmt.LZMA_VARIANT_COUNT - 1))
    end = draw(st.integers(0, 3))
    return header, fmt.BlockHeader(method, raw_len, coded_len, param, end)


@given(valid_blocks())
def test_block_header_round_trip(hb: tuple[fmt.Header, fmt.BlockHeader]) -> None:
    header, b = hb
    raw = b.pack(header.block_size)
    f = io.BytesIO(raw + b"payload")
    assert fmt.read_block_header(f, header) == (b, raw)
    assert f.read() == b"payload"
    full = b.raw_len == header.block_size
    assert bool(raw[0] & 0x10) == full
    size = 1 + (0 if full else len(fmt.varint(b.raw_len)))
    if b.method != fmt.METHOD_STORED:
        size += len(fmt.varint(b.coded_len))
    if b.method in fmt.MODEL_METHODS:
        lo, hi = fmt.fewest_segments(b.raw_len), fmt.segment_count(b.raw_len)
        kind = fmt.SEGMENTS_DEFAULT if b.param == hi else fmt.SEGMENTS_FEWEST
        if lo < b.param < hi:
            kind = fmt.SEGMENTS_GIVEN
            size += len(fmt.varint(b.param))
        assert raw[0] >> 5 == kind
    assert len(raw) == size


@settings(max_examples=500)
@given(
    desc=st.integers(0, 255),
    tail=st.binary(max_size=12),
    block_size=st.integers(1, fmt.MAX_BLOCK),
    has_model=st.booleans(),
)
# A block over 1 MiB in more segments than the default count (as ``--wide`` writes them).
@example(desc=91, tail=b"\x80\x05\x80\t", block_size=1179648, has_model=True)
def test_any_block_header_that_reads_is_in_range(
    desc: int, tail: bytes, block_size: int, has_model: bool
) -> None:
    """Whatever the bytes, a block header is either within every limit the decoder relies
    on, or refused with FormatError -- never used out of range."""
    header = fmt.Header(block_size, 1 if has_model else fmt.MODEL_NONE)
    try:
        b, raw = fmt.read_block_header(io.BytesIO(bytes([desc]) + tail), header)
    except fmt.FormatError:
        return
    assert raw == (bytes([desc]) + tail)[: len(raw)]
    assert b.method in fmt.METHOD_NAMES and b.end in range(4)
    assert 0 < b.raw_len <= block_size
    assert 0 <= b.coded_len <= b.raw_len + (1 << 16)
    if b.method == fmt.METHOD_STORED and b.param == fmt.STORED_REPEAT:
        assert 0 < b.coded_len < b.raw_len
    elif b.method == fmt.METHOD_STORED and b.param == fmt.STORED_COPY:
        assert b.coded_len == 0 and 0 < b.distance <= fmt.COPY_WINDOW
    elif b.method == fmt.METHOD_STORED:
        assert b.coded_len == b.raw_len and b.param == 0
    if b.method == fmt.METHOD_LZMA:
        assert 0 <= b.param < fmt.LZMA_VARIANT_COUNT
    if b.method in fmt.MODEL_METHODS:
        assert has_model
        assert fmt.fewest_segments(b.raw_len) <= b.param <= fmt.most_segments(b.raw_len)
    # Its canonical encoding reads back the same.
    assert fmt.read_block_header(io.BytesIO(b.pack(block_size)), header)[0] == b


@pytest.mark.parametrize(
    "raw_len",
    [
        *(1, 255, 256, 511, 512, 768, 4096, 8192, 1 << 20, (1 << 20) + 1, (1 << 20) + 1024),
        *((2 << 20) + 1, 16 << 20, (16 << 20) + 1023, 17 << 20, fmt.MAX_BLOCK),
    ],
)
def test_segment_counts_outside_the_range_are_refused(raw_len: int) -> None:
    """A model block may have from ``fewest_segments`` to ``most_segments`` segments (the
    default count, or for blocks over 1 MiB one per KiB up to ``MAX_WIDE_SEGMENTS``); any
    other count is damage, and a too-small one would let a small archive keep the decoder
    busy for hours (no segment is longer than MAX_SEGMENT_BYTES). Each count has one
    writing: the default and the fewest are named by the descriptor (the fewest only where
    it differs from the default), a varint gives the others."""
    header = fmt.Header(fmt.MAX_BLOCK, 1)
    lo, default = fmt.fewest_segments(raw_len), fmt.segment_count(raw_len)
    hi = fmt.most_segments(raw_len)
    assert 1 <= lo <= default <= fmt.MAX_BLOCK_SEGMENTS and default <= hi <= fmt.MAX_WIDE_SEGMENTS
    assert hi == default if raw_len <= 1 << 20 else hi == min(raw_len >> 10, 1 << 14)
    assert lo * fmt.MAX_SEGMENT_BYTES >= raw_len
    full = raw_len == fmt.MAX_BLOCK
    coded = max(10, raw_len // 1000)  # enough payload for the raw length (max_raw_len)
    lengths = (b"" if full else fmt.varint(raw_len)) + fmt.varint(coded)

    def read(kind: int, tail: bytes = b"") -> fmt.BlockHeader:
        desc = fmt.METHOD_MIXED | full << 4 | kind << 5
        return fmt.read_block_header(io.BytesIO(bytes([desc]) + lengths + tail), header)[0]

    assert read(fmt.SEGMENTS_DEFAULT).param == default
    if lo < default:
        assert read(fmt.SEGMENTS_FEWEST).param == lo
    else:
        with pytest.raises(fmt.FormatError, match="unknown block flags"):
            read(fmt.SEGMENTS_FEWEST)
    edges = {0, lo - 1, lo, lo + 1, default - 1, default, default + 1, hi - 1, hi, hi + 1}
    for segments in sorted(edges - {-1}):
        if lo < segments <= hi and segments != default:
            assert read(fmt.SEGMENTS_GIVEN, fmt.varint(segments)).param == segments
            b = fmt.BlockHeader(fmt.METHOD_MIXED, raw_len, coded, segments, fmt.END_STREAM)
            assert fmt.read_block_header(io.BytesIO(b.pack(fmt.MAX_BLOCK)), header)[0] == b
        else:
            with pytest.raises(fmt.FormatError, match="segment"):
                read(fmt.SEGMENTS_GIVEN, fmt.varint(segments))
    for kind in (3, 7):  # bits 5-6 = 3 (bit 7, a record length, is test_record_length's)
        with pytest.raises(fmt.FormatError, match="unknown block flags"):
            read(kind, b"\x02")


def test_block_options_layout() -> None:
    """Bit 7 of a mixed block's descriptor: an options varint follows the segment count,
    then the record length if option 1 says so; option 2 is the x86 transform."""
    head = fmt.BlockHeader(fmt.METHOD_MIXED, 4096, 1000, 3, fmt.END_STREAM, 216)
    raw = head.pack(4096)
    assert raw == bytes([0xD3 | fmt.END_STREAM << 2]) + b"\xe8\x07\x03\x01\xd8\x01"
    header = fmt.Header(4096, 1, "", BINARY)
    assert fmt.read_block_header(io.BytesIO(raw), header) == (head, raw)
    both = fmt.BlockHeader(fmt.METHOD_MIXED, 4096, 1000, fmt.segment_count(4096), 0, 2, True)
    assert both.pack(4096) == bytes([0x93]) + b"\xe8\x07\x03\x02"
    assert fmt.read_block_header(io.BytesIO(both.pack(4096)), header)[0] == both
    x86 = fmt.BlockHeader(fmt.METHOD_MIXED, 4096, 1000, fmt.segment_count(4096), x86=True)
    assert x86.pack(4096) == bytes([0x93]) + b"\xe8\x07\x02"
    assert fmt.read_block_header(io.BytesIO(x86.pack(4096)), header)[0] == x86
    # Option 4: coded without the network; with the fewest segments (bits 5-6: 1).
    flat = fmt.BlockHeader(fmt.METHOD_MIXED, 4096, 1000, 1, record=24, x86=True, flat=True)
    assert flat.pack(4096) == bytes([0xB3]) + b"\xe8\x07\x07\x18"
    assert fmt.read_block_header(io.BytesIO(flat.pack(4096)), header)[0] == flat


@pytest.mark.parametrize(
    "method, tail, message",
    [
        (fmt.METHOD_MIXED, b"\x01\x01", "records of 1 bytes"),  # shorter than allowed
        (fmt.METHOD_MIXED, b"\x01\x80\x20", "records of 4096 bytes in 4096"),
        (fmt.METHOD_MIXED, b"\x01\x81\x80\x80\x01", "record length too long"),
        (fmt.METHOD_MIXED, b"\x01\x80\x00", "shortest form"),
        (fmt.METHOD_MIXED, b"\x01", "truncated"),
        (fmt.METHOD_MIXED, b"", "truncated"),
        (fmt.METHOD_MIXED, b"\x00", "unknown block options 0x00"),  # bit 7 says some follow
        (fmt.METHOD_MIXED, b"\x08", "unknown block options 0x08"),  # a later release's
        (fmt.METHOD_MIXED, b"\x80\x01", "block options too long"),
        (fmt.METHOD_MODEL, b"\x01\x10", "unknown block flags"),  # network-only: no options
    ],
)
def test_bad_block_options_are_refused(method: int, tail: bytes, message: str) -> None:
    desc = method | 1 << 4 | fmt.OPTIONS_FLAG
    with pytest.raises(fmt.FormatError, match=message):
        fmt.read_block_header(
            io.BytesIO(bytes([desc]) + b"\xe8\x07" + tail), fmt.Header(4096, 1, "", BINARY)
        )


# ----------------------------------------------------------------------------- bad headers
_INLINE_BAD_KIND = bytes([2, 1, 200]) + CUSTOM.pack()[1 + len(CUSTOM.contexts) :]


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "truncated"),
        (b"NNC", "truncated"),
        (b"PK\x03\x04" + bytes(60), "bad magic"),
        (fmt.PRE_RELEASE_MAGIC + bytes(60), "pre-release format"),
        (b"NNC\x02\x00\x00", r"unsupported archive format 2 \(this reads format 1\)"),
        (b"NNC\x00\x00\x00", "unsupported archive format 0"),
        (b"NNC\xff\x00\x00", "unsupported archive format 255"),
        (fmt.MAGIC + b"\x40\x01", "unsupported archive flags 0x40"),
        (fmt.MAGIC + b"\x81\x01", "unsupported archive flags 0x81"),
        (fmt.MAGIC + b"\x31\x01", "unsupported archive flags 0x31"),  # configuration kind 3
        (fmt.MAGIC + b"\x10\x02\x01", "configuration without a model"),
        (fmt.MAGIC + b"\x20\x00\x01", "configuration without a model"),
        (fmt.MAGIC + b"\x11\x30\x01", "unknown mixed-method preset 48"),
        (fmt.MAGIC + b"\x11\xff\x01", "unknown mixed-method preset 255"),
        (fmt.MAGIC + b"\x21\x03abc\x01", "configuration of the wrong length"),
        (fmt.MAGIC + b"\x21\x00\x01", "configuration of the wrong length"),
        (fmt.MAGIC + b"\x21" + bytes([len(_INLINE_BAD_KIND)]) + _INLINE_BAD_KIND, "context kind"),
        (
            fmt.MAGIC + b"\x21" + bytes([len(DEFAULT.pack())]) + DEFAULT.pack() + b"\x01",
            "corrupted archive: a preset configuration written out",
        ),
        (fmt.MAGIC + b"\x21\x30", "truncated archive: unexpected end of data in header"),
        (fmt.MAGIC + b"\x0f" + bytes(3), "truncated archive: unexpected end of data in header"),
        (fmt.MAGIC + b"\x00", "truncated archive: unexpected end of data in block size"),
        (fmt.MAGIC + b"\x00\x80", "truncated archive: unexpected end of data in block size"),
        (fmt.MAGIC + b"\x00" + fmt.varint(fmt.MAX_BLOCK + 1), "block size 268435457 out of range"),
        (fmt.MAGIC + b"\x00\x80\x00", "block size not in its shortest form"),
    ],
)
def test_bad_headers(raw: bytes, message: str) -> None:
    with pytest.raises(fmt.FormatError, match=message):
        fmt.read_header(io.BytesIO(raw))


@pytest.mark.parametrize(
    "raw, message",
    [
        (fmt.PRE_RELEASE_MAGIC + b"\x06\x00" + bytes(60), "pre-release format"),
        (b"NNC\x02" + bytes(20), r"unsupported archive format 2 \(this reads format 1\)"),
    ],
)
def test_other_formats_are_refused_by_name(raw: bytes, message: str) -> None:
    """The decoder, the lister and the reader all name what they found."""
    with pytest.raises(fmt.FormatError, match=message):
        decompress_stream(io.BytesIO(raw), io.BytesIO(), lookup_for())
    with pytest.raises(fmt.FormatError, match=message):
        list_stream(io.BytesIO(raw))
    with pytest.raises(fmt.FormatError, match=message):
        ArchiveReader(io.BytesIO(raw), lookup_for())


@pytest.mark.parametrize(
    "raw, has_model, message",
    [
        (b"\x00\x00", True, "empty block"),
        (b"\x00" + fmt.varint(4097), True, "block length 4097 out of range"),
        (b"\x02\x0a" + fmt.varint(10 + (1 << 16) + 1), True, "coded length 65547 out of range"),
        (b"\xe2\x0a\x05", True, "unknown LZMA2 variant 7"),
        (b"\x00" + fmt.varint(4096), True, "a full block without the full flag"),
        (b"\x03" + fmt.varint(4096) + b"\x05", True, "a full block without the full flag"),
        # Copy blocks: a distance from 1 to COPY_WINDOW, no payload.
        (b"\x40\x0a", True, "unexpected end of data in copy distance"),
        (b"\x40\x0a\x00", True, "a copy block of distance 0"),
        (b"\x40\x0a" + fmt.varint(fmt.COPY_WINDOW + 1), True, "copy distance 67108865 out"),
        (b"\x60\x0a\x01", True, "unknown block flags 0x60"),
        (b"\xa0\x0a\x01", True, "unknown block flags 0xa0"),
        (b"\x80\x0a", True, "unknown block flags 0x80"),
        # Repeat blocks: a period from 1 to the block's length less one.
        (b"\x20\x0a\x00", False, "a repeat block of period 0"),
        (b"\x20\x0a\x0a", False, "period 10 out of range"),
        (b"\x30\x80\x20", False, "period 4096 out of range"),
        (b"\x20\x01\x01", False, "period 1 out of range"),
        (b"\x20\x0a", False, "unexpected end of data in period"),
        (b"\x61\x0a\x05", True, "unknown block flags 0x61"),  # segment kind 3
        (b"\x81\x0a\x05", True, "unknown block flags 0x81"),  # bit 7
        (b"\xe3\x0a\x05", True, "unknown block flags 0xe3"),
        # 10 bytes: the fewest count is the default one, so naming it is refused.
        (b"\x23\x0a\x05", True, "unknown block flags 0x23"),
        (b"\x43\x0a\x05\x00", True, "0 segments for 10 bytes"),
        (b"\x43\x0a\x05\x01", True, "1 segments for 10 bytes"),  # the default, written out
        (b"\x53\x05\x01", True, "1 segments for 4096 bytes"),  # the fewest, written out
        (b"\x53\x05\x10", True, "16 segments for 4096 bytes"),  # the default, written out
        (b"\x43\x0a\x05\x81\x08", True, "1025 segments for 10 bytes"),
        (b"\x43\x0a\x05\x81\x80\x01", True, "segment count 16385 out of range"),
        (b"\x43\x0a\x05", True, "unexpected end of data in segment count"),
        (b"\x01\x0a\x05", False, "model-coded block in a stream without a model"),
        (b"\x13\x05", False, "model-coded block in a stream without a model"),
        (b"\x00", True, "unexpected end of data in block length"),
        (b"\x11", True, "unexpected end of data in coded length"),
        (b"", True, "unexpected end of data in block header"),
    ],
)
def test_bad_block_headers(raw: bytes, has_model: bool, message: str) -> None:
    header = fmt.Header(4096, 1 if has_model else fmt.MODEL_NONE)
    with pytest.raises(fmt.FormatError, match=message):
        fmt.read_block_header(io.BytesIO(raw), header)


def test_decompress_empty_input() -> None:
    with pytest.raises(fmt.FormatError, match="empty input"):
        decompress_stream(io.BytesIO(b""), io.BytesIO(), lookup_for())


# ----------------------------------------------------------------------------- checks
def test_block_check_names_the_block(tiny_model: IntModel) -> None:
    """A block whose content does not match its check: the message says which block and
    which byte range, and the blocks before it have been written."""
    data = _random_bytes(200)
    blob = bytearray(compress(data, tiny_model, block_size=100, level="fast"))
    blocks = walk_blocks(bytes(blob))
    assert [b.method for _, b, _ in blocks] == [fmt.METHOD_STORED] * 2
    at = blocks[1][0]
    blob[at + 1] ^= 0x40  # the second block's first raw byte (its header is one byte)
    out = io.BytesIO()
    message = r"^corrupted archive: block 1 \(bytes 100\.\.200\) checksum mismatch$"
    with pytest.raises(fmt.FormatError, match=message):
        decompress_stream(io.BytesIO(bytes(blob)), out, lookup_for(tiny_model))
    assert out.getvalue() == data[:100]


@pytest.mark.parametrize(
    "payload, short",
    [(b"\x05" * 8, False), (b"\xff" * 8, False), (b"\x01\x00\x02abc\x00", True)],
)
def test_undecodable_block_names_the_block(payload: bytes, short: bool) -> None:
    """A block whose payload its method cannot decode: the message names the block and its
    byte range, and says why; one that decodes to fewer bytes than its header says fails
    its check. The good blocks before it have been written."""
    header = fmt.Header(10).pack()
    check = fmt.frame_seed(header, 0, 0)
    first = fmt.BlockHeader(fmt.METHOD_STORED, 10, 10).pack(10)
    check = fmt.block_check(first, b"0123456789", check)
    blob = header + first + b"0123456789" + fmt.CHECK.pack(check)
    second = fmt.BlockHeader(fmt.METHOD_LZMA, 10, len(payload), 0, fmt.END_STREAM).pack(10)
    blob += second + payload + fmt.CHECK.pack(fmt.block_check(second, b"0123456789", check))
    out, err = decode_or_damage(blob)
    assert out == b"0123456789"
    assert isinstance(err, fmt.FormatError)
    where = r"^corrupted archive: block 1 \(bytes 10\.\.20\) "
    why = "checksum mismatch$" if short else r"cannot be decoded \(.+\)$"
    assert re.match(where + why, str(err)), str(err)


def test_check_chains_the_blocks_of_a_frame(tiny_model: IntModel, tiny_model2: IntModel) -> None:
    """Each check continues the one before it, from the frame's seed: blocks
    swapped, dropped, repeated or taken from another stream are caught, even where every
    block is intact on its own."""
    data = _random_bytes(400, seed=1)
    blob = compress(data, tiny_model, block_size=100, level="fast")
    blocks = walk_blocks(blob)
    assert len(blocks) == 4 and {b.method for _, b, _ in blocks} == {fmt.METHOD_STORED}
    header, body = blob[: blocks[0][0]], [blob[at : at + n] for at, _, n in blocks]
    for order in ([1, 0, 2, 3], [0, 2, 1, 3], [0, 1, 3], [0, 0, 1, 2, 3], [0, 1, 2, 2, 3]):
        _, err = decode_or_damage(header + b"".join(body[i] for i in order))
        assert isinstance(err, fmt.FormatError), order
    # The same blocks behind another stream header (another model) are refused.
    other = compress(_random_bytes(400, seed=2), tiny_model2, block_size=100, level="fast")
    spliced = other[: blocks[0][0]] + b"".join(body)
    assert spliced != blob and isinstance(decode_or_damage(spliced)[1], fmt.FormatError)
    # The end codes are covered too: the last block saying END_FRAME instead of END_STREAM.
    last = bytearray(body[3])
    last[0] ^= (fmt.END_STREAM ^ fmt.END_FRAME) << 2
    _, err = decode_or_damage(header + b"".join(body[:3]) + bytes(last))
    assert isinstance(err, fmt.FormatError) and "checksum mismatch" in str(err)


def test_trailing_garbage_is_refused(tiny_model: IntModel, small_tables: None) -> None:
    """After a stream: zero padding is ignored (and counted), a start of "NNC" is decoded
    as a stream (and refused if it is not one), anything else is refused unless allowed
    (the command line allows it, with a warning)."""
    blob = compress(b"hello", tiny_model)
    for junk in (b"NN", b"NNC\x1a", b"NNC\x01", fmt.MAGIC + b"\x00", b"garbage", b"\x00\x01"):
        with pytest.raises(fmt.FormatError):
            decompress(blob + junk, tiny_model)
    assert decompress(blob + bytes(5), tiny_model) == b"hello"
    info = decompress_stream(
        io.BytesIO(blob + b"\x00\x01"), None, lookup_for(tiny_model), trailing_garbage=True
    )
    assert (info.trailing, info.trailing_zeros) == (2, False)


# ----------------------------------------------------------------------------- model refs
def test_stream_that_needs_no_model_names_none(tiny_model: IntModel) -> None:
    data = _random_bytes(50)
    blob = compress(data, tiny_model)
    assert blob[4] == fmt.MODEL_NONE
    info = list_stream(io.BytesIO(blob))
    assert (info.model, info.model_prefix, info.model_name) == (fmt.MODEL_NONE, "", "-")
    assert decompress(blob) == data  # no model available at all


def test_model_named_by_hash_prefix(tiny_model: IntModel, tiny_model2: IntModel) -> None:
    data = sample_text(300, seed=6)
    blob = compress(data, tiny_model, level="fast")
    assert tiny_model.sha256 not in {sha for _, sha in zoo.REGISTRY.values()}
    prefix = tiny_model.sha256[:8]  # 4 bytes, as zstd's dictionary IDs
    assert blob[4] == fmt.MODEL_HASH | fmt.SHORT_HASH_FLAG and blob[5:9] == bytes.fromhex(prefix)
    assert header_size(tiny_model, 300) == 5 + 4 + 2
    info = list_stream(io.BytesIO(blob))
    assert (info.model, info.model_prefix) == (fmt.MODEL_HASH, prefix)
    assert info.model_name == f"sha256:{prefix}"
    assert [b.method for b in info.blocks] == [fmt.METHOD_MODEL]
    assert decompress(blob, tiny_model2, tiny_model) == data
    for models in ((), (tiny_model2,)):
        with pytest.raises(ModelError, match=prefix):
            decompress(blob, *models)


def test_model_named_by_registry_number(
    tiny_model: IntModel, registered: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = sample_text(300, seed=6)
    blob = compress(data, tiny_model, level="fast")
    assert blob[4] == registered
    info = list_stream(io.BytesIO(blob))
    assert (info.model, info.model_prefix, info.model_name) == (registered, "", "tiny-test")
    assert decompress(blob, tiny_model) == data
    with pytest.raises(ModelError, match="tiny-test"):
        decompress(blob)
    # Four bytes shorter than the same stream naming the model by its hash.
    monkeypatch.delitem(zoo.REGISTRY, registered)
    assert len(compress(data, tiny_model, level="fast")) == len(blob) + fmt.SHORT_HASH_PREFIX


def test_eight_byte_hash_prefixes_still_read(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archives that name a model by 8 bytes of its hash (format 1 as first released)
    decode as before."""
    data = sample_text(300, seed=6)
    with monkeypatch.context() as mp:
        mp.setattr(zoo, "model_ref", lambda m: (fmt.MODEL_HASH, m.sha256[:16]))
        old = compress(data, tiny_model, level="fast")
    assert old[4] == fmt.MODEL_HASH and old[5:13] == bytes.fromhex(tiny_model.sha256[:16])
    assert list_stream(io.BytesIO(old)).model_prefix == tiny_model.sha256[:16]
    assert decompress(old, tiny_model) == data


def test_a_short_prefix_two_models_share_is_refused(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two installed models whose hashes begin alike: the archive's 4-byte prefix is
    ambiguous, and the decoder says so instead of guessing."""
    import shutil

    for name in ("a", "b"):
        shutil.copy(
            model_dir / ("default.nnm" if name == "a" else "two.nnm"), tmp_path / f"{name}.nnm"
        )
    monkeypatch.setenv("NNCOMPRESS_MODELS", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    fake = {"a.nnm": "12345678" + "a" * 56, "b.nnm": "12345678" + "b" * 56}
    monkeypatch.setattr(zoo, "file_sha256", lambda p: fake.get(p.name, "f" * 64))
    with pytest.raises(ModelError, match="several models match"):
        zoo.model_for_archive(fmt.MODEL_HASH, "12345678")


def test_named_model_is_looked_up_only_when_a_block_needs_it(tiny_model: IntModel) -> None:
    """A stream of several blocks names its model, but stored and LZMA blocks decode
    without it."""
    data = _random_bytes(300)
    blob = compress(data, tiny_model, block_size=100)
    assert blob[4] & 0x0F == fmt.MODEL_HASH
    assert {b.method for b in list_stream(io.BytesIO(blob)).blocks} <= {0, fmt.METHOD_LZMA}
    assert decompress(blob) == data


# ----------------------------------------------------------------------------- configurations
def test_configuration_kinds(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch, small_tables: None
) -> None:
    """The mixed method's configuration: the default preset costs nothing, another preset
    one byte, any other configuration is written out -- and the decoder uses it."""
    data = sample_text(700, seed=7)
    at = 5 + fmt.SHORT_HASH_PREFIX  # the configuration's place, after the model's hash
    short = fmt.SHORT_HASH_FLAG

    default = compress(data, tiny_model, block_size=256)
    assert default[4] >> 4 & 3 == fmt.CONFIG_DEFAULT
    assert list_stream(io.BytesIO(default)).config == DEFAULT
    # The default level's text preset (36: 7 with fine probabilities), for text of
    # NEARBY_MIN bytes and more, is named in one byte.
    longer = sample_text(records.NEARBY_MIN, seed=7)
    text = compress(longer, tiny_model, block_size=records.NEARBY_MIN)
    assert text[4] >> 4 & 3 == fmt.CONFIG_PRESET and text[at] == 36
    expected = dataclasses.replace(DEFAULT_2, mixers=MIXERS, fine=1)
    assert list_stream(io.BytesIO(text)).config == expected
    assert decompress(text, tiny_model) == longer
    shorter = compress(longer[:-1], tiny_model, block_size=records.NEARBY_MIN)
    assert list_stream(io.BytesIO(shorter)).config == DEFAULT

    level = _custom_level(monkeypatch, CUSTOM)
    inline = compress(data, tiny_model, block_size=256, level=level)
    packed = CUSTOM.pack()
    assert inline[4] == fmt.MODEL_HASH | fmt.CONFIG_INLINE << 4 | short
    assert inline[at] == len(packed) and inline[at + 1 : at + 1 + len(packed)] == packed
    info = list_stream(io.BytesIO(inline))
    assert info.config == CUSTOM
    assert {b.method for b in info.blocks} == {fmt.METHOD_MIXED}
    assert decompress(inline, tiny_model) == data
    # The configuration changes the coding: the same data codes to other payloads.
    custom_payloads = [b.coded_len for b in info.blocks]
    assert custom_payloads != [b.coded_len for b in list_stream(io.BytesIO(default)).blocks]

    monkeypatch.setitem(PRESETS, 2, CUSTOM)
    preset = compress(data, tiny_model, block_size=256, level=level)
    assert preset[4] == fmt.MODEL_HASH | fmt.CONFIG_PRESET << 4 | short and preset[at] == 2
    assert len(preset) == len(inline) - len(packed)
    info = list_stream(io.BytesIO(preset))
    assert info.config == CUSTOM and [b.coded_len for b in info.blocks] == custom_payloads
    assert decompress(preset, tiny_model) == data


# ----------------------------------------------------------------------------- index
INDEXES = st.builds(
    fmt.Index,
    st.integers(0, 1 << 16),
    st.lists(
        st.builds(fmt.FrameEntry, st.integers(0, 2**62), st.integers(0, 2**62)),
        max_size=20,
    ),
)


@given(index=INDEXES, before=st.binary(max_size=40), after=st.binary(max_size=10))
def test_index_round_trip(index: fmt.Index, before: bytes, after: bytes) -> None:
    raw = index.pack()
    assert raw[-4:] == fmt.INDEX_MAGIC == b"NNCi"
    assert struct.unpack("<I", raw[-8:-4])[0] == len(raw) - fmt.INDEX_FOOTER
    f = io.BytesIO(raw + after)
    assert fmt.read_index(f) == index
    assert f.read() == after
    # Found from where it ends, whatever comes before and after it.
    f = io.BytesIO(before + raw + after)
    assert fmt.index_before(f, len(before) + len(raw)) == (index, len(before))


def test_index_layout() -> None:
    index = fmt.Index(15, [fmt.FrameEntry(512, 300), fmt.FrameEntry(100, 90)])
    body = b"\x02\x0f\x80\x04\xac\x02\x64\x5a"
    body += struct.pack("<I", zlib.crc32(body))
    assert index.pack() == body + struct.pack("<I", len(body)) + b"NNCi"


_AN_INDEX = fmt.Index(7, [fmt.FrameEntry(512, 300), fmt.FrameEntry(100, 90)]).pack()


@pytest.mark.parametrize(
    "tail",
    [
        b"",
        b"NNCi",
        b"\x00" * 20,
        b"\xff\xff\x00\x00NNCi",
        b"\x09\x00\x00\x00NNCi",
        b"x" * 12,
        # Footers whose length fits, before bytes that are no index.
        bytes(9) + b"\x09\x00\x00\x00NNCi",
        b"\xff" * 30 + b"\x1e\x00\x00\x00NNCi",
        b"\x00\x00" + b"\x00\x00\x00\x00" + b"\x06\x00\x00\x00NNCi",  # no index of no frame
        # An index with its CRC, its length or its first field damaged.
        _AN_INDEX[:-12] + bytes([_AN_INDEX[-12] ^ 1]) + _AN_INDEX[-11:],
        _AN_INDEX[:-8] + bytes([_AN_INDEX[-8] - 1]) + _AN_INDEX[-7:],
        bytes([_AN_INDEX[0] + 1]) + _AN_INDEX[1:],
        _AN_INDEX[1:],
    ],
)
def test_index_before_finds_nothing_where_no_index_ends(tail: bytes) -> None:
    """Bytes that end otherwise than an index does, or only look like an index's end (the
    index they point to does not read back): no index (a reader then walks the stream,
    which reads, and so checks, any index there)."""
    for before in (b"", b"NNC\x01\x00\x00" * 3):
        f = io.BytesIO(before + tail)
        assert fmt.index_before(f, len(before + tail)) is None


@given(st.data())
def test_damaged_index_records_are_refused(data: st.DataObject) -> None:
    """Any single damaged byte of an index is refused by ``read_index``."""
    index = data.draw(INDEXES)
    raw = bytearray(index.pack())
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= data.draw(st.integers(1, 255))
    with pytest.raises(fmt.FormatError):
        fmt.read_index(io.BytesIO(bytes(raw)))


# ----------------------------------------------------------------------------- frames
@pytest.fixture(scope="session")
def framed(tiny_model: IntModel) -> tuple[bytes, bytes]:
    """(data, archive): 2,600 bytes in blocks of 256 and frames of two blocks -- six frames,
    the last of one short block -- with an index."""
    data = sample_text(2600, seed=3)
    return data, compress(data, tiny_model, block_size=256, frame_size=512)


def test_multi_frame_archive(framed: tuple[bytes, bytes], tiny_model: IntModel) -> None:
    data, blob = framed
    info = list_stream(io.BytesIO(blob))
    assert info.archive_len == len(blob) and info.raw_len == len(data)
    assert [f.raw_len for f in info.frames] == [512] * 5 + [40]
    assert [f.raw_offset for f in info.frames] == [512 * i for i in range(6)]
    assert [b.frame for b in info.blocks] == [i // 2 for i in range(11)]
    blocks = walk_blocks(blob)
    ends = [b.end for _, b, _ in blocks]
    assert ends == [fmt.END_NONE, fmt.END_FRAME] * 5 + [fmt.END_INDEX]
    # Frames start at their first block and are back to back; the index follows them.
    assert [f.offset for f in info.frames] == [at for at, _, _ in blocks[::2]]
    header_len = info.frames[0].offset
    for a, b in zip(info.frames[:-1], info.frames[1:], strict=True):
        assert a.offset + a.coded_len == b.offset
    index_start = info.frames[-1].offset + info.frames[-1].coded_len
    expect = fmt.Index(header_len, [fmt.FrameEntry(f.raw_len, f.coded_len) for f in info.frames])
    assert fmt.index_before(io.BytesIO(blob), len(blob)) == (expect, index_start)
    assert blob[index_start:] == expect.pack()
    assert decompress(blob, tiny_model) == data


@pytest.mark.parametrize(
    "frame_size, per_frame",
    [(1, 1), (255, 1), (256, 1), (511, 1), (512, 2), (767, 2), (768, 3), (1 << 20, 4)],
)
def test_frames_are_whole_blocks(frame_size: int, per_frame: int, tiny_model: IntModel) -> None:
    """A frame is ``frame_size`` rounded down to whole blocks, at least one; a stream of one
    frame has no index (its last block says END_STREAM)."""
    data = _random_bytes(1000)
    blob = compress(data, tiny_model, block_size=256, level="fast", frame_size=frame_size)
    info = list_stream(io.BytesIO(blob))
    assert [len(info.blocks), len(info.frames)] == [4, -(-4 // per_frame)]
    assert [b.frame for b in info.blocks] == [i // per_frame for i in range(4)]
    last = walk_blocks(blob)[-1][1]
    if len(info.frames) == 1:
        assert last.end == fmt.END_STREAM
        assert fmt.index_before(io.BytesIO(blob), len(blob)) is None
    else:
        assert last.end == fmt.END_INDEX
        assert fmt.index_before(io.BytesIO(blob), len(blob)) is not None
    assert decompress(blob) == data


@pytest.fixture
def default_frames_of_512(monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoder's own frame sizes, scaled down: frames of 512 bytes, and inputs of 257
    to 1,024 bytes cut in two."""
    monkeypatch.setattr(levels, "DEFAULT_FRAME", 512)
    monkeypatch.setattr(levels, "SPLIT_MIN", 256)
    monkeypatch.setattr(levels, "MERGED_FRAME", 2048)


def _auto_framed(data: bytes, model: IntModel, chunk: int) -> bytes:
    enc = StreamEncoder(model, 128, "fast")  # the frame size left to the encoder
    out = b"".join(enc.write(data[i : i + chunk]) for i in range(0, len(data), chunk))
    return out + enc.finish()


@pytest.mark.parametrize(
    "n, frames",
    [
        (200, [200]),  # up to SPLIT_MIN: one frame
        (256, [256]),
        (257, [128, 129]),  # half of it, to the nearest whole block
        (600, [256, 344]),
        (1000, [512, 488]),
        (1024, [512, 512]),  # up to two default frames
        (1025, [512, 512, 1]),  # longer: default frames
        (1700, [512, 512, 512, 164]),
    ],
)
def test_the_encoder_cuts_a_mid_sized_input_into_two_frames(
    n: int, frames: list[int], tiny_model: IntModel, default_frames_of_512: None
) -> None:
    """Where the frame size is the encoder's choice, an input longer than SPLIT_MIN and at
    most two default frames long becomes two frames of about half its length, so that two
    cores code it; the archive is the same however the input arrives, and decodes."""
    data = _random_bytes(n)
    blob = _auto_framed(data, tiny_model, n)
    info = list_stream(io.BytesIO(blob))
    assert [f.raw_len for f in info.frames] == frames
    assert [f.raw_offset for f in info.frames] == [sum(frames[:i]) for i in range(len(frames))]
    for chunk in (1, 100, 512):
        assert _auto_framed(data, tiny_model, chunk) == blob
    assert decompress(blob) == data
    reader = io.BufferedReader(ArchiveReader(io.BytesIO(blob), lookup_for(tiny_model)))
    reader.seek(frames[0] - 10)  # across the first frame's end
    assert reader.read(40) == data[frames[0] - 10 : frames[0] + 30]
    # A frame size given explicitly is kept, whatever the input's length.
    fixed = list_stream(io.BytesIO(compress(data, tiny_model, 128, "fast", frame_size=512)))
    assert [f.raw_len for f in fixed.frames] == [512] * (n // 512) + [n % 512] * (n % 512 > 0)


def test_an_input_whose_second_half_repeats_the_first_stays_one_frame(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encoder's cut in two is skipped where the halves share long strings
    (``levels.SPLIT_SHARED``): one frame then sees both, and the match model finds the
    second in the first. Scaled down: frames of 64 KiB, inputs of 32 to 128 KiB cut."""
    monkeypatch.setattr(levels, "DEFAULT_FRAME", 64 << 10)
    monkeypatch.setattr(levels, "SPLIT_MIN", 32 << 10)
    rng = np.random.default_rng(12)
    part = rng.bytes(40_000)
    for data, frames in ((part + part, 1), (part + rng.bytes(40_000), 2)):
        enc = StreamEncoder(tiny_model, 4096, "fast")
        blob = enc.write(data) + enc.finish()
        assert len(list_stream(io.BytesIO(blob)).frames) == frames
        assert decompress(blob) == data


def test_a_frame_takes_the_default_frames_up_to_a_copy_of_its_own(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past two default frames, a frame takes as many of the next ones the encoder holds
    (``levels.MERGED_FRAME``) as reach a later one that repeats an earlier one, so that
    the copy is coded in the frame of its source; the rest stay default frames. Scaled
    down: default frames of 64 KiB, at most four to a frame. The archive is the same
    however the input arrives, decodes, and codes the copy where frames of 64 KiB cannot
    see it afresh."""
    # Unscaled: a merged frame is as long as the match model reaches, four default ones.
    assert levels.MERGED_FRAME == adaptive.WINDOW == 4 * levels.DEFAULT_FRAME
    monkeypatch.setattr(levels, "DEFAULT_FRAME", 64 << 10)
    monkeypatch.setattr(levels, "SPLIT_MIN", 32 << 10)
    monkeypatch.setattr(levels, "MERGED_FRAME", 256 << 10)
    rng = np.random.default_rng(13)
    copy, k = rng.bytes(40_000), 1 << 10
    cases = [
        # held past MERGED_FRAME while it streams: the copy at 140-180 KiB reaches back
        # into the first default frame, then default frames again
        (copy + rng.bytes(100 * k) + copy + rng.bytes(100 * k), [192 * k, 64 * k, 22_656]),
        # held whole to the end: the same plan there
        (copy + rng.bytes(100 * k) + copy + rng.bytes(20 * k), [192 * k, 6272]),
        # a copy in the fourth default frame of one in the second: all four in one
        (
            rng.bytes(70 * k) + copy + rng.bytes(90 * k) + copy + rng.bytes(60 * k),
            [256 * k, 43_136],
        ),
        # nothing shared: default frames
        (rng.bytes(300 * k), [64 * k] * 4 + [44 * k]),
    ]
    for data, frames in cases:
        assert sum(frames) == len(data)
        blobs = set()
        for chunk in (len(data), 5000):
            enc = StreamEncoder(tiny_model, 4096, "fast")
            pieces = [enc.write(data[i : i + chunk]) for i in range(0, len(data), chunk)]
            blobs.add(b"".join(pieces) + enc.finish())
        (blob,) = blobs
        assert [f.raw_len for f in list_stream(io.BytesIO(blob)).frames] == frames
        assert decompress(blob, tiny_model) == data
    # The mixed method finds the copy in the frame of its source.
    data = cases[1][0]
    merged = StreamEncoder(tiny_model, 16 << 10, "default")
    cut = StreamEncoder(tiny_model, 16 << 10, "default", frame_size=64 << 10)
    blob, fixed = (enc.write(data) + enc.finish() for enc in (merged, cut))
    assert len(list_stream(io.BytesIO(blob)).frames) == 2
    assert len(blob) < len(fixed) - len(copy) // 2
    assert decompress(blob, tiny_model) == data


def test_the_default_level_cuts_text_in_segments_of_8_kib() -> None:
    """Text blocks of the default level: one segment per 8 KiB, but at least 64 where the
    format's default count has them (blocks under 64 KiB keep it), always inside the
    range the format allows."""
    assert levels.TEXT_SEGMENT_BYTES == 8192 and levels.MIN_TEXT_SEGMENTS == 64
    assert levels.text_segments(1 << 20) == 128
    assert levels.text_segments(768_771) == 93
    assert levels.text_segments(400_000) == 64  # 6 KiB each: the floor
    assert levels.text_segments(50_000) == fmt.segment_count(50_000) == 48
    assert levels.text_segments(3000) == fmt.segment_count(3000)
    for n in (1, 255, 4095, 65_536, 524_287, 524_288, 524_289, 1 << 20):
        assert fmt.fewest_segments(n) <= levels.text_segments(n) <= fmt.segment_count(n)


def test_the_wide_level_cuts_its_blocks_into_more_segments() -> None:
    """``--wide``: blocks of 2 MiB in segments of 8 KiB (256 in a full block, 128 a step),
    as many as the format allows above 1 MiB; blocks of up to 1 MiB are cut as the
    default level cuts them. Its block size is the level's own where none is named."""
    assert LEVELS["wide"].block == levels.WIDE_BLOCK == 2 << 20
    assert levels.wide_segments(2 << 20) == 256
    assert levels.wide_segments(3 << 20) == 384
    assert levels.wide_segments(16 << 20) == 2048
    for n in (1, 4095, 65_536, 768_771, 1 << 20):
        assert levels.wide_segments(n) == levels.text_segments(n)
    for n in (1, 300_000, (1 << 20) + 1, 5_000_000, 16 << 20, 200 << 20, fmt.MAX_BLOCK):
        assert fmt.fewest_segments(n) <= levels.wide_segments(n) <= fmt.most_segments(n)
    assert levels.wide_segments(fmt.MAX_BLOCK) == fmt.MAX_WIDE_SEGMENTS
    # The mixers' damping has a shift for every count of sharers a group can have.
    largest_group = max(hi - lo for lo, hi in fmt.segment_groups(fmt.MAX_WIDE_SEGMENTS))
    assert len(adaptive.SQRT_SHIFT) == largest_group + 1
    model = memory_model()
    assert StreamEncoder(model, None, "wide").block_size == 2 << 20
    assert StreamEncoder(model, None, "default").block_size == levels.DEFAULT_BLOCK
    assert StreamEncoder(model, 4096, "wide").block_size == 4096
    with pytest.raises(ValueError, match="block size"):
        StreamEncoder(model, 0, "wide")


def test_wide_blocks_round_trip_in_more_segments_than_the_default_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A block cut into more segments than the default count (the most the format allows,
    at ``--wide``'s rule) codes and decodes; with segments of 64 bytes (the format's rule
    patched for encoder and decoder alike) the test takes 64 steps, not thousands."""
    set_segment_bytes(monkeypatch, 64)
    monkeypatch.setattr(levels, "WIDE_SEGMENT_BYTES", 64)
    model = memory_model()
    data = sample_text(96 << 10, seed=11)
    assert fmt.segment_count(len(data)) == fmt.MAX_BLOCK_SEGMENTS
    blob = compress(data, model, level="wide")
    (block,) = list_stream(io.BytesIO(blob)).blocks
    assert block.method == fmt.METHOD_MIXED and block.segments == fmt.most_segments(len(data))
    assert block.segments == 1536 > fmt.MAX_BLOCK_SEGMENTS
    assert decompress(blob, model) == data


def test_default_frames_are_split_only_into_whole_blocks() -> None:
    assert levels.split_frames(12 << 20, 1 << 20) == 6 << 20
    assert levels.split_frames(12_000_001, 1 << 20) == 6 << 20
    assert levels.split_frames(20 << 20, 16 << 20) == 16 << 20
    assert levels.split_frames(12 << 20, 16 << 20) == 0  # one block: cannot be cut
    assert levels.split_frames(8 << 20, 1 << 20) == 0
    assert levels.split_frames((32 << 20) + 1, 1 << 20) == 0


def test_truncation_at_a_frame_boundary_is_detected(
    framed: tuple[bytes, bytes], tiny_model: IntModel
) -> None:
    """A frame's last block says whether another frame follows, so an archive cut between
    frames (or before its index) is not mistaken for a shorter one; the frames before the
    cut have been written."""
    data, blob = framed
    info = list_stream(io.BytesIO(blob))
    cuts = [(f.offset + f.coded_len, f.raw_offset + f.raw_len) for f in info.frames]
    for cut, raw_end in cuts:  # the last cut is the index's start
        out, err = decode_or_damage(blob[:cut], tiny_model)
        assert isinstance(err, fmt.FormatError) and "truncated" in str(err), cut
        assert out == data[:raw_end]
        with pytest.raises(fmt.FormatError, match="truncated"):
            list_stream(io.BytesIO(blob[:cut]))
    # Nor can another stream behind the cut hide it.
    tail = compress(b"more", tiny_model)
    for cut, _ in cuts:
        assert isinstance(decode_or_damage(blob[:cut] + tail, tiny_model)[1], fmt.FormatError)


def test_damaged_index_is_refused(streams: list[tuple[bytes, bytes]]) -> None:
    """Every bit flip in the index is refused by the decoder and by the reader (which,
    finding no index that reads back at the end, walks the stream and reads the index
    there); an index that is intact but disagrees with the frames is refused by the
    decoder. (Frames of stored blocks: the test decodes the archive a few hundred times.)"""
    data, blob = streams[4]
    _, start = fmt.index_before(io.BytesIO(blob), len(blob))
    index = fmt.read_index(io.BytesIO(blob[start:]))
    for pos in range(start, len(blob)):
        for bit in range(8):
            bad = bytearray(blob)
            bad[pos] ^= 1 << bit
            out, err = decode_or_damage(bytes(bad))
            assert isinstance(err, fmt.FormatError), (pos, bit)
            assert out == data  # the frames were good
            with pytest.raises(fmt.FormatError):
                ArchiveReader(io.BytesIO(bytes(bad)), lookup_for()).read()
    frames = index.frames
    wrong = [
        fmt.Index(index.header_len + 1, frames),
        fmt.Index(index.header_len, frames[:-1]),
        fmt.Index(index.header_len, frames + [frames[-1]]),
        fmt.Index(index.header_len, frames[::-1]),
        fmt.Index(
            index.header_len,
            [fmt.FrameEntry(frames[0].raw_len + 1, frames[0].coded_len)] + frames[1:],
        ),
    ]
    for idx in wrong:
        with pytest.raises(fmt.FormatError, match="index does not match the frames"):
            decompress(blob[:start] + idx.pack())
    with pytest.raises(fmt.FormatError, match="truncated archive: unexpected end of data in index"):
        decompress(blob[:start])


# ----------------------------------------------------------------------------- concatenation
@pytest.fixture(scope="session")
def streams(tiny_model: IntModel, framed: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    """(data, stream) pairs of every shape: many frames with an index, one frame of several
    blocks, empty, one byte, many stored frames."""
    parts = [framed]
    for data, block, frame, level in [
        (sample_text(600, seed=8), 256, 1 << 20, "default"),
        (b"", 256, 256, "default"),
        (b"!", 256, 256, "default"),
        (_random_bytes(1000, seed=3), 256, 256, "fast"),
    ]:
        parts.append((data, compress(data, tiny_model, block, level, frame_size=frame)))
    return parts


def test_concatenated_streams(streams: list[tuple[bytes, bytes]], tiny_model: IntModel) -> None:
    """Streams back to back decode to their contents back to back; the listing has every
    stream's frames, at their offsets in the whole."""
    for order in ([0, 1, 2, 3, 4], [4, 2, 2, 1, 0, 3], [3, 3], [2]):
        data = b"".join(streams[i][0] for i in order)
        blob = b"".join(streams[i][1] for i in order)
        assert decompress(blob, tiny_model) == data
        info = list_stream(io.BytesIO(blob))
        assert (info.streams, info.raw_len, info.archive_len) == (len(order), len(data), len(blob))
        expect, base, raw = [], 0, 0
        for i in order:
            for f in list_stream(io.BytesIO(streams[i][1])).frames:
                expect.append((f.offset + base, f.coded_len, f.raw_offset + raw, f.raw_len))
            base += len(streams[i][1])
            raw += len(streams[i][0])
        got = [(f.offset, f.coded_len, f.raw_offset, f.raw_len) for f in info.frames]
        assert got == expect


# ----------------------------------------------------------------------------- reader
def _read_n(r: ArchiveReader, n: int) -> bytes:
    """``n`` bytes from ``r``, fewer only at its end (a raw file's ``read`` may return
    less than asked, for instance at the end of a frame)."""
    parts: list[bytes] = []
    while n > 0 and (chunk := r.read(n)):
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def test_reader_decodes_only_the_frames_it_needs(
    framed: tuple[bytes, bytes], tiny_model: IntModel
) -> None:
    data, blob = framed
    r = ArchiveReader(io.BytesIO(blob), lookup_for(tiny_model))
    assert (r.size, r.frame_count, r.frames_decoded) == (len(data), 6, 0)
    assert r.seek(1300) == 1300
    assert r.read(100) == data[1300:1400]
    assert r.frames_decoded == 1  # frame 2 alone (bytes 1024..1536)
    assert r.tell() == 1400
    assert _read_n(r, 200) == data[1400:1600]  # frame 2 again (kept), then frame 3
    assert r.frames_decoded == 2
    r.seek(-30, os.SEEK_END)
    assert r.read() == data[-30:]
    assert r.frames_decoded == 3
    assert r.read(10) == b"" and r.frames_decoded == 3
    r.seek(0)
    assert r.read() == data
    assert r.frames_decoded == 3 + 6  # (only the frame read last is kept)
    with pytest.raises(ValueError):
        r.seek(-1)


def test_reader_does_not_touch_other_frames(
    framed: tuple[bytes, bytes], tiny_model: IntModel
) -> None:
    """Damage in frame 0 does not stop reading frame 4, and reading frame 4 does not read
    frame 0's bytes: each frame decodes alone from the stream header."""
    data, blob = framed
    first = walk_blocks(blob)[0]
    bad = bytearray(blob)
    bad[first[0] + first[2] - 1] ^= 1  # the first block's check
    reads: list[tuple[int, int]] = []

    class Spy(io.BytesIO):
        def read(self, n: int | None = -1) -> bytes:
            reads.append((self.tell(), n if n is not None and n >= 0 else len(bad)))
            return super().read(n)

    r = ArchiveReader(Spy(bytes(bad)), lookup_for(tiny_model))
    reads.clear()
    r.seek(4 * 512 + 100)
    assert r.read(300) == data[2148:2448]
    assert r.frames_decoded == 1
    f0 = list_stream(io.BytesIO(blob)).frames[0]
    assert all(at + n <= f0.offset or at >= f0.offset + f0.coded_len for at, n in reads)
    r.seek(10)
    with pytest.raises(fmt.FormatError, match="checksum mismatch"):
        r.read(10)


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4], [1, 0, 2, 4], [4, 0, 1], [1, 3, 2]])
def test_reader_over_concatenated_streams(
    order: list[int], streams: list[tuple[bytes, bytes]], tiny_model: IntModel
) -> None:
    """Streams with and without an index, in any order (the reader finds indexes from the
    end and walks what none covers): any range reads right, decoding only its frames."""
    data = b"".join(streams[i][0] for i in order)
    blob = b"".join(streams[i][1] for i in order)
    info = list_stream(io.BytesIO(blob))
    r = ArchiveReader(io.BytesIO(blob), lookup_for(tiny_model))
    assert (r.size, r.frame_count) == (len(data), len(info.frames))
    rng = random.Random(len(order))
    for _ in range(12):
        at = rng.randrange(len(data))
        n = rng.randint(1, 700)
        before = r.frames_decoded
        r.seek(at)
        assert _read_n(r, n) == data[at : at + n]
        end = min(at + n, len(data))
        needed = [
            f
            for f in info.frames
            if f.raw_offset < end and at < f.raw_offset + f.raw_len and f.raw_len
        ]
        assert r.frames_decoded - before <= len(needed)
    r.seek(0)
    assert r.read() == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_reader_on_random_bytes(tail: bytes) -> None:
    try:
        ArchiveReader(io.BytesIO(fmt.MAGIC + tail), lookup_for()).read()
    except DAMAGE:
        pass


# ----------------------------------------------------------------------------- damage
@pytest.fixture(params=["default", "fast", "repeat", "copy"])
def small_archive(
    request: pytest.FixtureRequest,
    tiny_model: IntModel,
    monkeypatch: pytest.MonkeyPatch,
    small_tables: None,
) -> tuple[bytes, bytes, list[int]]:
    """(data, archive, block methods): a model-coded block (the level's network method),
    a stored one, an LZMA one (stored at level fast; "repeat": the default level, and a
    repeat block instead), and a short model-coded block, in two frames of two blocks,
    with an index ("copy": the second frame random bytes, then a copy block of them, found
    through anchors a few bytes apart).

    Blocks of 64 bytes in 8-byte segments keep every model decode to 8 steps, and small
    adaptive tables keep the mixed method's per-stream setup cheap, so the exhaustive
    damage tests below cost milliseconds per case."""
    set_segment_bytes(monkeypatch, 8)
    rng = np.random.default_rng(5)
    period = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
    run = period * 8  # a repeat block; with its last byte changed, LZMA's: one long match
    if request.param != "repeat":
        run = run[:-1] + bytes([run[-1] ^ 0x55])
    data = (
        sample_text(64, seed=1)
        + rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
        + run
        + sample_text(20, seed=2)
    )
    if request.param == "copy":
        monkeypatch.setattr(repeats, "ANCHOR_BITS", 3)
        monkeypatch.setattr(engine, "COPY_MIN", 64)
        again = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
        data = data[:128] + again + again
    level = request.param if request.param in ("default", "fast") else "default"
    blob = compress(data, tiny_model, block_size=64, level=level, frame_size=128)
    info = list_stream(io.BytesIO(blob))
    methods = [b.method for b in info.blocks]
    if request.param == "copy":
        assert methods == [methods[0], fmt.METHOD_STORED, fmt.METHOD_STORED, fmt.METHOD_STORED]
        assert [b.segments for b in info.blocks[1:]] == [0, 0, fmt.STORED_COPY]
        assert info.blocks[3].distance == 64 and info.blocks[3].coded_len == 0
        return data, blob, methods
    third = fmt.METHOD_LZMA if request.param == "default" else fmt.METHOD_STORED
    assert methods[0] in fmt.MODEL_METHODS and methods[3] == methods[0]
    assert methods[1:3] == [fmt.METHOD_STORED, third]
    repeat = info.blocks[2].segments == fmt.STORED_REPEAT
    assert repeat == (request.param == "repeat") and not info.blocks[1].segments
    assert len(info.frames) == 2 and blob.endswith(fmt.INDEX_MAGIC)
    return data, blob, methods


def test_small_archive_round_trips(
    small_archive: tuple[bytes, bytes, list[int]], tiny_model: IntModel
) -> None:
    data, blob, _ = small_archive
    assert decompress(blob, tiny_model) == data
    assert ArchiveReader(io.BytesIO(blob), lookup_for(tiny_model)).read() == data


def test_every_truncation_is_refused(
    small_archive: tuple[bytes, bytes, list[int]], tiny_model: IntModel
) -> None:
    """Every proper prefix of an archive raises FormatError; the output written before the
    error is always a prefix of the original (good blocks only). (Mixed method: every third
    prefix and the last 24, to bound the time.)"""
    data, blob, methods = small_archive
    get = lookup_for(tiny_model)
    cuts = range(len(blob))
    if fmt.METHOD_MIXED in methods:
        cuts = sorted(set(range(0, len(blob), 3)) | set(range(len(blob) - 24, len(blob))))
    for n in cuts:
        out = io.BytesIO()
        with pytest.raises(fmt.FormatError):
            decompress_stream(io.BytesIO(blob[:n]), out, get)
        assert data.startswith(out.getvalue()), n
        with pytest.raises(fmt.FormatError):
            list_stream(io.BytesIO(blob[:n]))


def test_every_bit_flip_is_caught(
    small_archive: tuple[bytes, bytes, list[int]], tiny_model: IntModel
) -> None:
    """Flip each bit of the archive in turn: decoding raises FormatError/ModelError, or
    returns exactly the original (a bit nobody reads) -- never different bytes silently.

    Every bit of the plain-model archive; for the mixed method (tens of milliseconds per
    decode), one bit of every other byte, a different bit position each time."""
    data, blob, methods = small_archive
    every_bit = fmt.METHOD_MIXED not in methods
    silent: list[int] = []
    for pos in range(0, len(blob), 1 if every_bit else 2):
        for bit in range(8) if every_bit else [pos // 2 % 8]:
            bad = bytearray(blob)
            bad[pos] ^= 1 << bit
            out, err = decode_or_damage(bytes(bad), tiny_model)
            if err is not None:
                assert data.startswith(out)
                continue
            assert out == data, f"bit {bit} of byte {pos}: silently wrong output"
            silent.append(pos)
    # Only payload bits the decoders never look at may go unnoticed (the range coder's
    # last word has some); there are few of them, and none in any other field.
    coded = [
        range(at + n - fmt.CHECK_SIZE - b.coded_len, at + n - fmt.CHECK_SIZE)
        for at, b, n in walk_blocks(blob)
        if b.method != fmt.METHOD_STORED
    ]
    assert all(any(pos in r for r in coded) for pos in silent), silent
    assert len(silent) < len(blob) // 4


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_random_overwrites_never_give_wrong_data(
    small_archive: tuple[bytes, bytes, list[int]], tiny_model: IntModel, data: st.DataObject
) -> None:
    """Overwrite a random span with random bytes (multi-byte damage, as on a bad disk)."""
    original, blob, _ = small_archive
    start = data.draw(st.integers(0, len(blob) - 1))
    patch = data.draw(st.binary(min_size=1, max_size=16))
    bad = blob[:start] + patch + blob[start + len(patch) :]
    out, err = decode_or_damage(bad, tiny_model)
    if err is not None:
        assert original.startswith(out)
    else:
        assert out == original


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_format_errors(blob: bytes) -> None:
    for b in (blob, fmt.MAGIC + blob):
        try:
            decompress_stream(io.BytesIO(b), io.BytesIO(), lookup_for())
        except DAMAGE:
            pass
        try:
            list_stream(io.BytesIO(b))
        except fmt.FormatError:
            pass


@settings(max_examples=300, deadline=None)
@given(block_size=st.integers(1, 256), ref=MODEL_REFS, tail=st.binary(max_size=300))
def test_random_bytes_after_a_valid_header(
    block_size: int, ref: tuple[int, str], tail: bytes
) -> None:
    """Random bytes behind a valid header reach the block parser and, with the model the
    header names at hand, the payload decoders."""
    model = memory_model()
    if ref[0] == fmt.MODEL_HASH:
        ref = zoo.model_ref(model)
    head = fmt.Header(block_size, *ref).pack()
    try:
        decompress_stream(io.BytesIO(head + tail), io.BytesIO(), lookup_for(model))
    except DAMAGE:
        pass


def test_list_stream_needs_no_model(small_archive: tuple[bytes, bytes, list[int]]) -> None:
    data, blob, methods = small_archive
    info = list_stream(io.BytesIO(blob))  # (its model lookup fails if called)
    assert info.raw_len == len(data)
    assert info.archive_len == len(blob)
    last = len(data) - 192  # 20 bytes, or a copy's 64
    assert [b.raw_len for b in info.blocks] == [64, 64, 64, last]
    assert [b.method for b in info.blocks] == methods
    assert [b.frame for b in info.blocks] == [0, 0, 1, 1]
    assert info.blocks[0].segments == 8
    assert [(f.raw_offset, f.raw_len) for f in info.frames] == [(0, 128), (128, 64 + last)]

    # Also from a pipe (no seeking over payloads).
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._f = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:
            chunk = self._f.read(min(len(b), 7))
            b[: len(chunk)] = chunk
            return len(chunk)

    piped = list_stream(io.BufferedReader(Pipe(blob), buffer_size=16))  # type: ignore[arg-type]
    assert piped.blocks == info.blocks and piped.frames == info.frames


# ----------------------------------------------------------------------------- frames in place
@pytest.fixture(scope="session")
def stored_frames(tiny_model: IntModel) -> tuple[bytes, bytes]:
    """(data, archive): 2,048 random bytes, stored in blocks of 256 and four frames of two
    blocks, all of the same lengths, with an index."""
    data = _random_bytes(2048, seed=4)
    blob = compress(data, tiny_model, block_size=256, frame_size=512, level="fast")
    f = list_stream(io.BytesIO(blob)).frames
    assert len({(x.raw_len, x.coded_len) for x in f}) == 1 and len(f) == 4
    return data, blob


def _frame_bytes(blob: bytes) -> tuple[bytes, list[bytes], bytes]:
    """A one-stream archive cut into its header, its frames and its index."""
    f = list_stream(io.BytesIO(blob)).frames
    frames = [blob[x.offset : x.offset + x.coded_len] for x in f]
    return blob[: f[0].offset], frames, blob[f[-1].offset + f[-1].coded_len :]


@pytest.mark.parametrize(
    "order", [[0, 2, 1, 3], [1, 0, 2, 3], [0, 1, 1, 3], [0, 0, 2, 3], [0, 1, 3, 2], [3, 1, 2, 0]]
)
def test_frames_swapped_or_repeated_are_caught(
    order: list[int], stored_frames: tuple[bytes, bytes], tiny_model: IntModel
) -> None:
    """Frames of equal lengths swapped or repeated pass the index (it holds lengths), and
    each is intact on its own; but each frame's checks start from its own seed (the stream
    header and the frame's number), so the first frame out of place fails its first
    block's check -- in the decoder, and in the reader, which decodes frames alone."""
    data, blob = stored_frames
    header, frames, index = _frame_bytes(blob)
    bad = header + b"".join(frames[i] for i in order) + index
    first = next(n for n, i in enumerate(order) if i != n)
    out, err = decode_or_damage(bad)
    assert isinstance(err, fmt.FormatError)
    lo, hi = 512 * first, 512 * first + 256
    assert str(err) == f"corrupted archive: block {2 * first} (bytes {lo}..{hi}) checksum mismatch"
    assert out == data[:lo]
    r = ArchiveReader(io.BytesIO(bad), lookup_for())
    r.seek(lo)
    with pytest.raises(fmt.FormatError, match="checksum mismatch"):
        r.read(10)


@pytest.mark.parametrize("order", [[0, 2, 3], [0, 1, 1, 2, 3], [0, 1, 2, 2, 3], [1, 2, 3], [0, 3]])
def test_frames_dropped_or_added_are_caught(
    order: list[int], stored_frames: tuple[bytes, bytes]
) -> None:
    """A frame dropped or added, the index rebuilt to match: the frames after it are out
    of place."""
    data, blob = stored_frames
    header, frames, _ = _frame_bytes(blob)
    entries = [fmt.FrameEntry(512, len(frames[i])) for i in order]
    bad = header + b"".join(frames[i] for i in order) + fmt.Index(len(header), entries).pack()
    out, err = decode_or_damage(bad)
    assert isinstance(err, fmt.FormatError) and "checksum mismatch" in str(err)
    assert data.startswith(out) and len(out) < len(data)
    with pytest.raises(fmt.FormatError, match="checksum mismatch"):
        ArchiveReader(io.BytesIO(bad), lookup_for()).read()


def test_frames_moved_from_another_stream_are_caught(
    stored_frames: tuple[bytes, bytes], tiny_model: IntModel, tiny_model2: IntModel
) -> None:
    """A frame taken from another stream fails, whether that stream's header differs (here
    the model it names) or the frame stood at another place there."""
    data, blob = stored_frames
    header, frames, index = _frame_bytes(blob)
    other_data = _random_bytes(2048, seed=5)
    for model in (tiny_model2, tiny_model):
        other = compress(other_data, model, block_size=256, frame_size=512, level="fast")
        other_header, other_frames, _ = _frame_bytes(other)
        assert (other_header == header) == (model is tiny_model)
        taken = other_frames[1 if model is tiny_model2 else 2]
        bad = header + frames[0] + taken + b"".join(frames[2:]) + index
        out, err = decode_or_damage(bad)
        assert isinstance(err, fmt.FormatError) and "block 2 (bytes 512..768)" in str(err)
        assert out == data[:512]


def test_index_of_frames_over_32_gib_reads_back() -> None:
    """Frame lengths of 2**35 and more (frames of 32 GiB, ``-F 64G``) take varints of six
    bytes and more: the index reads back, also from its end."""
    frames = [fmt.FrameEntry(1 << 35, 1 << 35), fmt.FrameEntry(1, 10), fmt.FrameEntry(1 << 62, 1)]
    index = fmt.Index(6, frames)
    assert fmt.read_index(io.BytesIO(index.pack())) == index
    assert fmt.index_before(io.BytesIO(b"x" + index.pack()), 1 + len(index.pack())) == (index, 1)
    too_big = fmt.Index(6, [fmt.FrameEntry((1 << 62) + 1, 1)]).pack()
    with pytest.raises(fmt.FormatError, match="out of range"):
        fmt.read_index(io.BytesIO(too_big))


def _read_with_timeout(blob: bytes, model: IntModel, at: int = 0, timeout: float = 120.0):
    """What ``ArchiveReader(blob).seek(at).read()`` returns or raises, run in a thread so
    that a reader that loops forever fails the test instead of hanging it."""
    result: list[object] = []

    def run() -> None:
        try:
            r = ArchiveReader(io.BytesIO(blob), lookup_for(model))
            r.seek(at)
            result.append(r.read())
        except BaseException as e:  # (reported to the test below)
            result.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"the reader does not return within {timeout} s"
    return result[0]


@pytest.mark.parametrize(
    "raw_change, coded_change",
    [((-100, 0), (0, 0)), ((100, 0), (0, 0)), ((-100, 100), (0, 0)), ((0, 0), (1, -1))],
    ids=["frame-shorter", "frame-longer", "length-moved", "coded-length-moved"],
)
def test_reader_checks_frame_lengths_against_the_index(
    raw_change: tuple[int, int],
    coded_change: tuple[int, int],
    framed: tuple[bytes, bytes],
    tiny_model: IntModel,
) -> None:
    """An index with a valid CRC whose lengths of frames 0 and 1 disagree with the frames:
    reading a frame it misdescribes fails, and never returns other bytes or loops (a frame
    claimed longer than it decodes to once made ``readinto`` spin at its real end)."""
    data, blob = framed
    index, start = fmt.index_before(io.BytesIO(blob), len(blob))
    for i in range(2):
        index.frames[i].raw_len += raw_change[i]
        index.frames[i].coded_len += coded_change[i]
    bad = blob[:start] + index.pack()
    err = _read_with_timeout(bad, tiny_model)
    assert isinstance(err, fmt.FormatError) and "corrupted archive" in str(err)
    if raw_change[1] or coded_change[1]:  # frame 1 alone
        at = 512 + raw_change[0] + 10
        assert isinstance(_read_with_timeout(bad, tiny_model, at=at), fmt.FormatError)


def _forge(f, target: int) -> bytes:
    """The 4 bytes ``x`` with ``f(x) == target``, for ``f`` affine over GF(2) in the bits
    of ``x`` (a CRC32 over data that holds ``x``)."""
    zero = f(bytes(4))
    basis: dict[int, tuple[int, int]] = {}  # highest bit -> (image, combination of bits)
    for i in range(32):
        v, c = f((1 << i).to_bytes(4, "little")) ^ zero, 1 << i
        while v and v.bit_length() - 1 in basis:
            bv, bc = basis[v.bit_length() - 1]
            v, c = v ^ bv, c ^ bc
        if v:
            basis[v.bit_length() - 1] = (v, c)
    want, combo = zero ^ target, 0
    while want:
        bv, bc = basis[want.bit_length() - 1]
        want, combo = want ^ bv, combo ^ bc
    x = combo.to_bytes(4, "little")
    assert f(x) == target
    return x


def test_bytes_that_only_look_like_an_index_footer(
    framed: tuple[bytes, bytes], tiny_model: IntModel
) -> None:
    """A stream of one frame whose last 8 bytes happen to read as an index's footer (a
    small length, then "NNCi" -- here its check, forged): no index parses there, so the
    reader walks the file forwards and reads it, alone or behind a stream with an index."""
    data = _random_bytes(40, seed=9)
    footer_size = b"\x09\x00\x00\x00"
    header = fmt.Header(48).pack()
    head = fmt.BlockHeader(fmt.METHOD_STORED, 48, 48, 0, fmt.END_STREAM).pack(48)
    seed = fmt.frame_seed(header, 0, 0)
    target = fmt.CHECK.unpack(fmt.INDEX_MAGIC)[0]
    x = _forge(lambda x: fmt.block_check(head, data + x + footer_size, seed), target)
    raw = data + x + footer_size
    lookalike = header + head + raw + fmt.INDEX_MAGIC
    assert lookalike[-8:] == footer_size + fmt.INDEX_MAGIC
    assert fmt.index_before(io.BytesIO(lookalike), len(lookalike)) is None
    assert decompress(lookalike) == raw
    assert _read_with_timeout(lookalike, tiny_model) == raw
    framed_data, framed_blob = framed
    both = framed_blob + lookalike
    assert _read_with_timeout(both, tiny_model, at=2000) == (framed_data + raw)[2000:]


# ----------------------------------------------------------------------------- regressions
def test_reader_walk_compares_the_index_with_the_frames(
    stored_frames: tuple[bytes, bytes], tiny_model: IntModel
) -> None:
    """An index with a valid CRC that disagrees with its frames is refused by the decoder,
    and by the reader when it walks to that index (the stream is followed by one without an
    index, so the index is not found from the end)."""
    data, blob = stored_frames
    header, frames, _ = _frame_bytes(blob)
    entries = [fmt.FrameEntry(512 + 100 * (i == 0), len(f)) for i, f in enumerate(frames)]
    bad = header + b"".join(frames) + fmt.Index(len(header), entries).pack()
    bad += compress(b"tail", tiny_model)
    with pytest.raises(fmt.FormatError, match="index does not match"):
        decompress(bad, tiny_model)
    with pytest.raises(fmt.FormatError):
        ArchiveReader(io.BytesIO(bad), lookup_for(tiny_model)).read()


def test_reader_offsets_behind_a_misdescribed_frame(
    stored_frames: tuple[bytes, bytes], tiny_model: IntModel
) -> None:
    """An index with a valid CRC that says frame 0 is 100 bytes shorter than it is: reading
    at offset 500 decodes frame 1 alone, which the index places 100 bytes early; its seed
    includes where it starts, so its first block's check fails instead of giving other
    bytes than asked for."""
    data, blob = stored_frames
    index, start = fmt.index_before(io.BytesIO(blob), len(blob))
    index.frames[0].raw_len -= 100
    bad = blob[:start] + index.pack()
    got = _read_with_timeout(bad, tiny_model, at=500)
    assert isinstance(got, fmt.FormatError) and "checksum mismatch" in str(got)


@pytest.mark.parametrize("model, prefix", [(1, "abcd"), (fmt.MODEL_NONE, "ab")])
def test_header_pack_refuses_any_prefix_without_model_15(model: int, prefix: str) -> None:
    """A hash prefix with a model other than 15 is refused, whatever its length."""
    with pytest.raises(ValueError):
        fmt.Header(64, model, prefix).pack()


def test_the_default_preset_is_not_named_by_number() -> None:
    """Preset 1 is the configuration a header names by saying nothing; naming it by number
    would be a second encoding of the same header."""
    raw = fmt.MAGIC + bytes([1 | fmt.CONFIG_PRESET << 4, 1]) + fmt.varint(5)
    with pytest.raises(fmt.FormatError, match="default preset named by number"):
        fmt.read_header(io.BytesIO(raw))


def test_table_bits_up_to_24() -> None:
    """Context tables of up to 2^24 slots (preset 18; 2^22 before it, and readers of then
    refuse more), match tables of up to 2^24 as ever; larger ones are refused, written
    out or not."""
    for bits in (12, 22, 23, 24):
        big = dataclasses.replace(CUSTOM, table_bits=bits, match_bits=bits)
        assert Config.unpack(big.pack()) == big
    for table_bits, match_bits in ((25, 20), (20, 25), (11, 20), (20, 11)):
        with pytest.raises(ConfigError, match="table sizes out of range"):
            dataclasses.replace(CUSTOM, table_bits=table_bits, match_bits=match_bits)
        raw = bytearray(CUSTOM.pack())
        raw[1 + len(CUSTOM.contexts) + 5 : 1 + len(CUSTOM.contexts) + 7] = [table_bits, match_bits]
        with pytest.raises(ConfigError, match="table sizes out of range"):
            Config.unpack(bytes(raw))


def _refuses(cases: list[tuple[bytes, str]]) -> None:
    """``Config.unpack`` refuses each packed configuration with an error matching its
    message."""
    for bad, message in cases:
        with pytest.raises(ConfigError, match=message):
            Config.unpack(bad)


# ----------------------------------------------------------------------------- match probes
def test_match_probes_written_out() -> None:
    """``match_probes`` is one byte after the fixed fields, written only when not 0: a
    configuration without it packs as format 1's first release wrote it, and one with it
    is a byte longer, which earlier readers refuse ("wrong length")."""
    probed = dataclasses.replace(CUSTOM, match_probes=3)
    assert probed.pack() == CUSTOM.pack() + b"\x03"
    assert Config.unpack(probed.pack()) == probed
    assert Config.unpack(CUSTOM.pack()) == CUSTOM
    assert DEFAULT_2 == dataclasses.replace(DEFAULT, match_probes=4)
    _refuses(
        [
            (CUSTOM.pack() + b"\x00", "match probes of 0 written out"),
            (CUSTOM.pack() + b"\x09", "match probes out of range"),
            (CUSTOM.pack() + b"\x03\x03", "wrong length"),
        ]
    )
    with pytest.raises(ConfigError, match="match probes out of range"):
        dataclasses.replace(CUSTOM, match_probes=-1)


def test_match_probes_in_a_header(tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """A configuration with probes written out in the header decodes through it."""
    probed = dataclasses.replace(CUSTOM, match_probes=2)
    data = sample_text(3000, seed=11)
    blob = compress(data, tiny_model, block_size=1024, level=_custom_level(monkeypatch, probed))
    assert list_stream(io.BytesIO(blob)).config == probed
    assert decompress(blob, tiny_model) == data


# ----------------------------------------------------------------------------- extra mixers
def test_mixers_written_out() -> None:
    """``mixers`` follow the match probes byte (written then even when 0) as a count and
    the ids: a configuration without them packs as before, one with them is longer, which
    earlier readers refuse ("wrong length")."""
    mixed = dataclasses.replace(CUSTOM, mixers=(4, 1))
    assert mixed.pack() == CUSTOM.pack() + b"\x00\x02\x04\x01"
    both = dataclasses.replace(CUSTOM, match_probes=3, mixers=(5,))
    assert both.pack() == CUSTOM.pack() + b"\x03\x01\x05"
    for config in (mixed, both):
        assert Config.unpack(config.pack()) == config
    _refuses(
        [
            (CUSTOM.pack() + b"\x00\x00", "wrong length"),  # a count of 0 is never written
            (CUSTOM.pack() + b"\x00\x01", "wrong length"),
            (CUSTOM.pack() + b"\x00\x02\x01", "wrong length"),
            (CUSTOM.pack() + b"\x00\x01\x01\x02\x01", "wrong length"),
            (CUSTOM.pack() + b"\x00\x01\x00", "unknown mixer context 0"),
            (CUSTOM.pack() + b"\x00\x01\x08", "unknown mixer context 8"),
            (CUSTOM.pack() + b"\x00\x02\x03\x03", "listed twice"),
            (CUSTOM.pack() + b"\x09\x01\x03", "match probes out of range"),
        ]
    )
    with pytest.raises(ConfigError, match="at most 8 extra mixers"):
        dataclasses.replace(CUSTOM, mixers=(1, 2, 3, 4, 5, 1, 2, 3, 4))


# ----------------------------------------------------------------------------- bit histories
def test_histories_written_out() -> None:
    """``histories`` follow the mixers (their count written then even when 0) as one
    byte, written only when 1: a configuration without them packs as before, one with
    them is longer, which earlier readers refuse ("wrong length")."""
    kept = dataclasses.replace(CUSTOM, histories=1)
    assert kept.pack() == CUSTOM.pack() + b"\x00\x00\x01"
    both = dataclasses.replace(CUSTOM, match_probes=2, mixers=(4, 1), histories=1)
    assert both.pack() == CUSTOM.pack() + b"\x02\x02\x04\x01\x01"
    for config in (kept, both, MAX_HISTORIES):
        assert Config.unpack(config.pack()) == config
    assert MAX_HISTORIES == dataclasses.replace(MAX_TEXT, histories=1)
    _refuses(
        [
            (CUSTOM.pack() + b"\x00\x00\x00", "bit histories of 0 written out"),
            (CUSTOM.pack() + b"\x00\x01\x04\x00", "bit histories of 0 written out"),
            (CUSTOM.pack() + b"\x00\x00\x02", "unknown bit history setting 2"),
            (CUSTOM.pack() + b"\x00\x00\x01\x01", "wrong length"),
        ]
    )
    with pytest.raises(ConfigError, match="unknown bit history setting"):
        dataclasses.replace(CUSTOM, histories=-1)


def _coded_both_ways(
    model: IntModel, monkeypatch: pytest.MonkeyPatch, kept: Config, data: bytes, block: int
) -> StreamInfo:
    """``data`` in blocks of ``block`` bytes with ``kept`` written out in the header, and
    with ``CUSTOM``: each archive decodes, ``kept``'s lists it, and the two differ (what
    ``kept`` adds changes what is coded). The first archive's stream info."""
    blob = compress(data, model, block_size=block, level=_custom_level(monkeypatch, kept))
    info = list_stream(io.BytesIO(blob))
    assert info.config == kept
    assert decompress(blob, model) == data
    plain = compress(data, model, block_size=block, level=_custom_level(monkeypatch, CUSTOM))
    assert plain != blob and decompress(plain, model) == data
    return info


def test_histories_in_a_header(tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """A configuration with bit histories, written out in the header, decodes through
    them in blocks of many segments (a step's histories learnt in segment order, also
    where segments share a slot: the repeated text), and they change what is coded; the
    torch backend leaves such streams to the compiled loops."""
    kept = dataclasses.replace(CUSTOM, histories=1)
    data = sample_text(3000, seed=13) * 3
    info = _coded_both_ways(tiny_model, monkeypatch, kept, data, 4096)
    assert max(b.segments for b in info.blocks) > 1
    assert not torchmix.supports(kept, account=False) and torchmix.supports(CUSTOM, False)


# ------------------------------------------------- slot groups, warm-up and match length
def test_refinements_written_out() -> None:
    """``slot_ways``, ``warmup`` and ``match_min`` follow the histories (then written
    even when 0) as three bytes, written only when not (1, 0, 5): a configuration without
    them packs as before, one with them is longer, which earlier readers refuse."""
    ways = dataclasses.replace(CUSTOM, slot_ways=4)
    assert ways.pack() == CUSTOM.pack() + b"\x00\x00\x00\x04\x00\x05"
    short = dataclasses.replace(CUSTOM, match_min=2, histories=1, mixers=(4,))
    assert short.pack() == CUSTOM.pack() + b"\x00\x01\x04\x01\x01\x00\x02"
    for config in (ways, short, MAX_REFINED, dataclasses.replace(CUSTOM, warmup=1)):
        assert Config.unpack(config.pack()) == config
    assert MAX_REFINED == dataclasses.replace(
        MAX_HISTORIES, slot_ways=4, warmup=1, match_min=2, mix_shifts=(14, 14, 14), final_shift=19
    )
    _refuses(
        [
            (CUSTOM.pack() + b"\x00\x00\x00\x01\x00\x05", "default slot ways"),
            (CUSTOM.pack() + b"\x00\x00\x01\x01\x00", "wrong length"),
            (CUSTOM.pack() + b"\x00\x00\x01\x01\x00\x05\x01\x00", "wrong length"),
            (CUSTOM.pack() + b"\x00\x00\x00\x02\x00\x05", "groups of 1 or 4, not 2"),
            (CUSTOM.pack() + b"\x00\x00\x00\x01\x02\x05", "unknown mixer warm-up"),
            (CUSTOM.pack() + b"\x00\x00\x00\x01\x00\x01", "2 to 8 bytes, not 1"),
            (CUSTOM.pack() + b"\x00\x00\x00\x01\x00\x09", "2 to 8 bytes, not 9"),
            (CUSTOM.pack() + b"\x00\x00\x02\x04\x00\x05", "unknown bit history"),
        ]
    )


@pytest.mark.parametrize(
    "refinement",
    [dict(slot_ways=4), dict(warmup=1), dict(match_min=2), dict(match_min=8, match_probes=3)],
    ids=["ways", "warmup", "match-2", "match-8-probes"],
)
def test_refinements_in_a_header(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch, refinement: dict
) -> None:
    """Each of the three, written out in the header, decodes in blocks of many segments
    (segments that claim one group's slots, or share a weight set, in a step: the
    repeated text) and in blocks coded another way (stored: their contexts indexed for
    the match model by ``add_other_block`` with the stream's match length), and changes
    what is coded; the torch backend leaves such streams to the compiled loops."""
    kept = dataclasses.replace(CUSTOM, **refinement)
    noise = random.Random(14).randbytes(4096)  # a block stored, whatever the method
    data = (sample_text(3000, seed=14) * 3)[:8192] + noise + sample_text(2000, seed=14)
    info = _coded_both_ways(tiny_model, monkeypatch, kept, data, 4096)
    assert max(b.segments for b in info.blocks) > 1
    assert fmt.METHOD_STORED in {b.method for b in info.blocks}
    assert not torchmix.supports(kept, account=False)


# ------------------------------------------------------------------ fine probabilities
def test_fine_written_out() -> None:
    """``fine`` follows the slot ways, warm-up and match length (then written even when
    they are (1, 0, 5)) as one byte, written only when 1: a configuration without it
    packs as before, one with it is longer, which earlier readers refuse."""
    fine = dataclasses.replace(CUSTOM, fine=1)
    assert fine.pack() == CUSTOM.pack() + b"\x00\x00\x00\x01\x00\x05\x01"
    assert FINE_MAX.pack() == MAX_REFINED.pack() + b"\x01"
    assert FINE_TEXT == dataclasses.replace(TEXT_MIXERS, fine=1) == PRESETS[36]
    for config in (fine, FINE_TEXT, FINE_MAX, dataclasses.replace(fine, histories=1)):
        assert Config.unpack(config.pack()) == config
        assert Config.unpack(config.pack()).fine == 1
    _refuses(
        [
            (CUSTOM.pack() + b"\x00\x00\x00\x01\x00\x05\x00", "fine probabilities of 0"),
            (CUSTOM.pack() + b"\x00\x00\x00\x01\x00\x05\x02", "fine probability setting 2"),
            (CUSTOM.pack() + b"\x00\x00\x00\x01\x00\x05\x01\x01", "wrong length"),
        ]
    )


@pytest.mark.parametrize("histories", [0, 1], ids=["counts", "histories"])
def test_fine_in_a_header(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch, histories: int
) -> None:
    """Fine probabilities, written out in the header, decode in blocks of many segments
    and change what is coded; the torch backend runs them (without slot groups or bit
    histories, which it leaves to the compiled loops)."""
    kept = dataclasses.replace(CUSTOM, fine=1, histories=histories)
    data = sample_text(3000, seed=15) * 3
    info = _coded_both_ways(tiny_model, monkeypatch, kept, data, 4096)
    assert max(b.segments for b in info.blocks) > 1
    assert torchmix.supports(kept, account=False) == (not histories)


def test_fine_probabilities_near_certainty(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What fine probabilities are for: long runs of bits the model is all but certain
    of, a page of white. Runs of 0xFF (every bit a 1) and of 0x00 with a rare other byte
    code in far fewer bytes with them: truncated moves stop short of certainty, by
    2^apm_rate / 65536 a bit in the refinement stages where the bit is a 1."""
    sizes = {}
    for fill in (0xFF, 0x00):
        rng = random.Random(16)
        data = bytes(fill if rng.random() > 2e-4 else rng.randrange(256) for _ in range(200_000))
        for fine in (0, 1):
            level = _custom_level(monkeypatch, dataclasses.replace(CUSTOM, fine=fine))
            blob = compress(data, tiny_model, block_size=len(data), level=level)
            assert decompress(blob, tiny_model) == data
            sizes[fill, fine] = len(blob)
    assert sizes[0xFF, 1] < 0.85 * sizes[0xFF, 0]
    assert sizes[0x00, 1] < 0.85 * sizes[0x00, 0]


def test_mixers_in_a_header(tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """A configuration with extra mixers, written out in the header, decodes through them,
    and they change what is coded (the archive differs from the one without them)."""
    mixed = dataclasses.replace(CUSTOM, mixers=MIXERS[::-1])
    data = sample_text(6000, seed=12)
    _coded_both_ways(tiny_model, monkeypatch, mixed, data, 2048)
