"""Frames coded by worker processes, as many as the cores and a memory budget allow.

Frames are independent (their statistics start afresh), so a stream of several frames is
coded, and decoded, by handing whole frames to workers and writing their results in
order: the archive is the same for any number of workers. Workers are processes, not
threads: the per-step Python work of the lockstep coder holds the GIL, so threads would
take turns rather than run side by side.

A worker is ``python -m nncompress.workers``: a fresh interpreter that imports only
nncompress, not the caller's main module (so a user's script is never re-run, as
``multiprocessing``'s spawn would, and no lock held by another thread is inherited, as
fork would). Jobs and results go through its pipes as length-prefixed pickles of plain
data (frame bytes, settings, the model's arrays), between processes of this program
only. Jobs are dealt round-robin and results read back in the same order; a reader thread
in each worker keeps its input drained, so neither side blocks the other.

Each worker holds the mixed method's tables (hundreds of MB; ``frame_memory`` estimates
them), so the count is cut to a budget, as xz cuts its threads to its memory limit: the
budget is ``--memory`` or ``$NNCOMPRESS_MEMORY``, else half of the machine's memory.
"""

from __future__ import annotations

import importlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from . import format as fmt
from .errors import NNCError

#: A worker's resident memory besides its tables and frames: Python, numpy, numba, the
#: model, and torch where int8 products are used. Measured with scripts/scaling.py's -v
#: (2026-12-01, blocks of 1 MiB in frames of 2 MiB): peaks of 1,042 MiB compressing and
#: 715 MiB decompressing, of which the tables are 641 and 320 MiB, leaving about 390.
WORKER_BASE = 400 << 20


@dataclass
class Workers:
    """How many workers code the frames, whether each runs the network and the LZMA2
    trial in threads of its own, and the memory they were planned for."""

    count: int
    threaded: bool
    memory_each: int
    budget: int
    #: The largest resident memory one worker reached (bytes; 0 until they end); for
    #: threads on a device, this process's.
    peak: int = 0
    #: The torch device whose threads code the frames (``devicepool``), or None for
    #: worker processes.
    device: str | None = None


def total_memory() -> int:
    """Physical memory of the machine, in bytes (4 GiB if it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def memory_budget(memory: int | None = None) -> int:
    """The memory the workers may use: ``memory``, else ``$NNCOMPRESS_MEMORY`` (bytes, or
    with a K/M/G suffix), else half of the machine's memory."""
    if memory is not None:
        return memory
    env = os.environ.get("NNCOMPRESS_MEMORY", "").strip()
    if env:
        try:
            return parse_size(env)
        except ValueError:
            raise WorkerError(f"NNCOMPRESS_MEMORY: not a size: {env!r}") from None
    return total_memory() // 2


def parse_size(text: str) -> int:
    """``1048576``, ``512K``, ``1M``, ``4MiB``, ``1g`` -> bytes (ValueError otherwise)."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}.get(t[-1:], 1)
    value = int(t[:-1] if mult > 1 else t)
    if value <= 0:
        raise ValueError("size must be positive")
    return value * mult


def table_memory(header: fmt.Header) -> int:
    """The adaptive statistics of a stream with ``header``: the match table, and where a
    model is named (only then can mixed blocks occur) the context tables and the two
    refinement stages. Their sizes follow from the header's block size."""
    from .adaptive import table_bits

    ctx_bits, match_bits = table_bits(header.block_size, header.config)
    tables = 8 << match_bits
    if header.needs_model:
        tables += len(header.config.contexts) * (8 << ctx_bits) + 2 * (1 << 16) * 33 * 4
    return tables


def frame_memory(header: fmt.Header, frame_bytes: int, compress: bool) -> int:
    """What one worker needs for a frame of ``frame_bytes``: the adaptive statistics
    (twice while compressing: a frame that mixes kinds of data keeps a copy to roll back
    a block that another method wins), the match window, the frame in and out, the
    frame's bytes once more for copy blocks (the encoder's lookup, the decoder's last
    ``format.COPY_WINDOW``), and the interpreter."""
    tables = table_memory(header)
    window = min(frame_bytes, 64 << 20)
    copies = frame_bytes if compress else min(frame_bytes, fmt.COPY_WINDOW)
    return WORKER_BASE + tables * (2 if compress else 1) + window + 2 * frame_bytes + copies


def plan_workers(
    threads: int, header: fmt.Header, frame_bytes: int, memory: int | None, compress: bool
) -> Workers:
    """The workers for a stream of several frames: ``threads`` (0: every core), cut to
    the memory budget; each runs its own helper threads when cores are left for them."""
    cores = os.cpu_count() or 1
    wanted = cores if threads == 0 else threads
    each = frame_memory(header, frame_bytes, compress)
    budget = memory_budget(memory)
    count = max(1, min(wanted, budget // each))
    return Workers(count, cores >= 2 * count, each, budget)


class WorkerError(NNCError):
    """A worker process failed or ended unexpectedly."""


@dataclass(frozen=True)
class ModelFile:
    """A model as sent to a worker: its file and hash. The worker loads it once, for the
    CPU, whatever device or product kernels the caller's copy uses (the integers are the
    same everywhere); only a model that has no file travels whole."""

    path: str
    sha256: str


_models: dict[str, Any] = {}


def _as_sent(arg: Any) -> Any:
    from .model import IntModel
    from .ops import numpy_ops

    if isinstance(arg, IntModel):
        if arg.path is not None:
            return ModelFile(str(arg.path), arg.sha256)
        if arg.ops.name != "numpy" or arg._int8 is not None:
            return arg.to(numpy_ops())
    return arg


def job_of(fn: Callable[..., Any], args: tuple) -> tuple[str, str, tuple]:
    """``fn(*args)`` as a job another process can run (``run_job``): the function by name,
    models by file and hash."""
    return fn.__module__, fn.__name__, tuple(_as_sent(a) for a in args)


def run_job(module: str, name: str, args: tuple) -> Any:
    """Run a job made by ``job_of``, in a worker process (ours, or a cluster's): models are
    loaded once per process."""
    args = tuple(_as_received(a) for a in args)
    return getattr(importlib.import_module(module), name)(*args)


def _as_received(arg: Any) -> Any:
    if isinstance(arg, ModelFile):
        if arg.sha256 not in _models:
            from .model import IntModel, ModelError

            model = IntModel.load(arg.path)
            if model.sha256 != arg.sha256:
                raise ModelError(f"{arg.path} changed while it was being used")
            _models[arg.sha256] = model
        return _models[arg.sha256]
    return arg


_LEN = struct.Struct("<Q")


def _send(f: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    f.write(_LEN.pack(len(data)))
    f.write(data)
    f.flush()


def _recv(f: BinaryIO) -> Any:
    head = f.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError
    (n,) = _LEN.unpack(head)
    data = f.read(n)
    if len(data) < n:
        raise EOFError
    return pickle.loads(data)


class FramePool:
    """Runs frame jobs in worker processes and hands back their results in submission
    order, keeping at most ``2 * count`` frames in flight (memory stays bounded)."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.threaded = workers.threaded
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = "1"  # the workers already fill the cores
        # The workers import this very package, wherever it was imported from.
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
        self._procs = [
            subprocess.Popen(
                [sys.executable, "-m", "nncompress.workers"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            for _ in range(workers.count)
        ]
        self._next = 0
        self._pending: deque[subprocess.Popen] = deque()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Iterator[Any]:
        """Queue ``fn(*args)`` (a module-level function); yields the results that must be
        taken before more fit."""
        proc = self._procs[self._next]
        self._next = (self._next + 1) % len(self._procs)
        try:
            _send(proc.stdin, job_of(fn, args))  # type: ignore[arg-type]
        except OSError:
            raise WorkerError("a worker process ended unexpectedly") from None
        self._pending.append(proc)
        while len(self._pending) > 2 * len(self._procs):
            yield self._result(self._pending.popleft())

    def drain(self) -> Iterator[Any]:
        """The remaining results, in order."""
        while self._pending:
            yield self._result(self._pending.popleft())

    @staticmethod
    def _result(proc: subprocess.Popen) -> Any:
        try:
            status, value = _recv(proc.stdout)  # type: ignore[arg-type]
        except (EOFError, OSError):
            raise WorkerError("a worker process ended unexpectedly") from None
        if status != "ok":
            raise WorkerError(value)
        return value

    def close(self) -> int:
        """Stop the workers: let them finish if every result was taken, else (an error
        stopped the caller) kill them. Returns the largest resident memory one of them
        reached, in bytes (0 where the system does not say)."""
        abandon = bool(self._pending)
        for proc in self._procs:
            try:
                if abandon:
                    proc.kill()
                else:
                    _send(proc.stdin, None)  # type: ignore[arg-type]
                proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
        for proc in self._procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()  # type: ignore[union-attr]
        self._pending.clear()
        try:
            import resource

            return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        except (ImportError, OSError):
            return 0


def _serve() -> None:
    """A worker's main loop: jobs from stdin, results to stdout, in order."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's to handle
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the result pipe
    jobs: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                job = _recv(inp)
            except (EOFError, OSError):
                os._exit(0)  # the caller is gone: drop the work in hand
            jobs.put(job)
            if job is None:
                return

    threading.Thread(target=read, daemon=True).start()
    while (job := jobs.get()) is not None:
        module, name, args = job
        try:
            result = ("ok", run_job(module, name, args))
        except Exception as e:  # handed to the caller, which raises it
            result = ("error", f"{type(e).__name__}: {e}")
        try:
            _send(out, result)
        except OSError:
            os._exit(0)


if __name__ == "__main__":
    # Run the package's own copy of this module, not this __main__ one: the jobs' objects
    # (ModelFile) are unpickled as instances of the package's classes.
    from nncompress.workers import _serve as serve

    serve()
