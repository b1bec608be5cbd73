"""Hostile files, signals and races: what an archive, a signal, a special file or a second
writer can do, and what it must never do (lose data, leave partial outputs, take the
machine's memory, write to the terminal, print a traceback).

The subprocess tests run the installed console script, as a user's shell does; the rest run
the CLI in-process (``test_cli.run``).
"""

from __future__ import annotations

import io
import lzma
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import sample_text
from test_cli import leftovers, one_line_error, run, stored_archive, work, write  # noqa: F401

import nncompress
from nncompress import format as fmt
from nncompress.engine import _lzma_filters, decompress_stream

# ----------------------------------------------------------------------------- helpers


def lzma_bomb(n: int, header: fmt.Header | None = None) -> bytes:
    """A valid archive of ``n`` zero bytes in one LZMA2 block: about 40 KB for 256 MiB."""
    header = header or fmt.Header(n)
    payload = lzma.compress(bytes(n), format=lzma.FORMAT_RAW, filters=_lzma_filters(n, 0))
    h = header.pack()
    head = fmt.BlockHeader(fmt.METHOD_LZMA, n, len(payload), 0, fmt.END_STREAM).pack(
        header.block_size
    )
    check = fmt.block_check(head, bytes(n), fmt.frame_seed(h, 0, 0))
    return h + head + payload + fmt.CHECK.pack(check)


def claim(method: int, n: int, payload: bytes, model_ref: tuple[int, str] = (1, "")) -> bytes:
    """A stream of one block that claims ``n`` raw bytes from ``payload`` (its check is
    whatever: the claim must be refused before the payload is decoded)."""
    h = fmt.Header(n, *model_ref).pack()
    head = fmt.BlockHeader(method, n, len(payload), fmt.segment_count(n), fmt.END_STREAM)
    return h + head.pack(n) + payload + bytes(4)


#: Runs a command and prints its peak resident KiB. A small Python of its own starts it:
#: Linux counts in a child's peak the memory of the process it was forked from, and this
#: test process holds far more than the few MiB of ``python -S``.
_LAUNCHER = """
import os, sys
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
sys.stdout.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def peak_of(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120):
    """Run a command; its exit status, stderr, seconds and peak resident bytes."""
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-S", "-c", _LAUNCHER, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        timeout=timeout,
    )
    status, kib = map(int, r.stdout.split())
    return status, r.stderr, time.perf_counter() - t, kib << 10


# ----------------------------------------------------------------------------- bombs
def test_a_40_kb_archive_of_256_mib_decodes_in_bounded_memory(
    cli: str, model_env: dict[str, str], tmp_path: Path
) -> None:
    """A decompression bomb (one LZMA2 block of 2^28 zeros, 40 KB) decodes in under 1 GB:
    what an LZMA block feeds the statistics costs O(1) memory per byte. The stream names a
    model, so its blocks do feed the statistics (the model itself is never loaded)."""
    n = 1 << 28
    blob = lzma_bomb(n, fmt.Header(n, fmt.MODEL_HASH, "00" * fmt.HASH_PREFIX))
    assert len(blob) < 41_000
    (tmp_path / "bomb.nnc").write_bytes(blob)
    status, err, seconds, rss = peak_of([cli, "-t", "bomb.nnc"], model_env, tmp_path)
    assert status == 0, err
    assert rss < (1 << 30), rss


@pytest.mark.parametrize("method", [fmt.METHOD_MIXED, fmt.METHOD_MODEL])
def test_a_huge_claim_from_a_tiny_payload_is_refused_at_once(
    cli: str, model_env: dict[str, str], tmp_path: Path, method: int
) -> None:
    """A 100-byte payload cannot make 256 MiB (format.max_raw_len): refused before a byte
    of the claim is allocated or decoded, in well under 5 s and 300 MB."""
    blob = claim(method, 1 << 28, bytes(range(100)))
    (tmp_path / "claim.nnc").write_bytes(blob)
    status, err, seconds, rss = peak_of([cli, "-d", "-c", "claim.nnc"], model_env, tmp_path)
    assert status == 1
    one_line_error(err, "claims 268,435,456 bytes from 100 bytes of payload")
    assert seconds < 5 and rss < 300 << 20, (seconds, rss)


def test_the_expansion_bound_follows_from_the_coder() -> None:
    """The bound's premises: the mixed method's probabilities never pass SQUASH's top (its
    refinement tables start at most there and are clamped below it), and the network's
    likeliest byte has at most 2^16 of 2^16 + 255; the limits leave room over the ratios
    these allow."""
    import math

    from nncompress import adaptive

    top = int(adaptive.SQUASH.max())
    assert top == (1 << 16) - int(adaptive.SQUASH.min()) and adaptive.P_MAX <= top
    mixed = 1 / -math.log2(top / 65536)  # bytes per payload byte
    network = 8 / math.log2((65536 + 255) / 65536)
    assert mixed < fmt.MAX_EXPANSION[fmt.METHOD_MIXED] < 1.1 * mixed
    assert network < fmt.MAX_EXPANSION[fmt.METHOD_MODEL] < 1.1 * network
    # Fine probabilities (Config.fine): the refinement curves reach 65535/65536, and the
    # coded probability blends the mixer's (at most SQUASH's top) 2 to their 6.
    curve_top = adaptive.FINE_HIGH >> adaptive.FINE_Q
    assert curve_top == (1 << 16) - 1
    fine_top = (2 * top + 6 * curve_top) >> 3
    fine = 1 / -math.log2(fine_top / 65536)
    assert fine < fmt.MAX_EXPANSION_FINE < 1.1 * fine
    assert fmt.max_raw_len(fmt.METHOD_MIXED, 10, fine=True) == fmt.MAX_EXPANSION_FINE * 26
    assert fmt.max_raw_len(fmt.METHOD_MODEL, 10, fine=True) == fmt.max_raw_len(fmt.METHOD_MODEL, 10)
    assert fmt.max_raw_len(fmt.METHOD_STORED, 10) == 10
    assert fmt.max_raw_len(fmt.METHOD_LZMA, 10) is None


def test_the_most_compressible_block_stays_within_the_bound(tiny_model, small_tables) -> None:
    """A block of zeros, forced through the mixed method and the network alone: the
    payload is well above what the bound requires of it (448 bytes for 256 KiB through
    the mixed method: 585 bytes a payload byte, against the bound's 2,200); with fine
    probabilities it needs the fine bound."""
    from nncompress.adaptive import StreamState
    from nncompress.coder import encode_block, encode_block_mixed
    from nncompress.config import PRESETS

    data = bytes(1 << 18)
    payload, _ = encode_block_mixed(tiny_model, data, StreamState(block_size=len(data)))
    assert len(data) <= fmt.max_raw_len(fmt.METHOD_MIXED, len(payload)) // 2
    # With fine probabilities (preset 36), in one segment without the network, as the
    # default level codes binary blocks: past the bound without them, within its own.
    fine = StreamState(PRESETS[36], block_size=len(data))
    payload_fine, _ = encode_block_mixed(tiny_model, data, fine, segments=1, flat=True)
    assert len(data) > fmt.max_raw_len(fmt.METHOD_MIXED, len(payload_fine))
    assert len(data) <= fmt.max_raw_len(fmt.METHOD_MIXED, len(payload_fine), fine=True)
    payload, _ = encode_block(tiny_model, data)
    assert len(data) <= fmt.max_raw_len(fmt.METHOD_MODEL, len(payload)) // 2


def test_memory_limit_refuses_before_allocating(work: Path) -> None:  # noqa: F811
    """``--memory`` below what the archive's block size needs: one line, nothing written."""
    write(work / "a", sample_text(3000))
    assert run(["-k", "-B", "1M", "a"]).exit_code == 0
    r = run(["-d", "-c", "--memory", "1M", "a.nnc"])
    assert r.exit_code == 1 and r.stdout_bytes == b""
    one_line_error(r.stderr, "more than the memory limit", "--memory")
    assert run(["-d", "-c", "--memory", "2G", "a.nnc"]).stdout_bytes == (work / "a").read_bytes()


def test_memory_error_is_one_line(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from nncompress import cli

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(cli, "_compress", no_memory)
    write(work / "a", b"data")
    r = run(["a"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "out of memory")
    assert not (work / "a.nnc").exists() and leftovers(work) == []


# ----------------------------------------------------------------------------- races
def test_an_output_that_appears_meanwhile_is_not_replaced(
    work: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another writer creates the output while this one codes: this one fails, keeps its
    input (even with --rm), leaves no temporary file, and the other's file stands."""
    from nncompress import cli

    real = cli._compress

    def racing(src, dst, job, tick):
        (work / "same.nnc").write_bytes(b"the other writer's")
        return real(src, dst, job, tick)

    monkeypatch.setattr(cli, "_compress", racing)
    write(work / "b.bin", b"mine" * 100)
    r = run(["--rm", "-o", "same.nnc", "b.bin"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "appeared meanwhile", "not overwritten")
    assert (work / "same.nnc").read_bytes() == b"the other writer's"
    assert (work / "b.bin").exists() and leftovers(work) == []


def test_two_writers_one_output(cli: str, model_env: dict[str, str], tmp_path: Path) -> None:
    """Two real processes, one output name, both with --rm: at most one succeeds, the
    output decodes to that one's input, and the other's input is still there."""
    inputs = {"a.txt": sample_text(200_000, 1), "b.bin": sample_text(200_000, 2)}
    for name, data in inputs.items():
        (tmp_path / name).write_bytes(data)
    procs = {
        name: subprocess.Popen(
            [cli, "-q", "--rm", "-T1", "-o", "same.nnc", name],
            cwd=tmp_path,
            env=model_env,
            stderr=subprocess.PIPE,
        )
        for name in inputs
    }
    status = {name: p.wait(timeout=300) for name, p in procs.items()}
    winners = [name for name, s in status.items() if s == 0]
    assert len(winners) <= 1, status
    for name, s in status.items():
        assert (tmp_path / name).exists() == (s != 0), (name, s)
    if winners:
        out = subprocess.run(
            [cli, "-dc", "same.nnc"], cwd=tmp_path, env=model_env, capture_output=True
        )
        assert out.stdout == inputs[winners[0]]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_leaves_no_partial_output(
    cli: str, model_env: dict[str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    """SIGTERM (``timeout``, ``kill``) and SIGHUP end the program as Ctrl-C does: the
    temporary output is removed, the input kept, the status 128 + the signal."""
    (tmp_path / "big").write_bytes(sample_text(3 << 20, 5))
    p = subprocess.Popen(
        [cli, "--rm", "-T1", "big"],
        cwd=tmp_path,
        env=model_env,
        stderr=subprocess.PIPE,
        # (under nohup SIGHUP is ignored, and a program rightly keeps it so: give the
        # program the default disposition, as a terminal's shell does)
        preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not leftovers(tmp_path) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    assert leftovers(tmp_path), "no temporary output appeared"
    time.sleep(0.3)
    p.send_signal(sig)
    status = p.wait(timeout=60)
    assert status == 128 + sig, p.stderr.read().decode(errors="replace")[-3000:]
    assert leftovers(tmp_path) == [] and not (tmp_path / "big.nnc").exists()
    assert (tmp_path / "big").exists()
    one_line_error(p.stderr.read(), "terminated by", sig.name)


_SLOW_IMPORT = """
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from nncompress import cli
cli._catch_signals()
os.kill(os.getppid(), signal.SIGUSR1)  # ready: the parent may send its signal
try:
    import slow_module
    print("after the import", flush=True)
    time.sleep(30)
except {exc}:
    sys.exit(200)
"""


@pytest.mark.parametrize(
    "sig, exc",
    [(signal.SIGTERM, "cli.Terminated"), (signal.SIGINT, "KeyboardInterrupt")],
)
def test_a_signal_during_an_import_is_delivered_after_it(
    tmp_path: Path, sig: signal.Signals, exc: str
) -> None:
    """torch and numba are imported in the middle of coding; an exception raised inside a
    native module's initialisation can be swallowed there or abort the process. A signal
    that arrives during an import is therefore delivered again once the import is over:
    the import finishes, then the program unwinds."""
    (tmp_path / "slow_module.py").write_text(
        "import time\nfor _ in range(100):\n    time.sleep(0.01)\n"
    )
    ready = threading.Event()
    previous = signal.signal(signal.SIGUSR1, lambda *_: ready.set())
    try:
        p = subprocess.Popen(
            [sys.executable, "-c", _SLOW_IMPORT.format(exc=exc), str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL),  # as in a terminal
        )
        assert ready.wait(60)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    time.sleep(0.3)  # inside the import's second of sleeps
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 200, err.decode(errors="replace")
    # The signal comes again as soon as the import is over: on a busy machine that can be
    # inside the print, after its text and before its newline.
    assert out in (b"after the import\n", b"after the import")


def test_importing_is_told_from_the_stack(tmp_path: Path) -> None:
    from nncompress.cli import _importing

    (tmp_path / "frame_probe.py").write_text("import sys\nFRAME = sys._getframe()\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import frame_probe
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("frame_probe", None)
    assert _importing(frame_probe.FRAME)
    assert not _importing(sys._getframe())


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d.name))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_sigterm_stops_the_workers_too(cli: str, model_env: dict[str, str], tmp_path: Path) -> None:
    """With frames coded by worker processes, SIGTERM ends them with the program, and the
    partial output goes as well."""
    (tmp_path / "big").write_bytes(sample_text(3 << 20, 6))
    p = subprocess.Popen(
        [cli, "-T2", "-F", "512K", "big"], cwd=tmp_path, env=model_env, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while len(_children(p.pid)) < 2 and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.05)
    workers = _children(p.pid)
    assert len(workers) >= 2, "no worker processes appeared"
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=60) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{w}/stat").exists() for w in workers)
    assert leftovers(tmp_path) == [] and not (tmp_path / "big.nnc").exists()


# ----------------------------------------------------------------------------- special files
def test_output_to_dev_null_writes_through(work: Path) -> None:  # noqa: F811
    """``-o /dev/null`` (with or without -f) writes into the device and never replaces
    it; --rm then keeps the input."""
    if not os.path.exists("/dev/null"):
        pytest.skip("no /dev/null")
    write(work / "a", b"data" * 100)
    for args in (["-o", "/dev/null", "a"], ["-f", "--rm", "-o", "/dev/null", "a"]):
        r = run(args)
        assert r.exit_code == 0, r.stderr
        assert Path("/dev/null").is_char_device()
    assert (work / "a").exists()


def test_output_to_dev_stdout(work: Path) -> None:  # noqa: F811
    write(work / "a", b"data" * 100)
    r = run(["-o", "/dev/stdout", "a"])
    assert r.exit_code == 0, r.stderr
    assert r.stdout_bytes.startswith(fmt.MAGIC)


def test_output_to_a_fifo_writes_through(work: Path) -> None:  # noqa: F811
    write(work / "a", b"data" * 100)
    os.mkfifo(work / "pipe")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append((work / "pipe").read_bytes()))
    reader.start()
    r = run(["-f", "-o", "pipe", "a"])
    reader.join(timeout=60)
    assert r.exit_code == 0, r.stderr
    assert (work / "pipe").is_fifo() and got and got[0].startswith(fmt.MAGIC)


def test_output_through_a_symlink(work: Path) -> None:  # noqa: F811
    """A link as the output: refused without -f; with -f the file it leads to is
    replaced, and the link stays a link."""
    write(work / "a", b"data" * 100)
    write(work / "real.nnc", b"old")
    os.symlink("real.nnc", work / "link.nnc")
    r = run(["-o", "link.nnc", "a"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "already exists")
    assert run(["-f", "-o", "link.nnc", "a"]).exit_code == 0
    assert (work / "link.nnc").is_symlink()
    assert (work / "real.nnc").read_bytes().startswith(fmt.MAGIC)
    os.symlink("nowhere", work / "dangling.nnc")
    r = run(["-o", "dangling.nnc", "a"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "a link to nothing")


def test_symlinked_inputs_are_refused_unless_forced(work: Path) -> None:  # noqa: F811
    write(work / "a", b"data" * 100)
    os.symlink("a", work / "link")
    r = run(["link"])
    assert r.exit_code == 1
    one_line_error(r.stderr, "symbolic link", "-f")
    assert not (work / "link.nnc").exists()
    assert run(["-c", "link"]).exit_code == 0
    assert run(["-f", "link"]).exit_code == 0 and (work / "link.nnc").exists()


def test_recursive_skips_fifos(cli: str, model_env: dict[str, str], tmp_path: Path) -> None:
    """``-r`` over a tree with a FIFO in it ends (gzip skips non-regular files)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_bytes(b"data" * 100)
    os.mkfifo(tree / "pipe")
    r = subprocess.run([cli, "-r", "tree"], cwd=tmp_path, env=model_env, timeout=120)
    assert r.returncode == 0
    assert (tree / "a.nnc").exists() and not (tree / "pipe.nnc").exists()


# ----------------------------------------------------------------------------- messages
def test_messages_say_what_happened(work: Path) -> None:  # noqa: F811
    (work / "dir").mkdir()
    r = run(["-d", "dir"])
    one_line_error(r.stderr, "is a directory")
    write(work / "a", b"data")
    r = run(["-m", "dir", "a"])
    one_line_error(r.stderr, "is a directory")
    os.mkfifo(work / "fifo.nnm")
    r = run(["-m", "fifo.nnm", "a"])
    one_line_error(r.stderr, "not a regular file")
    assert not (work / "a.nnc").exists()


def test_model_files_are_checked_before_being_read(work: Path) -> None:  # noqa: F811
    """A huge file, or one without a model's header, is refused without reading it."""
    write(work / "a", b"data")
    with open(work / "huge.nnm", "wb") as f:
        f.truncate(1 << 40)  # sparse: reading it whole would take minutes
    t = time.perf_counter()
    r = run(["-m", "huge.nnm", "a"])
    one_line_error(r.stderr, "too large")
    write(work / "junk.nnm", b"\xff" * 100)
    one_line_error(run(["-m", "junk.nnm", "a"]).stderr, "not a nncompress model")
    assert time.perf_counter() - t < 5


def test_names_are_escaped(work: Path) -> None:  # noqa: F811
    """Control characters in a name (escape sequences, newlines) are never printed raw."""
    name = "evil\x1b]0;title\x07\nname"
    write(work / name, b"not an archive")
    r = run(["-d", "-c", name])
    line = one_line_error(r.stderr, "\\x1b]0;title\\x07\\x0aname")
    assert "\x1b" not in line and "\x07" not in line


@pytest.mark.parametrize("tail", [bytes(1000), b"garbage\n", b"\x00\x01"])
def test_trailing_data_is_ignored_with_a_warning(work: Path, tail: bytes) -> None:  # noqa: F811
    """As gzip: the stream's data is kept and what follows it is reported, not decoded;
    zero padding exits 0, garbage with the warning status 2 (it may be a damaged second
    stream), and --rm then keeps the input. The API and the engine's default refuse
    garbage."""
    data = b"payload " * 50
    blob = stored_archive(data) + tail
    write(work / "a.nnc", blob)
    zeros = not tail.strip(b"\0")
    r = run(["-d", "--rm", "a.nnc"])
    assert r.exit_code == (0 if zeros else 2)
    assert (work / "a").read_bytes() == data
    assert (work / "a.nnc").exists() != zeros
    what = "zero bytes" if zeros else "bytes of garbage"
    assert f"{len(tail):,} trailing {what}" in r.stderr
    info = decompress_stream(io.BytesIO(blob), io.BytesIO(), None, trailing_garbage=True)
    assert info.trailing == len(tail) and info.trailing_zeros == zeros
    if zeros:
        assert nncompress.decompress(blob) == data
    else:
        with pytest.raises(nncompress.FormatError, match="garbage after the last stream"):
            nncompress.decompress(blob)


def test_garbage_after_an_empty_stream_is_damage(work: Path) -> None:  # noqa: F811
    """A damaged block size can make a header read as an empty stream's, which has no
    check: what follows is then refused, never dropped with a warning."""
    blob = stored_archive(b"x" * 100)
    empty = fmt.Header(0).pack()
    write(work / "a.nnc", empty + blob[len(empty) :])
    r = run(["-d", "a.nnc"])
    assert r.exit_code == 1 and not (work / "a").exists()
    one_line_error(r.stderr, "bytes after an empty stream")


def test_a_damaged_second_stream_is_still_an_error(work: Path) -> None:  # noqa: F811
    """Bytes that begin like a stream are decoded as one, and refused if damaged."""
    write(work / "a.nnc", stored_archive(b"x" * 100) + fmt.MAGIC[:3] + b"\x07")
    r = run(["-d", "a.nnc"])
    assert r.exit_code == 1 and not (work / "a").exists()


def test_user_thread_settings_are_kept(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    write(work / "a", b"data")
    assert run(["-T2", "a"]).exit_code == 0
    assert os.environ["OMP_NUM_THREADS"] == "3"


def test_an_empty_stream_that_names_a_model_is_refused() -> None:
    """Found by the fuzzer: a header whose block size was damaged to 0 read as a valid
    empty stream, decoding a 300-byte archive to nothing. Writers name no model for empty
    input, so such a header is damage."""
    blob = fmt.MAGIC + bytes([fmt.MODEL_HASH]) + bytes.fromhex("fc14b0de680b2c04") + b"\x00"
    with pytest.raises(fmt.FormatError, match="empty stream that names a model"):
        decompress_stream(io.BytesIO(blob), io.BytesIO(), None)
    assert nncompress.decompress(fmt.Header(0).pack()) == b""


def test_the_reader_agrees_with_decompression_at_the_end(tmp_path: Path) -> None:
    """Random access (``nncompress.open``) and decompression read the same archives: zero
    padding after a stream is ignored by both, and an index that the stream did not say
    follows it is refused by both (found by the decoder fuzzer)."""
    from nncompress.reader import ArchiveReader

    data = b"random access " * 30
    blob = stored_archive(data)
    padded = tmp_path / "padded.nnc"
    padded.write_bytes(blob + bytes(16))
    with open(padded, "rb") as f:
        assert ArchiveReader(f).read() == data
    header_len = len(fmt.read_header(io.BytesIO(blob))[1])
    coded = len(blob) - header_len
    index = fmt.Index(header_len, [fmt.FrameEntry(len(data), coded)]).pack()
    lying = tmp_path / "lying.nnc"
    lying.write_bytes(blob + index)
    with pytest.raises(fmt.FormatError):
        decompress_stream(io.BytesIO(blob + index), io.BytesIO(), None)
    with open(lying, "rb") as f, pytest.raises(fmt.FormatError):
        ArchiveReader(f).read()


def test_the_reader_checks_each_frame_against_the_index(tiny_model, small_tables) -> None:
    """Found by the decoder fuzzer: bytes inserted between a stream's last frame and its
    index, with the index's last entry grown to cover them, read well through the index
    alone. Each frame must now take exactly the length the index gives it."""
    from nncompress.engine import compress_stream
    from nncompress.reader import ArchiveReader

    data = np.random.default_rng(3).bytes(3000)
    out = io.BytesIO()
    compress_stream(io.BytesIO(data), out, tiny_model, block_size=500, frame_size=1000)
    blob = out.getvalue()
    index, start = fmt.index_before(io.BytesIO(blob), len(blob))
    assert len(index.frames) == 3
    entries = index.frames[:-1] + [
        fmt.FrameEntry(index.frames[-1].raw_len, index.frames[-1].coded_len + 4)
    ]
    forged = blob[:start] + b"junk" + fmt.Index(index.header_len, entries).pack()
    assert ArchiveReader(io.BytesIO(blob), lambda h: tiny_model).read() == data
    with pytest.raises(fmt.FormatError):
        decompress_stream(io.BytesIO(forged), io.BytesIO(), lambda h: tiny_model)
    with pytest.raises(fmt.FormatError, match="does not end as its index says"):
        ArchiveReader(io.BytesIO(forged), lambda h: tiny_model).read()
