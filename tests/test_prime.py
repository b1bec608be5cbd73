"""Primed models: a model file's prime, learned before each frame's first mixed block
(docs/FORMAT.md, "Primed models"), and ``nncompress train --base``/``--prime``."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ALPHABET, random_gru, sample_text

from nncompress import coder
from nncompress import format as fmt
from nncompress.adaptive import PRIME_TABLE_SHARE, StreamState, table_bits
from nncompress.cli import main
from nncompress.config import DEFAULT
from nncompress.engine import compress_stream, decompress_stream, list_stream
from nncompress.model import (
    PRIME_TABLES_FORMAT_VERSION,
    PRIMED_FORMAT_VERSION,
    IntModel,
    ModelError,
    save_model,
    with_prime,
)


def records(n: int, seed: int) -> bytes:
    """Log-like lines: a fixed layout with varying fields, what primes help with."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        ip = ".".join(str(int(x)) for x in rng.integers(1, 255, 4))
        word = bytes(rng.choice(list(ALPHABET[1:12]), 6).astype(np.uint8)).decode()
        lines.append(
            f'{ip} - - [17/May/2015] "GET /{word}.html HTTP/1.1" 200 {rng.integers(999)}\n'
        )
    return "".join(lines).encode()


@pytest.fixture(scope="module")
def all_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, IntModel]:
    """The test network without a prime ("1"), and with a prime of records in a model file
    of format version 2 and of version 3 (whose prime sizes the tables too)."""
    d = tmp_path_factory.mktemp("primed")
    tensors, meta = random_gru(32, 1, seed=1, name="tiny-test")
    save_model(d / "plain.nnm", tensors, meta)
    for v in PRIMED_FORMAT_VERSION, PRIME_TABLES_FORMAT_VERSION:
        primed = with_prime(tensors, meta, records(60, 1), f"tiny-primed{v}", v)
        save_model(d / f"primed{v}.nnm", *primed)
    return {v: IntModel.load(d / f"{'primed' + v if v != '1' else 'plain'}.nnm") for v in "123"}


@pytest.fixture(scope="module")
def models(all_models: dict[str, IntModel]) -> tuple[IntModel, IntModel]:
    """The test network, without and with a prime of records (as ``train`` makes it)."""
    return all_models["1"], all_models[PRIME_TABLES_FORMAT_VERSION]


def code(data: bytes, model: IntModel, **kw) -> bytes:
    out = io.BytesIO()
    compress_stream(io.BytesIO(data), out, model, **kw)
    return out.getvalue()


def decode(blob: bytes, model: IntModel) -> bytes:
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, lambda h: model, threads=1)
    return out.getvalue()


def test_a_prime_makes_records_like_it_smaller(models, small_tables) -> None:
    plain, primed = models
    assert primed.prime and primed.meta["format_version"] == PRIME_TABLES_FORMAT_VERSION
    data = records(3, 99)
    a, b = code(data, plain), code(data, primed)
    assert decode(a, plain) == data and decode(b, primed) == data
    assert len(b) < len(a)


@pytest.mark.parametrize("version", [PRIMED_FORMAT_VERSION, PRIME_TABLES_FORMAT_VERSION])
def test_primed_frames_round_trip_in_every_shape(
    version: str, all_models, small_tables, small_segments
) -> None:
    """Several blocks and frames, a frame whose first block another method wins (the
    prime is learned after it, at the first mixed block; with version 3 the match table
    that block filled keeps its size), and a block that loses after mixed ones (rolled
    back by coding again): each decodes, on one thread or two."""
    primed = all_models[version]
    rng = np.random.default_rng(2)
    recs = [records(12, seed)[:700] for seed in (3, 4, 5, 6)]
    # Frames of 3 blocks: random (stored, before the prime is learned), records, records;
    # records, random (lost after a mixed block: coded again), records.
    data = b"".join([rng.bytes(700), recs[0], recs[1], recs[2], rng.bytes(700), recs[3]])
    blob = code(data, primed, block_size=700, frame_size=2100, threads=1)
    methods = [b.method for b in list_stream(io.BytesIO(blob)).blocks]
    assert methods[0] == fmt.METHOD_STORED and methods[1] == fmt.METHOD_MIXED
    assert methods[4] != fmt.METHOD_MIXED and fmt.METHOD_MIXED in methods[2:4]
    assert decode(blob, primed) == data
    assert code(data, primed, block_size=700, frame_size=2100, threads=2) == blob


def test_a_version_3_prime_sizes_the_tables(all_models) -> None:
    """Version 3: the context and match tables are sized for the block size or a quarter of
    the prime, the larger, before the prime is learned; version 2 sizes them for the block
    alone. Both decode their own archives, which differ."""
    data = records(1, 11)
    quarter = len(all_models["3"].prime) // PRIME_TABLE_SHARE
    assert table_bits(len(data), DEFAULT) != table_bits(quarter, DEFAULT)
    for version, room in (("2", len(data)), ("3", quarter)):
        state = StreamState(DEFAULT, len(data))
        coder.prime_state(all_models[version], state)
        assert (state.table_bits, state.match_bits) == table_bits(room, DEFAULT)
        assert len(state.ctx_stats) == len(DEFAULT.contexts) << state.table_bits
        assert len(state.match_table) == 1 << state.match_bits
    big = StreamState(DEFAULT, 4 * quarter)  # a block larger than a quarter: no change
    coder.prime_state(all_models["3"], big)
    assert (big.table_bits, big.match_bits) == table_bits(4 * quarter, DEFAULT)
    blobs = [code(data, all_models[v]) for v in "23"]
    assert blobs[0][9:] != blobs[1][9:]
    assert [decode(b, all_models[v]) for b, v in zip(blobs, "23", strict=True)] == [data] * 2


def test_the_primed_statistics_are_kept_and_copied(models, small_tables) -> None:
    """The second small file with the same model starts from a copy of the primed
    statistics: the same archive as learning the prime afresh."""
    _, primed = models
    data = records(2, 7)
    coder._primed.clear()
    first = code(data, primed)
    assert coder._primed  # kept
    assert code(data, primed) == first
    coder._primed.clear()
    assert code(data, primed) == first


def test_prime_and_version_go_together(tmp_path: Path) -> None:
    tensors, meta = random_gru(32, 1, seed=1, name="x")
    primed_tensors, primed_meta = with_prime(tensors, meta, b"abc", "y")
    with pytest.raises(ModelError, match="without a prime"):
        IntModel.from_tensors(tensors, dict(meta, format_version=PRIMED_FORMAT_VERSION))
    with pytest.raises(ModelError, match="with a prime"):
        IntModel.from_tensors(primed_tensors, meta)
    bad = dict(primed_tensors, prime=np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ModelError, match="prime must be"):
        IntModel.from_tensors(bad, primed_meta)
    with pytest.raises(ModelError):
        with_prime(tensors, meta, b"", "z")


def test_train_base_makes_a_primed_model_in_seconds(
    model_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train --base default DIR``: the default network with a prime of DIR's records,
    no torch; archives made with it name it by 4 bytes of its hash and decode."""
    recs = tmp_path / "recs"
    recs.mkdir()
    for i in range(40):
        (recs / f"{i:03d}.log").write_bytes(records(1, i))
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(
        main, ["train", "recs", "-o", "mine.nnm", "--base", "default", "--prime", "2K"]
    )
    assert r.exit_code == 0, r.output
    m = IntModel.load(tmp_path / "mine.nnm")
    assert 0 < len(m.prime) <= 2048 and m.name == "mine"
    (tmp_path / "new.log").write_bytes(records(1, 500))
    r = CliRunner().invoke(main, ["-m", "mine.nnm", "-k", "new.log"])
    assert r.exit_code == 0, r.output
    blob = (tmp_path / "new.log.nnc").read_bytes()
    assert blob[4] == fmt.MODEL_HASH | fmt.SHORT_HASH_FLAG
    assert blob[5:9] == bytes.fromhex(m.sha256[:8])
    r = CliRunner().invoke(main, ["-d", "-c", "-m", "mine.nnm", "new.log.nnc"])
    assert r.stdout_bytes == (tmp_path / "new.log").read_bytes()
    r = CliRunner().invoke(
        main, ["train", "recs", "-o", "x.nnm", "--base", "default", "--prime", "0"]
    )
    assert r.exit_code == 2


def test_small_sample_text_is_unchanged_by_an_empty_prime(models, small_tables) -> None:
    """A model without a prime codes exactly as before priming existed (the goldens pin the
    shipped models; this pins the test network)."""
    plain, _ = models
    data = sample_text(900, 4)
    assert not plain.prime
    assert decode(code(data, plain), plain) == data


def test_train_adds_a_prime_and_warns_when_no_better_than_default(
    model_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train`` (a network, two steps here) keeps a prime of its data, and says so when
    the network is no better than the shipped one on the held-out data."""
    pytest.importorskip("torch")
    from nncompress import train as train_mod

    files = []
    for i in range(8):
        f = tmp_path / f"{i}.log"
        f.write_bytes(records(30, i))
        files.append(f)
    monkeypatch.setattr(train_mod, "int_bpb", lambda model, streams: 5.0)
    lines: list[str] = []
    cfg = train_mod.TrainConfig(
        preset="tiny", max_steps=2, batch=4, window=16, segment=256, prime=1024, name="t"
    )
    summary = train_mod.train(files, tmp_path / "t.nnm", cfg, log=lines.append)
    m = IntModel.load(tmp_path / "t.nnm")
    assert 0 < len(m.prime) <= 1024 and m.meta["format_version"] == PRIME_TABLES_FORMAT_VERSION
    assert summary["default_int_bpb"] == 5.0
    assert any("no better than the shipped default model" in line for line in lines)


def test_a_block_coded_two_ways_at_once_learns_the_prime_once(
    models, small_tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream whose first block the encoder codes two ways (a 1-bit picture: in its
    rows' segments and in one), the second beside the first: the prime is learned once,
    by the encoder's own thread, before the snapshot both codings start from; the archive
    is the one a single thread writes, and decodes."""
    from test_records import bitmap

    from nncompress import engine

    _, primed = models
    data = bitmap(256, 96, 3)
    learned: list[str] = []
    real = coder.prime_state

    def watched(model, state) -> None:  # type: ignore[no-untyped-def]
        if not state.primed:
            learned.append(threading.current_thread().name)
        real(model, state)

    monkeypatch.setattr(coder, "prime_state", watched)
    monkeypatch.setattr(engine, "prime_state", watched)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    one = code(data, primed, threads=1)
    learned.clear()
    two = code(data, primed, threads=2)
    assert one == two and decode(two, primed) == data
    assert learned and set(learned) == {threading.current_thread().name}
    assert [b.record for b in list_stream(io.BytesIO(two)).blocks] == [256]
