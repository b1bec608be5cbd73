"""``nncompress compare`` and its codecs, on small files made here (no shared data needed).

The command is invoked through click's CliRunner on its own, so these tests do not depend on
how the main CLI registers it. External programs (7-Zip, zpaq) are exercised when installed.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nncompress import codecs as codecs_mod
from nncompress.codecs import (
    FAILED,
    OK,
    SKIPPED,
    Codec,
    ExternalCodec,
    LibraryCodec,
    Metrics,
    NNCompressCodec,
    RarCodec,
    SevenZipCodec,
    Trial,
    ZpaqCodec,
    aggregate,
)
from nncompress.compare import collect_inputs, compare_command, run_comparison, select_codecs

FAST = "zlib,zstd-3"  # two in-process codecs: enough for CLI tests, and quick


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A directory of small, varied files: text, random bytes, an empty file, a subdirectory."""
    root = tmp_path / "corpus"
    (root / "sub" / "deeper").mkdir(parents=True)
    text = b"".join(
        b"line %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(300)
    )
    (root / "text.txt").write_bytes(text)
    (root / "random.bin").write_bytes(random.Random(4).randbytes(3000))
    (root / "empty").write_bytes(b"")
    (root / "sub" / "deeper" / "nested.txt").write_bytes(text[:2000] * 2)
    return root


def invoke(*args: str) -> object:
    """``compare`` at ``--level max`` unless a level is given (the tests below were written
    for its codec names; the default level has its own test)."""
    level = [] if "--level" in args else ["--level", "max"]
    return CliRunner().invoke(compare_command, [*level, *(str(a) for a in args)])


def as_json(result: object) -> dict:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return json.loads(result.stdout)


# --- codecs --------------------------------------------------------------------------------


def test_every_in_process_codec_round_trips() -> None:
    data = b"abracadabra " * 500 + bytes(range(256))
    for codec in codecs_mod.all_codecs().values():
        if not isinstance(codec, LibraryCodec):
            continue
        metrics = codec.run(data)
        assert metrics.status == OK, (codec.name, metrics.note)
        assert 0 < metrics.compressed_size < len(data)
        assert metrics.ratio == len(data) / metrics.compressed_size
        assert metrics.bits_per_byte == 8 * metrics.compressed_size / len(data)
        assert metrics.compress_mb_s > 0 and metrics.decompress_mb_s > 0


def test_empty_input_round_trips_without_infinite_values() -> None:
    metrics = codecs_mod.all_codecs()["zlib-9"].run(b"")
    assert metrics.status == OK
    assert metrics.bits_per_byte is None  # 8 * size / 0 is not a number
    json.dumps(metrics.as_dict(), allow_nan=False)


@pytest.mark.parametrize("cls", [SevenZipCodec, ZpaqCodec])
def test_external_programs_round_trip_when_installed(cls: type[ExternalCodec]) -> None:
    codecs = [c for c in codecs_mod.all_codecs().values() if isinstance(c, cls)]
    if not codecs[0].available():
        pytest.skip(f"{cls.programs[0]} is not installed")
    data = b"external program round trip\n" * 200
    for codec in codecs:
        metrics = codec.run(data)
        assert metrics.status == OK, (codec.name, metrics.note)
        # Honest sizes: the archive file, headers and all, so more than the bare payload.
        assert metrics.compressed_size > 20


class Broken(LibraryCodec):
    """A codec that loses one byte: compare must catch it."""

    def __init__(self) -> None:
        super().__init__("broken", "drops the last byte", bytes, lambda blob: bytes(blob)[:-1])


class Crashing(LibraryCodec):
    def __init__(self) -> None:
        super().__init__("crashing", "raises", self._boom, bytes)

    @staticmethod
    def _boom(data: bytes) -> bytes:
        raise RuntimeError("codec exploded\nwith a second line")


class Missing(ExternalCodec):
    """An external program that is not installed anywhere."""

    programs = ("nncompress-test-no-such-program",)

    def compress_args(self, exe: str, src: str, archive: str) -> list[str]:
        return [exe, src, archive]

    def extract_args(self, exe: str, archive: str, out_dir: str) -> list[str]:
        return [exe, archive, out_dir]


def test_a_codec_that_loses_data_is_failed_not_counted() -> None:
    metrics = Broken().run(b"some data")
    assert metrics.status == FAILED
    assert "decoded 8 bytes, expected 9" in metrics.note


def test_a_crashing_codec_is_failed_with_a_one_line_reason() -> None:
    metrics = Crashing().run(b"some data")
    assert metrics.status == FAILED
    assert metrics.note == "codec exploded"


def test_a_missing_program_is_skipped_with_the_reason() -> None:
    codec = Missing("missing", "not installed")
    assert not codec.available()
    assert codec.check() == "not found on PATH: nncompress-test-no-such-program"


def test_run_reports_median_times_of_repeat_runs() -> None:
    class Scripted(Codec):
        def __init__(self) -> None:
            super().__init__("scripted", "fixed timings")
            self.times = iter([(3.0, 30.0), (1.0, 10.0), (2.0, 20.0)])

        def trial(self, data: bytes) -> Trial:
            compress, decompress = next(self.times)
            return Trial(4, compress, decompress, data)

    metrics = Scripted().run(b"data", repeat=3)
    assert (metrics.compress_seconds, metrics.decompress_seconds) == (2.0, 20.0)


def test_aggregate_sums_sizes_and_times_and_keeps_the_worst_status() -> None:
    rows = [Metrics(100, 50, 1.0, 0.5), Metrics(300, 100, 1.0, 0.5)]
    total = aggregate(rows)
    assert (total.original_size, total.compressed_size, total.status) == (400, 150, OK)
    assert total.compress_mb_s == pytest.approx(400 / 1e6 / 2.0)
    assert aggregate([*rows, Metrics(10, status=FAILED)]).status == FAILED
    partial = aggregate([rows[0], Metrics(10, status=SKIPPED, note="not in the archive")])
    assert (partial.original_size, partial.note) == (100, "1 of 2 files")


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX shell script stands in for rar")
def test_rar_codec_falls_back_to_switches_an_older_rar_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for RAR 4: rejects -ma5 like the real one (exit 7), "archives" by copying.
    fake = tmp_path / "bin" / "rar"
    fake.parent.mkdir()
    fake.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        "args = sys.argv[1:]\n"
        "if '-ma5' in args: sys.exit(7)\n"
        "if args[0] == 'a': shutil.copy(args[-1], args[-2])\n"
        "if args[0] == 'x': shutil.copy(args[-2], args[-1] + 'data')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(fake.parent) + os.pathsep + os.environ["PATH"])
    codec = codecs_mod.all_codecs()["rar-5"]
    assert isinstance(codec, RarCodec) and codec.available()
    first, second = codec.run(b"x" * 100), codec.run(b"y" * 50)
    assert first.status == second.status == OK
    assert first.compressed_size == 100  # the size of the file the program wrote
    assert "used -m5 -s -md4096" in first.note


# --- the nncompress codec ------------------------------------------------------------------


def test_nncompress_codec_is_skipped_without_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nncompress.api", None)  # makes the import fail
    assert NNCompressCodec().check() == "nncompress.api not available"


def test_nncompress_codec_round_trips_when_a_model_is_available() -> None:
    pytest.importorskip("nncompress.api")
    codec = NNCompressCodec()
    reason = codec.check()
    if reason:
        pytest.skip(reason)
    metrics = codec.run(b"nncompress compares itself with the others.\n" * 20)
    assert metrics.status == OK, metrics.note


def test_model_names_become_codec_names() -> None:
    names = [c.name for c in select_codecs("nncompress", "default", ["models/a.nnm", "small"])]
    assert names == ["nncompress:a", "nncompress:small"]
    # Level max also runs nncompress --max beside each model's default.
    names = [c.name for c in select_codecs("nncompress", "max", ["models/a.nnm", "small"])]
    assert names == ["nncompress:a", "nncompress:a-max", "nncompress:small", "nncompress:small-max"]


# --- selecting codecs ----------------------------------------------------------------------


def test_codec_selection_by_family_level_and_exact_name() -> None:
    assert [c.name for c in select_codecs("zstd", "max", [])] == ["zstd-19", "zstd-22"]
    assert [c.name for c in select_codecs("zstd", "fast", [])] == ["zstd-1"]
    assert [c.name for c in select_codecs("zstd-19", "fast", [])] == ["zstd-19"]
    assert [c.name for c in select_codecs("7z", "max", [])] == ["7z-lzma2-9", "7z-ppmd-9"]
    assert [c.name for c in select_codecs("xz,xz-9e", "max", [])] == ["xz-9e"]
    everything = [c.name for c in select_codecs(None, "max", [])]
    assert everything[0] == "nncompress" and "rar-5" in everything and "zpaq-5" in everything


# --- the command ---------------------------------------------------------------------------


def test_json_output_has_the_shape_ci_parses(corpus: Path) -> None:
    result = invoke(corpus, "--codecs", FAST, "--json")
    assert result.exit_code == 0, result.output
    report = as_json(result)
    assert set(report) >= {"files", "totals", "skipped", "failed"}
    assert report["failed"] == 0
    files = {row["file"] for row in report["files"]}
    assert len(files) == 4 and len(report["files"]) == 4 * 2
    assert [t["codec"] for t in report["totals"]] == ["zlib-9", "zstd-3"]
    zlib_rows = [r for r in report["files"] if r["codec"] == "zlib-9"]
    zlib_total = report["totals"][0]
    assert zlib_total["compressed_size"] == sum(r["compressed_size"] for r in zlib_rows)
    assert zlib_total["original_size"] == sum(r["original_size"] for r in zlib_rows)
    assert all(r["status"] == "ok" for r in report["files"])


def test_directories_are_searched_recursively_in_order(corpus: Path) -> None:
    report = as_json(invoke(corpus, "--codecs", "zlib", "--json"))
    names = [Path(r["file"]).relative_to(corpus).as_posix() for r in report["files"]]
    assert names == ["empty", "random.bin", "sub/deeper/nested.txt", "text.txt"]


def test_csv_output_parses(corpus: Path) -> None:
    result = invoke(corpus, "--codecs", FAST + ",rar", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    kinds = [row["kind"] for row in rows]
    assert kinds.count("file") == 8 and kinds.count("total") == 2
    assert int(rows[0]["original_size"]) >= 0 and rows[0]["status"] == "ok"
    if not codecs_mod.all_codecs()["rar-5"].available():
        assert rows[-1]["kind"] == "skipped" and rows[-1]["codec"] == "rar-5"


def test_markdown_output_is_a_table_with_the_best_values_in_bold(corpus: Path) -> None:
    result = invoke(corpus, "--codecs", FAST, "--markdown")
    assert result.exit_code == 0, result.output
    table, record = result.stdout.rsplit("\n\n", 1)
    lines = table.splitlines()
    assert lines[0].startswith("| File | Codec | Original | Compressed | Ratio")
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines)
    assert record.startswith("Machine: ") and "Versions: zlib-9: zlib" in record
    widths = {line.count(" | ") for line in lines}
    assert len(widths) == 1  # every row has every column
    assert any("**total**" in line for line in lines)
    assert any("**" in line.split(" | ")[3] for line in lines[2:])  # a best compressed size


def test_table_on_stdout_shows_rows_totals_and_skipped(corpus: Path) -> None:
    result = invoke(corpus / "text.txt", corpus / "random.bin", "--codecs", FAST + ",zpaq")
    assert result.exit_code == 0, result.output
    for expected in ("text.txt", "random.bin", "zlib-9", "zstd-3", "total", "Verified"):
        assert expected in result.stdout
    if not codecs_mod.all_codecs()["zpaq-5"].available():
        assert "not found on PATH: zpaq" in result.stdout


def test_a_failed_row_makes_the_command_exit_1(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = codecs_mod.preset
    monkeypatch.setattr(codecs_mod, "preset", lambda level: [*real(level), Broken()])
    result = invoke(corpus / "text.txt", "--codecs", "zlib,broken", "--json")
    assert result.exit_code == 1
    report = as_json(result)
    assert report["failed"] == 1
    broken = [r for r in report["files"] if r["codec"] == "broken"]
    assert broken[0]["status"] == "FAILED"
    assert report["totals"][1]["status"] == "FAILED"
    table = invoke(corpus / "text.txt", "--codecs", "zlib,broken")
    assert table.exit_code == 1 and "FAILED" in table.stdout


def test_missing_programs_are_listed_as_skipped_not_errors(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = codecs_mod.preset
    missing = Missing("missing", "not installed")
    monkeypatch.setattr(codecs_mod, "preset", lambda level: [*real(level), missing])
    result = invoke(corpus / "text.txt", "--codecs", "zlib,missing", "--json")
    assert result.exit_code == 0, result.output
    report = as_json(result)
    assert report["skipped"] == [
        {"codec": "missing", "reason": "not found on PATH: nncompress-test-no-such-program"}
    ]
    assert [t["codec"] for t in report["totals"]] == ["zlib-9"]


def test_repeat_runs_each_codec_n_times(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    class Counting(LibraryCodec):
        def __init__(self) -> None:
            super().__init__("counting", "counts", lambda d: calls.append(1) or d, bytes)

    monkeypatch.setattr(codecs_mod, "preset", lambda level: [Counting()])
    result = invoke(
        corpus / "text.txt",
        corpus / "random.bin",
        "--codecs",
        "counting",
        "--repeat",
        "3",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert len(calls) == 2 * 3
    assert as_json(result)["repeat"] == 3


def test_plot_writes_a_png(corpus: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    plot = tmp_path / "ratio-vs-speed.png"
    result = invoke(corpus, "--codecs", "zlib,zstd,xz,bzip2,brotli", "--plot", plot, "--json")
    assert result.exit_code == 0, result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.stat().st_size > 10_000


def test_missing_input_is_one_line_on_stderr_and_exit_1(tmp_path: Path) -> None:
    result = invoke(tmp_path / "nope.txt", "--codecs", "zlib")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'nope.txt'}: no such file or directory"
    ]
    assert "Traceback" not in result.output


def test_an_empty_directory_is_an_error(tmp_path: Path) -> None:
    result = invoke(tmp_path, "--codecs", "zlib")
    assert result.exit_code == 1 and "no input files" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--json", "--csv"],
        ["--codecs", "no-such-codec"],
        ["--repeat", "0"],
        ["--level", "ultra"],
    ],
)
def test_usage_errors_exit_2(corpus: Path, args: list[str]) -> None:
    result = invoke(corpus / "text.txt", *args)
    assert result.exit_code == 2, result.output


def test_no_paths_is_a_usage_error() -> None:
    assert invoke().exit_code == 2


def test_default_level_finishes_and_records_what_ran(corpus: Path) -> None:
    """Without --level the codecs run at their defaults (nncompress's --max is opt-in), and
    JSON and CSV record the date, the machine and every codec's version (nncompress's with
    its model's name and hash)."""
    result = CliRunner().invoke(compare_command, [str(corpus), "--codecs", "zlib", "--json"])
    report = as_json(result)
    assert report["level"] == "default" and report["interrupted"] is False
    assert [t["codec"] for t in report["totals"]] == ["zlib-6"]
    meta = report["meta"]
    assert meta["date"].endswith("Z") and "cores" in meta["machine"]
    assert meta["versions"]["zlib-6"].startswith("zlib ")
    rows = list(csv.DictReader(io.StringIO(invoke(corpus, "--codecs", "zlib", "--csv").stdout)))
    assert rows[0]["version"].startswith("zlib ") and rows[0]["machine"] == meta["machine"]


def test_nncompress_version_names_the_model(model_env: dict[str, str]) -> None:
    codec = select_codecs("nncompress", "default", [])[0]
    assert codec.check() is None
    assert codec.version().startswith("nncompress ") and "model tiny-test sha256 " in (
        codec.version()
    )


def test_ctrl_c_keeps_the_rows_so_far(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during the second file: the first file's rows are reported, the run is marked
    interrupted, and the command exits 130 after printing them."""
    codec = codecs_mod.all_codecs()["zlib-9"]
    calls = {"n": 0}
    real = codec.run

    def interrupting(data: bytes, repeat: int = 1):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(data, repeat)

    monkeypatch.setattr(codec, "run", interrupting)
    inputs = collect_inputs([corpus])
    report = run_comparison(inputs, [codec])
    assert report.interrupted and len(report.files) == 1
    assert report.meta["interrupted_after"] == f"1 of {len(inputs)} files"
    assert report.totals[0].metrics.original_size == report.files[0].metrics.original_size
