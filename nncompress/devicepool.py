"""A stream's frames side by side on one torch device, in threads of this process.

Worker processes (``workers.FramePool``) load the model for the CPU: a process of its own
cannot share the caller's device, and a GPU runs one process's kernels at a time unless a
server multiplexes them. So where the mixed predictor runs on a torch device
(``coder.mixing_device``), a stream's frames are coded here instead, each in a thread of
this process on a CUDA stream of its own, and the device runs several frames' steps at
once. One frame's step leaves a GPU mostly idle: --wide's 2 MiB blocks give it 128
segments a step, and the decoder's step waits on the host for each of its 8 bits, where
the other frames' steps fill the gaps. Four 16 MiB frames of a 64 MiB input are four
times the segments in flight, at no cost in ratio (docs/DESIGN.md, section 10).

Threads, not processes, can share the device, and here they can run side by side: a
thread releases the GIL while it waits for the device, while torch runs an operation,
and while the range coder (compiled without the GIL) codes a step's bits, which is most
of a step's time once its operations are recorded as CUDA graphs; what holds the GIL is
the Python between them.

Frames are independent, so the archive is the same for any count of threads.
``--device torch`` runs the same threads on CPU tensors, so the tests check them against
the compiled loops without a GPU.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .workers import Workers


class DeviceFrames:
    """``workers.FramePool``'s ``submit``, ``drain``, ``threaded`` and ``close`` for
    frames coded in ``workers.count`` threads on ``device``: results in submission order,
    at most ``2 * count`` frames in flight (memory stays bounded). A job's exception is
    raised as it is, where the frame would have raised it in the caller's thread."""

    def __init__(self, workers: Workers, device: Any) -> None:
        self.workers = workers
        self.device = device
        #: Whether each frame runs the network in a thread of its own beside its coder.
        self.threaded = workers.threaded
        self._threads = ThreadPoolExecutor(workers.count, thread_name_prefix="nncompress-frame")
        self._local = threading.local()
        self._pending: deque[Future] = deque()
        self._stop = threading.Event()  # set by ``close`` where the caller gave up

    def _run(self, fn: Callable[..., Any], args: tuple) -> Any:
        """``fn(*args)`` in a pool thread, on that thread's own CUDA stream on a GPU,
        stopped at its next step once ``close`` gives up on it (``coder.stopping``)."""
        from .coder import stopping

        with stopping(self._stop):
            if self.device.type != "cuda":
                return fn(*args)
            import torch

            stream = getattr(self._local, "stream", None)
            if stream is None:
                stream = self._local.stream = torch.cuda.Stream(self.device)
            with torch.cuda.stream(stream):
                return fn(*args)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Iterator[Any]:
        """Queue ``fn(*args)``; yields the results that must be taken before more fit."""
        self._pending.append(self._threads.submit(self._run, fn, args))
        while len(self._pending) > 2 * self.workers.count:
            yield self._pending.popleft().result()

    def drain(self) -> Iterator[Any]:
        """The remaining results, in order."""
        while self._pending:
            yield self._pending.popleft().result()

    def close(self) -> int:
        """Stop the threads: where results were left untaken (an error stopped the
        caller, or Ctrl-C), frames not yet begun are dropped and those begun stop at their
        next step (``coder.Cancelled``, which nobody reads), as ``workers.FramePool``
        kills its processes. Returns the largest resident memory this process reached, in
        bytes (0 where the system does not say)."""
        if self._pending:
            self._stop.set()
        self._threads.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        try:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        except (ImportError, OSError):
            return 0


#: A frame's device memory besides its tables: the window and block (a copy of each),
#: the network's states, the recorded graphs' buffers.
DEVICE_FRAME_EXTRA = 256 << 20


def frame_pool(workers: Workers, header: Any, model: Any, account: bool) -> Any:
    """The pool for the frames of a stream of ``header`` coded with ``model``, or None
    where they are coded one after another in the caller's thread: threads on the device
    where the mixed predictor runs on one (``workers.device`` then names it; where its
    steps are compiled, ``torchmix.TORCH_COMPILE``, the threads take turns in the
    compiler, ``torchmix._COMPILER``), else worker processes; either only for more than
    one frame at a time. On a GPU the threads are cut to the frames whose tables fit in
    its free memory, as the processes are cut to the host's budget
    (``workers.plan_workers``)."""
    from .coder import mixing_device
    from .workers import FramePool, table_memory

    if workers.count < 2:
        return None
    device = mixing_device(model, header.config, account)
    if device is None:
        return FramePool(workers)
    if device.type == "cuda":
        import torch

        free, _ = torch.cuda.mem_get_info(device)
        workers.count = min(workers.count, free // (table_memory(header) + DEVICE_FRAME_EXTRA))
        if workers.count < 2:
            return None
    workers.device = str(device)
    return DeviceFrames(workers, device)
