"""A bit's work as Triton kernels (``tritonmix``) writes the compiled loops' archives.

Without a GPU the kernels run in Triton's interpreter on CPU tensors (``--device
torch``; ``conftest`` chooses the interpreter before anything imports Triton): what a GPU
runs compiled, checked bit for bit against the loops. The interpreter pays some
milliseconds a launch, whatever the segments, and a bit is six launches, so the inputs
are short, in segments of 12 bytes: a block's steps are few, and its segments many, past
the step from which the stages are the same every step (``torchmix.SETTLED``).
"""

from __future__ import annotations

import importlib.util
import io
from collections import Counter

import pytest
from conftest import decompress, lookup_for, prose, set_segment_bytes, shrink_tables
from test_torchmix import _both_ways, _table, compress

from nncompress import coder, records, torchmix, tritonmix
from nncompress import format as fmt
from nncompress.config import BINARY_SPARSE_MIXERS, DEFAULT, FINE_TEXT, TEXT_MIXERS
from nncompress.engine import compress_stream, decompress_stream, list_stream
from nncompress.model import IntModel

torch = pytest.importorskip("torch")
if importlib.util.find_spec("triton") is None:  # not imported here: ``tritonmix`` does
    pytest.skip("Triton is not installed", allow_module_level=True)


@pytest.fixture(params=["cpu", "cuda"])
def triton_model(request, default_model: IntModel, monkeypatch: pytest.MonkeyPatch) -> IntModel:
    """The shipped model on torch with a bit's work in the kernels: on CPU tensors
    (interpreted), and on a GPU where there is one (compiled)."""
    from nncompress.ops import TorchOps

    if request.param == "cuda":
        if not torch.cuda.is_available():
            pytest.skip("no CUDA device")
        monkeypatch.setenv(coder.TORCH_MIXING, "1")
    monkeypatch.setenv(tritonmix.TRITON, "1")
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


def test_a_settled_bit_is_six_kernels(triton_model: IntModel, monkeypatch) -> None:
    """What a decoder's bit stage launches once the step is settled: the six kernels,
    where ``torchmix``'s ran some 225 (docs/DESIGN.md, section 10). The byte's work, in
    the first and last stages, stays torch's."""
    set_segment_bytes(monkeypatch, 12)
    monkeypatch.setenv(torchmix.CUDA_GRAPHS, "0")  # on a GPU too, each launch seen
    kernels: dict[int, tuple[Counter, int]] = {}
    real = torchmix.Captured.run

    def counted(self, i, *inputs):
        with torchmix.operation_log() as log:
            out = real(self, i, *inputs)
        if len(self.stages) > 1 and 0 < i < len(self.stages) - 1:
            kernels[i] = (Counter(log.counts), log.kernels)
        return out

    monkeypatch.setattr(torchmix.Captured, "run", counted)
    data = prose(200, seed=2)
    blob = compress(data, triton_model, config=TEXT_MIXERS)
    assert decompress(blob, triton_model) == data
    assert sorted(kernels) == list(range(1, 8))
    for i, (counts, launches) in kernels.items():
        ours = {n: counts[n] for n in counts if n.startswith(("_predict", "_learn"))}
        assert ours == {"_predict": 1} | {f"_learn_{n}": 1 for n in range(1, 6)}, i
        # With the bit's copy into the stage's buffer, and the partial byte's shift and or.
        assert launches == 9, (i, counts)


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
