"""The ``.nnc`` container: exact layout, round trips of every record, and the decoder's
behaviour on anything that is not a well-formed archive.

The safety rule (DESIGN.md section 6) is that damaged input ends in ``FormatError`` (or
``ModelError`` for a model problem) and never in another exception or in silently wrong
output. These tests check it exhaustively on small archives: every truncation, every single
bit flip.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import compress, decompress, lookup_for, sample_text, set_segment_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncompress import format as fmt
from nncompress.engine import decompress_stream, list_stream
from nncompress.model import IntModel, ModelError

SHA = st.binary(min_size=32, max_size=32).map(bytes.hex)
U32 = st.integers(0, 2**32 - 1)


def _names() -> st.SearchStrategy[str]:
    return st.text(max_size=80).filter(lambda s: len(s.encode("utf-8")) <= 255)


# ----------------------------------------------------------------------------- layout
def test_record_sizes_are_pinned() -> None:
    """The fixed overheads are part of the format (and of the documented worst case):
    header 47 + len(name) bytes, 21 per block, 17 for the end marker."""
    h = fmt.Header("abc", "00" * 32, 4096)
    assert len(h.pack()) == 47 + 3
    assert len(fmt.BlockHeader(0, 1, 1, 0, 0).pack()) == fmt.BLOCK_OVERHEAD == 21
    assert len(fmt.End(0, 0).pack()) == fmt.END_SIZE == 17


def test_header_layout() -> None:
    """Byte-level check of the header against the spec, so a silent layout change fails."""
    sha = bytes(range(32))
    raw = fmt.Header("m", sha.hex(), 0x01020304).pack()
    assert raw[:4] == fmt.MAGIC == b"NNC\x1a"
    assert raw[4] == fmt.VERSION and raw[5] == 0
    assert raw[6:10] == struct.pack("<I", 0x01020304)
    assert raw[10] == 1 and raw[11:12] == b"m"
    assert raw[12:44] == sha
    assert raw[44:48] == struct.pack("<I", zlib.crc32(raw[:44]))


def test_empty_archive_is_header_plus_end(tiny_model: IntModel) -> None:
    blob = compress(b"", tiny_model)
    assert len(blob) == len(fmt.Header(tiny_model.name, tiny_model.sha256, 1).pack()) + 17
    assert decompress(blob, tiny_model) == b""
    info = list_stream(io.BytesIO(blob))
    assert info.raw_len == 0 and info.blocks == [] and info.archive_len == len(blob)


def test_header_name_too_long() -> None:
    with pytest.raises(ValueError):
        fmt.Header("x" * 256, "00" * 32, 1).pack()


# ----------------------------------------------------------------------------- round trips
@given(name=_names(), sha=SHA, block_size=st.integers(1, fmt.MAX_BLOCK))
def test_header_round_trip(name: str, sha: str, block_size: int) -> None:
    h = fmt.Header(name, sha, block_size)
    f = io.BytesIO(h.pack())
    assert fmt.read_header(f) == h
    assert f.read() == b""


@given(name=_names(), sha=SHA, block_size=st.integers(1, fmt.MAX_BLOCK), split=st.integers(0, 4))
def test_header_round_trip_with_consumed_magic(
    name: str, sha: str, block_size: int, split: int
) -> None:
    """``read_header(f, first)``: the decoder peeks at the magic to detect concatenation."""
    raw = fmt.Header(name, sha, block_size).pack()
    assert fmt.read_header(io.BytesIO(raw[split:]), raw[:split]) == fmt.Header(
        name, sha, block_size
    )


@st.composite
def valid_blocks(draw: st.DrawFn) -> tuple[fmt.Header, fmt.BlockHeader]:
    block_size = draw(st.integers(1, fmt.MAX_BLOCK))
    header = fmt.Header("m", "00" * 32, block_size, draw(st.sampled_from(fmt.READ_VERSIONS)))
    method = draw(st.sampled_from(sorted(fmt.METHOD_NAMES)))
    raw_len = draw(st.integers(1, block_size))
    if method == fmt.METHOD_STORED:
        coded_len, segments = raw_len, 0
    else:
        coded_len = draw(st.integers(0, raw_len + (1 << 16)))
        if method in fmt.MODEL_METHODS:
            v = header.version
            segments = draw(
                st.integers(fmt.fewest_segments(raw_len, v), fmt.segment_count(raw_len, v))
            )
        else:  # LZMA: the index of its filter settings
            segments = draw(st.integers(0, fmt.LZMA_VARIANT_COUNT - 1))
    return header, fmt.BlockHeader(method, raw_len, coded_len, segments, draw(U32))


@given(valid_blocks())
def test_block_header_round_trip(hb: tuple[fmt.Header, fmt.BlockHeader]) -> None:
    header, b = hb
    f = io.BytesIO(b.pack())
    assert fmt.read_block_header(f, header) == b
    assert f.read() == b""


@given(
    version=st.sampled_from(fmt.READ_VERSIONS),
    block_size=st.integers(1, 1 << 20),
    method=st.integers(0, 254),
    raw_len=U32,
    coded_len=U32,
    segments=U32,
    crc=U32,
)
def test_block_header_fields_are_validated(
    version: int,
    block_size: int,
    method: int,
    raw_len: int,
    coded_len: int,
    segments: int,
    crc: int,
) -> None:
    """A block header with a correct checksum but any field values is either accepted as
    exactly what was written, with every invariant the decoder relies on, or refused with
    FormatError -- never used out of range."""
    header = fmt.Header("m", "00" * 32, block_size, version)
    b = fmt.BlockHeader(method, raw_len, coded_len, segments, crc)
    try:
        got = fmt.read_block_header(io.BytesIO(b.pack()), header)
    except fmt.FormatError:
        return
    assert got == b
    assert method in fmt.METHOD_NAMES
    assert 0 < raw_len <= block_size
    assert coded_len <= raw_len + (1 << 16)
    if method == fmt.METHOD_STORED:
        assert coded_len == raw_len and segments == 0
    if method == fmt.METHOD_LZMA:
        assert segments < fmt.LZMA_VARIANT_COUNT
    if method in fmt.MODEL_METHODS:
        assert (
            fmt.fewest_segments(raw_len, version) <= segments <= fmt.segment_count(raw_len, version)
        )


@pytest.mark.parametrize("version", fmt.READ_VERSIONS)
@pytest.mark.parametrize("raw_len", [1, 4096, 8192, 1 << 20, (1 << 20) + 1, fmt.MAX_BLOCK])
def test_segment_counts_outside_the_range_are_refused(version: int, raw_len: int) -> None:
    """A model block may have from ``fewest_segments`` to ``segment_count`` segments (one
    count before version 4); any other count is damage, and a too-small one would let a
    small archive keep the decoder busy for hours."""
    header = fmt.Header("m", "00" * 32, fmt.MAX_BLOCK, version)
    lo, hi = fmt.fewest_segments(raw_len, version), fmt.segment_count(raw_len, version)
    assert 1 <= lo <= hi and (lo == hi or version >= 4)
    for segments in (lo - 1, lo, hi, hi + 1):
        block = fmt.BlockHeader(fmt.METHOD_MIXED, raw_len, 10, segments, 0)
        f = io.BytesIO(block.pack())
        if lo <= segments <= hi:
            assert fmt.read_block_header(f, header) == block
        else:
            with pytest.raises(fmt.FormatError, match="segments for"):
                fmt.read_block_header(f, header)


@given(total_len=st.integers(0, 2**64 - 1), crc=U32)
def test_end_round_trip(total_len: int, crc: int) -> None:
    e = fmt.End(total_len, crc)
    f = io.BytesIO(e.pack())
    assert fmt.read_block_header(f, fmt.Header("m", "00" * 32, 1)) == e
    assert f.read() == b""


# ----------------------------------------------------------------------------- bad headers
def _raw_header(
    version: int = fmt.VERSION, flags: int = 0, block_size: int = 4096, name: bytes = b"m"
) -> bytes:
    body = (
        fmt.MAGIC
        + bytes([version, flags])
        + struct.pack("<I", block_size)
        + bytes([len(name)])
        + name
        + bytes(32)
    )
    return body + struct.pack("<I", zlib.crc32(body))


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "truncated"),
        (b"NNC", "truncated"),
        (b"PK\x03\x04" + bytes(60), "bad magic"),
        (_raw_header(version=0), "unsupported archive format version 0"),
        (
            _raw_header(version=fmt.VERSION + 1),
            f"unsupported archive format version {fmt.VERSION + 1}",
        ),
        (_raw_header(flags=1), "unsupported archive flags"),
        (_raw_header(block_size=0), "block size 0 out of range"),
        (_raw_header(block_size=fmt.MAX_BLOCK + 1), "out of range"),
        (_raw_header(name=b"\xff\xfe"), "not UTF-8"),
        (_raw_header()[:-1] + bytes([_raw_header()[-1] ^ 1]), "checksum mismatch"),
        (_raw_header()[:20], "truncated"),
    ],
)
def test_bad_headers(raw: bytes, message: str) -> None:
    with pytest.raises(fmt.FormatError, match=message):
        fmt.read_header(io.BytesIO(raw))


def test_decompress_empty_input() -> None:
    with pytest.raises(fmt.FormatError, match="empty input"):
        decompress_stream(io.BytesIO(b""), io.BytesIO(), lookup_for())


def test_whole_stream_checksum(tiny_model: IntModel, small_tables: None) -> None:
    """Blocks that are each intact but an end marker that disagrees (e.g. a block dropped
    from the middle with the checksums recomputed) is refused."""
    data = b"0123456789" * 10
    blob = compress(data, tiny_model, block_size=50)
    for end in (fmt.End(len(data) - 1, zlib.crc32(data)), fmt.End(len(data), 1)):
        bad = blob[: -fmt.END_SIZE] + end.pack()
        with pytest.raises(fmt.FormatError, match="whole-stream checksum"):
            decompress(bad, tiny_model)
    # Listing reads the block table only: it does not check the whole-stream checksum.
    assert list_stream(io.BytesIO(bad)).raw_len == len(data)


def test_block_checksum_names_the_block(tiny_model: IntModel) -> None:
    """A block whose header is intact but whose raw CRC does not match: the message says
    which block and which byte range, and the blocks before it have been written."""
    data = bytes(range(200))
    blob = bytearray(compress(data, tiny_model, block_size=100, level="fast"))
    h = len(fmt.Header(tiny_model.name, tiny_model.sha256, 1).pack())
    second = h + fmt.BLOCK_OVERHEAD + 100
    b = fmt.BlockHeader(fmt.METHOD_STORED, 100, 100, 0, zlib.crc32(data[100:]) ^ 1)
    blob[second : second + fmt.BLOCK_OVERHEAD] = b.pack()
    out = io.BytesIO()
    with pytest.raises(fmt.FormatError, match=r"block 1 \(bytes 100\.\.200\) checksum mismatch"):
        decompress_stream(io.BytesIO(bytes(blob)), out, lookup_for(tiny_model))
    assert out.getvalue() == data[:100]


def test_trailing_garbage_is_refused(tiny_model: IntModel, small_tables: None) -> None:
    blob = compress(b"hello", tiny_model)
    for junk in (b"\x00", b"NN", b"NNC\x1a", b"garbage after the end"):
        with pytest.raises(fmt.FormatError):
            decompress(blob + junk, tiny_model)


# ----------------------------------------------------------------------------- damage
@pytest.fixture(params=["default", "fast"])
def small_archive(
    request: pytest.FixtureRequest,
    tiny_model: IntModel,
    monkeypatch: pytest.MonkeyPatch,
    small_tables: None,
) -> tuple[bytes, bytes, list[int]]:
    """(data, archive, block methods): a model-coded block (the level's network method),
    a stored one, an LZMA one (stored at level fast), and a short model-coded block.

    Blocks of 64 bytes in 8-byte segments keep every model decode to 8 steps, and small
    adaptive tables keep the mixed method's per-stream setup cheap, so the exhaustive
    damage tests below cost milliseconds per case."""
    set_segment_bytes(monkeypatch, 8)
    rng = np.random.default_rng(5)
    data = (
        sample_text(64, seed=1)
        + rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
        + rng.integers(0, 256, 8, dtype=np.uint8).tobytes() * 8  # LZMA's: one long match
        + sample_text(20, seed=2)
    )
    level = request.param
    blob = compress(data, tiny_model, block_size=64, level=level)
    methods = [b.method for b in list_stream(io.BytesIO(blob)).blocks]
    third = fmt.METHOD_LZMA if level == "default" else fmt.METHOD_STORED
    assert methods[0] in fmt.MODEL_METHODS and methods[3] == methods[0]
    assert methods[1:3] == [fmt.METHOD_STORED, third]
    return data, blob, methods


def test_small_archive_round_trips(
    small_archive: tuple[bytes, bytes, list[int]], tiny_model: IntModel
) -> None:
    data, blob, _ = small_archive
    assert decompress(blob, tiny_model) == data


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


def test_every_bit_flip_is_caught(
    small_archive: tuple[bytes, bytes, list[int]], tiny_model: IntModel
) -> None:
    """Flip each bit of the archive in turn: decoding raises FormatError/ModelError, or
    returns exactly the original (a bit nobody reads) -- never different bytes silently.

    Every bit of the plain-model archive; for the mixed method (tens of milliseconds per
    decode), one bit of every other byte, a different bit position each time."""
    data, blob, methods = small_archive
    get = lookup_for(tiny_model)
    every_bit = fmt.METHOD_MIXED not in methods
    silent_ok = 0
    for pos in range(0, len(blob), 1 if every_bit else 2):
        for bit in range(8) if every_bit else [pos // 2 % 8]:
            bad = bytearray(blob)
            bad[pos] ^= 1 << bit
            out = io.BytesIO()
            try:
                decompress_stream(io.BytesIO(bytes(bad)), out, get)
            except (fmt.FormatError, ModelError):
                assert data.startswith(out.getvalue())
                continue
            assert out.getvalue() == data, f"bit {bit} of byte {pos}: silently wrong output"
            silent_ok += 1
    # Only payload bits the decoders never look at may go unnoticed; there are few of them.
    assert silent_ok < len(blob)


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
    out = io.BytesIO()
    try:
        decompress_stream(io.BytesIO(bad), out, lookup_for(tiny_model))
    except (fmt.FormatError, ModelError):
        assert original.startswith(out.getvalue())
        return
    assert out.getvalue() == original


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_format_errors(blob: bytes) -> None:
    try:
        decompress_stream(io.BytesIO(blob), io.BytesIO(), lookup_for())
    except (fmt.FormatError, ModelError):
        pass


@settings(max_examples=300, deadline=None)
@given(block_size=st.integers(1, 256), tail=st.binary(max_size=300))
def test_random_bytes_after_a_valid_header(block_size: int, tail: bytes) -> None:
    """Random bytes behind a valid header reach the block parser (plain random bytes almost
    never get past the magic)."""
    head = fmt.Header("m", "00" * 32, block_size).pack()
    try:
        decompress_stream(io.BytesIO(head + tail), io.BytesIO(), lookup_for())
    except (fmt.FormatError, ModelError):
        pass


def test_list_stream_needs_no_model(small_archive: tuple[bytes, bytes, list[int]]) -> None:
    data, blob, methods = small_archive
    info = list_stream(io.BytesIO(blob))
    assert info.raw_len == len(data)
    assert info.archive_len == len(blob)
    assert [b.raw_len for b in info.blocks] == [64, 64, 64, 20]
    assert [b.method for b in info.blocks] == methods
    assert info.blocks[0].segments == 8


# ----------------------------------------------------------------------------- fuzz harness
def _load_fuzz_harness():
    """``scripts/fuzz_decoder.py`` as a module (scripts/ is not a package)."""
    import importlib.util

    from conftest import REPO

    path = REPO / "scripts" / "fuzz_decoder.py"
    spec = importlib.util.spec_from_file_location("fuzz_decoder", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzz = _load_fuzz_harness()


_SEEDS: list[bytes] = []


@pytest.fixture
def fuzz_seeds(tiny_model: IntModel, small_tables: None) -> list[bytes]:
    """The harness's seed archives, made (once) with the small adaptive tables that every
    test using them decodes with."""
    if not _SEEDS:
        _SEEDS.extend(fuzz.seed_archives(tiny_model))
    return _SEEDS


def test_fuzz_seeds_are_valid(fuzz_seeds: list[bytes], tiny_model: IntModel) -> None:
    """The harness's seeds decode, and its CRC fixer leaves valid archives unchanged."""
    methods = set()
    for blob in fuzz_seeds:
        assert fuzz.check_one(blob, tiny_model) == "ok"
        assert fuzz.fix_crcs(blob) == blob
        methods |= {b.method for b in list_stream(io.BytesIO(blob)).blocks}
    assert methods == set(fmt.METHOD_NAMES)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_structured_mutations(
    seed: int, fuzz_seeds: list[bytes], tiny_model: IntModel
) -> None:
    """The fuzz harness's structure-aware mutations (checksums recomputed, so the damage
    reaches field validation and the payload decoders): only FormatError/ModelError."""
    import random

    rng = random.Random(seed)
    blob = fuzz.mutate(rng.choice(fuzz_seeds), rng, fuzz_seeds)
    fuzz.check_one(blob, tiny_model)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(sorted(fmt.METHOD_NAMES)),
    raw_len=st.integers(1, 200),
    segments=st.integers(1, 200),
    payload=st.binary(max_size=120),
    words=st.lists(U32, max_size=30),
)
def test_fuzz_random_payloads(
    method: int,
    raw_len: int,
    segments: int,
    payload: bytes,
    words: list[int],
    tiny_model: IntModel,
    small_tables: None,
) -> None:
    """Well-formed headers around a random payload: every payload decoder (stored, LZMA,
    and the range decoder driven by the model) meets garbage, which must end in FormatError.
    ``words`` gives the range decoder whole 32-bit words, the case it does not reject early."""
    if method in fmt.MODEL_METHODS and words:
        payload = struct.pack(f"<{len(words)}I", *words)
    if method == fmt.METHOD_STORED:
        payload = (payload * (raw_len // max(len(payload), 1) + 1))[:raw_len]
    segments = min(segments, raw_len)
    block = fmt.BlockHeader(method, raw_len, len(payload), segments, 0)
    blob = (
        fmt.Header(tiny_model.name, tiny_model.sha256, 256).pack()
        + block.pack()
        + payload
        + fmt.End(raw_len, 0).pack()
    )
    assert fuzz.check_one(blob, tiny_model) in ("FormatError", "ok")


def test_fuzz_script_main(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], small_tables: None
) -> None:
    """The standalone harness (plain loop) runs and reports no unexpected exception."""
    args = ["fuzz_decoder.py", "--plain", "--iterations", "10", "--crash-dir", str(tmp_path)]
    assert fuzz.main(args) == 0
    assert "no unexpected exception" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
