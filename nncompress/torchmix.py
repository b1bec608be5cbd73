"""The mixed method's per-bit work as whole-tensor operations in torch, on any device.

``adaptive._predict`` and ``adaptive._update`` are loops over the segments of a step, one
after another, compiled for a CPU core. Here the same arithmetic runs over all segments of
the step at once, as torch operations on the tables where they live: on the GPU for
``--device cuda``, on CPU tensors for ``--device torch`` (which shares the tables' memory
with the numpy arrays, so CI checks this code path without a GPU). The bytes' work
(``_begin_byte``: the context hashes and the match model's lookup; ``_end_byte``) runs
beside it in torch too (``torchbytes``), so the whole predictor is on the device. So is
a settled decoder's range decoder (``DeviceBits``: each bit is needed before the next
prediction, and a host that decoded them waited eight times a step), while a settled
encoder's decisions are coded on the host, every ``RING`` steps (``DeviceProbs``); the
steps before and after, the host codes one by one.

Every quantity is an integer, and the batch semantics are ``_update``'s: each update is
computed from the values before the step's updates and then summed (``index_add_`` of
integer deltas, whose sum does not depend on the order the device adds them in); where
several segments claim one table slot, the last of them wins, chosen by a maximum, never
by the order of a scatter. So the archives are byte-identical to the compiled loops'
(``tests/test_torchmix.py`` codes the same inputs both ways), whatever the device.

What it does not take: the accounting of ``-v``, and the configurations whose contexts
or mixers read pixels bit by bit (the 1-bit bitmap presets: ``contexts.BIT_KINDS``,
``MIX_PIXELS``, ``MIX_PIXELS_NEAR``), and those with bit histories or slot groups
(``--max``'s presets 19-30, whose blocks are one segment, where a device has nothing to
batch); ``supports``
says so, and those blocks run in the compiled loops, with the same result. Nor blocks
coded without the network (``coder._code_mixed`` keeps them in the loops).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from . import adaptive as A
from . import contexts as K
from .config import Config
from .jit import direct
from .rangecoder import BitDecoder, BitEncoder, code_bits, splits
from .torchbytes import (
    REACH,
    BlockTensors,
    ByteWork,
    device_copy,
    equal_groups,
    group_max,
    signed64,
)

#: The mixer contexts this module computes: (weight sets per byte-level value, and
#: whether the bit-level part is the bit position ``j``, the partial byte's top 5 bits,
#: or the partial byte). ``contexts.mixer_select`` is the reference.
_MIXER_PARTS = {
    K.MIX_CLASSES_2: (8, "j"),
    K.MIX_CLASSES_3: (8, "j"),
    K.MIX_WORD: (32, "c0>>3"),
    K.MIX_ORDER_1: (256, "c0"),
    K.MIX_EXPECTED: (256, "c0"),
}


def supports(config: Config, account: bool) -> bool:
    """Whether a stream of ``config`` can run here (``-v``'s accounting cannot)."""
    return (
        not account
        and not config.histories
        and not config.has_refinements
        and K.BIT_KINDS.isdisjoint(config.contexts)
        and all(m in _MIXER_PARTS for m in config.mixers)
    )


def _python(loop: Any) -> Any:
    """The Python function of a compiled loop (``jit``'s lazy loop, or numba's
    dispatcher once bound), for a table made once."""
    return getattr(loop, "py_func", None) or loop.fn


class DeviceTables:
    """A stream's tables (``adaptive.StreamState``) as tensors on ``device``. On the CPU
    they share the numpy arrays' memory; elsewhere they are copies, kept from one block
    to the next (``held``; copying them there and back cost their size, hundreds of MB,
    twice a block) until something else needs the arrays: ``StreamState.settle`` then has
    ``write_back`` copy them there, so that the compiled loops (a one-segment block
    without the network), a copy of the state and another method's block see what the
    device learnt. After a frame's last block nothing reads them: they are dropped with
    the stream's state, never copied back.

    Tables that a bit's work reads and trains side by side are one tensor here, each a
    range of its rows (``JOINED``: the four mixers of one input width, the two
    refinement stages), so that one gather and one ``index_add_`` serve them all: on a
    device each operation is a kernel, and a bit runs these eight times a step. ``t``
    names each table's range (a view); ``base`` its first row in the joined tensor. The
    joined tensors are copies on any device."""

    NAMES = (
        "ctx_stats",
        "match_prob",
        "weights",
        "apm",
        "weights2",
        "weights3",
        "weights_final",
        "apm2",
        "weights_x",
        "match_table",
    )
    #: The joined tensors, and the tables each holds in order.
    JOINED = {
        "mix": ("weights", "weights2", "weights3", "weights_x"),
        "apms": ("apm", "apm2"),
    }
    #: Every table that is a range of a joined one.
    PARTS = frozenset(n for names in JOINED.values() for n in names)

    def __init__(self, state: A.StreamState, device: Any) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        state.ensure_tables()
        self.t = {}
        #: The tables that are copies of the arrays, written back by ``write_back``.
        self.copies = set(self.PARTS)
        for n in self.NAMES:
            if n not in self.PARTS:
                self.t[n], copied = device_copy(torch, getattr(state, n), self.device)
                if copied:
                    self.copies.add(n)
        self.base: dict[str, int] = {}
        for whole, names in self.JOINED.items():
            parts = [getattr(state, n) for n in names]
            self.t[whole] = torch.from_numpy(np.concatenate(parts)).to(self.device)
            row = 0
            for n, part in zip(names, parts, strict=True):
                self.t[n] = self.t[whole][row : row + len(part)]
                self.base[n] = row
                row += len(part)
        self.blocks: dict[int, BlockTensors] = {}
        lut = {
            "stretch": A.STRETCH,
            "squash": A.SQUASH,
            "rate": A.RATE,
            "sqrt_shift": A.SQRT_SHIFT,
            "apm_identity": A.APM_IDENTITY,
            "byte_class": np.array([_python(K.byte_class)(b) for b in range(256)]),
            # Each node of the byte's binary tree: its bounds in the cumulative
            # frequencies (lo, mid, hi), gathered at once.
            "nodes": np.stack([A._LO, A._MID, A._HI], axis=1),
            # The knots either side of a refinement curve's point.
            "pair": np.arange(2),
            "byte_shifts": 8 * np.arange(8),
        }
        # A count per weight set of the joined mixers, then of the final one (from row
        # ``final_count``), zero between uses (``_counts``): both are counted at once.
        self.final_count = len(self.t["mix"])
        sets = self.final_count + A.FINAL_SETS
        self.count = torch.zeros(sets, dtype=torch.int64, device=self.device)
        self.lut = {
            n: torch.from_numpy(np.asarray(v, dtype=np.int64)).to(self.device)
            for n, v in lut.items()
        }

    @classmethod
    def held(cls, state: A.StreamState, device: Any) -> DeviceTables:
        """``state``'s tables on ``device``: where its last block left them
        (``StreamState.resident``), else copied there now."""
        import torch

        if state.resident is not None and state.resident.device != torch.device(device):
            state.settle()
        tables, state.resident = state.resident, None
        return tables if tables is not None else cls(state, device)

    def block(self, bc: A.BlockCoder) -> BlockTensors:
        """The tensors that ``bc``'s block shares among its segment groups (made once)."""
        key = id(bc.sh)
        if key not in self.blocks:
            self.blocks[key] = BlockTensors(bc, self.device)
        return self.blocks[key]

    def end_block(self) -> None:
        """Write the block's own tensors back (``BlockTensors.finish``); the tables stay."""
        for shared in self.blocks.values():
            shared.finish()
        self.blocks.clear()

    def write_back(self, state: A.StreamState) -> None:
        """Copy what the tables learnt to ``state``'s arrays (``StreamState.settle``)."""
        for n in self.copies:
            getattr(state, n)[...] = self.t[n].cpu().numpy()


class BitsFromPython:
    """``adaptive.BlockCoder``'s steps with the bits predicted and learnt outside the
    compiled loops: the byte's halves of a step (``adaptive._byte_begin``, ``_byte_end``)
    and the range coder (``rangecoder.code_bits``) called from Python around
    ``_predict_bits`` and ``_update_bits``, which a subclass supplies. The same methods
    for the coder's loop (``code_byte``, ``decode_byte``, ``finish``). ``warmup`` drives
    it too, so that the loops are built for exactly the arguments passed here."""

    def __init__(self, bc: A.BlockCoder) -> None:
        self.bc = bc

    def finish(self) -> None:
        self.bc.finish()

    def code_byte(self, freqs: np.ndarray, byte: np.ndarray, enc: BitEncoder) -> None:
        """Encoder's step (``BlockCoder.code_byte``)."""
        k = len(byte)
        enc.reserve(8 * k)
        self._step(freqs, byte, k, enc.state, enc.out, False)

    def decode_byte(self, freqs: np.ndarray, k: int, dec: BitDecoder) -> np.ndarray:
        """Decoder's step (``BlockCoder.decode_byte``); ValueError on words no encoder
        wrote."""
        byte = np.empty(k, dtype=np.int64)
        self._step(freqs, byte, k, dec.state, dec.words, True)
        return byte

    def _step(self, freqs, byte, k, state, words, decode) -> None:
        self.bc.k = k
        self._begin(freqs, k)
        c0 = np.ones(k, dtype=np.int64)
        bit = np.empty(k, dtype=np.int64)
        for j in range(8):
            p_out = self._predict_bits(j, c0)
            if not decode:
                bit[:] = (byte >> (7 - j)) & 1
            if code_bits(bit, p_out, decode, state, words) < 0:
                raise ValueError("block payload is invalid for this model")
            self._update_bits(bit)
            c0 = (c0 << 1) | bit
        if decode:
            byte[:] = c0 - 256
        self._end(byte)

    def _begin(self, freqs: np.ndarray, k: int) -> None:
        """The byte's work before the bits of the step's first ``k`` segments: here the
        loops' (``adaptive._begin_byte``)."""
        bc = self.bc
        A._byte_begin(freqs, k, bc._blk, bc._scr)

    def _end(self, byte: np.ndarray) -> None:
        """The byte's work after the bits: here the loops' (``adaptive._end_byte``)."""
        bc = self.bc
        A._byte_end(byte, bc._tab, bc._blk, bc._scr)

    def _predict_bits(self, j: int, c0: np.ndarray) -> np.ndarray:
        """P(bit j = 1) of each segment, Q16, as a C-contiguous int64 array."""
        raise NotImplementedError

    def _update_bits(self, bit: np.ndarray) -> None:
        """Learn from the coded bits (int64)."""


#: From this step on a step is the same sequence of operations every time (``ByteWork``:
#: the match model hashes contexts from step ``Config.match_min`` <= ``REACH``, a seed
#: checks min(t, ``REACH``) bytes), so its stages can be recorded once and replayed
#: (``Captured``).
SETTLED = REACH
#: Set to 0 to run a CUDA device's steps one operation at a time (``Captured``).
CUDA_GRAPHS = "NNCOMPRESS_CUDA_GRAPHS"
#: Set to 1 to compile each settled stage with ``torch.compile`` (``Captured``), which
#: fuses its thousands of operations into kernels with some hundred library calls
#: between them (``scripts/device_mixing.py --compile --ops``).
TORCH_COMPILE = "NNCOMPRESS_TORCH_COMPILE"
#: Set to 1 for a settled step's decisions coded by the host step by step, as before the
#: device held them: the decoder's bits decoded between nine stages (not ``DeviceBits``),
#: the encoder's after each step (not ``DeviceProbs``). The way a device without Triton
#: decodes, and the measure's other side (``scripts/device_mixing.py``).
HOST_BITS = "NNCOMPRESS_HOST_BITS"


def wrapping_cpu_compiler(torch: Any) -> None:
    """Have inductor's C++ compiler (CPU tensors) wrap signed integer overflow. The
    hashes are products that overflow int64 and must wrap, as they do in torch's own
    kernels; C++ leaves that undefined, and at -O3 gcc's code for a compiled step wrote
    another archive than the loops' (at -O0, or with -fwrapv, the same). Triton, for a
    GPU, wraps without being asked. torch has no setting for the flags, so this wraps
    the private function that lists them; where it is gone, CPU compilation is refused
    rather than trusted."""
    from torch._inductor import cpp_builder

    flags = cpp_builder._get_ffast_math_flags
    if getattr(flags, "wraps", False):
        return

    def with_fwrapv() -> list[str]:
        return [*flags(), "fwrapv"]

    with_fwrapv.wraps = True
    cpp_builder._get_ffast_math_flags = with_fwrapv


#: Operations that a recorded step cannot hold: each makes the host wait for a result's
#: size or value, or copies Python data to the device (``lift_fresh``: a Python number
#: assigned into a tensor).
UNRECORDABLE = frozenset(
    (
        "_local_scalar_dense",
        "item",
        "is_nonzero",
        "equal",
        "nonzero",
        "masked_select",
        "_unique",
        "_unique2",
        "unique_dim",
        "unique_consecutive",
        "lift_fresh",
    )
)


#: Operations that launch no kernel on a device, beside views (``is_view``): a reshape's
#: view of a copy, a Python number wrapped as a host scalar, an allocation, the host's
#: question whether its memory is pinned (``Captured.run``, on a GPU).
NO_KERNEL = frozenset(
    {"_unsafe_view", "scalar_tensor", "lift_fresh", "empty", "empty_like", "detach", "is_pinned"}
)


def operation_log() -> Any:
    """A torch dispatch mode that counts, by name, the operations run under it
    (``.counts``; ``.kernels``, those that launch a kernel): how many launches a step
    costs a device one at a time, and whether any of them is ``UNRECORDABLE``."""
    from collections import Counter

    from torch.utils._python_dispatch import TorchDispatchMode

    class Log(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.counts: Counter[str] = Counter()
            self.views = 0  # of them, operations that launch no kernel
            self.paused = 0  # within a launch of ``launching``: its own operations

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            if not self.paused:
                name = func.overloadpacket.__name__
                self.counts[name] += 1
                self.views += func.is_view or name in NO_KERNEL
            return func(*args, **(kwargs or {}))

        @property
        def kernels(self) -> int:
            """The operations that launch a kernel on a device."""
            return sum(self.counts.values()) - self.views

        def __enter__(self) -> Any:
            _LOGS.append(self)
            return super().__enter__()

        def __exit__(self, *exc: Any) -> Any:
            _LOGS.remove(self)
            return super().__exit__(*exc)

    return Log()


#: The ``operation_log``s open now, which also count the kernels launched past torch's
#: dispatch (``tritonmix``'s, through ``launching``).
_LOGS: list[Any] = []


@contextlib.contextmanager
def launching(name: str) -> Any:
    """Around a kernel that torch's dispatch does not see (``tritonmix``'s): count it in
    every open ``operation_log``, as one kernel, and not the operations that Triton's
    interpreter runs on the arguments' storage to launch it on the CPU."""
    for log in _LOGS:
        log.counts[name] += 1
        log.paused += 1
    try:
        yield
    finally:
        for log in _LOGS:
            log.paused -= 1


#: Held while a stage or a network's step is recorded (``Captured._record``).
_RECORDING = threading.Lock()
#: One thread at a time in torch's compiler and in the stages it compiled: neither is made
#: for threads (dynamo's caches and guards, inductor's code cache are shared by the
#: process). On a GPU a compiled stage is called only until it is recorded, and its
#: replays take no lock, so the frames' threads (``devicepool``) wait on one another only
#: while a block's stages are first compiled and recorded; on the CPU every step of a
#: compiled stage is a call, and the threads take turns.
_COMPILER = threading.Lock()


#: Which of a stage's copies between host and device its CUDA graph holds, the most first
#: (``Captured._record`` tries them in this order): its inputs' and its output's; its
#: inputs' alone; none, each copy then a call of the host's before or after the replay.
#: Each with the words a refusal of it is reported with.
RECORDED_COPIES = {
    (True, True): " with its copies",
    (True, False): " with its inputs' copies",
    (False, False): "",
}


def _capture(torch: Any, body: Callable[[], None], what: str, tally: Any) -> Any:
    """``body`` recorded as a CUDA graph (not run), or None where the device refuses,
    with the reason kept in ``Captured.refusals`` under ``what``; ``tally.recorded``
    counts the graphs. One recording at a time (the counts too), since torch records
    every graph on one stream of its own unless told another; thread_local: other
    frames' threads (``devicepool``) go on launching their own steps meanwhile."""
    with _RECORDING:
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                body()
        except RuntimeError as e:
            Captured.refusals.append(f"{what}: {e}")
            return None
        tally.recorded += 1
    return graph


class Captured:
    """A step's stages on a CUDA device as CUDA graphs: some 2,200 kernels a step
    (``scripts/device_mixing.py --ops``), each launched from Python, become one replay
    a stage. The encoder's step is one stage (its bits are known); the decoder's
    is nine, split where the host must decode a bit before the device can go on
    (``TorchBlockCoder``). Each stage is recorded at the first step with every segment
    of the group active and ``SETTLED``, then replayed; a stage reads the tensors the
    stage before it left, at the addresses they had when recorded, which every replay
    rewrites in place.

    A stage's inputs from the host are copied into buffers of its own on the device (one
    already there, the network's output, is read where it is), and its output, where
    ``into`` names a host tensor for it, into that: the host reads it once it has waited
    for the device. Where the device allows, the graph holds these copies too, from the
    tensors the recording was handed and into ``into`` (pinned memory, which a graph may
    read and write), so that a replay is one call of the host's, not three; the callers
    hand a stage the same tensors every step (the network's output, the host's pinned
    buffers), and a stage handed another copies it into the recorded one first. A
    device that refuses to record the copies records fewer (``RECORDED_COPIES``), and
    the host makes the others around the replay.

    Recording runs a stage's Python once without running its operations: the Python-side
    change a step makes (``ByteWork.t``) is made by the recording for the step it then
    replays, and by ``run`` for every later replay. A recording that fails (an operation
    the device cannot record) puts back the attributes it rebound (``owners``'), and the
    stages run one operation at a time from then on. On the CPU (``--device torch``)
    nothing is recorded: the same buffers are filled and the stages run on them, so the
    tests run every line here but the recording itself.
    """

    #: Graphs recorded in this process, and why recordings were refused (stage and
    #: error), for ``scripts/device_mixing.py`` and the CUDA tests: a refusal costs
    #: speed, never bytes, so nothing else would show it.
    recorded = 0
    compiled = 0
    refusals: list[str] = []

    def __init__(
        self,
        stages: list[Any],
        work: ByteWork,
        owners: list[Any],
        into: list[Any] | None = None,
        compiles: bool = True,
    ) -> None:
        self.stages = stages
        self.work = work
        self.owners = owners
        self.torch = work.torch
        #: Each stage's host tensor for its output, or None where the host needs none.
        self.into = into or [None] * len(stages)
        self.inputs: list[tuple[Any, ...] | None] = [None] * len(stages)
        self.out: list[Any] = [None] * len(stages)
        self.graphs: list[Any] = []
        #: Each recorded stage's copies in its graph (``RECORDED_COPIES``) and the tensors
        #: its graph copies its inputs from.
        self.copies: list[tuple[bool, bool]] = []
        self.sources: list[tuple[Any, ...] | None] = [None] * len(stages)
        dev = work.sh.device
        self.cuda = dev.type == "cuda"
        self.record = self.cuda and os.environ.get(CUDA_GRAPHS, "1") != "0"
        #: ``TORCH_COMPILE`` asks, and the stages are torch's own (``compiles``: not
        #: Triton's kernels, which torch's compiler is not asked to take in).
        self.compile = compiles and os.environ.get(TORCH_COMPILE) == "1"
        self.fused: list[Any] = [None] * len(stages)  # the compiled stages

    def run(self, i: int, *inputs: Any) -> Any:
        """Stage ``i`` of the step on ``inputs``; its output tensor, and the copy of it
        into ``into[i]`` queued (the caller waits for the device before reading it).
        ``inputs`` may be on the host: they are copied into the stage's buffers on the
        device either way, so the host's bits and bytes go there in one copy, not two."""
        if self.inputs[i] is None:  # the stage's buffers: every path below fills them
            dev = self.work.sh.device
            # An input already on the device is read where it is (the network's
            # frequencies, which its next step writes only after this stage, on the same
            # stream): a copy of 256 KB a step less at 128 segments. (By the device's
            # kind: "cuda" and "cuda:0" are one device, but not equal.)
            self.inputs[i] = tuple(
                x if x.device.type == dev.type else self.torch.empty_like(x, device=dev)
                for x in inputs
            )
        # A compiled stage is recorded once it has run: its first call compiles it.
        ready = not self.compile or self.fused[i] is not None
        if self.record and len(self.graphs) == i and ready:
            graph = self._record(i, inputs)
            if graph is not None:
                self.graphs.append(graph)
        if i < len(self.graphs):
            copy_in, copy_out = self.copies[i]
            if copy_in:
                self._point(i, inputs)
            else:
                self._copy_in(i, inputs)
            self.graphs[i].replay()
            if not copy_out:
                self._copy_out(i)
            return self.out[i]
        self._copy_in(i, inputs)
        if self.compile and self.fused[i] is None:
            with _COMPILER:
                self.out[i] = self._compile(i)
            if self.out[i] is not None:
                self._copy_out(i)
                return self.out[i]
        with self._compiler():
            self.out[i] = self._stage(i)(*self.inputs[i])
        self._copy_out(i)
        return self.out[i]

    def _copy_in(self, i: int, inputs: tuple[Any, ...]) -> None:
        """Copy stage ``i``'s inputs into its buffers: by the host, or in its graph."""
        for buf, x in zip(self.inputs[i], inputs, strict=True):
            if buf.data_ptr() == x.data_ptr():  # read where it is (``run``)
                continue
            # From pinned memory a copy need not hold the host (the decoder's bits:
            # its host writes the buffer again only after the stage that reads it);
            # between two tensors on the device no copy does.
            buf.copy_(x, non_blocking=self.cuda and x.is_pinned())

    def _copy_out(self, i: int) -> None:
        """The copy of stage ``i``'s output into its host tensor, queued."""
        if self.into[i] is not None:
            self.into[i].copy_(self.out[i], non_blocking=self.cuda)

    def _point(self, i: int, inputs: tuple[Any, ...]) -> None:
        """Before a replay whose graph copies stage ``i``'s inputs: an input handed in
        other memory than the recorded one's is copied there (never, where the callers
        hand the same buffers every step, which ``tests/test_torchmix.py`` checks)."""
        for src, x in zip(self.sources[i], inputs, strict=True):
            if x.data_ptr() != src.data_ptr():
                src.copy_(x)

    def _compiler(self) -> Any:
        """``_COMPILER`` where the stages are compiled, else nothing to hold."""
        return _COMPILER if self.compile else contextlib.nullcontext()

    def _stage(self, i: int) -> Any:
        """Stage ``i`` as it runs now: compiled, or as it is."""
        return self.fused[i] if self.compile else self.stages[i]

    def _compile(self, i: int) -> Any:
        """Compile stage ``i`` and run it on its inputs: its output, or None where the
        compiler refused it (then every stage runs as it is, from now on)."""
        torch = self.torch
        saved = [dict(vars(o)) for o in self.owners]
        # Seven of the decoder's stages are one method at seven bit positions, each
        # compiled for its own; several blocks and groups may need their own too.
        limit = torch._dynamo.config.recompile_limit
        torch._dynamo.config.recompile_limit = max(limit, 64)
        stage = torch.compile(self.stages[i], fullgraph=True, dynamic=False)
        # The window grows from block to block: compiled for any length once it is
        # longer than 1 (a stream's first block's is an empty window's 1 byte), so the
        # steps of later blocks need no more compiling, but for a shorter last block.
        torch._dynamo.maybe_mark_dynamic(self.work.sh.history, 0)
        try:
            if self.work.sh.device.type == "cpu":
                wrapping_cpu_compiler(torch)
            out = stage(*self.inputs[i])
        except Exception as e:  # noqa: BLE001 -- any compiler failure costs speed, not bytes
            Captured.refusals.append(f"compiling stage {i} of {len(self.stages)}: {e}")
            self._restore(saved)
            self.compile = False
            return None
        Captured.compiled += 1
        self.fused[i] = stage
        return out

    def _restore(self, saved: list[dict]) -> None:
        for o, attrs in zip(self.owners, saved, strict=True):
            vars(o).clear()
            vars(o).update(attrs)

    def _record(self, i: int, inputs: tuple[Any, ...]) -> Any:
        """Stage ``i`` recorded with as many of its copies as the device allows
        (``RECORDED_COPIES``), its inputs' from ``inputs``, kept for later replays; None
        where it refuses even the stage alone (then this stage and all after it, now and
        in later steps, run as they are; the stages before it replayed and left their
        tensors where this one reads them)."""
        self.sources[i] = inputs
        for copies, words in RECORDED_COPIES.items():
            saved = [dict(vars(o)) for o in self.owners]
            with self._compiler():
                graph = self._capture(i, copies, f"stage {i} of {len(self.stages)}{words}")
            if graph is not None:
                self.copies.append(copies)
                return graph
            self._restore(saved)
        self.record = False
        self.graphs, self.copies = [], []
        return None

    def _capture(self, i: int, copies: tuple[bool, bool], where: str) -> Any:
        """Stage ``i`` as a CUDA graph holding ``copies`` (``_capture``), or None."""
        copy_in, copy_out = copies
        stage = self._stage(i)

        def body() -> None:
            if copy_in:
                self._copy_in(i, self.sources[i])
            self.out[i] = stage(*self.inputs[i])
            if copy_out:
                self._copy_out(i)

        return _capture(self.torch, body, where, Captured)


class NetworkSteps:
    """One segment group's network steps on a torch device, in fixed buffers: each step's
    previous bytes are copied into one input, from one host buffer (pinned on a GPU) that
    the host writes, or from the device, where it decoded them (``DeviceBits``); the
    hidden state is updated in place, and the frequencies are left in one output. So on a
    CUDA device the step (45 operations for the default model, state copies included,
    each a kernel launched from Python: ``scripts/device_mixing.py --ops``) is recorded
    as a CUDA graph once for each place its bytes come from, and replayed, one launch a
    step, as ``Captured`` records the predictor's stages, with the bytes' copy inside it
    where the device allows (else the host makes it before each replay); what launches it
    is the frame's coder (``coder._Steps``, on a CUDA device without a thread of its
    own). The frequencies a step leaves are read before the next step of the group is
    launched on the same stream (the coder reads them, then hands over the bytes that
    start the next), and the host writes the next bytes only then, once the replay that
    copied the last ones is done, so one buffer each way serves every step. On the CPU
    (``--device torch``) nothing is recorded, but the same buffers are filled and the
    same step runs on them, so the tests run every line here but the recording itself.
    """

    #: Steps run before the recording: a device's libraries set themselves up at their
    #: first calls (cuBLAS its handle and workspace), which a recording must not hold.
    WARM = 2
    #: The most graphs a group records: one for the host's bytes, one for the device's.
    GRAPHS = 2
    #: Graphs recorded in this process (``Captured.refusals`` says why any were refused).
    recorded = 0

    def __init__(self, model: Any, batch: int) -> None:
        import torch

        self.torch = torch
        self.model = model
        device = model.ops.device
        self.cuda = device.type == "cuda"
        self.prev = torch.zeros(batch, dtype=torch.int64, device=device)
        #: The bytes as the host writes them, and its numpy view.
        self.host = torch.zeros(batch, dtype=torch.int64, pin_memory=self.cuda)
        self.host_np = self.host.numpy()
        self.state = model.initial_state(batch)
        self.freqs: Any = None
        #: Each recorded graph by the address its bytes are copied from, with whether it
        #: holds their copy.
        self.graphs: dict[int, tuple[Any, bool]] = {}
        self.steps = 0
        self.record = self.cuda and os.environ.get(CUDA_GRAPHS, "1") != "0"

    def step(self, prev: np.ndarray | Any) -> Any:
        """The frequencies of the group's next bytes, [batch, 256], after ``prev``: the
        host's (numpy) or a tensor on the device, the same one every step."""
        if isinstance(prev, np.ndarray):
            self.host_np[:] = prev
            source = self.host
        else:
            source = prev
        self.steps += 1
        key = source.data_ptr()
        wanted = self.record and self.steps > self.WARM and len(self.graphs) < self.GRAPHS
        if key not in self.graphs and wanted:
            self._record(source)
        graph, copied = self.graphs.get(key, (None, False))
        if graph is not None:
            if not copied:
                self._copy_in(source)
            graph.replay()
        else:
            self._copy_in(source)
            self._step()
        return self.freqs

    def _copy_in(self, source: Any) -> None:
        self.prev.copy_(source, non_blocking=self.cuda)

    def _step(self) -> None:
        """The step, its frequencies into ``freqs`` (made at the first): every graph
        leaves them in the same memory, which the predictor's graphs read."""
        freqs, state = self.model.step(self.prev, self.state)
        for buf, h in zip(self.state, state, strict=True):
            buf.copy_(h)
        if self.freqs is None:
            self.freqs = freqs
        else:
            self.freqs.copy_(freqs)

    def _record(self, source: Any) -> None:
        """The step recorded, with the copy of its bytes from ``source`` where the device
        allows; where it refuses even the step alone, it runs as it is, from the buffers
        it had."""
        for copied in (True, False):
            graph = self._capture(copied, source)
            if graph is not None:
                self.graphs[source.data_ptr()] = (graph, copied)
                return
        self.record = False

    def _capture(self, copied: bool, source: Any) -> Any:
        """The step as a CUDA graph, with the bytes' copy or without (``_capture``)."""

        def body() -> None:
            if copied:
                self._copy_in(source)
            self._step()

        what = "the network's step" + (" with its bytes' copy" if copied else "")
        return _capture(self.torch, body, what, NetworkSteps)


#: A decoder's settled steps whose bytes a device keeps before the host takes them back
#: in one copy (``TorchBlockCoder._deliver``): one wait of the host's a ring, not a step.
RING = 64


class DeviceBits:
    """A block's range decoder where its steps run (``TorchBlockCoder``): its state,
    words and splits on the device, so that a settled decoder's step decodes its own
    bits, and runs, network and all, without the host waiting for it: the host only
    launches (one replay a step on a GPU) and takes the bytes back every ``RING`` steps.
    Before, the host waited for each of a step's eight bit positions, decoded it and
    handed it back, nine launches and eight waits a step, which bounded every frame's
    thread together to about 1.3 MB/s (docs/DESIGN.md section 10).

    On a CUDA device the bits are ``tritonkernels._decode_bits``, compiled; on the CPU
    the range coder's own compiled function on the tensors' memory
    (``rangecoder.code_bits``), or that kernel through Triton's interpreter where
    ``KERNEL_ON_CPU`` asks (a check: some milliseconds a decision). Both decode what the
    host would, word for word (``tests/test_torchmix.py``). The host and the device take
    turns with the state, which is the host's (``BitDecoder.state``) until a settled step
    takes it (``take``) and the device's until the host needs it (``give``: a block's
    first and last steps, whose segments are not all active or not settled, and its
    end). Words no encoder wrote set a flag, which ``give`` raises on."""

    #: Run the kernel through Triton's interpreter on CPU tensors (the tests' choice).
    KERNEL_ON_CPU = False
    #: Decisions of the kernel's loop whose loads are issued together (untuned).
    UNROLL = 16
    _splits: dict[Any, Any] = {}

    def __init__(self, torch: Any, dec: BitDecoder, device: Any, kernel: Any) -> None:
        self.torch = torch
        self.cuda = device.type == "cuda"
        #: [lower, range, point, next word] as int64s, and the flag of invalid words.
        self.state = torch.zeros(5, dtype=torch.int64, device=device)
        # (At least one word's room: a kernel's argument is never an empty tensor.)
        words = np.zeros(max(len(dec.words), 1), dtype=np.int64)
        words[: len(dec.words)] = dec.words
        self.n_words = len(dec.words)
        self.words = torch.from_numpy(words).to(device)
        #: ``tritonmix`` where the kernel decodes, else None (the range coder's function).
        self.kernel = kernel
        self.warmed: set[int] = set()  # the widths the kernel ran at (``warm``)
        self.on_device = False
        if kernel is None:
            self.state_np = self.state.numpy().view(np.uint64)
            self.words_np = dec.words
            self.decode_np: Any = None
        else:
            if device not in DeviceBits._splits:
                DeviceBits._splits[device] = torch.from_numpy(splits()).to(device)
            self.splits = DeviceBits._splits[device]

    @classmethod
    def made(cls, torch: Any, dec: BitDecoder, device: Any) -> DeviceBits | None:
        """The block's, made at its first settled step; None where this device cannot
        decode (a GPU without Triton), and the host decodes."""
        if dec.device is None:
            kernel = None
            if device.type == "cuda" or cls.KERNEL_ON_CPU:
                from . import tritonmix

                if not tritonmix._importable(device.type != "cuda"):
                    return None
                kernel = tritonmix  # whose ``launch_alone`` runs the kernel
            dec.device = cls(torch, dec, device, kernel)
        return dec.device

    def warm(self, k: int) -> None:
        """Run the kernel once for ``k`` bits, on scratch, before a step that holds it is
        recorded: Triton compiles and loads a kernel at its first launch of a kind,
        which a recording must not hold. (The step's other kernels ran in the steps
        before it.)"""
        if self.kernel is None or k in self.warmed:
            return
        torch, dev = self.torch, self.state.device
        state = torch.tensor([0, -1, 0, 0, 0], dtype=torch.int64, device=dev)
        p = torch.full((k,), 1 << 15, dtype=torch.int64, device=dev)
        self._launch(p, torch.empty(k, dtype=torch.int64, device=dev), state)
        self.warmed.add(k)

    def _launch(self, p: Any, bit: Any, state: Any) -> None:
        """The kernel on ``len(bit)`` bits from ``state`` (``decode``'s, or scratch)."""
        self.kernel.launch_alone(
            "_decode_bits", not self.cuda,
            len(bit), p, bit, state, self.words, self.n_words, self.splits,
            UNROLL=self.UNROLL,
        )  # fmt: skip

    def take(self, dec: BitDecoder) -> None:
        """The state to the device, where the host had it."""
        if not self.on_device:
            self.state[:4].copy_(self.torch.from_numpy(dec.state.view(np.int64)))
            self.on_device = True

    def give(self, dec: BitDecoder) -> None:
        """The state back to the host, where the device had it (waiting for it);
        ValueError where the device found words no encoder wrote."""
        if self.on_device:
            state = self.state.cpu().numpy()
            if state[4]:
                raise ValueError("block payload is invalid for this model")
            dec.state[:] = state[:4].view(np.uint64)
            self.on_device = False

    def decode(self, p: Any, bit: Any) -> None:
        """The step's bits at probabilities ``p`` into ``bit`` (both [k], int64, on the
        device), queued where a device runs them."""
        if self.kernel is not None:
            self._launch(p, bit, self.state)
            return
        bits, probs = bit.numpy(), p.contiguous().numpy()
        if self.decode_np is None:  # found once a block (``jit.direct``)
            self.decode_np = direct(code_bits, bits, probs, True, self.state_np, self.words_np)
        if self.decode_np(bits, probs, True, self.state_np, self.words_np) < 0:
            self.state_np[4] = 1


class DeviceProbs:
    """A block's encoder's steps whose probabilities a device holds (``TorchBlockCoder``,
    in each group's ring), in the order their decisions are coded: an encoder's bits are
    known, so its settled steps run on the device, network and all, without the host
    waiting for them, and the host codes their decisions every ``RING`` steps, in one
    call, group by group and step by step as the decoder reads them. Before, the host
    waited for every step and coded it. A step the host predicts itself (a block's first
    and last, whose segments are not all active or not settled) is coded once the held
    ones are (``flush``), so the order is the decoder's whatever runs where."""

    def __init__(self) -> None:
        #: (coder, its step), in the coder's loop's order.
        self.held: list[tuple[Any, int]] = []
        self.code: Any = None  # the range coder's compiled function (``jit.direct``)

    @staticmethod
    def made(enc: BitEncoder) -> DeviceProbs:
        if enc.device is None:
            enc.device = DeviceProbs()
        return enc.device

    def flush(self, enc: BitEncoder) -> None:
        """Code every held step's decisions (waiting for the device), and empty the
        rings."""
        if not self.held:
            return
        coders = list(dict.fromkeys(c for c, _ in self.held))
        # Each coder's held steps: their probabilities, [m, 8 x s], and their bits taken
        # out of the grid's columns the same way (the bit positions' rows).
        probs, bits = {}, {}
        for c in coders:
            m = len(c.probs_held)
            probs[c] = c.probs_ring[:m].cpu().numpy().reshape(m, -1)
            column = c.grid[:, c.probs_held].T.astype(np.int64)[:, None, :]  # [m, 1, s]
            bits[c] = ((column >> _BIT_SHIFTS) & 1).reshape(m, -1)
        # Then their rows in the coder's loop's order: group after group at each step.
        places = dict.fromkeys(coders, 0)
        p_rows, b_rows = [], []
        for c, _ in self.held:
            p_rows.append(probs[c][places[c]])
            b_rows.append(bits[c][places[c]])
            places[c] += 1
        p, b = np.concatenate(p_rows), np.concatenate(b_rows)
        enc.reserve(len(b))
        if self.code is None:
            self.code = direct(code_bits, b, p, False, enc.state, enc.out)
        self.code(b, p, False, enc.state, enc.out)
        for c in coders:
            c.probs_held = []
            c.ring_at.zero_()
        self.held = []


def _aligned_rows(torch: Any, n: int, s: int, device: Any) -> Any:
    """``n`` rows of int64 room for ``s`` values each, every row starting on 16 bytes
    (an even length apart): Triton compiles a kernel apart for a pointer that is not,
    and a row handed to a kernel inside a recording must be one it compiled before."""
    return torch.zeros((n, s + (s & 1)), dtype=torch.int64, device=device)


#: A byte's bits, the first the highest: the shifts that take them out of the bytes
#: (``code_byte``, [8, 1]), and their weights, which put them back (``decode_byte``).
_BIT_SHIFTS = np.arange(7, -1, -1, dtype=np.int64)[:, None]
_BIT_WEIGHTS = 1 << _BIT_SHIFTS[:, 0]


class _RoundTrip:
    """A block's host buffers for its settled steps (``TorchBlockCoder``), and the views
    of them that each bit needs, made once: a call less a bit for the host, whose time a
    step bounds every frame's thread together (docs/DESIGN.md section 10). On a CUDA
    device in pinned memory, which a copy reaches without staging through a buffer of
    the driver's, and which a CUDA graph may read and write (``Captured``)."""

    def __init__(self, torch: Any, s: int, device: Any) -> None:
        pin = device.type == "cuda"
        #: The stream this block's steps run on (on a CUDA device), whose work the host
        #: waits for: the coding thread's, the same for all of the block.
        self.stream = torch.cuda.current_stream(device) if pin else None
        #: One decoder's stage's probabilities, [s], and its numpy view.
        self.probs = torch.empty(s, dtype=torch.int64, pin_memory=pin)
        self.probs_np = self.probs.numpy()
        #: The step's bits, a row a bit position, [8, s]: each row is one stage's input,
        #: as a tensor (``rows``) and as the range coder's output (``bits``).
        bits = torch.empty((8, s), dtype=torch.int64, pin_memory=pin)
        self.rows = list(bits)
        self.bits_all = bits.numpy()
        self.bits = list(self.bits_all)
        #: The encoder's: a step's bytes, [s], and its probabilities, [8, s], each with
        #: its numpy view (the probabilities' flat, in the order the coder takes them).
        self.byte = torch.empty(s, dtype=torch.int64, pin_memory=pin)
        self.byte_np = self.byte.numpy()
        self.step_probs = torch.empty((8, s), dtype=torch.int64, pin_memory=pin)
        self.step_probs_np = self.step_probs.numpy().reshape(-1)

    def wait(self) -> None:
        """Wait for the device's work so far (the copies into these buffers among it)."""
        if self.stream is not None:
            self.stream.synchronize()


class TorchBlockCoder(BitsFromPython):
    """``BitsFromPython`` with the per-bit work in torch, on the tables' device."""

    #: What does the byte's work (``tritonmix.TritonByteWork`` does it as kernels).
    byte_work = ByteWork
    #: Whether ``TORCH_COMPILE`` may compile the steps' stages (``Captured``).
    compiles = True

    def __init__(self, bc: A.BlockCoder, tables: DeviceTables) -> None:
        super().__init__(bc)
        torch = tables.torch
        self.torch = torch
        self.tables = tables
        self.dev = tables.device
        cfg = bc.st.config
        self.n_ctx = len(cfg.contexts)
        # Slots per context: a power of two (adaptive._ilog2, here without numba).
        self.slot_bits = (len(bc.st.ctx_stats) // self.n_ctx).bit_length() - 1
        self.obase = torch.arange(self.n_ctx, device=self.dev) << self.slot_bits
        self.seen_kind = torch.from_numpy(bc.seen_kind != 0).to(self.dev)
        self.mixers = [(int(m), int(b)) for m, b in zip(bc.mixer_kinds, bc.mixer_base, strict=True)]
        self.params = [int(v) for v in bc.params]
        # Each extra mixer's bit part (``_MIXER_PARTS``): the bit position j, or the
        # partial byte shifted right by 3 or by 0.
        parts = [_MIXER_PARTS[m][1] for m, _ in self.mixers]
        self.x_by_j = torch.tensor([p == "j" for p in parts], device=self.dev)
        shifts = [3 if p == "c0>>3" else 0 for p in parts]
        self.x_shift = torch.tensor(shifts, dtype=torch.int64, device=self.dev)
        # Each extra mixer's first weight set, as a row of the joined mixers' table.
        first = [tables.base["weights_x"] + b for _, b in self.mixers]
        self.x_first = torch.tensor(first, dtype=torch.int64, device=self.dev)
        # Each mixer's shift, in the joined selection's order: the extra mixers learn at
        # the third one's rate.
        shifts = self.params[A._MIX_SHIFT : A._MIX_SHIFT + 3]
        shifts += shifts[2:] * len(self.mixers)
        self.mix_shift = torch.tensor(shifts, dtype=torch.int64, device=self.dev)
        # Config.fine: the refinement curves in Q(16 + FINE_Q), count-based moves rounded.
        fine = self.params[A._FINE]
        self.apm_q = A.FINE_Q if fine else 0
        self.ident = tables.lut["apm_identity"] << self.apm_q  # the curves' identity
        # The mixers' constant input, a column for the most segments a step has.
        self.bias = torch.full((bc.s, 1), 256, dtype=torch.int64, device=self.dev)
        # Each context of each segment's place in ``_update``'s order (segment, then kind).
        self.order_ids = torch.arange(bc.s * self.n_ctx, device=self.dev)
        self.round_half = 1 << 15 if fine else 0
        self.c0_prime = signed64(int(A._C0_PRIME))
        self.p2, self.p3 = signed64(int(A._PRIMES[2])), signed64(int(A._PRIMES[3]))
        self.bytes = self.byte_work(bc, tables.block(bc), tables.t["match_table"])
        owners = [self, self.bytes]
        self.host = host = _RoundTrip(torch, bc.s, self.dev)
        self.encoder = Captured(
            [self._encode_step], self.bytes, owners, [host.step_probs], compiles=self.compiles
        )
        bits = [partial(self._next_bit, j) for j in range(1, 8)]
        stages = [self._first_bit, *bits, self._last_bit]
        self.decoder = Captured(
            stages, self.bytes, owners, [host.probs] * 8 + [None], compiles=self.compiles
        )
        # The range coder's compiled function, each way (``code_byte``, ``decode_byte``).
        self.encode: Any = None
        self.decode: Any = None
        # Where the device decodes (``DeviceBits``): the step as one stage, its bits a
        # row a bit position, and a ring of its bytes with the place of the next in it.
        self.whole = Captured([self._decode_step], self.bytes, owners, compiles=self.compiles)
        # Compiled stages decode on the host: the device's bits are a call that torch's
        # compiler cannot take into a graph (the range coder's on the CPU).
        self.host_bits = os.environ.get(HOST_BITS) == "1" or self.whole.compile
        # A row a bit position: the device's decoded bits, or an encoder's step's bits
        # (``_encode_step``), each row starting on 16 bytes as a kernel's input must.
        self.bit_rows = _aligned_rows(torch, 8, bc.s, self.dev)
        self.device_rows = [row[: bc.s] for row in self.bit_rows]
        self.bit_shifts = torch.as_tensor(_BIT_SHIFTS, device=self.dev)
        #: The step's bytes, in one buffer every step: the network's next input.
        self.step_bytes = torch.zeros(bc.s, dtype=torch.int64, device=self.dev)
        self.ring = torch.zeros((RING, bc.s), dtype=torch.int64, device=self.dev)
        self.ring_at = torch.zeros(1, dtype=torch.int64, device=self.dev)
        #: The steps whose bytes are in the ring, in its order; where they go (``deliver_into``).
        self.ringed: list[int] = []
        self.out: np.ndarray | None = None
        self.dec: BitDecoder | None = None
        # Where the device predicts an encoder's steps (``DeviceProbs``): the step as one
        # stage, reading its bytes from the group's grid on the device at the step's
        # place, and a ring of its probabilities; made at the first such step.
        self.whole_encoder = Captured(
            [self._encode_whole], self.bytes, owners, compiles=self.compiles
        )
        self.grid: np.ndarray | None = None
        self.grid_dev: Any = None
        self.grid_at: Any = None
        self.probs_ring: Any = None
        self.probs_held: list[int] = []

    def encode_from(self, grid: np.ndarray) -> None:
        """The group's bytes, [segments, steps] (the coder's loop's grid rows): where the
        device predicts the settled steps, it reads them from its copy."""
        self.grid = grid

    def code_byte(self, freqs: Any, byte: np.ndarray, enc: BitEncoder) -> Any:
        """Encoder's step. Its bits are known, so the device predicts and learns all 8 of
        them without waiting for the host. Where every segment is active and
        ``SETTLED``, the step runs whole on the device, and the host codes its decisions
        later, with those of the steps around it (``DeviceProbs``); it returns the
        device's copy of the bytes, for the network's next step. Else (or where
        ``HOST_BITS`` asks) the host waits and codes the step's 8 x k decisions in one
        call, bit 0 of every segment first, as the decoder reads them; None."""
        settled = len(byte) == self.bc.s and self.bytes.t >= SETTLED
        if settled and not self.host_bits and self.grid is not None:
            return self._encode_on_device(freqs, enc)
        if enc.device is not None:
            enc.device.flush(enc)  # the held steps' decisions come first
        k = len(byte)
        enc.reserve(8 * k)
        self.bc.k = k
        f = self.torch.as_tensor(freqs, device=self.dev)[:k]
        host = self.host
        if k == self.bc.s and self.bytes.t >= SETTLED:
            # The bytes go in, and the probabilities come back, through the host's
            # buffers, which the stage's graph copies from and into.
            host.byte_np[:] = byte
            self.encoder.run(0, f, host.byte)
            host.wait()
            probs = host.step_probs_np
        else:
            b = self.torch.from_numpy(byte).to(self.dev)
            probs = self._encode_step(f, b).cpu().numpy().reshape(-1)
        self.bytes.advance()
        bits = ((byte >> _BIT_SHIFTS) & 1).reshape(-1)
        if self.encode is None:  # found once a block, as the decoder's (``jit.direct``)
            self.encode = direct(code_bits, bits, probs, False, enc.state, enc.out)
        self.encode(bits, probs, False, enc.state, enc.out)

    def _encode_on_device(self, freqs: Any, enc: BitEncoder) -> Any:
        """A settled encoder's step whole on the device (``_encode_whole``): the host
        launches it and does not wait. Every ``RING`` steps their decisions are coded."""
        torch, held = self.torch, DeviceProbs.made(enc)
        if len(self.probs_held) == RING:  # (at a step's start: every group's ring full)
            held.flush(enc)
        self.bc.k = self.bc.s
        if self.grid_dev is None:
            self.grid_dev = torch.from_numpy(self.grid).to(self.dev)
            self.grid_at = torch.full((1,), self.bytes.t, dtype=torch.int64, device=self.dev)
            self.probs_ring = torch.zeros((RING, 8, self.bc.s), dtype=torch.int64, device=self.dev)
        out = self.whole_encoder.run(0, torch.as_tensor(freqs, device=self.dev)[: self.bc.s])
        self.probs_held.append(self.bytes.t)
        held.held.append((self, self.bytes.t))
        self.bytes.advance()
        return out

    def _encode_whole(self, freqs: Any) -> Any:
        """A whole encoder's step on the device, its bytes read from the grid at the
        step's place (which it moves on), its probabilities into the ring. ``freqs``:
        [s, 256]; the bytes, [s], in ``step_bytes``."""
        byte = self.grid_dev.index_select(1, self.grid_at).view(-1)
        self.step_bytes.copy_(byte)
        self.grid_at += 1
        probs = self._encode_step(freqs, self.step_bytes)
        self.probs_ring.index_copy_(0, self.ring_at, probs[None])
        self.ring_at += 1
        return self.step_bytes

    def _encode_step(self, freqs: Any, byte: Any) -> Any:
        """A whole encoder's step on the device: the decoder's stages run through with
        the known bits. ``freqs``: [k, 256]; P(bit j = 1) of each segment, [8, k]."""
        bits = self.bit_rows[:, : len(byte)]  # every bit of the step in two launches
        self.torch.bitwise_and(byte[None] >> self.bit_shifts, 1, out=bits)
        p = [self._first_bit(freqs)]
        for j in range(1, 8):
            p.append(self._next_bit(j, bits[j - 1]))
        self._last_bit(bits[7])
        return self.torch.stack(p)

    def deliver_into(self, out: np.ndarray) -> None:
        """Where the bytes of the steps the device decodes go: the group's rows of the
        block's grid, [segments, steps] (the coder's loop's ``out``)."""
        self.out = out

    def decode_byte(self, freqs: Any, k: int, dec: BitDecoder) -> np.ndarray | Any:
        """Decoder's step: where every segment is active and ``SETTLED``, the whole step
        on the device, its bits decoded there too (``DeviceBits``), and its bytes as a
        tensor there, which the host takes back later into ``deliver_into``'s grid; where
        the device cannot decode, nine stages (``Captured``) with a bit decoded by the
        host between each two; else ``BitsFromPython``'s step, one bit at a time, as a
        numpy array. ValueError on words no encoder wrote (from the device's bits: at
        the host's next turn with the state, or ``collect``)."""
        settled = k == self.bc.s and self.bytes.t >= SETTLED
        bits = None
        if settled and not self.host_bits and self.out is not None:
            bits = DeviceBits.made(self.torch, dec, self.dev)
        if bits is not None:
            return self._decode_on_device(freqs, k, dec, bits)
        if dec.device is not None:
            dec.device.give(dec)
        if not settled:
            byte = super().decode_byte(freqs, k, dec)
            self.bytes.advance()
            return byte
        self.bc.k = k
        stages, trip = self.decoder, self.host
        # Each stage leaves its probabilities in the host's buffer (``Captured``), and
        # reads its bits from the host's row for them.
        stages.run(0, self.torch.as_tensor(freqs, device=self.dev)[:k])
        probs = trip.probs_np
        if self.decode is None:
            # The range coder's compiled function, found once a block: the same arrays'
            # types on every call (``jit.direct``).
            self.decode = direct(code_bits, trip.bits[0], probs, True, dec.state, dec.words)
        decode = self.decode
        for j in range(8):
            trip.wait()
            # Bit j of every segment, into a row of its own: the row is the next stage's
            # input, and the eight rows make the bytes in one product at the end.
            if decode(trip.bits[j], probs, True, dec.state, dec.words) < 0:
                raise ValueError("block payload is invalid for this model")
            stages.run(j + 1, trip.rows[j])
        self.bytes.advance()
        return trip.bits_all.T @ _BIT_WEIGHTS  # [s]: numpy's quicker order for [8, s]

    def _decode_on_device(self, freqs: Any, k: int, dec: BitDecoder, bits: DeviceBits) -> Any:
        """A settled decoder's step whole on the device (``_decode_step``): the host
        launches it and does not wait. Every ``RING`` steps it takes their bytes back."""
        self.bc.k = k
        self.dec = dec
        bits.warm(k)
        bits.take(dec)
        byte = self.whole.run(0, self.torch.as_tensor(freqs, device=self.dev)[:k])
        self.ringed.append(self.bytes.t)
        self.bytes.advance()
        if len(self.ringed) == RING:
            self._deliver()
        return byte

    def _decode_step(self, freqs: Any) -> Any:
        """A whole decoder's step on the device: each bit position predicted, decoded
        (``DeviceBits.decode``) and learnt from, the byte's work after them, and the
        bytes into the ring. ``freqs``: [s, 256]; the bytes, [s], in ``step_bytes``."""
        rows = self.device_rows
        p = self._first_bit(freqs)
        for j in range(8):
            self.dec.device.decode(p, rows[j])
            if j < 7:
                p = self._next_bit(j + 1, rows[j])
        byte = self._last_bit(rows[7])
        if byte.data_ptr() != self.step_bytes.data_ptr():  # (Triton's stages leave them there)
            self.step_bytes.copy_(byte)
        self.ring.index_copy_(0, self.ring_at, self.step_bytes[None])
        self.ring_at += 1
        return self.step_bytes

    def _deliver(self) -> None:
        """The ring's bytes into the grid (waiting for the device), and the ring empty."""
        if self.ringed:
            rows = self.ring[: len(self.ringed)].cpu().numpy()
            self.out[:, self.ringed] = rows.T
            self.ringed = []
            self.ring_at.zero_()

    def collect(self, coder: BitEncoder | BitDecoder) -> None:
        """After the block's last step: an encoder's held decisions coded; a decoder's
        bytes the device still holds into the grid, and its state back (ValueError where
        its words were not an encoder's)."""
        if isinstance(coder, BitEncoder):
            if coder.device is not None:
                coder.device.flush(coder)
            return
        self._deliver()
        if coder.device is not None:
            coder.device.give(coder)

    def finish(self) -> None:
        """The block is done: hand the stream what outlives it, and let go of the steps
        (``Captured``), which hold this coder for ``_restore``. Without this the two hold
        each other until the garbage collector comes, and with them the block's tensors
        and recorded graphs on the device, and the stream's tables when the state lets
        go of them (``compress_block``'s rebuild)."""
        super().finish()
        self.encoder = self.decoder = self.whole = self.whole_encoder = None

    def _first_bit(self, freqs: Any) -> Any:
        """The decoder's first stage: the byte's work, then P(bit 0 = 1)."""
        k = len(freqs)
        self._begin(freqs, k)
        return self._predict(0, self._partial(0, k))

    def _next_bit(self, j: int, bit: Any) -> Any:
        """Learn from bit j - 1, just decoded, then P(bit j = 1)."""
        self._update(bit)
        return self._predict(j, self._partial(j, len(bit), bit))

    def _last_bit(self, bit: Any) -> Any:
        """Learn from bit 7, then the byte's work after its bits; the bytes."""
        self._update(bit)
        byte = self._partial(8, len(bit), bit)
        self.bytes.end(byte)
        return byte

    def _partial(self, j: int, k: int, bit: Any = None) -> Any:
        """The partial byte before bit j of each of k segments (1 before bit 0, the
        byte itself after bit 7), ``bit`` the bits j - 1 just learnt from. Here torch
        operations on the one before (``_predict`` keeps it); the kernels' coder has
        ``_update`` leave them in rows of their own."""
        torch = self.torch
        if j == 0:
            return torch.ones(k, dtype=torch.int64, device=self.dev)
        c0 = (self.c0 << 1) | bit
        return c0 - 256 if j == 8 else c0

    def _predict_bits(self, j: int, c0: np.ndarray) -> np.ndarray:
        p = self._predict(j, self.torch.from_numpy(c0).to(self.dev))
        return p.cpu().numpy().astype(np.int64)

    def _update_bits(self, bit: np.ndarray) -> None:
        self._update(self.torch.from_numpy(bit).to(self.dev))

    def _end(self, byte: np.ndarray) -> None:
        self.bytes.end(self.torch.from_numpy(byte).to(self.dev))

    # ------------------------------------------------------------------ per byte
    def _begin(self, freqs: Any, k: int) -> None:
        """The byte's work on the device (``torchbytes``), and the mixers' byte-level
        selections (``contexts.mixer_select`` split into a byte part and a bit part).
        ``freqs``: the network's, as a tensor where it left them or a numpy array."""
        work = self.bytes
        work.begin(self.torch.as_tensor(freqs, device=self.dev), k)
        self.cum, self.hashes, self.expected = work.cum, work.hashes, work.expected
        self.mlen, self.bucket = work.ml, work.bucket
        self._rows(k)

    def _rows(self, k: int) -> None:
        """The byte's part of each mixer's and refinement stage's row, from the byte's
        work (``_begin``)."""
        torch, lut, work = self.torch, self.tables.lut, self.bytes
        ctx = work.ctx[:k]
        self.agreeing = (work.ml > 0).to(torch.int64)
        self.b1 = ctx & 0xFF
        self.row2_base = ((ctx & 0xFFFF) + 1) * self.p2
        # The byte's part of each mixer's and refinement stage's row in its joined table
        # (``DeviceTables``); a bit adds its own part.
        base = self.tables.base
        self.sel1 = work.mixset + base["weights"]
        self.sel2 = (work.mixset // 256) * 8 + base["weights2"]
        self.sel3 = self.b1 * 8 + base["weights3"]
        self.arow = (self.b1 << 8) + base["apm"]
        # The classes of the context's last 8 bytes, the latest first, [k, 8].
        classes = lut["byte_class"][(ctx[:, None] >> lut["byte_shifts"]) & 0xFF]
        a, b2, d = classes[:, 0], classes[:, 1], classes[:, 2]
        col = work.lines[0, :k]
        expected = torch.where(self.mlen > 0, self.expected, -1)
        self.mix_base = []
        for kind, _ in self.mixers:
            if kind == K.MIX_CLASSES_2:
                v = (a * 8 + b2) * 4 + torch.clamp(col, max=3)
            elif kind == K.MIX_CLASSES_3:
                v = (a * 8 + b2) * 8 + d
            elif kind == K.MIX_WORD:
                letters = (classes <= 2).to(torch.int64)
                v = torch.cumprod(letters, dim=1).sum(dim=1) * 8 + a
            elif kind == K.MIX_ORDER_1:
                v = self.b1
            else:  # MIX_EXPECTED
                v = expected + 1
            self.mix_base.append(v * _MIXER_PARTS[kind][0])
        if self.mixers:  # each extra mixer's first row of weights_x plus its byte part, [k, E]
            self.x_base = torch.stack(self.mix_base, dim=1) + self.x_first

    # ------------------------------------------------------------------ per bit
    def _predict(self, j: int, c0: Any) -> Any:
        """``adaptive._predict`` for the step's segments: P(bit j = 1), Q16, [k]."""
        torch, t, lut = self.torch, self.tables.t, self.tables.lut
        stretch, squash = lut["stretch"], lut["squash"]
        k = len(c0)
        self.c0 = c0
        bounds = self.cum.gather(1, lut["nodes"][c0 - 1])  # [k, 3]: lo, mid, hi
        hi = bounds[:, 2]
        q = ((hi - bounds[:, 1]) << A.P_BITS) // (hi - bounds[:, 0])
        net = stretch[torch.clamp(q, 32, (1 << A.P_BITS) - 32) >> 4]
        hh = self.hashes ^ (c0 * self.c0_prime)[:, None]
        drop = 64 - self.slot_bits
        slots = ((hh >> drop) & ((1 << self.slot_bits) - 1)) + self.obase
        tag = (hh >> 24) & 0x7FFF
        stats = t["ctx_stats"][slots].to(torch.int64)  # [k, n_ctx, 2]
        meta = stats[..., 1]
        same = (meta >> 16) == tag
        p_ctx = torch.where(same, stats[..., 0] + A.HALF, A.HALF)
        ctx_n = torch.where(same, meta & 0xFFFF, -1)
        eb = (self.expected >> (7 - j)) & 1
        sign = 2 * eb - 1
        agree = self.agreeing != 0
        mp = t["match_prob"][self.bucket, 0]
        # The inputs: the network, each context, the match model (its confidence and
        # its length), and a constant. [k, n_in]
        x = torch.cat(
            [
                net[:, None],
                stretch[p_ctx >> 4],
                torch.where(agree, sign * stretch[mp >> 4], 0)[:, None],
                torch.where(agree, sign * torch.clamp(self.mlen * 32, max=A.STRETCH_MAX), 0)[
                    :, None
                ],
                self.bias[:k],
            ],
            dim=1,
        )
        seen = (self.seen_kind[None, :] & (ctx_n > 0)).sum(dim=1)
        conf = torch.clamp(net.abs() >> 7, max=7)
        # Every mixer at once: their weight sets are rows of one table (``DeviceTables``),
        # each mixer's in a range of its own; the extra mixers' sets are chosen by their
        # byte part and their bit part. [k, 3 + extra mixers]
        sel = [
            (self.sel1 + c0)[:, None],
            (seen * 32 + conf + self.sel2)[:, None],
            (self.sel3 + j)[:, None],
        ]
        if self.mixers:
            sel.append(self.x_base + torch.where(self.x_by_j, j, c0[:, None] >> self.x_shift))
        sel = torch.cat(sel, dim=1)
        d = (x[:, None, :] * t["mix"][sel]).sum(dim=2) >> 16
        d = torch.clamp(d, -A.STRETCH_MAX, A.STRETCH_MAX)
        dot = (d * t["weights_final"][c0]).sum(dim=1)
        dot = torch.clamp(dot >> 16, -A.STRETCH_MAX, A.STRETCH_MAX)
        p_mix = squash[dot + A.STRETCH_MAX]
        pos = dot + 2048
        h2 = self.row2_base + c0 * self.p3
        # Both refinement stages' rows of the joined table, [k, 2].
        arows = torch.stack(
            [self.arow + c0, ((h2 >> 48) & 0xFFFF) + self.tables.base["apm2"]], dim=1
        )
        aidx, aw = pos >> 7, pos & 127
        edge = aidx[:, None] + lut["pair"]  # the knots either side, [k, 2]
        # Each row's two knots, [k, rows, knots], weighed by their nearness.
        knots = t["apms"].view(-1)[(arows * A.APM_KNOTS)[:, :, None] + edge[:, None, :]]
        knots = knots.to(torch.int64) + self.ident[edge][:, None, :]
        near = torch.stack([128 - aw, aw], dim=1)
        r = (knots * near[:, None, :]).sum(dim=2) >> (7 + self.apm_q)
        pf = torch.clamp((2 * p_mix + 3 * r.sum(dim=1)) >> 3, 1, (1 << A.P_BITS) - 1)
        self.bit_state = dict(
            x=x,
            slots=slots,
            tag=tag,
            p_ctx=p_ctx,
            ctx_n=ctx_n,
            eb=eb,
            sel=sel,
            p=squash[d + A.STRETCH_MAX],
            d=d,
            p_mix=p_mix,
            arows=arows,
            near=aidx + (aw >= 64).to(torch.int64),
        )
        return pf

    def _update(self, bit: Any) -> None:
        """``adaptive._update`` for the step's segments, from the values ``_predict`` read."""
        t = self.tables.t
        s = self.bit_state
        target = bit << A.P_BITS
        # Each joined table at once: its parts' rows never coincide, so one count of a
        # weight set's sharers, and one sum of deltas, serve them all.
        self._train_apm(s["arows"], s["near"], bit)
        # The mixers' and the final mixer's sets never coincide in the count either.
        sel = s["sel"].reshape(-1)
        counts = self._counts(self.torch.cat([sel, self.c0 + self.tables.final_count]))
        err = target[:, None] - s["p"]
        shared = counts[: len(sel)].view(s["sel"].shape)
        self._train_mixer(t["mix"], s["sel"], s["x"], err, self.mix_shift, shared)
        err = target - s["p_mix"]
        shared = counts[len(sel) :]
        self._train_mixer(
            t["weights_final"], self.c0, s["d"], err, self.params[A._FINAL_SHIFT], shared
        )
        self._train_contexts(target, s)
        self._train_match(bit, s["eb"])

    def _counts(self, sel: Any) -> Any:
        """For each segment, how many of the step's segments share its ``sel``: counted
        in a scratch row that is zero again afterwards (the loops' ``mixcount``)."""
        count = self.tables.count
        count.index_add_(0, sel, self.torch.ones_like(sel))
        shared = count[sel]
        count.index_fill_(0, sel, 0)
        return shared

    def _train_apm(self, rows: Any, near: Any, bit: Any) -> None:
        """``adaptive._train_apm`` for both refinement stages (``rows``: each segment's
        row of the joined table, [k, 2]), the curves in Q(16 + ``apm_q``)."""
        torch, q = self.torch, self.apm_q
        flat = self.tables.t["apms"].view(-1)
        idx = rows * A.APM_KNOTS + near[:, None]
        knot = self.ident[near][:, None]
        delta = ((bit[:, None] << (A.P_BITS + q)) - (flat[idx].to(torch.int64) + knot)) >> (
            self.params[A._APM_RATE]
        )
        flat.index_add_(0, idx.reshape(-1), delta.reshape(-1).to(flat.dtype))
        low = A.P_MIN if q == 0 else A.FINE_LOW
        high = A.P_MAX if q == 0 else A.FINE_HIGH
        value = torch.clamp(flat[idx].to(torch.int64) + knot, low, high) - knot
        flat[idx] = value.to(flat.dtype)  # the same value wherever idx repeats

    def _train_mixer(
        self, weights: Any, sel: Any, x: Any, err: Any, shift0: Any, shared: Any
    ) -> None:
        """``adaptive._train_mixer`` (and ``_train_final``, whose inputs are the mixers'
        logits): the summed steps, each damped by the square root of its set's sharers
        (``shared``, from ``_counts``). ``sel``, ``err`` and ``shared``: [k], or [k, m] for
        m mixers of ``x``'s inputs at once, each with its own ``shift0`` ([m])."""
        shift = shift0 + self.tables.lut["sqrt_shift"][shared]
        if sel.dim() == 2:
            x = x[:, None, :]
        step = (x * err[..., None]) >> shift[..., None]
        weights.index_add_(0, sel.reshape(-1), step.reshape(-1, weights.shape[1]))

    def _train_contexts(self, target: Any, s: dict) -> None:
        torch = self.torch
        stats = self.tables.t["ctx_stats"]
        slots, tag, ctx_n = s["slots"].reshape(-1), s["tag"].reshape(-1), s["ctx_n"].reshape(-1)
        k = len(target)
        # Claims: a slot holding another context is reset to this one; where several
        # segments claim one slot, the last in ``_update``'s order (segment, then kind),
        # which alone adds the difference. No shape here depends on the data: the rest
        # masks instead of selecting (adding 0 where a segment has nothing to add), so
        # that a device need not wait to learn how many segments agree.
        claim = ctx_n < 0
        order = self.order_ids[: len(slots)]
        gid = equal_groups(torch, torch.where(claim, slots, -1))
        winner = claim & (group_max(torch, gid, torch.where(claim, order, -1)) == order)
        # The winner's slot becomes [0, tag << 16]: both columns' differences in one sum.
        old = stats[slots].to(torch.int64)
        claimed = torch.nn.functional.pad((tag << 16)[:, None], (1, 0)) - old
        stats.index_add_(0, slots, torch.where(winner[:, None], claimed, 0).to(stats.dtype))
        held = (stats[slots, 1].to(torch.int64) >> 16) == tag
        stats[:, 1].index_add_(0, slots, held.to(stats.dtype))
        n_old = torch.clamp(ctx_n, min=0)
        visits = (stats[slots, 1].to(torch.int64) & 0xFFFF) - n_old
        rate = self.tables.lut["rate"][torch.clamp(n_old + visits - 1, 0, A.COUNT_LIMIT)]
        move = ((target[:, None] - s["p_ctx"]) * rate.view(k, -1) + self.round_half) >> 16
        delta = torch.where(held, move.view(-1), 0)
        stats[:, 0].index_add_(0, slots, delta.to(stats.dtype))
        # Clamp the probability and cap the count, both columns in one write (every
        # claimant of a slot writes the same values).
        now = stats[slots].to(torch.int64)
        count_over = torch.clamp((now[:, 1] & 0xFFFF) - A.COUNT_CAP, min=0)
        p = torch.clamp(now[:, 0], A.P_MIN - A.HALF, A.P_MAX - A.HALF)
        stats[slots] = torch.stack([p, now[:, 1] - count_over], dim=1).to(stats.dtype)

    def _train_match(self, bit: Any, eb: Any) -> None:
        torch = self.torch
        mp = self.tables.t["match_prob"]
        agree = self.agreeing != 0
        b = self.bucket
        counts = torch.zeros(len(mp), dtype=torch.int64, device=self.dev)
        counts.index_add_(0, b, agree.to(torch.int64))
        right = (bit == eb).to(torch.int64) << A.P_BITS
        rate = self.tables.lut["rate"][torch.clamp(mp[b, 1] + counts[b] - 1, 0, A.COUNT_LIMIT)]
        move = ((right - mp[b, 0]) * rate + self.round_half) >> 16
        mp[:, 0].index_add_(0, b, torch.where(agree, move, 0))
        # The loops clamp the buckets they moved; the others are inside both bounds
        # already (every write clamps), so clamping every bucket is the same.
        mp[:, 0].clamp_(A.P_MIN, A.P_MAX)
        mp[:, 1].add_(counts).clamp_(max=A.COUNT_CAP)
        self.agreeing = torch.where(agree & (bit != eb), 0, self.agreeing)
