"""Bit-exact determinism (docs/DESIGN.md, section 2): the decoder must see, at every step, the
same integer frequencies the encoder saw. So the frequencies and the archive bytes must not
depend on the batch a segment is coded in, its position in that batch, step-by-step versus
whole-sequence evaluation, BLAS thread count, or backend/device (numpy, torch CPU, CUDA).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    compress,
    decompress,
    memory_model,
    random_gru,
    sample_text,
    write_random_model,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from nncompress import coder
from nncompress import format as fmt
from nncompress.config import DEFAULT
from nncompress.model import MAX_HIDDEN, MULT_MAX, IntModel


def run_steps(model: IntModel, seqs: np.ndarray) -> np.ndarray:
    """Frequencies of every position of [S, T] sequences, by T calls of ``step``."""
    ops = model.ops
    s, steps = seqs.shape
    state = model.initial_state(s)
    prev = np.zeros(s, dtype=np.int64)
    out = []
    for t in range(steps):
        freqs, state = model.step(ops.asarray(prev), state)
        out.append(ops.to_numpy(freqs))
        prev = seqs[:, t]
    return np.stack(out, axis=1)


def _seqs(rows: int, steps: int, seed: int) -> np.ndarray:
    """Text-like rows mixed with arbitrary bytes (both regimes of the test model)."""
    rng = np.random.default_rng(seed)
    text = np.frombuffer(sample_text(rows * steps, seed), dtype=np.uint8).reshape(rows, steps)
    noise = rng.integers(0, 256, (rows, steps))
    return np.where(rng.random((rows, steps)) < 0.2, noise, text).astype(np.int64)


# ----------------------------------------------------------------------------- batching
def test_step_equals_forward_sequence(any_model: IntModel) -> None:
    seqs = _seqs(7, 60, seed=1)
    assert np.array_equal(run_steps(any_model, seqs), np.asarray(any_model.forward_sequence(seqs)))


@pytest.mark.parametrize("sign", [1, -1])
def test_compiled_step_at_the_bounds(sign: int) -> None:
    """The compiled CPU step computes in 32-bit integers, relying on the bounds that a model
    file is checked against (``IntModel.from_tensors``): a model at those bounds (the
    widest hidden state, every weight and multiplier at its largest, shifts and biases
    from one end of their range to the other) and hidden states at +-127 give the
    frequencies and states of the int64 array operations, batches of every size up to 9.
    Rows of all +127 or all -127 meet the weights' prevailing sign, so that the products
    reach nearly 90% of their largest magnitude."""
    hidden, layers = MAX_HIDDEN, 2
    tensors, meta = random_gru(hidden, layers, 5, "bounds")
    rng = np.random.default_rng(6)
    for k, t in tensors.items():
        kind = k.rsplit(".", 1)[-1]
        if kind == "w":
            top = np.where(rng.random(t.shape) < 0.9, sign * 127, -sign * 127)
            tensors[k] = top.astype(t.dtype)
        elif kind == "m":
            tensors[k] = np.full(t.shape, MULT_MAX, dtype=t.dtype)
        elif kind == "s":
            tensors[k] = np.resize(np.arange(1, 31, dtype=t.dtype), t.shape)
        elif kind == "b" or k == "embed_table":
            top = (1 << 24) - 1
            tensors[k] = rng.choice([-top, top, 0, 1000], t.shape).astype(t.dtype)
    model = IntModel.from_tensors(tensors, meta)
    for rows in range(1, 10):
        prev = rng.integers(0, 256, rows)
        state = []
        for _ in range(layers):
            h = np.where(rng.random((rows, hidden)) < 0.5, 127, -127).astype(np.int32)
            h[0::3], h[1::3] = 127, -127
            state.append(h)
        freqs, new = model.step(prev, state)
        # The array operations on int64 arrays: integers without a 32-bit bound.
        x = model._t["embed_table"][prev].astype(np.int64)
        want_freqs, want = model._step_arrays(x, [h.astype(np.int64) for h in state])
        assert np.array_equal(freqs, want_freqs)
        for got, exp in zip(new, want, strict=True):
            assert np.array_equal(got, exp)


@settings(max_examples=20, deadline=None)
@given(
    layers=st.sampled_from([1, 2]),
    rows=st.integers(1, 9),
    steps=st.integers(1, 24),
    seed=st.integers(0, 2**16),
)
def test_batch_independence(layers: int, rows: int, steps: int, seed: int) -> None:
    """Each row of a batch gets the frequencies it would get alone, in any batch order,
    and whether stepped or run as a whole sequence."""
    model = memory_model(layers)
    seqs = _seqs(rows, steps, seed)
    batch = run_steps(model, seqs)
    perm = np.random.default_rng(seed).permutation(rows)
    assert np.array_equal(run_steps(model, seqs[perm]), batch[perm])
    for i in range(rows):
        assert np.array_equal(run_steps(model, seqs[i : i + 1])[0], batch[i])
    assert np.array_equal(np.asarray(model.forward_sequence(seqs)), batch)


def test_batch_of_one_row_repeated(tiny_model: IntModel) -> None:
    """A large batch of identical rows: every row identical to the single-row result (a BLAS
    that blocks the batch differently for different row counts must not matter)."""
    seq = _seqs(1, 20, seed=3)
    alone = run_steps(tiny_model, seq)[0]
    for rows in (2, 3, 16, 63, 64, 65, 257):
        many = run_steps(tiny_model, np.repeat(seq, rows, axis=0))
        assert (many == alone).all(), rows


def test_segment_layout_does_not_change_a_segment(tiny_model: IntModel) -> None:
    """The frequencies of a segment's bytes depend only on that segment (what lets the
    decoder run the segments in lockstep with any batch)."""
    data = sample_text(640, seed=6)
    grid = coder._grid(data, 10)
    together = np.asarray(tiny_model.forward_sequence(grid))
    for i in range(10):
        alone = np.asarray(tiny_model.forward_sequence(grid[i : i + 1]))
        assert np.array_equal(alone[0], together[i])


def test_same_bytes_every_time(tiny_model: IntModel, small_segments: int) -> None:
    data = sample_text(3000, seed=2)
    a = compress(data, tiny_model, block_size=1000, level="fast")
    b = compress(data, tiny_model, block_size=1000, level="fast")
    assert a == b and decompress(a, tiny_model) == data


# ----------------------------------------------------------------------------- threads
@pytest.mark.parametrize("n", [64 * 9, 64 * 9 + 3, 64 * 9 + 7, 64 * 2, 64])
def test_pipelined_network_does_not_change_archives(
    tiny_model: IntModel, small_segments: int, small_tables: None, n: int
) -> None:
    """The mixed method with the network's steps in a thread of their own codes the same
    bytes as with everything on one thread, and each decodes the other's. The lengths
    give 9 segments (two groups of 5 and 4) with no longer segments, with 3 (at the last
    step only the first group is active) and with 7 (both are); 2 segments (a group
    each) and 1 (one group)."""
    from nncompress.adaptive import StreamState

    data = sample_text(n, seed=n)
    blobs = []
    for pipelined in (False, True):
        blob, segments = coder.encode_block_mixed(
            tiny_model, data, StreamState(block_size=n), pipelined=pipelined
        )
        blobs.append(blob)
    assert blobs[0] == blobs[1]
    for pipelined in (False, True):
        out = coder.decode_block_mixed(
            tiny_model, blobs[0], n, segments, StreamState(block_size=n), pipelined=pipelined
        )
        assert out == data


@settings(max_examples=25, deadline=None)
@given(data=st.binary(min_size=1, max_size=700), segments=st.integers(1, 40))
def test_pipelined_network_any_layout(data: bytes, segments: int) -> None:
    """Any block and any segment count: the same bytes with and without the network's
    thread, and a round trip (the test model; tables as small as the block allows)."""
    from nncompress.adaptive import StreamState

    model = memory_model(1)
    segments = min(segments, len(data))
    blobs = [
        coder.encode_block_mixed(
            model, data, StreamState(block_size=len(data)), segments=segments, pipelined=p
        )[0]
        for p in (False, True)
    ]
    assert blobs[0] == blobs[1]
    out = coder.decode_block_mixed(
        model, blobs[0], len(data), segments, StreamState(block_size=len(data)), pipelined=True
    )
    assert out == data


def test_pipelined_network_errors_reach_the_coder(
    tiny_model: IntModel, small_segments: int, small_tables: None, monkeypatch
) -> None:
    """An exception in the network's thread is raised in the coder's thread, and the
    network's thread is gone afterwards."""
    import threading

    from nncompress.adaptive import StreamState

    calls = []

    def failing_step(prev, state):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("network failed")
        return type(tiny_model).step(tiny_model, prev, state)

    monkeypatch.setattr(tiny_model, "step", failing_step)
    with pytest.raises(RuntimeError, match="network failed"):
        coder.encode_block_mixed(
            tiny_model, sample_text(640, seed=1), StreamState(block_size=640), pipelined=True
        )
    assert not [t for t in threading.enumerate() if t.name == "nncompress-net"]


_FREQ_HASH = """
import hashlib, sys
import numpy as np
from nncompress.model import IntModel
m = IntModel.load(sys.argv[1])
rng = np.random.default_rng(0)
seqs = rng.integers(0, 256, (48, 40))
print(hashlib.sha256(np.ascontiguousarray(m.forward_sequence(seqs)).tobytes()).hexdigest())
"""


def _thread_env(n: int) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(n)
    return env


@pytest.fixture(scope="module")
def wide_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random model wide enough (hidden 256) that BLAS really splits its products across
    threads: [1920, 256] x [256, 768] in ``forward_sequence``."""
    path = tmp_path_factory.mktemp("wide") / "wide.nnm"
    write_random_model(path, 256, 2, seed=9, name="wide")
    return path


def test_thread_count_does_not_change_frequencies(wide_model_path: Path) -> None:
    outs = set()
    for n in (1, 2):
        r = subprocess.run(
            [sys.executable, "-c", _FREQ_HASH, str(wide_model_path)],
            env=_thread_env(n),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert r.returncode == 0, r.stderr
        outs.add(r.stdout.strip())
    assert len(outs) == 1


def test_thread_count_does_not_change_archives(
    cli: str, model_env: dict[str, str], tmp_path: Path
) -> None:
    """The CLI, in fresh processes with 1 and 2 BLAS threads (``-T``, and the environment
    to match): identical archive bytes, with the network alone and mixed (where -T1 also
    keeps the network's steps on the coder's thread)."""
    src = tmp_path / "in.txt"
    src.write_bytes(sample_text(3000, seed=4))
    for level in (["--fast"], []):
        outs = []
        for n in (1, 2):
            r = subprocess.run(
                [cli, "-c", *level, "-B", "1500", "-T", str(n), str(src)],
                env=model_env | _thread_env(n),
                capture_output=True,
                timeout=300,
            )
            assert r.returncode == 0, r.stderr
            outs.append(r.stdout)
        assert outs[0] == outs[1]
        assert len(outs[0]) < 3000


# ----------------------------------------------------------------------------- backends
def _torch_ops(device: str):
    pytest.importorskip("torch")
    from nncompress.ops import TorchOps

    return TorchOps(device)


def _compare_backends(model: IntModel, other: IntModel) -> None:
    seqs = _seqs(5, 30, seed=8)
    ref = run_steps(model, seqs)
    assert np.array_equal(run_steps(other, seqs), ref)
    assert np.array_equal(other.ops.to_numpy(other.forward_sequence(other.ops.asarray(seqs))), ref)


def test_torch_cpu_backend_matches_numpy(
    any_model: IntModel, small_segments: int, small_tables: None
) -> None:
    """Same frequencies, same archives (plain model, and the mixed method for the 1-layer
    model), and each backend decodes the other's."""
    other = any_model.to(_torch_ops("cpu"))
    _compare_backends(any_model, other)
    data = sample_text(1500, seed=5)
    for level in ("fast", "default") if any_model.layers == 1 else ("fast",):
        blob = compress(data, any_model, block_size=700, level=level)
        assert compress(data, other, block_size=700, level=level) == blob
        assert decompress(blob, other) == data


def test_torch_cpu_backend_matches_numpy_wide(wide_model_path: Path) -> None:
    """Wide model: torch's own GEMM kernels and blocking against numpy's OpenBLAS."""
    model = IntModel.load(wide_model_path)
    _compare_backends(model, model.to(_torch_ops("cpu")))


def test_cli_device_torch(model_env: dict[str, str], tmp_path: Path) -> None:
    """``--device torch`` (torch on the CPU) writes the same archive as the default numpy."""
    pytest.importorskip("torch")
    from click.testing import CliRunner

    from nncompress.cli import main

    src = tmp_path / "in.txt"
    src.write_bytes(sample_text(1200, seed=7))
    outs = []
    for device in ("cpu", "torch"):
        r = CliRunner().invoke(main, ["-c", "--fast", "-B", "600", "--device", device, str(src)])
        assert r.exit_code == 0, r.output
        outs.append(r.stdout_bytes)
    assert outs[0] == outs[1]


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.skipif(not _cuda_available(), reason="no CUDA device (torch.cuda.is_available())")
def test_cuda_backend_matches_numpy(
    any_model: IntModel, wide_model_path: Path, small_segments: int
) -> None:
    cuda = any_model.to(_torch_ops("cuda"))
    _compare_backends(any_model, cuda)
    data = sample_text(1500, seed=5)
    for level in ("fast", "default"):
        blob = compress(data, any_model, block_size=700, level=level)
        assert compress(data, cuda, block_size=700, level=level) == blob
        assert decompress(blob, cuda) == data
    wide = IntModel.load(wide_model_path)
    _compare_backends(wide, wide.to(_torch_ops("cuda")))


# ----------------------------------------------------------------------------- int8 products
@pytest.fixture(autouse=True)
def int8_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the int8 products run on any CPU here: their results are checked, not their
    speed, and a CPU without int8 dot-product instructions computes them too (slowly)."""
    from nncompress import model

    monkeypatch.setattr(model, "int8_dot_products", lambda: True)


def test_int8_products_only_where_the_cpu_has_them(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without int8 dot-product instructions (AVX2 only, say), the float32 products stay:
    torch's int8 products were ten times slower there."""
    from nncompress import model as model_module

    monkeypatch.setattr(model_module, "int8_dot_products", lambda: False)
    m = IntModel.load(model_dir / "default.nnm")
    assert not m.use_int8_products() and m._int8 is None


@pytest.mark.parametrize("layers", [1, 2])
def test_int8_products_give_the_same_frequencies(layers: int, model_dir: Path) -> None:
    """The step with int8 products through torch equals the float32 one, row for row, for
    batches of several sizes (each size is checked against the exact product first)."""
    pytest.importorskip("torch")
    path = model_dir / ("default.nnm" if layers == 1 else "two.nnm")
    ref, fast = IntModel.load(path), IntModel.load(path)
    assert fast.use_int8_products()
    for rows in (1, 5, 64):
        seqs = _seqs(rows, 12, seed=rows)
        assert np.array_equal(run_steps(fast, seqs), run_steps(ref, seqs))
    assert fast._int8 is not None and all(fast._int8.exact.values())


def test_int8_products_refused_where_inexact(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A torch whose int8 product saturates (as a kernel summing pairs of products in 16
    bits would on large values) fails the check, and the float32 product is used."""
    torch = pytest.importorskip("torch")
    real = torch._int_mm

    def saturating(a, b):
        return torch.clamp(real(a, b), -(1 << 15), (1 << 15) - 1)

    monkeypatch.setattr(torch, "_int_mm", saturating)
    ref, fast = IntModel.load(model_dir / "default.nnm"), IntModel.load(model_dir / "default.nnm")
    assert fast.use_int8_products()
    seqs = _seqs(3, 12, seed=4)
    assert np.array_equal(run_steps(fast, seqs), run_steps(ref, seqs))
    assert fast._int8 is not None and fast._int8.exact == {3: False}


def test_int8_products_in_the_engine(
    model_dir: Path, small_segments: int, small_tables: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On one thread, a block at least INT8_MIN_BLOCK long switches the model to int8
    products; the archive is the same bytes, and decodes either way."""
    torch = pytest.importorskip("torch")
    import io

    from nncompress import engine

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # this process's torch

    monkeypatch.setattr(engine, "INT8_MIN_BLOCK", 1000)
    data = sample_text(3000, seed=9)
    ref, fast = IntModel.load(model_dir / "default.nnm"), IntModel.load(model_dir / "default.nnm")
    blobs = []
    for model, int8 in ((ref, False), (fast, True)):
        out = io.BytesIO()
        engine.compress_stream(io.BytesIO(data), out, model, 1500, threads=1, int8_products=int8)
        blobs.append(out.getvalue())
    assert blobs[0] == blobs[1]
    assert ref._int8 is None and fast._int8 is not None
    out = io.BytesIO()
    engine.decompress_stream(io.BytesIO(blobs[0]), out, lambda h: fast, threads=1)
    assert out.getvalue() == data


@pytest.fixture
def int8_on_two_cores(monkeypatch: pytest.MonkeyPatch):
    """The engine on a machine of two cores, where only blocks from 1000 bytes of large
    models or binary streams switch to int8 products (INT8_MIN_BLOCK_LARGE); torch keeps
    this process's thread count."""
    torch = pytest.importorskip("torch")
    from nncompress import engine

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    monkeypatch.setattr(engine.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(engine, "INT8_MIN_BLOCK", 1 << 30)
    monkeypatch.setattr(engine, "INT8_MIN_BLOCK_LARGE", 1000)
    return engine


def test_int8_products_for_large_models(
    model_dir: Path,
    small_segments: int,
    small_tables: None,
    int8_on_two_cores,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model over INT8_LARGE_WEIGHTS switches to int8 products from INT8_MIN_BLOCK_LARGE
    on, with a second core too; a smaller one does not with a second core. The archive is
    the same bytes either way."""
    import io

    engine = int8_on_two_cores
    data = sample_text(3000, seed=10)
    blobs = []
    for limit in (engine.INT8_LARGE_WEIGHTS, 0):
        monkeypatch.setattr(engine, "INT8_LARGE_WEIGHTS", limit)
        model = IntModel.load(model_dir / "default.nnm")
        out = io.BytesIO()
        engine.compress_stream(io.BytesIO(data), out, model, 1500, threads=0, int8_products=True)
        blobs.append(out.getvalue())
        assert (model._int8 is not None) == (limit == 0)
    assert blobs[0] == blobs[1]
    # A large model's block below INT8_MIN_BLOCK_LARGE keeps the float products.
    monkeypatch.setattr(engine, "INT8_MIN_BLOCK_LARGE", len(data) + 1)
    model = IntModel.load(model_dir / "default.nnm")
    engine.compress_stream(io.BytesIO(data), io.BytesIO(), model, threads=0, int8_products=True)
    assert model._int8 is None


def test_int8_products_for_binary_streams(
    model_dir: Path, small_segments: int, int8_on_two_cores
) -> None:
    """A binary stream (its configuration has the record contexts) switches to int8
    products from INT8_MIN_BLOCK_LARGE on, with a second core too, encoding and decoding:
    its long segments leave the network few rows per step. The archive is the same bytes
    as with float products, and decodes either way."""
    import io

    from test_records import table

    engine = int8_on_two_cores
    data = table(200, seed=3)
    blobs = []
    for int8 in (False, True):
        model = IntModel.load(model_dir / "default.nnm")
        out = io.BytesIO()
        engine.compress_stream(io.BytesIO(data), out, model, threads=0, int8_products=int8)
        blobs.append(out.getvalue())
        assert (model._int8 is not None) == int8
    assert blobs[0] == blobs[1]
    info = engine.list_stream(io.BytesIO(blobs[0]))
    assert info.config != DEFAULT and info.blocks[0].method == fmt.METHOD_MIXED
    model = IntModel.load(model_dir / "default.nnm")
    out = io.BytesIO()
    engine.decompress_stream(
        io.BytesIO(blobs[0]), out, lambda h: model, threads=0, int8_products=True
    )
    assert out.getvalue() == data and model._int8 is not None
    # A text stream with the same model keeps the float products with a second core.
    model = IntModel.load(model_dir / "default.nnm")
    text = sample_text(len(data), seed=3)
    engine.compress_stream(io.BytesIO(text), io.BytesIO(), model, threads=0, int8_products=True)
    assert model._int8 is None
