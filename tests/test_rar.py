"""``compare --rar``: reading WinRAR/RAR archives made elsewhere, on every archive we have.

The real archives live in ``../shared/rar`` (beside the repository; see its README.md): RAR
1.5 to 5, solid, multi-volume, encrypted and deliberately malformed ones, with the expected
contents and their sha256 in ``expected/MANIFEST.tsv``. The sweep runs the reader over every
archive in ``INDEX.tsv``: it must verify the members matching ``expected/`` or give a clean
one-line reason, and never raise. Tests that need no shared data come first.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nncompress.codecs import FAILED, OK, SKIPPED, RarComparison, compare_rar
from nncompress.compare import compare_command

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
RAR = SHARED / "rar"


def assert_one_line(text: str | None) -> None:
    assert text and "\n" not in text and "Traceback" not in text, repr(text)


def assert_clean(result: RarComparison) -> None:
    """Either an archive-level reason and no rows, or rows whose notes are one line each."""
    if result.error is not None:
        assert_one_line(result.error)
        assert not result.rows and result.total is None
        return
    for key, metrics in result.rows.items():
        assert metrics.status in (OK, FAILED, SKIPPED), key
        if metrics.status != OK:
            assert_one_line(metrics.note)


# --- without shared data -------------------------------------------------------------------


def test_a_file_that_is_not_rar_gives_a_one_line_reason(tmp_path: Path) -> None:
    other = tmp_path / "notes.rar"
    other.write_bytes(b"PK\x03\x04 this is a zip header, not RAR")
    result = compare_rar(other, {"a.txt": b"a"})
    assert result.error == "not a RAR archive (unknown format)"


@pytest.mark.parametrize(
    "blob",
    [
        b"Rar!\x1a\x07\x00",  # RAR 1.5-4 signature, nothing after it
        b"Rar!\x1a\x07\x01\x00" + b"\xff" * 64,  # RAR 5 signature, garbage headers
        b"Rar!\x1a\x07\x01\x00\x33\x92\xb5\xe5\x0a\x01\x05\x06\x00\x05\x01\x01\x80\x80\x00",
    ],
)
def test_malformed_archives_made_here_give_a_one_line_reason(tmp_path: Path, blob: bytes) -> None:
    archive = tmp_path / "broken.rar"
    archive.write_bytes(blob)
    result = compare_rar(archive, {"a.txt": b"a"})
    assert result.error is not None
    assert_clean(result)


def test_cli_lists_an_unreadable_archive_as_skipped_in_its_row(tmp_path: Path) -> None:
    data = tmp_path / "a.txt"
    data.write_bytes(b"hello " * 100)
    archive = tmp_path / "a.rar"
    archive.write_bytes(b"not an archive at all")
    runner = CliRunner()
    result = runner.invoke(compare_command, [str(data), "--codecs", "zlib", "--rar", str(archive)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "rar:a.rar" in line)
    assert "skipped [1]" in row  # the reason is footnote 1, under the table
    assert "[1] not a RAR archive (unknown format)" in result.stdout.splitlines()
    report = json.loads(
        runner.invoke(
            compare_command, [str(data), "--codecs", "zlib", "--rar", str(archive), "--json"]
        ).stdout
    )
    assert report["skipped"] == [
        {"codec": "rar:a.rar", "reason": "not a RAR archive (unknown format)"}
    ]


def test_cli_missing_archive_is_an_error(tmp_path: Path) -> None:
    data = tmp_path / "a.txt"
    data.write_bytes(b"hello")
    result = CliRunner().invoke(compare_command, [str(data), "--rar", str(tmp_path / "x.rar")])
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("x.rar: no such RAR archive")


# --- the shared archives -------------------------------------------------------------------


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def _index() -> list[dict[str, str]]:
    return _tsv(RAR / "INDEX.tsv") if (RAR / "INDEX.tsv").is_file() else []


def _manifest() -> dict[tuple[str, str], list[dict[str, str]]]:
    entries: dict[tuple[str, str], list[dict[str, str]]] = {}
    for entry in _tsv(shared("expected", "MANIFEST.tsv")):
        entries.setdefault((entry["src"], entry["archive"]), []).append(entry)
    return entries


needs_shared = pytest.mark.skipif(not RAR.is_dir(), reason=f"shared data not found at {SHARED}")


def shared(*parts: str) -> Path:
    if not RAR.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    return RAR.joinpath(*parts)


def archive_path(row: dict[str, str], tmp_path: Path) -> Path:
    """The archive of an INDEX row; pieces cut by byte count are joined into tmp_path first."""
    name = row["archive"]
    if name.endswith("? (concatenated)"):
        prefix = name.split("?")[0]
        pieces = sorted((RAR / row["src"]).glob(prefix + "?"))
        joined = tmp_path / (prefix + "a")
        joined.write_bytes(b"".join(p.read_bytes() for p in pieces))
        return joined
    return RAR / row["src"] / name


def expected_file(row: dict[str, str], entry: str) -> Path:
    """Where expected/ stores an entry, with the README's renaming rules for clashes."""
    name = row["archive"]
    if name.endswith("? (concatenated)"):
        name = name.split("?")[0] + "a"
    path = RAR / "expected" / row["src"] / name
    parts = entry.split("/")
    for index, part in enumerate(parts):
        candidate = path / ("__" if part == ".." else part)
        if index == len(parts) - 1 and candidate.is_dir():
            candidate = path / (part + ".~file")
        elif index < len(parts) - 1 and candidate.exists() and not candidate.is_dir():
            candidate = path / (part + ".~dir")
        path = candidate
    return path


def expected_inputs(row: dict[str, str], entries: list[dict[str, str]]) -> dict[str, bytes]:
    """The stored, verified contents of an archive, checked against the manifest's sha256.

    Links are left out: unrar's test mode (which made the manifest) gives them no data,
    while an extracted hard link or file copy holds its target's bytes.
    """
    inputs: dict[str, bytes] = {}
    for entry in entries:
        if entry["status"] != "ok" or entry["stored"] != "True":
            continue
        if entry["size"] == "0" and entry["declared"] not in ("", "0"):
            continue  # a link: no data of its own
        data = expected_file(row, entry["entry"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["entry"]
        inputs[entry["entry"]] = data
    return inputs


def index_params() -> list[object]:
    rows = _index()
    if not rows:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no {RAR / 'INDEX.tsv'}"))]
    ids = [f"{row['src']}/{row['archive'].replace('? (concatenated)', '?')}" for row in rows]
    return [pytest.param(row, id=name) for row, name in zip(rows, ids, strict=True)]


@pytest.mark.parametrize("row", index_params())
def test_every_archive_verifies_or_gives_a_clean_reason(
    row: dict[str, str], tmp_path: Path
) -> None:
    archive = archive_path(row, tmp_path)
    if not archive.exists():
        assert row["sfx_offset"], "only the self-extracting archives were left out"
        pytest.skip("self-extracting archive: left out of the shared data")
    entries = _manifest().get((row["src"], row["archive"]), [])
    inputs = expected_inputs(row, entries)

    result = compare_rar(archive, inputs)
    assert_clean(result)
    for key, metrics in result.rows.items():
        # The inputs are exactly what the archive holds: a difference would be our bug.
        assert metrics.status != FAILED, (key, metrics.note)
        assert metrics.original_size == len(inputs[key])
    if result.total is not None:
        assert result.total.status != FAILED

    # Entries the reference decoder could not decode, asked for with made-up contents:
    # whatever the archive does, the answer is a row or a reason, never an exception.
    broken = {e["entry"]: b"?" for e in entries if e["status"] == "FAILED" and e["entry"]}
    if broken:
        assert_clean(compare_rar(archive, broken))


def _require_extraction_tool() -> None:
    """Skip when no installed program can decompress RAR (unrar, unar, 7-Zip with RAR...)."""
    import rarfile

    with rarfile.RarFile(shared("rarfile", "rar3-solid.rar")) as archive:
        try:
            archive.read("stest1.txt")
        except rarfile.Error as exc:
            pytest.skip(f"no working RAR extraction tool: {exc}")


def _inputs_for(src: str, name: str) -> dict[str, bytes]:
    row = {"src": src, "archive": name}
    return expected_inputs(row, _manifest()[(src, name)])


def test_solid_archive_is_reported_as_a_whole() -> None:
    _require_extraction_tool()
    archive = shared("rarfile", "rar3-solid.rar")
    inputs = _inputs_for("rarfile", "rar3-solid.rar")
    result = compare_rar(archive, inputs)
    assert result.error is None
    assert [m.status for m in result.rows.values()] == [OK, OK]
    assert all(m.compressed_size is None for m in result.rows.values())
    total = result.total
    assert total is not None and total.status == OK
    assert total.compressed_size == archive.stat().st_size
    assert total.original_size == sum(len(d) for d in inputs.values())
    assert "solid archive" in total.note


def test_multi_volume_archive_counts_every_volume() -> None:
    first = shared("rarfile", "rar3-vols.part1.rar")
    inputs = _inputs_for("rarfile", "rar3-vols.part1.rar")
    result = compare_rar(first, inputs)
    assert result.error is None and result.total is not None
    assert {m.status for m in result.rows.values()} == {OK}
    assert result.rows["vols/bigfile.txt"].compressed_size == 205_000  # stored, across volumes
    volumes = sorted(first.parent.glob("rar3-vols.part*.rar"))
    assert len(volumes) == 3
    assert f"{sum(v.stat().st_size for v in volumes):,} bytes" in result.total.note


def test_a_later_volume_asks_for_the_first() -> None:
    result = compare_rar(shared("rarfile", "rar3-vols.part2.rar"), {"bigfile.txt": b""})
    assert result.error is not None and "first volume" in result.error


@pytest.mark.parametrize("name", ["rar5-hpsw.rar", "rar3-comment-hpsw.rar"], ids=["rar5", "rar3"])
def test_encrypted_headers_give_a_one_line_reason(name: str) -> None:
    result = compare_rar(shared("rarfile", name), {"stest1.txt": b""})
    assert_one_line(result.error)
    assert "encrypted" in (result.error or "")


def test_encrypted_members_are_skipped_not_verified() -> None:
    inputs = _inputs_for("libarchive", "test_read_format_rar5_encrypted.rar")
    result = compare_rar(shared("libarchive", "test_read_format_rar5_encrypted.rar"), inputs)
    statuses = {key: m.status for key, m in result.rows.items()}
    assert statuses == {"a.txt": OK, "b.txt": SKIPPED, "c.txt": OK, "d.txt": SKIPPED}
    assert "encrypted" in result.rows["b.txt"].note
    assert result.rows["b.txt"].compressed_size is None  # never counted in a total
    assert result.total is not None and result.total.note.startswith("2 of 4 files")


def test_malformed_shared_archive_gives_a_one_line_reason() -> None:
    name = "test_read_format_rar5_truncated_huff.rar"
    result = compare_rar(shared("libarchive", name), {"a.txt": b"a"})
    assert_one_line(result.error)
    assert "malformed" in (result.error or "")


def test_truncated_copy_of_a_real_archive_never_raises(tmp_path: Path) -> None:
    blob = shared("rarfile", "rar5-crc.rar").read_bytes()
    inputs = _inputs_for("rarfile", "rar5-crc.rar")
    for cut in (10, len(blob) // 3, len(blob) // 2, len(blob) - 20):
        archive = tmp_path / f"cut{cut}.rar"
        archive.write_bytes(blob[:cut])
        result = compare_rar(archive, inputs)
        assert_clean(result)
        # Cut data is caught (by the archive's CRC or a short read): skipped, never passed.
        assert all(m.status != FAILED for m in result.rows.values())


def test_a_changed_input_is_failed() -> None:
    inputs = _inputs_for("rarfile", "rar3-vols.part1.rar")
    inputs["vols/smallfile.txt"] = b"X" + inputs["vols/smallfile.txt"][1:]
    result = compare_rar(shared("rarfile", "rar3-vols.part1.rar"), inputs)
    assert result.rows["vols/smallfile.txt"].status == FAILED
    assert "at byte 0" in result.rows["vols/smallfile.txt"].note
    assert result.total is not None and result.total.status == FAILED


def test_hard_links_verify_against_their_target_at_no_cost() -> None:
    _require_extraction_tool()
    content = _inputs_for("rarfile", "rar5-hlink.rar")["stest1.txt"]
    inputs = {name: content for name in ("stest1.txt", "stest2.txt", "stest3.txt")}
    result = compare_rar(shared("rarfile", "rar5-hlink.rar"), inputs)
    assert {m.status for m in result.rows.values()} == {OK}
    assert result.rows["stest2.txt"].compressed_size == 0
    assert "link to stest1.txt" in result.rows["stest2.txt"].note


def test_members_are_matched_by_base_name_preferring_the_longest_path_match(
    tmp_path: Path,
) -> None:
    inputs = _inputs_for("rarfile", "rar3-subdirs.rar")
    renamed = {
        f"elsewhere/{Path(key).parent.name}/{Path(key).name}": v for key, v in inputs.items()
    }
    result = compare_rar(shared("rarfile", "rar3-subdirs.rar"), renamed)
    assert {m.status for m in result.rows.values()} == {OK}


@needs_shared
def test_cli_puts_the_archive_beside_the_codecs_and_exits_1_on_a_mismatch(
    tmp_path: Path,
) -> None:
    source = RAR / "expected" / "rarfile" / "rar3-vols.part1.rar" / "vols"
    archive = RAR / "rarfile" / "rar3-vols.part1.rar"
    runner = CliRunner()
    args = [str(source), "--codecs", "zlib", "--rar", str(archive), "--json"]
    result = runner.invoke(compare_command, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rar_rows = [r for r in report["files"] if r["codec"] == "rar:rar3-vols.part1.rar"]
    assert [r["status"] for r in rar_rows] == ["ok", "ok"]
    assert report["totals"][-1]["codec"] == "rar:rar3-vols.part1.rar"

    changed = tmp_path / "smallfile.txt"
    changed.write_bytes(b"not what the archive holds")
    result = runner.invoke(
        compare_command, [str(changed), "--codecs", "zlib", "--rar", str(archive)]
    )
    assert result.exit_code == 1
    assert "FAILED" in result.stdout
