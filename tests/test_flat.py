"""Mixed blocks coded without the network (block option 4, ``format.OPTION_FLAT``): no
network runs, its input to the mixers is 0, and the encoder takes them for binary and
repetitive blocks."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from conftest import compress, decompress, sample_text, walk_blocks
from hypothesis import given, settings
from hypothesis import strategies as st
from test_filters import machine_code
from test_records import bitmap, message_catalogue, package_log, smooth_image, table

from nncompress import coder, records
from nncompress import format as fmt
from nncompress.adaptive import HALF, STRETCH, StreamState
from nncompress.cli import _preset_name
from nncompress.config import BINARY_3, DEFAULT_2, FINE_TEXT, IMAGE_MIXERS, LONG_TEXT, TEXT_MIXERS
from nncompress.engine import StreamEncoder, list_stream
from nncompress.levels import LEVELS
from nncompress.model import IntModel


class _NoNetwork:
    """A model whose network must not run: the mixed coder of a flat block has no use
    for it (the prime, which it has none of, is all it may read)."""

    prime = b""
    sha256 = "no network"

    def __getattr__(self, name: str):
        raise AssertionError(f"the network was asked for {name}")


def test_flat_frequencies_are_a_zero_input() -> None:
    """256 equal frequencies give every node of the byte's tree probability 1/2, whose
    stretch is 0: the network's mixer input is 0 and its weights never move."""
    assert STRETCH[HALF >> 4] == 0
    flat = coder._FlatSteps([(0, 3), (3, 5)])
    assert [f.shape for f in (flat.freqs(0), flat.freqs(1))] == [(3, 256), (2, 256)]
    assert flat.freqs(0).dtype == np.int32 and (flat.freqs(1) == 1).all()


@pytest.mark.parametrize("segments", [1, 5])
def test_a_flat_block_runs_no_network(tiny_model: IntModel, segments: int) -> None:
    """Encoded with one model, a flat block decodes with a stand-in that fails on any use
    of a network: its bytes depend on the statistics alone."""
    data = machine_code(6000, 1) + table(200, 2)
    payload, _ = coder.encode_block_mixed(
        tiny_model, data, StreamState(BINARY_3, len(data)), None, segments, False, 24, True
    )
    back = coder.decode_block_mixed(
        _NoNetwork(),  # type: ignore[arg-type]
        payload,
        len(data),
        segments,
        StreamState(BINARY_3, len(data)),
        None,
        False,
        24,
        True,
    )
    assert back == data
    with_network, _ = coder.encode_block_mixed(
        tiny_model, data, StreamState(BINARY_3, len(data)), None, segments, False, 24
    )
    assert with_network != payload


@settings(max_examples=20, deadline=None)
@given(data=st.binary(min_size=1, max_size=3000), segments=st.integers(1, 12))
def test_any_flat_block_round_trips(tiny_model: IntModel, data: bytes, segments: int) -> None:
    segments = min(segments, len(data))
    payload, _ = coder.encode_block_mixed(
        tiny_model, data, StreamState(DEFAULT_2, 4096), None, segments, False, 0, True
    )
    out = coder.decode_block_mixed(
        tiny_model, payload, len(data), segments, StreamState(DEFAULT_2, 4096), None, False, 0, True
    )
    assert out == data


def test_which_blocks_go_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records, x86 code and repetitive text go without the network; other text keeps it.
    Without the network a block is one segment (the fewest the format allows), but
    images keep their rows' segments."""
    assert records.flat(24, False, False) and records.flat(0, True, False)
    assert records.flat(0, False, True) and not records.flat(0, False, False)
    n = 1 << 20
    default = fmt.segment_count(n)
    assert records.segments(n, default, 24, flat=True) == 1
    assert records.segments(n, default, 0, True, flat=True) == 1
    assert records.segments(3 << 20, 3072, 0, True, flat=True) == 3  # at least 1 per MiB
    assert records.segments(n, default, 216, flat=True) == records.segments(n, default, 216)
    assert records.segments(n, default, 216, True, flat=True) == 1  # x86 code
    monkeypatch.setattr(records, "FLAT_BLOCKS", False)
    assert not records.flat(24, True, True)


def test_binary_and_text_blocks_share_a_stream(tiny_model: IntModel) -> None:
    """Flat blocks and blocks with the network in one stream (the statistics carry across
    them both ways) and in one frame's rollback when LZMA wins a block after them."""
    data = table(500, 3) + sample_text(12_000, 5) + machine_code(12_000, 6) + bytes(12_000)
    blob = compress(data, tiny_model, block_size=12_000)
    assert decompress(blob, tiny_model) == data
    blocks = [bh for _, bh, _ in walk_blocks(blob)]
    kinds = [(bh.method, bh.flat) for bh in blocks]
    assert kinds[0] == (fmt.METHOD_MIXED, True) and kinds[2] == (fmt.METHOD_MIXED, True)
    assert kinds[1] == (fmt.METHOD_MIXED, False)
    assert [b.flat for b in list_stream(io.BytesIO(blob)).blocks] == [bh.flat for bh in blocks]


def test_a_long_text_goes_without_the_network(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A text stream of the level's ``long_text`` bytes or more (scaled down here) takes
    the level's long configuration, and its text blocks go without the network in one
    segment, untried; its binary blocks are coded as in any stream. One byte shorter, it
    keeps the level's text preset and the network. A stream whose first frame is coded
    before it ends is as long as what the encoder holds back and more, whatever pieces
    its input came in."""
    monkeypatch.setitem(LEVELS, "default", replace(LEVELS["default"], long_text=34_000))
    text = sample_text(27_000, 8) + machine_code(9_000, 9) + sample_text(9_000, 10)
    blobs = []
    for data, long in ((text, True), (text[:34_000], True), (text[:33_999], False)):
        blob = compress(data, tiny_model, 9_000, frame_size=36_000)
        blobs.append(blob)
        assert decompress(blob, tiny_model) == data
        info = list_stream(io.BytesIO(blob))
        assert info.config == (LONG_TEXT if long else FINE_TEXT)
        kinds = [(b.segments, b.flat) for b in info.blocks]
        assert kinds[3] == (1, True)  # machine code: flat in either stream
        text_kinds = kinds[:3] + kinds[4:]
        assert all(k == (1, True) for k in text_kinds) == long
        assert any(flat for _, flat in text_kinds) == long
    assert _preset_name(LONG_TEXT).startswith("written out (long text")
    # The first frame coded from ``write`` (the input longer than a frame), in any pieces.
    encoder = StreamEncoder(tiny_model, 9_000, frame_size=36_000, threads=1)
    pieces = [encoder.write(text[i : i + 5_000]) for i in range(0, len(text), 5_000)]
    assert b"".join(pieces) and b"".join(pieces) + encoder.finish() == blobs[0]


def test_max_keeps_the_network_for_text(tiny_model: IntModel) -> None:
    """``--max`` codes every block in one segment anyway: repetitive text keeps the
    network there; binary blocks try both (the next test)."""
    log = package_log(600)
    (block,) = list_stream(io.BytesIO(compress(log, tiny_model, level="max"))).blocks
    assert (block.segments, block.flat) == (1, False)
    (block,) = list_stream(io.BytesIO(compress(log, tiny_model))).blocks
    assert (block.segments, block.flat) == (1, True)
    code = machine_code(20_000, 7)
    blob = compress(code, tiny_model, level="max")
    (block,) = list_stream(io.BytesIO(blob)).blocks
    assert block.x86 and block.segments == 1
    assert decompress(blob, tiny_model) == code


@pytest.mark.parametrize("kind", ["code", "table"])
def test_max_keeps_the_smaller_of_binary_with_and_without_the_network(
    tiny_model: IntModel, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At ``--max`` (``Level.network_trial``) a binary block is coded without the network
    and again with it, in the same segments; the smaller is written, the state is the one
    the decoder will have (the next block decodes), and an archive of either kind decodes.
    Other levels code it once, without the network."""
    from nncompress import engine, filters

    data = machine_code(12_000, 7) if kind == "code" else table(400, 3)
    n = len(data)

    def block(trial: bool) -> engine.Choice:
        state = StreamState(BINARY_3, n)
        return engine.compress_block(
            tiny_model, data, (fmt.METHOD_MIXED,), state, None, False,
            fmt.fewest_segments, None, False, trial,
        )  # fmt: skip

    alone = block(False)
    assert alone.flat and alone.param == 1
    assert alone.x86 == (kind == "code") and (alone.record > 0) == (kind == "table")
    coded = filters.x86_encode(data) if alone.x86 else data
    net, _ = coder.encode_block_mixed(
        tiny_model, coded, StreamState(BINARY_3, n), None, 1, False, alone.record, False
    )
    chosen = block(True)
    assert len(chosen.payload) == min(len(alone.payload), len(net))
    assert chosen.flat == (len(alone.payload) <= len(net))
    twice = data + data[n // 2 :] + data[: n // 2]
    for level in ("default", "max"):
        blob = compress(twice, tiny_model, block_size=n, level=level)
        assert decompress(blob, tiny_model) == twice
    assert all(b.flat for b in list_stream(io.BytesIO(compress(twice, tiny_model, n))).blocks)
    # Whichever way wins, the archive decodes: force each.
    for network_wins in (True, False):
        monkeypatch.setattr(
            engine, "encode_block_mixed", _padded_unless(coder.encode_block_mixed, network_wins)
        )
        blob = compress(twice, tiny_model, block_size=n, level="max")
        assert [b.flat for b in list_stream(io.BytesIO(blob)).blocks] == [not network_wins] * 2
        assert decompress(blob, tiny_model) == twice


def _padded_unless(encode, network: bool):  # type: ignore[no-untyped-def]
    """``encode_block_mixed`` whose payloads coded with the network (``network``) or
    without it look smaller to the encoder's comparison than the others."""

    def wrapped(model, data, state, progress, segments, pipelined, record, flat):  # type: ignore[no-untyped-def]
        payload, count = encode(model, data, state, progress, segments, pipelined, record, flat)
        return (payload if flat != network else _Padded(payload)), count

    return wrapped


def test_a_damaged_flat_option_is_caught(tiny_model: IntModel) -> None:
    """Clearing option 4 decodes the block with the network's predictions instead: other
    bytes, which the block check catches, and nothing is written."""
    data = table(600, 4)
    blob = bytearray(compress(data, tiny_model))
    at, bh, _ = next(x for x in walk_blocks(bytes(blob)) if x[1].flat)
    head = bh.pack(len(data))
    options = head.index(bytes([fmt.OPTION_RECORD | fmt.OPTION_FLAT]), 3)
    blob[at + options] ^= fmt.OPTION_FLAT
    with pytest.raises(fmt.FormatError):
        decompress(bytes(blob), tiny_model)


def _step_by_step(bc, steps, coder_, grid, out, tick) -> None:  # type: ignore[no-untyped-def]
    """``coder._code_flat_run`` one compiled call per step, as blocks with the network go."""
    freqs = np.ones((1, 256), dtype=np.int32)
    for t in range(steps):
        if grid is not None:
            byte = grid[0, t : t + 1].astype(np.int64)
            bc.code_byte(freqs, byte, coder_)
        else:
            byte = bc.decode_byte(freqs, 1, coder_)
        out[t] = byte[0]
        tick(t)


@pytest.mark.parametrize("run", [1, 7, 4096])
def test_a_one_segment_run_codes_as_step_by_step(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch, run: int
) -> None:
    """A one-segment block without the network is coded many steps per compiled call
    (``coder.FLAT_RUN``); any run length writes the words that one call per step writes,
    and each decodes the other's, reporting its progress to the last byte."""
    data = package_log(300) + machine_code(3000, 8)
    monkeypatch.setattr(coder, "FLAT_RUN", run)
    ticks: list[int] = []
    payload, _ = coder.encode_block_mixed(
        tiny_model, data, StreamState(DEFAULT_2, 4096), ticks.append, 1, False, 0, True
    )
    assert sum(ticks) == len(data)
    with monkeypatch.context() as m:
        m.setattr(coder, "_code_flat_run", _step_by_step)
        stepwise, _ = coder.encode_block_mixed(
            tiny_model, data, StreamState(DEFAULT_2, 4096), None, 1, False, 0, True
        )
        assert stepwise == payload
        back = coder.decode_block_mixed(
            tiny_model, payload, len(data), 1, StreamState(DEFAULT_2, 4096), None, False, 0, True
        )
        assert back == data
    out = coder.decode_block_mixed(
        tiny_model, payload, len(data), 1, StreamState(DEFAULT_2, 4096), None, False, 0, True
    )
    assert out == data
    with pytest.raises(ValueError, match="invalid"):
        coder.decode_block_mixed(
            tiny_model, b"\xff" * 64, 5000, 1, StreamState(DEFAULT_2, 4096), None, False, 0, True
        )


def test_repetitive_text_keeps_the_network_where_it_pays(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial on the start of a repetitive text block longer than the trial decides: the
    tiny test network, which knows no log, loses it; where the network wins the trial,
    the block keeps it, in the long segments of repetitive text; with no trial, it goes
    without."""
    from nncompress import engine

    log = package_log(800)
    n = len(log)
    monkeypatch.setattr(records, "TRIAL_BYTES", 16 << 10)  # a block longer than the trial
    assert not engine._network_pays(tiny_model, log, DEFAULT_2, 16, False)
    (block,) = list_stream(io.BytesIO(compress(log, tiny_model, block_size=n))).blocks
    assert (block.segments, block.flat) == (1, True)
    asked: list[int] = []

    def network_wins(model, data, config, segments, parallel) -> bool:  # type: ignore[no-untyped-def]
        asked.append(segments)
        return True

    monkeypatch.setattr(engine, "_network_pays", network_wins)
    blob = compress(log, tiny_model, block_size=n)
    (block,) = list_stream(io.BytesIO(blob)).blocks
    expected = records.segments(n, fmt.segment_count(n), redundant=True)
    assert (block.segments, block.flat) == (expected, False) and asked == [expected]
    assert decompress(blob, tiny_model) == log
    monkeypatch.setattr(records, "TRIAL_BYTES", 0)
    (block,) = list_stream(io.BytesIO(compress(log, tiny_model, block_size=n))).blocks
    assert block.flat and len(asked) == 1


def test_text_with_binary_parts_takes_the_trial(
    tiny_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message catalogue (text after tables of offsets) is tried with and without the
    network, in the long segments of repetitive text, as repetitive text is."""
    from nncompress import engine

    data = message_catalogue(400)
    n = len(data)
    monkeypatch.setattr(records, "TRIAL_BYTES", 16 << 10)  # a block longer than the trial
    assert records.looks_mixed(data) and not records.looks_redundant(data)
    asked: list[int] = []

    def network_wins(model, data, config, segments, parallel) -> bool:  # type: ignore[no-untyped-def]
        asked.append(segments)
        return True

    def coded(network: bool) -> engine.Choice:
        monkeypatch.setattr(engine, "_network_pays", network_wins if network else no)
        state = StreamState(TEXT_MIXERS, n)
        return engine.compress_block(tiny_model, data, (fmt.METHOD_MIXED,), state)

    def no(*args: object) -> bool:
        return False

    expected = records.segments(n, fmt.segment_count(n), redundant=True)
    choice = coded(network=True)
    assert (choice.param, choice.flat) == (expected, False) and asked == [expected]
    choice = coded(network=False)
    assert (choice.method, choice.param, choice.flat) == (fmt.METHOD_MIXED, 1, True)


@pytest.mark.parametrize("kind", ["log", "catalogue"])
def test_repetitive_text_shorter_than_the_trial_keeps_the_smaller_way(
    tiny_model: IntModel, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repetitive text (a log; a message catalogue, text after tables of offsets) no
    longer than the trial is not tried on its start: it is coded without the network in
    one segment and again with it in repetitive text's segments, from the same state, and
    the smaller is written. In a log's archive the state is the one the decoder will have
    (the next block decodes), and an archive of either kind decodes."""
    from nncompress import engine

    data = package_log(800) if kind == "log" else message_catalogue(400)
    n = len(data)
    assert n <= records.TRIAL_BYTES

    def never(*args: object) -> bool:
        raise AssertionError("the whole block is coded both ways, not tried")

    monkeypatch.setattr(engine, "_network_pays", never)
    state = StreamState(TEXT_MIXERS, n)
    chosen = engine.compress_block(tiny_model, data, (fmt.METHOD_MIXED,), state)
    many = records.segments(n, fmt.segment_count(n), redundant=True)
    ways = [
        coder.encode_block_mixed(
            tiny_model, data, StreamState(TEXT_MIXERS, n), None, count, False, 0, flat
        )[0]
        for count, flat in ((1, True), (many, False))
    ]
    assert chosen.payload == min(ways, key=len)
    assert (chosen.param, chosen.flat) == (
        (1, True) if chosen.payload == ways[0] else (many, False)
    )
    if kind != "log":  # with the tiny network, LZMA2 wins a catalogue coded with it
        return
    twice = data + data[n // 2 :] + data[: n // 2]
    for network_wins in (True, False):
        monkeypatch.setattr(
            engine, "encode_block_mixed", _padded_unless(coder.encode_block_mixed, network_wins)
        )
        blob = compress(twice, tiny_model, block_size=n)
        blocks = list_stream(io.BytesIO(blob)).blocks
        assert [(b.flat, b.segments) for b in blocks] == (
            [(False, many)] * 2 if network_wins else [(True, 1)] * 2
        )
        assert decompress(blob, tiny_model) == twice


@pytest.mark.parametrize("kind", ["image", "bitmap"])
def test_images_keep_the_smaller_of_rows_and_one_segment(
    tiny_model: IntModel, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image's block without the network is coded in its rows' segments and again in
    one; the smaller is written, the state is the one the decoder will have (the next
    block decodes), and an archive of either kind decodes."""
    from nncompress import engine

    data = smooth_image(400, 120) if kind == "image" else bitmap(216, 300)
    n = len(data)
    record = records.detect(data)
    assert record >= records.IMAGE_RECORD
    rows = records.segments(n, fmt.segment_count(n), record, flat=True)
    assert rows > 1
    sizes = {}
    for segments in (rows, 1):
        state = StreamState(IMAGE_MIXERS, n)
        payload, _ = coder.encode_block_mixed(
            tiny_model, data, state, None, segments, False, record, True
        )
        sizes[segments] = len(payload)
    state = StreamState(IMAGE_MIXERS, n)
    choice = engine.compress_block(tiny_model, data, (fmt.METHOD_MIXED,), state)
    smaller = min(sizes, key=lambda k: (sizes[k], k != rows))
    assert (choice.param, len(choice.payload), choice.flat) == (smaller, sizes[smaller], True)
    blob = compress(data + data[::-1], tiny_model, block_size=n)
    assert decompress(blob, tiny_model) == data + data[::-1]
    # Whichever way wins, the archive decodes: force each (on the image, which the
    # mixed method codes smaller than LZMA even with the tiny test network).
    for wins in (True, False) if kind == "image" else ():
        monkeypatch.setattr(
            engine, "encode_block_mixed", _shrunk_when(coder.encode_block_mixed, one=wins)
        )
        blob = compress(data + data[::-1], tiny_model, block_size=n)
        blocks = list_stream(io.BytesIO(blob)).blocks
        assert (blocks[0].method, blocks[0].segments) == (fmt.METHOD_MIXED, 1 if wins else rows)
        assert decompress(blob, tiny_model) == data + data[::-1]


def _shrunk_when(encode, one: bool):  # type: ignore[no-untyped-def]
    """``encode_block_mixed`` whose payload for one segment (``one``) or for more looks
    a byte smaller to the encoder's comparison (the bytes written are the real ones, less
    nothing: the comparison sees a padded payload for the other way)."""

    def wrapped(model, data, state, progress=None, segments=None, *rest):  # type: ignore[no-untyped-def]
        payload, count = encode(model, data, state, progress, segments, *rest)
        return (payload if (count == 1) == one else _Padded(payload)), count

    return wrapped


class _Padded(bytes):
    """A payload that counts itself a great deal longer than it is."""

    def __len__(self) -> int:
        return super().__len__() + (1 << 20)


def test_verbose_says_where_the_network_did_not_run(tiny_model: IntModel) -> None:
    """``-v``'s line of what each model alone would have spent: blocks without the
    network count 8 bits a byte against it, so it says how many there were."""
    from nncompress.cli import _spending_lines
    from nncompress.engine import compress_stream

    data = table(500, 3) + sample_text(12_000, 5)
    info = compress_stream(io.BytesIO(data), io.BytesIO(), tiny_model, 12_000, account=True)
    assert [b.flat for b in info.blocks] == [True, False]
    (alone,) = [x for x in _spending_lines(info) if "bpb of each model alone" in x]
    assert "network " in alone and alone.endswith("(the network 8.000 on the 1 block without it)")
