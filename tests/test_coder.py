"""Lockstep coding of blocks, and the engine's block/method choices around it.

Round trips at every size that changes the layout: empty, one byte, around block boundaries
and around segment boundaries (the first ``n % S`` segments are one byte longer, so the set
of active segments shrinks on the last step), multi-block streams, concatenated archives, and
the "never worse than storing" bound.
"""

from __future__ import annotations

import io
import math
from dataclasses import replace

import numpy as np
import pytest
from conftest import (
    compress,
    decompress,
    header_size,
    lookup_for,
    memory_model,
    sample_text,
    set_segment_bytes,
    shrink_tables,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from nncompress import coder, engine, repeats
from nncompress import format as fmt
from nncompress.adaptive import StreamState
from nncompress.api import compress_bytes, decompress_bytes
from nncompress.config import DEFAULT, DEFAULT_2
from nncompress.engine import (
    Choice,
    compress_block,
    compress_stream,
    decompress_stream,
    list_stream,
)
from nncompress.levels import LEVELS
from nncompress.model import IntModel, ModelError
from nncompress.reader import ArchiveReader

#: The worst-case expansion docs/FORMAT.md documents: a header of at most 18 bytes (with
#: a preset configuration), 15 bytes per block, and an index of at most 20 + 10 per frame.
DOC_HEADER, DOC_BLOCK = 18, 15


def stored_size(n: int, block_size: int, named: IntModel | None) -> int:
    """The exact size of an archive of ``n`` bytes that are all stored, in one frame:
    header (naming ``named``), then per block a descriptor, the length unless full, the
    bytes and the check."""
    head = header_size(named, block_size) if named else len(fmt.Header(block_size).pack())
    size = head
    for lo in range(0, n, block_size):
        raw = min(block_size, n - lo)
        size += 1 + (0 if raw == block_size else len(fmt.varint(raw))) + raw + 4
    return size


def methods_of(blob: bytes) -> list[int]:
    return [b.method for b in list_stream(io.BytesIO(blob)).blocks]


def names_of(blob: bytes) -> list[str]:
    """The blocks' methods as listings name them ("repeat" for repeat blocks)."""
    return [fmt.method_name(b.method, b.segments) for b in list_stream(io.BytesIO(blob)).blocks]


def marked_run(n: int, step: int = 1 << 16) -> bytes:
    """``n`` zero bytes with a byte set in the middle of every ``step``: a run that LZMA2
    codes in next to nothing but that does not repeat a period (no repeat block)."""
    data = bytearray(n)
    for k, i in enumerate(range(step // 2, n, step)):
        data[i] = k % 255 + 1
    return bytes(data)


# ----------------------------------------------------------------------------- layout
def reference_segment_count(n: int) -> int:
    """The segment count exactly as docs/FORMAT.md specifies it."""
    return max(1, min(1024, max(n // 1024, min(16, n // 256))))


def reference_fewest_segments(n: int) -> int:
    """The fewest segments a block may have (docs/FORMAT.md): one per MiB."""
    return max(1, -(-n // (1 << 20)))


def reference_segment_groups(segments: int) -> list[tuple[int, int]]:
    """The groups of a mixed block's segments (docs/FORMAT.md): the first half rounded up
    and the rest."""
    if segments >= 2:
        return [(0, (segments + 1) // 2), ((segments + 1) // 2, segments)]
    return [(0, segments)]


def test_the_adaptive_loops_know_the_contexts_they_compile() -> None:
    """numba's cache of adaptive.py's loops, which inline contexts.py's hashes, is kept
    until adaptive.py changes: its digest of contexts.py must be current, so that a change
    to the contexts changes adaptive.py too (and the cached loops are compiled again)."""
    import hashlib
    from pathlib import Path

    from nncompress import adaptive, contexts

    text = Path(contexts.__file__).read_bytes().replace(b"\r\n", b"\n")
    digest = hashlib.sha256(text).hexdigest()
    assert adaptive.CONTEXTS_SHA256 == digest, f"set adaptive.CONTEXTS_SHA256 = {digest!r}"


def test_segment_groups_match_the_spec() -> None:
    for segments in (*range(1, 20), 1023, 1024):
        groups = fmt.segment_groups(segments)
        assert groups == reference_segment_groups(segments)
        assert groups[0][0] == 0 and groups[-1][1] == segments


def test_segment_count_boundaries() -> None:
    """``segment_count`` is part of the format: pin it to the spec at its boundaries."""
    edges = [0, 1, 63, 64, 65, 127, 128, 255, 256, 257, 511, 512, 1023, 1024, 1025, 4095]
    edges += [4096, 4097, 8191, 8192, 8703, 8704, 8705, 512 * 1024 - 1, 512 * 1024]
    edges += [512 * 1024 + 1, 1 << 20, 1 << 28]
    for n in edges:
        assert fmt.segment_count(n) == reference_segment_count(n), n
        assert fmt.fewest_segments(n) == reference_fewest_segments(n), n
    assert fmt.segment_count(1500) == 5


@given(st.integers(0, 1 << 28))
def test_segment_count_matches_the_spec(n: int) -> None:
    assert fmt.segment_count(n) == reference_segment_count(n)
    assert coder.segment_count(n) == reference_segment_count(n)  # what the encoder writes
    assert fmt.fewest_segments(n) == reference_fewest_segments(n)
    assert fmt.fewest_segments(n) <= fmt.segment_count(n)


@given(st.integers(1, 1 << 28))
def test_segment_count_is_sane(n: int) -> None:
    s = coder.segment_count(n)
    assert 1 <= s <= min(n, fmt.MAX_BLOCK_SEGMENTS, fmt.MAX_BLOCK_SEGMENTS)
    assert coder.segment_count(n + 1) >= s


@given(data=st.binary(max_size=300), segments=st.integers(1, 40))
def test_grid_round_trip(data: bytes, segments: int) -> None:
    """Segments are contiguous slices of the block; the long ones come first, so the rows
    still active at step t are always a prefix of the batch."""
    n = len(data)
    segments = min(segments, max(n, 1))
    grid = coder._grid(data, segments)
    assert coder._ungrid(grid, n) == data
    base, extra = coder._layout(n, segments)
    assert base * segments + extra == n
    pos = 0
    for i in range(segments):
        length = base + (i < extra)
        assert bytes(grid[i, :length].astype(np.uint8)) == data[pos : pos + length]
        pos += length
    for t in range(grid.shape[1]):
        k = coder._active(t, segments, base, extra)
        assert k == sum(1 for i in range(segments) if t < base + (i < extra))


# ----------------------------------------------------------------------------- blocks
def _block_round_trip(model: IntModel, data: bytes) -> tuple[bytes, int]:
    payload, segments = coder.encode_block(model, data)
    assert segments == coder.segment_count(len(data))
    assert len(payload) % 4 == 0
    assert coder.decode_block(model, payload, len(data), segments) == data
    return payload, segments


@pytest.mark.parametrize("n", [1, 2, 63, 64, 65, 127, 128, 129, 191, 640, 641, 703])
def test_block_round_trip_around_segment_boundaries(
    n: int, any_model: IntModel, small_segments: int
) -> None:
    data = sample_text(n, seed=n)
    _, segments = _block_round_trip(any_model, data)
    assert segments == max(1, n // small_segments)


def test_block_round_trip_one_byte_segments(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every segment a single byte: one lockstep step codes the whole block."""
    set_segment_bytes(monkeypatch, 1)
    data = sample_text(300, seed=3) + bytes(range(256))
    _, segments = _block_round_trip(tiny_model, data)
    assert segments == len(data)


def test_block_round_trip_segment_cap(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_SEGMENTS * SEGMENT_BYTES the segments grow instead of multiplying."""
    set_segment_bytes(monkeypatch, 16)
    monkeypatch.setattr(fmt, "MAX_BLOCK_SEGMENTS", 8)
    for n in (127, 128, 129, 16 * 8 * 3 + 5):
        _, segments = _block_round_trip(tiny_model, sample_text(n, seed=n))
        assert segments == min(8, max(1, n // 16))


@pytest.mark.parametrize("n", [1023, 1024, 17407, 17408, 17409])
def test_block_round_trip_real_segment_boundaries(tiny_model: IntModel, n: int) -> None:
    """With the real constants, where the segment count changes: below 4096 bytes (fewer
    than 16 segments of 256), at 16 segments, and where 1 KiB segments take over
    (17 segments from 17408 bytes; 17409 makes the first segment one byte longer)."""
    data = sample_text(n, seed=n)
    _, segments = _block_round_trip(tiny_model, data)
    assert segments == reference_segment_count(n)


def test_block_bytes_of_every_value(any_model: IntModel, small_segments: int) -> None:
    """All 256 byte values, including those the model thinks nearly impossible."""
    data = bytes(range(256)) * 3 + bytes(range(255, -1, -1))
    _block_round_trip(any_model, data)


def test_payload_cost_matches_the_model(tiny_model: IntModel, small_segments: int) -> None:
    """The range coder spends what the model's frequencies say, within a few words: the
    coder really codes with the model's probabilities, in the right order."""
    data = sample_text(64 * 20, seed=4)
    payload, segments = coder.encode_block(tiny_model, data)
    grid = coder._grid(data, segments)
    freqs = tiny_model.forward_sequence(grid).astype(np.float64)
    p = np.take_along_axis(freqs, grid[..., None], axis=2)[..., 0] / freqs.sum(axis=2)
    ideal_bits = -np.log2(p).sum()
    assert ideal_bits / len(data) < 5.0  # the test model really predicts this data
    assert ideal_bits <= 8 * len(payload) <= ideal_bits * 1.01 + 64


def test_decode_block_rejects_partial_words(tiny_model: IntModel) -> None:
    with pytest.raises(ValueError):
        coder.decode_block(tiny_model, b"\x00\x01\x02", 10, 1)


def test_decode_with_wrong_model_gives_wrong_bytes_not_a_crash(
    tiny_model: IntModel, tiny_model2: IntModel, small_segments: int
) -> None:
    """The coder itself cannot tell; the block CRC must (see test_format)."""
    data = sample_text(300, seed=5)
    payload, segments = coder.encode_block(tiny_model, data)
    try:
        out = coder.decode_block(tiny_model2, payload, len(data), segments)
    except ValueError:
        return
    assert out != data


# ----------------------------------------------------------------------------- streams
@pytest.mark.parametrize("block_size", [4096, 5000])
@pytest.mark.parametrize("delta", [-1, 0, 1])
@pytest.mark.parametrize("blocks", [1, 2])
def test_stream_sizes_around_block_boundaries(
    tiny_model: IntModel, small_segments: int, block_size: int, delta: int, blocks: int
) -> None:
    n = blocks * block_size + delta
    data = sample_text(n, seed=n)
    blob = compress(data, tiny_model, block_size=block_size, level="fast")
    info = list_stream(io.BytesIO(blob))
    assert [b.raw_len for b in info.blocks] == [block_size] * (n // block_size) + (
        [n % block_size] if n % block_size else []
    )
    # A block too short to pay for the coder's final word is stored instead.
    assert all(b.method == fmt.METHOD_MODEL for b in info.blocks if b.raw_len >= 64)
    assert decompress(blob, tiny_model) == data


def test_fast_level_runs_the_network_alone(tiny_model: IntModel, small_segments: int) -> None:
    """Level fast: the plain model method or stored, no LZMA trial, no adaptive mixing."""
    data = bytes(3000) + sample_text(1000)
    blob = compress(data, tiny_model, block_size=1000, level="fast")
    assert methods_of(blob) == [fmt.METHOD_STORED] * 3 + [fmt.METHOD_MODEL]
    assert decompress(blob, tiny_model) == data


def test_max_level_codes_in_the_fewest_segments(
    tiny_model: IntModel, small_segments: int, small_tables: None
) -> None:
    """Level max: the mixed method in the fewest segments the format allows (one per MiB),
    where the default cuts many; both decode, and the adaptive state carries across."""
    data = sample_text(1500, seed=11) + sample_text(1500, seed=11)
    default = list_stream(io.BytesIO(compress(data, tiny_model, block_size=2000))).blocks
    blob = compress(data, tiny_model, block_size=2000, level="max")
    blocks = list_stream(io.BytesIO(blob)).blocks
    assert [b.segments for b in default] == [2000 // small_segments, 1000 // small_segments]
    assert [(b.method, b.segments) for b in blocks] == [(fmt.METHOD_MIXED, 1)] * 2
    assert decompress(blob, tiny_model) == data


def test_empty_input(any_model: IntModel) -> None:
    blob = compress(b"", any_model)
    assert blob == b"NNC\x01\x00\x00"  # magic, no model, block size 0: nothing follows
    assert decompress(blob, any_model) == b""


@pytest.mark.parametrize("byte", [b"\x00", b"e", b"\xff"])
def test_one_byte(any_model: IntModel, byte: bytes) -> None:
    blob = compress(byte, any_model)
    assert len(blob) == 12  # header 6, descriptor 1, the byte, check 4
    assert methods_of(blob) == [fmt.METHOD_STORED]
    assert decompress(blob, any_model) == byte


@pytest.mark.slow
def test_a_mib_of_a_run_goes_to_lzma2_untried(tiny_model: IntModel) -> None:
    """A default-sized block of a run with a few marks (no period) at the default level:
    LZMA2 codes it in next to nothing (``engine.TRIVIAL``), so it is taken without trying
    the mixed method (which codes such a block at its usual pace, seconds a MiB, to save
    a few dozen bytes), and the stream names no model, needing none to decode."""
    data = marked_run(1 << 20)
    blob = compress(data, tiny_model)
    assert methods_of(blob) == [fmt.METHOD_LZMA]
    assert len(blob) < 300
    assert list_stream(io.BytesIO(blob)).model == fmt.MODEL_NONE
    assert decompress(blob, tiny_model) == data


def test_a_mib_of_a_run_mixed_where_a_level_tries_everything(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same block at a level that tries the mixed method on runs too (as ``--max``
    does; here the default level so changed, one segment without the network): the
    mixed method takes it since its fine probabilities come within 1/65536 of certainty;
    its payload stands for more raw bytes than the bound of streams without them allows
    (``format.MAX_EXPANSION_FINE``). (Slow: the whole MiB in one segment.)"""
    monkeypatch.setitem(LEVELS, "default", replace(LEVELS["default"], runs_by_lzma=False))
    data = marked_run(1 << 20, 1 << 20)  # one mark, in the middle
    blob = compress(data, tiny_model)
    assert methods_of(blob) == [fmt.METHOD_MIXED]
    assert len(blob) < 400
    (block,) = list_stream(io.BytesIO(blob)).blocks
    assert len(data) > fmt.max_raw_len(fmt.METHOD_MIXED, block.coded_len)
    assert decompress(blob, tiny_model) == data


def test_a_stream_that_starts_with_a_run_takes_its_preset_from_what_follows(
    tiny_model: IntModel,
) -> None:
    """Zeros look like binary data, but say nothing of what follows them (a disk image's
    empty start): the stream's preset comes from its first block that is not a run; a
    stream whose first frame is all runs keeps the level's own, untried."""
    from nncompress import records

    n = 1 << 16
    text = sample_text(2 * n, 5)
    plain = list_stream(io.BytesIO(compress(text, tiny_model, block_size=n)))
    data = bytes(n) + text
    blob = compress(data, tiny_model, block_size=n)
    info = list_stream(io.BytesIO(blob))
    assert info.config == plain.config == LEVELS["default"].config
    assert names_of(blob)[0] == "repeat"
    assert 20 in records.config_for(plain.config, bytes(n)).contexts  # (record kinds)
    assert 20 not in info.config.contexts
    zeros = list_stream(io.BytesIO(compress(bytes(2 * n), tiny_model, block_size=n)))
    assert zeros.config == plain.config
    assert decompress(blob, tiny_model) == data


def test_runs_taken_untried_then_a_block_the_mixed_method_loses(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run taken by LZMA2 without the mixed trial (``Choice.trivial``) and a repeat
    block (likewise), then mixed blocks, one of which the mixed method loses (random
    bytes, stored): rolling the statistics back codes the frame's earlier blocks again
    (``engine._recode``), where the runs must be seen as the decoder sees them (their
    bytes only), or the last block would not decode. (Random bytes look incompressible,
    where the encoder rolls back by a copy instead: here they are taken not to.)"""
    monkeypatch.setattr(engine, "looks_incompressible", lambda data: False)
    n = 1 << 16
    noise = np.random.default_rng(7).bytes(n)
    parts = [marked_run(n), bytes(n), sample_text(n, 1), noise, sample_text(n, 2)]
    data = b"".join(parts)
    blob = compress(data, tiny_model, block_size=n)
    assert names_of(blob) == ["lzma", "repeat", "mixed", "stored", "mixed"]
    assert decompress(blob, tiny_model) == data


@pytest.mark.parametrize(
    "period", [b"\x00", b"\xff", b"\xde\xad\xbe\xef", b"abc", bytes(range(64))]
)
@pytest.mark.parametrize("level", ["default", "max"])
def test_a_block_that_repeats_a_period_is_a_repeat_block(
    tiny_model: IntModel, period: bytes, level: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block that is a period of up to 1/``engine.REPEAT_UNTRIED`` of it said over and
    over (a run of one byte, a fill pattern, a period that does not divide the block) is
    written as that period, at every level and without trying the other methods (none
    can be smaller): a stream of one such block is 10 bytes, its two varints and the
    period, and names no model."""
    n = (1 << 19) + 5
    assert len(period) * engine.REPEAT_UNTRIED <= n
    data = fmt.repeated(period, n)
    assert len(data) == n and data.startswith(period * 3)

    def untried(*args: object) -> None:
        raise AssertionError("another method was tried")

    with monkeypatch.context() as m:
        for name in ("encode_block", "encode_block_mixed", "_lzma_compress"):
            m.setattr(engine, name, untried)
        blob = compress(data, tiny_model, level=level)
    assert names_of(blob) == ["repeat"]
    info = list_stream(io.BytesIO(blob))
    assert info.blocks[0].coded_len == len(period) and info.model == fmt.MODEL_NONE
    assert len(blob) == 10 + len(fmt.varint(n)) + len(fmt.varint(len(period))) + len(period)
    assert decompress(blob) == data


def test_a_longer_period_is_one_candidate_among_the_others(
    tiny_model: IntModel, small_segments: int
) -> None:
    """Periods longer than 1/``engine.REPEAT_UNTRIED`` of the block are tried with the
    other methods and the smallest kept: 100 random bytes said 80 times go as the period;
    3,000 bytes of text said twice go to a method that codes the text in less than 3,000;
    a run of 1,000 zeros (too short to go untried) as a period of one byte."""
    noise = np.random.default_rng(3).bytes(100)
    blob = compress(noise * 80, tiny_model)
    assert names_of(blob) == ["repeat"] and list_stream(io.BytesIO(blob)).blocks[0].coded_len == 100
    assert decompress(blob, tiny_model) == noise * 80
    text = sample_text(3000, 4) * 2
    assert repeats.period(text) == 3000  # (longer than the block's 1/6489)
    blob = compress(text, tiny_model)
    assert names_of(blob) != ["repeat"] and len(blob) < 3000
    assert decompress(blob, tiny_model) == text
    blob = compress(bytes(1000), tiny_model)
    assert names_of(blob) == ["repeat"] and decompress(blob, tiny_model) == bytes(1000)


def test_a_block_its_frame_holds_already_is_a_copy_block(
    tiny_model: IntModel, small_segments: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A block whose bytes its frame held before, at any distance and alignment (a file
    stored twice in a tarball), is written as a copy block, untried: no payload, the
    distance in its header. Blocks that only start or end inside the copy go to the
    other methods, and the mixed blocks after the copies find the text through them. The
    decoder refuses a distance that reaches before its frame's start; a frame cut
    between the copy and its source has no copy block."""
    monkeypatch.setattr(engine, "COPY_MIN", 0)  # (blocks of 4 KiB, not 64)
    text, other = sample_text(20_000, 6), sample_text(9000, 7)
    data = text + other + text[3000:] + other[:5000]
    seen: list[int] = []
    mixed = engine.encode_block_mixed

    def counted(model: IntModel, raw: bytes, *args: object, **kw: object) -> object:
        seen.append(len(raw))
        return mixed(model, raw, *args, **kw)

    monkeypatch.setattr(engine, "encode_block_mixed", counted)
    blob = compress(data, tiny_model, block_size=4096)
    info = list_stream(io.BytesIO(blob))
    names = [fmt.method_name(b.method, b.segments) for b in info.blocks]
    copies = [b for b in info.blocks if b.segments == fmt.STORED_COPY]
    # (the copy runs from byte 29,000 to the end: the blocks from 32 KiB on)
    assert names == ["mixed"] * 8 + ["copy"] * 5 and len(copies) == 5
    assert {b.distance for b in copies} == {26_000} and {b.coded_len for b in copies} == {0}
    assert len(seen) == 8  # the copies went untried
    assert decompress(blob, tiny_model) == data
    assert ArchiveReader(io.BytesIO(blob), lookup_for(tiny_model)).read() == data
    # Frames of 12 KiB: the copy's source is in another frame. Blocks under COPY_MIN: none.
    monkeypatch.setattr(engine, "COPY_MIN", 4097)
    assert "copy" not in names_of(compress(data, tiny_model, block_size=4096))
    cut = compress(data, tiny_model, block_size=4096, frame_size=12 << 10)
    assert "copy" not in names_of(cut) and decompress(cut, tiny_model) == data
    # A copy block moved to a frame's start reaches before it.
    header = fmt.Header(4096).pack()
    block = fmt.BlockHeader(
        fmt.METHOD_STORED, 10, 0, fmt.STORED_COPY, fmt.END_STREAM, 0, distance=5
    )
    head = block.pack(4096)
    check = fmt.block_check(head, b"x" * 10, fmt.frame_seed(header, 0, 0))
    raw = header + head + fmt.CHECK.pack(check)
    with pytest.raises(fmt.FormatError, match="copies from 5 bytes back, before its frame's start"):
        decompress(raw, tiny_model)


@pytest.mark.parametrize(
    "n, block_size", [(1, 4096), (4096, 4096), (10_000, 4096), (40_000, 1 << 20)]
)
def test_random_bytes_are_stored(
    tiny_model: IntModel, small_segments: int, n: int, block_size: int
) -> None:
    """Incompressible data is stored, and the archive never exceeds the input by more than
    the documented overhead."""
    data = np.random.default_rng(n).bytes(n)
    blob = compress(data, tiny_model, block_size=block_size)
    blocks = math.ceil(n / block_size)
    assert methods_of(blob) == [fmt.METHOD_STORED] * blocks
    assert len(blob) == stored_size(n, min(n, block_size), tiny_model if blocks > 1 else None)
    assert len(blob) - n <= DOC_HEADER + DOC_BLOCK * blocks
    assert decompress(blob, tiny_model) == data


@settings(max_examples=12, deadline=None)
@given(data=st.binary(max_size=600), block_size=st.integers(1, 300))
def test_never_worse_than_storing(data: bytes, block_size: int) -> None:
    """Any input, any block size: the bound holds and the round trip is exact."""
    model = memory_model()
    with pytest.MonkeyPatch.context() as mp:
        set_segment_bytes(mp, 32)
        shrink_tables(mp)
        blob = compress(data, model, block_size=block_size)
        out = decompress(blob, model)
    blocks = math.ceil(len(data) / block_size)
    assert len(blob) - len(data) <= DOC_HEADER + DOC_BLOCK * blocks
    assert out == data


def test_compress_block_prefers_the_smallest(tiny_model: IntModel, small_segments: int) -> None:
    text = sample_text(640, seed=9)
    choice = compress_block(tiny_model, text, (fmt.METHOD_MODEL, fmt.METHOD_LZMA), StreamState())
    assert choice.method == fmt.METHOD_MODEL and len(choice.payload) < len(text)
    assert choice.param == 10 and choice.record == 0 and not choice.x86
    choice = compress_block(tiny_model, text, (), StreamState())
    assert choice == Choice(fmt.METHOD_STORED, text)


def test_concatenated_archives(
    tiny_model: IntModel, tiny_model2: IntModel, small_segments: int, small_tables: None
) -> None:
    """``cat a.nnc b.nnc`` decodes to a + b, even with different models and block sizes."""
    a, b, c = sample_text(700, 1), bytes(500) + sample_text(300, 2), b""
    blob_a = compress(a, tiny_model, block_size=256)
    blob_b = compress(b, tiny_model2, block_size=4096)
    blob_c = compress(c, tiny_model)
    assert decompress(blob_a + blob_b + blob_c + blob_a, tiny_model, tiny_model2) == a + b + c + a
    info = list_stream(io.BytesIO(blob_a + blob_b))
    assert info.raw_len == len(a) + len(b)
    assert info.archive_len == len(blob_a) + len(blob_b)


def test_stored_and_lzma_archives_need_no_model(tiny_model: IntModel, small_segments: int) -> None:
    """The model is looked up only when a block needs it."""
    rng = np.random.default_rng(1)
    noise = rng.bytes(2000)
    data = noise + noise + rng.bytes(4000)  # LZMA2 codes the repeat, the rest is stored
    blob = compress(data, tiny_model, block_size=4096)
    assert set(methods_of(blob)) == {fmt.METHOD_LZMA, fmt.METHOD_STORED}
    assert decompress(blob) == data  # a lookup that knows no model at all


def test_model_archive_without_the_model(tiny_model: IntModel, small_segments: int) -> None:
    blob = compress(sample_text(500), tiny_model, level="fast")
    with pytest.raises(ModelError, match=tiny_model.sha256[:8]):
        decompress(blob)


def test_progress_reports_bytes(tiny_model: IntModel) -> None:
    """Progress comes every 256 lockstep steps and at the end of a block, in bytes that
    add up to exactly the block's length (so a progress bar ends at 100%)."""
    n = 17 * 512 + 100  # 16 segments of about 550 bytes: 551 steps, three reports
    data = sample_text(n, seed=8)
    steps = -(-n // coder.segment_count(n))
    expected = [n * 256 // steps, n * 512 // steps - n * 256 // steps, n - n * 512 // steps]
    seen: list[int] = []
    out = io.BytesIO()
    compress_stream(io.BytesIO(data), out, tiny_model, 1 << 20, "fast", seen.append)
    assert seen == expected
    seen.clear()
    get = lookup_for(tiny_model)
    decompress_stream(io.BytesIO(out.getvalue()), io.BytesIO(), get, seen.append)
    assert seen == expected


def test_api_round_trip(tiny_model: IntModel, small_segments: int) -> None:
    data = sample_text(2000, seed=12)
    blob = compress_bytes(data, tiny_model, block_size=1000, level="fast")
    assert decompress_bytes(blob, tiny_model) == data


def test_mixed_method_learns_across_blocks(tiny_model: IntModel) -> None:
    """The adaptive statistics and the match model span blocks: a block that repeats the
    previous one costs a fraction of it (and the decoder rebuilds the same state)."""
    x = sample_text(3000, seed=5)
    blob = compress(x + x, tiny_model, block_size=3000)
    info = list_stream(io.BytesIO(blob))
    assert [b.method for b in info.blocks] == [fmt.METHOD_MIXED] * 2
    assert info.blocks[1].coded_len < info.blocks[0].coded_len // 3
    assert decompress(blob, tiny_model) == x + x


def test_match_window_includes_blocks_of_other_methods(tiny_model: IntModel) -> None:
    """docs/FORMAT.md: the match window holds the stream's decoded bytes "whatever their
    blocks' methods". Random bytes (stored), then the same bytes again: the repeat must be
    found by the match model."""
    x = np.random.default_rng(3).bytes(3000)
    blob = compress(x + x, tiny_model, block_size=3000)
    info = list_stream(io.BytesIO(blob))
    assert info.blocks[0].method == fmt.METHOD_STORED
    assert info.blocks[1].method == fmt.METHOD_MIXED
    assert info.blocks[1].coded_len < 3000 // 4


def _local_log(regions: int = 24, lines: int = 8) -> bytes:
    """Log lines that repeat only nearby: each region of the file names its own package,
    the way an installer's log runs through one package at a time."""
    rng = np.random.default_rng(8)
    out = []
    for r in range(regions):
        name = "".join(chr(97 + c) for c in rng.integers(0, 26, 10))
        for i in range(lines):
            out.append(f"2026-12-02 10:{r:02d}:{i:02d} status installed {name}:amd64 1.{r}.{i}\n")
    return "".join(out).encode()


@pytest.mark.parametrize("segments", [1, 12])
def test_match_probes_take_the_nearby_occurrence(tiny_model: IntModel, segments: int) -> None:
    """With ``match_probes`` (preset 6) the match model takes a context's occurrence in the
    segment's own part of the block, or its neighbours', before the stream's latest, which
    in the lockstep lies in whichever segment is furthest along: where lines repeat only
    nearby that codes smaller, with one segment it changes little, and both decode."""
    data = _local_log()
    sizes = []
    for config in (DEFAULT, DEFAULT_2):
        state = StreamState(config, len(data))
        payload, _ = coder.encode_block_mixed(tiny_model, data, state, None, segments)
        back = coder.decode_block_mixed(
            tiny_model, payload, len(data), segments, StreamState(config, len(data))
        )
        assert back == data
        sizes.append(len(payload))
    if segments == 1:  # the own part is the whole block: the same occurrences, save
        assert sizes[1] <= sizes[0] * 1.02  # slots the second kind of entry takes
    else:
        assert sizes[1] < sizes[0], sizes


def test_mixed_state_restored_when_another_method_wins(tiny_model: IntModel) -> None:
    """Model, LZMA and stored blocks in one stream, in the order the data asks for. When the
    mixed trial loses a block, the encoder must roll its statistics back, or the decoder
    (which never saw that trial) would diverge on the next mixed block."""
    rng = np.random.default_rng(4)
    noise = rng.bytes(750)  # repeated within the block: LZMA2 finds it, the lockstep can't
    parts = [
        sample_text(1500, 1),
        noise + noise[:700] + rng.bytes(50),  # (not a repeat block: its end differs)
        sample_text(1500, 2),
        rng.bytes(1500),
        sample_text(1500, 3),
    ]
    data = b"".join(parts)
    blob = compress(data, tiny_model, block_size=1500)
    methods = methods_of(blob)
    assert methods[0] == methods[2] == methods[4] == fmt.METHOD_MIXED
    assert methods[1] == fmt.METHOD_LZMA and methods[3] == fmt.METHOD_STORED
    assert decompress(blob, tiny_model) == data


def test_bit_accounting(tiny_model: IntModel) -> None:
    """``-v``'s accounting of where the bits went: it leaves the archive unchanged, the
    decoder's accounts equal the encoder's, and the final stage's ideal cost matches what
    the mixed blocks really spent (the range coder adds at most a few words per block).
    Blocks the encoder did not keep (here the stored one) leave no trace in the accounts."""
    rng = np.random.default_rng(6)
    data = sample_text(3000, 1) + rng.bytes(3000) + sample_text(3000, 2)
    plain = compress(data, tiny_model, block_size=3000)
    out = io.BytesIO()
    enc = compress_stream(io.BytesIO(data), out, tiny_model, 3000, account=True)
    assert out.getvalue() == plain
    assert compress_stream(io.BytesIO(data), io.BytesIO(), tiny_model, 3000).spending is None
    dec = decompress_stream(io.BytesIO(plain), io.BytesIO(), lookup_for(tiny_model), account=True)
    assert enc.spending is not None and dec.spending is not None
    assert np.array_equal(enc.spending.totals, dec.spending.totals)
    mixed = [b for b in enc.blocks if b.method == fmt.METHOD_MIXED]
    assert len(mixed) == 2 and fmt.METHOD_STORED in [b.method for b in enc.blocks]
    assert enc.spending.bytes == sum(b.raw_len for b in mixed)
    bpb = enc.spending.bpb()
    spent = sum(b.coded_len for b in mixed)
    final_bytes = bpb["final"] * enc.spending.bytes / 8
    assert final_bytes <= spent <= final_bytes + 8 * len(mixed)
    assert set(bpb) == {
        "network",
        "order-1",
        "order-2",
        "order-3",
        "order-4",
        "order-6",
        "order-8",
        "word",
        "word-2",
        "word-byte",
        "column",
        "column-2",
        "sparse",
        "indent",
        "line",
        "sparse-2",
        "word-3",
        "vertical",
        "mixer",
        "final",
    }
    assert all(0 < v < 9 for v in bpb.values())
    share, on, off = enc.spending.match()
    assert 0 <= share <= 1 and on >= 0 and off >= 0


def test_rolling_back_by_recoding_equals_rolling_back_by_copy(
    tiny_model: IntModel, small_segments: int, small_tables: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A frame whose mixed blocks are followed by blocks that LZMA2, a repeat block and
    storing win: the encoder undoes the mixed method's updates by coding the frame's
    earlier blocks again (no copy of the tables), and after that by copies. The archive
    is the one that copies before every block give, and it decodes."""
    from nncompress import engine, records

    # Blocks with the network: without it, the mixed method wins the zeros from LZMA2.
    monkeypatch.setattr(records, "FLAT_BLOCKS", False)
    rng = np.random.default_rng(0)
    repeat = (bytes(range(40, 110)) * 20)[:1024]  # a period of 70: a repeat block
    noise = rng.bytes(500)  # said twice (LZMA2 finds it; the lockstep cannot), then an end
    data = b"".join(
        [sample_text(2048, 1), noise + noise + rng.bytes(24), sample_text(1024, 2), repeat]
        + [sample_text(1024, 3), rng.bytes(1024), sample_text(1024, 4)]
    )

    def archive() -> tuple[bytes, list[str]]:
        out = io.BytesIO()
        info = compress_stream(io.BytesIO(data), out, tiny_model, 1024, frame_size=1 << 20)
        return out.getvalue(), [fmt.method_name(b.method, b.segments) for b in info.blocks]

    blob, methods = archive()
    assert methods[:3] == ["mixed", "mixed", "lzma"] and methods[4] == "repeat"
    assert "stored" in methods
    monkeypatch.setattr(engine, "looks_incompressible", lambda raw: True)  # copies only
    assert archive()[0] == blob
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, lambda h: tiny_model)
    assert out.getvalue() == data


def test_other_blocks_feed_the_statistics_piece_by_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    """``add_other_block`` in pieces of 7 bytes leaves the match table and window exactly
    as in one piece (contexts that straddle pieces included), and a window that overflows
    keeps the last bytes at the right offset."""
    from nncompress import adaptive

    data = np.random.default_rng(1).integers(0, 4, 5000, dtype=np.uint8).tobytes()

    def fed(piece: int, window: int) -> StreamState:
        monkeypatch.setattr(adaptive, "OTHER_PIECE", piece)
        monkeypatch.setattr(adaptive, "WINDOW", window)
        state = StreamState(block_size=4096)
        state.add_other_block(data[:3000])
        state.add_other_block(data[3000:])
        return state

    whole, pieces = fed(1 << 20, 1 << 20), fed(7, 1 << 20)
    assert np.array_equal(whole.match_table, pieces.match_table)
    assert bytes(pieces.history) == data and pieces.history_base == 0
    small = fed(7, 2500)
    assert bytes(small.history) == data[-2500:] and small.history_base == 2500


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, (1 << 64) - 1),
    st.integers(0, 7),
    st.integers(0, 255),
    st.integers(0, 1 << 20),
    st.integers(-1, 255),
    st.integers(0, (1 << 64) - 1),
)
def test_mixer_contexts_stay_in_their_sets(
    c: int, j: int, bits: int, col: int, e: int, rows: int
) -> None:
    """Every mixer context picks a weight set inside its own table (the compiled loops do
    not check bounds: a set outside would read and train another mixer's weights)."""
    from nncompress import contexts

    c0 = (1 << j) | (bits & ((1 << j) - 1))
    for kind, sets in contexts.MIXER_SETS.items():
        got = contexts.mixer_select(kind, np.uint64(c), c0, j, col, e, np.uint64(rows))
        assert 0 <= got < sets, (kind, got)


def test_mixer_contexts_reach_their_last_set() -> None:
    """The tops of the contexts' ranges, as FORMAT.md ("Extra mixers") computes them: the
    last byte and the expected byte fill theirs; a word's length takes 0 to 8; the pixel
    mixers' windows fill theirs."""
    from nncompress import contexts

    top = np.uint64(int.from_bytes(b"zzzzzzzz", "little"))  # letters: the longest word
    assert (
        contexts.mixer_select(contexts.MIX_ORDER_1, np.uint64(255), 255, 7, 0, -1, np.uint64(0))
        == 65535
    )
    assert (
        contexts.mixer_select(contexts.MIX_EXPECTED, top, 255, 7, 0, 255, np.uint64(0))
        == 257 * 256 - 1
    )
    word = contexts.mixer_select(contexts.MIX_WORD, top, 255, 7, 0, -1, np.uint64(0))
    assert word == (8 * 8 + 0) * 32 + 31
    other = np.uint64(int.from_bytes(b"!!!!!!!!", "little"))  # class 7 everywhere
    assert contexts.mixer_select(contexts.MIX_CLASSES_3, other, 255, 7, 0, -1, np.uint64(0)) == 4095
    assert contexts.mixer_select(contexts.MIX_CLASSES_2, other, 255, 7, 9, -1, np.uint64(0)) == 2047
    ink = np.uint64((1 << 64) - 1)  # every pixel around set
    assert contexts.mixer_select(contexts.MIX_PIXELS, other, 255, 7, 0, -1, ink) == 4095
    assert contexts.mixer_select(contexts.MIX_PIXELS_NEAR, other, 255, 7, 0, -1, ink) == 255
