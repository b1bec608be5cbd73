"""The per-bit work in torch (``torchmix``) writes the compiled loops' archives, bit for bit.

``--device cuda`` and ``--device torch`` run the same torch code; here it runs on CPU
tensors, so CI checks without a GPU what a GPU would run. Each test codes the same input
with the network on numpy and the compiled loops, and with the network and the per-bit
work in torch, and asks for the same bytes, then decodes each archive the other way.
The inputs are short and in many segments: the torch path pays per bit for each of its
operations, whatever the number of segments, so few steps keep these tests quick.
"""

from __future__ import annotations

import gc
import io
import re
import struct
import weakref
from dataclasses import replace

import numpy as np
import pytest
from conftest import (
    COMPILED_CONFIG,
    cxx_compiler,
    decompress,
    prose,
    sample_text,
    script,
    set_segment_bytes,
    shrink_tables,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from nncompress import coder, engine, rangecoder, records, repeats, torchbytes, torchmix
from nncompress import format as fmt
from nncompress.adaptive import StreamState
from nncompress.coder import encode_block_mixed
from nncompress.config import (
    BINARY_SPARSE_MIXERS,
    BITMAP,
    COLOUR_24,
    DEFAULT,
    DEFAULT_2,
    FINE_TEXT,
    IMAGE_MIXERS,
    MAX_TEXT,
    TEXT_MIXERS,
)
from nncompress.engine import compress_block, compress_stream, list_stream
from nncompress.model import IntModel

torch = pytest.importorskip("torch")


@pytest.fixture(params=["cpu", "cuda"])
def torch_model(request, default_model: IntModel, monkeypatch: pytest.MonkeyPatch) -> IntModel:
    """The shipped model on torch: on CPU tensors (``--device torch``), and on a GPU where
    there is one (``--device cuda`` with ``NNCOMPRESS_TORCH_MIXING=1``)."""
    from nncompress.ops import TorchOps

    if request.param == "cuda":
        if not torch.cuda.is_available():
            pytest.skip("no CUDA device")
        monkeypatch.setenv(coder.TORCH_MIXING, "1")
    return default_model.to(TorchOps(request.param))


@pytest.fixture
def torch_blocks(monkeypatch: pytest.MonkeyPatch) -> list:
    """The devices ``coder`` chose for each mixed block (None: the compiled loops)."""
    chosen: list = []
    real = coder._mixing_device

    def spy(model, state):
        device = real(model, state)
        chosen.append(device)
        return device

    monkeypatch.setattr(coder, "_mixing_device", spy)
    return chosen


def _table(rows: int = 120) -> bytes:
    """Records of 24 bytes: a counter, a name, a value, so the record contexts read rows."""
    names = [b"anchor", b"bolt", b"cable", b"drill", b"eyelet"]
    out = bytearray()
    for i in range(rows):
        out += b"%06d %-8s %7d\n" % (i, names[(i * 7) % 5], (i * i * 37) % 100000)
    return bytes(out)


def _image(width: int = 48, rows: int = 40, pixel: int = 1) -> bytes:
    """A smooth picture in rows of ``width`` pixels of ``pixel`` bytes each."""
    out = bytearray()
    for y in range(rows):
        for x in range(width):
            for c in range(pixel):
                out.append((x * 3 + y * 2 + c * 40 + (x * y) // 16) & 0xFF)
    return bytes(out)


def compress(data: bytes, model: IntModel, **kw) -> bytes:
    out = io.BytesIO()
    compress_stream(io.BytesIO(data), out, model, **kw)
    return out.getvalue()


def _both_ways(data: bytes, model: IntModel, torch_model: IntModel, **kw) -> bytes:
    """Code ``data`` through both paths; check that the archives are the same and that each
    path decodes it. Returns the archive."""
    ours = compress(data, model, **kw)
    theirs = compress(data, torch_model, **kw)
    assert theirs == ours
    assert decompress(ours, torch_model) == data
    assert decompress(ours, model) == data
    return ours


CASES = {
    # The default level's text preset (nearby match probes, five extra mixers), until 36.
    "text with mixers": (lambda: prose(3000, seed=3), TEXT_MIXERS),
    # Since 36 with fine probabilities: refinement curves in Q22, count-based moves
    # rounded; the table with them too, for the match model's and the record kinds'.
    "fine text": (lambda: prose(3000, seed=7), FINE_TEXT),
    "fine table": (lambda: _table(80), replace(BINARY_SPARSE_MIXERS, fine=1)),
    "default": (lambda: prose(2500, seed=4), DEFAULT),
    "nearby matches": (lambda: prose(2500, seed=5), DEFAULT_2),
    # --max's rates (here in the default level's segments).
    "max rates": (lambda: prose(2500, seed=6), MAX_TEXT),
    # Binary presets on data with records: the record, sparse and match kinds.
    "table, sparse kinds": (lambda: _table(80), BINARY_SPARSE_MIXERS),
    "image kinds": (lambda: _image(96, 24), IMAGE_MIXERS),
    "colour kinds": (lambda: _image(48, 16, 3), COLOUR_24),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_torch_mixing_writes_the_same_archive(
    case: str, default_model: IntModel, torch_model: IntModel, torch_blocks: list, monkeypatch
) -> None:
    make, config = CASES[case]
    set_segment_bytes(monkeypatch, 64)
    # Binary blocks with the network, in segments of 256 bytes or 2 rows, at least 8, as
    # they stay when the encoder's one-segment trial is off.
    for name, value in (
        ("FLAT_BLOCKS", False),
        ("IMAGE_TRIAL", False),
        ("BINARY_SEGMENT_BYTES", 256),
        ("IMAGE_SEGMENT_BYTES", 256),
        ("ROWS_PER_SEGMENT", 2),
    ):
        monkeypatch.setattr(records, name, value)
    data = make()
    blob = _both_ways(
        data, default_model, torch_model, block_size=len(data) // 2 + 7, config=config
    )
    info = list_stream(io.BytesIO(blob))
    assert info.config == config
    assert {b.method for b in info.blocks} == {fmt.METHOD_MIXED}
    assert all(b.segments > 1 for b in info.blocks)
    # Each block, encoded and decoded by the torch model, took the torch path.
    assert sum(d is not None for d in torch_blocks) >= 2 * len(info.blocks)


def test_torch_mixing_with_colliding_slots(
    default_model: IntModel, torch_model: IntModel, torch_blocks: list, monkeypatch
) -> None:
    """Tables of 1,024 slots: many segments claim, share and overwrite one slot in a step,
    which is where batch semantics could drift (the last claimant wins; counts and
    gradients are summed)."""
    set_segment_bytes(monkeypatch, 64)
    shrink_tables(monkeypatch, 10)
    data = prose(4000, seed=9) + _table(60)
    _both_ways(data, default_model, torch_model, config=TEXT_MIXERS)
    assert any(d is not None for d in torch_blocks)


@pytest.fixture
def copied_tables(monkeypatch: pytest.MonkeyPatch) -> list:
    """Tables and block tensors as copies on the CPU too, as a GPU holds them (written
    back, kept between blocks); the ``DeviceTables`` made, one per upload of the tables."""
    monkeypatch.setattr(torchbytes, "SHARE_CPU_MEMORY", False)
    made: list = []
    real = torchmix.DeviceTables.__init__

    def spy(self, state, device):
        made.append(device)
        real(self, state, device)

    monkeypatch.setattr(torchmix.DeviceTables, "__init__", spy)
    return made


def test_tables_stay_on_the_device_between_blocks(
    default_model: IntModel, torch_model: IntModel, copied_tables: list, monkeypatch
) -> None:
    """A stream's tables go to the device once, not once a block, and its archive is the
    loops' with every table a copy, written back nowhere in between."""
    set_segment_bytes(monkeypatch, 64)
    data = prose(4800, seed=13)
    blob = compress(data, torch_model, config=TEXT_MIXERS, block_size=1200)
    blocks = list_stream(io.BytesIO(blob)).blocks
    assert len(blocks) == 4 and {b.method for b in blocks} == {fmt.METHOD_MIXED}
    assert len(copied_tables) == 1
    assert blob == compress(data, default_model, config=TEXT_MIXERS, block_size=1200)
    assert decompress(blob, torch_model) == data
    assert len(copied_tables) == 2


def test_tables_come_back_for_other_blocks(
    default_model: IntModel,
    torch_model: IntModel,
    torch_blocks: list,
    copied_tables: list,
    monkeypatch,
) -> None:
    """Between a stream's device blocks come blocks that need the arrays: random bytes
    that another method stores (the mixed trial undone from a copy of the state; the
    block's contexts indexed for the match model), then a table's block coded without the
    network (the compiled loops). The device's tables are written back before each (the
    decoder stores the random bytes straight after a device block) and copied there again
    after; every archive is the loops', and each decodes the other's."""
    set_segment_bytes(monkeypatch, 64)
    part = 1488  # 62 rows of the table
    noise = bytes(np.random.default_rng(14).integers(0, 256, part, dtype=np.uint8))
    data = prose(part, seed=15) + noise + _table(62) + prose(part, seed=16)
    config = BINARY_SPARSE_MIXERS  # reads records: the table goes without the network
    blob = _both_ways(data, default_model, torch_model, block_size=part, config=config)
    blocks = list_stream(io.BytesIO(blob)).blocks
    assert len(blocks) == 4
    assert blocks[0].method == blocks[2].method == blocks[3].method == fmt.METHOD_MIXED
    assert blocks[2].flat and not blocks[0].flat and not blocks[3].flat
    assert blocks[1].method != fmt.METHOD_MIXED
    assert any(d is None for d in torch_blocks) and any(d is not None for d in torch_blocks)
    assert len(copied_tables) >= 4  # each side: the first block, and again after the loops'


def test_repeat_run_and_copy_blocks_between_device_blocks(
    default_model: IntModel, torch_model: IntModel, monkeypatch
) -> None:
    """A repeat block (a 37-byte period), a run that LZMA2 takes (zeros with marks in
    them) and a copy block (the first block again) come between a stream's device blocks:
    none reads the tables, but the match model's history takes their bytes, and the mixed
    block after them finds the prose again. The archive is the loops', and each decodes
    the other's. (Scaled down: LZMA2 takes runs untried, and copies are looked for, from
    blocks of 1 KiB, ``engine.TRIVIAL_MIN`` and ``COPY_MIN``, not 64 KiB, and anchors are
    16 bytes apart, not a KiB.)"""
    set_segment_bytes(monkeypatch, 64)
    monkeypatch.setattr(engine, "TRIVIAL_MIN", 1024)
    monkeypatch.setattr(engine, "TRIVIAL_ZLIB", 1 / 32)
    monkeypatch.setattr(repeats, "ANCHOR_BITS", 4)
    monkeypatch.setattr(engine, "COPY_MIN", 1024)
    part = 1488
    run = bytearray(part)
    run[100], run[900] = 7, 9
    period = bytes(np.random.default_rng(17).integers(0, 256, 37, dtype=np.uint8))
    text = prose(part, seed=18)
    again = text[300:] + prose(300, seed=19)
    data = text + fmt.repeated(period, part) + bytes(run) + text + again
    blob = _both_ways(data, default_model, torch_model, block_size=part, config=TEXT_MIXERS)
    blocks = list_stream(io.BytesIO(blob)).blocks
    names = [fmt.method_name(b.method, b.segments) for b in blocks]
    assert names == ["mixed", fmt.REPEAT_NAME, "lzma", fmt.COPY_NAME, "mixed"]
    assert blocks[4].coded_len < blocks[0].coded_len // 2  # the prose found again


def test_a_copy_of_the_state_holds_what_the_device_learnt(
    default_model: IntModel, torch_model: IntModel, copied_tables: list, monkeypatch
) -> None:
    """A copy of the state (the encoder's, before a block that another method may win)
    takes the tables back from the device first, and holds what the loops' would."""
    set_segment_bytes(monkeypatch, 64)
    data = prose(1200, seed=17)
    loops, device = StreamState(TEXT_MIXERS, 1200), StreamState(TEXT_MIXERS, 1200)
    encode_block_mixed(default_model, data, loops)
    encode_block_mixed(torch_model, data, device)
    assert device.resident is not None
    snap = device.snapshot()
    assert device.resident is None
    for name in torchmix.DeviceTables.NAMES:
        assert np.array_equal(snap[name], getattr(loops, name)), name


def test_a_lost_blocks_device_tables_go_before_the_rebuild(
    default_model: IntModel, torch_model: IntModel, copied_tables: list, monkeypatch
) -> None:
    """Where another method wins a block and the encoder rebuilds the state by coding the
    frame's blocks again, the device holds one set of tables at a time: the lost block's
    are gone (without waiting for the garbage collector) before the rebuilt state's are
    made, where two sets could be more than a GPU holds."""
    set_segment_bytes(monkeypatch, 64)
    live: weakref.WeakSet = weakref.WeakSet()
    others: list[int] = []  # the sets alive as each is made
    made = torchmix.DeviceTables.__init__

    def counting(self, state, device):
        others.append(len(live))
        live.add(self)
        made(self, state, device)

    monkeypatch.setattr(torchmix.DeviceTables, "__init__", counting)
    text = prose(1200, seed=18)
    noise = bytes(np.random.default_rng(18).integers(0, 256, 1200, dtype=np.uint8))

    def coded_text() -> StreamState:
        state = StreamState(TEXT_MIXERS, 1200)
        encode_block_mixed(torch_model, text, state)
        return state

    gc.disable()
    try:
        state = coded_text()
        methods = (fmt.METHOD_STORED, fmt.METHOD_MIXED)
        choice = compress_block(torch_model, noise, methods, state, rebuild=coded_text)
        assert choice.method == fmt.METHOD_STORED
    finally:
        gc.enable()
    assert others == [0, 0]  # the first block's, and the rebuilt state's


def test_torch_mixing_finished_segments(
    default_model: IntModel, torch_model: IntModel, monkeypatch
) -> None:
    """A block whose segments are of two lengths: at the last step only some of them are
    active, and the two groups of segments have different sizes."""
    set_segment_bytes(monkeypatch, 64)
    data = prose(64 * 13 + 5, seed=11)
    _both_ways(data, default_model, torch_model, config=TEXT_MIXERS)


def test_unsupported_configurations_keep_the_compiled_loops(
    default_model: IntModel, torch_model: IntModel, torch_blocks: list, monkeypatch
) -> None:
    """The bitmap preset (pixels read bit by bit) and ``-v``'s accounting run in the
    compiled loops, with the same archive."""
    assert not torchmix.supports(BITMAP, account=False)
    assert not torchmix.supports(TEXT_MIXERS, account=True)
    assert torchmix.supports(TEXT_MIXERS, account=False)
    set_segment_bytes(monkeypatch, 64)
    data = _image(32, 30)
    _both_ways(data, default_model, torch_model, block_size=len(data), config=BITMAP)
    assert torch_blocks and all(d is None for d in torch_blocks)
    plain, accounted = io.BytesIO(), io.BytesIO()
    text = sample_text(1500, seed=2)
    compress_stream(io.BytesIO(text), plain, default_model, config=TEXT_MIXERS)
    compress_stream(io.BytesIO(text), accounted, torch_model, config=TEXT_MIXERS, account=True)
    assert plain.getvalue() == accounted.getvalue()


def test_torch_mixing_refuses_damaged_payloads(
    default_model: IntModel, torch_model: IntModel, monkeypatch
) -> None:
    """A damaged payload fails as it fails in the compiled loops: the same error, never
    other bytes."""
    set_segment_bytes(monkeypatch, 64)
    data = prose(2000, seed=12)
    blob = compress(data, default_model, config=TEXT_MIXERS)
    for at in (len(blob) // 2, len(blob) - 12):
        bad = bytearray(blob)
        bad[at] ^= 0x5A
        errors = []
        for model in (default_model, torch_model):
            with pytest.raises(Exception) as info:
                decompress(bytes(bad), model)
            errors.append((type(info.value), str(info.value)))
        assert errors[0] == errors[1]


@pytest.mark.parametrize("host_bits", [False, True], ids=["device's bits", "host's bits"])
def test_settled_steps_run_in_stages(
    host_bits: bool, default_model: IntModel, torch_model: IntModel, monkeypatch
) -> None:
    """Once every segment is active and ``SETTLED``, the encoder's steps run as one stage
    (its decisions held on the device, ``DeviceProbs``, or coded each step where
    ``HOST_BITS`` asks) and the decoder's as one too, its bits decoded on the device
    (``DeviceBits``), or as nine where the host decodes them, through the buffers a CUDA
    graph would replay (``torchmix.Captured``); the steps before run one bit at a time.
    Both write the loops' archive."""
    if host_bits:
        monkeypatch.setenv(torchmix.HOST_BITS, "1")
    calls: dict[str, int] = {"encoder": 0, "decoder": 0}
    handed: dict = {}  # (stages, stage, input): where that input lay, each step
    keep = []  # the stages, so that no id() is reused
    real = torchmix.Captured.run

    def spy(self, i, *inputs):
        side = "encoder" if self.stages[0].__name__.startswith("_encode") else "decoder"
        calls[side] += 1
        keep.append(self)
        for n, x in enumerate(inputs):
            handed.setdefault((id(self), i, n), set()).add(x.data_ptr())
        if self.inputs[i] is not None:  # the buffers are the same from step to step
            held = [x.data_ptr() for x in self.inputs[i]]
            out = real(self, i, *inputs)
            assert [x.data_ptr() for x in self.inputs[i]] == held
            return out
        return real(self, i, *inputs)

    monkeypatch.setattr(torchmix.Captured, "run", spy)
    monkeypatch.setattr(torchmix.Captured, "recorded", 0)
    monkeypatch.setattr(torchmix.Captured, "refusals", [])
    set_segment_bytes(monkeypatch, 64)
    _both_ways(prose(64 * 12, seed=13), default_model, torch_model, config=FINE_TEXT)
    # 12 segments of 64 bytes in two groups: steps 8-63 settled, each group's.
    stages = 9 if host_bits else 1
    assert calls == {"encoder": 2 * 56, "decoder": 2 * 56 * stages}
    # Each stage is handed its inputs in the same memory every step (the host's
    # buffers, the network's output), which a graph that holds their copies reads.
    # The encoder's stage has two inputs where the host hands it the bytes.
    assert len(handed) == 2 * (2 if host_bits else 1) + 2 * stages
    assert all(len(places) == 1 for places in handed.values())
    # On a GPU every stage is recorded once a group: the encoder's graph and the
    # decoder's for each of the two groups (the torch model encodes once and decodes
    # once); on the CPU none.
    on_gpu = torch_model.ops.device.type == "cuda"
    assert torchmix.Captured.refusals == []
    assert torchmix.Captured.recorded == (2 * (1 + stages) if on_gpu else 0)


def test_the_host_time_measure_replays_the_real_steps(
    torch_model: IntModel, capsys: pytest.CaptureFixture
) -> None:
    """``scripts/device_mixing.py --host`` replays the recorded steps through the coder's
    own ``Captured.run`` and ``NetworkSteps.step``: its replayed decoder must give the
    input back and its encoder write the same payload (it asserts both), so the host's
    time it reports is that of the steps the coder really takes."""
    measure = script("device_mixing")
    real = (
        torchmix.Captured.run,
        torchmix.NetworkSteps.step,
        torchmix.Captured._capture,
        torchmix.NetworkSteps._capture,
    )
    data = prose(1024, seed=21)
    # 16 segments of 64 bytes in two groups: steps 8-63 settled, each group's.
    measure._host_time(torch_model, data, 16, FINE_TEXT, False, 2)
    out = capsys.readouterr().out
    for side in ("encoder", "decoder"):
        assert f"host time a settled {side}'s step of a group of 8 segments" in out
    assert out.count("; 112 steps each)") == 2
    # The stand-ins' own time is part of the host's, and reported apart.
    shares = re.findall(r"replayed: ([\d,]+) us.*, ([\d,]+) us of it the stand-ins' own", out)
    assert len(shares) == 2
    for total, own in shares:
        assert 0 <= int(own.replace(",", "")) < int(total.replace(",", ""))
    assert (
        torchmix.Captured.run,
        torchmix.NetworkSteps.step,
        torchmix.Captured._capture,
        torchmix.NetworkSteps._capture,
    ) == real  # put back


def test_a_step_that_cannot_be_recorded_runs_as_it_is(
    default_model: IntModel, torch_model: IntModel, monkeypatch
) -> None:
    """Where the device refuses to record a stage, the stages run one operation at a
    time, and the archive is the same."""
    monkeypatch.setattr(torchmix.Captured, "__init__", _recording(torchmix.Captured.__init__))
    monkeypatch.setattr(torchmix.Captured, "refusals", [])
    set_segment_bytes(monkeypatch, 64)
    _both_ways(prose(64 * 12, seed=14), default_model, torch_model, config=FINE_TEXT)
    # Each group's encoder and decoder asked once, at their first settled step, with
    # each choice of copies in the graph, the most first.
    refusals = torchmix.Captured.refusals
    assert [r.split(":")[0] for r in refusals[:3]] == [
        "stage 0 of 1 with its copies",
        "stage 0 of 1 with its inputs' copies",
        "stage 0 of 1",
    ]
    assert len(refusals) == 4 * len(torchmix.RECORDED_COPIES)
    assert all("capturing" in r for r in refusals)


@pytest.mark.parametrize(
    ("refused", "host_bits"),
    [
        pytest.param((), False, id="every copy recorded"),
        pytest.param(((True, True), (True, False)), False, id="no copies"),
        pytest.param(("the network's copy",), False, id="no network's copy"),
        pytest.param(("the network",), False, id="no network"),
        pytest.param((), True, id="host's bits, every copy recorded"),
        pytest.param(((True, True),), True, id="host's bits, no output copy"),
        pytest.param(((True, True), (True, False)), True, id="host's bits, no copies"),
        pytest.param(("the network's copy",), True, id="host's bits, no network's copy"),
        pytest.param(("the network",), True, id="host's bits, no network"),
    ],
)
def test_recorded_copies_read_and_write_the_hosts_buffers(
    default_model: IntModel, torch_model: IntModel, monkeypatch, refused: tuple, host_bits: bool
) -> None:
    """On a device that records, a stage's graph holds the copies of its inputs and
    output where the device allows (``torchmix.RECORDED_COPIES``), and the network's
    graphs their bytes' copy, from the host's buffer or from the decoder's bytes on the
    device; where it refuses some, the host makes them around each replay, and where it
    refuses the network's graph, the stages' recorded copies read the network's output
    from the memory they were recorded with (``Captured._point``). Here a "graph" runs
    what was recorded again at each replay, so every replay runs the copies in its graph
    and the host's around it, and the archive is the loops'. ``refused``: what the
    device refuses to record: stages with the copies of a ``RECORDED_COPIES`` entry, the
    network's step with its bytes' copy, or at all. ``host_bits``: the decoder's bits
    decoded by the host between nine stages (``HOST_BITS``), each stage's probabilities
    copied to it, else on the device (``DeviceBits``)."""
    if torch_model.ops.device.type == "cuda":
        pytest.skip("a device that records its own graphs")
    if host_bits:
        monkeypatch.setenv(torchmix.HOST_BITS, "1")
    ran = {"graphs": 0, "replays": 0}

    class Rerun:
        def __init__(self, body) -> None:
            self.body = body
            ran["graphs"] += 1

        def replay(self) -> None:
            ran["replays"] += 1
            self.body()

    def capture(torch, body, what, tally):
        return Rerun(body)

    real_capture = torchmix.Captured._capture

    def refusing(self, i, copies, where):
        if copies in refused:
            torchmix.Captured.refusals.append(f"{where}: copies {copies} refused")
            return None
        return real_capture(self, i, copies, where)

    real_net_capture = torchmix.NetworkSteps._capture

    def net_refusing(self, copied, source):
        if copied and "the network's copy" in refused:
            torchmix.Captured.refusals.append("the network's step: its copy refused")
            return None
        return real_net_capture(self, copied, source)

    init, net_init = torchmix.Captured.__init__, torchmix.NetworkSteps.__init__

    def recording(self, *args, **kw):
        init(self, *args, **kw)
        self.record = True

    def net_recording(self, *args, **kw):
        net_init(self, *args, **kw)
        self.record = "the network" not in refused

    monkeypatch.setattr(torchmix, "_capture", capture)
    monkeypatch.setattr(torchmix.Captured, "_capture", refusing)
    monkeypatch.setattr(torchmix.NetworkSteps, "_capture", net_refusing)
    monkeypatch.setattr(torchmix.Captured, "__init__", recording)
    monkeypatch.setattr(torchmix.NetworkSteps, "__init__", net_recording)
    monkeypatch.setattr(torchmix.Captured, "refusals", [])
    set_segment_bytes(monkeypatch, 64)
    _both_ways(prose(64 * 12, seed=18), default_model, torch_model, config=FINE_TEXT)
    # Each group's encoder's stage and decoder's one or nine, and (where it records)
    # each group's network, once encoding and once decoding: from the host's bytes, and
    # where the device holds the decisions, from the device's too.
    stages = 9 if host_bits else 1
    networks = 0 if "the network" in refused else 2 * 2 * (1 if host_bits else 2)
    assert ran["graphs"] == 2 * (1 + stages) + networks
    refused_stages = len([c for c in refused if c in torchmix.RECORDED_COPIES])
    copies = networks if "the network's copy" in refused else 0
    assert len(torchmix.Captured.refusals) == refused_stages * 2 * (1 + stages) + copies
    # Steps 8-63 of each group settled; the network's from its third on.
    assert ran["replays"] == 2 * 56 * (1 + stages) + (2 * 2 * 62 if networks else 0)


def test_the_device_measure_sums_up_the_refusals() -> None:
    """``scripts/device_mixing.py`` prints each kind of refusal once, whichever stage."""
    kinds = script("device_mixing")._refusal_kinds(
        [
            "stage 0 of 9 with its copies: operation not permitted\nwhen capturing",
            "stage 3 of 9 with its copies: another",
            "stage 0 of 1 with its inputs' copies: x",
            "the network's step with its bytes' copy: y",
            "compiling stage 2 of 9: z",
        ]
    )
    assert kinds == {
        "a stage of 9 with its copies": [2, "operation not permitted"],
        "a stage of 1 with its inputs' copies": [1, "x"],
        "the network's step with its bytes' copy": [1, "y"],
        "compiling a stage of 9": [1, "z"],
    }


def _recording(init):
    """``Captured.__init__`` on a device that records, whose recording always fails."""

    def fake(self, *args, **kw):
        init(self, *args, **kw)
        self.record = True
        self.torch = _NoGraphs(self.torch)

    return fake


class _NoGraphs:
    """torch, with a ``cuda.CUDAGraph`` that the device refuses."""

    def __init__(self, real) -> None:
        self.real = real
        self.cuda = self

    def __getattr__(self, name):
        return getattr(self.real, name)

    def CUDAGraph(self):  # noqa: N802 (torch's name)
        raise RuntimeError("operation not permitted when stream is capturing")


def test_the_operation_log_counts_kernels_apart_from_views() -> None:
    """``--ops``' kernels leave out what launches nothing on a device: views, and a
    Python number wrapped as a host scalar."""
    x = torch.arange(12)
    with torchmix.operation_log() as log:
        y = x.view(3, 4)[1]  # view, select
        _ = torch.where(y > 5, y, 0) + 1  # gt, scalar_tensor, where, add
    assert sum(log.counts.values()) == 6
    assert log.kernels == 3


def test_the_networks_steps_run_in_fixed_buffers(
    default_model: IntModel, torch_model: IntModel, monkeypatch
) -> None:
    """The network's steps on the mixing's device (``torchmix.NetworkSteps``) read their
    bytes and state from the same buffers every step, as a CUDA graph replays them, and
    run nothing a recording cannot hold, and leave their frequencies in one buffer; the
    archive is the loops'. On a GPU each group's step is recorded after ``WARM`` steps,
    once for each place its bytes come from: the host's buffer, and the device's bytes
    where the device holds the decisions (``DeviceBits``, ``DeviceProbs``)."""
    buffers: dict[object, set] = {}  # by the object, kept alive (an id may be reused)
    ops: set = set()
    real, real_step = torchmix.NetworkSteps.step, torchmix.NetworkSteps._step

    def spy(self, prev):
        out = real(self, prev)
        if self.steps > self.WARM:
            held = (self.prev.data_ptr(), *(h.data_ptr() for h in self.state))
            buffers.setdefault(self, set()).add((*held, out.data_ptr()))
        return out

    def logged(self):  # what a recording holds (on a GPU, run once, while recording)
        with torchmix.operation_log() as log:
            out = real_step(self)
        ops.update(log.counts)
        return out

    monkeypatch.setattr(torchmix.NetworkSteps, "step", spy)
    monkeypatch.setattr(torchmix.NetworkSteps, "_step", logged)
    monkeypatch.setattr(torchmix.NetworkSteps, "recorded", 0)
    monkeypatch.setattr(torchmix.Captured, "refusals", [])
    set_segment_bytes(monkeypatch, 64)
    _both_ways(prose(64 * 12, seed=16), default_model, torch_model, config=FINE_TEXT)
    # Two groups, once encoding and once decoding with the torch model.
    assert len(buffers) == 4 and all(len(b) == 1 for b in buffers.values())
    assert ops and not ops & torchmix.UNRECORDABLE
    assert torchmix.Captured.refusals == []
    on_gpu = torch_model.ops.device.type == "cuda"
    # Each group's, encoding and decoding, from the host's bytes and from the device's.
    assert torchmix.NetworkSteps.recorded == (2 * 2 * 2 if on_gpu else 0)


def test_a_network_step_that_cannot_be_recorded_runs_as_it_is(
    default_model: IntModel, torch_model: IntModel, monkeypatch
) -> None:
    """Where the device refuses to record the network's step, it runs one operation at
    a time from the same buffers, and the archive is the same."""
    init = torchmix.NetworkSteps.__init__

    def refusing(self, *args, **kw):
        init(self, *args, **kw)
        self.record = True
        self.torch = _NoGraphs(self.torch)

    monkeypatch.setattr(torchmix.NetworkSteps, "__init__", refusing)
    monkeypatch.setattr(torchmix.Captured, "refusals", [])
    set_segment_bytes(monkeypatch, 64)
    _both_ways(prose(64 * 12, seed=17), default_model, torch_model, config=FINE_TEXT)
    refused = [r for r in torchmix.Captured.refusals if r.startswith("the network's step")]
    # Each group's, encoding and decoding, once with the bytes' copy and once without.
    assert len(refused) == 4 * 2
    assert sum(r.startswith("the network's step with its bytes' copy") for r in refused) == 4


def test_settled_stages_hold_nothing_a_recording_cannot(
    default_model: IntModel, torch_model: IntModel, monkeypatch
) -> None:
    """A CUDA graph holds only operations whose shapes the host knows and that never
    wait for the device: each settled stage, encoder's and decoder's, on the text preset
    with nearby probes (the match table's grouped writes) and on a table's record and
    sparse kinds, runs none of ``torchmix.UNRECORDABLE``."""
    seen: dict[str, set] = {"_encode_whole": set(), "_decode_step": set()}
    real = torchmix.Captured.run

    def logged(self, i, *inputs):
        if self.inputs[i] is None:
            return real(self, i, *inputs)
        with torchmix.operation_log() as log:
            out = real(self, i, *inputs)
        seen[self.stages[0].__name__] |= set(log.counts)
        return out

    monkeypatch.setattr(torchmix.Captured, "run", logged)
    set_segment_bytes(monkeypatch, 64)
    for name, value in (("FLAT_BLOCKS", False), ("BINARY_SEGMENT_BYTES", 256)):
        monkeypatch.setattr(records, name, value)
    _both_ways(prose(64 * 12, seed=15), default_model, torch_model, config=FINE_TEXT)
    table = _table(40)
    config = replace(BINARY_SPARSE_MIXERS, fine=1)
    _both_ways(table, default_model, torch_model, block_size=len(table), config=config)
    encoder, decoder = seen["_encode_whole"], seen["_decode_step"]
    assert encoder and decoder  # both kinds of stage ran
    assert not (encoder | decoder) & torchmix.UNRECORDABLE
    assert {"sort", "searchsorted", "scatter_reduce_"} <= encoder


def test_compiled_stages_write_the_same_archive(
    default_model: IntModel, torch_model: IntModel, monkeypatch
) -> None:
    """``NNCOMPRESS_TORCH_COMPILE=1``: each settled stage compiled by ``torch.compile``
    (fused kernels: C++ on the CPU, Triton on a GPU) writes and reads the loops' archive,
    in a stream's first block and in the next, whose window, offsets and step counts the
    stages compiled for the first must not have taken for constants. A small
    configuration (four contexts, two extra mixers) keeps the compiler's time down; the
    stages are the same code at any size."""
    if torch_model.ops.device.type == "cpu" and not cxx_compiler():
        pytest.skip("no C++ compiler for inductor's CPU kernels")
    monkeypatch.setenv(torchmix.TORCH_COMPILE, "1")
    monkeypatch.setattr(torchmix.Captured, "compiled", 0)
    monkeypatch.setattr(torchmix.Captured, "recorded", 0)
    monkeypatch.setattr(torchmix.Captured, "refusals", [])
    set_segment_bytes(monkeypatch, 64)
    data = prose(64 * 12 * 2, seed=16)
    blob = _both_ways(data, default_model, torch_model, config=COMPILED_CONFIG, block_size=64 * 12)
    assert len(list_stream(io.BytesIO(blob)).blocks) == 2
    assert torchmix.Captured.refusals == []
    # Each block's and group's encoder stage and nine decoder stages, compiled (or
    # found compiled) at their first settled step; the torch model encodes once and
    # decodes once.
    assert torchmix.Captured.compiled == 2 * 2 * (1 + 9)


def test_a_stage_that_cannot_be_compiled_runs_as_it_is(
    default_model: IntModel, torch_model: IntModel, monkeypatch
) -> None:
    """Where the compiler fails, the stages run one operation at a time, and the archive
    is the same."""

    def broken(*args, **kw):
        raise RuntimeError("no compiler here")

    monkeypatch.setenv(torchmix.TORCH_COMPILE, "1")
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: broken)
    monkeypatch.setattr(torchmix.Captured, "compiled", 0)
    monkeypatch.setattr(torchmix.Captured, "refusals", [])
    set_segment_bytes(monkeypatch, 64)
    _both_ways(prose(64 * 12, seed=17), default_model, torch_model, config=FINE_TEXT)
    assert torchmix.Captured.compiled == 0
    # Each group's encoder and decoder tried once, at their first settled step.
    assert len(torchmix.Captured.refusals) == 4
    assert all("no compiler here" in r for r in torchmix.Captured.refusals)


def _device_bits_case(case: str, seed: int) -> tuple[bytes, np.ndarray]:
    """A payload and the probabilities its bits are read at: an encoder's words for
    random bits, random words, one word, words that no encoder wrote, or words whose
    first bit lies on the boundary of its two symbols (a 1)."""
    from nncompress.rangecoder import BitEncoder, code_bits

    rng = np.random.default_rng(seed)
    n = 1500
    p = rng.integers(1, 1 << 16, n)
    p[rng.integers(0, n, 100)] = rng.choice([1, 2, 65534, 65535], 100)  # the extremes
    if case == "coded":
        bits = (rng.integers(0, 1 << 16, n) < p).astype(np.int64)
        enc = BitEncoder()
        enc.reserve(n)
        code_bits(bits, p, False, enc.state, enc.out)
        return enc.payload(), p
    words = 300 if case == "random words" else 1
    payload = rng.integers(0, 256, 4 * words, dtype=np.uint8).tobytes()
    if case == "no encoder's":  # a point beyond every symbol at the first bit
        payload = b"\xff" * 8 + payload
    if case == "on a split":  # the point exactly where the first bit's 1 starts
        point = (((1 << 64) - 1) >> 24) * int(rangecoder.split(int(p[0])))
        payload = struct.pack("<II", point >> 32, point & 0xFFFFFFFF) + payload
    return payload, p


def _decode_both(host, ours, bits, p: np.ndarray, on_device: bool) -> tuple:
    """One step's bits at ``p``, read by the host's decoder ``host`` and by ``ours``: on
    the device (``bits``, a ``DeviceBits``), or by the host after taking the state back
    (which must then agree on whether the words are an encoder's). Returns the host's
    return value, its bits and ours."""
    from nncompress.rangecoder import code_bits

    want = np.zeros(len(p), dtype=np.int64)
    wanted = code_bits(want, p, True, host.state, host.words)
    got = torch.zeros(len(p), dtype=torch.int64)
    if on_device:
        bits.take(ours)
        bits.decode(torch.from_numpy(p.copy()), got)
    else:
        bits.give(ours)
        mine = code_bits(got.numpy(), p, True, ours.state, ours.words)
        assert mine == wanted, "both read the same words up to here"
    return wanted, want, got


@pytest.mark.parametrize("kernel", [False, True], ids=["range coder", "kernel"])
@pytest.mark.parametrize(
    "case", ["coded", "random words", "one word", "no encoder's", "on a split"]
)
def test_the_device_decodes_the_hosts_bits(case: str, kernel: bool, monkeypatch) -> None:
    """``torchmix.DeviceBits`` reads the bits the host's decoder reads from the same
    words, in steps of any width, taking turns with the host over the state as a block
    does (its first and last steps the host's); where the words are not an encoder's,
    the host's turn after the step that found it raises the host's error. Both ways of
    decoding on the device: the range coder on CPU tensors, and the kernel a GPU runs
    (here through Triton's interpreter)."""
    from nncompress.rangecoder import BitDecoder

    if kernel:
        from nncompress import tritonmix

        if not tritonmix._importable(True):
            pytest.skip("Triton cannot interpret here")
    monkeypatch.setattr(torchmix.DeviceBits, "KERNEL_ON_CPU", kernel)
    widths = [1, 5, 16, 17, 31, 64, 100, 128, 3] * 20
    for seed in range(3 if kernel else 8):
        payload, p = _device_bits_case(case, seed)
        host, ours = BitDecoder(payload), BitDecoder(payload)
        bits = torchmix.DeviceBits.made(torch, ours, torch.device("cpu"))
        assert bits is not None and (bits.kernel is not None) == kernel
        at, failed = 0, False
        for n, width in enumerate(widths):
            k = min(width, len(p) - at)
            if k == 0:
                break
            on_device = n % 4 != 3  # every fourth step the host's
            wanted, want, got = _decode_both(host, ours, bits, p[at : at + k], on_device)
            if wanted < 0:  # the host refuses these words: so does the device's turn
                if on_device:
                    with pytest.raises(ValueError, match="invalid for this model"):
                        bits.give(ours)
                failed = True
                break
            assert got.numpy().tolist() == want.tolist(), (seed, n)
            if at == 0:
                first = int(want[0])
            at += k
        if not failed:
            bits.give(ours)
            assert ours.state.tolist() == host.state.tolist()
        if case == "coded":
            assert not failed and at == len(p)
        if case == "no encoder's":
            assert failed
        if case == "on a split":
            assert host.words[0] and first == 1


@settings(max_examples=60, deadline=None)
@given(
    words=st.binary(min_size=0, max_size=64).map(lambda b: b[: len(b) // 4 * 4]),
    probs=st.lists(st.integers(1, (1 << 16) - 1), min_size=1, max_size=300),
    widths=st.lists(st.integers(1, 40), min_size=1, max_size=20),
)
def test_any_words_decode_on_the_device_as_on_the_host(
    words: bytes, probs: list[int], widths: list[int]
) -> None:
    """Whatever the words and the widths of the steps, the range coder on CPU tensors
    (``DeviceBits``) reads what the host reads, and refuses what it refuses."""
    from nncompress.rangecoder import BitDecoder

    p = np.array(probs, dtype=np.int64)
    host, ours = BitDecoder(words), BitDecoder(words)
    bits = torchmix.DeviceBits.made(torch, ours, torch.device("cpu"))
    at = 0
    for width in widths * (len(p) // sum(widths) + 1):
        k = min(width, len(p) - at)
        if k == 0:
            break
        wanted, want, got = _decode_both(host, ours, bits, p[at : at + k], True)
        if wanted < 0:
            with pytest.raises(ValueError, match="invalid for this model"):
                bits.give(ours)
            return
        assert got.numpy().tolist() == want.tolist()
        at += k
    bits.give(ours)
    assert ours.state.tolist() == host.state.tolist()
