"""Learning the file while coding it: context statistics, a match model and online mixers,
combined with the network bit by bit (docs/DESIGN.md, section 4). One generic
coder for every configuration: which contexts it hashes (``contexts.py``), how large its
tables are and how fast its mixers learn come from the stream's ``config.Config``.

Each byte is coded as 8 binary decisions, most significant bit first. For each decision the
inputs are, in the logit ("stretch") domain:

* the network's probability of the bit, from its 256 frequencies (one cumulative sum per
  byte gives every node of the binary tree);
* one hashed table of bit probabilities per context of the configuration, adapted after
  every bit (the default configuration: orders 1, 2, 3, 4, 6 and 8, three word contexts,
  two column contexts, and six for code and tables; ``contexts.py`` says what each hashes).
  Each slot carries a check tag of its context, so a slot that another context hashed to
  predicts as an empty one instead of passing on that context's statistics. With bit
  histories (``Config.histories``, ``--max``) each slot also keeps its last outcomes, and
  the context's input is the mean of its slot's logit and of what that history has been
  followed by in the stream (``_train_histories``);
* a match model: the byte that followed an earlier occurrence of the current context, as
  two inputs: a confidence learned per match-length class, and one that grows with the
  length. Segments without a match also try the distance of their neighbour's long match,
  or the stream's latest long-match distance, so a long repeat is picked up by every
  segment that runs through it, and by each segment's first bytes in the next block;

then three gated linear mixers, with weight sets chosen by the partial byte and the match
state; by how many of the configuration's contexts of order 2 to 8 have been seen before,
the match state and the network's confidence; and by the previous byte and the bit
position; and the configuration's extra mixers, by contexts of their own
(``contexts.mixer_select``: the kinds of the last bytes, the word, the last byte, the
match model's expected byte; in a 1-bit bitmap, the pixels around). Each is trained on
its own error, at its own rate. A final mixer of them all, with weights chosen by the
partial byte, feeds two refinement stages (paq's APM), chosen by the previous byte and by
the last two bytes, each with the partial byte, averaged with the mixers' output.

Everything is integer arithmetic, identical on every machine; the tables that stand for
exp/log are built from Python's ``decimal`` module, whose results are correctly rounded
everywhere. Statistics are shared by all lockstep segments and persist across the blocks
of a frame (the match model sees a 64 MiB window), so segments and blocks teach each
other. Within one step of a group of segments (a block's segments form two groups, coded
one after the other) every segment predicts from the statistics
as they were before the step, and the updates are then combined (summed, or claimed in
segment order), so the batch of a step is one well-defined computation.

The per-bit work runs in loops compiled by numba: in numpy it took some thirty array
operations per bit, each a pass over all segments, and cost more than the network itself.
"""

from __future__ import annotations

from decimal import Decimal, getcontext
from typing import Any

import numpy as np

from . import jit as _compiled
from .config import DEFAULT, MAX_MIXERS, Config
from .contexts import (
    BIT_PIXELS,
    BIT_PIXELS_5,
    MIX_PIXELS,
    MIX_PIXELS_NEAR,
    MIXER_SETS,
    PRIMES,
    SEEN_KINDS,
    bit_hash,
    context_hash,
    mixer_select,
    pixel_rows,
)
from .jit import entry, jit
from .rangecoder import BitDecoder, BitEncoder, code_step_bits

#: The SHA-256 of contexts.py (with LF line ends), whose ``context_hash`` and constants
#: numba compiles into this module's loops. numba's cache keeps a loop until *this* file
#: changes, not when contexts.py does, so after a change there (an upgrade, a pull) the old
#: hashes would run on, writing archives no other machine decodes. Writing the new digest
#: here changes this file; ``tests/test_coder.py`` checks that it is current.
CONTEXTS_SHA256 = "faccfe0e6b9219bf433e3346277fea2e67d822b9d09b0174b77f5d6a8ee55cf8"
SEED_LEN = 16  # a match this long lends its distance to the next segment
REP_LEN = 32  # a match this long sets the stream's repeat distance
WINDOW = 64 << 20  # how far back the match model reaches
OTHER_PIECE = 1 << 20  # add_other_block's working size
STRETCH_MAX = 2047  # logits in Q8, clamped to +-8
P_BITS = 16  # probabilities of bit == 1 in Q16
COUNT_LIMIT = 1023  # counts beyond this adapt at the same (slowest) rate
COUNT_CAP = 60000  # counts saturate here (16 bits beside the slot's check tag)
MIX_SETS = 4 * 256  # weight sets: match-length class x partial byte
MIX3_SETS = 256 * 8  # third mixer: previous byte x bit position
FINAL_SETS = 256  # final mixer of the three: partial byte
APM_KNOTS = 33  # interpolation points of each refinement curve
HIST_STATES = 256  # bit histories (Config.histories): a 1, then the last outcomes (up to 7)
HIST_LIMIT = 255  # a history's estimate adapts at least this fast (1/256 of its error)
PRIME_TABLE_SHARE = 4  # version 3 primes size the tables for 1/4 of their bytes
P_MIN, P_MAX = 32, (1 << P_BITS) - 32  # adaptive probabilities stay inside this range
#: With ``Config.fine``: the refinement curves in Q(16 + FINE_Q), within 1/65536 of 0 and 1.
#: In Q16, an update of error >> apm_rate stops 2^apm_rate short of 1 (the shift rounds
#: down), 1/1000 of a bit or more for each bit of a page of white or a run of equal bytes.
FINE_Q = 6
#: ...where they are clamped to 1/65536 .. 65535/65536 (P_MIN .. P_MAX in Q16 without it).
FINE_LOW, FINE_HIGH = 1 << FINE_Q, ((1 << P_BITS) - 1) << FINE_Q
HALF = 1 << (P_BITS - 1)


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
    # A count-n estimate moves by 1/(n + 1.3) of its error: after one observation a slot
    # says 0.88 for what it saw (1.5 said 0.83; -0.3% on small source files).
    rate = np.array([int(65536 / (n + 1.3)) for n in range(COUNT_LIMIT + 1)], dtype=np.int64)
    return squash, stretch, rate


SQUASH, STRETCH, RATE = _luts()
#: The refinement curves' starting points, the identity: the squashed logits -2048, -1920,
#: ..., 2048 (clamped). The tables hold each point's difference from these, so that an
#: unused row is zeros, memory the system hands out lazily (a small input touches a few
#: of the 65,536 rows of each stage, not all 17 MB).
APM_IDENTITY = SQUASH[
    np.clip(np.arange(-16, 17) * 128, -STRETCH_MAX, STRETCH_MAX) + STRETCH_MAX
].astype(np.int64)
#: Shifts that divide by about sqrt(m), for the m segments sharing a mixer weight set in
#: one step: up to a group of the most segments a block may have (``format.
#: MAX_WIDE_SEGMENTS``, 16,384, in two groups; a test holds the two together).
SQRT_SHIFT = np.array([i.bit_length() // 2 for i in range((1 << 13) + 1)], dtype=np.int64)
_PRIMES = PRIMES
_C0_PRIME = np.uint64(0x2545F4914F6CDD1D)
#: ``Config.warmup``: a weight set's error is multiplied by (256 + WARMUP_BONUS // (n +
#: 16)) / 256 after n updates, so that it starts three times as fast and reaches its rate
#: once n + 16 exceeds WARMUP_BONUS (its count stops there).
WARMUP_BONUS = 512 * 16
WARMUP_END = WARMUP_BONUS - 15


def _node_bounds() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each partial byte c0 = 1..255 (a 1 followed by the j bits known so far): the
    symbol range under it, and where its bit-1 half starts, as cumulative-sum indices."""
    c0 = np.arange(1, 256)
    depth = np.floor(np.log2(c0)).astype(np.int64)
    lo = (c0 - (1 << depth)) << (8 - depth)
    return lo, lo + (1 << (7 - depth)), lo + (1 << (8 - depth))


_LO, _MID, _HI = _node_bounds()


class Spending:
    """Where a stream's bits went, for ``-v``: the ideal code length, in bits, that each
    input alone, the mixer's output and the final (coded) probability would have spent on
    the bits of the mixed blocks, and how the final cost splits between bytes the match
    model predicted and the rest. Accounting only: floats are fine here, nothing is coded
    from them, and it costs nothing unless asked for.
    """

    def __init__(self, totals: np.ndarray, names: list[str]) -> None:
        #: The inputs: the network, the configuration's contexts, the mixer, the final stage.
        self.inputs = ["network", *names, "mixer", "final"]
        #: Layout of ``totals``: the inputs, then bytes, matched bytes, and the final bits
        #: spent on matched bytes.
        self.totals = totals

    @staticmethod
    def size(n_contexts: int) -> int:
        return n_contexts + 6

    @property
    def bytes(self) -> int:
        return int(self.totals[len(self.inputs)])

    def bpb(self) -> dict[str, float]:
        """Bits per byte of each input, the mixer and the final stage."""
        n = max(self.bytes, 1)
        return {k: float(self.totals[i]) / n for i, k in enumerate(self.inputs)}

    def match(self) -> tuple[float, float, float]:
        """(share of bytes the match model predicted, final bpb on them, final bpb elsewhere)."""
        n, m, bits = (float(v) for v in self.totals[len(self.inputs) :])
        final = float(self.totals[len(self.inputs) - 1])
        return m / max(n, 1), bits / max(m, 1), (final - bits) / max(n - m, 1)


class StreamState:
    """Statistics that live for one stream: shared by its segments, carried across blocks."""

    def __init__(
        self, config: Config = DEFAULT, block_size: int = 1 << 20, account: bool = False
    ) -> None:
        self.config = config
        self.history = np.zeros(0, dtype=np.uint8)  # the last WINDOW bytes before this block
        self.history_base = 0  # stream offset of history[0]
        self.rep_dist = 0  # distance of the latest long match (0: none yet)
        self.block_size = block_size
        self.table_bits, self.match_bits = table_bits(block_size, config)
        self.ready = False
        #: Whether the model's prime has been learned (``coder.prime_state``; models
        #: without a prime count as primed from the start).
        self.primed = False
        # Bit accounting (Spending) when asked for; an array, so that snapshot/restore
        # drop the accounts of a block the encoder did not keep.
        self.spending = np.zeros(Spending.size(len(config.contexts))) if account else None
        #: The tables as a device holds them between the stream's blocks (a
        #: ``torchmix.DeviceTables``, left by ``coder``), newer there than in the arrays:
        #: ``settle`` takes them back. None: the arrays are the statistics.
        self.resident: Any = None

    def settle(self) -> None:
        """Take back the tables a device holds (``resident``): what they learnt is written
        to the arrays, which are the stream's statistics again. A device keeps them from
        one block to the next, where copying them there and back would cost their size
        (hundreds of MB) twice a block; so whatever else reads or writes the arrays (the
        compiled loops, a copy of the state, another method's block) calls this first."""
        resident, self.resident = self.resident, None
        if resident is not None:
            resident.write_back(self)

    def spent(self) -> Spending | None:
        """The accounts of the mixed blocks so far (None unless asked for)."""
        if self.spending is None:
            return None
        return Spending(self.spending.copy(), self.config.names)

    def make_room_for_prime(self, prime_len: int) -> None:
        """Size the tables for the larger of the stream's block size and a quarter of a
        prime of ``prime_len`` bytes, before the prime is learned (primed models of file
        format version 3), so that small files keep what a prime taught. The context
        tables are not allocated yet at that point (the prime comes before a frame's first
        mixed block); the match table keeps its size if blocks of other methods already
        filled it. A quarter rather than all of it: on one-line log records primed with
        256 KiB, tables for the whole prime gained little over a quarter's, at four times
        the memory."""
        assert not self.ready, "the prime comes before the first mixed block"
        room = max(self.block_size, prime_len // PRIME_TABLE_SHARE)
        tb, mb = table_bits(room, self.config)
        self.table_bits = tb
        if not hasattr(self, "match_table"):
            self.match_bits = mb

    def ensure_match_table(self) -> None:
        if not hasattr(self, "match_table"):
            # Stream offset + 1 of the byte after each hashed context (0: none), so that a
            # new table is all zeros: memory the system hands out lazily.
            self.match_table = np.zeros(1 << self.match_bits, dtype=np.int64)

    def ensure_tables(self) -> None:
        """Allocate the statistics on first use (about 340 MB for blocks of 256 KiB or more,
        less for streams of smaller blocks), not for streams that never use the mixed
        method."""
        self.ensure_match_table()
        if self.ready:
            return
        self.ready = True
        # Each slot's probability (Q16) and observation count side by side: one cache
        # line serves the prediction and the update.
        # The probability is stored as its difference from 1/2, so that an empty slot
        # is all zeros (an allocation the system hands out lazily, page by page).
        cfg = self.config
        n_ctx = len(cfg.contexts)
        self.ctx_stats = np.zeros((n_ctx << self.table_bits, 2), dtype=np.int32)
        # The match model's confidence by length bucket, with its observation count.
        self.match_prob = np.zeros((64, 2), dtype=np.int64)
        self.match_prob[:, 0] = 3 << (P_BITS - 2)
        self.weights = np.zeros((MIX_SETS, n_ctx + 4), dtype=np.int64)
        # Start from 3/4 of the network's prediction: the other inputs are 0 (probability
        # 1/2) until their statistics have something to say, then count with these
        # weights. Measured on small files: the full network weighs too much at the start
        # of data it was never trained on (a set of small C files and paper1: 1/2 is 0.8%
        # smaller, 3/4 0.5%), half of it too little where it is good (records of 1.5 KB
        # from held-out logs, JSON, CSV, XML and licence text: 1/2 is 1.9% larger, 3/4 0.1%).
        self.weights[:, 0] = cfg.network_weight
        self.weights[:, 1 : 1 + n_ctx] = 1 << 13
        self.weights[:, -3] = 1 << 15
        # The second mixer's sets: how many of the counted contexts (contexts.SEEN_KINDS)
        # have been seen before x match class x the network's confidence (8 classes).
        self.weights2 = np.tile(self.weights[:1], (mix2_sets(cfg), 1))
        self.weights3 = np.tile(self.weights[:1], (MIX3_SETS, 1))
        # The configuration's extra mixers (``Config.mixers``), their weight sets one
        # table after another, starting as the others do.
        self.weights_x = np.tile(self.weights[:1], (sum(mixer_sets(cfg)), 1))
        # The final mixer starts from the mean of its inputs (21845: 1/3 each).
        n_mix = 3 + len(cfg.mixers)
        self.weights_final = np.full((FINAL_SETS, n_mix), 65536 // n_mix, dtype=np.int64)
        # Refinement of the mixers' output by order-1 context and partial byte, and by a
        # hash of the order-2 context and partial byte: 33 interpolation points over the
        # logit range each, starting as the identity (stored as differences from
        # APM_IDENTITY, so zeros).
        self.apm = np.zeros((1 << 16, APM_KNOTS), dtype=np.int32)
        self.apm2 = np.zeros((1 << 16, APM_KNOTS), dtype=np.int32)
        # Bit histories (``Config.histories``; empty arrays without them): each context
        # slot's last outcomes, and per context kind what each history has been followed
        # by (the estimate as a difference from 1/2, Q16, and its observation count).
        n_hist = n_ctx if cfg.histories else 0
        self.ctx_hist = np.zeros(len(self.ctx_stats) if n_hist else 0, dtype=np.uint8)
        self.hist_map = np.zeros((n_hist * HIST_STATES, 2), dtype=np.int32)
        # The mixers' warm-up (``Config.warmup``; empty without it): each weight set's
        # updates so far, the three mixers', the extra ones' and the final one's in turn.
        sets = MIX_SETS + mix2_sets(cfg) + MIX3_SETS + sum(mixer_sets(cfg)) + FINAL_SETS
        self.mixer_n = np.zeros(sets if cfg.warmup else 0, dtype=np.int64)

    def block_coder(self, n: int, segments: int, record: int = 0) -> BlockCoder:
        """The coder of a block whose segments form one group (a block of one segment)."""
        return self.block_coders(n, segments, [(0, segments)], record)[0]

    def block_coders(
        self, n: int, segments: int, groups: list[tuple[int, int]], record: int = 0
    ) -> list[BlockCoder]:
        """One coder per group of segments ``[lo, hi)`` of a block (``format.segment_groups``: two
        groups, coded one after the other at each step). The groups share the block's
        bytes and the stream's statistics; ``record``: the block's record length (0: none),
        read by the record contexts."""
        shared = _BlockShared(self, n, segments, record)
        return [BlockCoder(self, shared, lo, hi) for lo, hi in groups]

    def snapshot(self) -> dict[str, np.ndarray | int]:
        self.settle()
        return copy_snapshot(vars(self))

    def restore(self, snap: dict[str, np.ndarray | int]) -> None:
        """Become the state ``snap`` was taken of (tables allocated since are dropped)."""
        self.__dict__.clear()
        self.__dict__.update(snap)

    def add_other_block(self, data: bytes) -> None:
        """A block coded by another method (stored, LZMA, network alone): index every
        ``Config.match_min``-byte context in it for the match model, as the mixed coder does while
        coding, then add it to the window. Works through the block in pieces of
        ``OTHER_PIECE`` bytes, so that its memory does not grow with the block: a 256 MiB
        block of zeros from a 40 KB archive costs no more here than a 1 MiB one."""
        self.settle()
        self.ensure_match_table()
        view = memoryview(data)
        # A context ends at each byte from the block's m-th on; piece by piece, each
        # piece's contexts reach back m - 1 bytes into the piece before.
        m = self.config.match_min
        for lo in range(0, max(len(data) - m + 1, 0), OTHER_PIECE):
            hi = min(lo + OTHER_PIECE, len(data) - m + 1)
            self._index_contexts(view[lo : hi + m - 1], lo)
        self.append_history(data)

    def _index_contexts(self, piece: memoryview, offset: int) -> None:
        """Index the contexts that end in ``piece`` (which starts ``offset`` bytes into the
        block being added): the match table's slot for each remembers the stream offset
        + 1 of the byte after it."""
        m = self.config.match_min
        arr = np.frombuffer(piece, dtype=np.uint8).astype(np.uint64)
        ctx = np.zeros(len(arr) - m + 1, dtype=np.uint64)
        for i in range(m):  # byte p - i lands in bits 8i..8i+7, as in BlockCoder.ctx
            ctx |= arr[m - 1 - i : len(arr) - i] << np.uint64(8 * i)
        bits = np.uint64(64 - self.match_bits)
        keys = ((ctx * _PRIMES[5]) >> bits).astype(np.int64)
        block_pos = self.history_base + len(self.history) + offset
        nxt = block_pos + np.arange(m, len(arr) + 1, dtype=np.int64)
        np.maximum.at(self.match_table, keys, nxt + 1)

    def append_history(self, data: bytes) -> None:
        """Add a finished block to the window the match model searches (only its last
        WINDOW bytes are copied)."""
        tail = np.frombuffer(data, dtype=np.uint8)[-WINDOW:]
        gone = len(data) - len(tail)  # bytes of the block that fall out of the window
        keep = self.history[max(0, len(self.history) + len(tail) - WINDOW) :]
        self.history_base += len(self.history) - len(keep) + gone
        self.history = np.concatenate([keep, tail])


def copy_snapshot(snap: dict[str, Any]) -> dict[str, Any]:
    """A copy of a snapshot's arrays (``StreamState.restore`` takes a snapshot's arrays as
    they are, and a coding from it then changes them): for a snapshot restored more than
    once."""
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in snap.items()}


def mix2_sets(config: Config) -> int:
    return (sum(k in SEEN_KINDS for k in config.contexts) + 1) * 4 * 8


def mixer_sets(config: Config) -> list[int]:
    """The weight sets of each of the configuration's extra mixers."""
    return [MIXER_SETS[k] for k in config.mixers]


def table_bits(block_size: int, config: Config) -> tuple[int, int]:
    """Size of a stream's context and match tables (log2 of their slots), from the block
    size in its header: a byte touches 8 slots per context, so a stream of small blocks
    (a small file is one block of its own size) gets small tables, which cost less to set
    up than the data costs to code."""
    need = max(1, block_size - 1).bit_length()
    return min(config.table_bits, max(12, need + 3)), min(config.match_bits, max(12, need + 2))


class _BlockShared:
    """What the segment groups of one block share: its layout, its bytes, how many bytes
    each segment has coded (the match model reads only those), and its integers: n, the
    stream offset of the block, the history's base, the latest long-match distance."""

    def __init__(self, state: StreamState, n: int, segments: int, record: int = 0) -> None:
        self.record = record
        base, extra = n // segments, n % segments
        lengths = np.full(segments, base, dtype=np.int64)
        lengths[:extra] += 1
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        self.ints = np.array(
            [n, state.history_base + len(state.history), state.history_base, state.rep_dist]
        )
        self.block = np.zeros(n, dtype=np.uint8)
        self.done = np.zeros(segments, dtype=np.int64)


class BlockCoder:
    """The per-block side of the adaptive model for one group of segments: their match
    state, contexts and scratch.

    Per step the caller hands over the network's frequencies for the group: the encoder
    with the step's bytes and its range encoder (``code_byte``), the decoder with its
    range decoder (``decode_byte``). Inside, each bit is predicted for every active
    segment, coded, and learnt from before the next (``_begin_byte``, ``_predict``,
    ``_update``, ``_end_byte``), all in one compiled call (``_code_byte``). ``finish``
    hands what outlives the block back to the stream.
    """

    def __init__(self, state: StreamState, shared: _BlockShared, lo: int, hi: int) -> None:
        state.ensure_tables()
        self.st = state
        self.sh = shared
        segments = hi - lo
        self.n, self.s = int(shared.ints[0]), segments
        self.starts = shared.starts[lo:hi]
        self.done = shared.done[lo:hi]
        self.ints = shared.ints
        self.block = shared.block
        self.ctx = np.zeros(segments, dtype=np.uint64)  # last 8 bytes of each segment
        self.mptr = np.full(segments, -1, dtype=np.int64)  # stream offset of predicted byte
        self.mlen = np.zeros(segments, dtype=np.int64)
        self.mseed = np.zeros(segments, dtype=np.int64)  # whether a match came from seeding
        if state.rep_dist > 0:  # each segment's first byte: try the latest long match distance
            self.mptr[:] = self.ints[1] + self.starts - state.rep_dist
            self.mlen[:] = 1
            self.mseed[:] = 1
        self.words = np.zeros((3, segments), dtype=np.uint64)  # current word, two before
        # Per segment: column, block offset of the current line's start, and of the
        # previous line's start (-1: none in this segment), the line's indentation, the
        # block's record length (0: none) and the segment's start.
        self.lines = np.zeros((6, segments), dtype=np.int64)
        self.lines[1] = self.starts
        self.lines[2] = -1
        self.lines[4] = shared.record
        self.lines[5] = self.starts
        # Per-segment scratch: cumulative frequencies, hashes, byte and bit state.
        self.cum = np.zeros((segments, 257), dtype=np.int64)
        cfg = state.config
        n_ctx = len(cfg.contexts)
        self.kinds = np.array(cfg.contexts, dtype=np.int64)
        self.seen_kind = np.array([k in SEEN_KINDS for k in cfg.contexts], dtype=np.int64)
        self.params = np.zeros(_N_PARAMS, dtype=np.int64)
        self.params[_MIX_SHIFT : _MIX_SHIFT + 3] = cfg.mix_shifts
        self.params[_FINAL_SHIFT] = cfg.final_shift
        self.params[_APM_RATE] = cfg.apm_rate
        self.params[_MATCH_PROBES] = cfg.match_probes
        self.params[_MATCH_LEN] = cfg.match_min
        self.params[_WAYS] = cfg.slot_ways
        self.params[_FINE] = cfg.fine
        self.params[_SEG_LO] = lo  # the block's index of the group's first segment
        self.hashes = np.zeros((segments, n_ctx), dtype=np.uint64)
        self.seg = np.zeros((_SEG_FIELDS, segments), dtype=np.int64)
        self.x = np.zeros((segments, n_ctx + 4), dtype=np.int64)
        # Each context's bit history this bit, as its row of StreamState.hist_map.
        self.hidx = np.zeros((segments, n_ctx if cfg.histories else 0), dtype=np.int64)
        self.slots = np.zeros((segments, n_ctx), dtype=np.int64)
        self.p_ctx = np.zeros((segments, n_ctx), dtype=np.int64)
        self.delta = np.zeros((segments, n_ctx), dtype=np.int64)
        self.ctx_tag = np.zeros((segments, n_ctx), dtype=np.int64)
        self.ctx_n = np.zeros((segments, n_ctx), dtype=np.int64)
        sets = mixer_sets(cfg)
        self.mixer_kinds = np.array(cfg.mixers, dtype=np.int64)
        self.mixer_base = np.zeros(len(sets), dtype=np.int64)  # each one's first row
        self.mixer_base[1:] = np.cumsum(sets)[:-1]
        most = max(MIX_SETS, mix2_sets(cfg), MIX3_SETS, sum(sets))
        self.mixcount = np.zeros(most, dtype=np.int64)
        self.bucketcount = np.zeros(len(state.match_prob), dtype=np.int64)
        account = state.spending is not None
        self.spending = state.spending if account else np.zeros(0)
        self.byte_bits = np.zeros(segments if account else 0)
        self.k = 0
        # The loops' arguments, made once for the block (jit.args: checked once, not per
        # call, where the ahead-of-time module runs).
        self._tab = _compiled.args(*self._tables())
        self._blk = _compiled.args(*self._block())
        self._scr = _compiled.args(*self._scratch())

    @property
    def t(self) -> int:
        """Steps completed."""
        return int(self.done[0])

    def _tables(self) -> tuple:
        st = self.st
        return (
            st.ctx_stats,
            st.match_prob,
            st.weights,
            st.apm,
            st.match_table,
            st.weights2,
            st.weights3,
            st.weights_final,
            st.apm2,
            st.weights_x,
            st.ctx_hist,
            st.hist_map,
            st.mixer_n,
        )

    def _block(self) -> tuple:
        return (
            self.ints,
            self.starts,
            self.block,
            self.st.history,
            self.ctx,
            self.mptr,
            self.mlen,
            self.words,
            self.mseed,
            self.lines,
            self.sh.starts,
            self.sh.done,
            self.done,
        )

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
            self.ctx_tag,
            self.ctx_n,
            self.kinds,
            self.params,
            self.seen_kind,
            self.mixer_kinds,
            self.mixer_base,
            self.hidx,
        )

    def finish(self) -> None:
        """The block is done: keep its latest long-match distance for the next block."""
        self.st.rep_dist = int(self.ints[3])

    def code_byte(self, freqs: np.ndarray, byte: np.ndarray, enc: BitEncoder) -> None:
        """Encoder's step: everything for the known bytes ``byte`` ([k]), their bits coded
        by ``enc``."""
        self.k = len(byte)
        enc.reserve(8 * self.k)
        _code_byte(freqs, byte, False, enc.state, enc.out, self._tab, self._blk, self._scr)

    def code_steps(
        self, freqs: np.ndarray, src: np.ndarray, dst: np.ndarray, t0: int, t1: int, enc: BitEncoder
    ) -> None:
        """Encoder's steps ``t0 .. t1 - 1`` of a one-segment block without the network
        (``freqs`` flat), the bytes read from ``src`` and copied to ``dst``."""
        self.k = 1
        enc.reserve(8 * (t1 - t0))
        _code_steps(freqs, src, dst, t0, t1, False, enc.state, enc.out, *self._args)

    def decode_steps(
        self, freqs: np.ndarray, dst: np.ndarray, t0: int, t1: int, dec: BitDecoder
    ) -> None:
        """Decoder's ``code_steps``: the bytes into ``dst``. Raises ValueError on words
        that no encoder wrote."""
        self.k = 1
        if _code_steps(freqs, dst, dst, t0, t1, True, dec.state, dec.words, *self._args) < 0:
            raise ValueError("block payload is invalid for this model")

    @property
    def _args(self) -> tuple:
        return self._tab, self._blk, self._scr

    def decode_byte(self, freqs: np.ndarray, k: int, dec: BitDecoder) -> np.ndarray:
        """Decoder's step: the next byte of each of the first ``k`` segments ([k]), decoded
        bit by bit by ``dec`` and learnt from as the encoder's step did. Raises ValueError
        on words that no encoder wrote."""
        self.k = k
        byte = np.empty(k, dtype=np.int64)
        tables, block, scratch = self._tab, self._blk, self._scr
        if _code_byte(freqs, byte, True, dec.state, dec.words, tables, block, scratch) < 0:
            raise ValueError("block payload is invalid for this model")
        return byte


# Rows of BlockCoder.seg: per-segment values of the current byte and bit.
_EXPECTED, _AGREEING, _MBUCKET, _MIXSET = 0, 1, 2, 3
_EBIT, _WSEL, _P, _AROW, _AIDX, _AW, _MATCHED, _C0 = 4, 5, 6, 7, 8, 9, 10, 11
_WSEL2, _P1, _P2, _MLEN, _WSEL3, _P3, _D1, _D2, _D3 = 12, 13, 14, 15, 16, 17, 18, 19, 20
_AROW2 = 21
# The extra mixers': weight set, probability and logit, three rows each from _X on.
_X = 22
# The pixels around the byte (``contexts.pixel_rows``), for the pixel mixers.
_ROWS = _X + 3 * MAX_MIXERS
_SEG_FIELDS = _ROWS + 1
# BlockCoder.params: the configuration's learning rates.
_MIX_SHIFT, _FINAL_SHIFT, _APM_RATE, _MATCH_PROBES, _SEG_LO = 0, 3, 4, 5, 6
_MATCH_LEN, _WAYS, _FINE, _N_PARAMS = 7, 8, 9, 10


@jit
def _cost(p1: int, bit: int) -> float:
    """Bits to code ``bit`` at P(1) = ``p1`` (Q16), for accounting."""
    p = p1 if bit == 1 else (1 << P_BITS) - p1
    return -np.log2(max(p, 1) / (1 << P_BITS))


@jit
def _begin_byte(freqs, k, blk, scr) -> None:
    ints, starts, block, history, ctx, mptr, mlen, words, mseed, lines = blk[:10]
    starts_all, done_all = blk[10], blk[11]
    cum, hashes, seg = scr[0], scr[1], scr[2]
    spending, byte_bits, kinds, mixer_kinds = scr[9], scr[10], scr[13], scr[16]
    by_pixels = False  # whether a mixer reads the pixels around the byte
    for e in range(len(mixer_kinds)):
        by_pixels = by_pixels or mixer_kinds[e] == MIX_PIXELS or mixer_kinds[e] == MIX_PIXELS_NEAR
    for i in range(k):
        # Cumulative frequencies: the network's P(bit) at any node of the byte's binary
        # tree is a ratio of two range sums, taken in predict for the 8 nodes visited.
        acc = 0
        cum[i, 0] = 0
        for s in range(256):
            acc += freqs[i, s]
            cum[i, s + 1] = acc
        # Match model: the match continued or found in end_byte, if its byte is known.
        ml = mlen[i]
        expected = 0
        if ml > 0:
            expected = _known_byte(mptr[i], ints, starts_all, done_all, block, history)
            if expected < 0:
                ml = 0
                mlen[i] = 0
                expected = 0
        bucket = _length_bucket(ml) + (24 if mseed[i] else 0)
        seg[_EXPECTED, i] = expected
        seg[_MLEN, i] = ml
        seg[_AGREEING, i] = 1 if ml > 0 else 0
        seg[_MATCHED, i] = 1 if ml > 0 else 0
        seg[_MBUCKET, i] = bucket
        seg[_MIXSET, i] = min((ml + 7) // 8, 3) * 256
        # Context hashes (segment-local history, as the network sees it), by kind.
        c = ctx[i]
        ex = expected if ml > 0 else -1
        for o in range(len(kinds)):
            hashes[i, o] = context_hash(kinds[o], c, words, lines, block, i, ex, bucket)
        if by_pixels:
            seg[_ROWS, i] = np.int64(pixel_rows(c, lines, block, i))
    if len(spending):
        for i in range(k):
            byte_bits[i] = 0.0


@jit
def _bit_kind(kind) -> bool:
    """Whether context ``kind`` is hashed bit by bit (``contexts.BIT_KINDS``)."""
    return BIT_PIXELS <= kind <= BIT_PIXELS_5


@jit
def _predict(j, c0, p_out, tab, blk, scr) -> None:
    """P(bit j = 1) of every active segment into ``p_out``. The loads from the large
    tables have loops of their own, so that the cache misses of many segments overlap."""
    ctx_stats, match_prob, weights, apm, match_table, weights2, weights3, weights_final = tab[:8]
    apm2, weights_x = tab[8], tab[9]
    ctx, lines = blk[4], blk[9]
    cum, hashes, seg, x, slots, p_ctx = scr[0], scr[1], scr[2], scr[3], scr[4], scr[5]
    ctx_tag, ctx_n, kinds, seen_kind = scr[11], scr[12], scr[13], scr[15]
    mixer_kinds, mixer_base, ways = scr[16], scr[17], scr[14][_WAYS]
    apm_q = FINE_Q if scr[14][_FINE] else 0  # the refinement curves in Q(16 + apm_q)
    k = len(c0)
    n_ctx, n_in = hashes.shape[1], x.shape[1]
    slot_bits = _ilog2(len(ctx_stats) // n_ctx)
    drop = np.uint64(64 - slot_bits)
    by_bit = False  # any bit-level kinds: configurations without them skip the test
    for o in range(n_ctx):
        by_bit = by_bit or _bit_kind(kinds[o])
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
        for o in range(n_ctx):
            if by_bit and _bit_kind(kinds[o]):
                hh = bit_hash(kinds[o], hashes[i, o], j, c)
            else:
                hh = hashes[i, o] ^ cc
            slots[i, o] = np.int64(hh >> drop) + (np.int64(o) << slot_bits)
            ctx_tag[i, o] = np.int64((hh >> np.uint64(24)) & np.uint64(0x7FFF))
    if ways > 1:  # the slot of the group of four holding the context (Config.slot_ways)
        for i in range(k):
            for o in range(n_ctx):
                slots[i, o] = _slot_in_group(ctx_stats, slots[i, o], ctx_tag[i, o], ways)
    for i in range(k):  # loads only, so that many cache misses overlap
        for o in range(n_ctx):
            sl = slots[i, o]
            p_ctx[i, o] = ctx_stats[sl, 0] + HALF
            ctx_n[i, o] = ctx_stats[sl, 1]
    for i in range(k):
        for o in range(n_ctx):
            # A slot holding another context (its tag differs) predicts as an empty one.
            meta = ctx_n[i, o]
            same = (meta >> 16) == ctx_tag[i, o]
            p_ctx[i, o] = p_ctx[i, o] if same else HALF
            ctx_n[i, o] = meta & 0xFFFF if same else -1
    # Bit histories: a slot holding another context has none.
    ctx_hist, hist_map, hidx = tab[10], tab[11], scr[18]
    by_history = len(hist_map) > 0
    if by_history:
        for i in range(k):
            for o in range(n_ctx):
                h = np.int64(ctx_hist[slots[i, o]]) if ctx_n[i, o] >= 0 else 0
                hidx[i, o] = o * HIST_STATES + h
    for i in range(k):
        c = seg[_C0, i]
        for o in range(n_ctx):
            x[i, 1 + o] = STRETCH[p_ctx[i, o] >> 4]
            if by_history:  # the mean of the logits of the slot and of its history
                xh = STRETCH[(hist_map[hidx[i, o], 0] + HALF) >> 4]
                x[i, 1 + o] = (x[i, 1 + o] + xh) >> 1
        # Match input: signed by the expected bit, while the byte agrees with it so far.
        eb = (seg[_EXPECTED, i] >> (7 - j)) & 1
        seg[_EBIT, i] = eb
        if seg[_AGREEING, i]:
            sign = 2 * eb - 1
            x[i, n_in - 3] = sign * STRETCH[match_prob[seg[_MBUCKET, i], 0] >> 4]
            x[i, n_in - 2] = sign * min(seg[_MLEN, i] * 32, STRETCH_MAX)
        else:
            x[i, n_in - 3] = 0
            x[i, n_in - 2] = 0
        x[i, n_in - 1] = 256
        ws = seg[_MIXSET, i] + c
        seg[_WSEL, i] = ws
        seen = 0
        for o in range(n_ctx):
            if seen_kind[o] and ctx_n[i, o] > 0:
                seen += 1
        conf = min(abs(x[i, 0]) >> 7, 7)
        ws2 = (seen * 4 + seg[_MIXSET, i] // 256) * 8 + conf
        seg[_WSEL2, i] = ws2
        ws3 = np.int64(ctx[i] & np.uint64(0xFF)) * 8 + j
        seg[_WSEL3, i] = ws3
        d1 = 0
        d2 = 0
        d3 = 0
        for q in range(n_in):
            d1 += x[i, q] * weights[ws, q]
            d2 += x[i, q] * weights2[ws2, q]
            d3 += x[i, q] * weights3[ws3, q]
        d1 = min(max(d1 >> 16, -STRETCH_MAX), STRETCH_MAX)
        d2 = min(max(d2 >> 16, -STRETCH_MAX), STRETCH_MAX)
        d3 = min(max(d3 >> 16, -STRETCH_MAX), STRETCH_MAX)
        seg[_P1, i] = SQUASH[d1 + STRETCH_MAX]
        seg[_P2, i] = SQUASH[d2 + STRETCH_MAX]
        seg[_P3, i] = SQUASH[d3 + STRETCH_MAX]
        seg[_D1, i] = d1
        seg[_D2, i] = d2
        seg[_D3, i] = d3
        wf = weights_final[c]
        dot = d1 * wf[0] + d2 * wf[1] + d3 * wf[2]
        expected = seg[_EXPECTED, i] if seg[_MLEN, i] > 0 else -1
        for e in range(len(mixer_kinds)):
            row = _X + 3 * e
            sel = mixer_select(
                mixer_kinds[e], ctx[i], c, j, lines[0, i], expected, np.uint64(seg[_ROWS, i])
            )
            wx = mixer_base[e] + sel
            dx = 0
            for q in range(n_in):
                dx += x[i, q] * weights_x[wx, q]
            dx = min(max(dx >> 16, -STRETCH_MAX), STRETCH_MAX)
            seg[row, i] = wx
            seg[row + 1, i] = SQUASH[dx + STRETCH_MAX]
            seg[row + 2, i] = dx
            dot += dx * wf[3 + e]
        dot >>= 16
        dot = min(max(dot, -STRETCH_MAX), STRETCH_MAX)
        seg[_P, i] = SQUASH[dot + STRETCH_MAX]
        # Refine: interpolate the table row of (previous byte, partial byte) at the logit.
        pos = dot + 2048  # 1 .. 4095
        seg[_AROW, i] = (np.int64(ctx[i] & np.uint64(0xFF)) << 8) | c
        h2 = ((ctx[i] & np.uint64(0xFFFF)) + np.uint64(1)) * _PRIMES[2]
        seg[_AROW2, i] = np.int64((h2 + np.uint64(c) * _PRIMES[3]) >> np.uint64(48))
        seg[_AIDX, i] = pos >> 7
        seg[_AW, i] = pos & 127
    for i in range(k):
        ai, w = seg[_AIDX, i], seg[_AW, i]
        lo, hi = APM_IDENTITY[ai] << apm_q, APM_IDENTITY[ai + 1] << apm_q
        row = apm[seg[_AROW, i]]
        r1 = ((row[ai] + lo) * (128 - w) + (row[ai + 1] + hi) * w) >> (7 + apm_q)
        row2 = apm2[seg[_AROW2, i]]
        r2 = ((row2[ai] + lo) * (128 - w) + (row2[ai + 1] + hi) * w) >> (7 + apm_q)
        pf = (2 * seg[_P, i] + 3 * r1 + 3 * r2) >> 3
        p_out[i] = min(max(pf, 1), (1 << P_BITS) - 1)


@jit
def _slot_in_group(ctx_stats, sl, tag, ways) -> int:
    """The slot for a context whose hash names slot ``sl`` and whose check tag is ``tag``,
    among the ``ways`` slots sl ^ 0, sl ^ 1, ... (an aligned group): the first that holds
    the context, else the first with the fewest observations, which the update claims."""
    low, fewest = sl, np.int64(1) << 20
    for w in range(ways):
        s = sl ^ w
        meta = np.int64(ctx_stats[s, 1])
        if (meta >> 16) == tag:
            return s
        if (meta & 0xFFFF) < fewest:
            low, fewest = s, meta & 0xFFFF
    return low


@jit
def _update(bit, p_final, tab, scr) -> None:
    """Learn from the coded bits. Where m segments touched the same entry in this step,
    their updates are combined as one batch: the mixer's gradients are summed and divided
    by sqrt(m) (the mean learns too slowly when hundreds of segments share a weight set,
    the plain sum diverges), and a context counter moves as a count-based estimate does
    after m more observations. So sharing statistics across many segments does not
    multiply the learning rate. Every update is computed from the values before this
    step's updates, then summed."""
    ctx_stats, match_prob, weights, apm, match_table, weights2, weights3, weights_final = tab[:8]
    apm2, weights_x = tab[8], tab[9]
    seg, x, slots, p_ctx, delta = scr[2], scr[3], scr[4], scr[5], scr[6]
    mixcount, bucketcount, spending, byte_bits = scr[7], scr[8], scr[9], scr[10]
    prm = scr[14]
    k = len(bit)
    n_ctx = p_ctx.shape[1]
    if len(spending):
        _account(bit, p_final, seg, x, p_ctx, spending, byte_bits)
    # Refinement stages: move the nearer interpolation point towards the outcome.
    # Config.fine: the refinement curves in Q(16 + FINE_Q), and each count-based move
    # rounded to the nearest (truncated, a slot counted to n stops 65536 / RATE[n] short
    # of 1 but reaches P_MIN of 0).
    fine = prm[_FINE]
    apm_q = FINE_Q if fine else 0
    round_half = 1 << 15 if fine else 0
    _train_apm(bit, seg, apm.reshape(-1), delta, _AROW, prm[_APM_RATE], apm_q)
    _train_apm(bit, seg, apm2.reshape(-1), delta, _AROW2, prm[_APM_RATE], apm_q)
    # Mixer: gradient step, damped by the square root of the segments sharing the set.
    # With the warm-up (Config.warmup), each mixer's weight sets count their updates in
    # one array, in this order; without it the array is empty.
    warm = tab[12]
    w2 = len(weights)
    w3 = w2 + len(weights2)
    wx = w3 + len(weights3)
    wf = wx + len(weights_x)
    _train_mixer(bit, seg, x, weights, _WSEL, _P1, mixcount, prm[_MIX_SHIFT], warm, 0)
    _train_mixer(bit, seg, x, weights2, _WSEL2, _P2, mixcount, prm[_MIX_SHIFT + 1], warm, w2)
    _train_mixer(bit, seg, x, weights3, _WSEL3, _P3, mixcount, prm[_MIX_SHIFT + 2], warm, w3)
    for e in range(len(scr[16])):  # the extra mixers learn at the third one's rate
        row = _X + 3 * e
        shift = prm[_MIX_SHIFT + 2]
        _train_mixer(bit, seg, x, weights_x, row, row + 1, mixcount, shift, warm, wx)
    _train_final(bit, seg, weights_final, mixcount, prm[_FINAL_SHIFT], warm, wf)
    # Context statistics: count-based adaptation rates. A slot holding another context
    # (its check tag differs) is first claimed: reset to an empty slot with this tag, the
    # later segment winning where several claim one slot in a step.
    ctx_tag, ctx_n = scr[11], scr[12]
    for i in range(k):
        for o in range(n_ctx):
            if ctx_n[i, o] < 0:
                sl = slots[i, o]
                ctx_stats[sl, 0] = 0
                ctx_stats[sl, 1] = ctx_tag[i, o] << 16
    ctx_hist, hist_map, hidx = tab[10], tab[11], scr[18]
    if len(hist_map):
        _train_histories(
            bit, slots, ctx_n, ctx_tag, ctx_stats, ctx_hist, hist_map, hidx, round_half
        )
    for i in range(k):
        for o in range(n_ctx):
            sl = slots[i, o]
            if (np.int64(ctx_stats[sl, 1]) >> 16) == ctx_tag[i, o]:
                ctx_stats[sl, 1] += 1
                delta[i, o] = max(ctx_n[i, o], 0)  # n_old
            else:
                delta[i, o] = -1  # lost the slot to another context this step
    for i in range(k):
        target = bit[i] << P_BITS
        for o in range(n_ctx):
            n_old = delta[i, o]
            if n_old >= 0:
                sl = slots[i, o]
                visits = (np.int64(ctx_stats[sl, 1]) & 0xFFFF) - n_old
                # m observations move a count-n estimate by sum(target - p) / (n + m + 1.3).
                rate = RATE[min(n_old + visits - 1, COUNT_LIMIT)]
                ctx_stats[sl, 0] += ((target - p_ctx[i, o]) * rate + round_half) >> 16
    for i in range(k):
        for o in range(n_ctx):
            sl = slots[i, o]
            ctx_stats[sl, 0] = min(max(ctx_stats[sl, 0], P_MIN - HALF), P_MAX - HALF)
            meta = np.int64(ctx_stats[sl, 1])
            if (meta & 0xFFFF) > COUNT_CAP:
                ctx_stats[sl, 1] = (meta & ~np.int64(0xFFFF)) | COUNT_CAP
    # Match model: confidence per length bucket, while the byte agrees with the match,
    # adapting as a count-based estimate does (a batch of m observations at once moves
    # it as m observations one by one would, roughly).
    for i in range(k):
        if seg[_AGREEING, i]:
            bucketcount[seg[_MBUCKET, i]] += 1
    for i in range(k):
        if seg[_AGREEING, i]:
            b = seg[_MBUCKET, i]
            right = (1 if bit[i] == seg[_EBIT, i] else 0) << P_BITS
            rate = RATE[min(match_prob[b, 1] + bucketcount[b] - 1, COUNT_LIMIT)]
            delta[i, 0] = ((right - match_prob[b, 0]) * rate + round_half) >> 16
    for i in range(k):
        if seg[_AGREEING, i]:
            match_prob[seg[_MBUCKET, i], 0] += delta[i, 0]
    for i in range(k):
        if seg[_AGREEING, i]:
            b = seg[_MBUCKET, i]
            match_prob[b, 0] = min(max(match_prob[b, 0], P_MIN), P_MAX)
            match_prob[b, 1] = min(match_prob[b, 1] + bucketcount[b], COUNT_CAP)
            bucketcount[b] = 0
            if bit[i] != seg[_EBIT, i]:
                seg[_AGREEING, i] = 0


@jit
def _train_histories(
    bit, slots, ctx_n, ctx_tag, ctx_stats, ctx_hist, hist_map, hidx, round_half
) -> None:
    """Each slot's history takes the bit, and the history it had learns what followed it,
    in segment order (``_predict`` read them all before). A history is a 1 followed by
    the slot's last outcomes, at most 7 (the oldest dropped), 0 where it has none: a slot
    claimed this step starts empty. Its estimate moves by its error over its count + 1.3,
    at least 1/256.3 of it (``HIST_LIMIT``): unlike a slot's own probability, which counts
    to 1023, a history's meaning drifts as the data does. ``round_half`` is 2^15 where
    the configuration has fine probabilities (the move rounded to the nearest), else 0."""
    k, n_ctx = len(bit), slots.shape[1]
    for i in range(k):
        for o in range(n_ctx):
            if ctx_n[i, o] < 0:
                ctx_hist[slots[i, o]] = 0
    for i in range(k):
        b = bit[i]
        target = (b << P_BITS) - HALF
        for o in range(n_ctx):
            sl = slots[i, o]
            if (np.int64(ctx_stats[sl, 1]) >> 16) == ctx_tag[i, o]:
                h = max(np.int64(ctx_hist[sl]), 1) * 2 + b
                if h >= HIST_STATES:
                    h = (HIST_STATES >> 1) | (h & ((HIST_STATES >> 1) - 1))
                ctx_hist[sl] = h
            f = hidx[i, o]
            n = hist_map[f, 1]
            move = (target - hist_map[f, 0]) * RATE[min(n, HIST_LIMIT)]
            v = hist_map[f, 0] + ((move + round_half) >> 16)
            hist_map[f, 0] = min(max(v, P_MIN - HALF), P_MAX - HALF)
            hist_map[f, 1] = min(n + 1, HIST_LIMIT)


@jit
def _train_apm(bit, seg, apm_flat, delta, row_field, rate, q) -> None:
    """Move each refinement curve's nearer point towards the bit, its curve in
    Q(16 + ``q``): ``q`` = ``FINE_Q`` (``Config.fine``) keeps it within 1/65536 of 0 and
    1, 0 within ``P_MIN`` of 0 and 2^rate of 1."""
    k = len(bit)
    low = P_MIN if q == 0 else FINE_LOW
    high = P_MAX if q == 0 else FINE_HIGH
    for i in range(k):
        near = seg[_AIDX, i] + (1 if seg[_AW, i] >= 64 else 0)
        flat = seg[row_field, i] * APM_KNOTS + near
        seg[row_field, i] = flat  # the row is not needed again this bit
        value = apm_flat[flat] + (APM_IDENTITY[near] << q)
        delta[i, 0] = ((bit[i] << (P_BITS + q)) - value) >> rate
    for i in range(k):
        apm_flat[seg[row_field, i]] += delta[i, 0]
    for i in range(k):
        f = seg[row_field, i]
        knot = APM_IDENTITY[f % APM_KNOTS] << q
        apm_flat[f] = min(max(apm_flat[f] + knot, low), high) - knot


@jit
def _warm(err, warm, f) -> int:
    """``err`` of a weight set updated ``warm[f]`` times before this step, as the warm-up
    scales it (``Config.warmup``; ``warm`` empty: as it is)."""
    if len(warm) == 0:
        return err
    return (err * (256 + WARMUP_BONUS // (warm[f] + 16))) >> 8


@jit
def _train_mixer(bit, seg, x, weights, wsel, pfield, mixcount, shift0, warm, base) -> None:
    """Gradient step of one mixer on its own error, damped by the square root of the
    number of segments sharing a weight set, and scaled up while the set is young
    (``_warm``: every segment by its count before the step)."""
    k, n_in = len(bit), x.shape[1]
    for i in range(k):
        mixcount[seg[wsel, i]] += 1
    for i in range(k):
        ws = seg[wsel, i]
        err = _warm((bit[i] << P_BITS) - seg[pfield, i], warm, base + ws)
        shift = shift0 + SQRT_SHIFT[mixcount[ws]]
        for q in range(n_in):
            weights[ws, q] += (x[i, q] * err) >> shift
    for i in range(k):
        ws = seg[wsel, i]
        mixcount[ws] = 0
        if len(warm):
            warm[base + ws] = min(warm[base + ws] + 1, WARMUP_END)


@jit
def _train_final(bit, seg, weights_final, mixcount, shift0, warm, base) -> None:
    """Gradient step of the final mixer, whose inputs are the mixers' logits."""
    k = len(bit)
    for i in range(k):
        mixcount[seg[_C0, i]] += 1
    for i in range(k):
        ws = seg[_C0, i]
        err = _warm((bit[i] << P_BITS) - seg[_P, i], warm, base + ws)
        shift = shift0 + SQRT_SHIFT[mixcount[ws]]
        weights_final[ws, 0] += (seg[_D1, i] * err) >> shift
        weights_final[ws, 1] += (seg[_D2, i] * err) >> shift
        weights_final[ws, 2] += (seg[_D3, i] * err) >> shift
        for e in range(weights_final.shape[1] - 3):
            weights_final[ws, 3 + e] += (seg[_X + 3 * e + 2, i] * err) >> shift
    for i in range(k):
        ws = seg[_C0, i]
        mixcount[ws] = 0
        if len(warm):
            warm[base + ws] = min(warm[base + ws] + 1, WARMUP_END)


@jit
def _account(bit, p_final, seg, x, p_ctx, spending, byte_bits) -> None:
    """Add this bit's ideal costs to the accounts (``-v`` only)."""
    n_ctx = p_ctx.shape[1]
    for i in range(len(bit)):
        b = bit[i]
        spending[0] += _cost(SQUASH[x[i, 0] + STRETCH_MAX], b)
        for o in range(n_ctx):
            spending[1 + o] += _cost(p_ctx[i, o], b)
        spending[1 + n_ctx] += _cost(seg[_P, i], b)
        c = _cost(p_final[i], b)
        spending[2 + n_ctx] += c
        byte_bits[i] += c


@jit
def _end_byte(byte, tab, blk, scr) -> None:
    match_table = tab[4]
    ints, starts, block, history, ctx, mptr, mlen, words, mseed, lines = blk[:10]
    starts_all, done_all, done = blk[10], blk[11], blk[12]
    seg, spending, byte_bits, prm = scr[2], scr[9], scr[10], scr[14]
    k = len(byte)
    t = done[0]
    if len(spending):
        base = scr[5].shape[1] + 3
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
            mseed[i] = 0
        ctx[i] = (ctx[i] << np.uint64(8)) | np.uint64(b)
        if b == 10:  # a new line: its start, and the one before it, for the column contexts
            lines[2, i] = lines[1, i]
            lines[1, i] = starts[i] + t + 1
            lines[0, i] = 0
            lines[3, i] = 0
        else:
            if lines[0, i] == lines[3, i] and (b == 32 or b == 9):  # still indenting
                lines[3, i] += 1
            lines[0, i] += 1
        # Words: letters (case folded), digits, '_' and non-ASCII bytes.
        if 65 <= b <= 90:
            b += 32
        if (97 <= b <= 122) or (48 <= b <= 57) or b == 95 or b >= 128:
            words[0, i] = (words[0, i] + np.uint64(b) + np.uint64(1)) * _PRIMES[5]
        elif words[0, i] != 0:
            words[2, i] = words[1, i]
            words[1, i] = words[0, i]
            words[0, i] = 0
    t += 1
    for i in range(k):
        done[i] = t
    m = prm[_MATCH_LEN]
    if t >= m:
        mask = np.uint64(0xFFFFFFFFFFFFFFFF) >> np.uint64(64 - 8 * m)
        bits = np.uint64(64 - _ilog2(len(match_table)))
        keys = scr[4][:, 0]  # slots' first column is free until the next predict
        cand = scr[6][:, 0]
        probes, lo = prm[_MATCH_PROBES], prm[_SEG_LO]
        block_pos = ints[1]
        for i in range(k):
            keys[i] = np.int64(((ctx[i] & mask) * _PRIMES[5]) >> bits)
            cand[i] = match_table[keys[i]] - 1
            if probes > 0 and mlen[i] == 0:
                near = _nearest_match(
                    ctx[i] & mask, lo + i, probes, t, bits, block_pos, starts_all, match_table
                )
                if near >= 0:
                    cand[i] = near
        # Segments without a match look one up before this step's contexts go in (else
        # each would find only the entry it is about to make for itself)...
        for i in range(k):
            if mlen[i] == 0 and cand[i] >= 0:
                mptr[i] = cand[i]
                mlen[i] = m
                mseed[i] = 0
        # ...then record where each context continues: the next byte's offset, which a
        # later lookup may use once that byte is coded (and, with probes, where it
        # continues in this segment).
        for i in range(k):
            nxt = block_pos + starts[i] + t
            if nxt + 1 > match_table[keys[i]]:
                match_table[keys[i]] = nxt + 1
            if probes > 0:
                match_table[_segment_key(ctx[i] & mask, starts[i], bits)] = nxt + 1
    _seed_matches(k, t, ints, starts, starts_all, done_all, block, history, mptr, mlen, mseed)


@jit
def _segment_key(c, start, bits) -> int:
    """The match table's slot for the current context ``c`` (its last ``Config.match_min``
    bytes) within the segment that starts at block offset ``start``
    (``Config.match_probes``)."""
    h = c + np.uint64(start + 1) * _PRIMES[3]
    return np.int64((h * _PRIMES[5]) >> bits)


@jit
def _nearest_match(c, g, probes, t, bits, block_pos, starts_all, match_table) -> int:
    """The latest occurrence of context ``c`` in segment ``g``'s part of this block, else
    in the segments around it, nearest first (g - 1, g + 1, g - 2, ...), ``probes``
    segments in all (-1: none). At step t the segments on either side have coded their
    first t bytes, about a segment's length away on both sides, so the one after is worth
    as much as the one before (on text and logs of this machine, 4 probes taken this way
    coded 0.1-0.9% smaller than 4 taken backwards only, and as small as 8). An entry
    counts only if it lies where its segment has coded in this block: entries of earlier
    blocks with the same layout, and other contexts' entries in the slot, are not taken
    for this block's."""
    for q in range(probes):
        j = g + (q + 1) // 2 * (1 if q % 2 == 0 else -1)
        if j < 0 or j >= len(starts_all):
            continue
        start = block_pos + starts_all[j]
        pos = match_table[_segment_key(c, starts_all[j], bits)] - 1
        if start <= pos <= start + t:
            return pos
    return -1


@jit
def _length_bucket(ml) -> int:
    """Match-length classes of the match model's confidence: 0 (none), 1-15 one by one,
    then 16-23, 24-31, 32-47, 48-63, 64-127, 128-255, 256-511, 512+."""
    if ml < 16:
        return ml
    if ml < 32:
        return 16 + (ml - 16) // 8
    if ml < 64:
        return 18 + (ml - 32) // 16
    if ml < 512:
        return 20 + _ilog2(ml) - 6
    return 23


@jit
def _known_byte(pos, ints, starts_all, done_all, block, history) -> int:
    """The byte at stream offset ``pos`` if it has been coded already (by any segment of
    any group), else -1."""
    n, block_pos, history_base = ints[0], ints[1], ints[2]
    off = pos - block_pos
    if off < 0:
        return np.int64(history[pos - history_base]) if pos >= history_base else -1
    if off < n:
        last = len(starts_all) - 1
        sg = min(max(np.searchsorted(starts_all, off, side="right") - 1, 0), last)
        if off - starts_all[sg] < done_all[sg]:
            return np.int64(block[off])
    return -1


@jit
def _seed_matches(
    k, t, ints, starts, starts_all, done_all, block, history, mptr, mlen, mseed
) -> None:
    """Segments still without a match try the distance of the segment before them (when
    that one is in a long match), else the stream's latest long-match distance: long
    repeats keep one distance, and neighbouring segments of a repeat share it. A candidate
    must agree with the segment's last bytes (up to 8 that are known).

    The stream's distance is kept as a backward one: in the lockstep a copy can be coded
    before its original, whose match then points forward, but a later block repeats them
    both from behind."""
    block_pos = ints[1]
    for i in range(k):
        if mlen[i] != 0:
            continue
        d = ints[3]
        if i > 0 and mlen[i - 1] >= SEED_LEN:
            d = block_pos + starts[i - 1] + t - mptr[i - 1]
        if d <= 0:
            continue
        src = block_pos + starts[i] + t - d
        agree = 0
        for q in range(min(t, 8)):
            if (
                _known_byte(src - 1 - q, ints, starts_all, done_all, block, history)
                != block[starts[i] + t - 1 - q]
            ):
                agree = -1
                break
            agree += 1
        if agree >= 0:
            mptr[i] = src
            mlen[i] = max(agree, 1)
            mseed[i] = 1
    for i in range(k):
        if mlen[i] >= REP_LEN:
            ints[3] = abs(block_pos + starts[i] + t - mptr[i])
            break


@entry
def _code_byte(freqs, byte, decode, state, words, tab, blk, scr) -> int:
    """A group's whole step (``_step``), one call from Python."""
    work = np.empty((3, len(byte)), dtype=np.int64)
    return _step(freqs, byte, decode, state, words, tab, blk, scr, work)


@entry
def _byte_begin(freqs, k, blk, scr) -> None:
    """``_begin_byte`` called from Python, for predictions made outside these loops
    (``torchmix``): the context hashes, the match model's expected byte and the scratch
    the bits read."""
    _begin_byte(freqs, k, blk, scr)


@entry
def _byte_end(byte, tab, blk, scr) -> None:
    """``_end_byte`` called from Python (``torchmix``): the byte's history, words, lines
    and match model."""
    _end_byte(byte, tab, blk, scr)


@entry
def _code_steps(freqs, src, dst, t0, t1, decode, state, words, tab, blk, scr) -> int:
    """Steps ``t0 .. t1 - 1`` of a block of one segment coded without the network, in one
    call: there is no network step between them to wait for, and at one segment a step's
    calls from Python cost as much as its mixing. The encoder reads each step's byte from
    ``src``; both write it to ``dst``. Returns 0, or -1 as ``_step`` does."""
    byte = np.empty(1, dtype=np.int64)
    work = np.empty((3, 1), dtype=np.int64)
    for t in range(t0, t1):
        if not decode:
            byte[0] = src[t]
        if _step(freqs, byte, decode, state, words, tab, blk, scr, work) < 0:
            return -1
        dst[t] = byte[0]
    return 0


@jit
def _step(freqs, byte, decode, state, words, tab, blk, scr, work) -> int:
    """A group's whole step, encoder and decoder alike: for each bit, every active
    segment's prediction, its coding (bit j of every segment before bit j + 1) and the
    updates, before the next bit is predicted. The encoder (``decode`` false) writes the
    bits of ``byte`` into ``words`` (``rangecoder.encode_bit``); the decoder reads them
    from ``words`` (``rangecoder.decode_bit``) into ``byte``. ``state``: the range coder's.
    ``work``: [3, k], rows for the partial bytes, the bits and their probabilities (made
    by the caller: ``jit.jit``). Returns 0, or -1 where the words are not an encoder's."""
    k = len(byte)
    _begin_byte(freqs, k, blk, scr)
    c0, bit, p_out = work[0], work[1], work[2]
    c0[:] = 1
    for j in range(8):
        _predict(j, c0, p_out, tab, blk, scr)
        if not decode:
            for i in range(k):
                bit[i] = (byte[i] >> (7 - j)) & 1
        if code_step_bits(bit, p_out, decode, state, words) < 0:
            return -1
        _update(bit, p_out, tab, scr)
        for i in range(k):
            c0[i] = (c0[i] << 1) | bit[i]
    if decode:
        for i in range(k):
            byte[i] = c0[i] - 256
    _end_byte(byte, tab, blk, scr)
    return 0


@jit
def _ilog2(n) -> int:
    r = 0
    while (1 << (r + 1)) <= n:
        r += 1
    return r
