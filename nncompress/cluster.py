"""nncompress on a Dask cluster: many files, or one large file's frames, over many machines.

    from dask.distributed import Client
    from nncompress.cluster import compress_files, compress_file, decompress_files

    client = Client("scheduler:8786")              # or Client() for a local cluster
    compress_files(client, paths)                  # each FILE -> FILE.nnc, on the workers
    compress_file(client, "big.log", "big.log.nnc")  # one file, its frames on the workers
    decompress_files(client, [p + ".nnc" for p in paths])

Why Dask: it installs from PyPI as pure Python (no large binary or daemon, unlike Ray), its
``LocalCluster`` runs the same code on one machine as on many, and it already reads through
fsspec, which nncompress registers with (``nncompress.register_fsspec``). Needs the
``cluster`` extra (``pip install 'nncompress[cluster]'``).

Workers load each model once (``zoo``'s per-process cache, and for frames that of
``workers.run_job``, keyed by the model file's hash) and receive only its name or path,
not its weights. The paths must be
readable from the workers (a shared file system, or a local cluster). Archives are byte for
byte what the command line makes with the same options: a file's frames are coded on the
workers by the same ``engine.encode_frame`` and assembled in order by the same
``StreamEncoder``.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import IntModel, ModelError


def _resolve(model: str | os.PathLike | None, level: str) -> IntModel:
    from .zoo import load_model, model_spec

    return load_model(model_spec(os.fspath(model) if model is not None else None, level))


class DaskFrames:
    """``StreamEncoder``'s frame pool on a Dask cluster: each frame a task, results in
    order, at most ``window`` frames in flight (the caller's memory stays bounded)."""

    threaded = False  # a worker codes one frame at a time on one core

    def __init__(self, client: Any, window: int | None = None) -> None:
        self.client = client
        workers = len(client.scheduler_info().get("workers", {})) or 1
        self.window = window or 2 * workers
        self._pending: deque = deque()

    def submit(self, fn: Any, model: IntModel, *args: Any) -> Iterator[Any]:
        from .workers import job_of, run_job

        if model.path is None:
            raise ModelError("a model coded on a cluster must come from a file")
        future = self.client.submit(run_job, *job_of(fn, (model, *args)), pure=False)
        self._pending.append(future)
        while len(self._pending) > self.window:
            yield self._pending.popleft().result()

    def drain(self) -> Iterator[Any]:
        while self._pending:
            yield self._pending.popleft().result()


def compress_file(
    client: Any,
    path: str | os.PathLike,
    out: str | os.PathLike,
    level: str = "default",
    model: str | os.PathLike | None = None,
    block_size: int | None = None,
    frame_size: int | None = None,
) -> int:
    """Compress one file, its frames coded as tasks on the cluster; returns the archive's
    size. The archive is what ``nncompress -B block_size -F frame_size`` makes of it."""
    from .engine import StreamEncoder

    enc = StreamEncoder(
        _resolve(model, level),
        block_size,
        level,
        frame_size=frame_size,
        pool=DaskFrames(client),
        threads=1,
    )
    tmp = Path(f"{os.fspath(out)}.{os.getpid()}.tmp")
    try:
        with open(path, "rb") as src, open(tmp, "xb") as dst:
            enc.sink = dst.write
            while chunk := src.read(enc.block_size):
                enc.write(chunk)
            enc.finish()
        os.replace(tmp, out)
    finally:
        enc.close()
        tmp.unlink(missing_ok=True)
    return enc.info.archive_len


@dataclass
class FileResult:
    path: str
    out: str
    raw_len: int
    archive_len: int


def _compress_one(
    path: str, out: str, level: str, model: str | None, block: int, frame: int | None
):
    """A worker's job: one whole file (the model comes from the worker's cache)."""
    from . import api

    data = Path(path).read_bytes()
    blob = api.compress(data, level, model=model, threads=1, block_size=block, frame_size=frame)
    _write(out, blob)
    return FileResult(path, out, len(data), len(blob))


def _decompress_one(path: str, out: str) -> FileResult:
    """A worker's job: one whole archive (its model found by hash, cached per worker)."""
    from . import api

    blob = Path(path).read_bytes()
    data = api.decompress(blob, threads=1)
    _write(out, data)
    return FileResult(path, out, len(data), len(blob))


def _write(out: str, data: bytes) -> None:
    """All or nothing: a temporary file renamed into place."""
    tmp = Path(f"{out}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def compress_files(
    client: Any,
    paths: Iterable[str | os.PathLike],
    suffix: str = ".nnc",
    level: str = "default",
    model: str | None = None,
    block_size: int | None = None,
    frame_size: int | None = None,
) -> list[FileResult]:
    """Compress each file to FILE + ``suffix`` on the cluster's workers, one task per file
    (one core each: the cluster's parallelism is across files)."""
    paths = [os.fspath(p) for p in paths]
    futures = client.map(
        _compress_one,
        paths,
        [p + suffix for p in paths],
        [level] * len(paths),
        [model] * len(paths),
        [block_size] * len(paths),
        [frame_size] * len(paths),
        pure=False,
    )
    return client.gather(futures)


def decompress_files(
    client: Any, paths: Iterable[str | os.PathLike], suffix: str = ".nnc"
) -> list[FileResult]:
    """Decompress each FILE.nnc to FILE on the cluster's workers, one task per file."""
    paths = [os.fspath(p) for p in paths]
    outs = [p[: -len(suffix)] if p.endswith(suffix) else p + ".out" for p in paths]
    return client.gather(client.map(_decompress_one, paths, outs, pure=False))
