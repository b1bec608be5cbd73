"""``nncompress compare``: the same files through nncompress and the classical compressors.

Every file goes through every codec in the same run (so speeds are measured under the same
load), every round trip is verified, and existing WinRAR/RAR archives of the same files can
be put beside them with ``--rar``. A FAILED row (data lost, or a codec crashed) makes the
command exit with 1; codecs that cannot run here are listed as skipped, with the reason.

Output: a rich table on stdout, or ``--json`` / ``--csv`` / ``--markdown`` for CI and READMEs,
and ``--plot FILE.png`` for the ratio-against-speed picture. The codecs live in
:mod:`nncompress.codecs`.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click

from . import codecs as codecs_mod
from .codecs import FAILED, LEVELS, OK, SKIPPED, Codec, Metrics, NNCompressCodec, one_line

#: ``progress(message, done, total)``: what is running, and the bytes of input (times
#: codecs) done and to do.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Row:
    """One line of the report: a codec on a file, or (``file`` None) a codec's total."""

    codec: str
    metrics: Metrics
    file: str | None = None

    def as_dict(self) -> dict[str, Any]:
        head: dict[str, Any] = {"codec": self.codec}
        if self.file is not None:
            head = {"file": self.file, **head}
        return {**head, **self.metrics.as_dict()}


@dataclass
class Report:
    """Everything ``compare`` found, before it is rendered in one of the output formats."""

    files: list[Row]
    totals: list[Row]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (codec, reason)
    level: str = "default"
    repeat: int = 1
    #: When and where it ran, and what: the date, the machine, each codec's version (the
    #: library or program, and for nncompress the model's name and hash).
    meta: dict[str, Any] = field(default_factory=dict)
    #: Set when Ctrl-C stopped the run: the rows are those of the files finished before.
    interrupted: bool = False

    @property
    def failed(self) -> int:
        """The number of FAILED file rows: non-zero means the command exits with 1."""
        return sum(row.metrics.status == FAILED for row in self.files)

    def as_json(self) -> dict[str, Any]:
        """The shape CI parses: files, totals, skipped, failed (plus level and repeat)."""
        return {
            "files": [row.as_dict() for row in self.files],
            "totals": [row.as_dict() for row in self.totals],
            "skipped": [{"codec": codec, "reason": reason} for codec, reason in self.skipped],
            "failed": self.failed,
            "level": self.level,
            "repeat": self.repeat,
            "interrupted": self.interrupted,
            "meta": self.meta,
        }


# --- gathering inputs and codecs -----------------------------------------------------------


def collect_inputs(paths: Sequence[Path]) -> list[tuple[str, Path]]:
    """(display name, path) of every file named or found under a named directory.

    Directories are walked recursively (without following symbolic links to directories, so
    no loops) and their files sorted by path; a file reached twice is compared once. A
    missing path is a one-line error.
    """
    found: list[tuple[str, Path]] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            found.append((str(path), path))

    for path in paths:
        if path.is_dir():
            below = [Path(root, name) for root, _dirs, files in os.walk(path) for name in files]
            for file in sorted(below):
                if file.is_file():
                    add(file)
        elif path.is_file():
            add(path)
        elif path.exists():
            raise click.ClickException(f"{path}: not a regular file or directory")
        else:
            raise click.ClickException(f"{path}: no such file or directory")
    if not found:
        raise click.ClickException("no input files (the directories given are empty)")
    return found


def select_codecs(spec: str | None, level: str, models: Sequence[str]) -> list[Codec]:
    """The codecs ``--codecs`` asks for at ``--level``, nncompress first.

    A name is an exact codec name (``zstd-19``; found at any level) or a family prefix
    (``zstd``, ``7z``, ``7z-ppmd``, ``nncompress``), which picks the codecs of the family at
    the chosen level. No ``--codecs``: all of them.
    """
    levels = ("default", "max") if level == "max" else ("default",)
    candidates: list[Codec] = [NNCompressCodec(m, lv) for m in (models or [None]) for lv in levels]
    candidates += codecs_mod.preset(level)
    if spec is None:
        return candidates
    everywhere = codecs_mod.all_codecs()
    chosen: dict[str, Codec] = {}
    for token in (t.strip() for t in spec.split(",")):
        if not token:
            continue
        found = [c for c in candidates if codecs_mod.name_matches(token, c.name)]
        if not found and token in everywhere:
            found = [everywhere[token]]
        if not found:
            known = ", ".join(dict.fromkeys([c.name for c in candidates] + list(everywhere)))
            raise click.BadParameter(f"unknown codec {token!r} (known: {known})")
        for codec in found:
            chosen.setdefault(codec.name, codec)
    return list(chosen.values())


class _FileContents(Mapping[str, bytes]):
    """Input files by display name, read only when asked.

    compare_rar reads just the files it matches, and nothing is held in memory for long.
    """

    def __init__(self, inputs: Sequence[tuple[str, Path]]) -> None:
        self._paths = dict(inputs)

    def __getitem__(self, key: str) -> bytes:
        return _read(self._paths[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror or exc}") from exc


# --- running -------------------------------------------------------------------------------


def machine() -> str:
    """The CPU, its cores and the system, for the record of a comparison."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def run_comparison(
    inputs: Sequence[tuple[str, Path]],
    codecs: Sequence[Codec],
    archives: Sequence[Path] = (),
    repeat: int = 1,
    level: str = "default",
    progress: Progress | None = None,
) -> Report:
    """Run every input through every usable codec, then read the RAR archives.

    Files are read one at a time, and each is run through all codecs back to back, so that
    all codecs are timed under the same conditions. Ctrl-C stops the run: the report then
    holds the files finished before it (``interrupted``), so that nothing measured is lost.
    """
    say = progress or (lambda _message, _done, _total: None)
    skipped: list[tuple[str, str]] = []
    usable: list[Codec] = []
    for codec in codecs:
        say(f"preparing {codec.name}", 0, 0)
        reason = codec.check()
        if reason:
            skipped.append((codec.name, reason))
        else:
            usable.append(codec)
    meta: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "versions": {codec.name: _version(codec) for codec in usable},
    }

    by_file: dict[str, list[Row]] = {key: [] for key, _ in inputs}
    by_codec: dict[str, list[Metrics]] = {codec.name: [] for codec in usable}
    total = sum(path.stat().st_size for _, path in inputs) * len(usable)
    done, finished, interrupted = 0, 0, False
    try:
        for key, path in inputs:
            data = _read(path)
            rows: list[tuple[Codec, Metrics]] = []
            for codec in usable:
                say(f"{codec.name}: {key}", done, total)
                rows.append((codec, codec.run(data, repeat)))
                done += len(data)
            for codec, metrics in rows:  # (a file counts once all its codecs are done)
                by_file[key].append(Row(codec.name, metrics, key))
                by_codec[codec.name].append(metrics)
            finished += 1
    except KeyboardInterrupt:
        interrupted = True
    totals = [_codec_total(codec, by_codec[codec.name]) for codec in usable]

    contents = _FileContents(inputs)
    for label, archive in _archive_labels(archives) if not interrupted else ():
        say(f"reading {archive}", done, total)
        result = codecs_mod.compare_rar(archive, contents)
        if result.error or result.total is None:
            skipped.append((label, result.error or "nothing to compare"))
            continue
        for key, metrics in result.rows.items():
            by_file[key].append(Row(label, metrics, key))
        totals.append(Row(label, result.total))

    files = [row for key, _ in inputs for row in by_file[key]]
    if interrupted:
        meta["interrupted_after"] = f"{finished} of {len(inputs)} files"
    return Report(files, totals, skipped, level, repeat, meta, interrupted)


def _version(codec: Codec) -> str:
    try:
        return codec.version()
    except Exception as exc:  # a version is a record, never a reason to fail the run
        return f"unknown ({one_line(exc)})"


def _codec_total(codec: Codec, rows: Sequence[Metrics]) -> Row:
    total = codecs_mod.aggregate(rows)
    notes = [n for n in (total.note, codec.note) if n]
    return Row(codec.name, replace(total, note="; ".join(notes)))


def _archive_labels(archives: Sequence[Path]) -> list[tuple[str, Path]]:
    """``rar:NAME`` for each archive, numbered when two archives share a name."""
    labels: list[tuple[str, Path]] = []
    used: set[str] = set()
    for archive in archives:
        label, n = f"rar:{archive.name}", 2
        while label in used:
            label, n = f"rar:{archive.name}#{n}", n + 1
        used.add(label)
        labels.append((label, archive))
    return labels


# --- rendering -----------------------------------------------------------------------------

#: (key, header, best) for the numeric columns; best picks the winner (None: no winner).
COLUMNS: list[tuple[str, str, Callable[[Sequence[float]], float] | None]] = [
    ("original_size", "Original", None),
    ("compressed_size", "Compressed", min),
    ("ratio", "Ratio", max),
    ("bits_per_byte", "bpb", min),
    ("compress_mb_s", "Comp. MB/s", max),
    ("decompress_mb_s", "Decomp. MB/s", max),
]

CAPTION = (
    "ratio = original / compressed; bpb = 8 × compressed / original; MB = 10^6 bytes; "
    "best verified values in bold"
)


def _value(metrics: Metrics, key: str) -> float | int | None:
    return getattr(metrics, key)


def _format(key: str, value: float | int | None) -> str:
    if value is None:
        return "—"
    if key.endswith("_size"):
        return f"{int(value):,}"
    if key in ("ratio", "bits_per_byte"):
        return f"{value:.3f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def _winners(group: Sequence[Row]) -> dict[str, float | int]:
    """The best value of each column among a group's verified rows (two rows at least)."""
    verified = [row.metrics for row in group if row.metrics.status == OK]
    best: dict[str, float | int] = {}
    if len(verified) < 2:
        return best
    for key, _header, pick in COLUMNS:
        values = [v for m in verified if (v := _value(m, key)) is not None]
        if pick and values:
            best[key] = pick(values)
    return best


def _groups(report: Report) -> list[tuple[str, list[Row]]]:
    """File groups in input order, then the totals (shown when they add something)."""
    groups: dict[str, list[Row]] = {}
    for row in report.files:
        groups.setdefault(row.file or "", []).append(row)
    out = list(groups.items())
    if len(groups) > 1 or any(row.metrics.note for row in report.totals):
        out.append(("total", report.totals))
    return out


def _common_directory(report: Report) -> str:
    """The directory all inputs share, which the table leaves out of the file names.

    Only the human formats shorten names; JSON and CSV keep the paths as given.
    """
    names = list(dict.fromkeys(row.file for row in report.files if row.file))
    if len(names) < 2:
        return ""
    try:
        common = os.path.commonpath([os.path.dirname(name) or "." for name in names])
    except ValueError:  # absolute and relative paths mixed
        return ""
    return "" if common in ("", ".") else common


def _shorten(name: str, common: str) -> str:
    return os.path.relpath(name, common) if common and name != "total" else name


def _notes_present(report: Report) -> bool:
    rows = report.files + report.totals
    return bool(report.skipped) or any(row.metrics.note for row in rows)


def render_table(report: Report, console: Any) -> None:
    """The rich table: one section per file, then totals and skipped codecs.

    Notes (why a row is skipped or FAILED, what a total covers) are numbered footnotes under
    the table rather than a column: a notes column would squeeze the numbers out of an
    ordinary terminal, and rows often share a note.
    """
    from rich.table import Table
    from rich.text import Text

    title = f"nncompress compare (level {report.level}, median of {report.repeat})"
    if report.interrupted:
        title += f", interrupted after {report.meta.get('interrupted_after', '?')}"
    common = _common_directory(report)
    if common:
        title += f"\nfiles in {common}"
    table = Table(title=title, caption=CAPTION, header_style="bold")
    groups = _groups(report)
    # Names fold when the terminal is narrow, but not into slivers.
    longest = max((len(_shorten(name, common)) for name, _rows in groups), default=4)
    longest_codec = max((len(row.codec) for _name, rows in groups for row in rows), default=5)
    table.add_column("File", overflow="fold", min_width=min(16, longest))
    table.add_column("Codec", overflow="fold", min_width=min(10, longest_codec))
    for _key, header, _pick in COLUMNS:
        # "Comp. MB/s" on two header lines: the numbers are narrower than the words.
        table.add_column(header.replace(" MB/s", "\nMB/s"), justify="right", no_wrap=True)
    table.add_column("Verified", no_wrap=True)

    footnotes: dict[str, int] = {}
    status_style = {OK: "green", FAILED: "bold red", SKIPPED: "yellow"}

    def verdict(status: str, note: str) -> Text:
        text = Text(status, style=status_style.get(status, ""))
        if note:
            text.append(f" [{footnotes.setdefault(note, len(footnotes) + 1)}]")
        return text

    for name, rows in groups:
        best = _winners(rows)
        for index, row in enumerate(rows):
            cells: list[Any] = [_shorten(name, common) if index == 0 else "", row.codec]
            for key, _header, _pick in COLUMNS:
                value = _value(row.metrics, key)
                winner = row.metrics.status == OK and key in best and value == best[key]
                cells.append(Text(_format(key, value), style="bold green" if winner else ""))
            cells.append(verdict(row.metrics.status, row.metrics.note))
            table.add_row(*cells, end_section=index == len(rows) - 1)
    for codec, reason in report.skipped:
        table.add_row("", codec, *["—"] * len(COLUMNS), verdict(SKIPPED, reason), style="dim")
    console.print(table)
    for note, number in footnotes.items():
        console.print(Text(f"[{number}] {note}"))
    record = _record(report)
    if record:
        console.print(Text(record.rstrip("\n")))


def to_markdown(report: Report) -> str:
    """A GitHub table (best values in bold), ready to paste into a README."""
    with_notes = _notes_present(report)
    headers = ["File", "Codec", *[h for _k, h, _p in COLUMNS], "Verified"]
    headers += ["Note"] if with_notes else []
    align = ["---", "---", *["---:"] * len(COLUMNS), "---"] + (["---"] if with_notes else [])
    lines = [_md_line(headers), _md_line(align)]
    common = _common_directory(report)
    for name, rows in _groups(report):
        best = _winners(rows)
        for index, row in enumerate(rows):
            label = "**total**" if name == "total" else f"`{_shorten(name, common)}`"
            label = label if index == 0 else ""
            cells = [label, row.codec]
            for key, _header, _pick in COLUMNS:
                value = _value(row.metrics, key)
                text = _format(key, value)
                won = row.metrics.status == OK and key in best and value == best[key]
                cells.append(f"**{text}**" if won else text)
            cells.append(row.metrics.status)
            cells += [row.metrics.note] if with_notes else []
            lines.append(_md_line(cells))
    for codec, reason in report.skipped:
        lines.append(_md_line(["", codec, *["—"] * len(COLUMNS), SKIPPED, reason]))
    return "\n".join(lines) + "\n" + _record(report, "\n")


def _record(report: Report, lead: str = "") -> str:
    """Where and when it ran, and the versions: a footer for the table and Markdown."""
    meta = report.meta
    if not meta:
        return ""
    versions = "; ".join(f"{k}: {v}" for k, v in meta.get("versions", {}).items() if v)
    text = f"{lead}Machine: {meta.get('machine', '?')}, {meta.get('date', '?')}.\n"
    if versions:
        text += f"Versions: {versions}.\n"
    return text


def _md_line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


CSV_FIELDS = ["kind", "file", "codec", *Metrics(0).as_dict(), "version", "machine", "date"]


def to_csv(report: Report) -> str:
    """One CSV table: ``kind`` is file, total or skipped (the reason is in ``note``); each
    row also names the codec's version, the machine and the date (``Report.meta``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    versions = report.meta.get("versions", {})
    where = {"machine": report.meta.get("machine", ""), "date": report.meta.get("date", "")}
    for kind, rows in (("file", report.files), ("total", report.totals)):
        for row in rows:
            version = versions.get(row.codec, "")
            writer.writerow(
                {"kind": kind, "file": row.file or "", **row.as_dict(), "version": version, **where}
            )
    for codec, reason in report.skipped:
        writer.writerow(
            {"kind": "skipped", "codec": codec, "status": SKIPPED, "note": reason, **where}
        )
    return out.getvalue()


def to_json(report: Report) -> str:
    """Strict JSON (no NaN or Infinity: unmeasured values are null)."""
    return json.dumps(report.as_json(), indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def write_plot(report: Report, path: Path) -> None:
    """Ratio against speed per codec, the usual compression-benchmark picture.

    Two panels (compression and decompression speed, log scale) share the ratio axis; each
    codec's total is a labelled point, nncompress a red star. Existing archives have no
    speed: they are dotted horizontal lines at their ratio. FAILED codecs are left out.
    """
    from matplotlib.figure import Figure  # optional extra: nncompress[plot]
    from matplotlib.ticker import FuncFormatter, NullFormatter

    shown = [r for r in report.totals if r.metrics.status != FAILED and r.metrics.ratio]
    fig = Figure(figsize=(12, 5.5), layout="constrained", dpi=120)
    axes = fig.subplots(1, 2, sharey=True)
    panels = (("compress_mb_s", "compression"), ("decompress_mb_s", "decompression"))
    for ax, (key, label) in zip(axes, panels, strict=True):
        points = [(r.codec, _value(r.metrics, key), r.metrics.ratio) for r in shown]
        timed = [(name, float(x), float(y)) for name, x, y in points if x and y]
        for name, x, y in timed:
            ours = name.startswith("nncompress")
            style = {"marker": "*", "s": 180, "color": "tab:red"} if ours else {"s": 40}
            ax.scatter([x], [y], zorder=3, **style)
        ax.set_xscale("log")
        ax.set_xlim(*_decades([x for _name, x, _y in timed]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ratios = [float(y) for _name, _x, y in points if y]
        if ratios:
            ax.set_ylim(min(ratios) * 0.95, max(ratios) * 1.05)
        for name, speed, y in points:
            if y and not speed:  # an existing archive: a ratio, no speed
                ax.axhline(y, linestyle=":", color="0.45", linewidth=1)
                ax.annotate(
                    name,
                    (0.01, y),
                    xycoords=("axes fraction", "data"),
                    xytext=(0, 3),
                    textcoords="offset points",
                    fontsize=8,
                    color="0.3",
                )
        _label_points(ax, timed)
        ax.set_xlabel(f"{label} speed, MB/s (log scale)")
        ax.set_title(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("compression ratio (original / compressed)")
    files = len({row.file for row in report.files})
    size = max((row.metrics.original_size for row in report.totals), default=0)
    fig.suptitle(f"nncompress compare: {files} file(s), {size / 1e6:.2f} MB, level {report.level}")
    fig.savefig(path)


def _decades(values: Sequence[float]) -> tuple[float, float]:
    """x limits on whole decades (one at least), so a log axis always has labelled ticks."""
    if not values:
        return 0.1, 1000.0
    low = 10 ** math.floor(math.log10(min(values)))
    high = 10 ** math.ceil(math.log10(max(values)))
    return low, high if high > low else high * 10


def _label_points(ax: Any, points: Sequence[tuple[str, float, float]]) -> None:
    """Label each point, nudging a label up while it would overlap one already placed.

    Codecs often tie (zstd -19 and -22 on small files); unnudged labels print over each other.
    """
    scale = 72 / ax.figure.dpi  # display pixels -> points
    placed: list[tuple[float, float, float]] = []  # (x, y, width) of labels, in points
    for name, x, y in sorted(points, key=lambda p: (p[2], p[1])):
        px, py = (v * scale for v in ax.transData.transform((x, y)))
        width, dy = 6.0 * len(name), 4.0
        while any(
            abs(py + dy - oy) < 10 and px < ox + ow and ox < px + width for ox, oy, ow in placed
        ):
            dy += 10
        placed.append((px, py + dy, width))
        # A nudged label gets a thin leader line back to its point.
        leader = {"arrowstyle": "-", "color": "0.6", "linewidth": 0.6} if dy > 4 else None
        ax.annotate(
            name,
            (x, y),
            xytext=(5, dy),
            textcoords="offset points",
            fontsize=9,
            arrowprops=leader,
        )


# --- the command ---------------------------------------------------------------------------


def _codec_list() -> str:
    r"""The codec names of each level, for the help epilog (``\b`` keeps click from rewrapping)."""
    lines = ["\b", "Codecs by --level (nncompress is in every level):"]
    for level in LEVELS:
        lines.append(f"  {level}: " + ", ".join(c.name for c in codecs_mod.preset(level)))
    return "\n".join(lines)


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    """A progress bar on stderr (terminals only): the codec and file at work, the share of
    the work done (input bytes times codecs) and the time left at the pace so far."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(
        "{task.description}",
        BarColumn(),
        "{task.percentage:>3.0f}%",
        TimeElapsedColumn(),
        "left",
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task("comparing", total=None)

        def update(message: str, done: int, total: int) -> None:
            bar.update(
                task, description=f"comparing: {message}", completed=done, total=total or None
            )

        yield update


@click.command("compare", epilog=_codec_list())
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="FILE_OR_DIR..."
)
@click.option(
    "--codecs",
    "codec_spec",
    metavar="NAMES",
    help="Comma-separated codec names or families, e.g. nncompress,xz,zstd-19 (default: all).",
)
@click.option(
    "--level",
    type=click.Choice(LEVELS),
    default="default",
    show_default=True,
    help="Settings of the codecs: fast = each tool's fastest regular level; "
    "default = what each tool does without options, and nncompress's default level; "
    "max = the strongest settings, nncompress --max beside its default (slow: some "
    "minutes per MB).",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    metavar="NAME_OR_PATH",
    help="nncompress model to compare; repeat for several (default: the shipped model).",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run each codec N times per file and report the median times.",
)
@click.option(
    "--rar",
    "rar_archives",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="ARCHIVE.rar",
    help="Existing RAR archive of the inputs to put beside the codecs (repeatable; "
    "for a multi-volume archive give the first volume).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the table.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV instead of the table.")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print a Markdown table.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.png",
    help="Also draw ratio against speed per codec (needs matplotlib: nncompress[plot]).",
)
@click.pass_context
def compare_command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    codec_spec: str | None,
    level: str,
    models: tuple[str, ...],
    repeat: int,
    rar_archives: tuple[Path, ...],
    as_json: bool,
    as_csv: bool,
    as_markdown: bool,
    plot_path: Path | None,
) -> None:
    """Compare nncompress with zlib, bzip2, xz, zstd, brotli, 7-Zip, RAR and zpaq.

    Each file (directories are searched recursively) goes through each codec; every round
    trip is decoded and compared with the input. Exit status: 0 when every row verified,
    1 when a row FAILED (or an input is missing), 2 for usage errors. Programs that are not
    installed, and archives that cannot be read, are listed as skipped with the reason.
    """
    if as_json + as_csv + as_markdown > 1:
        raise click.UsageError("choose one of --json, --csv and --markdown")
    if plot_path is not None and importlib.util.find_spec("matplotlib") is None:
        raise click.ClickException("--plot needs matplotlib: pip install 'nncompress[plot]'")
    codecs = select_codecs(codec_spec, level, models)
    if not codecs and not rar_archives:
        raise click.UsageError("nothing to compare: --codecs selected no codec and no --rar")
    inputs = collect_inputs(paths)
    for archive in rar_archives:
        if not archive.is_file():
            raise click.ClickException(f"{archive}: no such RAR archive")

    with _progress(sys.stderr.isatty()) as progress:
        report = run_comparison(inputs, codecs, rar_archives, repeat, level, progress)
    if report.interrupted:
        click.echo(
            f"nncompress compare: interrupted after {report.meta['interrupted_after']}; "
            "the rows so far:",
            err=True,
        )

    if as_json:
        click.echo(to_json(report), nl=False)
    elif as_csv:
        click.echo(to_csv(report), nl=False)
    elif as_markdown:
        click.echo(to_markdown(report), nl=False)
    else:
        from rich.console import Console

        # Piped output gets a wide fixed width instead of rich's 80 columns.
        wide = sys.stdout.isatty() or "COLUMNS" in os.environ
        render_table(report, Console(width=None if wide else 180))
    if plot_path is not None:
        try:
            write_plot(report, plot_path)
        except OSError as exc:
            raise click.ClickException(f"{plot_path}: {exc.strerror or exc}") from exc
    if report.interrupted:
        ctx.exit(130)
    if report.failed:
        ctx.exit(1)
