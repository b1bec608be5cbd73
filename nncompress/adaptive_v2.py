"""The mixed method of format versions 1 and 2, kept so that their archives decode.

Frozen: its arithmetic is those archives' format, so it changes only if a bug is found
that the archives of those versions never exercised. New archives use ``adaptive.py``
(format version 3). What follows is its description as it was.

Learning the file while coding it: context statistics, a match model and an online
mixer, combined with the network bit by bit (DESIGN.md section 4).

Each byte is coded as 8 binary decisions, most significant bit first. For each decision the
inputs are, in the logit ("stretch") domain:

* the network's probability of the bit, from its 256 frequencies (one cumulative sum per
  byte gives every node of the binary tree);
* hashed order-1, 2, 3, 4 and 6 context tables of bit probabilities, adapted after every bit;
* a match model: the byte that followed the longest recent earlier occurrence of the
  current context, with a confidence learned per match length;

and a gated linear mixer, whose weight set is chosen by the partial byte and the match
state, turns them into one probability; its weights follow the gradient of the coding loss.
A final refinement stage (paq's APM) maps that probability through an adaptive curve
chosen by the previous byte and the partial byte, and averages the two 1:3.

Everything is integer arithmetic, identical on every machine. Statistics are shared by all
lockstep segments and persist across the blocks of a stream (the match model sees a 64 MiB
window). Updates that several segments make to one table entry in the same step are
summed (integer addition, so their order cannot matter).
"""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import numpy as np
from numba import njit

from . import adaptive

ORDERS = (1, 2, 3, 4, 6)
N_ORDERS = len(ORDERS)
TABLE_BITS = 21  # slots per context order
MATCH_BITS = 22  # slots of the match model's hash table
MATCH_MIN = 5  # context bytes a match must share to start
WINDOW = 64 << 20  # how far back the match model reaches
STRETCH_MAX = 2047  # logits in Q8, clamped to +-8
P_BITS = 16  # probabilities of bit == 1 in Q16
COUNT_LIMIT = 255
MIX_SHIFT = 13  # mixer learning rate: dw = x * err >> MIX_SHIFT (weights in Q16)
N_INPUTS = 3 + N_ORDERS  # network, orders..., match, bias
MIX_SETS = 4 * 256  # weight sets: match-length class x partial byte
APM_RATE = 6  # the final refinement stage adapts by 1/64 of its error
APM_KNOTS = 33  # interpolation points of each refinement curve
P_MIN, P_MAX = 32, (1 << P_BITS) - 32  # adaptive probabilities stay inside this range

#: Numba compiles these loops once and caches the machine code beside this file.
_jit = njit(cache=True, nogil=True)


def _luts() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """squash (logit Q8 -> P16), stretch (P16 >> 4 -> logit Q8), and adaptation rates.

    Built symmetric by construction (squash(-x) = 2**16 - squash(x), stretch(1-p) =
    -stretch(p)), so only half of each is computed.
    """
    getcontext().prec = 20
    one, half = Decimal(1), Decimal("0.5")
    top = 1 << P_BITS
    pos = [
        int((Decimal(top) / (one + (Decimal(-i) / 256).exp())).to_integral_value())
        for i in range(STRETCH_MAX + 1)
    ]
    squash = np.array([top - v for v in pos[:0:-1]] + pos, dtype=np.int64)
    squash = np.clip(squash, 1, top - 1)
    low = [
        int(
            (
                256 * ((Decimal(i) + half) / (Decimal(4096) - Decimal(i) - half)).ln()
            ).to_integral_value()
        )
        for i in range(2048)
    ]
    stretch = np.clip(
        np.array(low + [-v for v in low[::-1]], dtype=np.int64), -STRETCH_MAX, STRETCH_MAX
    )
    rate = np.array([int(65536 / (n + 1.5)) for n in range(COUNT_LIMIT + 1)], dtype=np.int64)
    return squash, stretch, rate


SQUASH, STRETCH, RATE = _luts()
#: max(1, isqrt(m)) for the number m of segments sharing a mixer weight set in one step.
ISQRT = np.array([max(1, math.isqrt(i)) for i in range(1 << 11)], dtype=np.int64)
_PRIMES = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
    ],
    dtype=np.uint64,
)
_C0_PRIME = np.uint64(0x2545F4914F6CDD1D)
_ORDER_MASK = np.array([(1 << (8 * k)) - 1 for k in ORDERS], dtype=np.uint64)
_ORDER_ADD = np.array(ORDERS, dtype=np.uint64)
_MATCH_MASK = np.uint64((1 << (8 * MATCH_MIN)) - 1)


def _node_bounds() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each partial byte c0 = 1..255 (a 1 followed by the j bits known so far): the
    symbol range under it, and where its bit-1 half starts, as cumulative-sum indices."""
    c0 = np.arange(1, 256)
    depth = np.floor(np.log2(c0)).astype(np.int64)
    lo = (c0 - (1 << depth)) << (8 - depth)
    return lo, lo + (1 << (7 - depth)), lo + (1 << (8 - depth))


_LO, _MID, _HI = _node_bounds()


class Spending(adaptive.Spending):
    """Where a stream's bits went, for ``-v`` (accounting only, nothing is coded from it):
    ``adaptive.Spending`` over this method's inputs."""

    INPUTS = ("network", *(f"order-{k}" for k in ORDERS), "mixer", "final")
    SIZE = len(INPUTS) + 3


class StreamState:
    """Statistics that live for one stream: shared by its segments, carried across blocks."""

    spending_type = Spending

    def __init__(self, account: bool = False) -> None:
        self.history = np.zeros(0, dtype=np.uint8)  # the last WINDOW bytes before this block
        self.history_base = 0  # stream offset of history[0]
        self.ready = False
        # Bit accounting (Spending) when asked for; an array, so that snapshot/restore
        # drop the accounts of a block the encoder did not keep.
        self.spending = np.zeros(Spending.SIZE) if account else None

    def ensure_match_table(self) -> None:
        if not hasattr(self, "match_table"):
            self.match_table = np.full(1 << MATCH_BITS, -1, dtype=np.int64)

    def ensure_tables(self) -> None:
        """Allocate the statistics on first use (about 110 MB), not for streams that never
        use the mixed method."""
        self.ensure_match_table()
        if self.ready:
            return
        self.ready = True
        # Each slot's probability (Q16) and observation count side by side: one cache
        # line serves the prediction and the update.
        self.ctx_stats = np.zeros((N_ORDERS << TABLE_BITS, 2), dtype=np.int32)
        self.ctx_stats[:, 0] = 1 << (P_BITS - 1)
        self.match_prob = np.full(64, 3 << (P_BITS - 2), dtype=np.int64)  # by length bucket
        self.weights = np.zeros((MIX_SETS, N_INPUTS), dtype=np.int64)
        # Start from the network's prediction: the other inputs are 0 (probability 1/2)
        # until their statistics have something to say, then count with these weights.
        self.weights[:, 0] = 1 << 16
        self.weights[:, 1 : 1 + N_ORDERS] = 1 << 13
        self.weights[:, -2] = 1 << 15
        # Refinement of the mixer's output by order-1 context and partial byte: 33
        # interpolation points over the logit range, starting as the identity.
        knots = SQUASH[np.clip(np.arange(-16, 17) * 128, -STRETCH_MAX, STRETCH_MAX) + STRETCH_MAX]
        self.apm = np.tile(knots, (1 << 16, 1)).astype(np.int32)

    def block_coder(self, n: int, segments: int) -> BlockCoder:
        return BlockCoder(self, n, segments)

    def snapshot(self) -> dict[str, np.ndarray | int]:
        return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(self).items()}

    def restore(self, snap: dict[str, np.ndarray | int]) -> None:
        for k, v in snap.items():
            setattr(self, k, v)

    def add_other_block(self, data: bytes) -> None:
        """A block coded by another method (stored, LZMA, network alone): index every
        MATCH_MIN-byte context in it for the match model, as the mixed coder does while
        coding, then add it to the window."""
        self.ensure_match_table()
        arr = np.frombuffer(data, dtype=np.uint8).astype(np.uint64)
        if len(arr) >= MATCH_MIN:
            ctx = np.zeros(len(arr) - MATCH_MIN + 1, dtype=np.uint64)
            for i in range(MATCH_MIN):  # byte p - i lands in bits 8i..8i+7, as in BlockCoder.ctx
                ctx |= arr[MATCH_MIN - 1 - i : len(arr) - i] << np.uint64(8 * i)
            bits = np.uint64(64 - _log2(len(self.match_table)))
            keys = ((ctx * _PRIMES[5]) >> bits).astype(np.int64)
            block_pos = self.history_base + len(self.history)
            nxt = block_pos + np.arange(MATCH_MIN, len(arr) + 1, dtype=np.int64)
            np.maximum.at(self.match_table, keys, nxt)
        self.append_history(data)

    def append_history(self, data: bytes) -> None:
        """Add a finished block to the window the match model searches."""
        h = np.concatenate([self.history, np.frombuffer(data, dtype=np.uint8)])
        if len(h) > WINDOW:
            self.history_base += len(h) - WINDOW
            h = h[len(h) - WINDOW :]
        self.history = h


def _log2(n: int) -> int:
    return n.bit_length() - 1


class BlockCoder:
    """The per-block side of the adaptive model: segment layout, match state and scratch.

    Per step t the caller runs ``begin_byte`` with the network's frequencies, then for each
    bit j ``predict(j, c0)`` (P(bit = 1) of every active segment, Q16), codes the bits and
    ``update(j, bits)``, then ``end_byte``. An encoder, which knows the bytes, does all of
    that in one call of ``code_byte``.
    """

    def __init__(self, state: StreamState, n: int, segments: int) -> None:
        state.ensure_tables()
        self.st = state
        self.n, self.s = n, segments
        base, extra = n // segments, n % segments
        lengths = np.full(segments, base, dtype=np.int64)
        lengths[:extra] += 1
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        # Integers of the block: n, steps done, stream offset of the block, history base.
        self.ints = np.array([n, 0, state.history_base + len(state.history), state.history_base])
        self.block = np.zeros(n, dtype=np.uint8)
        self.ctx = np.zeros(segments, dtype=np.uint64)  # last 8 bytes of each segment
        self.mptr = np.full(segments, -1, dtype=np.int64)  # stream offset of predicted byte
        self.mlen = np.zeros(segments, dtype=np.int64)
        # Per-segment scratch: cumulative frequencies, hashes, byte and bit state.
        self.cum = np.zeros((segments, 257), dtype=np.int64)
        self.hashes = np.zeros((segments, N_ORDERS), dtype=np.uint64)
        self.seg = np.zeros((_SEG_FIELDS, segments), dtype=np.int64)
        self.x = np.zeros((segments, N_INPUTS), dtype=np.int64)
        self.slots = np.zeros((segments, N_ORDERS), dtype=np.int64)
        self.p_ctx = np.zeros((segments, N_ORDERS), dtype=np.int64)
        self.delta = np.zeros((segments, N_ORDERS), dtype=np.int64)
        self.mixcount = np.zeros(MIX_SETS, dtype=np.int64)
        self.bucketcount = np.zeros(len(state.match_prob), dtype=np.int64)
        account = state.spending is not None
        self.spending = state.spending if account else np.zeros(0)
        self.byte_bits = np.zeros(segments if account else 0)
        self.k = 0

    @property
    def t(self) -> int:
        """Steps completed."""
        return int(self.ints[1])

    def _tables(self) -> tuple:
        st = self.st
        return (st.ctx_stats, st.match_prob, st.weights, st.apm, st.match_table)

    def _block(self) -> tuple:
        return (self.ints, self.starts, self.block, self.st.history, self.ctx, self.mptr, self.mlen)

    def _scratch(self) -> tuple:
        return (
            self.cum,
            self.hashes,
            self.seg,
            self.x,
            self.slots,
            self.p_ctx,
            self.delta,
            self.mixcount,
            self.bucketcount,
            self.spending,
            self.byte_bits,
        )

    def begin_byte(self, freqs: np.ndarray, k: int) -> None:
        """Prepare the inputs that stay fixed for the 8 bits of this step's byte."""
        self.k = k
        _begin_byte(freqs, k, self._block(), self._scratch())

    def predict(self, j: int, c0: np.ndarray) -> np.ndarray:
        """P(bit j == 1) in Q16 for each active segment; ``c0`` = 1 followed by the bits so far."""
        self.p_final = np.empty(self.k, dtype=np.int64)
        c0 = np.ascontiguousarray(c0, dtype=np.int64)
        _predict(j, c0, self.p_final, self._tables(), self._block(), self._scratch())
        return self.p_final

    def update(self, bit: np.ndarray) -> None:
        """Learn from the coded bits ([k] of 0/1) of the last ``predict``."""
        bit = np.ascontiguousarray(bit, dtype=np.int64)
        _update(bit, self.p_final, self._tables(), self._scratch())

    def end_byte(self, byte: np.ndarray) -> None:
        """Record this step's bytes ([k]) and advance the match state."""
        byte = np.ascontiguousarray(byte, dtype=np.int64)
        _end_byte(byte, self._tables(), self._block(), self._scratch())

    def finish(self) -> None:
        """The block is done (nothing of this block's own outlives it)."""

    def code_byte(self, freqs: np.ndarray, byte: np.ndarray, probs: np.ndarray) -> None:
        """Encoder's step: everything for the known bytes ``byte`` ([k]), with P(bit = 1)
        of bit j of segment i written to ``probs[j, i]``."""
        self.k = len(byte)
        _code_byte(freqs, byte, probs, self._tables(), self._block(), self._scratch())


# Rows of BlockCoder.seg: per-segment values of the current byte and bit.
_EXPECTED, _AGREEING, _MBUCKET, _MIXSET = 0, 1, 2, 3
_EBIT, _WSEL, _P, _AROW, _AIDX, _AW, _MATCHED, _C0 = 4, 5, 6, 7, 8, 9, 10, 11
_SEG_FIELDS = 12


@_jit
def _cost(p1: int, bit: int) -> float:
    """Bits to code ``bit`` at P(1) = ``p1`` (Q16), for accounting."""
    p = p1 if bit == 1 else (1 << P_BITS) - p1
    return -np.log2(max(p, 1) / (1 << P_BITS))


@_jit
def _begin_byte(freqs, k, blk, scr) -> None:
    ints, starts, block, history, ctx, mptr, mlen = blk
    cum, hashes, seg = scr[0], scr[1], scr[2]
    spending, byte_bits = scr[9], scr[10]
    n, t, block_pos, history_base = ints[0], ints[1], ints[2], ints[3]
    nseg = len(starts)
    for i in range(k):
        # Cumulative frequencies: the network's P(bit) at any node of the byte's binary
        # tree is a ratio of two range sums, taken in predict for the 8 nodes visited.
        acc = 0
        cum[i, 0] = 0
        for s in range(256):
            acc += freqs[i, s]
            cum[i, s + 1] = acc
        # Context hashes per order (segment-local history, as the network sees it).
        c = ctx[i]
        for o in range(N_ORDERS):
            hashes[i, o] = ((c & _ORDER_MASK[o]) + _ORDER_ADD[o]) * _PRIMES[o]
        # Match model: the match continued or found in end_byte, if its byte is known.
        ml = mlen[i]
        expected = 0
        if ml > 0:
            pos = mptr[i]
            off = pos - block_pos
            known = False
            if off < 0:
                if pos >= history_base:
                    known = True
                    expected = np.int64(history[pos - history_base])
            elif off < n:
                sg = np.searchsorted(starts, off, side="right") - 1
                sg = min(max(sg, 0), nseg - 1)
                if off - starts[sg] < t:
                    known = True
                    expected = np.int64(block[off])
            if not known:
                ml = 0
                mlen[i] = 0
                expected = 0
        seg[_EXPECTED, i] = expected
        seg[_AGREEING, i] = 1 if ml > 0 else 0
        seg[_MATCHED, i] = 1 if ml > 0 else 0
        seg[_MBUCKET, i] = min(ml, 15) + (16 if ml > 0 else 0)
        seg[_MIXSET, i] = min((ml + 7) // 8, 3) * 256
    if len(spending):
        for i in range(k):
            byte_bits[i] = 0.0


@_jit
def _predict(j, c0, p_out, tab, blk, scr) -> None:
    """P(bit j = 1) of every active segment into ``p_out``. The loads from the large
    tables have loops of their own, so that the cache misses of many segments overlap."""
    ctx_stats, match_prob, weights, apm, match_table = tab
    ctx = blk[4]
    cum, hashes, seg, x, slots, p_ctx = scr[0], scr[1], scr[2], scr[3], scr[4], scr[5]
    k = len(c0)
    slot_bits = _ilog2(len(ctx_stats) // N_ORDERS)
    drop = np.uint64(64 - slot_bits)
    for i in range(k):
        c = c0[i]
        seg[_C0, i] = c
        node = c - 1
        hi = cum[i, _HI[node]]
        n1 = hi - cum[i, _MID[node]]
        tot = hi - cum[i, _LO[node]]
        q = min(max((n1 << P_BITS) // tot, 32), (1 << P_BITS) - 32)
        x[i, 0] = STRETCH[q >> 4]
        cc = np.uint64(c) * _C0_PRIME
        for o in range(N_ORDERS):
            slots[i, o] = np.int64((hashes[i, o] ^ cc) >> drop) + (np.int64(o) << slot_bits)
    for i in range(k):
        for o in range(N_ORDERS):
            p_ctx[i, o] = ctx_stats[slots[i, o], 0]
    for i in range(k):
        c = seg[_C0, i]
        for o in range(N_ORDERS):
            x[i, 1 + o] = STRETCH[p_ctx[i, o] >> 4]
        # Match input: signed by the expected bit, while the byte agrees with it so far.
        eb = (seg[_EXPECTED, i] >> (7 - j)) & 1
        seg[_EBIT, i] = eb
        if seg[_AGREEING, i]:
            x[i, N_INPUTS - 2] = (2 * eb - 1) * STRETCH[match_prob[seg[_MBUCKET, i]] >> 4]
        else:
            x[i, N_INPUTS - 2] = 0
        x[i, N_INPUTS - 1] = 256
        ws = seg[_MIXSET, i] + c
        seg[_WSEL, i] = ws
        dot = 0
        for q in range(N_INPUTS):
            dot += x[i, q] * weights[ws, q]
        dot = min(max(dot >> 16, -STRETCH_MAX), STRETCH_MAX)
        seg[_P, i] = SQUASH[dot + STRETCH_MAX]
        # Refine: interpolate the table row of (previous byte, partial byte) at the logit.
        pos = dot + 2048  # 1 .. 4095
        seg[_AROW, i] = (np.int64(ctx[i] & np.uint64(0xFF)) << 8) | c
        seg[_AIDX, i] = pos >> 7
        seg[_AW, i] = pos & 127
    for i in range(k):
        ai, w = seg[_AIDX, i], seg[_AW, i]
        row = apm[seg[_AROW, i]]
        refined = (np.int64(row[ai]) * (128 - w) + np.int64(row[ai + 1]) * w) >> 7
        p_out[i] = min(max((seg[_P, i] + 3 * refined) >> 2, 1), (1 << P_BITS) - 1)


@_jit
def _update(bit, p_final, tab, scr) -> None:
    """Learn from the coded bits. Where m segments touched the same entry in this step,
    their updates are combined as one batch: the mixer's gradients are summed and divided
    by sqrt(m) (the mean learns too slowly when hundreds of segments share a weight set,
    the plain sum diverges), and a context counter moves as a count-based estimate does
    after m more observations. So sharing statistics across many segments does not
    multiply the learning rate. Every update is computed from the values before this
    step's updates, then summed."""
    ctx_stats, match_prob, weights, apm, match_table = tab
    seg, x, slots, p_ctx, delta = scr[2], scr[3], scr[4], scr[5], scr[6]
    mixcount, bucketcount, spending, byte_bits = scr[7], scr[8], scr[9], scr[10]
    k = len(bit)
    if len(spending):
        _account(bit, p_final, seg, x, p_ctx, spending, byte_bits)
    apm_flat = apm.reshape(-1)
    # Refinement stage: move the nearer interpolation point towards the outcome.
    for i in range(k):
        flat = seg[_AROW, i] * APM_KNOTS + seg[_AIDX, i] + (1 if seg[_AW, i] >= 64 else 0)
        seg[_AROW, i] = flat  # the row is not needed again this bit
        delta[i, 0] = ((bit[i] << P_BITS) - np.int64(apm_flat[flat])) >> APM_RATE
    for i in range(k):
        apm_flat[seg[_AROW, i]] += delta[i, 0]
    for i in range(k):
        f = seg[_AROW, i]
        apm_flat[f] = min(max(apm_flat[f], P_MIN), P_MAX)
    # Mixer: gradient step, damped by the square root of the segments sharing the set.
    for i in range(k):
        mixcount[seg[_WSEL, i]] += 1
    for i in range(k):
        ws = seg[_WSEL, i]
        err = (bit[i] << P_BITS) - seg[_P, i]
        root = ISQRT[mixcount[ws]]
        for q in range(N_INPUTS):
            weights[ws, q] += ((x[i, q] * err) >> MIX_SHIFT) // root
    for i in range(k):
        mixcount[seg[_WSEL, i]] = 0
    # Context statistics: count-based adaptation rates.
    for i in range(k):
        for o in range(N_ORDERS):
            delta[i, o] = ctx_stats[slots[i, o], 1]  # n_old
    for i in range(k):
        for o in range(N_ORDERS):
            ctx_stats[slots[i, o], 1] += 1
    for i in range(k):
        target = bit[i] << P_BITS
        for o in range(N_ORDERS):
            n_old = delta[i, o]
            visits = ctx_stats[slots[i, o], 1] - n_old
            # m observations move a count-n estimate by sum(target - p) / (n + m + 1.5).
            rate = RATE[min(n_old + visits - 1, COUNT_LIMIT)]
            delta[i, o] = ((target - p_ctx[i, o]) * rate) >> 16
    for i in range(k):
        for o in range(N_ORDERS):
            ctx_stats[slots[i, o], 0] += delta[i, o]
    for i in range(k):
        for o in range(N_ORDERS):
            s = slots[i, o]
            ctx_stats[s, 0] = min(max(ctx_stats[s, 0], P_MIN), P_MAX)
    # Match model: confidence per length bucket, while the byte agrees with the match.
    for i in range(k):
        if seg[_AGREEING, i]:
            bucketcount[seg[_MBUCKET, i]] += 1
    for i in range(k):
        if seg[_AGREEING, i]:
            b = seg[_MBUCKET, i]
            right = (1 if bit[i] == seg[_EBIT, i] else 0) << P_BITS
            delta[i, 0] = ((right - match_prob[b]) >> 6) // bucketcount[b]
    for i in range(k):
        if seg[_AGREEING, i]:
            match_prob[seg[_MBUCKET, i]] += delta[i, 0]
    for i in range(k):
        if seg[_AGREEING, i]:
            b = seg[_MBUCKET, i]
            match_prob[b] = min(max(match_prob[b], P_MIN), P_MAX)
            bucketcount[b] = 0
            if bit[i] != seg[_EBIT, i]:
                seg[_AGREEING, i] = 0


@_jit
def _account(bit, p_final, seg, x, p_ctx, spending, byte_bits) -> None:
    """Add this bit's ideal costs to the accounts (``-v`` only)."""
    for i in range(len(bit)):
        b = bit[i]
        spending[0] += _cost(SQUASH[x[i, 0] + STRETCH_MAX], b)
        for o in range(N_ORDERS):
            spending[1 + o] += _cost(p_ctx[i, o], b)
        spending[1 + N_ORDERS] += _cost(seg[_P, i], b)
        c = _cost(p_final[i], b)
        spending[2 + N_ORDERS] += c
        byte_bits[i] += c


@_jit
def _end_byte(byte, tab, blk, scr) -> None:
    match_table = tab[4]
    ints, starts, block, history, ctx, mptr, mlen = blk
    seg, spending, byte_bits = scr[2], scr[9], scr[10]
    k = len(byte)
    t = ints[1]
    if len(spending):
        base = N_ORDERS + 3
        spending[base] += k
        for i in range(k):
            if seg[_MATCHED, i]:
                spending[base + 1] += 1
                spending[base + 2] += byte_bits[i]
    for i in range(k):
        b = byte[i]
        block[starts[i] + t] = b
        if mlen[i] > 0 and seg[_EXPECTED, i] == b:
            mlen[i] = min(mlen[i] + 1, 65535)
            mptr[i] += 1
        else:
            mlen[i] = 0
            mptr[i] = -1
        ctx[i] = (ctx[i] << np.uint64(8)) | np.uint64(b)
    t += 1
    ints[1] = t
    if t >= MATCH_MIN:
        bits = np.uint64(64 - _ilog2(len(match_table)))
        keys = scr[4][:, 0]  # slots' first column is free until the next predict
        cand = scr[6][:, 0]
        for i in range(k):
            keys[i] = np.int64(((ctx[i] & _MATCH_MASK) * _PRIMES[5]) >> bits)
            cand[i] = match_table[keys[i]]
        # Segments without a match look one up before this step's contexts go in (else
        # each would find only the entry it is about to make for itself)...
        for i in range(k):
            if mlen[i] == 0 and cand[i] >= 0:
                mptr[i] = cand[i]
                mlen[i] = MATCH_MIN
        # ...then record where each context continues: the next byte's offset, which a
        # later lookup may use once that byte is coded.
        block_pos = ints[2]
        for i in range(k):
            nxt = block_pos + starts[i] + t
            if nxt > match_table[keys[i]]:
                match_table[keys[i]] = nxt


@_jit
def _code_byte(freqs, byte, probs, tab, blk, scr) -> None:
    """The encoder's whole step: begin, 8 predictions and updates with the known bits, end."""
    k = len(byte)
    _begin_byte(freqs, k, blk, scr)
    c0 = np.ones(k, dtype=np.int64)
    bit = np.empty(k, dtype=np.int64)
    for j in range(8):
        p_out = probs[j]
        _predict(j, c0, p_out, tab, blk, scr)
        for i in range(k):
            bit[i] = (byte[i] >> (7 - j)) & 1
        _update(bit, p_out, tab, scr)
        for i in range(k):
            c0[i] = (c0[i] << 1) | bit[i]
    _end_byte(byte, tab, blk, scr)


@_jit
def _ilog2(n) -> int:
    r = 0
    while (1 << (r + 1)) <= n:
        r += 1
    return r
