"""Learning the file while coding it: context statistics, a match model and an online
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

Everything is integer arithmetic in numpy, identical on every machine; the tables that
stand for exp/log are built from Python's ``decimal`` module, whose results are correctly
rounded everywhere. Statistics are shared by all lockstep segments and persist across the
blocks of a stream (the match model sees a 64 MiB window), so segments and blocks teach
each other. Updates that several segments make to one table entry in the same step are
summed (integer addition, so their order cannot matter).
"""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import numpy as np

ORDERS = (1, 2, 3, 4, 6)
TABLE_BITS = 21  # slots per context order
MATCH_BITS = 22  # slots of the match model's hash table
MATCH_MIN = 5  # context bytes a match must share to start
WINDOW = 64 << 20  # how far back the match model reaches
STRETCH_MAX = 2047  # logits in Q8, clamped to +-8
P_BITS = 16  # probabilities of bit == 1 in Q16
COUNT_LIMIT = 255
MIX_SHIFT = 13  # mixer learning rate: dw = x * err >> MIX_SHIFT (weights in Q16)
N_INPUTS = 3 + len(ORDERS)  # network, orders..., match, bias
APM_RATE = 6  # the final refinement stage adapts by 1/64 of its error


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
ISQRT = np.array([max(1, math.isqrt(i)) for i in range(1 << 16)], dtype=np.int64)
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
_ORDER_OFFSET = np.arange(len(ORDERS), dtype=np.int64) << TABLE_BITS


class Spending:
    """Where a stream's bits went, for ``-v``: the ideal code length, in bits, that each
    input alone, the mixer's output and the final (coded) probability would have spent on
    the bits of the mixed blocks, and how the final cost splits between bytes the match
    model predicted and the rest. Accounting only: floats are fine here, nothing is coded
    from them, and it costs nothing unless asked for.
    """

    INPUTS = ("network", *(f"order-{k}" for k in ORDERS), "mixer", "final")
    #: Layout of ``StreamState.spending``: INPUTS, then bytes, matched bytes, and the
    #: final bits spent on matched bytes.
    SIZE = len(INPUTS) + 3

    def __init__(self, totals: np.ndarray) -> None:
        self.totals = totals

    @property
    def bytes(self) -> int:
        return int(self.totals[len(self.INPUTS)])

    def bpb(self) -> dict[str, float]:
        """Bits per byte of each input, the mixer and the final stage."""
        n = max(self.bytes, 1)
        return {k: float(self.totals[i]) / n for i, k in enumerate(self.INPUTS)}

    def match(self) -> tuple[float, float, float]:
        """(share of bytes the match model predicted, final bpb on them, final bpb elsewhere)."""
        n, m, bits = (float(v) for v in self.totals[len(self.INPUTS) :])
        final = float(self.totals[len(self.INPUTS) - 1])
        return m / max(n, 1), bits / max(m, 1), (final - bits) / max(n - m, 1)


def _cost(p1: np.ndarray, bit: np.ndarray) -> np.ndarray:
    """Bits to code ``bit`` at P(1) = ``p1`` (Q16), for accounting."""
    p = np.where(bit == 1, p1, (1 << P_BITS) - p1).astype(np.float64)
    return -np.log2(np.maximum(p, 1) / (1 << P_BITS))


def _stretch(p: np.ndarray) -> np.ndarray:
    return STRETCH[p >> 4]


def _node_bounds() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each partial byte c0 = 1..255 (a 1 followed by the j bits known so far): the
    symbol range under it, and where its bit-1 half starts, as cumulative-sum indices."""
    c0 = np.arange(1, 256)
    depth = np.floor(np.log2(c0)).astype(np.int64)
    lo = (c0 - (1 << depth)) << (8 - depth)
    return lo, lo + (1 << (7 - depth)), lo + (1 << (8 - depth))


_LO, _MID, _HI = _node_bounds()


class StreamState:
    """Statistics that live for one stream: shared by its segments, carried across blocks."""

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
        size = 1 << TABLE_BITS
        self.prob = np.full(len(ORDERS) * size, 1 << (P_BITS - 1), dtype=np.int32)
        self.count = np.zeros(len(ORDERS) * size, dtype=np.int32)
        self.match_prob = np.full(64, 3 << (P_BITS - 2), dtype=np.int64)  # by length bucket
        self.weights = np.zeros((4 * 256, N_INPUTS), dtype=np.int64)
        # Start from the network's prediction: the other inputs are 0 (probability 1/2)
        # until their statistics have something to say, then count with these weights.
        self.weights[:, 0] = 1 << 16
        self.weights[:, 1 : 1 + len(ORDERS)] = 1 << 13
        self.weights[:, -2] = 1 << 15
        # Refinement of the mixer's output by order-1 context and partial byte: 33
        # interpolation points over the logit range, starting as the identity.
        knots = SQUASH[np.clip(np.arange(-16, 17) * 128, -STRETCH_MAX, STRETCH_MAX) + STRETCH_MAX]
        self.apm = np.tile(knots, (1 << 16, 1)).astype(np.int32)

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
            keys = ((ctx * _PRIMES[5]) >> np.uint64(64 - MATCH_BITS)).astype(np.int64)
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


class BlockCoder:
    """The per-block side of the adaptive model: segment layout and match-model state.

    The caller runs, for each step t, ``begin_byte`` with the network's frequencies, then
    for each bit ``p1 = predict(j)``, codes the bit, ``update(j, bit)``; then ``end_byte``.
    """

    def __init__(self, state: StreamState, n: int, segments: int) -> None:
        state.ensure_tables()
        self.st = state
        self.n, self.s = n, segments
        base, extra = n // segments, n % segments
        lengths = np.full(segments, base, dtype=np.int64)
        lengths[:extra] += 1
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.block_pos = state.history_base + len(state.history)  # stream offset of block
        self.block = np.zeros(n, dtype=np.uint8)
        self.t = 0  # steps completed
        self.ctx = np.zeros(segments, dtype=np.uint64)  # last 8 bytes of each segment
        self.mptr = np.full(segments, -1, dtype=np.int64)  # stream offset of predicted byte
        self.mlen = np.zeros(segments, dtype=np.int64)

    # ----------------------------------------------------------------- byte level
    def _known(self, pos: np.ndarray) -> np.ndarray:
        """Whether each stream offset has been coded already (by any segment)."""
        st = self.st
        off = pos - self.block_pos
        in_hist = (pos >= st.history_base) & (off < 0)
        seg = np.clip(np.searchsorted(self.starts, off, side="right") - 1, 0, self.s - 1)
        in_block = (off >= 0) & (off < self.n) & (off - self.starts[seg] < self.t)
        return in_hist | in_block

    def _byte_at(self, pos: np.ndarray) -> np.ndarray:
        """Bytes at known stream offsets (0 elsewhere)."""
        st = self.st
        off = pos - self.block_pos
        h = (
            st.history[np.clip(pos - st.history_base, 0, max(len(st.history) - 1, 0))]
            if len(st.history)
            else np.zeros(len(pos), dtype=np.uint8)
        )
        b = self.block[np.clip(off, 0, self.n - 1)]
        return np.where(off < 0, h, b).astype(np.int64)

    def _match_key(self, k: int) -> np.ndarray:
        mask = np.uint64((1 << (8 * MATCH_MIN)) - 1)
        h = (self.ctx[:k] & mask) * _PRIMES[5]
        return (h >> np.uint64(64 - MATCH_BITS)).astype(np.int64)

    def begin_byte(self, freqs: np.ndarray, k: int) -> None:
        """Prepare the inputs that stay fixed for the 8 bits of this step's byte."""
        self.k = k
        # Cumulative frequencies: the network's P(bit) at any node of the byte's binary
        # tree is a ratio of two range sums, computed in predict for the 8 nodes visited.
        self.cum = np.zeros((k, 257), dtype=np.int64)
        np.cumsum(freqs[:k], axis=1, out=self.cum[:, 1:])
        self.rows = np.arange(k)
        self.x = np.empty((k, N_INPUTS), dtype=np.int64)
        self.x[:, -1] = 256
        # Context hashes per order (segment-local history, as the network sees it).
        hashes = []
        for i, order in enumerate(ORDERS):
            mask = np.uint64((1 << (8 * order)) - 1)
            hashes.append(((self.ctx[:k] & mask) + np.uint64(order)) * _PRIMES[i])
        self.hashes = np.stack(hashes, axis=1)  # [k, orders] uint64
        # Match model: the match continued or found in end_byte, if its byte is known.
        mlen, mptr = self.mlen[:k], self.mptr[:k]
        live = (mlen > 0) & self._known(mptr)
        mlen[~live] = 0
        self.expected = np.where(live, self._byte_at(mptr), 0)
        self.agreeing = mlen > 0
        if self.st.spending is not None:  # accounting only (-v)
            self.matched = mlen > 0
            self.byte_bits = np.zeros(k)
        self.mbucket = np.minimum(mlen, 15) + 16 * (mlen > 0)
        self.mixset = np.minimum((mlen + 7) // 8, 3) * 256

    def end_byte(self, byte: np.ndarray) -> None:
        """Record this step's bytes ([k]) and advance the match state."""
        k = self.k
        if self.st.spending is not None:
            acc, base = self.st.spending, len(Spending.INPUTS)
            acc[base] += k
            acc[base + 1] += np.count_nonzero(self.matched)
            acc[base + 2] += self.byte_bits[self.matched].sum()
        self.block[self.starts[:k] + self.t] = byte
        hit = (self.mlen[:k] > 0) & (self.expected == byte)
        self.mlen[:k] = np.where(hit, np.minimum(self.mlen[:k] + 1, 65535), 0)
        self.mptr[:k] = np.where(hit, self.mptr[:k] + 1, -1)
        self.ctx[:k] = (self.ctx[:k] << np.uint64(8)) | byte.astype(np.uint64)
        self.t += 1
        if self.t >= MATCH_MIN:
            key = self._match_key(k)
            # Segments without a match look one up before this step's contexts go in
            # (else each would find only the entry it is about to make for itself)...
            look = self.mlen[:k] == 0
            cand = self.st.match_table[key]
            found = look & (cand >= 0)
            self.mptr[:k][found] = cand[found]
            self.mlen[:k][found] = MATCH_MIN
            # ...then record where each context continues: the next byte's offset, which
            # a later lookup may use once that byte is coded.
            nxt = self.block_pos + self.starts[:k] + self.t
            np.maximum.at(self.st.match_table, key, nxt)

    # ----------------------------------------------------------------- bit level
    def predict(self, j: int, c0: np.ndarray) -> np.ndarray:
        """P(bit j == 1) in Q16 for each active segment; ``c0`` = 1 followed by the bits so far."""
        st, x = self.st, self.x
        node = c0 - 1
        hi = self.cum[self.rows, _HI[node]]
        n1 = hi - self.cum[self.rows, _MID[node]]
        tot = hi - self.cum[self.rows, _LO[node]]
        x[:, 0] = _stretch(np.minimum(np.maximum((n1 << P_BITS) // tot, 32), (1 << P_BITS) - 32))
        slot = (self.hashes ^ (c0.astype(np.uint64) * _C0_PRIME)[:, None]) >> np.uint64(
            64 - TABLE_BITS
        )
        self.slots = (slot.astype(np.int64) + _ORDER_OFFSET).ravel()
        self.p_ctx = st.prob[self.slots]
        x[:, 1 : 1 + len(ORDERS)] = _stretch(self.p_ctx).reshape(self.k, -1)
        # Match input: signed by the expected bit, while the byte agrees with it so far.
        self.ebit = (self.expected >> (7 - j)) & 1
        self.agree = np.flatnonzero(self.agreeing)
        x[:, -2] = 0
        if len(self.agree):
            a = self.agree
            x[a, -2] = (2 * self.ebit[a] - 1) * _stretch(st.match_prob[self.mbucket[a]])
        self.wsel = self.mixset + c0
        dot = (x * st.weights[self.wsel]).sum(axis=1) >> 16
        dot = np.minimum(np.maximum(dot, -STRETCH_MAX), STRETCH_MAX)
        self.p = SQUASH[dot + STRETCH_MAX]
        # Refine: interpolate the table row of (previous byte, partial byte) at the logit.
        pos = dot + 2048  # 1 .. 4095
        self.arow = ((self.ctx[: self.k] & np.uint64(0xFF)).astype(np.int64) << 8) | c0
        self.aidx, w = pos >> 7, pos & 127
        lo = st.apm[self.arow, self.aidx].astype(np.int64)
        hi = st.apm[self.arow, self.aidx + 1].astype(np.int64)
        refined = (lo * (128 - w) + hi * w) >> 7
        self.p_final = np.minimum(np.maximum((self.p + 3 * refined) >> 2, 1), (1 << P_BITS) - 1)
        self.aw = w
        return self.p_final

    def update(self, bit: np.ndarray) -> None:
        """Learn from the coded bits ([k] of 0/1).

        Where m segments touched the same entry in this step, their updates are combined
        as one batch: the mixer's gradients are summed and divided by sqrt(m) (the mean
        learns too slowly when hundreds of segments share a weight set, the plain sum
        diverges), and a context counter moves as a count-based estimate does after m
        more observations. So sharing statistics across many segments does not multiply
        the learning rate.
        """
        st = self.st
        if st.spending is not None:
            self._account(bit)
        target = bit.astype(np.int64) << P_BITS
        err = target - self.p
        # Move the refinement's nearer interpolation point towards the outcome.
        flat = self.arow * 33 + self.aidx + (self.aw >= 64)
        apm = st.apm.reshape(-1)
        _add_clipped(apm, flat, (target - apm[flat]) >> APM_RATE)
        mult = np.bincount(self.wsel, minlength=len(st.weights))[self.wsel]
        grad = ((self.x * err[:, None]) >> MIX_SHIFT) // ISQRT[mult][:, None]
        flat = (self.wsel[:, None] * N_INPUTS + np.arange(N_INPUTS)).ravel()
        np.add.at(st.weights.reshape(-1), flat, grad.ravel())
        slots = self.slots
        n_old = st.count[slots]
        np.add.at(st.count, slots, np.ones(len(slots), dtype=st.count.dtype))
        visits = st.count[slots] - n_old
        # A batch of m observations moves a count-n estimate by sum(target - p) / (n + m + 1.5).
        rate = RATE[np.minimum(n_old + visits - 1, COUNT_LIMIT)]
        delta = ((target[:, None] - self.p_ctx.reshape(self.k, -1)).ravel() * rate) >> 16
        _add_clipped(st.prob, slots, delta)
        if len(self.agree):
            a = self.agree
            b = self.mbucket[a]
            right = (bit[a] == self.ebit[a]).astype(np.int64) << P_BITS
            m = np.bincount(b, minlength=len(st.match_prob))[b]
            _add_clipped(st.match_prob, b, ((right - st.match_prob[b]) >> 6) // m)
            self.agreeing &= bit == self.ebit

    def _account(self, bit: np.ndarray) -> None:
        acc = self.st.spending
        assert acc is not None
        n_ord = len(ORDERS)
        acc[0] += _cost(SQUASH[self.x[:, 0] + STRETCH_MAX], bit).sum()
        p_ctx = self.p_ctx.reshape(self.k, n_ord).astype(np.int64)
        acc[1 : 1 + n_ord] += _cost(p_ctx, bit[:, None]).sum(axis=0)
        acc[1 + n_ord] += _cost(self.p, bit).sum()
        final = _cost(self.p_final, bit)
        acc[2 + n_ord] += final.sum()
        self.byte_bits += final


def _add_clipped(table: np.ndarray, idx: np.ndarray, delta: np.ndarray) -> None:
    """``table[idx] += delta`` with repeated indices summed (integer sums, so the order in
    which segments' updates land cannot matter), then clipped to the probability range."""
    np.add.at(table, idx, delta.astype(table.dtype))  # same dtype: numpy's fast path
    table[idx] = np.minimum(np.maximum(table[idx], 32), (1 << P_BITS) - 32)
