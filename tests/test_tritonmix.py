"""A step as Triton kernels (``tritonmix``) writes the compiled loops' archives, and
its byte's kernels leave the loops' state at every step.

Without a GPU the kernels run in Triton's interpreter on CPU tensors (``--device
torch``; ``conftest`` chooses the interpreter before anything imports Triton): what a GPU
runs compiled, checked bit for bit against the loops. The interpreter pays some
milliseconds a launch, whatever the segments, and a step some 80 launches, so the inputs
are short, in segments of 12 bytes: a block's steps are few, and its segments many, past
the step from which the stages are the same every step (``torchmix.SETTLED``).
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import decompress, lookup_for, prose, set_segment_bytes, shrink_tables
from test_torchbytes import CONFIGS, OTHER_KINDS, _pieces, _rows, _same, _text, seeds_as_the_loops
from test_torchmix import _both_ways, _table, compress

from nncompress import coder, records, torchmix, tritonmix
from nncompress import format as fmt
from nncompress.config import BINARY_SPARSE_MIXERS, DEFAULT, FINE_TEXT, TEXT_MIXERS
from nncompress.engine import compress_stream, decompress_stream, list_stream
from nncompress.model import IntModel
from nncompress.tritonmix import TritonByteWork

torch = pytest.importorskip("torch")
if importlib.util.find_spec("triton") is None:  # not imported here: ``tritonmix`` does
    pytest.skip("Triton is not installed", allow_module_level=True)


@pytest.fixture(params=["cpu", "cuda"])
def triton_model(request, default_model: IntModel, monkeypatch: pytest.MonkeyPatch) -> IntModel:
    """The shipped model on torch with a bit's work in the kernels: on CPU tensors
    (interpreted), and on a GPU where there is one (compiled). A settled decoder's step
    decodes its bits with the kernel too (``torchmix.DeviceBits``), as on a GPU."""
    from nncompress.ops import TorchOps

    if request.param == "cuda":
        if not torch.cuda.is_available():
            pytest.skip("no CUDA device")
        monkeypatch.setenv(coder.TORCH_MIXING, "1")
    monkeypatch.setenv(tritonmix.TRITON, "1")
    monkeypatch.setattr(torchmix.DeviceBits, "KERNEL_ON_CPU", True)
    return default_model.to(TorchOps(request.param))


@pytest.fixture
def triton_blocks(monkeypatch: pytest.MonkeyPatch) -> list:
    """The segments of each block coder made with the kernels."""
    made: list = []
    real = tritonmix.TritonBlockCoder.__init__

    def spy(self, bc, tables):
        made.append(bc.s)
        real(self, bc, tables)

    monkeypatch.setattr(tritonmix.TritonBlockCoder, "__init__", spy)
    return made


CASES = {
    # The default level's preset (36): fine probabilities (refinement curves in Q22, moves
    # rounded), five extra mixers; in two blocks, the second on the tables the first left.
    "default level": (lambda: prose(250, seed=4), FINE_TEXT, 2),
    # Records: the record, sparse and match kinds, the mixers without fine probabilities.
    "table, sparse kinds": (lambda: _table(10), BINARY_SPARSE_MIXERS, 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_kernels_write_the_loops_archive(
    case: str, default_model: IntModel, triton_model: IntModel, triton_blocks: list, monkeypatch
) -> None:
    make, config, blocks = CASES[case]
    set_segment_bytes(monkeypatch, 12)
    monkeypatch.setattr(records, "FLAT_BLOCKS", False)
    monkeypatch.setattr(records, "BINARY_SEGMENT_BYTES", 12)
    data = make()
    blob = _both_ways(
        data, default_model, triton_model, block_size=len(data) // blocks + 5, config=config
    )
    info = list_stream(io.BytesIO(blob))
    assert info.config == config
    assert {b.method for b in info.blocks} == {fmt.METHOD_MIXED}
    assert len(info.blocks) == blocks
    assert all(b.segments > 8 for b in info.blocks)
    assert len(triton_blocks) >= 2 * len(info.blocks)  # each block, each way


@pytest.fixture(params=["cpu", "cuda"])
def kernel_device(request) -> str:
    """Where the byte's kernels run: CPU tensors (interpreted), a GPU where there is one."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return request.param


@pytest.mark.parametrize("name", ["text kinds, nearby probes", "matches of 3 bytes", "other kinds"])
def test_byte_kernels_step_by_step(name: str, kernel_device: str) -> None:
    """The byte's kernels (``TritonByteWork``) against the loops at every step, as
    ``test_torchbytes`` checks torch's: each hash, the match model's state, the table."""
    _same([_text(1500, 1), _text(1100, 2)], CONFIGS[name], 12, kernel_device, work=TritonByteWork)


@pytest.mark.parametrize("record", [0, 3, 24])
def test_byte_kernels_on_rows(record: int, kernel_device: str) -> None:
    """The record, pixel, image and colour kinds, which read whole rows back: records
    of 3 bytes (no colour pixel's right neighbour above) and of 24, and a block without
    records (each such kind's hash a constant)."""
    config = replace(DEFAULT, contexts=OTHER_KINDS[4:] + (20, 21, 22, 23, 24, 25))
    data = _rows(400, max(record, 1) * 16)
    _same([data, data[::-1]], config, 10, kernel_device, record=record, work=TritonByteWork)


@pytest.mark.parametrize("probes", [0, 4])
def test_byte_kernels_on_broken_repeats(probes: int, kernel_device: str) -> None:
    """Matches that break and start again elsewhere: seeds from the segment before and
    from the stream's repeat distance, in the window of the block before too."""
    config = replace(DEFAULT, contexts=(1, 2, 3, 36), match_probes=probes)
    _same(_pieces(1500, 7), config, 10, kernel_device, work=TritonByteWork)


def test_byte_kernels_seed_from_the_segment_before_and_the_stream(kernel_device: str) -> None:
    """Seeds, which coding text rarely makes, from a state made for them
    (``test_torchbytes._seeding_step``): each kind of lender, the distance read before
    the step's long match replaces it."""
    seeds_as_the_loops(kernel_device, TritonByteWork)


def test_kernels_with_colliding_slots(
    default_model: IntModel, triton_model: IntModel, triton_blocks: list, monkeypatch
) -> None:
    """Tables of 64 slots a context: in every step many segments claim one slot (the last
    claimant wins, by the atomic minimum of its place), share it, and move it; in preset
    1's configuration, which has no extra mixers."""
    set_segment_bytes(monkeypatch, 12)
    shrink_tables(monkeypatch, 6)
    _both_ways(prose(400, seed=9), default_model, triton_model, config=DEFAULT)
    assert triton_blocks


#: A settled decoder step's kernels, stage by stage, where the host decodes its bits
#: (``torchmix.HOST_BITS``), and all it launches besides them: the probabilities' copy
#: to the host, in each stage but the last. The partial bytes are ``_learn_1``'s, and the
#: stages read the network's frequencies where it left them; a GPU also copies each
#: bit's row from the host into the stage's buffer (here the stage reads the host's
#: row itself, on the stage's device). On a GPU the copies are in the stages' graphs.
_BYTE_KERNELS = ("_byte_begin", "_hashes", "_byte_rows")
_END_KERNELS = ("_byte_end", "_match_clear", "_seed", "_repeat")
_LEARN = tuple(f"_learn_{n}" for n in range(1, 6))
SETTLED_STAGES = {
    "first": ((*_BYTE_KERNELS, "_predict"), 1),
    "bit": (("_predict", *_LEARN), 1),
    "last": ((*_LEARN, *_END_KERNELS), 0),
}
#: Where the device decodes them (``torchmix.DeviceBits``), the step is one stage: each
#: kernel above as often as a step runs it, a bit's decoding eight times, and besides
#: them the bytes' copy into the ring and the ring's place moved on: 2 (the bytes are
#: left where the network's next step reads them).
WHOLE_STEP = (
    {**dict.fromkeys(_BYTE_KERNELS + _END_KERNELS, 1), "_predict": 8, "_decode_bits": 8}
    | dict.fromkeys(_LEARN, 8),
    2,
)
#: An encoder's settled step, whole on the device (``torchmix.DeviceProbs``): the
#: decoder's kernels but its decoding, and besides them the bytes' column of the grid
#: taken, copied into the step's buffer and the grid's place moved on, the bits taken
#: out of the bytes (a shift and an and), the probabilities stacked, copied into the
#: ring, and the ring's place moved on: 8. Where the host codes each step, the step
#: leaves the probabilities in the host's buffer (a copy), and the grid's three and the
#: ring's two are not there (a GPU also copies the host's bytes in).
ENCODER_STEP = ({n: c for n, c in WHOLE_STEP[0].items() if n != "_decode_bits"}, 8, 4)


@pytest.mark.parametrize("host_bits", [False, True], ids=["device's bits", "host's bits"])
def test_a_settled_step_is_its_kernels(
    host_bits: bool, triton_model: IntModel, monkeypatch
) -> None:
    """What each of a decoder's stages, and an encoder's step, launches once the step
    is settled: its kernels, each as often as the step needs it, and a few torch
    operations, where ``torchmix``'s ran some 2,200 a step (docs/DESIGN.md, section
    10)."""
    set_segment_bytes(monkeypatch, 12)
    monkeypatch.setenv(torchmix.CUDA_GRAPHS, "0")  # on a GPU too, each launch seen
    if host_bits:
        monkeypatch.setenv(torchmix.HOST_BITS, "1")
    kernels: dict[int, tuple[Counter, int]] = {}
    encoder: list[tuple[Counter, int]] = []
    real = torchmix.Captured.run

    def counted(self, i, *inputs):
        with torchmix.operation_log() as log:
            out = real(self, i, *inputs)
        seen = (Counter(log.counts), log.kernels)
        if self.stages[0].__name__.startswith("_encode"):
            encoder.append(seen)
        else:
            kernels[i] = seen
        return out

    monkeypatch.setattr(torchmix.Captured, "run", counted)
    # The range decoder's rows start on 16 bytes, as the kernel's run before a recording
    # (``DeviceBits.warm``) had them, whatever the segments: Triton compiles apart for a
    # pointer that does not, which a recording must not hold.
    aligned, real_alone = [], tritonmix.launch_alone

    def alone(name, interpret, *args, **consts):
        aligned.extend(a.data_ptr() % 16 == 0 for a in args if hasattr(a, "data_ptr"))
        return real_alone(name, interpret, *args, **consts)

    monkeypatch.setattr(tritonmix, "launch_alone", alone)
    data = prose(220, seed=2)  # 18 segments: groups of 9, an odd row length
    assert TEXT_MIXERS.match_probes > 0  # so the match table's writes replace some slots
    blob = compress(data, triton_model, config=TEXT_MIXERS)
    assert decompress(blob, triton_model) == data
    names, whole, host = ENCODER_STEP
    assert encoder
    for counts, launches in encoder:
        ours = {n: counts[n] for n in counts if n.startswith("_") and n[1:2].islower()}
        assert ours == names, counts
        assert launches == sum(names.values()) + (host if host_bits else whole), counts
    if not host_bits:
        assert aligned and all(aligned)
        assert sorted(kernels) == [0]
        counts, launches = kernels[0]
        names, others = WHOLE_STEP
        ours = {n: counts[n] for n in counts if n.startswith("_") and n[1:2].islower()}
        assert ours == names, counts
        assert launches == sum(names.values()) + others, counts
        return
    assert sorted(kernels) == list(range(9))
    for i, (counts, launches) in kernels.items():
        names, others = SETTLED_STAGES["first" if i == 0 else "last" if i == 8 else "bit"]
        ours = {n: counts[n] for n in counts if n.startswith("_") and n[1:2].islower()}
        assert ours == dict.fromkeys(names, 1), (i, counts)
        assert launches == len(names) + others, (i, counts)


def test_frames_in_threads_take_turns_in_the_interpreter(
    default_model: IntModel, triton_model: IntModel, monkeypatch
) -> None:
    """Two frames coded in two threads (``devicepool``), each launching the kernels: on the
    CPU they take turns in Triton's interpreter, which stands its own functions in for
    ``tl``'s for the process while a kernel runs. The archive is the loops' in one
    process, and decodes in two threads."""
    from nncompress import engine

    monkeypatch.setattr(engine, "MIN_WORKER_FRAME", 0)
    set_segment_bytes(monkeypatch, 12)
    shrink_tables(monkeypatch, 8)
    data = prose(400, seed=21)
    kw = dict(config=TEXT_MIXERS, block_size=200, frame_size=200)
    ours = compress(data, default_model, threads=1, **kw)
    out = io.BytesIO()
    info = compress_stream(io.BytesIO(data), out, triton_model, threads=2, **kw)
    assert len(info.frames) == 2
    assert out.getvalue() == ours
    back = io.BytesIO()
    decompress_stream(io.BytesIO(ours), back, lookup_for(triton_model), threads=2)
    assert back.getvalue() == data


def test_kernels_compile_for_a_gpu() -> None:
    """Every kernel, as the default level's, preset 1's and a binary preset launch it,
    compiles for the lent GPUs' target (sm_90) here, without a GPU
    (``scripts/triton_compile.py``): what the interpreter does not check (the values'
    kinds, the atomics' types, loops that carry tensors, the helpers' calls), checked in
    every test run."""
    if importlib.util.find_spec("triton.backends.nvidia") is None:
        pytest.skip("Triton without its CUDA backend")
    root = Path(__file__).resolve().parents[1]
    script = root / "scripts" / "triton_compile.py"
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=900, check=False
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = [line.split() for line in run.stdout.splitlines()[2:]]
    from nncompress.tritonkernels import KERNELS

    assert {row[0] for row in rows} == {f.__name__ for f in KERNELS}
    assert all(row[1] == "90" and row[3].replace(",", "").isdigit() for row in rows)
