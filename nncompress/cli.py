"""The ``nncompress`` command line, with the conventions of gzip, xz and zstd.

``nncompress FILE`` compresses to ``FILE.nnc``; ``-d`` decompresses; no FILE (or ``-``) means
stdin to stdout, so ``tar -I nncompress`` works. Subcommands: ``compress``, ``decompress``,
``train``, ``models``, ``compare``.

Exit codes: 0 success; 1 one or more inputs failed (each failure is one line on stderr, and
the remaining inputs are still processed); 2 usage error, or a warning (trailing garbage
after an archive, ignored, as gzip); 130 interrupted; 128 + N another signal N.

Heavy modules (numpy, torch) are imported inside the commands, never at import time, so
``--help`` and ``--version`` answer instantly.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import BinaryIO

import click

from . import __version__

SUFFIX = ".nnc"
#: gzip's level numbers on nncompress's three levels.
_NUMERIC_LEVELS = {n: "fast" if n <= 3 else "max" if n == 9 else "default" for n in range(1, 10)}
EXIT_ERROR, EXIT_WARNING, EXIT_INTERRUPTED = 1, 2, 130
#: Exit status after SIGPIPE, as a shell reports a program that the signal ended (gzip and
#: zstd end that way, without a message, when the reader of their output goes away).
EXIT_PIPE = 128 + 13


class UserError(Exception):
    """A failure the user caused or can fix: reported as one line, never a traceback."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like KeyboardInterrupt, so that every partial
    output is removed on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: How long a signal that arrived during an import waits before it is delivered again.
_REDELIVER_S = 0.02


def _importing(frame: FrameType | None) -> bool:
    """Whether ``frame`` runs inside an import (a frame of importlib on its stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _on_signal(signum: int, frame: FrameType | None) -> None:
    """Unwind on SIGINT, SIGTERM or SIGHUP -- but never from inside an import. torch and
    numba are imported when first needed, in the middle of coding, and an exception raised
    in a native module's initialisation is swallowed by it (the signal lost) or aborts
    the process (status -6, the temporary output left behind). A signal arriving then is
    sent again a moment later, until it finds the program outside the import."""
    if _importing(frame):
        resend = threading.Timer(_REDELIVER_S, os.kill, (os.getpid(), signum))
        resend.daemon = True
        resend.start()
        return
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def _catch_signals() -> None:
    """SIGTERM and SIGHUP (``timeout``, ``kill``, a closed terminal) end the program as
    Ctrl-C does: partial outputs removed, worker processes stopped, status 128 + signal.
    A disposition the caller chose (``nohup``, a shell's ignored SIGINT) is kept."""
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _on_signal)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_signal)


def shown(text: str) -> str:
    """``text`` safe for a terminal: control characters (escape sequences, newlines, NUL)
    and undecodable bytes of file names are printed as escapes, never raw."""
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        else:
            out.append(ch)
    return "".join(out)


def _warn(msg: str) -> None:
    click.echo(f"nncompress: {shown(msg)}", err=True)


def parse_size(text: str) -> int:
    """``1048576``, ``512K``, ``1M``, ``4MiB``, ``1g`` -> bytes."""
    from .workers import parse_size as parse

    try:
        return parse(text)
    except ValueError:
        raise click.BadParameter(f"not a positive size: {text!r}") from None


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``20m``, ``1.5h`` -> seconds."""
    t = text.strip().lower()
    mult = {"s": 1, "m": 60, "h": 3600}.get(t[-1:], None)
    try:
        return float(t[:-1]) * mult if mult else float(t)
    except ValueError:
        raise click.BadParameter(f"not a duration: {text!r}") from None


class DefaultGroup(click.Group):
    """A group that acts like gzip when no subcommand is named: ``nncompress [-d] [FILE...]``
    runs ``compress`` (whose ``-d`` switches it to decompression)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (
            args[0] not in self.commands and args[0] not in ("--help", "-h", "--version", "-V")
        ):
            args = ["compress", *args]
        if args[0] in ("compress", "decompress"):
            args = [args[0], *_fast_levels([*_env_options(), *args[1:]])]
        return super().parse_args(ctx, args)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The group's help, then the options of the default command (the gzip-style ones
        most calls use), so that ``nncompress --help`` shows them."""
        super().format_help(ctx, formatter)
        cmd = self.commands["compress"]
        sub = click.Context(cmd, info_name="compress", parent=ctx)
        rows = [r for p in cmd.get_params(sub) if (r := p.get_help_record(sub)) is not None]
        with formatter.section("Options of compress and decompress (nncompress [OPTIONS] FILES)"):
            formatter.write_dl(rows)


def _fast_levels(args: list[str]) -> list[str]:
    """zstd's ``--fast=N`` as ``--fast``: nncompress has one fast level, so any N of 1 or
    more means it. Rewritten before click parses, because an option with an optional value
    would take the file in ``--fast FILE`` for its value. Arguments after ``--`` are files."""
    out = []
    for i, a in enumerate(args):
        if a == "--":
            return out + args[i:]
        if a.startswith("--fast="):
            n = a[len("--fast=") :]
            if not (n.isascii() and n.isdigit() and int(n) >= 1):
                raise click.UsageError(f"--fast=N takes a whole number N of 1 or more, not {n!r}")
            a = "--fast"
        out.append(a)
    return out


#: Options read before the command line's, as xz reads XZ_OPT (e.g. "-T1 --memory 2G").
OPTIONS_VARIABLE = "NNCOMPRESS_OPTIONS"


def _env_options() -> list[str]:
    import shlex

    text = os.environ.get(OPTIONS_VARIABLE, "")
    try:
        opts = shlex.split(text)
    except ValueError as e:
        raise click.UsageError(f"{OPTIONS_VARIABLE}: {e}") from None
    if any(not o.startswith("-") or o in ("-", "--") for o in opts[:1]):
        raise click.UsageError(f"{OPTIONS_VARIABLE} holds options only, not files: {text!r}")
    return opts


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="nncompress")
def main() -> None:
    """Lossless compression with a pretrained neural network and a range coder.

    With no subcommand it behaves like gzip: `nncompress FILE` makes FILE.nnc,
    `nncompress -d FILE.nnc` restores FILE, and with no FILE it filters stdin to stdout
    (`tar -I nncompress -cf x.tar.nnc dir`). Exit codes: 0 ok, 1 an input failed,
    2 usage error or a warning, 130 interrupted, 128+N signal N.

    Environment: NNCOMPRESS_OPTIONS (options read before the command line's, e.g.
    "-T1 --memory 2G"), NNCOMPRESS_MEMORY (the memory limit), NNCOMPRESS_MODELS (model
    folders).
    """


# ----------------------------------------------------------------------------- compress
@dataclass
class Job:
    """Everything one compress/decompress invocation was asked to do."""

    mode: str  # compress | decompress | test | list
    output: str | None
    stdout: bool
    force: bool
    remove: bool
    quiet: int
    verbose: int
    model: str | None
    device: str
    block_size: int | None
    level: str
    threads: int = 0
    frame_size: int | None = None
    memory: int | None = None
    suffix: str = SUFFIX
    progress: bool = True
    #: (raw, archive) sizes of the archives -l has listed, for its totals line.
    listed: list[tuple[int, int]] = field(default_factory=list)


def _coding_options(f):
    opts = [
        click.option("-d", "--decompress", "mode", flag_value="decompress", help="Decompress."),
        click.option("-z", "--compress", "mode", flag_value="compress", help="Compress."),
        click.option("-t", "--test", "mode", flag_value="test", help="Test archive integrity."),
        click.option("-l", "--list", "mode", flag_value="list", help="List archive contents."),
        click.option(
            "-o",
            "--output",
            type=click.Path(dir_okay=False),
            help="Write to this file (one input only); '-' is stdout.",
        ),
        click.option("-c", "--stdout", "to_stdout", is_flag=True, help="Write to stdout."),
        click.option(
            "-f",
            "--force",
            is_flag=True,
            help="Overwrite existing outputs; allow compressed data to a terminal.",
        ),
        click.option("-k", "--keep", is_flag=True, help="Keep input files (the default)."),
        click.option("--rm", "remove", is_flag=True, help="Remove input files after success."),
        click.option("-r", "--recursive", is_flag=True, help="Process directories recursively."),
        click.option("-q", "--quiet", count=True, help="Suppress warnings and progress."),
        click.option("-v", "--verbose", count=True, help="Report sizes, ratio and speed."),
        click.option("-m", "--model", help="Model name or .nnm path (default: the shipped one)."),
        click.option(
            "--device",
            default="auto",
            show_default=True,
            help="auto, cpu, cuda[:N] or torch (torch on CPU).",
        ),
        click.option(
            "-B",
            "--block-size",
            help="Block size: memory use and the unit of damage isolation. Default: 1M "
            "(2M with --wide).",
        ),
        click.option(
            "-F",
            "--frame-size",
            help="Frame size: the statistics start afresh at each frame, the unit of "
            "random access and parallel coding (rounded down to whole blocks). Default: "
            "16M, and an input of 8M to 32M in two frames of half its length each.",
        ),
        click.option(
            "--fast",
            "level",
            flag_value="fast",
            help="The network alone: no adaptive statistics, no LZMA trial (faster). "
            "zstd's --fast=N is accepted: nncompress has one fast level, which any N names.",
        ),
        *[
            click.option(
                f"-{n}",
                "level",
                flag_value=_NUMERIC_LEVELS[n],
                hidden=n not in (1, 9),
                help={
                    1: "-1 .. -3: the fast level; -4 .. -8 the default; -9 the max level "
                    "(gzip's numbers).",
                    9: "The max level (as --best).",
                }.get(n),
            )
            for n in range(1, 10)
        ],
        click.option("--best", "level", flag_value="max", help="The max level (as -9)."),
        click.option(
            "-S",
            "--suffix",
            default=SUFFIX,
            show_default=True,
            help="Suffix of compressed files.",
        ),
        click.option(
            "--no-progress",
            is_flag=True,
            help="No progress bar (it shows only when stderr is a terminal anyway).",
        ),
        click.option(
            "--max",
            "level",
            flag_value="max",
            help="Strongest and slowest: each block of up to 1 MiB in one segment, with "
            "the larger model 'large' unless -m names one (3.9-8.7% smaller on Calgary's "
            "text and code of 40-400 KB; about a seventh of the default's compression "
            "speed and a thirteenth of its decompression speed).",
        ),
        click.option(
            "--wide",
            "level",
            flag_value="wide",
            help="The default's method in blocks of 2 MiB cut into 256 segments, twice "
            "the default's segments a step, for a GPU; the same archive on any device, "
            "within about 1% of the default's size (docs/DESIGN.md, section 10).",
        ),
        click.option(
            "-T",
            "--threads",
            type=click.IntRange(0),
            default=0,
            show_default=True,
            help="CPU threads (0: all cores). Inputs of several frames are coded, and "
            "decoded, by this many worker processes, as memory allows (--memory); -T1 "
            "keeps nncompress on one core, for busy machines and parallel batch jobs.",
        ),
        click.option(
            "--memory",
            "memory_limit",
            help="Memory the worker processes may use (e.g. 4G; default: "
            "$NNCOMPRESS_MEMORY, else half of the machine's memory).",
        ),
        click.argument("files", nargs=-1, type=click.Path()),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _run_coding(
    default_mode: str,
    files: tuple[str, ...],
    mode: str | None,
    output: str | None,
    to_stdout: bool,
    force: bool,
    keep: bool,
    remove: bool,
    recursive: bool,
    quiet: int,
    verbose: int,
    model: str | None,
    device: str,
    block_size: str,
    frame_size: str | None,
    level: str | None,
    threads: int,
    memory_limit: str | None,
    suffix: str,
    no_progress: bool,
) -> None:
    if keep and remove:
        raise click.UsageError("--keep and --rm contradict each other")
    # Must happen before numpy is first imported (nothing above imports it). A value the
    # user set is kept (mixed blocks hold BLAS to one thread whatever it says).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads or os.cpu_count() or 1))
    _catch_signals()
    job = Job(
        mode or default_mode,
        output,
        to_stdout,
        force,
        remove,
        quiet,
        verbose,
        model,
        device,
        parse_size(block_size) if block_size is not None else None,
        level or "default",
        threads,
        parse_size(frame_size) if frame_size is not None else None,
        parse_size(memory_limit) if memory_limit else None,
        suffix,
        not no_progress,
    )
    if not suffix or os.sep in suffix or suffix in (".", ".."):
        raise click.BadParameter(f"not a file name suffix: {suffix!r}", param_hint="'-S'")
    if job.block_size is not None and job.block_size > 1 << 28:
        raise click.BadParameter("at most 256M", param_hint="'-B' / '--block-size'")
    if memory_limit is None and os.environ.get("NNCOMPRESS_MEMORY", "").strip():
        try:
            parse_size(os.environ["NNCOMPRESS_MEMORY"])
        except click.BadParameter:
            raise click.UsageError("NNCOMPRESS_MEMORY is not a size (e.g. 4G)") from None
    inputs = list(files) or ["-"]
    if output and len(inputs) > 1:
        raise click.UsageError("-o/--output takes a single input")
    failures = warnings = 0
    try:
        for path in _expand(inputs, recursive, job):
            try:
                _process(path, job)
            except UserError as e:
                _warn(f"{path}: {e}" if path != "-" else str(e))
                failures += 1
            except _Warned:
                warnings += 1
    except KeyboardInterrupt:
        _warn("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Terminated as t:
        if not job.quiet:
            _warn(f"terminated by {signal.Signals(t.signum).name}")
        sys.exit(128 + t.signum)
    except _PipeClosed:
        _silence_stdout()
        sys.exit(EXIT_PIPE)
    if len(job.listed) > 1:
        _list_totals(job)
    if failures:
        sys.exit(EXIT_ERROR)
    if warnings:
        sys.exit(EXIT_WARNING)


@main.command("compress")
@_coding_options
def compress_cmd(**kw) -> None:
    """Compress FILES to FILE.nnc (stdin to stdout when none or '-')."""
    _run_coding("compress", **kw)


@main.command("decompress")
@_coding_options
def decompress_cmd(**kw) -> None:
    """Decompress FILE.nnc to FILE (stdin to stdout when none or '-')."""
    _run_coding("decompress", **kw)


def _expand(inputs: list[str], recursive: bool, job: Job) -> list[str]:
    out: list[str] = []
    for p in inputs:
        if p != "-" and os.path.isdir(p):
            if not recursive:
                out.append(p)  # reported as a failure: "is a directory"
                continue
            for root, _dirs, names in sorted(os.walk(p)):
                for name in sorted(names):
                    full = os.path.join(root, name)
                    if not stat.S_ISREG(os.lstat(full).st_mode):
                        # FIFOs would block, devices never end, links lead elsewhere: as
                        # gzip does, a tree's files are its regular files.
                        if job.verbose:
                            _warn(f"{full}: not a regular file -- ignored")
                        continue
                    compressed = name.endswith(job.suffix)
                    if job.mode == "compress" and compressed:
                        continue
                    if job.mode != "compress" and not compressed:
                        continue
                    out.append(full)
        else:
            out.append(p)
    return out


# ----------------------------------------------------------------------------- one input
class _Warned(Exception):
    """The input was processed, but with a warning that a script should see (trailing
    garbage): exit status 2 at the end, as gzip gives."""


class _PipeClosed(Exception):
    """The reader of stdout went away (EPIPE): stop quietly, as gzip and zstd do."""


def _target(path: str, job: Job) -> str | None:
    """Output path for ``path``; None means stdout (or no output for -t/-l)."""
    if job.mode in ("test", "list"):
        return None
    if job.output:
        return None if job.output in ("-", "/dev/stdout") else job.output
    if job.stdout or path == "-":
        return None
    suffix = job.suffix
    if job.mode == "compress":
        if path.endswith(suffix):
            raise UserError(f"already has {suffix} suffix -- unchanged")
        return path + suffix
    if not path.endswith(suffix) or os.path.basename(path) == suffix:
        raise UserError(f"unknown suffix -- ignored (expected {suffix}; use -o or -c)")
    return path[: -len(suffix)]


def _check_input(path: str, job: Job) -> None:
    """Refuse what is not an input before anything else is said about it."""
    if path == "-":
        return
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise UserError("no such file or directory") from None
    except OSError as e:
        raise UserError(e.strerror or str(e)) from None
    if stat.S_ISLNK(st.st_mode):
        # As gzip and zstd: a link is followed only when asked (-f) or when nothing is
        # made beside it or removed (-c, -o, -t, -l).
        if job.force or job.output or job.stdout or job.mode in ("test", "list"):
            return
        raise UserError("is a symbolic link -- ignored (use -f to follow it)")
    if stat.S_ISDIR(st.st_mode):
        raise UserError("is a directory (use -r to process its files)")


@contextmanager
def _open_input(path: str):
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise UserError("no such file or directory") from None
    except IsADirectoryError:
        raise UserError("is a directory (use -r to process its files)") from None
    except PermissionError:
        raise UserError("permission denied") from None
    with f:
        yield f


@contextmanager
def _open_output(target: str | None, job: Job, source: str):
    """The output, written so that nothing is lost or left half-made.

    A new file is written under a temporary name beside the target (created exclusively)
    and linked into place only on success; the link fails if a file appeared under the
    target's name meanwhile (another nncompress, say), so that file is never replaced
    without -f. An existing special file (``/dev/null``, a FIFO, a terminal, a socket) is
    written through, as zstd does, never replaced; a symbolic link to a file is kept, and
    with -f the file it leads to is replaced. With --rm the output and its folder are
    flushed to disk before the input is removed."""
    if target is None:
        out = sys.stdout.buffer
        if job.mode == "compress" and out.isatty() and not job.force:
            raise UserError("stdout is a terminal; refusing to write compressed data (use -f)")
        yield out
        out.flush()
        return
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
        if os.path.lexists(target) and not job.force:
            raise UserError(
                f"{target} already exists (a link to nothing); not overwritten (use -f)"
            ) from None
    except OSError as e:
        raise UserError(f"cannot write {target}: {e.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UserError(f"{target} is a directory")
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISBLK(st.st_mode) and not job.force:
            raise UserError(f"{target} is a block device; not written (use -f)")
        with _write_through(target, job) as f:
            yield f
        return
    if st is not None and not job.force:
        raise UserError(f"{target} already exists; not overwritten (use -f)")
    if st is not None and source != "-" and os.path.samefile(source, target):
        raise UserError("input and output are the same file")
    final = os.path.realpath(target) if st is not None else target
    fd, tmp = _temporary(final, keep_mode=source == "-")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if job.remove:
                f.flush()
                os.fsync(f.fileno())
        if source != "-":
            import shutil

            shutil.copystat(source, tmp)
        _put_in_place(tmp, final, replace=st is not None or job.force)
        if job.remove:
            _sync_folder(final)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _temporary(target: str, keep_mode: bool) -> tuple[int, str]:
    """A new, empty file beside ``target``, created exclusively (O_EXCL) under a random
    name, open for writing. ``keep_mode``: give it the permissions a new file gets (the
    umask's); otherwise they come from the input, once written."""
    import tempfile

    directory = os.path.dirname(target) or "."
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=directory
        )
    except OSError as e:
        raise UserError(f"cannot create {target}: {e.strerror}") from None
    if keep_mode:
        umask = os.umask(0o022)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
    return fd, tmp


def _put_in_place(tmp: str, target: str, replace: bool) -> None:
    """Give ``tmp`` the name ``target``: with ``replace`` whatever is there, else only if
    nothing is (a hard link cannot replace; on file systems without hard links, a check
    and a rename)."""
    if replace:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise UserError(f"{target} appeared meanwhile; not overwritten (use -f)") from None
    except OSError:
        if os.path.lexists(target):
            raise UserError(f"{target} appeared meanwhile; not overwritten (use -f)") from None
        os.rename(tmp, target)
        return
    os.unlink(tmp)


def _sync_folder(path: str) -> None:
    """Flush a folder's entries (a new name in it) to disk, where the system allows."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def _write_through(target: str, job: Job):
    """Write into an existing special file (no temporary, no rename: it stays what it
    is). Compressed data is not sent to a terminal without -f."""
    try:
        f = open(target, "wb")  # noqa: SIM115
    except OSError as e:
        raise UserError(f"cannot write {target}: {e.strerror}") from None
    with f:
        if job.mode == "compress" and f.isatty() and not job.force:
            raise UserError(f"{target} is a terminal; refusing to write compressed data (use -f)")
        yield f


def _process(path: str, job: Job) -> None:
    from .errors import NNCError

    _check_input(path, job)
    target = _target(path, job)
    size = os.path.getsize(path) if path != "-" and os.path.isfile(path) else None
    start = time.perf_counter()
    try:
        with _open_input(path) as src:
            if job.mode == "list":
                _list(path, src, job)
                return
            sink = None if job.mode == "test" else target
            with _open_output(sink, job, path) if job.mode != "test" else _null() as dst:
                with _progress(job, size, path) as tick:
                    if job.mode == "compress":
                        info = _compress(src, dst, job, tick)
                    else:
                        info = _decompress(src, dst, job, tick)
    except NNCError as e:
        raise UserError(str(e)) from None
    except BrokenPipeError:
        if target is None and job.mode != "test":
            raise _PipeClosed from None
        raise UserError("broken pipe") from None
    except MemoryError:
        raise UserError(
            "out of memory (try a smaller -B, fewer threads with -T, or more memory)"
        ) from None
    except OSError as e:
        raise UserError(e.strerror or str(e)) from None
    garbage = bool(getattr(info, "trailing", 0)) and not info.trailing_zeros
    if job.remove and path != "-" and job.mode in ("compress", "decompress") and target:
        if garbage:  # (it may be a damaged archive: the input is kept)
            _warn(f"{path}: kept (--rm), since it ends in garbage")
        elif os.path.isfile(target):
            os.unlink(path)
        elif not job.quiet:
            _warn(f"{path}: kept (--rm), since {target} is not a regular file")
    _report(path, target, job, info, time.perf_counter() - start)
    if getattr(info, "trailing", 0):
        what = "zero bytes" if info.trailing_zeros else "bytes of garbage"
        if not job.quiet:
            _warn(
                f"{path}: decompression OK, {info.trailing:,} trailing {what} after the "
                "last stream ignored"
            )
        if garbage:
            raise _Warned


@contextmanager
def _null():
    yield None


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


@contextmanager
def _progress(job: Job, total: int | None, label: str):
    """A rich progress bar on stderr, only when stderr is a terminal and not quiet."""
    if job.quiet or not job.progress or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task(os.path.basename(label) if label != "-" else "stdin", total=total)
        yield lambda n: bar.advance(task, n)


def _compress(src: BinaryIO, dst: BinaryIO, job: Job, tick):
    from .engine import compress_stream
    from .zoo import load_model, model_spec

    model = load_model(model_spec(job.model, job.level), job.device)
    return compress_stream(
        src,
        dst,
        model,
        job.block_size,
        job.level,
        tick,
        account=job.verbose > 0,
        threads=job.threads,
        int8_products=True,
        frame_size=job.frame_size,
        memory=job.memory,
    )


def _decompress(src: BinaryIO, dst: BinaryIO | None, job: Job, tick):
    from .engine import decompress_stream
    from .zoo import model_for_archive

    return decompress_stream(
        src,
        dst,
        lambda h: model_for_archive(h.model, h.model_prefix, job.model, job.device),
        tick,
        account=job.verbose > 0,
        threads=job.threads,
        int8_products=True,
        memory=job.memory,
        trailing_garbage=True,
    )


def _report(path: str, target: str | None, job: Job, info, seconds: float) -> None:
    if job.quiet:
        return
    if not job.verbose:
        return
    if job.mode == "test":
        _warn(f"{path}: OK ({info.raw_len:,} bytes)")
    else:
        raw, packed = info.raw_len, info.archive_len
        bpb = 8 * packed / raw if raw else 0.0
        speed = raw / seconds / 1e3 if seconds > 0 else 0.0
        sizes = f"{raw:,} -> {packed:,}" if job.mode == "compress" else f"{packed:,} -> {raw:,}"
        _warn(
            f"{path}: {sizes} bytes ({100 * packed / max(raw, 1):.2f}%, {bpb:.3f} bpb) "
            f"{speed:,.1f} KB/s -> {target or 'stdout'}"
        )
    if info.workers is not None:
        w = info.workers
        _warn(
            f"  {w.count} worker processes over {len(info.frames)} frames, up to "
            f"{w.peak / 2**20:,.0f} MiB each (planned {w.memory_each / 2**20:,.0f} MiB each "
            f"within a budget of {w.budget / 2**20:,.0f} MiB)"
        )
    for line in _spending_lines(info):
        _warn(line)


def _spending_lines(info) -> list[str]:
    """How the bits were spent: bytes per block method, and for mixed blocks the bits per
    byte each model alone would have spent beside what the mix spent."""
    from .format import METHOD_MIXED, method_name

    by_method: dict[str, list[int]] = {}
    for b in info.blocks:
        name = method_name(b.method, b.segments)
        if b.method == METHOD_MIXED:
            name += f" ({b.kind})"  # what the encoder took the block for
        raw_coded = by_method.setdefault(name, [0, 0, 0])
        raw_coded[0] += 1
        raw_coded[1] += b.raw_len
        raw_coded[2] += b.coded_len
    lines = [
        f"  {name}: {n} block{'s' if n > 1 else ''}, {raw:,} -> {coded:,} bytes "
        f"({8 * coded / raw:.3f} bpb)"
        for name, (n, raw, coded) in sorted(by_method.items())
    ]
    if any(b.method == METHOD_MIXED for b in info.blocks):
        lines.append(f"  mixed method: preset {_preset_name(info.config)}")
    sp = info.spending
    if sp is not None and sp.bytes:
        bpb = sp.bpb()
        # Blocks coded without the network count 8 bits a byte against it (its flat
        # frequencies): say so, or leave it out where no block ran it.
        mixed = [b for b in info.blocks if b.method == METHOD_MIXED]
        flat = sum(b.flat for b in mixed)
        skip = ("mixer", "final") + (("network",) if flat == len(mixed) else ())
        alone = "  ".join(f"{k} {v:.3f}" for k, v in bpb.items() if k not in skip)
        if flat and flat < len(mixed):
            alone += f"  (the network 8.000 on the {flat} block{'s' * (flat > 1)} without it)"
        lines.append(f"  mixed blocks, bpb of each model alone: {alone}")
        share, on, off = sp.match()
        lines.append(
            f"  mixed blocks, combined: mixer {bpb['mixer']:.3f}, final {bpb['final']:.3f} bpb; "
            f"match model predicted {100 * share:.1f}% of bytes "
            f"(final {on:.3f} bpb on them, {off:.3f} elsewhere)"
        )
    return lines


def _preset_name(config) -> str:
    """A configuration as ``-v`` names it: its preset number and what it is for."""
    from .config import PRESET_NAMES, WRITTEN_NAMES, preset_of

    number = preset_of(config)
    if number is None:
        return f"written out ({WRITTEN_NAMES.get(config, f'{len(config.contexts)} contexts')})"
    return f"{number} ({PRESET_NAMES[number]})"


def _ratio(raw: int, packed: int) -> str:
    ratio = f"{raw / packed:.3f}" if packed else "-"
    bpb = f"{8 * packed / raw:.3f}" if raw else "-"
    return f"{ratio:>7} {bpb:>6}"


def _list_totals(job: Job) -> None:
    raw = sum(r for r, _ in job.listed)
    packed = sum(p for _, p in job.listed)
    n = len(job.listed)
    click.echo(
        f"{packed:>12,} {raw:>12,} {_ratio(raw, packed)} {'':>6} {'':>7} (total of {n} files)"
    )


def _list(path: str, src: BinaryIO, job: Job) -> None:
    from .engine import list_stream
    from .format import (
        COPY_NAME,
        METHOD_LZMA,
        METHOD_MIXED,
        MODEL_METHODS,
        REPEAT_NAME,
        method_name,
    )

    info = list_stream(src)
    raw, packed = info.raw_len, info.archive_len
    counts: dict[str, int] = {}
    for b in info.blocks:
        name = method_name(b.method, b.segments)
        counts[name] = counts.get(name, 0) + 1
    methods = ",".join(f"{k}:{v}" for k, v in sorted(counts.items())) or "-"
    if not job.listed or job.verbose:  # (the header once, as gzip -l; -v repeats it)
        click.echo(
            f"{'compressed':>12} {'original':>12} {'ratio':>7} {'bpb':>6} {'frames':>6} "
            f"{'blocks':>7} {'methods':<20} {'model':<28} name"
        )
    job.listed.append((raw, packed))
    click.echo(
        f"{packed:>12,} {raw:>12,} {_ratio(raw, packed)} {len(info.frames):>6} "
        f"{len(info.blocks):>7} {methods:<20} {info.model_name:<28} {shown(path)}"
    )
    if job.verbose:
        for i, f in enumerate(info.frames):
            click.echo(
                f"  frame {i}: at {f.offset:,}, {f.raw_len:,} -> {f.coded_len:,} bytes "
                f"(output bytes {f.raw_offset:,}..{f.raw_offset + f.raw_len:,})"
            )
        for i, b in enumerate(info.blocks):
            what, name = "", method_name(b.method, b.segments)
            if b.method in MODEL_METHODS:
                what = f", {b.segments} segments"
                if b.method == METHOD_MIXED:
                    what += f", {b.kind}"
            elif b.method == METHOD_LZMA:
                what = f", filter variant {b.segments}"
            elif name == REPEAT_NAME:
                what = f", a period of {b.coded_len:,} bytes"
            elif name == COPY_NAME:
                what = f", from {b.distance:,} bytes back"
            click.echo(
                f"  block {i} (frame {b.frame}): {name:<6} {b.raw_len:>10,} -> "
                f"{b.coded_len:>10,} ({8 * b.coded_len / b.raw_len:.3f} bpb){what}"
            )


# ----------------------------------------------------------------------------- train, models
@main.command("train")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Model file to write (NAME.nnm).",
)
@click.option(
    "--preset",
    type=click.Choice(["tiny", "small", "medium", "base", "large"]),
    default="small",
    show_default=True,
    help="Network size.",
)
@click.option(
    "--time",
    "time_budget",
    default="10m",
    show_default=True,
    help="Training time budget (e.g. 90s, 20m, 2h).",
)
@click.option(
    "--steps",
    type=click.IntRange(0),
    default=0,
    help="Stop after this many steps instead of the time budget.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 0.5),
    default=0.02,
    show_default=True,
    help="Tail fraction of each input held out for validation.",
)
@click.option(
    "--segment",
    type=click.IntRange(64),
    default=4096,
    show_default=True,
    help="Bytes a training stream runs from an empty state (match the coder).",
)
@click.option(
    "--window",
    type=click.IntRange(8),
    default=128,
    show_default=True,
    help="Bytes per backpropagation window (the state carries across windows).",
)
@click.option("--batch", type=click.IntRange(1), default=128, show_default=True)
@click.option("--lr", type=float, default=3e-3, show_default=True)
@click.option(
    "--resume",
    type=click.Path(exists=True, dir_okay=False),
    help="Continue from a checkpoint (OUTPUT.ckpt from an earlier run).",
)
@click.option(
    "--prime",
    "prime_size",
    default="256K",
    show_default=True,
    help="Training data the model keeps as its prime, which the adaptive statistics "
    "learn before coding (as a dictionary primes zstd); 0 for none. Each file learns it "
    "anew (a process of the API, once), so a larger prime makes small files smaller and "
    "each command slower.",
)
@click.option(
    "--base",
    help="Train no network: keep this model's (a name or .nnm path) and add the prime. "
    "Seconds, and no torch needed: the counterpart of zstd --train.",
)
@click.option("--name", help="Model name recorded in archives (default: OUTPUT's stem).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("-f", "--force", is_flag=True, help="Overwrite OUTPUT.")
@click.option("-q", "--quiet", is_flag=True)
def train_cmd(
    inputs,
    output,
    preset,
    time_budget,
    steps,
    seed,
    val_fraction,
    segment,
    window,
    batch,
    lr,
    resume,
    prime_size,
    base,
    name,
    device,
    force,
    quiet,
) -> None:
    """Train a model on your own data (files, directories, or '-' for stdin).

    The result is a data file (safetensors, no code) for `compress --model OUTPUT`.
    """
    out = Path(output)
    if out.exists() and not force and not resume:
        _warn(f"{out} already exists; not overwritten (use -f)")
        sys.exit(EXIT_ERROR)
    prime = 0 if prime_size.strip() == "0" else parse_size(prime_size)
    if base is not None:
        _prime_only(inputs, base, prime, out, name or out.stem, quiet)
        return
    try:
        from .train import TrainConfig, collect_files, train
    except ImportError as e:
        _warn(f"training needs torch ({e}); install it with: pip install torch")
        sys.exit(EXIT_ERROR)
    try:
        files = [] if inputs == ("-",) else collect_files(inputs)
    except FileNotFoundError as e:
        _warn(str(e))
        sys.exit(EXIT_ERROR)
    if inputs == ("-",):
        import tempfile

        tmp = Path(tempfile.mkstemp(prefix="nncompress-train-")[1])
        tmp.write_bytes(sys.stdin.buffer.read())
        files = [tmp]
    cfg = TrainConfig(
        preset=preset,
        seconds=parse_duration(time_budget),
        max_steps=steps,
        batch=batch,
        window=window,
        segment=segment,
        lr=lr,
        seed=seed,
        val_fraction=val_fraction,
        device=device,
        name=name or out.stem,
        prime=prime,
    )
    log = (lambda s: None) if quiet else _warn
    try:
        with _train_progress(quiet) as progress:
            summary = train(files, out, cfg, Path(resume) if resume else None, log, progress)
    except (ValueError, OSError) as e:
        _warn(str(e))
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        _warn("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    finally:
        if inputs == ("-",):
            files[0].unlink(missing_ok=True)  # the temporary copy of stdin
    if not quiet:
        click.echo(
            f"{out}: sha256 {summary['sha256']}  validation {summary['val_int_bpb']:.4f} "
            f"bpb (integer model)"
        )


def _prime_only(inputs, base: str, prime: int, out: Path, name: str, quiet: bool) -> None:
    """``train --base``: a model with ``base``'s network and a prime from ``inputs``."""
    from .errors import NNCError
    from .train import collect_files, prime_model
    from .zoo import find_path

    if not prime:
        raise click.UsageError("--base needs a prime (--prime SIZE above 0)")
    try:
        files = collect_files(inputs)
        sha = prime_model(find_path(base), files, prime, out, name)
    except (NNCError, OSError, ValueError) as e:
        _warn(str(e))
        sys.exit(EXIT_ERROR)
    if not quiet:
        click.echo(f"{out}: sha256 {sha}  (the network of {base}, primed with {prime:,} bytes)")


@contextmanager
def _train_progress(quiet: bool):
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "training",
        BarColumn(),
        "{task.percentage:>3.0f}%",
        "{task.fields[info]}",
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    with bar:
        task = bar.add_task("train", total=1.0, info="")

        def update(frac: float, stats: dict[str, float]) -> None:
            info = f"step {stats['step']:.0f} train {stats['train_bpb']:.3f} bpb"
            if "val_bpb" in stats:
                info += f" val {stats['val_bpb']:.3f}"
            bar.update(task, completed=min(frac, 1.0), info=info)

        yield update


@main.command("models")
def models_cmd() -> None:
    """List the models nncompress can find, with their hashes."""
    from .model import IntModel, ModelError
    from .zoo import available_models, model_dirs

    found = available_models()
    seen: set[str] = set()
    for path in found:
        try:
            m = IntModel.load(path)
        except ModelError as e:
            click.echo(shown(f"{path}: unusable ({e})"))
            continue
        if m.sha256 in seen:  # the same file in two folders: the first is the one used
            continue
        seen.add(m.sha256)
        click.echo(
            f"{shown(m.name):<16} {m.sha256}  {m.layers}x{m.hidden} GRU {m.parameters:,} "
            f"weights  {shown(str(path))}"
        )
    if not found:
        click.echo("no models found in: " + ", ".join(map(str, model_dirs())))


def _register_compare() -> None:
    try:
        from .compare import compare_command
    except ImportError:
        return
    main.add_command(compare_command)


_register_compare()
