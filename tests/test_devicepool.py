"""A stream's frames in threads on the predictor's device (``devicepool``): the archive the
compiled loops write in one process, for any count of threads, and back.

``--device torch`` runs the predictor's torch code on CPU tensors, so these threads run here
as a GPU's would (there, each on a CUDA stream of its own). Frames are small (blocks of 1
KiB in frames of 2 KiB, in segments of 16 bytes, with small tables): the torch path pays
for each of its operations per step, so few steps keep the tests quick.
"""

from __future__ import annotations

import io
import threading

import pytest
from conftest import (
    COMPILED_CONFIG,
    cxx_compiler,
    decompress_damaged,
    lookup_for,
    prose,
    sample_text,
    set_segment_bytes,
    shrink_tables,
)

from nncompress import coder, engine
from nncompress import format as fmt
from nncompress.adaptive import StreamState
from nncompress.coder import Cancelled, encode_block_mixed
from nncompress.devicepool import DeviceFrames, frame_pool
from nncompress.engine import compress_stream, decompress_stream, list_stream
from nncompress.model import IntModel
from nncompress.workers import FramePool, Workers

torch = pytest.importorskip("torch")

BLOCK, FRAME = 1024, 2048


@pytest.fixture
def small_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frames small enough for pools, in short segments, with small tables."""
    monkeypatch.setattr(engine, "MIN_WORKER_FRAME", 0)
    set_segment_bytes(monkeypatch, 16)
    shrink_tables(monkeypatch)


@pytest.fixture
def on_torch(tiny_model: IntModel) -> IntModel:
    from nncompress.ops import TorchOps

    return tiny_model.to(TorchOps("cpu"))


def _compress(data: bytes, model: IntModel, threads: int) -> tuple[bytes, engine.StreamInfo]:
    out = io.BytesIO()
    info = compress_stream(io.BytesIO(data), out, model, BLOCK, frame_size=FRAME, threads=threads)
    return out.getvalue(), info


def _decompress(blob: bytes, model: IntModel, threads: int) -> tuple[bytes, engine.StreamInfo]:
    out = io.BytesIO()
    info = decompress_stream(io.BytesIO(blob), out, lookup_for(model), threads=threads)
    return out.getvalue(), info


def test_frames_on_the_device_write_the_loops_archive(
    tiny_model: IntModel, on_torch: IntModel, small_frames: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four frames of mixed blocks: one process with the compiled loops, and the torch
    predictor in 2 and 4 threads, write one archive, and decode it in as many."""
    devices: list = []
    real = coder._mixing_device
    monkeypatch.setattr(
        coder, "_mixing_device", lambda m, s: devices.append(real(m, s)) or real(m, s)
    )
    data = sample_text(7000, seed=11)
    loops, info = _compress(data, tiny_model, 1)
    assert len(info.frames) == 4 and info.workers is None
    assert {b.method for b in info.blocks} == {fmt.METHOD_MIXED}
    for threads in (2, 4):
        devices.clear()
        blob, info = _compress(data, on_torch, threads)
        assert blob == loops
        assert devices and all(d is not None and d.type == "cpu" for d in devices)
        assert (info.workers.count, info.workers.device) == (threads, "cpu")
        assert info.archive_len == len(loops)
        back, dinfo = _decompress(loops, on_torch, threads)
        assert back == data
        assert (dinfo.workers.count, dinfo.workers.device) == (threads, "cpu")
        assert [f.raw_len for f in dinfo.frames] == [f.raw_len for f in info.frames]


def test_damage_in_a_frame_on_the_device_is_located(
    tiny_model: IntModel, on_torch: IntModel, small_frames: None
) -> None:
    """Damage in the third frame: the frames before it are written, and the message names
    the block by its number in the stream, as one thread says it."""
    data = sample_text(7000, seed=12)
    blob, _ = _compress(data, tiny_model, 1)
    info = list_stream(io.BytesIO(blob))
    target = 4  # the third frame's first block
    assert info.blocks[target].frame == 2
    bad = bytearray(blob)
    bad[info.frames[2].offset + 12] ^= 0x20  # inside its payload
    messages = []
    for threads in (1, 2):
        out, message = decompress_damaged(bytes(bad), on_torch, threads=threads)
        messages.append(message)
        assert out[: 2 * FRAME] == data[: 2 * FRAME]
    assert messages[0] == messages[1] and f"block {target} " in messages[0]


#: A stream's header as the pools see it: blocks of 1 MiB, a model named, the default
#: configuration.
HEADER = fmt.Header(1 << 20, fmt.MODEL_HASH, "00" * 8)


def test_the_pool_follows_the_predictor(
    tiny_model: IntModel, on_torch: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads on the device where the predictor runs there; worker processes where it
    runs in the compiled loops (the model on numpy, or -v's accounting, which the torch
    predictor does not keep); none for one at a time. Threads too where the steps are
    compiled: they take turns in the compiler."""
    from nncompress.torchmix import TORCH_COMPILE

    two = Workers(2, False, 0, 0)
    pool = frame_pool(two, HEADER, on_torch, False)
    assert isinstance(pool, DeviceFrames) and two.device == "cpu"
    pool.close()
    for model, account in ((tiny_model, False), (on_torch, True)):
        workers = Workers(2, False, 0, 0)
        pool = frame_pool(workers, HEADER, model, account)
        assert isinstance(pool, FramePool) and workers.device is None
        pool.close()
    assert frame_pool(Workers(1, False, 0, 0), HEADER, on_torch, False) is None
    monkeypatch.setenv(TORCH_COMPILE, "1")
    pool = frame_pool(Workers(2, False, 0, 0), HEADER, on_torch, False)
    assert isinstance(pool, DeviceFrames)
    pool.close()


def test_compiled_frames_in_threads_write_the_loops_archive(
    default_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``NNCOMPRESS_TORCH_COMPILE=1`` with two frames in two threads: the threads take
    turns in torch's compiler and in the stages it compiled (``torchmix._COMPILER``), and
    the archive is the loops', both ways. Each frame's one block is in the configuration
    and geometry of the first block of ``test_torchmix``'s compiled test: the two share
    inductor's cache, so that one of them pays for the compiling."""
    from nncompress import torchmix
    from nncompress.ops import TorchOps

    if not cxx_compiler():
        pytest.skip("no C++ compiler for inductor's CPU kernels")
    monkeypatch.setenv(torchmix.TORCH_COMPILE, "1")
    monkeypatch.setattr(torchmix.Captured, "compiled", 0)
    monkeypatch.setattr(torchmix.Captured, "refusals", [])
    monkeypatch.setattr(engine, "MIN_WORKER_FRAME", 0)
    set_segment_bytes(monkeypatch, 64)
    block = 64 * 12
    data = prose(2 * block, seed=14)  # two frames of a block each

    def code(model: IntModel, threads: int) -> tuple[bytes, engine.StreamInfo]:
        out = io.BytesIO()
        info = compress_stream(
            io.BytesIO(data),
            out,
            model,
            block,
            frame_size=block,
            threads=threads,
            config=COMPILED_CONFIG,
        )
        return out.getvalue(), info

    on_torch = default_model.to(TorchOps("cpu"))
    loops, info = code(default_model, 1)
    assert len(info.frames) == 2 and {b.method for b in info.blocks} == {fmt.METHOD_MIXED}
    blob, info = code(on_torch, 2)
    assert blob == loops
    assert (info.workers.count, info.workers.device) == (2, "cpu")
    back, dinfo = _decompress(loops, on_torch, 2)
    assert back == data and dinfo.workers.count == 2
    assert torchmix.Captured.refusals == []
    assert torchmix.Captured.compiled > 0


def test_a_gpus_free_memory_bounds_its_frames(
    on_torch: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU the threads are as many frames as its free memory holds, each its tables
    and ``DEVICE_FRAME_EXTRA``; where fewer than two fit, the frames run one at a time.
    (A GPU stood in for: the pool touches the device only when a frame runs.)"""
    from nncompress import devicepool
    from nncompress.workers import table_memory

    gpu = torch.device("cuda", 0)
    monkeypatch.setattr(coder, "mixing_device", lambda model, config, account: gpu)
    each = table_memory(HEADER) + devicepool.DEVICE_FRAME_EXTRA
    for free, count in ((100 * each, 8), (3 * each + 1, 3), (2 * each - 1, None)):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device, f=free: (f, 2 * f))
        workers = Workers(8, False, 0, 0)
        pool = frame_pool(workers, HEADER, on_torch, False)
        if count is None:
            assert pool is None
        else:
            assert isinstance(pool, DeviceFrames) and workers.count == count
            assert workers.device == "cuda:0"
            pool.close()


def test_a_failing_frame_raises_its_own_error() -> None:
    """A job's exception reaches the caller as it is (the one-thread coder's error), and
    the results before it are handed back in order."""
    pool = DeviceFrames(Workers(2, False, 0, 0), torch.device("cpu"))
    try:
        results = list(pool.submit(int, "12"))
        results += list(pool.submit(int, "34"))
        results += list(pool.drain())
        assert results == [12, 34]
        with pytest.raises(ValueError, match="invalid literal"):
            list(pool.submit(int, "not a number"))
            list(pool.drain())
    finally:
        assert pool.close() >= 0


def test_a_caller_that_gives_up_does_not_wait_for_the_frames(
    on_torch: IntModel, small_frames: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing the pool with results untaken (an error, Ctrl-C) stops the frames begun at
    their next step, where a thread cannot be stopped otherwise; the pool with its
    results taken lets every frame end."""
    data = sample_text(1 << 14, seed=4)
    going = [threading.Event() for _ in range(2)]
    real = coder._ticker

    def every_step(progress, n, steps):  # progress reported at every step, not every 256th
        tick = real(progress, n, steps)

        def each(t: int) -> None:
            tick(t)
            if progress:
                progress(0)

        return each

    monkeypatch.setattr(coder, "_ticker", every_step)

    def frame(i: int) -> bytes:
        # Two segments: thousands of steps, far more than the test waits for.
        state = StreamState(block_size=len(data))
        tell = going[i].set
        return encode_block_mixed(on_torch, data, state, lambda n: tell(), 2)[0]

    pool = DeviceFrames(Workers(2, False, 0, 0), torch.device("cpu"))
    for i in range(2):
        assert list(pool.submit(frame, i)) == []
    frames = list(pool._pending)
    for event in going:
        assert event.wait(120)  # each frame has coded a step
    pool.close()
    for f in frames:
        assert isinstance(f.exception(), Cancelled)
    small = DeviceFrames(Workers(2, False, 0, 0), torch.device("cpu"))
    short = data[:512]
    out = list(small.submit(encode_block_mixed, on_torch, short, StreamState()))
    out += list(small.drain())
    small.close()
    assert len(out) == 1 and out[0][1] > 1  # coded whole, in its segments


def test_the_cli_codes_frames_on_the_device(
    model_env: dict[str, str], tmp_path, small_frames: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--device torch -T2`` codes its frames in this process's threads, and writes what
    -T1 does; ``-d -T2`` gives the input back the same way."""
    from click.testing import CliRunner

    from nncompress.cli import main

    ran: list = []
    real = DeviceFrames._run
    monkeypatch.setattr(
        DeviceFrames, "_run", lambda self, fn, a: ran.append(fn) or real(self, fn, a)
    )
    data = sample_text(5000, seed=13)
    src = tmp_path / "a.txt"
    src.write_bytes(data)
    args = ["-c", "-B", "1K", "-F", "2K", "--device", "torch"]
    one = CliRunner().invoke(main, ["-T1", *args, str(src)])
    two = CliRunner().invoke(main, ["-T2", *args, str(src)])
    assert one.exit_code == 0 and two.exit_code == 0, two.output
    assert two.stdout_bytes == one.stdout_bytes
    assert [f.__name__ for f in ran] == ["encode_frame"] * 3
    ran.clear()
    back = CliRunner().invoke(main, ["-d", "-T2", *args], input=two.stdout_bytes)
    assert back.exit_code == 0 and back.stdout_bytes == data
    assert [f.__name__ for f in ran] == ["decode_frame"] * 3
