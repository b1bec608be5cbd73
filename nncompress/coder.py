"""Lockstep range coding of one block with an integer model.

A block of n bytes is cut into S segments (S chosen by the encoder within the range the
format allows for n, and recorded in the block header). One batched model step advances
every segment by one byte, and one vectorised constriction call codes the S symbols of
that step, so Python's overhead is paid once per step rather than once per byte. Segment
i holds bytes [start_i, start_i + len_i); the first ``n % S`` segments are one byte longer
than the rest, so at every step the active segments are a prefix of the batch. The mixed
method codes the segments in two groups, one after the other at each step
(``format.segment_groups``), so that one group's network step can run beside the coding
of the other's bytes (docs/DESIGN.md, section 3).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .adaptive import BlockCoder, StreamState, copy_snapshot
from .format import segment_count, segment_groups
from .model import IntModel
from .rangecoder import BitDecoder, BitEncoder

if TYPE_CHECKING:
    from .config import Config


def _layout(n: int, segments: int) -> tuple[int, int]:
    """(length of the short segments, number of segments one byte longer)."""
    return n // segments, n % segments


def _grid(data: bytes, segments: int) -> np.ndarray:
    """The block as a [S, steps] matrix of segment rows, zero-padded on the right (bytes:
    one per raw byte, so a block of 256 MiB costs 256 MiB here, not 2 GiB)."""
    base, extra = _layout(len(data), segments)
    steps = base + (extra > 0)
    arr = np.frombuffer(data, dtype=np.uint8)
    grid = np.zeros((segments, steps), dtype=np.uint8)
    long_part = extra * (base + 1)
    if extra:
        grid[:extra] = arr[:long_part].reshape(extra, base + 1)
    if base:
        grid[extra:, :base] = arr[long_part:].reshape(segments - extra, base)
    return grid


def _ungrid(grid: np.ndarray, n: int) -> bytes:
    segments = grid.shape[0]
    base, extra = _layout(n, segments)
    parts = [grid[:extra].tobytes()]
    if base:
        parts.append(grid[extra:, :base].tobytes())
    return b"".join(parts)


class Cancelled(Exception):
    """A block's coding was stopped from outside (``stopping``): its caller gave up on it."""


_stop = threading.local()


@contextlib.contextmanager
def stopping(event: Any) -> Iterator[None]:
    """Within, a block coded in this thread raises ``Cancelled`` at its next step once
    ``event`` is set (a ``threading.Event``, or anything with its ``is_set``): for the
    frames that ``devicepool`` codes in threads, which cannot be stopped otherwise, so
    that a caller that gives up (an error, Ctrl-C) need not wait for every frame begun
    to end (minutes, for a frame of 16 MiB), and for a block's second coding beside its
    first (``engine._Second``)."""
    _stop.event = event
    try:
        yield
    finally:
        _stop.event = None


def stop_event() -> Any:
    """What ``stopping`` told this thread to watch (None: nothing): for a coding that this
    thread hands to another, which is to stop when this one would."""
    return getattr(_stop, "event", None)


def _ticker(progress: Callable[[int], None] | None, n: int, steps: int) -> Callable[[int], None]:
    """Report progress in bytes every 256 steps, ending exactly at ``n``; raise
    ``Cancelled`` where this thread was told to stop (``stopping``). Every coding loop
    calls it once a step."""
    done = 0
    stop = getattr(_stop, "event", None)

    def tick(t: int) -> None:
        nonlocal done
        if stop is not None and stop.is_set():
            raise Cancelled("stopped: the caller gave up on this frame")
        if progress and (t % 256 == 255 or t == steps - 1):
            target = n * (t + 1) // steps
            progress(target - done)
            done = target

    return tick


def _active(t: int, segments: int, base: int, extra: int) -> int:
    return segments if t < base else extra


class _Encoder:
    """constriction's range encoder with the one model family every method uses:
    ``Categorical(perfect=False)`` over integer-valued probabilities."""

    def __init__(self) -> None:
        import constriction

        self.enc = constriction.stream.queue.RangeEncoder()
        self.family = constriction.stream.model.Categorical(perfect=False)

    def code(self, probs: np.ndarray, symbols: np.ndarray | None) -> np.ndarray:
        """Code the known ``symbols`` ([k]) with ``probs`` ([k, n]); return them."""
        assert symbols is not None
        self.enc.encode(np.ascontiguousarray(symbols, dtype=np.int32), self.family, probs)
        return symbols

    def payload(self) -> bytes:
        return self.enc.get_compressed().astype("<u4").tobytes()


class _Decoder:
    """The decoding twin of ``_Encoder``. A damaged payload decodes to wrong bytes (the
    caller's CRC check catches them) or raises ValueError, never another exception."""

    def __init__(self, payload: bytes) -> None:
        import constriction

        if len(payload) % 4:
            raise ValueError("block payload is not a whole number of 32-bit words")
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        self.dec = constriction.stream.queue.RangeDecoder(words)
        self.family = constriction.stream.model.Categorical(perfect=False)

    def code(self, probs: np.ndarray, symbols: np.ndarray | None = None) -> np.ndarray:
        """Decode [k] symbols with ``probs`` ([k, n])."""
        try:
            return self.dec.decode(self.family, probs).astype(np.int64)
        except AssertionError:  # constriction's report of data no encoder could make
            raise ValueError("block payload is invalid for this model") from None


_Coder = _Encoder | _Decoder


# --------------------------------------------------------------------------- network method
def _code_network(
    model: IntModel,
    n: int,
    segments: int,
    coder: _Coder,
    grid: np.ndarray | None,
    progress: Callable[[int], None] | None,
) -> np.ndarray:
    """The loop shared by encoder and decoder of the network method: per step, one network
    step for all segments and one coder call for their bytes. ``grid``: the block's bytes
    when encoding, None when decoding. Returns the [S, steps] grid of coded bytes."""
    base, extra = _layout(n, segments)
    steps = base + (extra > 0)
    out = np.zeros((segments, steps), dtype=np.uint8)
    ops = model.ops
    state = model.initial_state(segments)
    prev = np.zeros(segments, dtype=np.int64)  # the start byte
    tick = _ticker(progress, n, steps)
    for t in range(steps):
        k = _active(t, segments, base, extra)
        freqs, state = model.step(ops.asarray(prev), state)
        probs = ops.to_numpy(freqs[:k]).astype(np.float32)
        out[:k, t] = coder.code(probs, None if grid is None else grid[:k, t].astype(np.int32))
        prev = out[:, t].astype(np.int64)  # finished segments advance with byte 0
        tick(t)
    return out


def encode_block(
    model: IntModel,
    data: bytes,
    progress: Callable[[int], None] | None = None,
    segments: int | None = None,
) -> tuple[bytes, int]:
    """Range-code ``data`` with ``model`` in ``segments`` lockstep segments (default:
    ``segment_count``); returns (payload, segment count)."""
    segments = segments or segment_count(len(data))
    enc = _Encoder()
    _code_network(model, len(data), segments, enc, _grid(data, segments), progress)
    return enc.payload(), segments


def decode_block(
    model: IntModel,
    payload: bytes,
    n: int,
    segments: int,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """Invert ``encode_block``."""
    return _ungrid(_code_network(model, n, segments, _Decoder(payload), None, progress), n)


# --------------------------------------------------------------------------- mixed method
class _Steps:
    """The network's steps for the segment groups of a mixed block, asked for in the
    coder's order: group 0 at step 0, group 1 at step 0, group 0 at step 1, ...

    ``submit(g, prev)`` hands over group g's latest bytes, ``freqs(g)`` returns the
    frequencies of its next byte (with ``keep`` as the model's tensor, for mixing on its
    device; else as a numpy array). With ``pipelined`` a thread of its own computes each
    step as soon as its bytes are submitted, so one group's network step runs while the
    coder mixes and codes the other group's bytes, each on a core; without it the step
    is computed when asked for. The results are the same: the network is a pure function
    of the bytes. On a CUDA device the thread launches on the coder's current stream
    (a frame's own, ``devicepool``), so that the frequencies it leaves are ordered
    before the coder's work that reads them.
    """

    def __init__(
        self, model: IntModel, groups: list[tuple[int, int]], pipelined: bool, keep: bool = False
    ) -> None:
        self.model = model
        # On the mixing's device, each group's steps in fixed buffers, recorded once as
        # a CUDA graph on a GPU (``torchmix.NetworkSteps``); else its states here.
        self.graphs = None
        self.states = []
        if keep:
            from .torchmix import NetworkSteps

            self.graphs = [NetworkSteps(model, hi - lo) for lo, hi in groups]
        else:
            self.states = [model.initial_state(hi - lo) for lo, hi in groups]
        self.pending: list[np.ndarray | None] = [None] * len(groups)
        self.thread: threading.Thread | None = None
        self.stream = None
        device = getattr(model.ops, "device", None)
        if pipelined and device is not None and device.type == "cuda":
            import torch

            self.stream = torch.cuda.current_stream(device)
        if pipelined:
            self.inbox: queue.SimpleQueue = queue.SimpleQueue()
            self.outbox: queue.SimpleQueue = queue.SimpleQueue()
            self.thread = threading.Thread(target=self._run, name="nncompress-net", daemon=True)
            self.thread.start()
        for g, (lo, hi) in enumerate(groups):
            self.submit(g, np.zeros(hi - lo, dtype=np.int64))  # the start byte

    def _step(self, g: int, prev: np.ndarray) -> np.ndarray:
        if self.graphs is not None:
            return self.graphs[g].step(prev)
        ops = self.model.ops
        freqs, self.states[g] = self.model.step(ops.asarray(prev), self.states[g])
        return ops.to_numpy(freqs)

    def _run(self) -> None:
        if self.stream is not None:
            import torch

            torch.cuda.set_stream(self.stream)  # this thread's, for its life
        while (item := self.inbox.get()) is not None:
            try:
                self.outbox.put(self._step(*item))
            except BaseException as e:  # handed to the coder's thread, which raises it
                self.outbox.put(e)
                return

    def submit(self, g: int, prev: np.ndarray) -> None:
        if self.thread is not None:
            self.inbox.put((g, prev))
        else:
            self.pending[g] = prev

    def freqs(self, g: int) -> np.ndarray:
        if self.thread is None:
            prev, self.pending[g] = self.pending[g], None
            assert prev is not None
            return self._step(g, prev)
        out = self.outbox.get()
        if isinstance(out, BaseException):
            raise out
        return out

    def close(self) -> None:
        if self.thread is not None:
            self.inbox.put(None)
            self.thread.join()
            self.thread = None


def pipeline_default() -> bool:
    """Whether mixed blocks run the network in a thread of its own: when there is a
    second core for it."""
    return (os.cpu_count() or 1) > 1


#: Set to 1 to run the per-bit mixing on a CUDA device too (``_mixing_device``).
TORCH_MIXING = "NNCOMPRESS_TORCH_MIXING"


class _FlatSteps:
    """``_Steps`` for a block coded without the network (``format.OPTION_FLAT``): every
    byte equally likely, so the network's input to the mixers is 0 (the stretch of 1/2),
    its weights never move, and no network runs. Binary data, where a network trained on
    text has little to say, thereby costs no network step, and its blocks can be coded
    in few long segments at the speed of the adaptive statistics alone."""

    def __init__(self, groups: list[tuple[int, int]]) -> None:
        self.flat = [np.ones((hi - lo, 256), dtype=np.int32) for lo, hi in groups]

    def freqs(self, g: int) -> np.ndarray:
        return self.flat[g]

    def submit(self, g: int, prev: np.ndarray) -> None:
        pass

    def close(self) -> None:
        pass


def _code_mixed(
    model: IntModel,
    n: int,
    segments: int,
    state: StreamState,
    coder: BitEncoder | BitDecoder,
    grid: np.ndarray | None,
    progress: Callable[[int], None] | None,
    pipelined: bool | None,
    record: int = 0,
    flat: bool = False,
) -> np.ndarray:
    """The loop shared by encoder and decoder of the mixed method: per step and segment
    group (``segment_groups``), the network's frequencies, then 8 binary
    decisions mixed with the adaptive statistics, each coded (bit 0 of every segment
    first) before the next is predicted. A group's byte is one compiled call, range coder
    included (``rangecoder``). ``pipelined``: run the network in a thread of its own
    (None: when there is a second core; never where the mixing runs on a CUDA device,
    below). ``record``: the block's record length (0: none).
    ``flat``: without the network (``_FlatSteps``)."""
    groups = segment_groups(segments)
    if pipelined is None:
        pipelined = pipeline_default()
    base, extra = _layout(n, segments)
    steps = base + (extra > 0)
    out = np.zeros((segments, steps), dtype=np.uint8)
    device = None if flat else _mixing_device(model, state)  # flat: no network, no device
    if device is None:
        state.settle()  # the loops read and write the arrays
    elif device.type == "cuda":
        # The network's step is a launch there, as the mixing's are: from a thread of its
        # own it would cost a handoff a step and overlap nothing (both hold the GIL to
        # launch): 30-90 us more of the host's time a step, which the frames' threads share
        # (``scripts/device_mixing.py --host --pipelined``, docs/DESIGN.md section 10).
        pipelined = False
    if len(groups) == 1:
        coders = [state.block_coder(n, segments, record)]
    else:
        coders = state.block_coders(n, segments, groups, record)
    pipelined = pipelined and len(groups) > 1
    tick = _ticker(progress, n, steps)
    if flat and segments == 1:
        _code_flat_run(coders[0], steps, coder, grid, out[0], tick)
        coders[0].finish()
        return out
    tables = None
    if device is not None:
        from . import tritonmix
        from .torchmix import DeviceTables, TorchBlockCoder

        tables = DeviceTables.held(state, device)
        made = tritonmix.TritonBlockCoder if tritonmix.wanted(device) else TorchBlockCoder
        coders = [made(bc, tables) for bc in coders]  # type: ignore[misc]
        for bc, (lo, hi) in zip(coders, groups, strict=True):
            if grid is None:  # the bytes a device decodes come back later, into ``out``
                bc.deliver_into(out[lo:hi])
            else:  # and an encoder's device reads them from its own copy
                bc.encode_from(grid[lo:hi])
    # (Without the network no BLAS runs: a block's two codings side by side, engine._Second,
    # must not set and restore the process's BLAS threads over each other.)
    with contextlib.nullcontext() if flat else _one_blas_thread():
        # On a device the frequencies stay where the network left them, for the mixing.
        net: _Steps | _FlatSteps = (
            _FlatSteps(groups) if flat else _Steps(model, groups, pipelined, device is not None)
        )
        try:
            for t in range(steps):
                active = _active(t, segments, base, extra)
                for g, (lo, hi) in enumerate(groups):
                    k = min(max(active - lo, 0), hi - lo)
                    if k == 0:
                        continue
                    bc = coders[g]
                    freqs = net.freqs(g)
                    if grid is not None:
                        assert isinstance(coder, BitEncoder)
                        byte = grid[lo : lo + k, t].astype(np.int64)
                        sent = bc.code_byte(freqs, byte, coder)
                        if sent is not None:
                            # Predicted on the device, whose copy of the bytes the
                            # network's next step reads there.
                            out[lo : lo + k, t] = byte
                            if t + 1 < steps:
                                net.submit(g, sent)
                            continue
                    else:
                        assert isinstance(coder, BitDecoder)
                        byte = bc.decode_byte(freqs, k, coder)
                        if not isinstance(byte, np.ndarray):
                            # Decoded on the device, where the bytes stay for the
                            # network's next step; the grid gets them later (``collect``).
                            if t + 1 < steps:
                                net.submit(g, byte)
                            continue
                    out[lo : lo + k, t] = byte
                    if t + 1 < steps:
                        prev = np.zeros(hi - lo, dtype=np.int64)
                        prev[:k] = byte  # finished segments advance with byte 0
                        net.submit(g, prev)
                tick(t)
            if device is not None:
                for bc in coders:
                    bc.collect(coder)
        finally:
            net.close()
    if tables is not None:
        tables.end_block()
        state.resident = tables  # on the device for the next block (StreamState.settle)
    for bc in coders:
        bc.finish()
    return out


def _mixing_device(model: IntModel, state: StreamState) -> object | None:
    """``mixing_device`` for a block of the stream ``state``."""
    return mixing_device(model, state.config, state.spending is not None)


def mixing_device(model: IntModel | None, config: Config, account: bool) -> Any:
    """The torch device the per-bit mixing of a stream of ``config`` runs on
    (``torchmix``), or None for the compiled loops; either way the archive is the same.
    ``--device torch`` (CPU tensors) runs it, so that the tests check the device code
    path without a device; a CUDA device only where ``TORCH_MIXING`` is set to 1 in the
    environment, until the path has been measured on a GPU (one operation at a time, it
    pays a launch per operation and a wait for every bit: ``--device cuda`` keeps the
    compiled loops meanwhile). Configurations and accounting (``account``) that
    ``torchmix.supports`` refuses run the loops."""
    device = getattr(model.ops, "device", None) if model is not None else None
    if device is None:
        return None
    if device.type != "cpu" and os.environ.get(TORCH_MIXING) != "1":
        return None
    from .torchmix import supports

    return device if supports(config, account) else None


#: Steps per compiled call of a one-segment block without the network (``_code_flat_run``):
#: enough that Python's share vanishes, few enough for ``--progress`` to move.
FLAT_RUN = 4096


def _code_flat_run(
    bc: BlockCoder,
    steps: int,
    coder: BitEncoder | BitDecoder,
    grid: np.ndarray | None,
    out: np.ndarray,
    tick: Callable[[int], None],
) -> None:
    """``_code_mixed``'s loop for a block of one segment without the network: the same
    steps, ``FLAT_RUN`` of them per compiled call (``adaptive._code_steps``)."""
    freqs = _FlatSteps([(0, 1)]).freqs(0)
    for t0 in range(0, steps, FLAT_RUN):
        t1 = min(t0 + FLAT_RUN, steps)
        if grid is not None:
            assert isinstance(coder, BitEncoder)
            bc.code_steps(freqs, grid[0], out, t0, t1, coder)
        else:
            assert isinstance(coder, BitDecoder)
            bc.decode_steps(freqs, out, t0, t1, coder)
        tick(t1 - 1)


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS on one thread for the mixed method's network steps: a group's products are
    small ([S/2, 256] by [256, 768] for the default model), and a second BLAS thread only
    contends with the coder's thread (pipelined) or spins while the coder works (not
    pipelined): with another process busy on a 2-core machine, unlimited BLAS threads made
    a 229 KB input take 320 s instead of a few."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


#: Primed statistics by model, configuration, table sizes and accounting: a process that
#: codes many small files with one primed model learns its prime once (a copy of a small
#: block's tables costs far less than coding the prime again).
_primed: dict[tuple, dict] = {}
#: Table slots (8 bytes each) the kept states may hold in all, 128 MB: enough for streams
#: of small blocks whose tables a prime of up to 256 KiB sized (a copy takes some 0.1 s,
#: learning the prime again 2 s); the oldest go first.
_PRIMED_SLOTS = 1 << 24


def prime_state(model: IntModel, state: StreamState) -> None:
    """Before a frame's first mixed block: if ``model`` has a prime, let the statistics
    learn it, exactly as if it had been coded as a mixed block of its own (the default
    segment count, nothing written), leaving the accounts of ``-v`` untouched. Encoder and
    decoder both call this at the same point, so they agree; a mixed trial that another
    method beats undoes it with the rest of the block."""
    if state.primed:
        return
    state.primed = True
    if not model.prime:
        return
    fresh = not state.ready and len(state.history) == 0 and state.history_base == 0
    if model.prime_sizes_tables:
        state.make_room_for_prime(len(model.prime))
    key = (model.sha256 or id(model), state.config, state.table_bits, state.match_bits)
    key += (state.spending is not None,)
    if fresh and key in _primed:
        block_size = state.block_size  # (the key leaves it out: it sized the tables)
        state.restore(copy_snapshot(_primed[key]))
        state.block_size = block_size
        return
    spending = None if state.spending is None else state.spending.copy()
    _code_mixed(
        model,
        len(model.prime),
        segment_count(len(model.prime)),
        state,
        BitEncoder(),  # the words are not kept
        _grid(model.prime, segment_count(len(model.prime))),
        None,
        None,
    )
    state.append_history(model.prime)
    if spending is not None:
        state.spending = spending
    slots = len(state.ctx_stats)
    if fresh and slots <= _PRIMED_SLOTS:
        while (
            _primed and sum(len(s["ctx_stats"]) for s in _primed.values()) + slots > _PRIMED_SLOTS
        ):
            _primed.pop(next(iter(_primed)))
        _primed[key] = state.snapshot()


def encode_block_mixed(
    model: IntModel,
    data: bytes,
    state: StreamState,
    progress: Callable[[int], None] | None = None,
    segments: int | None = None,
    pipelined: bool | None = None,
    record: int = 0,
    flat: bool = False,
) -> tuple[bytes, int]:
    """Range-code ``data`` with the network mixed with the frame's adaptive statistics
    (which this updates) in ``segments`` lockstep segments (default: ``segment_count``);
    returns (payload, segment count). ``pipelined``:
    run the network in a thread of its own (default: when there is a second core).
    ``record``: the block's record length for the record contexts (0: none). ``flat``:
    the statistics alone, without the network (``format.OPTION_FLAT``)."""
    segments = segments or segment_count(len(data))
    prime_state(model, state)
    enc = BitEncoder()
    grid = _grid(data, segments)
    _code_mixed(model, len(data), segments, state, enc, grid, progress, pipelined, record, flat)
    state.append_history(data)
    return enc.payload(), segments


def decode_block_mixed(
    model: IntModel,
    payload: bytes,
    n: int,
    segments: int,
    state: StreamState,
    progress: Callable[[int], None] | None = None,
    pipelined: bool | None = None,
    record: int = 0,
    flat: bool = False,
) -> bytes:
    """Invert ``encode_block_mixed`` (updating ``state`` the same way)."""
    prime_state(model, state)
    dec = BitDecoder(payload)
    out = _code_mixed(model, n, segments, state, dec, None, progress, pipelined, record, flat)
    data = _ungrid(out, n)
    state.append_history(data)
    return data
