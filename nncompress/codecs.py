"""The compressors that ``nncompress compare`` puts side by side, and what it measures on them.

Every codec is judged the same way (docs/DESIGN.md, section 1): compress, decompress, compare the
result with the input byte for byte. A codec that loses data, or crashes, gets a FAILED row;
it is never counted as a result. The class hierarchy follows CompressAI's
``utils/bench/codecs.py``:

* :class:`Codec`: a ``name``, a ``description`` and :meth:`Codec.run`, which times the round trip
  (median of ``repeat`` runs) and verifies it;
* :class:`LibraryCodec`: a compressor called in this process (zlib, bzip2, xz, zstd, brotli, and
  :class:`NNCompressCodec`);
* :class:`ExternalCodec`: a program found on PATH (7-Zip, RAR, zpaq), run on temporary files so
  that the size reported is that of the archive file it writes, headers included.

Archives made earlier by WinRAR/RAR are not codecs (nothing is compressed here), so they have
their own reader, :func:`compare_rar`, which reports the sizes recorded in the archive and
verifies the members it can extract against the input files.

Nothing here imports torch, zstandard, brotli or rarfile at import time: ``nncompress --help``
must stay fast, and a missing optional package must skip one codec, not break the command.
"""

from __future__ import annotations

import bz2
import importlib
import importlib.util
import lzma
import shutil
import statistics
import subprocess
import tempfile
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

OK = "ok"
FAILED = "FAILED"
SKIPPED = "skipped"

#: ``--level`` presets, weakest to strongest. ``max`` is the default of ``compare``.
LEVELS = ("fast", "default", "max")

MB = 1_000_000  # speeds are in MB/s with MB = 10**6 bytes, as zstd, lzbench and Squash report


@dataclass(frozen=True)
class Metrics:
    """What one row of the comparison shows: one codec on one input, or a codec's total.

    Sizes and times are kept raw; ratio, bits per byte and speeds are derived so that totals
    are computed from sums, never from averaged ratios. ``None`` means "not measured" (an
    archive made elsewhere has no compression time) and is shown as a dash.
    """

    original_size: int
    compressed_size: int | None = None
    compress_seconds: float | None = None
    decompress_seconds: float | None = None
    status: str = OK
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """original / compressed: higher is better, as in every compression benchmark."""
        if not self.compressed_size:
            return None
        return self.original_size / self.compressed_size

    @property
    def bits_per_byte(self) -> float | None:
        """8 * compressed / original: the unit neural compressors are compared in."""
        if self.compressed_size is None or self.original_size == 0:
            return None
        return 8 * self.compressed_size / self.original_size

    @property
    def compress_mb_s(self) -> float | None:
        """Input bytes per second of compression, in MB/s."""
        return _speed(self.original_size, self.compress_seconds)

    @property
    def decompress_mb_s(self) -> float | None:
        """Input (= output) bytes per second of decompression, in MB/s."""
        return _speed(self.original_size, self.decompress_seconds)

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON/CSV fields (raw sizes and times, derived ratios and speeds)."""
        return {
            "original_size": self.original_size,
            "compressed_size": self.compressed_size,
            "ratio": self.ratio,
            "bits_per_byte": self.bits_per_byte,
            "compress_mb_s": self.compress_mb_s,
            "decompress_mb_s": self.decompress_mb_s,
            "compress_seconds": self.compress_seconds,
            "decompress_seconds": self.decompress_seconds,
            "status": self.status,
            "note": self.note,
        }


def _speed(size: int, seconds: float | None) -> float | None:
    if seconds is None or seconds <= 0:
        return None
    return size / MB / seconds


def aggregate(rows: Sequence[Metrics]) -> Metrics:
    """A codec's total over files: sums of sizes and times, the worst status.

    Rows without a compressed size (unverified: an input absent from a RAR archive, an
    encrypted member) are left out of the sums, and the note says how many rows the total
    covers. Times are summed only when every
    counted row has one, so a total speed is never computed over part of the bytes.
    """
    sized = [m for m in rows if m.compressed_size is not None]
    if any(m.status == FAILED for m in rows):
        status = FAILED
    elif sized and all(m.status == OK for m in sized):
        status = OK
    else:
        status = SKIPPED
    note = "" if len(sized) == len(rows) else f"{len(sized)} of {len(rows)} files"
    return Metrics(
        original_size=sum(m.original_size for m in sized),
        compressed_size=sum(m.compressed_size or 0 for m in sized) if sized else None,
        compress_seconds=_sum_or_none([m.compress_seconds for m in sized]),
        decompress_seconds=_sum_or_none([m.decompress_seconds for m in sized]),
        status=status,
        note=note,
    )


def _sum_or_none(values: Sequence[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None)


def one_line(text: object, limit: int = 200) -> str:
    """The first non-empty line of ``text``, shortened: every reason we print fits one line."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def first_difference(a: bytes, b: bytes) -> str:
    """Where two byte strings part: the note of a FAILED row, so the bug can be found."""
    if len(a) != len(b):
        return f"decoded {len(b):,} bytes, expected {len(a):,}"
    index = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
    return f"decoded data differs from the input at byte {index:,}"


class CodecError(Exception):
    """A codec could not compress or decompress (an external program failed, for instance)."""


@dataclass
class Trial:
    """One timed round trip, as measured by a codec."""

    compressed_size: int
    compress_seconds: float
    decompress_seconds: float
    restored: bytes


class Codec(ABC):
    """A compressor to compare: a name for the table, a description for ``--help``.

    Subclasses implement :meth:`trial` (one timed round trip); :meth:`run` repeats it, takes
    the medians and verifies every round trip, so no subclass can report an unverified size.
    """

    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description
        self.note = ""  # shown in the codec's rows: how it actually ran, when that differs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def check(self) -> str | None:
        """Why this codec cannot run here (a one-line reason), or None when it can.

        Called once before any file, so costly set-up (loading a model) happens once.
        """
        return None

    def version(self) -> str:
        """What ran, for the record of a comparison (a library or program version; after
        :meth:`check`). Empty when it cannot be told."""
        return ""

    @abstractmethod
    def trial(self, data: bytes) -> Trial:
        """Compress and decompress ``data`` once, timing each direction."""

    def run(self, data: bytes, repeat: int = 1) -> Metrics:
        """Round-trip ``data`` ``repeat`` times: median times, size, and the verdict.

        Any exception is reported as a FAILED row rather than raised: one crashing codec
        must not hide the results of the others, and must not pass for a result either.
        """
        compress_times: list[float] = []
        decompress_times: list[float] = []
        size = 0
        for _ in range(max(1, repeat)):
            try:
                result = self.trial(data)
            except Exception as exc:  # any failure of the codec is a FAILED row
                return Metrics(len(data), status=FAILED, note=_describe(exc))
            if result.restored != data:
                return Metrics(
                    len(data),
                    result.compressed_size,
                    status=FAILED,
                    note=first_difference(data, result.restored),
                )
            size = result.compressed_size
            compress_times.append(result.compress_seconds)
            decompress_times.append(result.decompress_seconds)
        return Metrics(
            original_size=len(data),
            compressed_size=size,
            compress_seconds=statistics.median(compress_times),
            decompress_seconds=statistics.median(decompress_times),
            note=self.note,
        )


class LibraryCodec(Codec):
    """A compressor called in this process: the fairest timing, no process start-up."""

    def __init__(
        self,
        name: str,
        description: str,
        compress: Callable[[bytes], bytes],
        decompress: Callable[[bytes], bytes],
        module: str | None = None,
    ) -> None:
        super().__init__(name, description)
        self._compress = compress
        self._decompress = decompress
        self.module = module

    def check(self) -> str | None:
        """Skip, rather than fail, when the Python package behind the codec is missing."""
        if self.module and importlib.util.find_spec(self.module) is None:
            return f"Python package {self.module!r} is not installed"
        return None

    def compress(self, data: bytes) -> bytes:
        return self._compress(data)

    def decompress(self, blob: bytes) -> bytes:
        return self._decompress(blob)

    def version(self) -> str:
        import platform

        family = self.name.split("-")[0]
        python = f"Python {platform.python_version()}"
        if family == "zlib":
            return f"zlib {zlib.ZLIB_RUNTIME_VERSION}"
        if family == "zstd":
            import zstandard

            libzstd = ".".join(map(str, zstandard.ZSTD_VERSION))
            return f"zstandard {zstandard.__version__} (libzstd {libzstd})"
        if self.module:
            mod = importlib.import_module(self.module)
            return f"{self.module} {getattr(mod, '__version__', '')}".strip()
        return f"{family} of {python}"

    def trial(self, data: bytes) -> Trial:
        start = time.perf_counter()
        blob = self.compress(data)
        middle = time.perf_counter()
        restored = self.decompress(blob)
        end = time.perf_counter()
        return Trial(len(blob), middle - start, end - middle, restored)


class NNCompressCodec(LibraryCodec):
    """nncompress itself, through ``nncompress.api``, with one model loaded once.

    The API module is imported here, not at the top, so that ``compare`` of the other codecs
    works without it (and without whatever heavy packages it may import).
    """

    def __init__(self, model: str | None = None, level: str = "default") -> None:
        name = "nncompress" if model is None else f"nncompress:{PurePath(model).stem}"
        name += "" if level == "default" else f"-{level}"
        described = "the shipped model for the level" if model is None else f"model {model}"
        options = "" if level == "default" else f" --{level}"
        super().__init__(name, f"nncompress{options} with {described}", _unused, _unused)
        self.model_name = model
        self.level = level
        self._api: Any = None
        self._model: Any = None

    def check(self) -> str | None:
        try:
            self._api = importlib.import_module("nncompress.api")
        except ModuleNotFoundError as exc:
            if exc.name in ("nncompress.api", "nncompress"):
                return "nncompress.api not available"
            return f"nncompress.api needs {exc.name!r}, which is not installed"
        try:
            self._model = self._api.load_model(self._api.model_spec(self.model_name, self.level))
        except Exception as exc:  # any load failure skips this model, with why
            return f"cannot load model {self.model_name or '(default)'}: {one_line(exc)}"
        return None

    def version(self) -> str:
        import nncompress

        m = self._model
        return f"nncompress {nncompress.__version__}, model {m.name} sha256 {m.sha256}"

    # int8 products where the command line would use them, so that compare times what
    # users run.
    def compress(self, data: bytes) -> bytes:
        return self._api.compress_bytes(
            data, model=self._model, level=self.level, int8_products=True
        )

    def decompress(self, blob: bytes) -> bytes:
        return self._api.decompress_bytes(blob, model=self._model, int8_products=True)


def _unused(data: bytes) -> bytes:
    raise NotImplementedError


class ExternalCodec(Codec):
    """A compressor program found on PATH, run on temporary files.

    The input is written as a file named ``data`` in a fresh directory; the program archives
    it and extracts it again into ``out/``. The compressed size is the size of the archive file
    the program wrote (its headers included), and the times are those of the two program
    runs, process start-up included: on small files that start-up is most of the time, so
    compare the speeds of programs on inputs of a few MB at least.
    """

    #: Names tried on PATH, in order; the first one found is used.
    programs: tuple[str, ...] = ()
    #: Archive file name extension.
    suffix: str = ".arc"

    def __init__(self, name: str, description: str) -> None:
        super().__init__(name, description)
        self._variant: int | None = None  # index of the compress_variants entry that worked

    def executable(self) -> str | None:
        """The path of the first of :attr:`programs` on PATH, or None."""
        for program in self.programs:
            found = shutil.which(program)
            if found:
                return found
        return None

    def available(self) -> bool:
        """Whether the program is installed (on PATH)."""
        return self.executable() is not None

    def check(self) -> str | None:
        if not self.available():
            return f"not found on PATH: {', '.join(self.programs)}"
        return None

    def version(self) -> str:
        """The first line of the program's banner that names a version (``--version``,
        else the banner it prints when run alone, as 7-Zip, RAR and zpaq do)."""
        exe = self.executable()
        if exe is None:
            return ""
        for args in ([exe, "--version"], [exe]):
            try:
                run = subprocess.run(args, capture_output=True, text=True, timeout=10)
            except (OSError, subprocess.SubprocessError):
                continue
            for line in (run.stdout + "\n" + run.stderr).splitlines():
                if any(c.isdigit() for c in line) and line.strip():
                    return line.strip()[:120]
        return Path(exe).name

    def compress_variants(self, exe: str, src: str, archive: str) -> list[list[str]]:
        """Command lines to try in order until one works (older versions reject newer switches).

        The default is the single :meth:`compress_args`.
        """
        return [self.compress_args(exe, src, archive)]

    def describe_variant(self, index: int, args: list[str]) -> str:
        """How a fallback command line is named in the note of the codec's rows."""
        return " ".join(args[1:])

    @abstractmethod
    def compress_args(self, exe: str, src: str, archive: str) -> list[str]:
        """The command line that archives file ``src`` into ``archive`` (both in the cwd)."""

    @abstractmethod
    def extract_args(self, exe: str, archive: str, out_dir: str) -> list[str]:
        """The command line that extracts ``archive`` into the directory ``out_dir``."""

    def trial(self, data: bytes) -> Trial:
        exe = self.executable()
        if exe is None:
            raise CodecError(self.check() or "program not found")
        with tempfile.TemporaryDirectory(prefix="nncompress-compare-") as tmp:
            work = Path(tmp)
            (work / "data").write_bytes(data)
            archive = "data" + self.suffix
            compress_seconds = self._compress(exe, work, archive)
            size = (work / archive).stat().st_size
            (work / "out").mkdir()
            start = time.perf_counter()
            _execute(self.extract_args(exe, archive, "out"), work)
            decompress_seconds = time.perf_counter() - start
            restored_path = work / "out" / "data"
            if not restored_path.is_file():
                raise CodecError(f"{Path(exe).name} did not extract the file 'data'")
            return Trial(size, compress_seconds, decompress_seconds, restored_path.read_bytes())

    def _compress(self, exe: str, work: Path, archive: str) -> float:
        """Run the first command line variant that works and return its time only.

        The variant found is remembered, so the probing costs one failed run per codec, not
        per file, and is never part of a timing.
        """
        variants = self.compress_variants(exe, "data", archive)
        order = range(len(variants)) if self._variant is None else [self._variant]
        error: CodecError | None = None
        for index in order:
            (work / archive).unlink(missing_ok=True)
            start = time.perf_counter()
            try:
                _execute(variants[index], work)
            except CodecError as exc:
                error = exc
                continue
            seconds = time.perf_counter() - start
            if self._variant is None and index > 0:
                used = self.describe_variant(index, variants[index])
                self.note = f"{Path(exe).name} refused the best switches; used {used}"
            self._variant = index
            return seconds
        raise error or CodecError("no command line to run")


def _execute(args: list[str], cwd: Path) -> None:
    """Run a program quietly; a non-zero exit becomes a one-line CodecError."""
    try:
        done = subprocess.run(
            args, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, check=False
        )
    except OSError as exc:
        raise CodecError(f"cannot run {args[0]}: {exc.strerror or exc}") from exc
    if done.returncode != 0:
        output = (done.stderr or done.stdout).decode(errors="replace")
        last = [line for line in output.splitlines() if line.strip()]
        detail = one_line(last[-1]) if last else "no output"
        raise CodecError(f"{Path(args[0]).name} exited with {done.returncode}: {detail}")


class SevenZipCodec(ExternalCodec):
    """7-Zip (``7zz`` is the upstream Linux build, ``7z`` p7zip or Windows) with one method."""

    programs = ("7zz", "7z", "7za")
    suffix = ".7z"

    def __init__(self, name: str, description: str, switches: Sequence[str]) -> None:
        super().__init__(name, description)
        self.switches = list(switches)

    def compress_args(self, exe: str, src: str, archive: str) -> list[str]:
        return [exe, "a", "-t7z", *self.switches, "-bd", "-y", archive, src]

    def extract_args(self, exe: str, archive: str, out_dir: str) -> list[str]:
        return [exe, "x", "-bd", "-y", f"-o{out_dir}", archive]


class RarCodec(ExternalCodec):
    """RarLab's RAR (``rar`` on Linux/macOS, ``Rar.exe`` or ``WinRAR`` on Windows).

    ``switch_sets`` are tried in order: RAR 5 and later accept ``-ma5 -md1g``, RAR 4 knows
    neither and takes its dictionary in KB (4 MB at most).
    """

    programs = ("rar", "Rar.exe", "WinRAR", "WinRAR.exe")
    suffix = ".rar"

    def __init__(self, name: str, description: str, switch_sets: Sequence[Sequence[str]]) -> None:
        super().__init__(name, description)
        self.switch_sets = [list(s) for s in switch_sets]

    def _quiet(self, exe: str) -> list[str]:
        # WinRAR is a GUI program: -ibck keeps its window in the background.
        return ["-ibck"] if Path(exe).stem.lower() == "winrar" else ["-idq"]

    def compress_variants(self, exe: str, src: str, archive: str) -> list[list[str]]:
        quiet = self._quiet(exe)
        return [[exe, "a", *s, "-ep", "-y", *quiet, archive, src] for s in self.switch_sets]

    def compress_args(self, exe: str, src: str, archive: str) -> list[str]:
        return self.compress_variants(exe, src, archive)[0]

    def describe_variant(self, index: int, args: list[str]) -> str:
        return " ".join(self.switch_sets[index])

    def extract_args(self, exe: str, archive: str, out_dir: str) -> list[str]:
        return [exe, "x", "-y", *self._quiet(exe), archive, out_dir + "/"]


class ZpaqCodec(ExternalCodec):
    """zpaq, the journaling context-mixing archiver (``-m5`` is its strongest method)."""

    programs = ("zpaq",)
    suffix = ".zpaq"

    def __init__(self, name: str, description: str, method: int) -> None:
        super().__init__(name, description)
        self.method = method

    def compress_args(self, exe: str, src: str, archive: str) -> list[str]:
        return [exe, "a", archive, src, f"-m{self.method}"]

    def extract_args(self, exe: str, archive: str, out_dir: str) -> list[str]:
        return [exe, "x", archive, "-to", out_dir]


# --- the presets ---------------------------------------------------------------------------


def _zlib(level: int) -> Codec:
    return LibraryCodec(
        f"zlib-{level}",
        f"zlib (deflate) level {level}",
        lambda d: zlib.compress(d, level),
        zlib.decompress,
    )


def _bzip2(level: int) -> Codec:
    return LibraryCodec(
        f"bzip2-{level}", f"bzip2 -{level}", lambda d: bz2.compress(d, level), bz2.decompress
    )


def _xz(preset: int, extreme: bool) -> Codec:
    flags = preset | (lzma.PRESET_EXTREME if extreme else 0)
    suffix = "e" if extreme else ""
    return LibraryCodec(
        f"xz-{preset}{suffix}",
        f"xz (LZMA2) preset {preset}{' | EXTREME' if extreme else ''}",
        lambda d: lzma.compress(d, format=lzma.FORMAT_XZ, preset=flags),
        lzma.decompress,
    )


def _zstd(level: int, long_window: bool = False) -> Codec:
    def compress(data: bytes) -> bytes:
        import zstandard

        if long_window:
            params = zstandard.ZstdCompressionParameters.from_level(
                level, window_log=zstandard.WINDOWLOG_MAX, enable_ldm=True
            )
            return zstandard.ZstdCompressor(compression_params=params).compress(data)
        return zstandard.ZstdCompressor(level=level).compress(data)

    def decompress(blob: bytes) -> bytes:
        import zstandard

        # Allow the largest window a frame may ask for, as `zstd --long=31 -d` must.
        limit = 1 << zstandard.WINDOWLOG_MAX
        return zstandard.ZstdDecompressor(max_window_size=limit).decompress(blob)

    description = f"zstd -{level}"
    if long_window:
        description = f"zstd --ultra -{level} --long (largest window, long-distance matching)"
    return LibraryCodec(f"zstd-{level}", description, compress, decompress, module="zstandard")


def _brotli(quality: int) -> Codec:
    def compress(data: bytes) -> bytes:
        import brotli

        # lgwin 24 is the largest standard window and the brotli program's default.
        return brotli.compress(data, quality=quality, lgwin=24)

    def decompress(blob: bytes) -> bytes:
        import brotli

        return brotli.decompress(blob)

    return LibraryCodec(
        f"brotli-{quality}", f"brotli -q {quality} -w 24", compress, decompress, module="brotli"
    )


def _seven_zip_lzma2(level: int) -> Codec:
    return SevenZipCodec(f"7z-lzma2-{level}", f"7-Zip LZMA2 -mx={level}", [f"-mx={level}"])


def _seven_zip_ppmd(level: int) -> Codec:
    return SevenZipCodec(
        f"7z-ppmd-{level}", f"7-Zip PPMd -m0=PPMd -mx={level}", ["-m0=PPMd", f"-mx={level}"]
    )


def _rar(level: int) -> Codec:
    if level < 5:
        return RarCodec(f"rar-{level}", f"RAR -m{level}", [[f"-m{level}"]])
    best = [["-m5", "-ma5", "-s", "-md1g"], ["-m5", "-s", "-md4096"], ["-m5", "-s"]]
    return RarCodec("rar-5", "RAR best: -m5 -ma5 -s -md1g (solid, 1 GB dictionary)", best)


def _zpaq(method: int) -> Codec:
    return ZpaqCodec(f"zpaq-{method}", f"zpaq -m{method}", method)


#: The settings behind each ``--level``. ``default`` is what each tool does without options.
_PRESETS: dict[str, list[Callable[[], Codec]]] = {
    "fast": [
        lambda: _zlib(1),
        lambda: _bzip2(1),
        lambda: _xz(0, False),
        lambda: _zstd(1),
        lambda: _brotli(0),
        lambda: _seven_zip_lzma2(1),
        lambda: _seven_zip_ppmd(1),
        lambda: _rar(1),
        lambda: _zpaq(1),
    ],
    "default": [
        lambda: _zlib(6),
        lambda: _bzip2(9),
        lambda: _xz(6, False),
        lambda: _zstd(3),
        lambda: _brotli(11),
        lambda: _seven_zip_lzma2(5),
        lambda: _seven_zip_ppmd(5),
        lambda: _rar(3),
        lambda: _zpaq(1),
    ],
    "max": [
        lambda: _zlib(9),
        lambda: _bzip2(9),
        lambda: _xz(9, True),
        lambda: _zstd(19),
        lambda: _zstd(22, long_window=True),
        lambda: _brotli(11),
        lambda: _seven_zip_lzma2(9),
        lambda: _seven_zip_ppmd(9),
        lambda: _rar(5),
        lambda: _zpaq(5),
    ],
}


def preset(level: str) -> list[Codec]:
    """Fresh instances of the classical codecs of a ``--level`` (nncompress is added apart).

    Fresh, because codecs remember per-run state (the RAR switches that worked).
    """
    if level not in _PRESETS:
        raise ValueError(f"unknown level {level!r}; choose from {', '.join(LEVELS)}")
    return [make() for make in _PRESETS[level]]


def all_codecs() -> dict[str, Codec]:
    """Every classical codec of every level by name, for ``--codecs`` with an exact name."""
    found: dict[str, Codec] = {}
    for level in LEVELS:
        for codec in preset(level):
            found.setdefault(codec.name, codec)
    return found


def name_matches(token: str, name: str) -> bool:
    """``--codecs`` matching: the exact name, or a family prefix (``zstd``, ``7z-ppmd``)."""
    return name == token or name.startswith(token + "-") or name.startswith(token + ":")


# --- existing RAR archives -----------------------------------------------------------------


@dataclass
class RarComparison:
    """What an existing RAR archive says about the input files.

    ``rows`` has one row per input file, in input order; ``total`` is the archive's total
    row; ``error`` (with no rows) is the one-line reason when the archive cannot be used.
    """

    archive: Path
    rows: dict[str, Metrics]
    total: Metrics | None = None
    error: str | None = None


def compare_rar(archive: Path, inputs: Mapping[str, bytes]) -> RarComparison:
    """Read ``archive`` (its first volume) and verify its members against ``inputs``.

    Members are matched to inputs by base name (several candidates: the longest common path
    suffix wins; each member is used once). Sizes come from the archive headers
    (``compress_size``), and the members are extracted by whatever tool rarfile finds
    (unrar, unar, 7-Zip, bsdtar) and compared with the input bytes.

    In a solid archive each member's packed size depends on the members before it, so the
    rows carry no size and the total compares the archive's files (all volumes) with the sum
    of all its members.

    Never raises on a bad archive: encrypted headers, other formats, later volumes and
    malformed data all give ``error``; a member that cannot be extracted gets a skipped row
    with the reason.
    """
    import rarfile

    try:
        handle = rarfile.RarFile(archive)
    except Exception as exc:  # see _open_error: hostile input raises anything
        return RarComparison(archive, {}, error=_open_error(exc))
    with handle:
        try:
            return _compare_open_rar(handle, archive, inputs)
        except Exception as exc:  # a parser bug must not become a traceback
            return RarComparison(archive, {}, error=f"cannot read the archive: {_describe(exc)}")


def _open_error(exc: BaseException) -> str:
    """The one-line reason an archive cannot be opened.

    rarfile maps most problems to its own exceptions, but its header parser, fed malformed
    or fuzzed data, can also fail with struct, index or value errors: all become one line.
    """
    import rarfile

    if isinstance(exc, rarfile.NeedFirstVolume):
        return "not the first volume of a multi-volume archive: pass the first volume"
    if isinstance(exc, rarfile.NotRarFile):
        return "not a RAR archive (unknown format)"
    if isinstance(exc, rarfile.PasswordRequired | rarfile.RarWrongPassword):
        return "encrypted archive: a password is required, and passwords are not supported"
    if isinstance(exc, rarfile.NoCrypto):
        return "encrypted archive headers: the 'cryptography' package would be needed"
    if isinstance(exc, OSError) and not isinstance(exc, rarfile.Error):
        return f"cannot open the archive: {exc.strerror or exc}"
    return f"malformed RAR archive: {_describe(exc)}"


def _describe(exc: BaseException) -> str:
    text = one_line(exc)
    return text if text else type(exc).__name__


def _compare_open_rar(handle: Any, archive: Path, inputs: Mapping[str, bytes]) -> RarComparison:
    members = [info for info in handle.infolist() if not info.is_dir()]
    if not members:
        if handle.needs_password():
            error = "encrypted archive: file names are encrypted and passwords are not supported"
        else:
            error = "no file entries found (an empty archive, or headers rarfile cannot parse)"
        return RarComparison(archive, {}, error=error)
    matches = _match_members(list(inputs), members)
    if not matches:
        return RarComparison(archive, {}, error="no member matches an input file by base name")
    solid = bool(handle.is_solid())
    rows: dict[str, Metrics] = {}
    for key in inputs:
        data = inputs[key]
        info = matches.get(key)
        if info is None:
            rows[key] = Metrics(len(data), status=SKIPPED, note="not in the archive")
            continue
        status, note = _verify_member(handle, info, data)
        # Unverified rows carry no size, so no total can count them.
        size = None if solid or status == SKIPPED else int(info.compress_size)
        if solid and not note:
            note = "solid archive: its size is in the total"
        rows[key] = Metrics(len(data), size, status=status, note=note)
    volumes = [Path(v) for v in handle.volumelist()]
    archive_bytes = sum(v.stat().st_size for v in volumes if v.is_file())
    if solid:
        total = _solid_total(rows, matches, members, archive_bytes, len(volumes))
    else:
        total = aggregate([rows[key] for key in matches])
        files = "file holds" if len(volumes) == 1 else f"{len(volumes)} volume files hold"
        extra = f"member data only; the archive {files} {archive_bytes:,} bytes"
        total = replace(total, note="; ".join(n for n in (total.note, extra) if n))
    return RarComparison(archive, rows, total)


def _solid_total(
    rows: dict[str, Metrics],
    matches: dict[str, Any],
    members: list[Any],
    archive_bytes: int,
    volumes: int,
) -> Metrics:
    """A solid archive's only meaningful size: all of it, against all of its members."""
    matched = [rows[key] for key in matches]
    if any(m.status == FAILED for m in matched):
        status = FAILED
    elif len(matched) == len(members) and all(m.status == OK for m in matched):
        status = OK
    else:
        status = SKIPPED
    where = "the archive file" if volumes == 1 else f"all {volumes} volume files"
    note = (
        f"solid archive: {where} against all {len(members)} members "
        f"({sum(m.status == OK for m in matched)} verified); per-member sizes are not meaningful"
    )
    return Metrics(sum(int(m.file_size) for m in members), archive_bytes, status=status, note=note)


def _match_members(keys: Iterable[str], members: list[Any]) -> dict[str, Any]:
    """Pair input files with archive members by base name, each member used once."""
    by_name: dict[str, list[Any]] = {}
    for info in members:
        by_name.setdefault(PurePosixPath(info.filename).name, []).append(info)
    used: set[int] = set()
    matches: dict[str, Any] = {}
    for key in keys:
        key_parts = PurePath(key).parts
        candidates = [i for i in by_name.get(PurePath(key).name, []) if id(i) not in used]
        if not candidates:
            continue
        best = max(candidates, key=lambda i: _common_suffix(key_parts, i.filename))
        used.add(id(best))
        matches[key] = best
    return matches


def _common_suffix(parts: tuple[str, ...], filename: str) -> int:
    other = PurePosixPath(filename).parts
    count = 0
    while count < min(len(parts), len(other)) and parts[-1 - count] == other[-1 - count]:
        count += 1
    return count


def _verify_member(handle: Any, info: Any, data: bytes) -> tuple[str, str]:
    """Extract one member and compare it with the input: (status, note).

    FAILED only for a real difference: the member was extracted and is not the input. A
    member that cannot be extracted here (encrypted, a symbolic link, a format the installed
    tool does not decode) is skipped with the reason: unverified, hence never counted.
    """
    if info.needs_password():
        packed = f"{int(info.compress_size):,} bytes packed"
        return SKIPPED, f"encrypted member ({packed}): passwords are not supported"
    if info.is_symlink():
        return SKIPPED, "symbolic link: no file data to compare"
    try:
        restored = handle.read(info)
    except Exception as exc:  # any extraction failure is reported, not raised
        return SKIPPED, f"{_rar_tool()} could not extract it: {_describe(exc)}"
    if restored != data:
        return FAILED, first_difference(data, restored)
    redirect = getattr(info, "file_redir", None)
    if redirect:
        # RAR 5 hard links and file copies (-oh, -oi) store the data once, under the target.
        return OK, f"link to {redirect[2]}: its data is stored there"
    return OK, ""


def _rar_tool() -> str:
    """The extraction program rarfile uses, named in messages so users know what to install."""
    import rarfile

    try:
        return Path(rarfile.tool_setup().get_cmdline("check_cmd", None)[0]).name
    except rarfile.Error:
        return "rarfile (no unrar, unar, 7-Zip or bsdtar found)"
