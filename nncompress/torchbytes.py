"""The byte's half of a step of the mixed method as whole-tensor operations in torch.

``torchmix`` predicts and learns the bits of a step for all its segments at once; this
module does the rest of the step the same way, so that nothing of the predictor stays on
the CPU: before the bits (``adaptive._begin_byte``) the network's cumulative frequencies,
the match model's expected byte and length class, and every context's hash; after them
(``adaptive._end_byte``) the segments' last bytes, lines and words, the match model's
continuation, its table of where each context continued, its lookups (with the nearby
segments' probes) and its seeding from neighbouring segments and the stream's repeat
distance. Only the range coder, which needs each bit before the next prediction, and the
network's input are left to the host.

The arithmetic is the loops', on int64 tensors: a uint64 hash is the same bits as an
int64, sums and products wrap alike in the low 64 bits, and a right shift that the loops
take of an unsigned value is masked back to a logical one (``_shr``) wherever its top bits
are kept. The loops go through the segments in order, and where a later segment reads
what an earlier one wrote in the same step the order matters; here each such place is
written so that its result is the loops' in any order a device runs it:

- the match table's slots: each step's lookups all come before its writes (as in the
  loops), and a slot that several segments write ends with the largest offset any of
  them wrote, which is what the loops leave (the offsets grow with the segment; a write
  of the nearby probes' kind replaces, the other kind keeps the larger: ``_write_matches``);
- the seeding: a segment borrows its predecessor's distance only from a match of 16 bytes
  or more, which no seed of the same step makes (seeds are at most 8 long), so every
  segment reads its predecessor as it was before the step;
- the stream's repeat distance: the first segment in order that holds a long match.

On the CPU the tensors share the block's numpy arrays (``adaptive.BlockCoder``), so the
compiled loops see what was coded here; on a device they are copies, written back by
``finish``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import adaptive as A
from . import contexts as K


def signed64(v: int) -> int:
    """A 64-bit unsigned constant as the int64 of the same bits (plain Python, so that a
    compiler tracing a step sees a constant)."""
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >> 63 else v


# The seeding's order argument (module docstring): a seed checks at most 8 bytes, so no
# seed of a step makes a match long enough to lend its distance in the same step.
assert A.SEED_LEN > 8, "a seed of this step could lend its distance in this step"
#: A seed checks at most this many bytes, and the match model starts hashing by this
#: step (``Config.match_min``): past it, a step's choices no longer depend on its number.
REACH = 8

#: The hashes' multipliers as int64 (``contexts.PRIMES``).
_P = [signed64(int(p)) for p in K.PRIMES]
_ORDER_MASK = [signed64(int(m)) for m in K._ORDER_MASK]
_ORDER_PRIME = [int(p) for p in K._ORDER_PRIME]


def _shr(x: Any, s: int) -> Any:
    """``x >> s`` of the uint64 that ``x`` holds the bits of (torch shifts int64s
    arithmetically)."""
    return (x >> s) & ((1 << (64 - s)) - 1) if s > 0 else x


def _byte_kinds_only(kinds: list[int]) -> bool:
    """Whether every context kind is hashed once a byte (the bit-level pixel kinds are
    hashed bit by bit, which the loops alone do)."""
    return K.BIT_KINDS.isdisjoint(kinds) and all(k in K.NAMES for k in kinds)


#: Whether tensors on the CPU share the numpy arrays' memory, as they do unless a test
#: asks for copies (``device_copy``): then the CPU runs what a GPU's copies need, the
#: writes copied back to the arrays and the tables kept on the device between blocks.
SHARE_CPU_MEMORY = True


def device_copy(torch: Any, array: np.ndarray, device: Any) -> tuple[Any, bool]:
    """``array`` as a tensor on ``device``, and whether it is a copy, whose writes the
    arrays see only once copied back: on the CPU the same memory (``SHARE_CPU_MEMORY``)."""
    t = torch.from_numpy(array)
    if device.type == "cpu" and SHARE_CPU_MEMORY:
        return t, False
    return t.to(device, copy=True), True


class BlockTensors:
    """What a block's segment groups share (``adaptive._BlockShared``) and the stream's
    window, as tensors on ``device``: the block's bytes, how far each segment has coded,
    the segments' starts, the block's integers (n, its stream offset, the window's,
    the repeat distance) and the window (``StreamState.history``)."""

    def __init__(self, bc: A.BlockCoder, device: Any) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.pairs: list[tuple[np.ndarray, Any]] = []
        sh = bc.sh
        self.block = self.tensor(sh.block)
        self.done = self.tensor(sh.done)
        self.ints = self.tensor(sh.ints)
        self.starts = torch.from_numpy(sh.starts).to(device)
        history = bc.st.history if len(bc.st.history) else np.zeros(1, dtype=np.uint8)
        self.history = torch.from_numpy(history).to(device)
        # 0-d tensors, not Python ints, so that a compiled step serves every block; of
        # their own, since a compiled step must not read through views of a tensor that
        # it writes (``ints``' repeat distance).
        self.n, self.block_pos, self.history_base = (
            torch.tensor(int(v), device=device) for v in sh.ints[:3]
        )
        self.record = int(sh.record)

    def tensor(self, array: np.ndarray) -> Any:
        """``array`` on the device: the same memory on the CPU, else a copy that
        ``finish`` writes back."""
        view = array.view(np.int64) if array.dtype == np.uint64 else array
        t, copied = device_copy(self.torch, view, self.device)
        if copied:
            self.pairs.append((view, t))
        return t

    def finish(self) -> None:
        """Write back what the copies learnt (nothing to do on the CPU)."""
        for array, t in self.pairs:
            array[...] = t.cpu().numpy()

    def in_block(self, off: Any) -> Any:
        """``off`` clamped to the block's offsets, 0 to n - 1 (n a tensor)."""
        return self.torch.minimum(self.torch.clamp(off, min=0), self.n - 1)

    def known_byte(self, pos: Any) -> Any:
        """``adaptive._known_byte`` of each stream offset in ``pos``: the byte there if a
        segment (of either group) has coded it or it is in the window, else -1."""
        torch = self.torch
        off = pos - self.block_pos
        hidx = pos - self.history_base
        in_window = (off < 0) & (hidx >= 0)
        window = self.history[torch.clamp(hidx, 0, len(self.history) - 1)].to(torch.int64)
        offc = self.in_block(off)
        sg = torch.searchsorted(self.starts, offc, right=True) - 1
        sg = torch.clamp(sg, 0, len(self.starts) - 1)
        coded = (off >= 0) & (off < self.n) & (offc - self.starts[sg] < self.done[sg])
        here = self.block[offc].to(torch.int64)
        return torch.where(in_window, window, torch.where(coded, here, -1))


class ByteWork:
    """One segment group's byte work (``adaptive._begin_byte`` and ``_end_byte``) in
    torch. ``begin`` leaves, for the step's first ``k`` segments, what the bits read:
    ``cum``, ``hashes``, ``expected``, ``mlen``, ``bucket``, ``mixset``; ``end`` takes the
    step's bytes."""

    def __init__(self, bc: A.BlockCoder, shared: BlockTensors, match_table: Any) -> None:
        self.torch = shared.torch
        self.sh = shared
        self.match_table = match_table
        lo, hi = int(bc.params[A._SEG_LO]), int(bc.params[A._SEG_LO]) + bc.s
        # The group's segments' numbers in the block, a tensor: a compiled step then
        # serves both groups.
        self.ids = lo + self.torch.arange(bc.s, device=shared.device)
        self.starts = shared.starts[lo:hi]
        self.ctx = shared.tensor(bc.ctx)
        self.mptr = shared.tensor(bc.mptr)
        self.mlen = shared.tensor(bc.mlen)
        self.mseed = shared.tensor(bc.mseed)
        self.words = shared.tensor(bc.words)
        self.lines = shared.tensor(bc.lines)
        self.kinds = [int(k) for k in bc.kinds]
        assert _byte_kinds_only(self.kinds), "bit-level kinds run in the compiled loops"
        # The order-n kinds are hashed together, as one [k, n] block: each its mask, its
        # number and its multiplier. ``order_perm`` puts the columns back in the
        # configuration's order where the order-n kinds are not its first ones.
        dev = shared.device
        order = [kind for kind in self.kinds if kind <= 8]
        self.order = [
            self.torch.tensor(v, dtype=self.torch.int64, device=dev)
            for v in (
                [_ORDER_MASK[kind] for kind in order],
                order,
                [_P[_ORDER_PRIME[kind]] for kind in order],
            )
        ]
        columns = [i for i, kind in enumerate(self.kinds) if kind <= 8]
        columns += [i for i, kind in enumerate(self.kinds) if kind > 8]
        perm = [columns.index(i) for i in range(len(columns))]
        self.order_perm = None
        if perm != list(range(len(perm))):
            self.order_perm = self.torch.tensor(perm, dtype=self.torch.int64, device=dev)
        # ``_length_bucket`` of every length it tells apart (from 512 on, one bucket).
        self.buckets = _length_bucket(self.torch, self.torch.arange(513, device=dev))
        self.match_len = int(bc.params[A._MATCH_LEN])
        self.probes = int(bc.params[A._MATCH_PROBES])
        # The segments each probe looks at, from the segment's own: 0, +1, -1, +2, ...
        probe_step = [(q + 1) // 2 * (1 if q % 2 == 0 else -1) for q in range(self.probes)]
        self.probe_step = self.torch.tensor(
            probe_step, dtype=self.torch.int64, device=shared.device
        )
        # 1, 2, 3, ...: how far back each byte a seed checks lies.
        self.back = self.torch.arange(1, REACH + 1, device=shared.device)
        self.match_shift = 64 - (len(match_table).bit_length() - 1)
        # Steps done: a tensor for the arithmetic, so that a captured step
        # (``torchmix.Captured``) reads the step it replays, not the one it was captured
        # at; and a Python int, counted by ``advance``, for the few choices made while a
        # segment is young (whether the match model hashes, how many bytes a seed
        # checks), which read ``reach`` alone: the steps done once this one is, capped
        # at 8, the same from step 8 on, so a compiled step (``torchmix.Captured``) sees
        # a constant.
        self.t = int(bc.done[0])
        self.step = self.torch.tensor(self.t, dtype=self.torch.int64, device=shared.device)
        self.reach = min(self.t + 1, REACH)
        assert self.match_len <= REACH, "the match model would start after the settled step"

    def advance(self) -> None:
        """Count a finished step (after ``end``) in the Python int."""
        self.t += 1
        self.reach = min(self.t + 1, REACH)

    # ------------------------------------------------------------------ before the bits
    def begin(self, freqs: Any, k: int) -> None:
        """``_begin_byte`` for the first ``k`` segments; ``freqs``: [k or more, 256]."""
        torch = self.torch
        f = freqs[:k].to(torch.int64)
        self.cum = torch.nn.functional.pad(torch.cumsum(f, dim=1), (1, 0))
        ml = self.mlen[:k]
        expected = self.sh.known_byte(self.mptr[:k])
        lost = (ml > 0) & (expected < 0)
        ml = torch.where(lost, 0, ml)
        self.mlen[:k] = ml
        expected = torch.where(ml > 0, expected, 0)
        self.expected = expected
        self.ml = ml
        self.bucket = self.buckets[torch.clamp(ml, max=512)] + 24 * self.mseed[:k]
        self.mixset = torch.clamp((ml + 7) // 8, max=3) * 256
        self.hashes = self._hashes(k, torch.where(ml > 0, expected, -1))

    def _hashes(self, k: int, ex: Any) -> Any:
        """Every context kind's hash for the first ``k`` segments, [k, kinds] in the
        configuration's order; ``ex``: the match model's expected byte, or -1."""
        mask, number, prime = self.order
        c = self.ctx[:k, None]
        hashes = [((c & mask) + number) * prime]  # the order-n kinds, [k, n]
        hashes += [self._hash(kind, k, ex)[:, None] for kind in self.kinds if kind > 8]
        hashes = self.torch.cat(hashes, dim=1)
        return hashes if self.order_perm is None else hashes[:, self.order_perm]

    def _hash(self, kind: int, k: int, ex: Any) -> Any:
        """``contexts.context_hash`` of ``kind`` for the first ``k`` segments, but for
        the order-n kinds (``begin`` hashes them as one block)."""
        c = self.ctx[:k]
        if kind >= K.IMAGE_GRADIENT or K.RECORD <= kind <= K.PIXELS_2:
            return self._record_hash(kind, k, c)
        if kind >= K.SKIP_1:
            return _sparse_hash(kind, c, ex, self.bucket)
        if kind >= K.ALIGN_4:
            return self._word_hash(kind, k, c)
        return self._text_hash(kind, k, c)

    def _text_hash(self, kind: int, k: int, c: Any) -> Any:
        """The word, sparse and line kinds (9-19)."""
        torch = self.torch
        w0, w1, w2 = self.words[0, :k], self.words[1, :k], self.words[2, :k]
        if kind == K.WORD:
            return (w0 + 1) * _P[4]
        if kind == K.WORD_2:
            return (w0 ^ (w1 * _P[3])) * _P[1]
        if kind == K.WORD_BYTE:
            v = (w0 + 12345) * _P[0] + (c & 0xFF)
            return (v + 1) * _P[3]
        if kind == K.WORD_3:
            v = w0 ^ (w1 * _P[3]) ^ (w2 * _P[4])
            return (v + 77) * _P[5]
        if kind == K.SPARSE:
            return (((c >> 8) & 0xFFFF) + 7000001) * _P[1]
        if kind == K.SPARSE_2:
            return (((c >> 16) & 0xFFFF) + 9000007) * _P[3]
        lines = self.lines[:, :k]
        col = lines[0]
        if kind == K.COLUMN_2:
            v = torch.clamp(col, max=255) * 65536 + (c & 0xFFFF)
            return (v + 900002) * _P[4]
        if kind == K.INDENT:
            lead = (lines[0] == lines[3]).to(torch.int64)
            v = torch.clamp(lines[3], max=63) * 512 + lead * 256 + (c & 0xFF)
            return (v + 3000017) * _P[0]
        block = self.sh.block
        if kind == K.LINE:
            first = block[self.sh.in_block(lines[1])].to(torch.int64) + 1
            first = torch.where(col > 0, first, 0)
            return (first * 65536 + (c & 0xFFFF) + 5000011) * _P[2]

        def above(dx: int) -> Any:
            q = lines[2] + col + dx
            seen = (lines[2] >= 0) & (q < lines[1])
            return torch.where(seen, block[self.sh.in_block(q)].to(torch.int64) + 1, 0)

        up = above(0)
        if kind == K.COLUMN:
            return (torch.clamp(col, max=63) * 512 + up + 100000) * _P[2]
        if kind == K.VERTICAL:
            v = (up * 512 + above(1)) * 256 + (c & 0xFF)
            return (v + 4242) * _P[1]
        raise ValueError(f"context kind {kind} has no tensor form")

    def _word_hash(self, kind: int, k: int, c: Any) -> Any:
        """The machine-word kinds (``contexts._word_hash``)."""
        pos4 = (self.lines[1, :k] + self.lines[0, :k]) & 3
        last = c & 0xFF
        back4 = (c >> 24) & 0xFF
        if kind == K.ALIGN_4:
            return ((pos4 << 8) + last + 2600011) * _P[2]
        if kind == K.SKIP_4:
            v = (pos4 << 16) + back4 * 256 + ((c >> 56) & 0xFF)
            return (v + 2700013) * _P[4]
        if kind == K.SKIP_1_4:
            return (back4 * 256 + last + 2800019) * _P[3]
        raise ValueError(f"context kind {kind} has no tensor form")

    def _record_hash(self, kind: int, k: int, c: Any) -> Any:
        """The record, pixel, image and colour kinds (``contexts._record_hash``), which
        read the bytes whole rows of ``r`` bytes back."""
        torch = self.torch
        r = self.sh.record
        if r <= 0:
            value = signed64((kind + 6000011) * int(K.PRIMES[5]) % (1 << 64))
            return torch.full((k,), value, dtype=torch.int64, device=c.device)
        pos, first = self.lines[1, :k] + self.lines[0, :k], self.lines[5, :k]
        block = self.sh.block

        def above(back: int) -> Any:
            """``contexts._above``: the byte ``back`` before, plus 1, once coded; else 0."""
            q = pos - back
            byte = block[self.sh.in_block(q)].to(torch.int64) + 1
            return torch.where(q >= first, byte, 0)

        up = above(r)
        if kind >= K.IMAGE_GRADIENT:
            return _image_hash(torch, kind, c, above, r, up)
        last = c & 0xFF
        if kind == K.RECORD:
            return (torch.clamp(pos % r, max=4095) * 512 + up + 7700001) * _P[3]
        if kind == K.RECORD_2:
            v = (up * 512 + above(2 * r)) * 256 + last
            return (v + 8800003) * _P[0]
        left_up, right_up = above(r + 1), above(r - 1)
        if kind == K.RECORD_3:
            v = ((left_up * 512 + up) * 512 + right_up) * 256 + last
            return (v + 9900007) * _P[2]
        if kind == K.PIXELS:
            ru = torch.where(right_up > 0, (right_up - 1) >> 6, 4)
            lu = torch.where(left_up > 0, (left_up - 1) & 3, 4)
            v = ((up * 8 + ru) * 8 + lu) * 16 + (last & 0xF)
            return (v + 1200007) * _P[1]
        # PIXELS_2
        v = (above(2 * r) * 512 + up) * 4 + (last & 3)
        return (v + 1600007) * _P[5]

    # ------------------------------------------------------------------ after the bits
    def end(self, byte: Any) -> None:
        """``_end_byte`` for the step's bytes ``byte`` ([k], int64)."""
        torch, sh = self.torch, self.sh
        k, t = len(byte), self.step
        b = byte
        starts = self.starts[:k]
        sh.block[starts + t] = b.to(sh.block.dtype)
        ml, mptr, mseed = self.mlen[:k], self.mptr[:k], self.mseed[:k]
        on = (ml > 0) & (self.expected == b)
        self.mlen[:k] = torch.where(on, torch.clamp(ml + 1, max=65535), 0)
        self.mptr[:k] = torch.where(on, mptr + 1, -1)
        self.mseed[:k] = torch.where(on, mseed, 0)
        self.ctx[:k] = (self.ctx[:k] << 8) | b
        self._lines(b, starts, t)
        self._words(b)
        self.step += 1  # in place: the tensor a captured step reads
        t = self.step
        # Through the group's indices, not a view: a compiled step must not write a
        # tensor that it also reads through another view (``known_byte`` reads all).
        sh.done.index_fill_(0, self.ids[:k], t)
        if self.reach >= self.match_len:
            self._match(k, t, starts)
        self._seed(k, t, starts)

    def _lines(self, b: Any, starts: Any, t: Any) -> None:
        torch = self.torch
        k = len(b)
        col, start, before, indent = (self.lines[q, :k] for q in range(4))
        nl = b == 10
        indenting = (col == indent) & ((b == 32) | (b == 9))
        self.lines[2, :k] = torch.where(nl, start, before)
        self.lines[1, :k] = torch.where(nl, starts + t + 1, start)
        self.lines[3, :k] = torch.where(nl, 0, indent + indenting.to(torch.int64))
        self.lines[0, :k] = torch.where(nl, 0, col + 1)

    def _words(self, b: Any) -> None:
        """Words: letters (case folded), digits, '_' and non-ASCII bytes."""
        torch = self.torch
        k = len(b)
        w0, w1, w2 = (self.words[q, :k] for q in range(3))
        low = torch.where((b >= 65) & (b <= 90), b + 32, b)
        letter = ((low >= 97) & (low <= 122)) | ((low >= 48) & (low <= 57))
        letter = letter | (low == 95) | (low >= 128)
        ends = ~letter & (w0 != 0)
        self.words[2, :k] = torch.where(ends, w1, w2)
        self.words[1, :k] = torch.where(ends, w0, w1)
        self.words[0, :k] = torch.where(letter, (w0 + low + 1) * _P[5], 0)

    def _match(self, k: int, t: Any, starts: Any) -> None:
        """The match model's lookups for segments without a match, then the table's
        record of where each segment's context continues."""
        torch, sh = self.torch, self.sh
        m = self.match_len
        cm = self.ctx[:k] & signed64((1 << (8 * m)) - 1)
        keys = _shr(cm * _P[5], self.match_shift)
        table = self.match_table
        cand = table[keys] - 1
        ml = self.mlen[:k]
        if self.probes > 0:
            near = self._nearest(cm, t)
            cand = torch.where((ml == 0) & (near >= 0), near, cand)
        take = (ml == 0) & (cand >= 0)
        self.mptr[:k] = torch.where(take, cand, self.mptr[:k])
        self.mlen[:k] = torch.where(take, m, ml)
        self.mseed[:k] = torch.where(take, 0, self.mseed[:k])
        value = sh.block_pos + starts + t + 1
        if self.probes > 0:
            _write_matches(torch, table, keys, _segment_key(cm, starts, self.match_shift), value)
        else:
            table.scatter_reduce_(0, keys, value, reduce="amax")

    def _nearest(self, cm: Any, t: Any) -> Any:
        """``adaptive._nearest_match`` for each segment: the latest occurrence of its
        context in its own part of the block, else in the nearest segments' (-1: none)."""
        torch, sh = self.torch, self.sh
        k = len(cm)
        # Every probe at once, [k, probes]; the first that hits is the segment's.
        j = self.ids[:k, None] + self.probe_step
        last = len(sh.starts) - 1
        valid = (j >= 0) & (j <= last)
        s = sh.starts[torch.clamp(j, 0, last)]
        start = sh.block_pos + s
        pos = self.match_table[_segment_key(cm[:, None], s, self.match_shift)] - 1
        hit = valid & (start <= pos) & (pos <= start + t)
        first = torch.argmax(hit.to(torch.int64), dim=1, keepdim=True)  # the first of the largest
        return torch.where(hit.any(dim=1), pos.gather(1, first)[:, 0], -1)

    def _seed(self, k: int, t: Any, starts: Any) -> None:
        """``adaptive._seed_matches``: a segment without a match tries its predecessor's
        distance (when that one is in a long match), else the stream's, if the segment's
        last bytes (up to 8) agree with what precedes the borrowed position."""
        torch, sh = self.torch, self.sh
        ml, mptr = self.mlen[:k], self.mptr[:k]
        here = sh.block_pos + starts + t
        lender = torch.zeros(k, dtype=torch.bool, device=ml.device)
        lender[1:] = ml[:-1] >= A.SEED_LEN
        d_prev = torch.zeros_like(here)
        d_prev[1:] = here[:-1] - mptr[:-1]
        d = torch.where(lender, d_prev, sh.ints[3])
        src = here - d
        # The segment's last ``reach`` bytes against those before the borrowed position,
        # all at once: [k, reach].
        back = self.back[: self.reach]
        own = sh.block[(starts + t)[:, None] - back].to(torch.int64)
        bad = (sh.known_byte(src[:, None] - back) != own).any(dim=1)
        take = (ml == 0) & (d > 0) & ~bad
        self.mptr[:k] = torch.where(take, src, mptr)
        self.mlen[:k] = torch.where(take, max(self.reach, 1), ml)
        self.mseed[:k] = torch.where(take, 1, self.mseed[:k])
        long = self.mlen[:k] >= A.REP_LEN
        # A one-element index: a 0-d one would be read back to the host as a number.
        first = torch.argmax(long.to(torch.int64)).view(1)
        dist = torch.abs(here[first] - self.mptr[:k][first])
        sh.ints[3:4] = torch.where(long.any(), dist, sh.ints[3:4])


def _length_bucket(torch: Any, ml: Any) -> Any:
    """``adaptive._length_bucket``: 0-15 one by one, then 16-23, 24-31, 32-47, 48-63,
    64-127, 128-255, 256-511, 512+."""
    return torch.where(
        ml < 16,
        ml,
        torch.where(
            ml < 32,
            16 + (ml - 16) // 8,
            torch.where(
                ml < 64,
                18 + (ml - 32) // 16,
                torch.where(ml < 512, 20 + (ml >= 128).long() + (ml >= 256).long(), 23),
            ),
        ),
    )


def _sparse_hash(kind: int, c: Any, ex: Any, bucket: Any) -> Any:
    """The sparse and match kinds (``contexts._sparse_hash``)."""
    if kind == K.SKIP_1:
        return (((c >> 8) & 0xFF) + 3300001) * _P[0]
    if kind == K.SKIP_1_3:
        v = (((c >> 8) & 0xFF) << 8) | ((c >> 24) & 0xFF)
        return (v + 3400003) * _P[4]
    if kind == K.NIBBLES_3:
        return ((c & 0xF0F0F0) + 3500017) * _P[3]
    if kind == K.EXPECTED:
        return ((ex + 1) * 64 + bucket + 3600011) * _P[1]
    raise ValueError(f"context kind {kind} has no tensor form")


def _image_hash(torch: Any, kind: int, c: Any, above: Any, r: int, up: Any) -> Any:
    """The 8-bit image and colour kinds (``contexts._image_hash``, ``_colour_hash``);
    ``above(back)`` is the byte ``back`` before, plus 1, once coded, else 0."""

    def near(back: int) -> Any:
        return torch.clamp(above(back) - 1, min=0)

    def byte(v: Any) -> Any:
        return torch.clamp(v, 0, 255)

    n = torch.clamp(up - 1, min=0)
    if kind < K.COLOUR_3:
        w = c & 0xFF
        if kind == K.IMAGE_GRADIENT:
            v = byte(w + n - near(r + 1))
        elif kind == K.IMAGE_QUANT:
            v = (((w >> 3) * 32 + (n >> 3)) * 32 + (near(r - 1) >> 3)) * 32 + (near(r + 1) >> 3)
        elif kind == K.IMAGE_AVERAGE:
            v = ((w + near(r - 1) + 1) >> 1) * 64 + (n >> 2)
        else:  # IMAGE_SLOPE
            v = byte(2 * w - ((c >> 8) & 0xFF)) * 64 + (n >> 2)
    else:
        px = 3 if kind < K.COLOUR_4 else 4
        part = (kind - K.COLOUR_3) % K.COLOUR_KINDS_EACH
        w = near(px)
        ne = near(r - px) if r > px else torch.zeros_like(w)
        if part == K.COLOUR_GRADIENT:
            v = byte(w + n - near(r + px))
        elif part == K.COLOUR_QUANT:
            v = (((w >> 3) * 32 + (n >> 3)) * 32 + (ne >> 3)) * 32 + (near(r + px) >> 3)
        elif part == K.COLOUR_AVERAGE:
            v = ((w + ne + 1) >> 1) * 64 + (n >> 2)
        elif part == K.COLOUR_SLOPE:
            v = byte(2 * w - near(2 * px)) * 64 + (n >> 2)
        else:  # COLOUR_CROSS
            c1 = c & 0xFF
            v = byte(w + c1 - near(px + 1)) * 64 + (byte(n + c1 - near(r + 1)) >> 2)
    v = v * 2 + (up > 0).to(torch.int64)
    return (v + kind * 1000003) * _P[kind % 6]


def _segment_key(cm: Any, start: Any, shift: int) -> Any:
    """``adaptive._segment_key``: the match table's slot of context ``cm`` within the
    segment that starts at block offset ``start``."""
    return _shr((cm + (start + 1) * _P[3]) * _P[5], shift)


def equal_groups(torch: Any, keys: Any) -> Any:
    """For each element of ``keys``, a group id shared by exactly the elements of equal
    key (0 up to the number of groups - 1), found by a stable sort: the shapes do not
    depend on the data, so a captured step holds it, where ``torch.unique``'s output
    needs the host to learn its length."""
    ordered, perm = torch.sort(keys, stable=True)
    start = torch.ones_like(ordered, dtype=torch.bool)
    start[1:] = ordered[1:] != ordered[:-1]
    gid = torch.empty_like(perm)
    gid[perm] = torch.cumsum(start.to(torch.int64), dim=0) - 1
    return gid


def group_max(torch: Any, gid: Any, values: Any) -> Any:
    """The largest of ``values`` in each element's group (``equal_groups``), per element."""
    top = torch.full_like(values, torch.iinfo(torch.int64).min)
    top.scatter_reduce_(0, gid, values, reduce="amax")
    return top[gid]


def _write_matches(torch: Any, table: Any, keys: Any, own: Any, value: Any) -> None:
    """The loops' writes to the match table with nearby probes, segment by segment: at
    ``keys`` the larger of the slot and ``value``, then at ``own`` (the segment's own
    key) ``value`` itself. ``value`` grows with the segment, so a slot ends with the
    largest value written to it, or the larger of that and its old value where only the
    first kind of write touched it. Every write to a slot writes that one value."""
    slots = torch.cat([keys, own])
    gid = equal_groups(torch, slots)
    top = group_max(torch, gid, torch.cat([value, value]))
    replaced = group_max(torch, gid, torch.cat([torch.zeros_like(keys), torch.ones_like(own)]))
    table[slots] = torch.where(replaced > 0, top, torch.maximum(table[slots], top))
