"""The command line, path by path, with gzip's conventions (docs/DESIGN.md, section 9).

Most tests run the CLI in-process with click's CliRunner (fast, and an uncaught exception
shows up as ``result.exception``); what needs real file descriptors -- pipes, a terminal,
tar, a broken pipe, a full disk, import costs -- runs the installed ``nncompress`` console
script in a subprocess. Every failure must be exactly one line on stderr, never a traceback,
with a non-zero exit, no partial output left behind, and the input untouched.
"""

from __future__ import annotations

import hashlib
import io
import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from conftest import TINY_NAME, cli_executable, sample_text, shrink_tables

from nncompress import engine
from nncompress import format as fmt
from nncompress.cli import main
from nncompress.engine import list_stream

# ----------------------------------------------------------------------------- helpers


@pytest.fixture
def work(model_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch directory as the current directory, with the test models installed.

    In-process runs use small adaptive tables (see ``shrink_tables``): these tests are about
    the command line, and the subprocess tests below run the real configuration."""
    d = tmp_path / "work"
    d.mkdir()
    monkeypatch.chdir(d)
    shrink_tables(monkeypatch)
    return d


def run(args: list[str], input: bytes | None = None) -> Result:
    """Invoke the CLI in-process. An exception escaping it (a traceback for the user) fails
    the test right here."""
    result = CliRunner().invoke(main, args, input=input, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {result.exception!r}") from result.exception
    return result


def one_line_error(stderr: str | bytes, *fragments: str) -> str:
    """The failure report: a single 'nncompress: ...' line with the given fragments."""
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("nncompress: "), text
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def leftovers(directory: Path) -> list[str]:
    """Temporary files a failed write might leave behind."""
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def write(path: Path, data: bytes) -> bytes:
    path.write_bytes(data)
    return data


def stored_archive(data: bytes, block: int = 1 << 20) -> bytes:
    """An archive of stored blocks made directly with the format primitives (instant, even
    for megabytes: no model is run)."""
    header = fmt.Header(block).pack()
    out, check = [header], fmt.frame_seed(header, 0, 0)
    for i in range(0, len(data), block):
        chunk = data[i : i + block]
        end = fmt.END_STREAM if i + block >= len(data) else fmt.END_NONE
        head = fmt.BlockHeader(fmt.METHOD_STORED, len(chunk), len(chunk), 0, end).pack(block)
        check = fmt.block_check(head, chunk, check)
        out += [head, chunk, fmt.CHECK.pack(check)]
    return b"".join(out)


def prefix_of(model_dir: Path, name: str) -> str:
    """The SHA-256 prefix an archive records for the test model ``name``."""
    return hashlib.sha256((model_dir / f"{name}.nnm").read_bytes()).hexdigest()[
        : 2 * fmt.SHORT_HASH_PREFIX
    ]


def corrupt_model_payload(blob: bytes) -> bytes:
    """Flip one bit in the middle of the last block's payload (its header stays valid)."""
    info = list_stream(io.BytesIO(blob))
    last = info.blocks[-1]
    pos = len(blob) - fmt.CHECK_SIZE - last.coded_len // 2 - 1
    bad = bytearray(blob)
    bad[pos] ^= 0x10
    return bytes(bad)


# ----------------------------------------------------------------------------- basics
def test_compress_and_decompress_a_file(work: Path) -> None:
    data = write(work / "a.txt", sample_text(1500))
    r = run(["a.txt"])
    assert r.exit_code == 0 and r.stdout_bytes == b"" and r.stderr == ""
    assert (work / "a.txt").read_bytes() == data  # kept by default
    blob = (work / "a.txt.nnc").read_bytes()
    assert blob.startswith(fmt.MAGIC) and len(blob) < len(data)
    (work / "a.txt").unlink()
    r = run(["-d", "a.txt.nnc"])
    assert r.exit_code == 0 and r.stderr == ""
    assert (work / "a.txt").read_bytes() == data
    assert (work / "a.txt.nnc").exists()


def test_subcommands(work: Path) -> None:
    data = write(work / "a", sample_text(700))
    assert run(["compress", "a"]).exit_code == 0
    assert run(["decompress", "-c", "a.nnc"]).stdout_bytes == data
    assert run(["compress", "-d", "-c", "a.nnc"]).stdout_bytes == data


def test_empty_file(work: Path) -> None:
    write(work / "empty", b"")
    assert run(["empty"]).exit_code == 0
    assert run(["-dc", "empty.nnc"]).stdout_bytes == b""
    assert run(["-t", "empty.nnc"]).exit_code == 0


def test_output_option(work: Path) -> None:
    data = write(work / "a.txt", sample_text(800))
    assert run(["-o", "x.bin", "a.txt"]).exit_code == 0
    assert not (work / "a.txt.nnc").exists()
    assert run(["-d", "-o", "y.txt", "x.bin"]).exit_code == 0  # no suffix needed with -o
    assert (work / "y.txt").read_bytes() == data
    r = run(["-d", "-o", "-", "x.bin"])
    assert r.stdout_bytes == data


def test_output_option_takes_one_input(work: Path) -> None:
    write(work / "a", b"a")
    write(work / "b", b"b")
    r = run(["-o", "x", "a", "b"])
    assert r.exit_code == 2 and not (work / "x").exists()


def test_stdout_option(work: Path) -> None:
    data = write(work / "a.txt", sample_text(600))
    r = run(["-c", "a.txt"])
    assert r.exit_code == 0 and not (work / "a.txt.nnc").exists()
    blob = r.stdout_bytes
    assert run(["-dc"], input=blob).stdout_bytes == data
    assert run(["-d", "-c", "-"], input=blob).stdout_bytes == data
    assert run(["--decompress", "--stdout"], input=blob).stdout_bytes == data


def test_stdin_to_stdout_without_subcommand(work: Path) -> None:
    """``nncompress < x > x.nnc`` and ``nncompress -d < x.nnc > x``: the tar -I protocol."""
    data = sample_text(900, seed=3)
    r = run([], input=data)
    assert r.exit_code == 0 and r.stderr == ""
    assert run(["-d"], input=r.stdout_bytes).stdout_bytes == data
    assert run(["-"], input=data).stdout_bytes == r.stdout_bytes
    assert os.listdir(work) == []


def test_concatenated_archives(work: Path) -> None:
    a = write(work / "a", sample_text(500, seed=1))
    b = write(work / "b", bytes(300))
    assert run(["a", "b"]).exit_code == 0
    cat = (work / "a.nnc").read_bytes() + (work / "b.nnc").read_bytes()
    assert run(["-dc"], input=cat).stdout_bytes == a + b
    (work / "ab.nnc").write_bytes(cat)
    assert run(["-t", "ab.nnc"]).exit_code == 0


def test_block_size_option(work: Path) -> None:
    data = write(work / "a", sample_text(2500, seed=4))
    assert run(["-B", "1K", "--fast", "a"]).exit_code == 0
    info = list_stream(io.BytesIO((work / "a.nnc").read_bytes()))
    assert info.block_size == 1024 and len(info.blocks) == 3
    assert run(["-dc", "a.nnc"]).stdout_bytes == data
    for bad in ("0", "-5", "lots", "1T"):
        r = run(["-B", bad, "-c", "a"])
        assert r.exit_code == 2, bad


def test_max_option(work: Path) -> None:
    data = write(work / "a", sample_text(9000, seed=6))
    assert run(["--max", "-k", "a"]).exit_code == 0
    info = list_stream(io.BytesIO((work / "a.nnc").read_bytes()))
    assert [b.segments for b in info.blocks] == [1]
    assert run(["-dc", "a.nnc"]).stdout_bytes == data
    assert run(["-t", "a.nnc"]).exit_code == 0


def test_max_takes_the_large_model(work: Path, model_dir: Path) -> None:
    """``--max`` compresses with the ``large`` model unless one is named; decompression
    finds either by the hash the archive records."""
    data = write(work / "a", sample_text(3000, seed=7))
    for args, name in (([], "large"), (["-m", "default"], "default")):
        r = run(["--max", "-c", *args, "a"])
        assert r.exit_code == 0
        assert list_stream(io.BytesIO(r.stdout_bytes)).model_prefix == prefix_of(model_dir, name)
        assert run(["-d"], input=r.stdout_bytes).stdout_bytes == data
    r = run(["-c", "a"])
    assert list_stream(io.BytesIO(r.stdout_bytes)).model_prefix == prefix_of(model_dir, "default")


def test_explicit_model_option(work: Path, model_dir: Path) -> None:
    data = write(work / "a", sample_text(600, seed=5))
    assert run(["-m", "two", "--fast", "a"]).exit_code == 0
    info = list_stream(io.BytesIO((work / "a.nnc").read_bytes()))
    assert info.model_prefix == prefix_of(model_dir, "two")
    assert run(["-dc", "a.nnc"]).stdout_bytes == data
    assert run(["-dc", "-m", str(model_dir / "two.nnm"), "a.nnc"]).stdout_bytes == data


# ----------------------------------------------------------------------------- -f -k --rm
def test_refuses_to_overwrite_without_force(work: Path) -> None:
    data = write(work / "a", sample_text(400))
    (work / "a.nnc").write_bytes(b"precious")
    r = run(["a"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "a.nnc already exists", "-f")
    assert (work / "a.nnc").read_bytes() == b"precious"
    r = run(["-d", "a.nnc"])  # decompressing onto an existing file
    assert r.exit_code == 1 and (work / "a").read_bytes() == data
    assert run(["-f", "a"]).exit_code == 0
    assert run(["-dc", "a.nnc"]).stdout_bytes == data
    assert leftovers(work) == []


def test_force_decompress_overwrites(work: Path) -> None:
    data = write(work / "a", sample_text(400))
    run(["a"])
    (work / "a").write_bytes(b"old")
    assert run(["-df", "a.nnc"]).exit_code == 0
    assert (work / "a").read_bytes() == data


def test_same_file_in_and_out(work: Path) -> None:
    data = write(work / "a", b"abc")
    r = run(["-f", "-o", "a", "a"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "same file")
    assert (work / "a").read_bytes() == data


def test_rm_and_keep(work: Path) -> None:
    data = write(work / "a", sample_text(500))
    assert run(["--rm", "a"]).exit_code == 0
    assert not (work / "a").exists() and (work / "a.nnc").exists()
    assert run(["-d", "--rm", "a.nnc"]).exit_code == 0
    assert (work / "a").read_bytes() == data and not (work / "a.nnc").exists()
    assert run(["-k", "a"]).exit_code == 0
    assert (work / "a").exists() and (work / "a.nnc").exists()
    r = run(["-k", "--rm", "a"])
    assert r.exit_code == 2


def test_rm_with_stdout_keeps_input(work: Path) -> None:
    """Like gzip -c: writing to stdout never deletes the input."""
    write(work / "a", b"hello")
    assert run(["--rm", "-c", "a"]).exit_code == 0
    assert (work / "a").exists()


def test_metadata_is_preserved(work: Path) -> None:
    src = work / "a"
    write(src, sample_text(300))
    os.chmod(src, 0o640)
    os.utime(src, (1_000_000_000, 1_000_000_000))
    run(["a"])
    st = (work / "a.nnc").stat()
    assert st.st_mode & 0o777 == 0o640 and int(st.st_mtime) == 1_000_000_000


# ----------------------------------------------------------------------------- -t -l -v -q
def test_test_option(work: Path) -> None:
    write(work / "a", sample_text(700))
    run(["--fast", "a"])
    r = run(["-t", "a.nnc"])
    assert r.exit_code == 0 and r.stdout_bytes == b"" and r.stderr == ""
    r = run(["-tv", "a.nnc"])
    assert r.exit_code == 0 and "a.nnc: OK (700 bytes)" in r.stderr
    (work / "bad.nnc").write_bytes(corrupt_model_payload((work / "a.nnc").read_bytes()))
    r = run(["-t", "bad.nnc"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "bad.nnc", "corrupted archive")
    assert not (work / "bad").exists()


def test_list_option(work: Path, model_dir: Path) -> None:
    # Text (a model method wins) and random bytes (stored wins): two blocks, two methods,
    # and with -F 2000 two frames (so an index).
    write(work / "a", sample_text(2000) + os.urandom(2000))
    run(["-B", "2000", "-F", "2000", "a"])
    size = (work / "a.nnc").stat().st_size
    r = run(["-l", "a.nnc"])
    assert r.exit_code == 0
    header, row = r.output.strip().splitlines()
    assert header.split()[:6] == ["compressed", "original", "ratio", "bpb", "frames", "blocks"]
    fields = row.split()
    assert fields[0] == f"{size:,}" and fields[1] == "4,000" and fields[-1] == "a.nnc"
    assert fields[4] == "2" and fields[5] == "2"
    methods = dict(m.split(":") for m in fields[6].split(","))
    assert methods.pop("stored") == "1" and list(methods.values()) == ["1"]
    assert list(methods)[0] in {fmt.METHOD_NAMES[m] for m in fmt.MODEL_METHODS}
    assert f"sha256:{prefix_of(model_dir, 'default')}" in row
    r = run(["-lv", "a.nnc"])
    lines = r.output.strip().splitlines()
    assert len(lines) == 6 and lines[2].strip().startswith("frame 0: at ")
    assert lines[4].strip().startswith("block 0 (frame 0): m")  # model or mixed
    assert "segments" in lines[4] and "block 1 (frame 1): stored" in lines[5]


def test_list_names_repeat_blocks(work: Path) -> None:
    """A block that repeats a period is listed as "repeat", with its period under -v, and
    ``-v`` counts such blocks apart from stored ones."""
    write(work / "a", bytes(3000) + b"\xde\xad\xbe\xef" * 750)
    r = run(["-v", "-B", "3000", "a"])
    assert r.exit_code == 0
    assert "repeat: 2 blocks, 6,000 -> 5 bytes" in r.stderr
    r = run(["-l", "a.nnc"])
    assert r.output.strip().splitlines()[1].split()[6] == "repeat:2"
    lines = run(["-lv", "a.nnc"]).output.strip().splitlines()
    assert "block 0 (frame 0): repeat" in lines[3] and "a period of 1 bytes" in lines[3]
    assert "block 1 (frame 0): repeat" in lines[4] and "a period of 4 bytes" in lines[4]
    assert run(["-dc", "a.nnc"]).stdout_bytes == (work / "a").read_bytes()


def test_list_names_copy_blocks(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A block its frame held before is listed as "copy", with its distance under -v.
    (Blocks of 8,000 bytes and more looked up: ``engine.COPY_MIN`` scaled down.)"""
    monkeypatch.setattr(engine, "COPY_MIN", 8000)
    text = sample_text(40_000, 3)
    write(work / "a", text + sample_text(10_000, 4) + text)  # a copy from 50,000 on
    r = run(["-v", "-B", "16384", "a"])
    assert r.exit_code == 0 and "copy: 2 blocks, 24,464 -> 0 bytes" in r.stderr
    assert "copy:2" in run(["-l", "a.nnc"]).output
    lines = run(["-lv", "a.nnc"]).output.strip().splitlines()
    copies = [line for line in lines if "): copy" in line]
    assert len(copies) == 2 and all("from 50,000 bytes back" in line for line in copies)
    assert run(["-dc", "a.nnc"]).stdout_bytes == (work / "a").read_bytes()


def test_list_without_the_model(
    work: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Listing reads the block table only; it needs no model."""
    write(work / "a", sample_text(500))
    run(["--fast", "a"])
    monkeypatch.setenv("NNCOMPRESS_MODELS", str(tmp_path))
    assert run(["-l", "a.nnc"]).exit_code == 0


def test_verbose_and_quiet(work: Path) -> None:
    write(work / "a", sample_text(1000))
    r = run(["-v", "a"])
    assert r.exit_code == 0
    line = r.stderr.splitlines()[0]  # the report; then how the bits were spent
    assert line.startswith("nncompress: a: 1,000 ->") and "bpb" in line and "-> a.nnc" in line
    assert "%" in line and "Traceback" not in r.stderr
    r = run(["-v", "-q", "-f", "a"])
    assert r.exit_code == 0 and r.stderr == ""
    r = run(["-dvc", "a.nnc"])
    assert "-> stdout" in r.stderr


def test_quiet_still_reports_failures(work: Path) -> None:
    r = run(["-q", "missing"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "missing")


# ----------------------------------------------------------------------------- many files
def test_recursive(work: Path) -> None:
    tree = {
        "d/a.txt": sample_text(300, 1),
        "d/sub/b.txt": sample_text(200, 2),
        "d/sub/deeper/c": b"",
        "d/e.bin": bytes(range(256)),
    }
    for name, data in tree.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(data)
    r = run(["d"])  # a directory without -r: a failure (exit 1), nothing done
    assert "is a directory" in r.stderr and not (work / "d/a.txt.nnc").exists()
    assert r.exit_code == 1
    assert run(["-r", "--rm", "d"]).exit_code == 0
    for name in tree:
        assert not (work / name).exists() and (work / (name + ".nnc")).exists()
    assert run(["-r", "d"]).exit_code == 0  # nothing left to compress: .nnc files are skipped
    assert not list(work.rglob("*.nnc.nnc"))
    assert run(["-d", "-r", "--rm", "d"]).exit_code == 0
    for name, data in tree.items():
        assert (work / name).read_bytes() == data
    assert not list(work.rglob("*.nnc"))


def test_many_files_one_fails(work: Path) -> None:
    """The failure is reported, the other inputs are still processed, and the exit is 1."""
    a = write(work / "a", sample_text(300, 1))
    b = write(work / "b", sample_text(300, 2))
    r = run(["a", "missing", "b"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "missing", "no such file")
    assert run(["-dc", "a.nnc"]).stdout_bytes == a
    assert run(["-dc", "b.nnc"]).stdout_bytes == b
    (work / "junk.nnc").write_bytes(b"not an archive")
    (work / "a").unlink()
    (work / "b").unlink()
    r = run(["-d", "a.nnc", "junk.nnc", "b.nnc", "a"])
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and "junk.nnc" in lines[0] and "unknown suffix" in lines[1]
    assert (work / "a").read_bytes() == a and (work / "b").read_bytes() == b
    assert not (work / "junk").exists()


# ----------------------------------------------------------------------------- failures
def test_missing_file(work: Path) -> None:
    r = run(["nope.txt"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "nope.txt", "no such file or directory")
    r = run(["-d", "nope.nnc"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "nope.nnc", "no such file")


def test_compressing_an_archive_again(work: Path) -> None:
    write(work / "a.nnc", b"whatever")
    r = run(["a.nnc"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "already has .nnc suffix")


def test_not_an_archive(work: Path) -> None:
    data = write(work / "plain.nnc", b"just some text, not an archive\n")
    r = run(["-d", "plain.nnc"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "plain.nnc", "not a nncompress archive")
    assert not (work / "plain").exists() and leftovers(work) == []
    assert (work / "plain.nnc").read_bytes() == data
    write(work / "plain.txt", b"text")
    r = run(["-d", "plain.txt"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "unknown suffix")
    r = run(["-d"], input=b"")
    assert r.exit_code == 1
    one_line_error(r.stderr, "empty input")
    r = run(["-t", "plain.txt"])
    assert r.exit_code == 1


def test_truncated_archive(work: Path) -> None:
    write(work / "a", sample_text(2000))
    run(["-B", "1000", "--fast", "a"])
    blob = (work / "a.nnc").read_bytes()
    (work / "a").unlink()
    for cut in (5, 60, len(blob) // 2, len(blob) - 1):
        (work / "a.nnc").write_bytes(blob[:cut])
        r = run(["-d", "a.nnc"])
        assert r.exit_code == 1
        one_line_error(r.stderr, "a.nnc", "truncated")
        assert not (work / "a").exists() and leftovers(work) == []
        assert (work / "a.nnc").read_bytes() == blob[:cut]


def test_checksum_mismatch_leaves_nothing(work: Path) -> None:
    """A damaged second block: the first block decodes, but no partial file is left and the
    archive is untouched, even with --rm."""
    write(work / "a", sample_text(2000))
    run(["-B", "1000", "--fast", "--rm", "a"])
    bad = corrupt_model_payload((work / "a.nnc").read_bytes())
    (work / "a.nnc").write_bytes(bad)
    r = run(["-d", "--rm", "a.nnc"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "a.nnc", "corrupted archive", "block 1")
    assert not (work / "a").exists() and leftovers(work) == []
    assert (work / "a.nnc").read_bytes() == bad


def test_header_bit_flip(work: Path) -> None:
    """A flipped bit anywhere in the header is refused in one line, with no output: a
    damaged block size or configuration fails the first block's check (which covers the
    header), a damaged model hash names a model that is not there."""
    write(work / "a", b"hello " * 50)
    run(["a"])
    blob = (work / "a.nnc").read_bytes()
    header_len = len(fmt.read_header(io.BytesIO(blob))[1])
    for pos in range(header_len):
        bad = bytearray(blob)
        bad[pos] ^= 4
        (work / "b.nnc").write_bytes(bytes(bad))
        r = run(["-d", "-f", "b.nnc"])
        assert r.exit_code == 1, pos
        msg = one_line_error(r.stderr)
        assert any(w in msg for w in ("corrupted", "damaged", "magic", "format", "preset")), msg
        assert not (work / "b").exists()


def test_model_not_installed(
    work: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model
) -> None:
    data = write(work / "a", sample_text(600))
    run(["--fast", "a"])
    (work / "a").unlink()
    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setenv("NNCOMPRESS_MODELS", str(empty))
    r = run(["-d", "a.nnc"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "needs the model", tiny_model.sha256[:8], "not installed")
    assert not (work / "a").exists() and leftovers(work) == []
    # Stored/LZMA-only archives do not need the model.
    (work / "z.nnc").write_bytes(stored_archive(data))
    assert run(["-dc", "z.nnc"]).stdout_bytes == data


def test_wrong_model_option(work: Path, other_model_path: Path, tiny_model) -> None:
    write(work / "a", sample_text(600))
    run(["--fast", "a"])
    (work / "a").unlink()
    r = run(["-d", "-m", str(other_model_path), "a.nnc"])
    assert r.exit_code == 1
    one_line_error(r.stderr, tiny_model.sha256[:8], "tiny-other")
    assert not (work / "a").exists()


def test_unknown_model_option(work: Path) -> None:
    write(work / "a", b"abc")
    r = run(["-m", "no-such-model", "a"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "no-such-model", "not found")
    assert not (work / "a.nnc").exists() and leftovers(work) == []
    r = run(["--device", "tpu", "a"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "unknown device")


def test_broken_model_file(work: Path, tmp_path: Path) -> None:
    (tmp_path / "junk.nnm").write_bytes(b"this is not a model")
    write(work / "a", b"abc")
    r = run(["-m", str(tmp_path / "junk.nnm"), "a"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "junk.nnm")


def test_unreadable_input(work: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    write(work / "a", b"abc")
    os.chmod(work / "a", 0)
    r = run(["a"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "permission denied")


def test_models_subcommand(work: Path, model_dir: Path) -> None:
    r = run(["models"])
    assert r.exit_code == 0
    assert TINY_NAME in r.output and "tiny-two" in r.output and "2x32 GRU" in r.output


def test_help_and_version() -> None:
    r = run(["--help"])
    assert r.exit_code == 0 and "Usage" in r.output
    r = run(["--version"])
    assert r.exit_code == 0 and "nncompress" in r.output
    assert run(["compress", "--help"]).exit_code == 0


# ----------------------------------------------------------------------------- subprocesses
_IMPORTS = """
import sys
from nncompress.cli import main
try:
    main([sys.argv[1]], standalone_mode=False)
except SystemExit:
    pass
heavy = ("numpy", "torch", "constriction", "safetensors", "rich")
print("HEAVY:" + ",".join(sorted({m.split(".")[0] for m in sys.modules} & set(heavy))))
"""


@pytest.mark.parametrize("flag", ["--help", "--version", "-h", "-V"])
def test_help_and_version_stay_light(flag: str) -> None:
    """``--help`` and ``--version`` must answer without importing numpy or torch."""
    r = subprocess.run(
        [sys.executable, "-c", _IMPORTS, flag], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "HEAVY:", r.stdout


def test_console_script_round_trip(cli: str, model_env: dict[str, str], tmp_path: Path) -> None:
    data = sample_text(800, seed=9)
    c = subprocess.run([cli], input=data, capture_output=True, env=model_env, timeout=120)
    assert c.returncode == 0 and c.stderr == b""
    d = subprocess.run(
        [cli, "-dc"], input=c.stdout, capture_output=True, env=model_env, timeout=120
    )
    assert d.returncode == 0 and d.stdout == data


def test_tar_integration(cli: str, model_env: dict[str, str], tmp_path: Path) -> None:
    """``tar -I nncompress``: tar runs the program as a filter (stdin to stdout, ``-d``)."""
    if shutil.which("tar") is None:
        pytest.skip("tar not installed")
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "one.txt").write_bytes(sample_text(700, 1))
    (src / "sub" / "two.bin").write_bytes(bytes(range(256)) * 4)
    r = subprocess.run(
        ["tar", "-I", "nncompress", "-cf", "x.tar.nnc", "tree"],
        cwd=tmp_path,
        env=model_env,
        capture_output=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x.tar.nnc").read_bytes().startswith(fmt.MAGIC)
    out = tmp_path / "out"
    out.mkdir()
    r = subprocess.run(
        ["tar", "-I", "nncompress", "-xf", "../x.tar.nnc"],
        cwd=out,
        env=model_env,
        capture_output=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert (out / "tree" / "one.txt").read_bytes() == (src / "one.txt").read_bytes()
    assert (out / "tree" / "sub" / "two.bin").read_bytes() == (src / "sub" / "two.bin").read_bytes()


def _read_all(fd: int) -> bytes:
    chunks = []
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_refuses_compressed_data_to_a_terminal(
    cli: str, model_env: dict[str, str], tmp_path: Path
) -> None:
    """stdout is a real pseudo-terminal here; compressed output is refused unless -f."""
    (tmp_path / "a").write_bytes(b"hello hello hello")
    master, slave = pty.openpty()
    try:
        for args in (["-c", "a"], []):
            r = subprocess.run(
                [cli, *args],
                stdin=open(tmp_path / "a", "rb"),
                stdout=slave,
                stderr=subprocess.PIPE,
                cwd=tmp_path,
                env=model_env,
                timeout=120,
            )
            assert r.returncode == 1
            one_line_error(r.stderr, "terminal", "-f")
        assert _read_all(master) == b""
        # Decompressed output to a terminal is fine, and -f forces compressed output.
        (tmp_path / "b.nnc").write_bytes(stored_archive(b"plain words\n"))
        r = subprocess.run(
            [cli, "-dc", "b.nnc"],
            stdout=slave,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=model_env,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert b"plain words" in _read_all(master)
        r = subprocess.run(
            [cli, "-cf", "a"],
            stdout=slave,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=model_env,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert fmt.MAGIC[:3] in _read_all(master)
    finally:
        os.close(master)
        os.close(slave)


def test_broken_pipe(cli: str, model_env: dict[str, str], tmp_path: Path) -> None:
    """``nncompress -dc big.nnc | head -c 10``: as gzip and zstd, a quiet end with the
    status a shell gives a program that SIGPIPE ended (141), never a traceback."""
    data = np.random.default_rng(0).bytes(4 << 20)
    (tmp_path / "big.nnc").write_bytes(stored_archive(data))
    script = f'"{cli}" -dc big.nnc 2>err.txt | head -c 10 > head.bin; echo "${{PIPESTATUS[0]}}"'
    r = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=model_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (tmp_path / "head.bin").read_bytes() == data[:10]
    status = int(r.stdout.strip())
    err = (tmp_path / "err.txt").read_text()
    assert status == 141, (status, err)
    assert err == ""


def test_disk_full_on_stdout(cli: str, model_env: dict[str, str], tmp_path: Path) -> None:
    """Writing to a full device (/dev/full): one line, exit 1."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    (tmp_path / "big.nnc").write_bytes(stored_archive(bytes(1 << 20)))
    (tmp_path / "small.nnc").write_bytes(stored_archive(b"tiny"))
    for name in ("big.nnc", "small.nnc"):
        with open("/dev/full", "wb") as full:
            r = subprocess.run(
                [cli, "-dc", name],
                stdout=full,
                stderr=subprocess.PIPE,
                cwd=tmp_path,
                env=model_env,
                timeout=120,
            )
        assert r.returncode == 1, name
        one_line_error(r.stderr, "No space left on device")


def test_failures_from_the_console_script_are_one_line(
    cli: str, model_env: dict[str, str], tmp_path: Path
) -> None:
    """The same failures through the real entry point (exit status and stderr as a shell
    sees them)."""
    (tmp_path / "junk.nnc").write_bytes(b"garbage" * 10)
    cases = [
        ([cli, "missing-file"], "no such file"),
        ([cli, "-d", "junk.nnc"], "not a nncompress archive"),
        ([cli, "-t", "junk.nnc"], "not a nncompress archive"),
    ]
    for args, fragment in cases:
        r = subprocess.run(args, cwd=tmp_path, env=model_env, capture_output=True, timeout=120)
        assert r.returncode == 1, args
        one_line_error(r.stderr, fragment)
    r = subprocess.run(
        [cli, "-d"], input=b"garbage", cwd=tmp_path, env=model_env, capture_output=True, timeout=120
    )
    assert r.returncode == 1
    one_line_error(r.stderr, "not a nncompress archive")
    assert r.stdout == b""
    r = subprocess.run(
        [cli, "--no-such-option"], cwd=tmp_path, env=model_env, capture_output=True, timeout=120
    )
    assert r.returncode == 2 and b"Traceback" not in r.stderr


def test_cli_executable_found() -> None:
    assert Path(cli_executable()).name == "nncompress"


def test_verbose_shows_how_the_bits_were_spent(work: Path) -> None:
    """``-v`` on compress, decompress and test: bytes per block method and, for mixed
    blocks, each model's cost beside the mix's; the same report from encoder and decoder."""
    write(work / "a", sample_text(6000))
    r = run(["-v", "-k", "a"])
    assert r.exit_code == 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 5, r.stderr
    assert "mixed (plain): 1 block, 6,000 ->" in lines[1]
    assert "mixed method: preset 1 (default)" in lines[2]
    assert "network" in lines[3] and "order-6" in lines[3]
    assert "final" in lines[4] and "match model predicted" in lines[4]
    t = run(["-t", "-v", "a.nnc"])
    assert t.exit_code == 0
    assert t.stderr.strip().splitlines()[1:] == lines[1:]
    d = run(["-d", "-v", "-c", "a.nnc"])
    assert d.stderr.strip().splitlines()[1:] == lines[1:]
    f = run(["--fast", "-v", "-c", "a"])
    assert "model: 1 block" in f.stderr and "mixer" not in f.stderr


def test_sizes_out_of_range_are_usage_errors(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(work / "a", b"data")
    r = run(["-B", "512M", "a"])
    assert r.exit_code == 2 and "256M" in r.output and "Traceback" not in r.output
    monkeypatch.setenv("NNCOMPRESS_MEMORY", "lots")
    r = run(["a"])
    assert r.exit_code == 2 and "NNCOMPRESS_MEMORY" in r.output
    assert not (work / "a.nnc").exists()


def test_gzip_level_numbers_and_best(work: Path) -> None:
    """-1 .. -3 are the fast level, -4 .. -8 the default, -9 and --best the max level: the
    same archives as the named levels."""
    write(work / "a", sample_text(3000))
    by_name = {lvl: run(["-c", f"--{lvl}", "a"]).stdout_bytes for lvl in ("fast", "max")}
    by_name["default"] = run(["-c", "a"]).stdout_bytes
    for flag, level in (("-1", "fast"), ("-3", "fast"), ("-6", "default"), ("-9", "max")):
        assert run(["-c", flag, "a"]).stdout_bytes == by_name[level], flag
    assert run(["-c", "--best", "a"]).stdout_bytes == by_name["max"]


def test_zstd_fast_levels(work: Path) -> None:
    """zstd's --fast=N names the fast level for any N >= 1; a bad N is a usage error; a
    file named like the option after -- is a file."""
    write(work / "a", sample_text(2000))
    fast = run(["-c", "--fast", "a"]).stdout_bytes
    for n in ("1", "3", "1000"):
        assert run(["-c", f"--fast={n}", "a"]).stdout_bytes == fast, n
    for bad in ("0", "x", "", "-2", "²"):
        r = run(["-c", f"--fast={bad}", "a"])
        assert r.exit_code == 2 and "--fast=N" in r.output, bad
    write(work / "--fast=2", b"a file, not an option")
    assert run(["-k", "--", "--fast=2"]).exit_code == 0
    assert (work / "--fast=2.nnc").exists()


def test_suffix_option(work: Path) -> None:
    data = write(work / "a", b"suffix " * 40)
    assert run(["-S", ".z", "--rm", "a"]).exit_code == 0
    assert (work / "a.z").exists() and not (work / "a").exists()
    r = run(["-d", "a.z"])
    one_line_error(r.stderr, "unknown suffix", "expected .nnc")
    assert run(["-d", "-S", ".z", "a.z"]).exit_code == 0
    assert (work / "a").read_bytes() == data
    assert run(["-S", "", "a"]).exit_code == 2


def test_options_from_the_environment(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NNCOMPRESS_OPTIONS is read before the command line (whose options win)."""
    write(work / "a", sample_text(2000))
    monkeypatch.setenv("NNCOMPRESS_OPTIONS", "--fast -k")
    assert run(["a"]).exit_code == 0 and (work / "a").exists()
    fast = (work / "a.nnc").read_bytes()
    assert fast == run(["-c", "--fast", "a"]).stdout_bytes
    assert run(["-c", "--max", "a"]).stdout_bytes != fast
    monkeypatch.setenv("NNCOMPRESS_OPTIONS", "somefile")
    assert run(["-c", "a"]).exit_code == 2


def test_list_prints_its_header_once_and_totals(work: Path) -> None:
    for name in ("a", "b"):
        write(work / name, sample_text(500, seed=len(name)))
    run(["-k", "a", "b"])
    r = run(["-l", "a.nnc", "b.nnc"])
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4 and lines[0].split()[0] == "compressed"
    assert "total of 2 files" in lines[3]
    sizes = [int(line.split()[1].replace(",", "")) for line in lines[1:]]
    assert sizes[2] == sizes[0] + sizes[1] == 1000


def test_main_help_shows_the_gzip_options() -> None:
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0
    for opt in ("--decompress", "--stdout", "--keep", "--threads", "--suffix", "-9"):
        assert opt in r.output, opt
