"""The byte's half of a step in torch (``torchbytes``) against the compiled loops'.

``tests/test_torchmix.py`` checks whole archives; here every step is compared: each
context's hash, the match model's expected byte, length and class, and afterwards every
segment's state (last bytes, words, lines, match pointer, length and seed), the match table
and the stream's repeat distance, for every byte-level context kind, with and without the
nearby segments' probes, at several match lengths, over two blocks (the second one's
matches reach into the window). The bytes are fed in directly, without predicting bits, so
that each difference shows at the step where it starts.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncompress import adaptive as A
from nncompress import contexts as K
from nncompress.coder import _layout
from nncompress.config import DEFAULT
from nncompress.format import segment_groups

torch = pytest.importorskip("torch")
from nncompress.torchbytes import ByteWork  # noqa: E402
from nncompress.torchmix import DeviceTables  # noqa: E402

#: Every context kind hashed once a byte, in two configurations (at most 32 kinds each).
TEXT_KINDS = tuple(range(1, K.SKIP_1_4 + 1))
OTHER_KINDS = tuple(range(K.SKIP_1, K.COLOUR_4 + K.COLOUR_KINDS_EACH))


@pytest.fixture(params=["cpu", "cuda"])
def device(request) -> str:
    """Where the torch side runs: CPU tensors, and a GPU where there is one."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return request.param


def _numpy(tensors: list) -> list:
    return [t.cpu().numpy().copy() for t in tensors]


def _run(
    blocks: list[bytes],
    config,
    segments: int,
    record: int,
    device: str | None,
    work: type = ByteWork,
) -> list:
    """Feed ``blocks`` through the byte work, the loops' (``device`` None) or ``work``'s
    on ``device``; returns what each step produced, as arrays to compare."""
    state = A.StreamState(config, block_size=max(len(b) for b in blocks))
    rng = np.random.default_rng(5)
    seen: list = []
    for data in blocks:
        n = len(data)
        groups = segment_groups(segments)
        coders = state.block_coders(n, segments, groups, record)
        tables = DeviceTables(state, device) if device else None
        works = (
            [work(bc, tables.block(bc), tables.t["match_table"]) for bc in coders] if tables else []
        )
        base, extra = _layout(n, segments)
        starts = coders[0].sh.starts
        for t in range(base + (extra > 0)):
            active = segments if t < base else extra
            for g, (lo, hi) in enumerate(groups):
                k = min(max(active - lo, 0), hi - lo)
                if k == 0:
                    continue
                bc = coders[g]
                freqs = rng.integers(1, 200, size=(hi - lo, 256)).astype(np.int32)
                byte = np.array([data[starts[lo + i] + t] for i in range(k)], dtype=np.int64)
                if tables:
                    w = works[g]
                    w.begin(torch.from_numpy(freqs).to(device), k)
                    got = _numpy([w.cum, w.hashes, w.expected, w.ml, w.bucket, w.mixset])
                    w.end(torch.from_numpy(byte).to(device))
                    w.advance()
                    after = _numpy([w.ctx, w.mptr, w.mlen, w.mseed, w.words, w.lines, w.sh.ints])
                else:
                    A._byte_begin(freqs, k, bc._blk, bc._scr)
                    got = [
                        bc.cum[:k],
                        bc.hashes[:k].view(np.int64),
                        bc.seg[A._EXPECTED, :k],
                        bc.seg[A._MLEN, :k],
                        bc.seg[A._MBUCKET, :k],
                        bc.seg[A._MIXSET, :k],
                    ]
                    got = [a.copy() for a in got]
                    A._byte_end(byte, bc._tab, bc._blk, bc._scr)
                    after = [bc.ctx.view(np.int64), bc.mptr, bc.mlen, bc.mseed]
                    after = [a.copy() for a in after + [bc.words.view(np.int64), bc.lines, bc.ints]]
                seen.append((t, g, got + after))
        if tables:
            tables.end_block()
            tables.write_back(state)
        for bc in coders:
            bc.finish()
        seen.append(("table", state.match_table.copy(), state.rep_dist))
        state.append_history(data)
    return seen


def _same(
    blocks: list[bytes], config, segments: int, device: str, record: int = 0, work: type = ByteWork
) -> None:
    """Every step of ``work`` (a ``ByteWork``) on ``device`` against the loops'."""
    loops = _run(blocks, config, segments, record, None)
    ours = _run(blocks, config, segments, record, device, work)
    assert len(loops) == len(ours)
    names = "cum hashes expected mlen bucket mixset ctx mptr mlen-after mseed words lines ints"
    for a, b in zip(loops, ours, strict=True):
        if a[0] == "table":
            assert np.array_equal(a[1], b[1]) and a[2] == b[2], "match table or distance"
            continue
        for name, x, y in zip(names.split(), a[2], b[2], strict=True):
            assert np.array_equal(x, y), f"{name} differs at step {a[0]}, group {a[1]}"


def _text(n: int, seed: int) -> bytes:
    """Indented lines of words, with long passages repeated from far back (the match
    model's seeds and repeat distance) and short repeats nearby."""
    rng = np.random.default_rng(seed)
    words = [b"def", b"return", b"self", b"value", b"Table", b"x_1", b"\xc3\xa9t\xc3\xa9", b"42"]
    out = bytearray()
    while len(out) < n:
        if len(out) > 600 and rng.random() < 0.15:
            at = int(rng.integers(0, len(out) - 300))
            out += out[at : at + int(rng.integers(40, 300))]
            continue
        out += b"\t "[int(rng.integers(2)) :][:1] * int(rng.integers(0, 3) * 4)
        for _ in range(int(rng.integers(1, 8))):
            out += words[int(rng.integers(len(words)))] + b" ,.;("[int(rng.integers(5)) :][:1]
        out += b"\n"
    return bytes(out[:n])


def _rows(n: int, width: int) -> bytes:
    """Rows of ``width`` bytes, smooth along and across: records, pictures."""
    out = bytearray()
    for i in range(n):
        x, y = i % width, i // width
        out.append((x * 3 + y * 2 + (x * y) // 7) & 0xFF)
    return bytes(out)


CONFIGS = {
    "text kinds": replace(DEFAULT, contexts=TEXT_KINDS, table_bits=12),
    "text kinds, nearby probes": replace(DEFAULT, contexts=TEXT_KINDS, match_probes=4),
    "other kinds": replace(DEFAULT, contexts=OTHER_KINDS, match_probes=2),
    "matches of 3 bytes": replace(DEFAULT, contexts=(1, 2, 9, 36), match_min=3, match_probes=3),
    "matches of 8 bytes": replace(DEFAULT, contexts=(1, 3, 36), match_min=8),
    # The order-n kinds are hashed as one block, then put back among the others.
    "order kinds among the others": replace(DEFAULT, contexts=(9, 2, 12, 1, 36, 6)),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_byte_work_is_the_loops(name: str, device: str) -> None:
    config = CONFIGS[name]
    _same([_text(3000, 1), _text(2600, 2)], config, 12, device)


@pytest.mark.parametrize("record", [1, 3, 4, 24])
def test_byte_work_on_rows(record: int, device: str) -> None:
    """The record, pixel, image and colour kinds read whole rows back; a record of 1
    byte reads the byte being coded as its right neighbour above, as the loops do."""
    config = replace(DEFAULT, contexts=OTHER_KINDS[4:] + (20, 21, 22, 23, 24, 25))
    data = _rows(2400, max(record, 1) * 16)
    _same([data, data[::-1]], config, 10, device, record=record)


def _pieces(n: int, seed: int) -> list[bytes]:
    """A block of random bytes, then one of pieces of it (20-200 bytes from anywhere in
    it, now and then a few new bytes between): matches that break and start again at
    another distance, where segments seed from their neighbours and the stream."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()
    out = bytearray()
    while len(out) < n:
        at, size = int(rng.integers(0, n - 200)), int(rng.integers(20, 200))
        out += first[at : at + size]
        if rng.random() < 0.3:
            out += rng.integers(0, 256, size=int(rng.integers(1, 6)), dtype=np.uint8).tobytes()
    return [first, bytes(out[:n])]


@pytest.mark.parametrize("probes", [0, 4])
def test_byte_work_on_broken_repeats(probes: int, device: str) -> None:
    config = replace(DEFAULT, contexts=(1, 2, 3, 36), match_probes=probes)
    _same(_pieces(3000, 7), config, 16, device)


def test_byte_work_with_segments_of_two_lengths(device: str) -> None:
    """Segments of two lengths (the last step holds only some) in groups of two sizes."""
    _same([_text(64 * 13 + 5, 3)], CONFIGS["text kinds, nearby probes"], 13, device)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    data=st.binary(min_size=1, max_size=700),
    alphabet=st.integers(1, 6),
    segments=st.integers(1, 9),
    probes=st.integers(0, 4),
)
def test_byte_work_on_any_bytes(
    data: bytes, alphabet: int, segments: int, probes: int, device: str
) -> None:
    """Any bytes, folded onto a few values so that contexts and matches repeat."""
    folded = bytes(b % alphabet + (10 if b % 5 == 0 else 97) for b in data)
    config = replace(DEFAULT, contexts=(1, 2, 4, 9, 12, 16, 19, 36), match_probes=probes)
    blocks = [folded, folded[: len(folded) // 2 + 1]]
    _same(blocks, config, min(segments, len(folded)), device)


def _seeding_step(device: str | None, work: type = ByteWork) -> list:
    """Three steps from a state made for the seeds, which coding text rarely reaches (a
    seed takes only where the match table has nothing for the context: here it is empty
    but for what the step writes). Each of 8 segments holds a 40-byte text, X in the
    first group (segments 0-3), Z in the second, 20 bytes of each coded; the window
    holds X twice, then Z twice. Segment 0 does not borrow the stream's distance (40,
    into the window), whose bytes disagree with its own in one of eight; segment 1
    borrows it (segment 0's bytes, coded in the same step); segment 2 continues a match
    of 20 into the window and lends its distance to segment 3; segment 4 continues one
    of 40, whose distance becomes the stream's, and lends it to 5; 6 loses its match and
    borrows the stream's distance as it was before the step, and 7 does too. The loops'
    (``device`` None) or ``work``'s on ``device``; what each step produced, as arrays."""
    rng = np.random.default_rng(11)
    x, z = rng.integers(0, 256, size=(2, 40), dtype=np.uint8)
    window = rng.integers(0, 256, size=300, dtype=np.uint8)
    window[20:100], window[150:230] = np.tile(x, 2), np.tile(z, 2)
    window[273:281] = x[13:21]  # where segment 0's distance of 40 leads, but for one byte
    window[275] ^= 1
    config = replace(DEFAULT, contexts=(1, 2, 3, 36))
    state = A.StreamState(config, block_size=320)
    state.append_history(window.tobytes())
    coders = state.block_coders(320, 8, segment_groups(8), 0)
    sh, t = coders[0].sh, 20
    text = [x] * 4 + [z] * 4
    for i, start in enumerate(sh.starts):
        sh.block[start : start + t] = text[i][:t]
    sh.done[:] = t
    sh.ints[3] = 40
    # (mlen, mptr) of each segment: 0 none; a pointer into the window's copies.
    matches = [(0, -1), (0, -1), (20, 20 + t), (0, -1), (40, 150 + t), (0, -1), (5, 0), (0, -1)]
    for bc in coders:
        lo = int(bc.params[A._SEG_LO])
        bc.done[:] = t
        for i in range(bc.s):
            bc.ctx[i] = np.uint64(int.from_bytes(text[lo + i][t - 8 : t].tobytes(), "big"))
            bc.mlen[i], bc.mptr[i] = matches[lo + i]
            bc.mseed[i] = 0
    tables = DeviceTables(state, device) if device else None
    works = [work(bc, tables.block(bc), tables.t["match_table"]) for bc in coders] if tables else []
    seen = []
    for step in range(3):
        bytes_now = [np.full(4, c[t + step], dtype=np.int64) for c in (x, z)]
        for g, bc in enumerate(coders):
            byte = bytes_now[g]
            freqs = rng.integers(1, 200, size=(4, 256)).astype(np.int32)
            if tables:
                w = works[g]
                w.begin(torch.from_numpy(freqs).to(device), 4)
                w.end(torch.from_numpy(byte).to(device))
                w.advance()
                seen.append(_numpy([w.expected, w.ml, w.bucket, w.mptr, w.mlen, w.mseed]))
                seen.append(_numpy([w.sh.ints]))
            else:
                A._byte_begin(freqs, 4, bc._blk, bc._scr)
                got = [bc.seg[A._EXPECTED, :4], bc.seg[A._MLEN, :4], bc.seg[A._MBUCKET, :4]]
                got = [a.copy() for a in got]
                A._byte_end(byte, bc._tab, bc._blk, bc._scr)
                seen.append(got + [bc.mptr.copy(), bc.mlen.copy(), bc.mseed.copy()])
                seen.append([bc.ints.copy()])
    if tables:
        tables.end_block()
        tables.write_back(state)
    seen.append([state.match_table.copy()])
    return seen


def seeds_as_the_loops(device: str, work: type = ByteWork) -> None:
    """``_seeding_step`` of ``work`` on ``device`` against the loops', and that the
    seeds it was made for took (every segment but the first holds a match)."""
    loops = _seeding_step(None)
    ours = _seeding_step(device, work)
    for a, b in zip(loops, ours, strict=True):
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y)
    mseed = np.concatenate([loops[0][5], loops[2][5]])
    assert list(mseed) == [0, 1, 0, 1, 0, 1, 1, 1], mseed
    assert loops[3][0][3] == 300 + 160 + 21 - (150 + 21)  # segment 4's distance


def test_seeds_from_the_segment_before_and_the_stream(device: str) -> None:
    seeds_as_the_loops(device)
