"""The decoder fuzz harness, ``scripts/fuzz_decoder.py``, run for a bounded number of inputs.

Its promises (the harness's docstring): whatever bytes the decoder is given, it succeeds or
raises FormatError/ModelError, within bounded time and memory; an archive damaged without
recomputing its checks never decodes to anything but its own bytes; a decode that succeeds
has the length ``list_stream`` reports. Here: the harness's own machinery (seeds, the check
fixer, the clamp, the oracle, hang detection), a bounded run of its random loop, and its
crafted hostile archives -- huge claimed lengths, LZMA2 bombs, unknown models, boundary
configurations, trailing data, many tiny frames, lying indexes -- each decoded unclamped in
a fresh process whose time and peak memory are measured.
"""

from __future__ import annotations

import io
import random
import signal
import struct
import time
from pathlib import Path

import pytest
from conftest import CUSTOM, compress, decode_or_damage, script, walk_blocks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncompress import format as fmt
from nncompress import zoo
from nncompress.config import preset_of
from nncompress.engine import list_stream
from nncompress.model import IntModel

fuzz = script("fuzz_decoder")

needs_alarm = pytest.mark.skipif(
    not hasattr(signal, "setitimer"), reason="hang detection needs SIGALRM"
)


_SEEDS: list[bytes] = []


@pytest.fixture
def fuzz_seeds(tiny_model: IntModel, small_tables: None) -> list[bytes]:
    """The harness's seed archives, made (once) with the small adaptive tables that every
    test using them decodes with."""
    if not _SEEDS:
        _SEEDS.extend(fuzz.seed_archives(tiny_model))
    return _SEEDS


@pytest.fixture(scope="module")
def harness_model() -> IntModel:
    """The harness's own tiny model (the one its loop and its measuring process build)."""
    return fuzz.build_model()


# ----------------------------------------------------------------------------- machinery
def test_fuzz_seeds_are_valid(fuzz_seeds: list[bytes], tiny_model: IntModel) -> None:
    """The harness's seeds decode and cover the format; its CRC fixer and its clamp leave
    valid archives unchanged, and its walker finds their every block and index."""
    methods, refs, configs, frames, streams, segments = set(), set(), set(), set(), set(), set()
    preset_numbers, records, x86 = set(), set(), set()
    for blob in fuzz_seeds:
        assert fuzz.check_one(blob, tiny_model) == "ok"
        assert fuzz.fix_crcs(blob) == blob
        assert fuzz.clamp_block_sizes(blob) == blob
        info = list_stream(io.BytesIO(blob))
        methods |= {b.method for b in info.blocks}
        preset_numbers.add(preset_of(info.config))
        records |= {b.record > 0 for b in info.blocks}
        x86 |= {b.x86 for b in info.blocks}
        parsed, tail = fuzz.parse(blob)
        assert tail == b"" and len(parsed) == info.streams
        assert sum(len(s.blocks) for s in parsed) == len(info.blocks)
        assert fuzz.serialize(parsed, tail, fix=False) == blob
        for s in parsed:
            refs.add(s.header.model)
            configs.add((s.header_bytes[4] >> 4) & 3)
            frames.add(sum(b.end != fmt.END_NONE for b in s.blocks))
            segments |= {b.head[0] >> 5 & 3 for b in s.blocks if b.head[0] & 3 in fmt.MODEL_METHODS}
            assert (s.index_body is not None) == (len(s.blocks) > 0 and s.blocks[-1].end == 3)
        streams.add(info.streams)
    assert methods == set(fmt.METHOD_NAMES)
    assert refs == {fmt.MODEL_NONE, fmt.MODEL_HASH}
    assert configs == {fmt.CONFIG_DEFAULT, fmt.CONFIG_PRESET, fmt.CONFIG_INLINE}
    # Every binary preset family, with record lengths and the x86 filter.
    assert {12, 13, 14, 16, 17} <= preset_numbers
    assert records == {False, True} and x86 == {False, True}
    assert segments == {fmt.SEGMENTS_DEFAULT, fmt.SEGMENTS_FEWEST, fmt.SEGMENTS_GIVEN}
    assert {0, 1} < frames and max(frames) >= 3
    assert max(streams) >= 3


def test_fuzz_fix_crcs_recomputes_checks(fuzz_seeds: list[bytes], tiny_model: IntModel) -> None:
    """Where the fixer can know a block's decoded bytes, its check then matches: a stored
    block's changed content; a model block behind a changed stream header (the model
    method does not use the configuration, so the archive stays valid); frames split
    anew, with the index rebuilt."""
    stored = next(
        b for b in fuzz_seeds if b[4] & 0x0F == fmt.MODEL_HASH and len(walk_blocks(b)) == 4
    )
    at, bh, _ = walk_blocks(stored)[1]
    assert bh.method == fmt.METHOD_STORED
    bad = bytearray(stored)
    bad[at + 1] ^= 0xFF
    assert fuzz.check_one(bytes(bad), tiny_model) == "FormatError"
    assert fuzz.check_one(fuzz.fix_crcs(bytes(bad)), tiny_model) == "ok"

    model = next(b for b in fuzz_seeds if [x.method for _, x, _ in walk_blocks(b)] == [1])
    streams, tail = fuzz.parse(model)
    h = streams[0].header
    streams[0].header_bytes = fmt.Header(h.block_size, h.model, h.model_prefix, CUSTOM).pack()
    changed = fuzz.serialize(streams, tail)
    assert changed != model and list_stream(io.BytesIO(changed)).config == CUSTOM
    assert decode_or_damage(changed, tiny_model) == (decode_or_damage(model, tiny_model)[0], None)
    unfixed = fuzz.serialize(streams, tail, fix=False)
    assert isinstance(decode_or_damage(unfixed, tiny_model)[1], fmt.FormatError)

    streams, tail = fuzz.parse(stored)
    blocks = streams[0].blocks
    blocks[1].head = bytes([blocks[1].head[0] | fmt.END_FRAME << 2]) + blocks[1].head[1:]
    blocks[3].head = bytes([blocks[3].head[0] | fmt.END_INDEX << 2]) + blocks[3].head[1:]
    split = fuzz.serialize(streams, tail, rebuild_index=True)
    assert len(list_stream(io.BytesIO(split)).frames) == 2
    assert decode_or_damage(split) == (decode_or_damage(stored)[0], None)


def test_fuzz_moves_frames(fuzz_seeds: list[bytes], tiny_model: IntModel) -> None:
    """Whole frames dropped, repeated or swapped by the harness, the index rebuilt: with
    the checks recomputed the archive is valid again; with the checks kept, the frame
    seeds refuse every frame out of place."""
    framed = [b for b in fuzz_seeds if len(list_stream(io.BytesIO(b)).frames) >= 3]
    assert framed
    outcomes = set()
    for seed in range(12):
        rng = random.Random(seed)
        blob = framed[seed % len(framed)]
        streams, tail = fuzz.parse(blob)
        s = next(s for s in streams if len(fuzz._split_frames(s.blocks)) >= 3)
        fuzz._move_frames(s, rng)
        kept = fuzz.serialize(streams, tail, fix=False, rebuild_index=True)
        fixed = fuzz.serialize(streams, tail, fix=True, rebuild_index=True)
        assert fuzz.check_one(fixed, tiny_model) == "ok"
        outcome = fuzz.check_one(kept, tiny_model)
        assert outcome == ("ok" if kept == blob else "FormatError"), seed
        outcomes.add(outcome)
    assert "FormatError" in outcomes


def test_fuzz_clamps_block_sizes(tiny_model: IntModel) -> None:
    """Headers the decoder reaches declare at most MAX_FUZZ_BLOCK bytes per block, also
    behind a stream that only parses with the clamped size: here the first stream's full
    block is 2 bytes once clamped (2**20 + 1 before), and the second stream's header
    comes into reach only then."""
    first = fmt.Header((1 << 20) + 1).pack() + b"\x18" + b"ab" + bytes(4)
    second = fmt.Header(fmt.MAX_BLOCK, 1).pack() + b"\x18" + b"x" * 50
    assert len(fuzz.parse(first + second)[0]) == 1
    clamped = fuzz.clamp_block_sizes(first + second)
    streams, tail = fuzz.parse(clamped)
    assert [s.header.block_size for s in streams] == [2, fmt.MAX_BLOCK % fuzz.MAX_FUZZ_BLOCK + 1]
    assert len(clamped) == len(first + second) - 2 - 4 and tail == b"x" * 45
    assert fuzz.check_one(clamped, tiny_model) == "FormatError"
    small = compress(b"abc", tiny_model)
    assert fuzz.clamp_block_sizes(small) == small == fuzz.fix_crcs(small)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1))
def test_fuzz_structured_mutations(
    seed: int, fuzz_seeds: list[bytes], tiny_model: IntModel
) -> None:
    """The fuzz harness's structure-aware mutations (checks recomputed, so the damage
    reaches field validation, the payload decoders and the frame and index logic): only
    FormatError/ModelError, and headers the decoder reaches stay within the clamp."""
    rng = random.Random(seed)
    blob = fuzz.mutate(rng.choice(fuzz_seeds), rng, fuzz_seeds)
    for s in fuzz.parse(blob)[0]:
        assert s.header.block_size <= fuzz.MAX_FUZZ_BLOCK
    assert fuzz.check_one(blob, tiny_model) in ("ok", "FormatError", "ModelError")


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(sorted(fmt.METHOD_NAMES)),
    raw_len=st.integers(1, 200),
    param=st.integers(0, 200),
    payload=st.binary(max_size=120),
    words=st.lists(st.integers(0, 2**32 - 1), max_size=30),
)
def test_fuzz_random_payloads(
    method: int,
    raw_len: int,
    param: int,
    payload: bytes,
    words: list[int],
    tiny_model: IntModel,
    small_tables: None,
) -> None:
    """Well-formed headers around a random payload: every payload decoder (stored, LZMA,
    and the range decoder driven by the model) meets garbage, which must end in FormatError.
    ``words`` gives the range decoder whole 32-bit words, the case it does not reject early."""
    if method in fmt.MODEL_METHODS:
        if words:
            payload = struct.pack(f"<{len(words)}I", *words)
        lo, hi = fmt.fewest_segments(raw_len), fmt.segment_count(raw_len)
        param = lo + param % (hi - lo + 1)
    elif method == fmt.METHOD_LZMA:
        param %= fmt.LZMA_VARIANT_COUNT
    else:
        payload = (payload * (raw_len // max(len(payload), 1) + 1))[:raw_len]
        param = 0
    block = fmt.BlockHeader(method, raw_len, len(payload), param, fmt.END_STREAM)
    if method == fmt.METHOD_STORED and len(payload) != raw_len:
        return  # (an empty payload cannot make a stored block)
    ref, prefix = zoo.model_ref(tiny_model)
    head = block.pack(256)
    blob = fmt.Header(256, ref, prefix).pack() + head + payload + struct.pack("<I", 0)
    assert fuzz.check_one(blob, tiny_model) in ("FormatError", "ok")


def test_fuzz_script_main(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], small_tables: None
) -> None:
    """The standalone harness (plain loop) runs and reports no unexpected exception."""
    args = ["fuzz_decoder.py", "--plain", "--iterations", "10", "--crash-dir", str(tmp_path)]
    assert fuzz.main(args) == 0
    assert "no crash, hang or silent corruption" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_build_model_is_the_same_in_every_process(harness_model: IntModel) -> None:
    """The measuring process rebuilds the harness's model and must find the same hash
    that the crafted archives name (safetensors' bytes alone vary from call to call)."""
    again = fuzz.build_model()
    assert again.sha256 == harness_model.sha256
    assert fuzz.build_model(hidden=8).sha256 != harness_model.sha256


def test_raw_header_is_header_pack_without_its_checks(harness_model: IntModel) -> None:
    """The harness writes headers itself (format.Header.pack refuses what a writer must
    not write, and a reader must still meet): where pack writes one, the same bytes."""
    ref, prefix = zoo.model_ref(harness_model)
    cases = [(64, fmt.MODEL_NONE, "", None), (1 << 20, 1, "", CUSTOM), (5, ref, prefix, None)]
    cases += [(fmt.MAX_BLOCK, fmt.MODEL_HASH, "ab" * n, CUSTOM) for n in fuzz.PREFIX_SIZES]
    for block, model, pre, config in cases:
        packed = fmt.Header(block, model, pre, *([config] if config else [])).pack()
        assert fuzz.raw_header(block, model, pre, config) == packed
        assert fmt.read_header(io.BytesIO(packed))[1] == packed
    empty_named = fuzz.raw_header(0, ref, prefix)
    assert empty_named[4] & 0x0F == ref and empty_named[-1] == 0


# ----------------------------------------------------------------------------- the oracle
def test_unchecked_mutations_never_decode_to_other_bytes(harness_model: IntModel) -> None:
    """Every seed, damaged many times over without recomputing its checks: the decode
    fails, or gives the seed's bytes (or those of whole streams of it); the damage never
    reaches the output unnoticed."""
    valid, crafted = fuzz.loop_seeds(harness_model)
    seeds = fuzz.prepare_seeds(valid, harness_model)
    seen = set()
    for k, seed in enumerate(seeds):
        rng = random.Random(k)
        for _ in range(25):
            blob = fuzz.mutate_unchecked(seed.blob, rng)
            r = fuzz.run_one(blob, harness_model, seed, reader=True)
            seen.add(r.outcome if r.oracle is None else r.oracle)
    assert "FormatError" in seen and seen <= {"FormatError", "ModelError", "seed", "streams"}


def test_the_oracle_allows_whole_streams_left_out(harness_model: IntModel) -> None:
    """A concatenation cut at a stream boundary is a valid archive of the streams before
    it: the one damage the checks cannot see (as with gzip), which the oracle allows."""
    valid, _ = fuzz.loop_seeds(harness_model)
    seed = next(s for s in fuzz.prepare_seeds(valid, harness_model) if len(s.pieces) == 3)
    (first, out1), (second, out2), _ = seed.pieces
    r = fuzz.run_one(first + second, harness_model, seed)
    assert r.outcome == "ok" and r.oracle == "streams" and r.output == out1 + out2
    assert fuzz.legal_outputs(first, seed) == [seed.output, out1]
    assert fuzz.legal_outputs(first + b"\x01", seed) == [seed.output]  # (junk after it)


@pytest.mark.parametrize("damage", ["other-bytes", "extra-byte", "one-thread"])
def test_the_oracle_catches_silent_corruption(
    damage: str, harness_model: IntModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decoder that gave other bytes than the archive's (made so here) is caught: for an
    unchecked mutation that decodes, other bytes than the seed's; for any decode, a length
    other than list_stream's; on one thread, other bytes than on several."""
    valid, _ = fuzz.loop_seeds(harness_model)
    seed = next(s for s in fuzz.prepare_seeds(valid, harness_model) if len(s.output) > 10)
    real = fuzz.decompress_stream

    def lying(src, dst, get_model, threads=0, **kw):
        info = real(src, dst, get_model, threads=threads, **kw)
        if damage == "other-bytes":
            dst.seek(3)
            dst.write(b"?")
        elif damage == "extra-byte":
            dst.write(b"?")
        elif threads == 1:
            dst.seek(0)
            dst.write(b"?")
        return info

    monkeypatch.setattr(fuzz, "decompress_stream", lying)
    kind = {
        "other-bytes": "silent-corruption",
        "extra-byte": "length-mismatch",
        "one-thread": "threads-mismatch",
    }[damage]
    with pytest.raises(fuzz.Finding) as found:
        fuzz.run_one(seed.blob, harness_model, seed if damage == "other-bytes" else None)
    assert found.value.kind == kind


@pytest.mark.parametrize("kind", ["hang", "crash", "silent-corruption"])
def test_the_loop_saves_and_reports_findings(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, harness_model: IntModel
) -> None:
    """An input that hangs (past --timeout), crashes or breaks a promise is saved with a
    note, reported, and ends the run with exit status 1 (after all inputs with
    --keep-going)."""
    if kind == "hang" and not hasattr(signal, "setitimer"):
        pytest.skip("hang detection needs SIGALRM")

    def broken(blob, model, seed=None, reader=False):
        if kind == "hang":
            time.sleep(30)
        if kind == "crash":
            raise KeyError("a decoder bug")
        raise fuzz.Finding("silent-corruption", "made up")

    monkeypatch.setattr(fuzz, "run_one", broken)
    t0 = time.monotonic()
    report = fuzz.fuzz_loop(3, 1, tmp_path, harness_model, timeout=0.2, keep_going=True)
    assert time.monotonic() - t0 < 20
    assert [k for k, _ in report.findings] == [kind] * 3
    saved = sorted(p.name for p in tmp_path.iterdir())
    assert len(saved) == 2 * len({p for _, p in report.findings})
    assert all(name.startswith(kind + "-") for name in saved)
    if kind == "crash":
        assert "KeyError" in report.findings[0][1].with_suffix(".txt").read_text()
    argv = ["fuzz_decoder.py", "--plain", "--iterations", "2", "--timeout", "0.2"]
    assert fuzz.main([*argv, "--crash-dir", str(tmp_path / "again")]) == 1


@needs_alarm
def test_time_limit_stops_a_realdecode_or_damage(harness_model: IntModel) -> None:
    """The hang detector interrupts the decoder itself, mid-block: a model block that
    claims as much as its payload may (all zeros: it decodes to the end) takes far longer
    than the limit, which stops it within a fraction of a second, leaving no thread."""
    import threading

    n = 1 << 20
    least = fuzz._least_payload(fmt.METHOD_MODEL, n)
    ref, prefix = zoo.model_ref(harness_model)
    blob, _ = fuzz.assemble(
        fmt.Header(n, ref, prefix), [[fuzz.Blk(fmt.METHOD_MODEL, n, bytes(least))]]
    )
    before = threading.active_count()
    t0 = time.monotonic()
    with pytest.raises(fuzz.DecodeTimeout), fuzz.time_limit(0.3):
        fuzz.decode(blob, harness_model)
    assert time.monotonic() - t0 < 3
    time.sleep(0.1)
    assert threading.active_count() == before


# ----------------------------------------------------------------------------- the loop
def test_fuzz_loop_bounded_run(tmp_path: Path, harness_model: IntModel) -> None:
    """A bounded run of the random loop, as the standalone harness runs it at scale: valid
    and crafted seeds, mutated with and without recomputing the checks, a quarter also read
    through ArchiveReader, each within 10 s: no crash, hang, silent corruption or length
    mismatch."""
    report = fuzz.fuzz_loop(1500, 20260101, tmp_path, harness_model, timeout=10.0)
    assert not report.findings, report.summary()
    assert report.inputs == 1500
    counts = report.outcomes
    assert counts["unchecked FormatError"] > 300 and counts["fixed FormatError"] > 500
    assert counts["fixed ok"] > 8 and counts["reader FormatError"] > 100
    assert report.slowest[0] < 10
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- crafted
@pytest.fixture(scope="module")
def crafted(
    harness_model: IntModel, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list, dict[str, dict]]:
    """The crafted hostile archives (test scale: 16 MiB bombs, 2,000 frames), decoded
    unclamped in one fresh process, each measured."""
    cases = fuzz.crafted_archives(harness_model, "test")
    return cases, fuzz.measure(cases, tmp_path_factory.mktemp("crafted"))


def test_crafted_archives_are_what_they_claim(harness_model: IntModel) -> None:
    """The generator's archives are built as format 1 lays them out: the valid ones list
    and decode to the bytes they promise, the huge claims say 2**28 where the block header
    says it, and the light ones (the loop's seeds) fit its limits."""
    cases = fuzz.crafted_archives(harness_model, "light")
    assert {c.group for c in cases} == set(fuzz.CRAFTED_GROUPS)
    for c in cases:
        if c.seed:
            assert len(c.blob) <= 8192
        if c.expect == ("ok",) and c.lookup == "harness":
            out, err = decode_or_damage(c.blob, harness_model)
            assert err is None and (len(out), fuzz._crc(out)) == (c.out_len, c.out_crc), c.name
    huge = next(c for c in cases if c.name == "huge-mixed-full-zeros")
    header, raw = fmt.read_header(io.BytesIO(huge.blob))
    assert header.block_size == fmt.MAX_BLOCK
    assert huge.blob[len(raw)] == fmt.METHOD_MIXED | fmt.END_STREAM << 2 | 1 << 4
    assert huge.blob[len(raw) + 1 : len(raw) + 2] == fmt.varint(100)


@pytest.mark.parametrize("group", fuzz.CRAFTED_GROUPS)
def test_crafted_archives(group: str, crafted: tuple[list, dict[str, dict]]) -> None:
    """Every crafted archive of the group ends as its case says (FormatError within a few
    seconds and MiB for the huge claims, a valid 16 MiB LZMA2 bomb decoded in memory
    bounded by its block, unknown models as ModelError, boundary configurations decoded,
    lying indexes refused by the decoder and the reader, ...), with the bytes it promises
    written, on one thread and with the default thread count."""
    cases, results = crafted
    problems = [
        f"{c.name}: {p}" for c in cases if c.group == group for p in fuzz.judge(c, results[c.name])
    ]
    assert not problems, "\n".join(problems)
