"""A step of the mixed predictor as kernels of its own, written in Triton: six a bit.

``torchmix`` runs ``adaptive._predict`` and ``_update`` as torch operations: some 225
kernels a bit on a device, each too small to fill it, so that a step's kernels, not its
arithmetic, bound a GPU (docs/DESIGN.md section 10). Here the same arithmetic is six
kernels a bit, each over all segments of the step:

- ``_predict``: every segment's inputs, mixers, final mixer and refinement stages, and
  what the update needs of them (the values it must read before any update: a
  refinement knot's, the match bucket's);
- ``_learn_1`` to ``_learn_5``: the update in the phases that each need all of the one
  before done, since a segment's update reads what other segments' updates of the same
  entry wrote: the sharers' counts and the claims, then the sums, then the counts' reset
  and a slot's holders, then the slots' moves, then the clamps. The first also leaves
  the next bit's partial bytes (after the last bit, the bytes), so that no torch
  operation runs between a step's kernels but a few copies.

The batch semantics are ``torchmix``'s (and the loops'): every update is computed from the
values before the step's updates and summed with integer atomics, whose sum does not
depend on the order a device adds them in; where several segments claim one context slot
the last in ``_update``'s order wins, chosen by an atomic minimum of its negated place
(the slot's check word is never negative otherwise), never by the order of the writes;
clamps and caps write the same value from every sharer. So the archive is the loops'
(``tests/test_tritonmix.py``), on a GPU (compiled) and on the CPU (Triton's interpreter,
``TRITON_INTERPRET``'s, which runs each kernel through numpy: a check, not a speed).

The byte's work is kernels too (``TritonByteWork``), with the same care where segments
read what others write in the step: before the bits ``_byte_begin`` (the cumulative
frequencies, the match model's expected byte and classes), every context kind's hash
(``_hashes``; each column's formula chosen by its kind) and the mixers' and
refinement stages' rows (``_byte_rows``); after them ``_byte_end`` (the bytes, the
matches continued, contexts, lines, words, the match model's lookups), ``_match_clear``
and ``_seed`` (the match table's writes and the seeding) and ``_repeat`` (the stream's
repeat distance). The match table's writes are ``torchbytes._write_matches``' as atomics:
the slots a write replaces are emptied first, then every write keeps the larger; a
seed reads its predecessor's distance from what ``_byte_end`` left for it, before any
seed of the step; the first segment in a long match is an atomic minimum of its place.

A settled decoder's bits are decoded between a step's kernels by one more,
``_decode_bits`` (``torchmix.DeviceBits``), the range decoder as one program, each
decision after the one before.

``TritonBlockCoder`` is ``torchmix.TorchBlockCoder`` with these for its ``_predict``,
``_update`` and ``_rows``, and a ``TritonByteWork`` for its byte's work; its stages and
their recording are ``torchmix``'s. It runs where ``NNCOMPRESS_TRITON=1`` is set and
Triton can be imported (``wanted``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import Any

from . import adaptive as A
from . import contexts as K
from . import torchmix
from .torchbytes import _ORDER_MASK, _ORDER_PRIME, _P, REACH, ByteWork, signed64
from .torchmix import _MIXER_PARTS, TorchBlockCoder, launching

#: Set to 1 to run a step's work as this module's kernels (``wanted``).
TRITON = "NNCOMPRESS_TRITON"


def wanted(device: Any) -> bool:
    """Whether ``NNCOMPRESS_TRITON=1`` asks for these kernels and Triton can run them on
    ``device``: compiled on a CUDA device, else through its interpreter."""
    return os.environ.get(TRITON) == "1" and _importable(device.type != "cuda")


def _importable(interpret: bool) -> bool:
    """Import Triton to compile kernels or to interpret them. Its own library functions
    (``tl.sum``) are made one way or the other when it is first imported, by
    ``TRITON_INTERPRET`` then, so a process runs kernels one way only: the first asked
    for, where nothing imported Triton before."""
    if "triton" not in sys.modules and interpret:
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        import triton.language as tl
        from triton.runtime.interpreter import InterpretedFunction
    except ImportError:
        return False
    return isinstance(tl.standard.sum, InterpretedFunction) == interpret


def _pow2(n: int) -> int:
    """The least power of two >= ``n`` (Triton's blocks are powers of two)."""
    return 1 << max(n - 1, 0).bit_length()


def _kernels(interpret: bool) -> dict[str, Any]:
    """The kernels (``tritonkernels``), compiled for a GPU or run by Triton's
    interpreter (CPU tensors). Made on first use: Triton is imported only where it runs."""
    from triton.runtime.interpreter import InterpretedFunction
    from triton.runtime.jit import JITFunction

    from .tritonkernels import KERNELS

    make = InterpretedFunction if interpret else JITFunction
    return {f.__name__: make(f) for f in KERNELS}


_MADE: dict[bool, dict[str, Any]] = {}
#: One interpreted launch at a time: Triton's interpreter stands its own functions in for
#: ``tl``'s while a kernel runs and puts the compiler's back after, for the whole process,
#: so two frames' threads (``devicepool``) would take each other's away.
_INTERPRETING = threading.Lock()


def kernels(interpret: bool) -> dict[str, Any]:
    """The kernels, made once a process for each way of running them."""
    if interpret not in _MADE:
        _MADE[interpret] = _kernels(interpret)
    return _MADE[interpret]


#: Segments a program on a GPU: few enough for the mixers' [block, mixers, inputs]
#: products to stay in registers (untuned).
GPU_BLOCK = 16


class _Launcher:
    """The kernels on one device, each over a step's segments in programs of ``block``."""

    def __init__(self, device: Any, s: int) -> None:
        interpret = device.type != "cuda"
        self.k = kernels(interpret)
        self.turn = _INTERPRETING if interpret else contextlib.nullcontext()
        # One program a block of segments: on the interpreter all in one (its cost is
        # per program); on a GPU blocks small enough for the mixers' [block, mixers,
        # inputs] products to stay in registers.
        self.block = _pow2(s) if interpret else GPU_BLOCK

    def __call__(self, name: str, k: int, *args: Any, **consts: Any) -> None:
        """Kernel ``name`` over ``k`` segments (programs enough for them; the kernel
        takes ``k`` among ``args`` too), counted where ``torchmix.operation_log``
        is open (torch's dispatch does not see it)."""
        grid = (-(-k // self.block),)
        with launching(name), self.turn:
            self.k[name][grid](*args, BLOCK=self.block, **consts)


def launch_alone(name: str, interpret: bool, *args: Any, **consts: Any) -> None:
    """Kernel ``name`` as one program (``_decode_bits``, whose decisions each wait for
    the one before), counted as ``_Launcher``'s launches are."""
    turn = _INTERPRETING if interpret else contextlib.nullcontext()
    with launching(name), turn:
        kernels(interpret)[name][(1,)](*args, **consts)


def _int64(torch: Any, values: list[int], device: Any) -> Any:
    """``values`` as an int64 tensor on ``device``: a kernel's table."""
    return torch.tensor(values, dtype=torch.int64, device=device)


#: ``lend``'s mark of a segment that lends no distance (``_byte_end``): a real distance
#: is a difference of two stream offsets, far from it.
_NO_LENDER = -(1 << 62)


class TritonByteWork(ByteWork):
    """``torchbytes.ByteWork`` as kernels: before the bits ``_byte_begin`` and the
    contexts' hashes (``_hashes``, where torch ran some 50 and 105-160 operations), after
    them ``_byte_end``, ``_match_clear``, ``_seed`` and ``_repeat`` (some 165)."""

    def __init__(self, bc: A.BlockCoder, shared: Any, match_table: Any) -> None:
        super().__init__(bc, shared, match_table)
        torch, dev, s = self.torch, shared.device, bc.s
        self.launch = _Launcher(dev, s)
        # Every kind's hash in one kernel (``_hashes``): each column's kind, an order-n
        # kind's mask, its multiplier where it is the column's (the orders', the image
        # and colour kinds'), and a row kind's hash in a block without rows.
        image = [kind for kind in self.kinds if kind >= K.IMAGE_GRADIENT]
        rows = [kind for kind in self.kinds if K.RECORD <= kind <= K.PIXELS_2] + image
        self.rows = bool(rows)
        primes = {kind: _P[_ORDER_PRIME[kind]] for kind in self.kinds if kind <= 8}
        primes |= {kind: _P[kind % 6] for kind in image}
        no_rows = {kind: signed64((kind + 6000011) * int(K.PRIMES[5])) for kind in rows}
        columns = (
            self.kinds,
            [_ORDER_MASK[kind] if kind <= 8 else 0 for kind in self.kinds],
            [primes.get(kind, 0) for kind in self.kinds],
            [no_rows.get(kind, 0) for kind in self.kinds],
        )
        self.columns = [_int64(torch, v, dev) for v in columns]

        def buf(*shape: int) -> Any:
            return torch.zeros(shape, dtype=torch.int64, device=dev)

        self.hash_out = buf(s, len(self.kinds))
        # What ``begin`` leaves, and what ``end``'s kernels hand on to each other.
        self.cum_out = buf(s, 257)
        self.expected_out, self.ml_out, self.ex = buf(s), buf(s), buf(s)
        self.bucket_out, self.mixset_out = buf(s), buf(s)
        self.lend, self.keys, self.own = buf(s), buf(s), buf(s)
        self.first = buf(1) + (1 << 62)  # ``_seed``'s mark: no segment yet (``_repeat``)
        # Where ``known_byte`` looks: the block, its segments and the window.
        sh = shared
        n_seg = len(sh.starts)
        self.known = (
            sh.block, sh.n, sh.block_pos, sh.history, sh.history_base, len(sh.history),
            sh.starts, n_seg, sh.done, n_seg.bit_length(),
        )  # fmt: skip
        self.key_mask = (1 << (64 - self.match_shift)) - 1
        # The match model's context: its last ``match_len`` bytes.
        self.cm_mask = signed64((1 << (8 * self.match_len)) - 1)
        self.lo = int(bc.params[A._SEG_LO])  # the group's first segment in the block

    def begin(self, freqs: Any, k: int) -> None:
        """``ByteWork.begin`` as ``_byte_begin``, then the hashes' kernel."""
        f = freqs[:k]
        if f.stride(1) != 1:
            f = f.contiguous()
        blk, n, pos, history, hbase, h_len, starts, n_seg, done, steps = self.known
        self.launch("_byte_begin", k,
            k, f, f.stride(0), self.cum_out, self.mptr, self.mlen, self.mseed, self.buckets,
            self.expected_out, self.ml_out, self.bucket_out, self.mixset_out, self.ex,
            blk, n, pos, history, hbase, h_len, starts, n_seg, done, steps,
        )  # fmt: skip
        self.cum = self.cum_out[:k]
        self.ml = self.ml_out[:k]
        self.expected = self.expected_out[:k]
        self.bucket = self.bucket_out[:k]
        self.mixset = self.mixset_out[:k]
        self.hashes = self._hashes(k, self.ex[:k])

    def _hashes(self, k: int, ex: Any) -> Any:
        kinds, masks, primes, rconst = self.columns
        self.launch("_hashes", k,
            k, self.ctx, self.words, self.words.stride(0), self.lines, self.lines.stride(0),
            self.sh.block, self.sh.n, kinds, masks, primes, rconst, ex, self.bucket_out,
            self.sh.record, self.hash_out, *_P[:6],
            N_CTX=len(self.kinds), NC=_pow2(len(self.kinds)), ROWS=self.rows,
        )  # fmt: skip
        return self.hash_out[:k]

    def end(self, byte: Any) -> None:
        """``ByteWork.end`` as four kernels, each after the one before (the module's
        docstring says why each boundary)."""
        torch, sh = self.torch, self.sh
        b = byte.to(torch.int64).contiguous()
        k = len(b)
        blk, n, pos, history, hbase, h_len, starts, n_seg, done, steps = self.known
        # The match model's length once it has found a match, 0 before it hashes.
        matching = self.match_len if self.reach >= self.match_len else 0
        self.launch("_byte_end", k,
            k, b, self.starts, self.lo, self.step, blk, done, self.expected_out,
            self.mlen, self.mptr, self.mseed, self.ctx, self.lines, self.lines.stride(0),
            self.words, self.words.stride(0), _P[3], _P[5],
            matching, self.cm_mask, self.match_shift, self.key_mask, self.match_table, self.probes,
            starts, n_seg, pos, self.lend, self.keys, self.own, _NO_LENDER, A.SEED_LEN,
        )  # fmt: skip
        if matching and self.probes > 0:
            self.launch("_match_clear", k, k, self.own, self.match_table)
        self.launch("_seed", k,
            k, self.starts, self.step, self.mlen, self.mptr, self.mseed, self.lend, sh.ints,
            self.reach, matching, self.probes, self.match_table, self.keys, self.own,
            self.first, _NO_LENDER, A.REP_LEN,
            blk, n, pos, history, hbase, h_len, starts, n_seg, done, steps,
            REACH=REACH,
        )  # fmt: skip
        self.launch("_repeat", 1,
            k, self.first, self.starts, self.mptr, sh.ints, pos, self.step,
        )  # fmt: skip


class TritonBlockCoder(TorchBlockCoder):
    """``TorchBlockCoder`` with a bit's prediction and learning as this module's six
    kernels, the byte's rows as one more, and a ``TritonByteWork``; the steps' stages and
    their recording are its own."""

    byte_work = TritonByteWork
    # Compiling the stages with the kernels in them is not taken up here.
    compiles = False

    def __init__(self, bc: A.BlockCoder, tables: Any) -> None:
        super().__init__(bc, tables)
        torch = self.torch
        self.launch = self.bytes.launch
        s, n_ctx, n_mix = bc.s, self.n_ctx, 3 + len(self.mixers)
        self.sizes = dict(N_CTX=n_ctx, N_MIX=len(self.mixers), NC=_pow2(n_ctx), NM=_pow2(n_mix))

        def buf(*shape: int) -> Any:
            return torch.zeros(shape, dtype=torch.int64, device=self.dev)

        # A row a bit position (the encoder's step keeps all eight), each aligned.
        self.p = torchmix._aligned_rows(torch, 8, s, self.dev)
        # The partial byte before each bit position, a row each, 1 in the first, and the
        # bytes in the last: ``_learn_1`` writes row j + 1 as it learns bit j, so that no
        # torch operation runs between a step's kernels for it. The last row is the
        # step's bytes (``step_bytes``), where the network's next step reads them.
        self.c0_rows = torchmix._aligned_rows(torch, 9, s, self.dev)
        self.c0_rows[0].fill_(1)
        self.step_bytes = self.c0_rows[8, :s]
        self.j = 0
        self.x = buf(s, n_ctx + 4)
        self.slots, self.tag = buf(s, n_ctx), buf(s, n_ctx)
        self.p_ctx, self.ctx_n, self.held = buf(s, n_ctx), buf(s, n_ctx), buf(s, n_ctx)
        self.eb, self.p_mix = buf(s), buf(s)
        self.sel, self.pm, self.d = buf(s, n_mix), buf(s, n_mix), buf(s, n_mix)
        self.aidx, self.aval, self.mp_old = buf(s, 2), buf(s, 2), buf(s, 2)
        self.bucket_count = buf(len(tables.t["match_prob"]))
        # The byte's rows (``_rows``): each extra mixer's kind, its weight sets a
        # byte-level value, its first row; and what ``_rows`` leaves.
        kinds = [m for m, _ in self.mixers]
        self.x_kind = _int64(torch, kinds + [0], self.dev)
        mult = [_MIXER_PARTS[m][0] for m in kinds]
        self.x_mult = _int64(torch, mult + [0], self.dev)
        self.sel1, self.sel2, self.sel3 = buf(s), buf(s), buf(s)
        self.arow, self.row2_base, self.agreeing = buf(s), buf(s), buf(s)
        self.x_base = buf(s, max(len(kinds), 1))
        self.seen_int = self.seen_kind.to(torch.int64)
        self.by_j_int = self.x_by_j.to(torch.int64)
        assert len(tables.t["match_prob"]) == _pow2(len(tables.t["match_prob"]))

    def _rows(self, k: int) -> None:
        """``TorchBlockCoder._rows`` in one kernel."""
        work, base = self.bytes, self.tables.base
        self.launch("_byte_rows", k,
            k, work.ctx, work.mixset, work.ml, work.expected, work.lines[0],
            self.tables.lut["byte_class"], self.x_kind, self.x_mult, self.x_first,
            self.p2, base["weights"], base["weights2"], base["weights3"], base["apm"],
            self.sel1, self.sel2, self.sel3, self.arow, self.row2_base, self.x_base,
            self.agreeing,
            N_MIX=len(self.mixers), NM=_pow2(len(self.mixers) + 1),
        )  # fmt: skip

    def _partial(self, j: int, k: int, bit: Any = None) -> Any:
        """``TorchBlockCoder._partial``: the row of ``c0_rows`` that ``_learn_1`` wrote
        as it learnt bit j - 1 (the first row, all 1s, before bit 0; the last, the
        step's bytes, after bit 7)."""
        return self.c0_rows[j, :k]

    def _predict(self, j: int, c0: Any) -> Any:
        """``TorchBlockCoder._predict`` in one kernel: P(bit j = 1), Q16, [k]."""
        torch, t, lut = self.torch, self.tables.t, self.tables.lut
        k = len(c0)
        c0 = c0.to(torch.int64).contiguous()
        self.c0, self.j = c0, j
        sz = self.sizes
        self.launch("_predict", k,
            c0, k, j,
            self.cum, self.cum.stride(0), lut["nodes"], lut["stretch"], lut["squash"],
            self.hashes.contiguous(), self.c0_prime, self.slot_bits, t["ctx_stats"],
            self.expected, self.agreeing, self.bucket, self.mlen, t["match_prob"],
            self.seen_int,
            self.sel1, self.sel2, self.sel3,
            self.x_base, self.by_j_int,
            self.x_shift,
            t["mix"], t["weights_final"], self.row2_base, self.p3, self.arow,
            self.tables.base["apm2"], t["apms"], self.ident, self.apm_q,
            self.p[j], self.x, self.slots, self.tag, self.p_ctx, self.ctx_n, self.eb,
            self.sel, self.pm, self.d, self.p_mix, self.aidx, self.aval, self.mp_old,
            P_BITS=A.P_BITS, HALF=A.HALF, SMAX=A.STRETCH_MAX, KNOTS=A.APM_KNOTS, **sz,
        )  # fmt: skip
        return self.p[j, :k]

    def _update(self, bit: Any) -> None:
        """``TorchBlockCoder._update`` in five kernels, each after the one before; the
        first also leaves the next bit's partial bytes in ``c0_rows`` (the bytes after
        bit 7)."""
        torch, t, lut = self.torch, self.tables.t, self.tables.lut
        bit = bit.to(torch.int64).contiguous()
        k = len(bit)
        sz = self.sizes
        ctx_only = dict(N_CTX=sz["N_CTX"], NC=sz["NC"])
        q = self.apm_q
        apm_low, apm_high = (A.P_MIN, A.P_MAX) if q == 0 else (A.FINE_LOW, A.FINE_HIGH)
        final = self.tables.final_count
        j = self.j
        self.launch("_learn_1", k,
            bit, k, self.c0, self.c0_rows[j + 1], 256 if j == 7 else 0,
            self.aidx, self.aval, t["apms"], q, self.params[A._APM_RATE],
            self.sel, self.tables.count, final, self.slots, self.ctx_n, t["ctx_stats"],
            self.agreeing, self.bucket, self.bucket_count,
            P_BITS=A.P_BITS, **sz,
        )  # fmt: skip
        self.launch("_learn_2", k,
            bit, k, self.c0, self.aidx, t["apms"], self.ident, q, apm_low, apm_high,
            self.sel, self.tables.count, final, lut["sqrt_shift"], self.mix_shift,
            self.params[A._FINAL_SHIFT],
            self.x, self.pm, self.d, self.p_mix, t["mix"], t["weights_final"],
            self.slots, self.tag, self.ctx_n, t["ctx_stats"], self.held,
            self.eb, self.agreeing, self.bucket, self.bucket_count, self.mp_old,
            t["match_prob"], lut["rate"], self.round_half,
            NI=_pow2(self.n_ctx + 4), P_BITS=A.P_BITS, KNOTS=A.APM_KNOTS,
            COUNT_LIMIT=A.COUNT_LIMIT, **sz,
        )  # fmt: skip
        self.launch("_learn_3", k,
            bit, k, self.c0, self.sel, self.tables.count, final, self.slots, self.held,
            t["ctx_stats"], self.eb, self.agreeing, self.bucket_count, t["match_prob"],
            A.P_MIN, A.P_MAX, A.COUNT_CAP,
            BUCKETS=len(self.bucket_count), **sz,
        )  # fmt: skip
        self.launch("_learn_4", k,
            bit, k, self.slots, self.held, self.ctx_n, self.p_ctx, t["ctx_stats"],
            lut["rate"], self.round_half,
            P_BITS=A.P_BITS, COUNT_LIMIT=A.COUNT_LIMIT, **ctx_only,
        )  # fmt: skip
        self.launch("_learn_5", k,
            k, self.slots, t["ctx_stats"], A.P_MIN - A.HALF, A.P_MAX - A.HALF, A.COUNT_CAP,
            **ctx_only,
        )  # fmt: skip
