#!/usr/bin/env python3
"""Texts of this machine, none from a corpus, written to a folder for the measuring scripts
(``presets.py``, ``table_size.py``): tuning on data of one's own choosing rather than on
one benchmark file. Each text is the files of one source in sorted order, joined and cut
to a length, so the same machine gives the same bytes again; a source this machine lacks
is skipped, and said so.

    python scripts/own_texts.py OUTDIR [--bytes 2000000] [--prefixes 524288,1048576]
                                       [--only rust-book,numpy]

``--prefixes``: also each text's first N bytes, as NAME.N, to find where a rule that
depends on a stream's length should cross over.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import pydoc
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

SITE = Path(sysconfig.get_paths()["purelib"])
STDLIB = Path(sysconfig.get_paths()["stdlib"])
RUST_DOCS = sorted(Path.home().glob(".rustup/toolchains/stable-*/share/doc/rust/html"))


def _files(root: Path, pattern: str) -> Iterator[bytes]:
    for p in sorted(root.rglob(pattern)) if root.is_dir() else []:
        if p.is_file():
            yield p.read_bytes()


def _rust(part: str) -> Callable[[], Iterator[bytes]]:
    return lambda: (b for d in RUST_DOCS for b in _files(d / part, "*.html"))


def _man() -> Iterator[bytes]:
    for p in sorted(Path("/usr/share/man/man1").glob("*.gz")):
        try:
            yield gzip.decompress(p.read_bytes())
        except (OSError, EOFError):
            continue


def _pydoc() -> Iterator[bytes]:
    """pydoc's plain text of the standard library's top-level modules."""
    for p in sorted(STDLIB.glob("*.py")):
        name = p.stem
        if name.startswith("_") or name in {"antigravity", "this", "idlelib"}:
            continue
        try:
            # (what a module prints as it is imported is not its text)
            with contextlib.redirect_stdout(io.StringIO()):
                text = pydoc.render_doc(name, renderer=pydoc.plaintext)
        except Exception:  # a module that will not import here says nothing of the text
            continue
        yield text.encode()


def _records() -> Iterator[bytes]:
    for p in sorted(SITE.glob("*.dist-info/RECORD")):
        yield p.read_bytes()


#: name -> (what it is, its files in order)
SOURCES: dict[str, tuple[str, Callable[[], Iterator[bytes]]]] = {
    "rust-book": ("the Rust book, HTML", _rust("book")),
    "rust-reference": ("the Rust reference, HTML", _rust("reference")),
    "cargo": ("Cargo's guide, HTML", _rust("cargo")),
    "inductor": ("PyTorch's inductor, Python", lambda: _files(SITE / "torch/_inductor", "*.py")),
    "numpy": ("numpy, Python", lambda: _files(SITE / "numpy", "*.py")),
    "man": ("man pages, roff", _man),
    "pydoc": ("pydoc's text of standard library modules", _pydoc),
    "headers": ("C headers", lambda: _files(Path("/usr/include"), "*.h")),
    "records": ("pip's RECORD files", _records),
}


def joined(files: Iterator[bytes], limit: int) -> bytes:
    """``files`` joined in order, cut to ``limit`` bytes (reading no more of them)."""
    parts, total = [], 0
    for data in files:
        if total >= limit:
            break
        parts.append(data)
        total += len(data)
    return b"".join(parts)[:limit]


def text(name: str, limit: int) -> bytes:
    """Source ``name``'s files joined, cut to ``limit`` bytes."""
    return joined(SOURCES[name][1](), limit)


def stdlib_sources(limit: int) -> bytes:
    """The standard library's ``.py`` files in sorted path order, cut to ``limit`` bytes:
    the input of ``frame_cost.py``, ``scaling.py``, ``memory.py`` and ``wide_cost.py``."""
    return joined(_files(STDLIB, "*.py"), limit)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--bytes", type=int, default=2_000_000, help="each text's length")
    parser.add_argument("--prefixes", default="", help="comma-separated prefix lengths")
    parser.add_argument("--only", default=",".join(SOURCES), help="comma-separated sources")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    prefixes = [int(p) for p in args.prefixes.split(",") if p]
    for name in args.only.split(","):
        data = text(name, args.bytes)
        if not data:
            print(f"{name}: not on this machine, skipped", file=sys.stderr)
            continue
        (args.out / name).write_bytes(data)
        for n in prefixes:
            if n < len(data):
                (args.out / f"{name}.{n}").write_bytes(data[:n])
        print(f"{name}: {len(data):,} bytes, {SOURCES[name][0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
