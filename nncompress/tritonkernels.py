"""The kernels of ``tritonmix``, as plain Python functions in Triton's language.

They are compiled for a GPU (``triton.jit``'s ``JITFunction``) or run by Triton's
interpreter on CPU tensors (``InterpretedFunction``), whichever ``tritonmix.kernels`` asks
for; the interpreter runs a function with this module's ``tl`` standing for its own
operations, so ``tl`` is a global of this module. Imported only where Triton is.
"""

# ruff: noqa: N803 -- the block sizes are Triton's compile-time constants, in capitals

import triton
import triton.language as tl


@triton.jit
def _above(block_ptr, last, pos, first, back, mask):
    """``contexts._above``: the byte ``back`` before block offset ``pos``, plus 1, where the
    segment (from ``first``) has coded it, else 0; offsets clamped to 0 .. ``last``."""
    q = pos - back
    byte = tl.load(block_ptr + tl.minimum(tl.maximum(q, 0), last), mask=mask, other=0)
    return tl.where(q >= first, byte.to(tl.int64) + 1, 0)


@triton.jit
def _near(block_ptr, last, pos, first, back, mask):
    """``torchbytes._image_hash``'s ``near``: the byte ``back`` before, 0 before the
    segment's start."""
    return tl.maximum(_above(block_ptr, last, pos, first, back, mask) - 1, 0)


@triton.jit
def _clamp_byte(v):
    return tl.minimum(tl.maximum(v, 0), 255)


@triton.jit
def _row_hashes(
    h, kind, primes, rconst, c, pos, first, r, block_ptr, last, live, p0, p1, p2, p3, p5
):
    """The record, pixel, image and colour kinds' hashes (``torchbytes.ByteWork.
    _record_hash``, ``_image_hash``) into their columns of ``h``: ``kind``, ``primes``
    and ``rconst`` are the columns' [1, NC]; the rest each segment's, [BLOCK]."""
    rr = tl.maximum(r, 1)  # (where there are no rows, every such column is its constant)
    up = _above(block_ptr, last, pos, first, rr, live)
    up2 = _above(block_ptr, last, pos, first, 2 * rr, live)
    left_up = _above(block_ptr, last, pos, first, rr + 1, live)
    right_up = _above(block_ptr, last, pos, first, rr - 1, live)
    b0 = c & 0xFF
    v = (tl.minimum(pos % rr, 4095) * 512 + up + 7700001) * p3
    h = tl.where(kind == 20, v[:, None], h)
    h = tl.where(kind == 21, ((((up * 512 + up2) * 256 + b0) + 8800003) * p0)[:, None], h)
    v = ((left_up * 512 + up) * 512 + right_up) * 256 + b0
    h = tl.where(kind == 22, ((v + 9900007) * p2)[:, None], h)
    ru = tl.where(right_up > 0, (right_up - 1) >> 6, 4)
    lu = tl.where(left_up > 0, (left_up - 1) & 3, 4)
    v = ((up * 8 + ru) * 8 + lu) * 16 + (b0 & 0xF)
    h = tl.where(kind == 23, ((v + 1200007) * p1)[:, None], h)
    v = (up2 * 512 + up) * 4 + (b0 & 3)
    h = tl.where(kind == 24, ((v + 1600007) * p5)[:, None], h)
    # The image kinds (one byte a pixel), then the colour kinds (3 or 4).
    n = tl.maximum(up - 1, 0)
    nw1 = _near(block_ptr, last, pos, first, rr + 1, live)
    ne1 = _near(block_ptr, last, pos, first, rr - 1, live)
    img = tl.zeros_like(h)
    img = tl.where(kind == 37, _clamp_byte(b0 + n - nw1)[:, None], img)
    v = (((b0 >> 3) * 32 + (n >> 3)) * 32 + (ne1 >> 3)) * 32 + (nw1 >> 3)
    img = tl.where(kind == 38, v[:, None], img)
    img = tl.where(kind == 39, (((b0 + ne1 + 1) >> 1) * 64 + (n >> 2))[:, None], img)
    v = _clamp_byte(2 * b0 - ((c >> 8) & 0xFF)) * 64 + (n >> 2)
    img = tl.where(kind == 40, v[:, None], img)
    for px in tl.static_range(3, 5):
        base = 41 + 5 * (px - 3)
        w = _near(block_ptr, last, pos, first, px, live)
        wide = tl.zeros_like(pos) + r > px  # (a block: the interpreter's masks want one)
        ne = tl.where(wide, _near(block_ptr, last, pos, first, rr - px, live), 0)
        nw = _near(block_ptr, last, pos, first, rr + px, live)
        img = tl.where(kind == base, _clamp_byte(w + n - nw)[:, None], img)
        v = (((w >> 3) * 32 + (n >> 3)) * 32 + (ne >> 3)) * 32 + (nw >> 3)
        img = tl.where(kind == base + 1, v[:, None], img)
        img = tl.where(kind == base + 2, (((w + ne + 1) >> 1) * 64 + (n >> 2))[:, None], img)
        ww = _near(block_ptr, last, pos, first, 2 * px, live)
        img = tl.where(kind == base + 3, (_clamp_byte(2 * w - ww) * 64 + (n >> 2))[:, None], img)
        wnw = _near(block_ptr, last, pos, first, px + 1, live)
        v = _clamp_byte(w + b0 - wnw) * 64 + (_clamp_byte(n + b0 - nw1) >> 2)
        img = tl.where(kind == base + 4, v[:, None], img)
    img = (img * 2 + (up > 0).to(tl.int64)[:, None] + kind * 1000003) * primes
    h = tl.where(kind >= 37, img, h)
    rows = (kind >= 37) | ((kind >= 20) & (kind <= 24))
    return tl.where(rows & (tl.zeros_like(kind) + r <= 0), rconst, h)


def _hashes(
    k, ctx_ptr, words_ptr, wstride, lines_ptr, lstride, block_ptr, n_ptr,
    kinds_ptr, masks_ptr, primes_ptr, rconst_ptr, ex_ptr, bucket_ptr, r, out_ptr,
    p0, p1, p2, p3, p4, p5,
    N_CTX: tl.constexpr, NC: tl.constexpr, BLOCK: tl.constexpr, ROWS: tl.constexpr,
):  # fmt: skip
    """Each context's hash, [k, N_CTX] in the configuration's order
    (``torchbytes.ByteWork._hashes``), for every kind hashed once a byte: the orders,
    words, sparse bytes, columns and lines (``contexts`` 1 to 19), the machine-word kinds
    (25-27), the sparse and match kinds (33-36) and, where ``ROWS``, the record, pixel,
    image and colour kinds (20-24, 37-50), which read bytes whole rows of ``r`` back.
    ``p0``-``p5``: the hashes' multipliers; an order-n kind's mask and multiplier are
    its column's, as an image or colour kind's multiplier is, and a row kind's hash
    where the block has no rows (``r`` 0) is its column's ``rconst``."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = i < k
    c = tl.load(ctx_ptr + i, mask=live, other=0)
    w0 = tl.load(words_ptr + i, mask=live, other=0)
    w1 = tl.load(words_ptr + wstride + i, mask=live, other=0)
    w2 = tl.load(words_ptr + 2 * wstride + i, mask=live, other=0)
    col = tl.load(lines_ptr + i, mask=live, other=0)
    start = tl.load(lines_ptr + lstride + i, mask=live, other=0)
    before = tl.load(lines_ptr + 2 * lstride + i, mask=live, other=0)
    indent = tl.load(lines_ptr + 3 * lstride + i, mask=live, other=0)
    last = tl.load(n_ptr) - 1  # a block's offsets are clamped to 0 .. n - 1
    first = tl.load(block_ptr + tl.minimum(tl.maximum(start, 0), last), mask=live, other=0)
    first = tl.where(col > 0, first.to(tl.int64) + 1, 0)
    # The bytes above in the line before, where it reaches that far.
    q = before + col
    up = tl.load(block_ptr + tl.minimum(tl.maximum(q, 0), last), mask=live, other=0)
    up = tl.where((before >= 0) & (q < start), up.to(tl.int64) + 1, 0)
    up1 = tl.load(block_ptr + tl.minimum(tl.maximum(q + 1, 0), last), mask=live, other=0)
    up1 = tl.where((before >= 0) & (q + 1 < start), up1.to(tl.int64) + 1, 0)
    lead = (col == indent).to(tl.int64)
    o = tl.arange(0, NC)
    on = o < N_CTX
    kind = tl.load(kinds_ptr + o, mask=on, other=0)[None, :]
    masks = tl.load(masks_ptr + o, mask=on, other=0)[None, :]
    primes = tl.load(primes_ptr + o, mask=on, other=0)[None, :]
    h = ((c[:, None] & masks) + kind) * primes  # the order-n kinds
    h = tl.where(kind == 9, ((w0 + 1) * p4)[:, None], h)
    h = tl.where(kind == 10, ((w0 ^ (w1 * p3)) * p1)[:, None], h)
    h = tl.where(kind == 11, (((w0 + 12345) * p0 + (c & 0xFF) + 1) * p3)[:, None], h)
    h = tl.where(kind == 12, ((tl.minimum(col, 63) * 512 + up + 100000) * p2)[:, None], h)
    v = tl.minimum(col, 255) * 65536 + (c & 0xFFFF)
    h = tl.where(kind == 13, ((v + 900002) * p4)[:, None], h)
    h = tl.where(kind == 14, ((((c >> 8) & 0xFFFF) + 7000001) * p1)[:, None], h)
    v = tl.minimum(indent, 63) * 512 + lead * 256 + (c & 0xFF)
    h = tl.where(kind == 15, ((v + 3000017) * p0)[:, None], h)
    h = tl.where(kind == 16, ((first * 65536 + (c & 0xFFFF) + 5000011) * p2)[:, None], h)
    h = tl.where(kind == 17, ((((c >> 16) & 0xFFFF) + 9000007) * p3)[:, None], h)
    v = w0 ^ (w1 * p3) ^ (w2 * p4)
    h = tl.where(kind == 18, ((v + 77) * p5)[:, None], h)
    v = (up * 512 + up1) * 256 + (c & 0xFF)
    h = tl.where(kind == 19, ((v + 4242) * p1)[:, None], h)
    # The machine-word kinds, by the offset in the block.
    pos = start + col
    pos4 = pos & 3
    b0 = c & 0xFF
    b3 = (c >> 24) & 0xFF
    h = tl.where(kind == 25, (((pos4 << 8) + b0 + 2600011) * p2)[:, None], h)
    v = (pos4 << 16) + b3 * 256 + ((c >> 56) & 0xFF)
    h = tl.where(kind == 26, ((v + 2700013) * p4)[:, None], h)
    h = tl.where(kind == 27, ((b3 * 256 + b0 + 2800019) * p3)[:, None], h)
    # The sparse kinds, and the match model's expected byte and length class.
    b1 = (c >> 8) & 0xFF
    h = tl.where(kind == 33, ((b1 + 3300001) * p0)[:, None], h)
    h = tl.where(kind == 34, ((((b1 << 8) | b3) + 3400003) * p4)[:, None], h)
    h = tl.where(kind == 35, (((c & 0xF0F0F0) + 3500017) * p3)[:, None], h)
    ex = tl.load(ex_ptr + i, mask=live, other=0)
    bucket = tl.load(bucket_ptr + i, mask=live, other=0)
    h = tl.where(kind == 36, (((ex + 1) * 64 + bucket + 3600011) * p1)[:, None], h)
    if ROWS:
        h = _row_hashes(
            h, kind, primes, tl.load(rconst_ptr + o, mask=on, other=0)[None, :], c, pos,
            tl.load(lines_ptr + 5 * lstride + i, mask=live, other=0), r, block_ptr, last,
            live, p0, p1, p2, p3, p5,
        )  # fmt: skip
    at = out_ptr + i.to(tl.int64)[:, None] * N_CTX + o[None, :]
    tl.store(at, h, mask=live[:, None] & on[None, :])


@triton.jit
def _known_byte(
    pos, mask, block_ptr, n, block_pos, history_ptr, history_base, h_len,
    starts_ptr, n_seg, done_ptr, steps,
):  # fmt: skip
    """``torchbytes.BlockTensors.known_byte``: the byte at each stream offset in ``pos``
    once a segment (of either group) has coded it or the window holds it, else -1. A
    segment is found by a binary search of ``steps`` halvings over the block's
    ``n_seg`` starts (``torch.searchsorted``'s)."""
    off = pos - block_pos
    hidx = pos - history_base
    window = tl.load(
        history_ptr + tl.minimum(tl.maximum(hidx, 0), h_len - 1), mask=mask, other=0
    ).to(tl.int64)
    offc = tl.minimum(tl.maximum(off, 0), n - 1)
    # The last segment that starts at or before ``offc``: ``lo`` always starts there
    # (the first starts at 0), ``hi`` never does or is past the last.
    lo = tl.zeros_like(offc)
    hi = lo + n_seg
    for _ in range(steps):
        mid = (lo + hi) // 2
        go = tl.load(starts_ptr + mid, mask=mask, other=0) <= offc
        lo = tl.where(go, mid, lo)
        hi = tl.where(go, hi, mid)
    start = tl.load(starts_ptr + lo, mask=mask, other=0)
    coded = (off >= 0) & (off < n) & (offc - start < tl.load(done_ptr + lo, mask=mask, other=0))
    here = tl.load(block_ptr + offc, mask=mask, other=0).to(tl.int64)
    return tl.where((off < 0) & (hidx >= 0), window, tl.where(coded, here, -1))


def _byte_begin(
    k, f_ptr, f_stride, cum_ptr, mptr_ptr, mlen_ptr, mseed_ptr, buckets_ptr,
    expected_ptr, ml_ptr, bucket_ptr, mixset_ptr, ex_ptr,
    block_ptr, n_ptr, pos_ptr, history_ptr, hbase_ptr, h_len, starts_ptr, n_seg, done_ptr,
    steps,
    BLOCK: tl.constexpr,
):  # fmt: skip
    """The byte's work before the bits but the hashes (``torchbytes.ByteWork.begin``):
    the network's cumulative frequencies, [k, 257]; the match model's expected byte, its
    length (0 where its byte is not known; in ``mlen`` and, for the bits, in ``ml``),
    its length class, its mixer set, and the expected byte or -1 (for the hashes)."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = i < k
    w = tl.arange(0, 256)
    row = i.to(tl.int64)[:, None]
    f = tl.load(f_ptr + row * f_stride + w[None, :], mask=live[:, None], other=0)
    tl.store(cum_ptr + row * 257 + 1 + w[None, :], tl.cumsum(f.to(tl.int64), axis=1),
             mask=live[:, None])  # fmt: skip
    tl.store(cum_ptr + i.to(tl.int64) * 257, tl.zeros([BLOCK], tl.int64), mask=live)
    ml = tl.load(mlen_ptr + i, mask=live, other=0)
    expected = _known_byte(
        tl.load(mptr_ptr + i, mask=live, other=-1), live, block_ptr, tl.load(n_ptr),
        tl.load(pos_ptr), history_ptr, tl.load(hbase_ptr), h_len, starts_ptr, n_seg,
        done_ptr, steps,
    )  # fmt: skip
    ml = tl.where((ml > 0) & (expected < 0), 0, ml)
    tl.store(mlen_ptr + i, ml, mask=live)
    tl.store(ml_ptr + i, ml, mask=live)
    tl.store(expected_ptr + i, tl.where(ml > 0, expected, 0), mask=live)
    tl.store(ex_ptr + i, tl.where(ml > 0, expected, -1), mask=live)
    seeded = tl.load(mseed_ptr + i, mask=live, other=0)
    bucket = tl.load(buckets_ptr + tl.minimum(ml, 512), mask=live, other=0) + 24 * seeded
    tl.store(bucket_ptr + i, bucket, mask=live)
    tl.store(mixset_ptr + i, tl.minimum((ml + 7) // 8, 3) * 256, mask=live)


@triton.jit
def _shr(x, s, low):
    """``x >> s`` of the uint64 that ``x`` holds the bits of; ``low``: the low 64 - s
    bits' mask (``torchbytes._shr``)."""
    return (x >> s) & low


def _byte_end(
    k, b_ptr, starts_ptr, lo, step_ptr, block_ptr, done_ptr, expected_ptr,
    mlen_ptr, mptr_ptr, mseed_ptr, ctx_ptr, lines_ptr, lstride, words_ptr, wstride, p3, p5,
    matching, cm_mask, shift, low, table_ptr, probes, all_starts_ptr, n_seg, pos_ptr,
    lend_ptr, keys_ptr, own_ptr, no_lender, seed_len,
    BLOCK: tl.constexpr,
):  # fmt: skip
    """The byte's work after the bits but the seeding (``torchbytes.ByteWork.end``):
    each segment's byte into the block, its match continued or ended, its context, line
    and word; then, where ``matching``, the match model's lookups (its own part of the
    block first, with ``probes`` probes) for segments without a match, and the table's
    slots to write (``keys``, ``own``). ``lend``: the distance a segment in a long match
    lends its successor, else ``no_lender``."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = i < k
    b = tl.load(b_ptr + i, mask=live, other=0)
    t = tl.load(step_ptr)
    starts = tl.load(starts_ptr + i, mask=live, other=0)
    tl.store(block_ptr + starts + t, b.to(tl.uint8), mask=live)
    tl.store(done_ptr + lo + i, tl.full([BLOCK], 1, tl.int64) + t, mask=live)
    ml = tl.load(mlen_ptr + i, mask=live, other=0)
    mptr = tl.load(mptr_ptr + i, mask=live, other=0)
    mseed = tl.load(mseed_ptr + i, mask=live, other=0)
    on = (ml > 0) & (tl.load(expected_ptr + i, mask=live, other=0) == b)
    ml = tl.where(on, tl.minimum(ml + 1, 65535), 0)
    mptr = tl.where(on, mptr + 1, -1)
    mseed = tl.where(on, mseed, 0)
    c = (tl.load(ctx_ptr + i, mask=live, other=0) << 8) | b
    tl.store(ctx_ptr + i, c, mask=live)
    # The line: its column, its start, the line before's start, its indent.
    col = tl.load(lines_ptr + i, mask=live, other=0)
    start = tl.load(lines_ptr + lstride + i, mask=live, other=0)
    before = tl.load(lines_ptr + 2 * lstride + i, mask=live, other=0)
    indent = tl.load(lines_ptr + 3 * lstride + i, mask=live, other=0)
    nl = b == 10
    indenting = (col == indent) & ((b == 32) | (b == 9))
    tl.store(lines_ptr + 2 * lstride + i, tl.where(nl, start, before), mask=live)
    tl.store(lines_ptr + lstride + i, tl.where(nl, starts + t + 1, start), mask=live)
    indent = tl.where(nl, 0, indent + indenting.to(tl.int64))
    tl.store(lines_ptr + 3 * lstride + i, indent, mask=live)
    tl.store(lines_ptr + i, tl.where(nl, 0, col + 1), mask=live)
    # The word and the two before: letters (case folded), digits, '_' and non-ASCII.
    w0 = tl.load(words_ptr + i, mask=live, other=0)
    w1 = tl.load(words_ptr + wstride + i, mask=live, other=0)
    w2 = tl.load(words_ptr + 2 * wstride + i, mask=live, other=0)
    low_b = tl.where((b >= 65) & (b <= 90), b + 32, b)
    letter = ((low_b >= 97) & (low_b <= 122)) | ((low_b >= 48) & (low_b <= 57))
    letter = letter | (low_b == 95) | (low_b >= 128)
    ends = tl.where(letter, False, w0 != 0)
    tl.store(words_ptr + 2 * wstride + i, tl.where(ends, w1, w2), mask=live)
    tl.store(words_ptr + wstride + i, tl.where(ends, w0, w1), mask=live)
    tl.store(words_ptr + i, tl.where(letter, (w0 + low_b + 1) * p5, 0), mask=live)
    # The match model's lookups: the latest occurrence of the context in the segment's
    # own part of the block, else the nearest segments' (-1, +1, -2, ... segments away),
    # else anywhere (the table's slot of the context alone).
    t1 = t + 1
    # (A block of the flag, not the flag: the interpreter cannot mask by a block and
    # a scalar's conjunction.)
    find = live & (tl.zeros([BLOCK], tl.int64) + matching != 0)
    cm = c & cm_mask
    keys = _shr(cm * p5, shift, low)
    cand = tl.load(table_ptr + keys, mask=find, other=0) - 1
    pos = tl.load(pos_ptr)
    found = ml != 0
    for q in range(probes):
        j = lo + i + (q + 1) // 2 * (1 - 2 * (q % 2))
        valid = find & (j >= 0) & (j < n_seg)
        s = tl.load(all_starts_ptr + j, mask=valid, other=0)
        at = tl.load(table_ptr + _shr((cm + (s + 1) * p3) * p5, shift, low), mask=valid, other=0)
        hit = valid & (pos + s <= at - 1) & (at - 1 <= pos + s + t1) & ~found
        cand = tl.where(hit, at - 1, cand)
        found = found | hit
    take = find & (ml == 0) & (cand >= 0)
    mptr = tl.where(take, cand, mptr)
    ml = tl.where(take, matching, ml)
    mseed = tl.where(take, 0, mseed)
    tl.store(mlen_ptr + i, ml, mask=live)
    tl.store(mptr_ptr + i, mptr, mask=live)
    tl.store(mseed_ptr + i, mseed, mask=live)
    tl.store(keys_ptr + i, keys, mask=find)
    tl.store(own_ptr + i, _shr((cm + (starts + 1) * p3) * p5, shift, low), mask=find)
    here = pos + starts + t1
    tl.store(lend_ptr + i, tl.where(ml >= seed_len, here - mptr, no_lender), mask=live)


def _match_clear(k, own_ptr, table_ptr, BLOCK: tl.constexpr):
    """Empty each segment's own slot of the match table, which its write replaces: the
    writes that follow (``_seed``) keep the largest, of the slot's old value too where
    nothing replaced it (``torchbytes._write_matches``)."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = i < k
    own = tl.load(own_ptr + i, mask=live, other=0)
    tl.store(table_ptr + own, tl.zeros([BLOCK], tl.int64), mask=live)


def _seed(
    k, starts_ptr, step_ptr, mlen_ptr, mptr_ptr, mseed_ptr, lend_ptr, ints_ptr, reach,
    matching, probes, table_ptr, keys_ptr, own_ptr, first_ptr, no_lender, rep_len,
    block_ptr, n_ptr, pos_ptr, history_ptr, hbase_ptr, h_len, all_starts_ptr, n_seg,
    done_ptr, steps,
    BLOCK: tl.constexpr, REACH: tl.constexpr,
):  # fmt: skip
    """The match table's writes, then ``adaptive._seed_matches``: a segment without a
    match tries its predecessor's distance (``lend``), else the stream's, where its last
    ``reach`` bytes agree with those before the borrowed position. The first segment
    left in a long match is marked in ``first`` by an atomic minimum (``_repeat``)."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = i < k
    t1 = tl.load(step_ptr) + 1
    pos = tl.load(pos_ptr)
    starts = tl.load(starts_ptr + i, mask=live, other=0)
    value = pos + starts + t1 + 1
    writing = live & (tl.zeros([BLOCK], tl.int64) + matching != 0)
    keys = tl.load(keys_ptr + i, mask=writing, other=0)
    tl.atomic_max(table_ptr + keys, value, mask=writing)
    own = tl.load(own_ptr + i, mask=writing, other=0)
    tl.atomic_max(table_ptr + own, value, mask=writing & (tl.zeros([BLOCK], tl.int64) + probes > 0))
    ml = tl.load(mlen_ptr + i, mask=live, other=0)
    mptr = tl.load(mptr_ptr + i, mask=live, other=0)
    here = pos + starts + t1
    lent = tl.load(lend_ptr + i - 1, mask=live & (i > 0), other=no_lender)
    d = tl.where(lent != no_lender, lent, tl.load(ints_ptr + 3))
    src = here - d
    back = tl.arange(0, REACH) + 1
    on = live[:, None] & (back[None, :] <= reach)
    own_bytes = tl.load(block_ptr + (starts + t1)[:, None] - back[None, :], mask=on, other=0)
    theirs = _known_byte(
        src[:, None] - back[None, :], on, block_ptr, tl.load(n_ptr), pos, history_ptr,
        tl.load(hbase_ptr), h_len, all_starts_ptr, n_seg, done_ptr, steps,
    )  # fmt: skip
    bad = tl.sum(tl.where(on & (theirs != own_bytes.to(tl.int64)), 1, 0), axis=1) > 0
    take = live & (ml == 0) & (d > 0) & ~bad
    mptr = tl.where(take, src, mptr)
    ml = tl.where(take, reach, ml)
    tl.store(mptr_ptr + i, mptr, mask=live)
    tl.store(mlen_ptr + i, ml, mask=live)
    tl.store(mseed_ptr + i, tl.full([BLOCK], 1, tl.int64), mask=take)
    long = live & (ml >= rep_len)
    tl.atomic_min(first_ptr + tl.zeros([BLOCK], tl.int32), i.to(tl.int64), mask=long)


def _repeat(k, first_ptr, starts_ptr, mptr_ptr, ints_ptr, pos_ptr, step_ptr, BLOCK: tl.constexpr):
    """The stream's repeat distance, the first long match's (``_seed``'s mark), where
    one is; the mark cleared, and the step counted. One program."""
    first = tl.load(first_ptr)
    t1 = tl.load(step_ptr) + 1
    f = tl.minimum(first, k - 1)
    here = tl.load(pos_ptr) + tl.load(starts_ptr + f) + t1
    tl.store(ints_ptr + 3, tl.abs(here - tl.load(mptr_ptr + f)), mask=first < k)
    tl.store(first_ptr, first * 0 + (1 << 62))
    tl.store(step_ptr, t1)


def _byte_rows(
    k, ctx_ptr, mixset_ptr, ml_ptr, expected_ptr, col_ptr, class_ptr,
    kind_ptr, mult_ptr, first_ptr, p2, base_w, base_w2, base_w3, base_apm,
    sel1_ptr, sel2_ptr, sel3_ptr, arow_ptr, row2_ptr, xbase_ptr, agreeing_ptr,
    N_MIX: tl.constexpr, BLOCK: tl.constexpr, NM: tl.constexpr,
):  # fmt: skip
    """A byte's part of each mixer's and refinement stage's row (``torchmix``'s
    ``_begin``, after the byte's work): the bits add their own parts. The extra mixers'
    kinds are ``contexts.MIX_*``, 1 to 5, each its weight sets a byte-level value
    (``torchmix._MIXER_PARTS``)."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = i < k
    ctx = tl.load(ctx_ptr + i, mask=live, other=0)
    b1 = ctx & 0xFF
    mixset = tl.load(mixset_ptr + i, mask=live, other=0)
    ml = tl.load(ml_ptr + i, mask=live, other=0)
    tl.store(sel1_ptr + i, mixset + base_w, mask=live)
    tl.store(sel2_ptr + i, (mixset // 256) * 8 + base_w2, mask=live)
    tl.store(sel3_ptr + i, b1 * 8 + base_w3, mask=live)
    tl.store(arow_ptr + i, (b1 << 8) + base_apm, mask=live)
    tl.store(row2_ptr + i, ((ctx & 0xFFFF) + 1) * p2, mask=live)
    tl.store(agreeing_ptr + i, (ml > 0).to(tl.int64), mask=live)
    # The classes of the context's last 8 bytes, the latest first: the first three, and
    # how many of them from the latest are letters (classes 0 to 2).
    a = tl.load(class_ptr + b1, mask=live, other=0)
    b2 = tl.load(class_ptr + ((ctx >> 8) & 0xFF), mask=live, other=0)
    d = tl.load(class_ptr + ((ctx >> 16) & 0xFF), mask=live, other=0)
    run = a <= 2
    word = run.to(tl.int64)
    for n in tl.static_range(1, 8):
        run = run & (tl.load(class_ptr + ((ctx >> (8 * n)) & 0xFF), mask=live, other=0) <= 2)
        word += run.to(tl.int64)
    col = tl.minimum(tl.load(col_ptr + i, mask=live, other=0), 3)
    expected = tl.where(ml > 0, tl.load(expected_ptr + i, mask=live, other=0), -1)
    m = tl.arange(0, NM)
    on = m < N_MIX
    kind = tl.load(kind_ptr + m, mask=on, other=0)[None, :]
    by_classes = tl.where(
        kind == 1, ((a * 8 + b2) * 4 + col)[:, None], ((a * 8 + b2) * 8 + d)[:, None]
    )
    by_word = tl.where(kind == 3, (word * 8 + a)[:, None], by_classes)
    by_byte = tl.where(kind == 4, b1[:, None], (expected + 1)[:, None])
    v = tl.where(kind <= 3, by_word, by_byte)
    mult = tl.load(mult_ptr + m, mask=on, other=0)[None, :]
    first = tl.load(first_ptr + m, mask=on, other=0)[None, :]
    at = xbase_ptr + i.to(tl.int64)[:, None] * N_MIX + m[None, :]
    tl.store(at, v * mult + first, mask=live[:, None] & on[None, :])


def _predict(
    c0_ptr, k, j,
    cum_ptr, cum_stride, nodes_ptr, stretch_ptr, squash_ptr,
    hashes_ptr, c0_prime, slot_bits, ctx_ptr,
    expected_ptr, agreeing_ptr, bucket_ptr, mlen_ptr, mprob_ptr, seen_ptr,
    sel1_ptr, sel2_ptr, sel3_ptr, xbase_ptr, xbyj_ptr, xshift_ptr,
    mix_ptr, wf_ptr, row2_ptr, p3, arow_ptr, apm2_base, apms_ptr, ident_ptr, apm_q,
    p_ptr, x_ptr, slots_ptr, tag_ptr, pctx_ptr, ctxn_ptr, eb_ptr, sel_ptr, pm_ptr,
    d_ptr, pmix_ptr, aidx_ptr, aval_ptr, mpold_ptr,
    N_CTX: tl.constexpr, N_MIX: tl.constexpr, BLOCK: tl.constexpr, NC: tl.constexpr,
    NM: tl.constexpr, P_BITS: tl.constexpr, HALF: tl.constexpr, SMAX: tl.constexpr,
    KNOTS: tl.constexpr,
):  # fmt: skip
    """P(bit j = 1) of each of the step's ``k`` segments (``torchmix``'s ``_predict``),
    and what the update reads: the inputs, slots, tags, the mixers' sets and outputs,
    the nearer refinement knots and their values, the match buckets' values."""
    n_in = N_CTX + 4
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = i < k
    c0 = tl.load(c0_ptr + i, mask=live, other=1)
    # The network's input: P(bit = 1) at the byte tree's node, from its bounds in the
    # cumulative frequencies.
    node = (c0 - 1) * 3
    row = cum_ptr + i.to(tl.int64) * cum_stride
    lo = tl.load(row + tl.load(nodes_ptr + node, mask=live, other=0), mask=live, other=0)
    mid = tl.load(row + tl.load(nodes_ptr + node + 1, mask=live, other=0), mask=live, other=0)
    hi = tl.load(row + tl.load(nodes_ptr + node + 2, mask=live, other=0), mask=live, other=1)
    q = ((hi - mid) << P_BITS) // tl.where(live, hi - lo, 1)
    q = tl.minimum(tl.maximum(q, 32), (1 << P_BITS) - 32)
    net = tl.load(stretch_ptr + (q >> 4), mask=live, other=0)
    # Each context's slot, check tag and statistics, [BLOCK, NC].
    o = tl.arange(0, NC)
    live2 = live[:, None] & (o[None, :] < N_CTX)
    at2 = i.to(tl.int64)[:, None] * N_CTX + o[None, :]
    hh = tl.load(hashes_ptr + at2, mask=live2, other=0) ^ (c0 * c0_prime)[:, None]
    slots = ((hh >> (64 - slot_bits)) & ((1 << slot_bits) - 1)) + (o.to(tl.int64) << slot_bits)[
        None, :
    ]
    tag = (hh >> 24) & 0x7FFF
    p0 = tl.load(ctx_ptr + slots * 2, mask=live2, other=0).to(tl.int64)
    meta = tl.load(ctx_ptr + slots * 2 + 1, mask=live2, other=0).to(tl.int64)
    same = (meta >> 16) == tag
    p_ctx = tl.where(same, p0 + HALF, HALF)
    ctx_n = tl.where(same, meta & 0xFFFF, -1)
    x_ctx = tl.load(stretch_ptr + (p_ctx >> 4), mask=live2, other=0)
    # The match model's inputs, while the byte agrees with its expected byte.
    eb = (tl.load(expected_ptr + i, mask=live, other=0) >> (7 - j)) & 1
    sign = 2 * eb - 1
    agree = tl.load(agreeing_ptr + i, mask=live, other=0) != 0
    bucket = tl.load(bucket_ptr + i, mask=live, other=0)
    mp0 = tl.load(mprob_ptr + bucket * 2, mask=live, other=0)
    mp1 = tl.load(mprob_ptr + bucket * 2 + 1, mask=live, other=0)
    mlen = tl.load(mlen_ptr + i, mask=live, other=0)
    x_match = tl.where(agree, sign * tl.load(stretch_ptr + (mp0 >> 4), mask=live, other=0), 0)
    x_len = tl.where(agree, sign * tl.minimum(mlen * 32, SMAX), 0)
    # The inputs, [BLOCK, n_in]: the network, each context, the match model's two,
    # and the constant 256.
    xrow = x_ptr + i.to(tl.int64) * n_in
    tl.store(xrow, net, mask=live)
    tl.store(xrow[:, None] + 1 + o[None, :], x_ctx, mask=live2)
    tl.store(xrow + N_CTX + 1, x_match, mask=live)
    tl.store(xrow + N_CTX + 2, x_len, mask=live)
    tl.store(xrow + N_CTX + 3, tl.full([BLOCK], 256, tl.int64), mask=live)
    # Each mixer's weight set, [BLOCK, NM]: the three, then the extra ones.
    seen_k = tl.load(seen_ptr + o, mask=o < N_CTX, other=0) != 0
    seen = tl.sum(tl.where(live2 & seen_k[None, :] & (ctx_n > 0), 1, 0), axis=1)
    conf = tl.minimum(tl.abs(net) >> 7, 7)
    m = tl.arange(0, NM)
    e = tl.maximum(m - 3, 0)
    on_x = (m >= 3) & (m < 3 + N_MIX)
    live_m = live[:, None] & (m[None, :] < 3 + N_MIX)
    xb = tl.load(
        xbase_ptr + i.to(tl.int64)[:, None] * N_MIX + e[None, :],
        mask=live[:, None] & on_x[None, :],
        other=0,
    )
    by_j = tl.load(xbyj_ptr + e, mask=on_x, other=0) != 0
    shift = tl.load(xshift_ptr + e, mask=on_x, other=0)
    extra = xb + tl.where(by_j[None, :], j, c0[:, None] >> shift[None, :])
    s1 = tl.load(sel1_ptr + i, mask=live, other=0) + c0
    s2 = seen * 32 + conf + tl.load(sel2_ptr + i, mask=live, other=0)
    s3 = tl.load(sel3_ptr + i, mask=live, other=0) + j
    sel = tl.where(
        m[None, :] == 0,
        s1[:, None],
        tl.where(m[None, :] == 1, s2[:, None], tl.where(m[None, :] == 2, s3[:, None], extra)),
    )
    sel = tl.where(live_m, sel, 0)
    # Each mixer's dot product over the inputs, taken in their parts.
    w = mix_ptr + sel * n_in  # [BLOCK, NM]
    dot = net[:, None] * tl.load(w, mask=live_m, other=0)
    wc = tl.load(
        w[:, :, None] + 1 + o[None, None, :], mask=live_m[:, :, None] & live2[:, None, :], other=0
    )
    dot += tl.sum(x_ctx[:, None, :] * wc, axis=2)
    dot += x_match[:, None] * tl.load(w + N_CTX + 1, mask=live_m, other=0)
    dot += x_len[:, None] * tl.load(w + N_CTX + 2, mask=live_m, other=0)
    dot += 256 * tl.load(w + N_CTX + 3, mask=live_m, other=0)
    d = tl.minimum(tl.maximum(dot >> 16, -SMAX), SMAX)
    pm = tl.load(squash_ptr + d + SMAX, mask=live_m, other=0)
    wf = tl.load(wf_ptr + c0[:, None] * (3 + N_MIX) + m[None, :], mask=live_m, other=0)
    fin = tl.sum(tl.where(live_m, d * wf, 0), axis=1)
    fin = tl.minimum(tl.maximum(fin >> 16, -SMAX), SMAX)
    p_mix = tl.load(squash_ptr + fin + SMAX, mask=live, other=0)
    # The refinement stages: two rows of the joined table, each read at the knots
    # either side of the point, weighed by their nearness.
    pos = fin + 2048
    aidx = pos >> 7
    aw = pos & 127
    h2 = tl.load(row2_ptr + i, mask=live, other=0) + c0 * p3
    row_a = tl.load(arow_ptr + i, mask=live, other=0) + c0
    row_b = ((h2 >> 48) & 0xFFFF) + apm2_base
    id0 = tl.load(ident_ptr + aidx, mask=live, other=0)
    id1 = tl.load(ident_ptr + aidx + 1, mask=live, other=0)
    a0 = tl.load(apms_ptr + row_a * KNOTS + aidx, mask=live, other=0).to(tl.int64) + id0
    a1 = tl.load(apms_ptr + row_a * KNOTS + aidx + 1, mask=live, other=0).to(tl.int64) + id1
    b0 = tl.load(apms_ptr + row_b * KNOTS + aidx, mask=live, other=0).to(tl.int64) + id0
    b1 = tl.load(apms_ptr + row_b * KNOTS + aidx + 1, mask=live, other=0).to(tl.int64) + id1
    ra = (a0 * (128 - aw) + a1 * aw) >> (7 + apm_q)
    rb = (b0 * (128 - aw) + b1 * aw) >> (7 + apm_q)
    pf = tl.minimum(tl.maximum((2 * p_mix + 3 * (ra + rb)) >> 3, 1), (1 << P_BITS) - 1)
    tl.store(p_ptr + i, pf, mask=live)
    # What the update reads: the nearer knot of each row, and its value now.
    up = aw >= 64
    tl.store(aidx_ptr + i * 2, row_a * KNOTS + aidx + up, mask=live)
    tl.store(aidx_ptr + i * 2 + 1, row_b * KNOTS + aidx + up, mask=live)
    tl.store(aval_ptr + i * 2, tl.where(up, a1, a0), mask=live)
    tl.store(aval_ptr + i * 2 + 1, tl.where(up, b1, b0), mask=live)
    tl.store(slots_ptr + at2, slots, mask=live2)
    tl.store(tag_ptr + at2, tag, mask=live2)
    tl.store(pctx_ptr + at2, p_ctx, mask=live2)
    tl.store(ctxn_ptr + at2, ctx_n, mask=live2)
    tl.store(eb_ptr + i, eb, mask=live)
    at_m = i.to(tl.int64)[:, None] * (3 + N_MIX) + m[None, :]
    tl.store(sel_ptr + at_m, sel, mask=live_m)
    tl.store(pm_ptr + at_m, pm, mask=live_m)
    tl.store(d_ptr + at_m, d, mask=live_m)
    tl.store(pmix_ptr + i, p_mix, mask=live)
    tl.store(mpold_ptr + i * 2, mp0, mask=live)
    tl.store(mpold_ptr + i * 2 + 1, mp1, mask=live)


def _learn_1(
    bit_ptr, k, c0_ptr, next_ptr, minus, aidx_ptr, aval_ptr, apms_ptr, apm_q, apm_rate,
    sel_ptr, count_ptr, final_count, slots_ptr, ctxn_ptr, ctx_ptr,
    agreeing_ptr, bucket_ptr, bcount_ptr,
    N_CTX: tl.constexpr, N_MIX: tl.constexpr, BLOCK: tl.constexpr, NC: tl.constexpr,
    NM: tl.constexpr, P_BITS: tl.constexpr,
):  # fmt: skip
    """Sums that read nothing this update writes: the refinement knots' moves, the
    weight sets' sharers, the claims, the match buckets' sharers. And the partial byte
    with the bit, less ``minus`` (256 after the last bit: the byte), into ``next``: the
    next bit's partial byte, where torch would take two or three launches of its own."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = i < k
    bit = tl.load(bit_ptr + i, mask=live, other=0)
    r = tl.arange(0, 2)
    at = i.to(tl.int64)[:, None] * 2 + r[None, :]
    live_r = live[:, None] & (r[None, :] < 2)
    idx = tl.load(aidx_ptr + at, mask=live_r, other=0)
    value = tl.load(aval_ptr + at, mask=live_r, other=0)
    delta = ((bit[:, None] << (P_BITS + apm_q)) - value) >> apm_rate
    tl.atomic_add(apms_ptr + idx, delta.to(tl.int32), mask=live_r)
    m = tl.arange(0, NM)
    live_m = live[:, None] & (m[None, :] < 3 + N_MIX)
    sel = tl.load(
        sel_ptr + i.to(tl.int64)[:, None] * (3 + N_MIX) + m[None, :], mask=live_m, other=0
    )
    tl.atomic_add(count_ptr + sel, tl.full([BLOCK, NM], 1, tl.int64), mask=live_m)
    c0 = tl.load(c0_ptr + i, mask=live, other=0)
    tl.atomic_add(count_ptr + final_count + c0, tl.full([BLOCK], 1, tl.int64), mask=live)
    tl.store(next_ptr + i, ((c0 << 1) | bit) - minus, mask=live)
    # A claim marks its slot's check word with minus (its place + 1): the least is
    # the last claimant's, which wins.
    o = tl.arange(0, NC)
    live2 = live[:, None] & (o[None, :] < N_CTX)
    at2 = i.to(tl.int64)[:, None] * N_CTX + o[None, :]
    slots = tl.load(slots_ptr + at2, mask=live2, other=0)
    claim = live2 & (tl.load(ctxn_ptr + at2, mask=live2, other=0) < 0)
    tl.atomic_min(ctx_ptr + slots * 2 + 1, (-(at2 + 1)).to(tl.int32), mask=claim)
    agree = tl.load(agreeing_ptr + i, mask=live, other=0)
    bucket = tl.load(bucket_ptr + i, mask=live, other=0)
    tl.atomic_add(bcount_ptr + bucket, agree, mask=live & (agree != 0))


def _learn_2(
    bit_ptr, k, c0_ptr, aidx_ptr, apms_ptr, ident_ptr, apm_q, apm_low, apm_high,
    sel_ptr, count_ptr, final_count, sqrt_ptr, mixshift_ptr, final_shift,
    x_ptr, pm_ptr, d_ptr, pmix_ptr, mix_ptr, wf_ptr,
    slots_ptr, tag_ptr, ctxn_ptr, ctx_ptr, held_ptr,
    eb_ptr, agreeing_ptr, bucket_ptr, bcount_ptr, mpold_ptr, mprob_ptr, rate_ptr,
    round_half,
    N_CTX: tl.constexpr, N_MIX: tl.constexpr, BLOCK: tl.constexpr, NC: tl.constexpr,
    NM: tl.constexpr, NI: tl.constexpr, P_BITS: tl.constexpr, KNOTS: tl.constexpr,
    COUNT_LIMIT: tl.constexpr,
):  # fmt: skip
    """The knots' clamps, the mixers' steps, the claims' winners and every slot's
    holders, the match buckets' moves."""
    n_in = N_CTX + 4
    n_mix = 3 + N_MIX
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = i < k
    bit = tl.load(bit_ptr + i, mask=live, other=0)
    target = bit << P_BITS
    r = tl.arange(0, 2)
    live_r = live[:, None] & (r[None, :] < 2)
    idx = tl.load(aidx_ptr + i.to(tl.int64)[:, None] * 2 + r[None, :], mask=live_r, other=0)
    knot = tl.load(ident_ptr + idx % KNOTS, mask=live_r, other=0)
    v = tl.load(apms_ptr + idx, mask=live_r, other=0).to(tl.int64) + knot
    v = tl.minimum(tl.maximum(v, apm_low), apm_high) - knot
    tl.store(apms_ptr + idx, v.to(tl.int32), mask=live_r)
    # Each mixer's step, damped by the square root of its weight set's sharers.
    m = tl.arange(0, NM)
    live_m = live[:, None] & (m[None, :] < n_mix)
    at_m = i.to(tl.int64)[:, None] * n_mix + m[None, :]
    sel = tl.load(sel_ptr + at_m, mask=live_m, other=0)
    shared = tl.load(count_ptr + sel, mask=live_m, other=0)
    shift = tl.load(mixshift_ptr + m, mask=m < n_mix, other=0)[None, :] + tl.load(
        sqrt_ptr + shared, mask=live_m, other=0
    )
    err = target[:, None] - tl.load(pm_ptr + at_m, mask=live_m, other=0)
    q = tl.arange(0, NI)
    live_q = live[:, None] & (q[None, :] < n_in)
    x = tl.load(x_ptr + i.to(tl.int64)[:, None] * n_in + q[None, :], mask=live_q, other=0)
    step = (x[:, None, :] * err[:, :, None]) >> shift[:, :, None]
    tl.atomic_add(
        mix_ptr + sel[:, :, None] * n_in + q[None, None, :],
        step,
        mask=live_m[:, :, None] & live_q[:, None, :],
    )
    c0 = tl.load(c0_ptr + i, mask=live, other=0)
    shared = tl.load(count_ptr + final_count + c0, mask=live, other=0)
    shift = final_shift + tl.load(sqrt_ptr + shared, mask=live, other=0)
    err = target - tl.load(pmix_ptr + i, mask=live, other=0)
    d = tl.load(d_ptr + at_m, mask=live_m, other=0)
    tl.atomic_add(
        wf_ptr + c0[:, None] * n_mix + m[None, :], (d * err[:, None]) >> shift[:, None], mask=live_m
    )
    # Claims: a marked slot belongs to the claimant its mark names; that winner makes
    # it empty, with its own tag. A segment holds its slot where the slot's tag, once
    # the claims are done, is its own: read from the mark where the winner has not
    # written yet.
    o = tl.arange(0, NC)
    live2 = live[:, None] & (o[None, :] < N_CTX)
    at2 = i.to(tl.int64)[:, None] * N_CTX + o[None, :]
    slots = tl.load(slots_ptr + at2, mask=live2, other=0)
    tag = tl.load(tag_ptr + at2, mask=live2, other=0)
    meta = tl.load(ctx_ptr + slots * 2 + 1, mask=live2, other=0).to(tl.int64)
    marked = meta < 0
    owner = tl.where(marked, -(meta + 1), 0)
    tag_now = tl.where(marked, tl.load(tag_ptr + owner, mask=live2 & marked, other=0), meta >> 16)
    claim = tl.load(ctxn_ptr + at2, mask=live2, other=0) < 0
    won = live2 & claim & marked & (owner == at2)
    tl.store(ctx_ptr + slots * 2, tl.zeros([BLOCK, NC], tl.int32), mask=won)
    tl.store(ctx_ptr + slots * 2 + 1, (tag << 16).to(tl.int32), mask=won)
    tl.store(held_ptr + at2, (tag_now == tag).to(tl.int64), mask=live2)
    # The match buckets' moves, from their values before the update.
    agree = tl.load(agreeing_ptr + i, mask=live, other=0) != 0
    bucket = tl.load(bucket_ptr + i, mask=live, other=0)
    mp0 = tl.load(mpold_ptr + i * 2, mask=live, other=0)
    mp1 = tl.load(mpold_ptr + i * 2 + 1, mask=live, other=0)
    counts = tl.load(bcount_ptr + bucket, mask=live, other=0)
    rate = tl.load(
        rate_ptr + tl.minimum(tl.maximum(mp1 + counts - 1, 0), COUNT_LIMIT), mask=live, other=0
    )
    eb = tl.load(eb_ptr + i, mask=live, other=0)
    right = (bit == eb).to(tl.int64) << P_BITS
    move = ((right - mp0) * rate + round_half) >> 16
    tl.atomic_add(mprob_ptr + bucket * 2, move, mask=live & agree)


def _learn_3(
    bit_ptr, k, c0_ptr, sel_ptr, count_ptr, final_count, slots_ptr, held_ptr, ctx_ptr,
    eb_ptr, agreeing_ptr, bcount_ptr, mprob_ptr, p_min, p_max, count_cap,
    N_CTX: tl.constexpr, N_MIX: tl.constexpr, BLOCK: tl.constexpr, NC: tl.constexpr,
    NM: tl.constexpr, BUCKETS: tl.constexpr,
):  # fmt: skip
    """The sharers' counts back to zero, each holder counted in its slot, the match
    buckets clamped and counted (by the first program), the agreement updated."""
    pid = tl.program_id(0)
    i = pid * BLOCK + tl.arange(0, BLOCK)
    live = i < k
    m = tl.arange(0, NM)
    live_m = live[:, None] & (m[None, :] < 3 + N_MIX)
    sel = tl.load(
        sel_ptr + i.to(tl.int64)[:, None] * (3 + N_MIX) + m[None, :], mask=live_m, other=0
    )
    tl.store(count_ptr + sel, tl.zeros([BLOCK, NM], tl.int64), mask=live_m)
    c0 = tl.load(c0_ptr + i, mask=live, other=0)
    tl.store(count_ptr + final_count + c0, tl.zeros([BLOCK], tl.int64), mask=live)
    o = tl.arange(0, NC)
    live2 = live[:, None] & (o[None, :] < N_CTX)
    at2 = i.to(tl.int64)[:, None] * N_CTX + o[None, :]
    slots = tl.load(slots_ptr + at2, mask=live2, other=0)
    held = live2 & (tl.load(held_ptr + at2, mask=live2, other=0) != 0)
    tl.atomic_add(ctx_ptr + slots * 2 + 1, tl.full([BLOCK, NC], 1, tl.int32), mask=held)
    b = tl.arange(0, BUCKETS)
    first = b < tl.where(pid == 0, BUCKETS, 0)  # the first program alone
    mp0 = tl.load(mprob_ptr + b * 2, mask=first, other=0)
    tl.store(mprob_ptr + b * 2, tl.minimum(tl.maximum(mp0, p_min), p_max), mask=first)
    counts = tl.load(bcount_ptr + b, mask=first, other=0)
    mp1 = tl.load(mprob_ptr + b * 2 + 1, mask=first, other=0)
    tl.store(mprob_ptr + b * 2 + 1, tl.minimum(mp1 + counts, count_cap), mask=first)
    tl.store(bcount_ptr + b, tl.zeros([BUCKETS], tl.int64), mask=first)
    bit = tl.load(bit_ptr + i, mask=live, other=0)
    eb = tl.load(eb_ptr + i, mask=live, other=0)
    agreeing = tl.load(agreeing_ptr + i, mask=live, other=0)
    tl.store(agreeing_ptr + i, tl.where(bit != eb, 0, agreeing), mask=live)


def _learn_4(
    bit_ptr, k, slots_ptr, held_ptr, ctxn_ptr, pctx_ptr, ctx_ptr, rate_ptr, round_half,
    N_CTX: tl.constexpr, BLOCK: tl.constexpr, NC: tl.constexpr, P_BITS: tl.constexpr,
    COUNT_LIMIT: tl.constexpr,
):  # fmt: skip
    """Each held slot moves towards the bit, at the rate of its count and its
    visits this step."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = i < k
    target = tl.load(bit_ptr + i, mask=live, other=0) << P_BITS
    o = tl.arange(0, NC)
    live2 = live[:, None] & (o[None, :] < N_CTX)
    at2 = i.to(tl.int64)[:, None] * N_CTX + o[None, :]
    slots = tl.load(slots_ptr + at2, mask=live2, other=0)
    held = live2 & (tl.load(held_ptr + at2, mask=live2, other=0) != 0)
    n_old = tl.maximum(tl.load(ctxn_ptr + at2, mask=live2, other=0), 0)
    meta = tl.load(ctx_ptr + slots * 2 + 1, mask=held, other=0).to(tl.int64)
    visits = (meta & 0xFFFF) - n_old
    at = tl.minimum(tl.maximum(n_old + visits - 1, 0), COUNT_LIMIT)
    rate = tl.load(rate_ptr + at, mask=held, other=0)
    p_ctx = tl.load(pctx_ptr + at2, mask=live2, other=0)
    move = ((target[:, None] - p_ctx) * rate + round_half) >> 16
    tl.atomic_add(ctx_ptr + slots * 2, move.to(tl.int32), mask=held)


def _learn_5(
    k, slots_ptr, ctx_ptr, p_low, p_high, count_cap,
    N_CTX: tl.constexpr, BLOCK: tl.constexpr, NC: tl.constexpr,
):  # fmt: skip
    """Every slot's probability clamped and count capped (each sharer writes the
    same values)."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    live = i < k
    o = tl.arange(0, NC)
    live2 = live[:, None] & (o[None, :] < N_CTX)
    slots = tl.load(slots_ptr + i.to(tl.int64)[:, None] * N_CTX + o[None, :], mask=live2, other=0)
    p = tl.load(ctx_ptr + slots * 2, mask=live2, other=0).to(tl.int64)
    meta = tl.load(ctx_ptr + slots * 2 + 1, mask=live2, other=0).to(tl.int64)
    over = tl.maximum((meta & 0xFFFF) - count_cap, 0)
    tl.store(ctx_ptr + slots * 2, tl.minimum(tl.maximum(p, p_low), p_high).to(tl.int32), mask=live2)
    tl.store(ctx_ptr + slots * 2 + 1, (meta - over).to(tl.int32), mask=live2)


def _decode_bits(
    k, p_ptr, bit_ptr, state_ptr, words_ptr, n_words, split_ptr, UNROLL: tl.constexpr,
):  # fmt: skip
    """``rangecoder.code_step_bits`` decoding: bit ``i`` of ``k`` at P(1) = p[i] / 65536,
    into ``bit``, from the block's 32-bit ``words`` (an int64 each), in one program: each
    decision needs the state the one before left. ``state``: [lower, range, point, next
    word] (uint64s as int64s) and a flag set where the words are not an encoder's, which
    the host reads when it takes the state back (the bits decoded after it are then
    anything; the block is refused). The decisions are compared, not divided:
    quantile >= s is point - lower >= scale * s, and quantile >= 2^24 is point - lower >=
    scale << 24 (scale >= 2^8, and neither product passes range). Each split is looked up
    (``rangecoder.splits``), ``UNROLL`` decisions' at a time: their loads do not wait for
    the state, so they are issued together and the chain waits on one load, not each."""
    lower = tl.load(state_ptr).to(tl.uint64, bitcast=True)
    rng = tl.load(state_ptr + 1).to(tl.uint64, bitcast=True)
    point = tl.load(state_ptr + 2).to(tl.uint64, bitcast=True)
    nxt = tl.load(state_ptr + 3)
    bad = tl.load(state_ptr + 4)
    for first in range(0, k, UNROLL):
        for u in tl.static_range(UNROLL):
            i = first + u
            live = i < k
            p = tl.load(p_ptr + i, mask=live, other=1)
            s = tl.load(split_ptr + p).to(tl.uint64, bitcast=True)
            scale = rng >> 24
            diff = point - lower
            bad = tl.where(live & (diff >= (scale << 24)), 1, bad)
            bound = scale * s
            one = diff >= bound
            tl.store(bit_ptr + i, one.to(tl.int64), mask=live)
            new_lower = tl.where(one, lower + bound, lower)
            new_rng = tl.where(one, scale * (16777216 - s), bound)
            lower = tl.where(live, new_lower, lower)
            rng = tl.where(live, new_rng, rng)
            # Fewer than 32 bits of range left: a word in, where there is one.
            shift = live & ((rng >> 32) == 0)
            more = shift & (nxt < n_words)
            word = tl.load(words_ptr + nxt, mask=more, other=0).to(tl.uint64, bitcast=True)
            lower = tl.where(shift, lower << 32, lower)
            rng = tl.where(shift, rng << 32, rng)
            point = tl.where(shift, (point << 32) | word, point)
            nxt = tl.where(more, nxt + 1, nxt)
    tl.store(state_ptr, lower.to(tl.int64, bitcast=True))
    tl.store(state_ptr + 1, rng.to(tl.int64, bitcast=True))
    tl.store(state_ptr + 2, point.to(tl.int64, bitcast=True))
    tl.store(state_ptr + 3, nxt)
    tl.store(state_ptr + 4, bad)


KERNELS = (
    _hashes,
    _byte_begin,
    _byte_end,
    _match_clear,
    _seed,
    _repeat,
    _byte_rows,
    _predict,
    _learn_1,
    _learn_2,
    _learn_3,
    _learn_4,
    _learn_5,
    _decode_bits,
)
