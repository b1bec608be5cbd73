"""Frames coded by worker processes: the same archive, and the same output, for any count.

The workers are real processes (``python -m nncompress.workers``), as the CLI starts
them. Frames here are small (blocks of 1 KiB in frames of 4 KiB), so the engine's
threshold for starting workers is lowered; the tables are sized by the block size, so
they are small too, in the workers as in this process.
"""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from conftest import compress, decompress, decompress_damaged, lookup_for, sample_text

from nncompress import engine, levels
from nncompress import format as fmt
from nncompress.config import LONG_TEXT
from nncompress.engine import compress_stream, decompress_stream, list_stream
from nncompress.model import IntModel
from nncompress.workers import FramePool, WorkerError, Workers, plan_workers

BLOCK, FRAME = 1024, 4096


@pytest.fixture
def small_frames_use_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "MIN_WORKER_FRAME", 0)


def _compress(data: bytes, model: IntModel, threads: int) -> engine.StreamInfo:
    out = io.BytesIO()
    info = compress_stream(io.BytesIO(data), out, model, BLOCK, frame_size=FRAME, threads=threads)
    info.blob = out.getvalue()  # type: ignore[attr-defined]
    return info


def test_an_input_cut_in_two_frames_is_coded_by_two_workers(
    tiny_model: IntModel, small_frames_use_workers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An input the encoder cuts into two frames (``levels.split_frames``; here scaled
    down) is coded by two workers at once, into the archive one process makes."""
    monkeypatch.setattr(levels, "DEFAULT_FRAME", FRAME)
    monkeypatch.setattr(levels, "SPLIT_MIN", FRAME // 2)
    data = sample_text(6000, seed=5)
    blobs = []
    for threads in (1, 2):
        out = io.BytesIO()
        info = compress_stream(io.BytesIO(data), out, tiny_model, BLOCK, threads=threads)
        assert [f.raw_len for f in info.frames] == [3072, 2928]
        assert (info.workers.count if info.workers else 1) == threads
        blobs.append(out.getvalue())
    assert blobs[0] == blobs[1]
    assert decompress(blobs[0], tiny_model) == data


def test_a_frame_that_takes_several_is_coded_and_decoded_by_workers(
    tiny_model: IntModel, small_frames_use_workers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames of unequal length, the longer after the first (one that takes four default
    frames to keep a copy with its source, ``levels.merged_frame``; scaled down), go
    through the workers each way, and give the archive one process makes."""
    monkeypatch.setattr(levels, "DEFAULT_FRAME", FRAME)
    monkeypatch.setattr(levels, "SPLIT_MIN", FRAME // 2)
    monkeypatch.setattr(levels, "MERGED_FRAME", 4 * FRAME)
    copy = sample_text(3000, seed=8)  # in the second default frame, then the fifth
    data = sample_text(4500, seed=6) + copy + sample_text(9300, seed=7) + copy
    data += sample_text(9000, seed=9)
    blobs = []
    for threads in (1, 2):
        out = io.BytesIO()
        info = compress_stream(io.BytesIO(data), out, tiny_model, BLOCK, threads=threads)
        assert [f.raw_len for f in info.frames] == [FRAME, 4 * FRAME, FRAME, FRAME, 128]
        blobs.append(out.getvalue())
    assert blobs[0] == blobs[1]
    for threads in (1, 2):
        out = io.BytesIO()
        info = decompress_stream(io.BytesIO(blobs[0]), out, lookup_for(tiny_model), threads=threads)
        assert out.getvalue() == data
        assert (info.workers is not None) == (threads > 1)


def test_the_archive_is_the_same_for_any_worker_count(
    tiny_model: IntModel, small_frames_use_workers: None
) -> None:
    data = sample_text(22_000, seed=3) + bytes(range(256)) * 8
    one = _compress(data, tiny_model, 1)
    assert one.workers is None and len(one.frames) == 6
    for threads in (2, 4):
        many = _compress(data, tiny_model, threads)
        assert many.workers is not None and many.workers.count == threads
        assert many.blob == one.blob  # type: ignore[attr-defined]
        assert [(b.method, b.frame) for b in many.blocks] == [
            (b.method, b.frame) for b in one.blocks
        ]
        assert many.archive_len == len(one.blob)  # type: ignore[attr-defined]
    assert one.blob == compress(data, tiny_model, BLOCK, frame_size=FRAME)  # type: ignore[attr-defined]
    for threads in (1, 2, 4):
        out = io.BytesIO()
        info = decompress_stream(
            io.BytesIO(one.blob),  # type: ignore[attr-defined]
            out,
            lookup_for(tiny_model),
            threads=threads,
        )
        assert out.getvalue() == data
        assert (info.workers is not None) == (threads > 1)
        assert [f.raw_len for f in info.frames] == [f.raw_len for f in one.frames]
        assert [f.offset for f in info.frames] == [f.offset for f in one.frames]


def test_a_long_text_is_coded_by_workers_as_by_one_process(
    tiny_model: IntModel, small_frames_use_workers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long text (``levels.Level.long_text``, scaled down) is settled in this process;
    the workers, which know nothing of the threshold, code its frames without the
    network in one segment a block, into the archive one process makes."""
    long = replace(levels.LEVELS["default"], long_text=18_000)
    monkeypatch.setitem(levels.LEVELS, "default", long)
    data = sample_text(45_000, seed=11)
    blobs = []
    for threads in (1, 2):
        out = io.BytesIO()
        info = compress_stream(
            io.BytesIO(data), out, tiny_model, 9_000, frame_size=18_000, threads=threads
        )
        assert (info.workers.count if info.workers else 1) == threads
        assert info.config == LONG_TEXT and len(info.frames) == 3
        assert all(b.flat and b.segments == 1 for b in info.blocks)
        blobs.append(out.getvalue())
    assert blobs[0] == blobs[1]
    assert decompress(blobs[0], tiny_model) == data


def test_damage_in_a_workers_frame_is_located(
    tiny_model: IntModel, small_frames_use_workers: None
) -> None:
    """The good frames before the damage are written, and the message names the block
    by its number in the stream, as the one-process decoder does."""
    data = sample_text(20_000, seed=4)
    blob = compress(data, tiny_model, BLOCK, frame_size=FRAME)
    info = list_stream(io.BytesIO(blob))
    target = 13  # in the fourth frame
    offset = info.frames[info.blocks[target].frame].offset
    offset += sum(
        len(fmt.BlockHeader(b.method, b.raw_len, b.coded_len, b.segments).pack(BLOCK))
        + b.coded_len
        + fmt.CHECK_SIZE
        for b in info.blocks[:target]
        if b.frame == info.blocks[target].frame
    )
    bad = bytearray(blob)
    bad[offset + 8] ^= 0x20  # inside the payload
    messages = []
    for threads in (1, 2):
        out, message = decompress_damaged(bytes(bad), tiny_model, threads=threads)
        messages.append(message)
        good = sum(b.raw_len for b in info.blocks if b.frame < info.blocks[target].frame)
        assert out[:good] == data[:good]
        assert len(out) >= good
    assert messages[0] == messages[1] and f"block {target} " in messages[0]


def test_stored_frames_need_no_model_in_workers(
    tiny_model: IntModel, small_frames_use_workers: None
) -> None:
    import os

    data = os.urandom(9000)
    blob = compress(data, tiny_model, BLOCK, frame_size=FRAME)
    assert {b.method for b in list_stream(io.BytesIO(blob)).blocks} == {fmt.METHOD_STORED}
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, lookup_for(), threads=2)
    assert out.getvalue() == data


def test_the_worker_count_fits_the_memory_budget(tiny_model: IntModel) -> None:
    header = fmt.Header(1 << 20, fmt.MODEL_HASH, "00" * 8)
    each = plan_workers(1, header, 16 << 20, None, compress=True).memory_each
    assert each > 300 << 20  # the mixed method's tables, twice while compressing
    assert plan_workers(8, header, 16 << 20, 3 * each, compress=True).count == 3
    assert plan_workers(8, header, 16 << 20, each // 2, compress=True).count == 1
    assert plan_workers(3, header, 16 << 20, 100 * each, compress=True).count == 3
    dec = plan_workers(1, header, 16 << 20, None, compress=False).memory_each
    assert dec < each


def test_a_failing_job_is_reported() -> None:
    pool = FramePool(Workers(1, False, 0, 0))
    try:
        with pytest.raises(WorkerError, match="ValueError"):
            list(pool.submit(int, "not a number"))
            list(pool.drain())
    finally:
        pool.close()


def test_decompress_round_trip_through_workers_on_the_cli(tmp_path, cli: str) -> None:
    """The console script with -T2 on an input of two default-sized... frames of 256 KiB
    (the smallest that start workers), and with -T1: the same archive."""
    import subprocess

    data = sample_text(600_000, seed=9)
    src = tmp_path / "a.txt"
    src.write_bytes(data)
    args = ["-B", "128K", "-F", "256K", "-c", str(src)]
    one = subprocess.run([cli, "-T1", *args], capture_output=True, check=True).stdout
    two = subprocess.run([cli, "-T2", "-v", *args], capture_output=True, check=True)
    assert two.stdout == one
    assert b"2 worker processes over 3 frames" in two.stderr
    back = subprocess.run([cli, "-T2", "-d"], input=one, capture_output=True, check=True)
    assert back.stdout == data
    assert decompress(one, IntModel.load(_model_path())) == data


def _model_path():
    import os
    from pathlib import Path

    return Path(os.environ["NNCOMPRESS_MODELS"]) / "default.nnm"


def test_models_reach_workers_whatever_their_backend(
    tiny_model: IntModel, small_frames_use_workers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model laid out for torch (as for --device cuda, whose mixing stays in the
    compiled loops unless asked) cannot be pickled; the workers load it from its file
    instead, and the archive is the same. (Where the mixing runs in torch, the frames go
    to threads on its device instead: tests/test_devicepool.py.)"""
    pytest.importorskip("torch")
    from nncompress import coder
    from nncompress.ops import TorchOps

    monkeypatch.setattr(coder, "mixing_device", lambda model, config, account: None)
    data = sample_text(9000, seed=5)
    torch_model = tiny_model.to(TorchOps("cpu"))
    many = _compress(data, torch_model, 2)
    assert many.workers is not None and many.workers.device is None
    assert many.blob == _compress(data, tiny_model, 1).blob  # type: ignore[attr-defined]
