#!/usr/bin/env python3
"""Fuzz target for the ``.nnc`` decoder: whatever bytes it is given, ``decompress_stream``,
``list_stream`` and ``ArchiveReader`` may only succeed or raise ``FormatError``/``ModelError``,
within bounded time and memory, and never succeed with bytes other than the archive's.

What counts as a finding (the input is saved, and the run exits 1):

* **crash**: any other exception (a user would see a traceback);
* **hang**: an input that takes longer than ``--timeout`` seconds (default 10);
* **silent corruption**: an archive damaged *without* recomputing its checks (bit flips,
  overwrites, insertions, deletions, truncations of a seed) that decodes, to anything but
  the seed's own decoded bytes. (Whole streams of a seed left out are the one damage the
  format cannot see, as with gzip and zstd: the output must then be the remaining streams'.
  The other is damage into exactly the 6-byte empty archive, which has no check: counted
  apart. Bytes that the decoder ignores as trailing data excuse no other missing output.)
* **length mismatch**: a decode that succeeds with another length than ``list_stream``
  reports (also for mutations that recompute the checks);
* **threads mismatch** / **reader mismatch**: an archive that decodes gives other bytes on
  one thread, or through ``ArchiveReader``.

Three engines:

* atheris (libFuzzer, coverage guided), when it is importable::

      python scripts/fuzz_decoder.py [libFuzzer flags, e.g. -runs=100000 -max_len=4096]

* otherwise (or with ``--plain``) a seeded random-mutation loop::

      python scripts/fuzz_decoder.py --plain --iterations 20000 --seed 1 [--keep-going]

* ``--crafted``: the hostile archives of ``crafted_archives`` (huge claimed lengths, LZMA2
  bombs, unknown models, boundary configurations, trailing data, many tiny frames, lying
  indexes, damaged headers), each decoded unclamped in a fresh process whose time and peak
  memory are measured and held to the case's bounds (``--scale big``: 256 MiB versions)::

      python scripts/fuzz_decoder.py --crafted [--scale big]

``--replay FILE...`` decodes saved inputs again and says what happens.

The mutator is structure-aware. It walks an archive as format 1 lays it out (``parse``):
each stream's header, its blocks (descriptor, varints, payload, check) frame by frame as the
descriptors' end codes say, and the index that follows a block coded END_INDEX. Besides bit
flips, overwrites, insertions, deletions, truncations and splices of valid archives, it sets
fields to boundary values (a header's model reference, configuration -- also a preset
written out -- and block size; a block's method, end code, "full" bit, lengths and how its
segment count is given, also as non-minimal or over-long varints; an index's entries),
drops, repeats and swaps blocks and whole frames, and then recomputes the checks
(``fix_crcs``), so that the damage reaches field validation, the payload decoders (stored,
LZMA, and the range decoder with the model), the frame logic and the index check instead of
stopping at the first block's CRC. (Frames moved without fixing the checks exercise the
frame seeds: each frame's chain starts from ``format.frame_seed`` of the stream header, the
frame's number and its offset in the stream's decoded bytes.) A share of the inputs
(``--unchecked``, default 0.3) is damaged without recomputing anything
(``mutate_unchecked``): those face the silent-corruption oracle. The seeds are valid
archives of every kind (``seed_archives``) and the small crafted hostile archives.

A block's check is CRC32 over its header bytes and its *decoded* bytes, chained through the
frame from the frame's seed, so recomputing it needs the decoded bytes. Stored blocks hold
them; LZMA blocks are decoded here; for model and mixed blocks the harness keeps the CRC32
of the decoded bytes that the check it found implies (CRC32 is affine in its initial
value), so a block whose header, neighbours, stream header or frame number changed gets the
check its unchanged content needs.

Every input of the random loop is also clamped (``clamp_block_sizes``): a header's block
size above ``MAX_FUZZ_BLOCK`` is cut down. A model block's decoding time is proportional
to the raw length it claims (one model step per byte per segment), and a "full" block is as
long as the header's block size: a fuzzer that asks for 2**28-byte blocks would spend
minutes on a single input. The clamp keeps every input to milliseconds. (A size above it
becomes ``size % MAX_FUZZ_BLOCK + 1``.) The crafted archives are what goes through
unclamped, each with its own time and memory bound.

The test suite runs the same functions for a bounded number of examples
(``tests/test_fuzz.py``); the model is a tiny random-weight GRU, built here with numpy.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import io
import json
import lzma
import os
import random
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from nncompress import config as presets
from nncompress import contexts
from nncompress import format as fmt
from nncompress.config import Config, preset_of
from nncompress.engine import (
    StreamInfo,
    _lzma_decompress,
    _lzma_filters,
    compress_stream,
    decompress_stream,
    list_stream,
)
from nncompress.levels import LEVELS, Level
from nncompress.model import IntModel, ModelError, export_gru
from nncompress.zoo import describe_ref, model_ref

ALLOWED = (fmt.FormatError, ModelError)
#: The largest block size a clamped header may declare (see the module docstring): large
#: enough for every way of giving a segment count to be valid (a count written out needs a
#: default count of three or more: blocks of 768 bytes and more).
MAX_FUZZ_BLOCK = 1024
#: Checks of model and mixed blocks claiming more raw bytes than this are left as found
#: (re-chaining costs a CRC32 over that many zero bytes).
_MAX_RECHAIN = 1 << 20
#: The limit format.read_index uses for frame counts and lengths.
_INDEX_LIMIT = 1 << 62
#: A configuration of the mixed method that is not a preset: a seed stream writes it inline.
INLINE_CONFIG = Config(
    contexts=(1, 2, 3, contexts.WORD, contexts.COLUMN),
    mix_shifts=(13, 14, 15),
    final_shift=15,
    apm_rate=5,
    table_bits=16,
    match_bits=16,
    network_weight=1 << 15,
)
#: Text the harness's model favours (``build_model``).
FAVOURED = b" etaoinshrdlu"


# ----------------------------------------------------------------------------- model, seeds
def build_model(hidden: int = 16, layers: int = 1, seed: int = 0) -> IntModel:
    """A small random-weight integer model whose output favours lowercase text. The same
    arguments give the same model, and the same hash, in every process (the hash is of the
    tensors and metadata in name order: safetensors' own bytes vary from call to call)."""
    rng = np.random.default_rng(seed)
    h = hidden
    head_b = np.full(256, -8.0)
    head_b[np.frombuffer(FAVOURED, dtype=np.uint8)] = 0.0
    tensors, meta = export_gru(
        rng.normal(0, 1, (256, h)),
        [rng.normal(0, 0.5, (3 * h, h)) for _ in range(layers)],
        [rng.normal(0, 0.5, (3 * h, h)) for _ in range(layers)],
        [rng.normal(0, 0.2, 3 * h) for _ in range(layers)],
        [rng.normal(0, 0.2, 3 * h) for _ in range(layers)],
        rng.normal(0, 0.1, (256, h)),
        head_b,
        {"name": "fuzz"},
    )
    digest = hashlib.sha256(json.dumps(sorted(meta.items())).encode())
    for name, t in sorted(tensors.items()):
        digest.update(f"{name} {t.dtype.str} {t.shape}".encode())
        digest.update(np.ascontiguousarray(t).tobytes())
    return IntModel.from_tensors(tensors, meta, sha256=digest.hexdigest())


@contextlib.contextmanager
def _level(name: str, level: Level) -> Iterator[str]:
    """``level`` registered under ``name`` for the duration (compress_stream takes levels
    by name; the seeds need one with a configuration that is not a preset)."""
    LEVELS[name] = level
    try:
        yield name
    finally:
        del LEVELS[name]


def _compress(
    model: IntModel, data: bytes, block: int, level: str = "default", frame: int = 1 << 24
) -> bytes:
    out = io.BytesIO()
    compress_stream(io.BytesIO(data), out, model, block, level, frame_size=frame)
    return out.getvalue()


def _text(n: int, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    return bytes(rng.choice(list(FAVOURED), n).astype(np.uint8))


def _picture(width: int, height: int, pixel: int) -> bytes:
    """An image of ``pixel`` bytes a pixel: each channel a ramp across and down, brighter
    inside a box."""
    out = bytearray()
    for y in range(height):
        for x in range(width):
            box = 60 if 4 <= x < width // 2 and 3 <= y < height // 2 else 0
            out += bytes((x * 5 + y * 3 + c * 40 + box) % 256 for c in range(pixel))
    return bytes(out)


def _bitmap(width: int, height: int) -> bytes:
    """A 1-bit bitmap, rows of ``width`` bytes: a disc and vertical lines."""
    out = bytearray()
    for y in range(height):
        row = 0
        for x in range(width * 8):
            if (x - 40) ** 2 + (y - 24) ** 2 < 400 or x % 23 == 0:
                row |= 1 << (width * 8 - 1 - x)
        out += row.to_bytes(width, "big")
    return bytes(out)


def _table(n: int) -> bytes:
    """``n`` records of 12 bytes: a counter, a small cycle, a constant, a float."""
    return b"".join(struct.pack("<IHHf", 1000 + i * 7, i % 5, 3, i * 0.5) for i in range(n))


def _code(n: int, seed: int = 3) -> bytes:
    """Bytes shaped like x86 code: short runs between calls (E8 and a 32-bit offset from the
    next instruction) to a dozen functions, often enough for ``filters.looks_like_x86``."""
    rng = np.random.default_rng(seed)
    functions = np.sort(rng.integers(0, n, 12))
    bodies = [
        bytes(rng.integers(0, 256, int(rng.integers(2, 8)), dtype=np.uint8)) for _ in range(10)
    ]
    out = bytearray()
    while len(out) < n:
        if rng.random() < 0.4:
            target = int(functions[int(rng.integers(len(functions)))])
            out += b"\xe8" + struct.pack("<i", target - (len(out) + 5))
        else:
            out += bodies[int(rng.integers(len(bodies)))]
    return bytes(out[:n])


def binary_seeds(model: IntModel) -> list[bytes]:
    """Streams of the binary presets: 24- and 32-bit images (presets 16, 17), an 8-bit image
    (14, and 38: with slot groups and fine probabilities, whose blocks may stand for more
    raw bytes a payload byte), a 1-bit bitmap (12), a table of records and x86 code with
    its filter (13). Each is two blocks of ``MAX_FUZZ_BLOCK`` bytes, the fewest in which
    ``records.detect`` looks for a record length, and most of their blocks carry one (the
    text seeds are short streams, which keep preset 1 and have none). So the mutations
    start from the colour, image, pixel, record and machine-code contexts with a record
    length to read, and from the filter's option, instead of reaching them only where a
    damaged header names such a preset."""
    cases = [
        (presets.COLOUR_24, _picture(32, 22, 3)[:2048]),
        (presets.COLOUR_32, _picture(32, 16, 4)),
        (presets.IMAGE_MIXERS, _picture(64, 32, 1)),
        (presets.IMAGE_SLOTTED_FINE, _picture(64, 32, 1)),
        (presets.BITMAP, _bitmap(16, 128)),
        (presets.BINARY_SPARSE_MIXERS, _table(170)),
        (presets.BINARY_SPARSE_MIXERS, _code(2048)),
    ]
    seeds = []
    for config, data in cases:
        level = Level(f"fuzz-preset-{preset_of(config)}", (fmt.METHOD_MIXED,), config=config)
        with _level(level.name, level) as name:
            seeds.append(_compress(model, data, MAX_FUZZ_BLOCK, name))
    return seeds


def seed_archives(model: IntModel) -> list[bytes]:
    """Valid archives covering every block method, both model references a test model can
    have (none, hash prefix), an inline configuration, every way a block gives its segment
    count (the default, the fewest, a varint), empty streams, several frames with an index,
    and concatenation; and the binary presets with record lengths and the x86 filter
    (``binary_seeds``)."""
    rng = np.random.default_rng(1)
    text = bytes(rng.choice(list(FAVOURED), 300).astype(np.uint8))
    noise = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    more_text = bytes(rng.choice(list(FAVOURED), 768).astype(np.uint8))

    def make(data: bytes, block: int, level: str = "default", frame: int = 1 << 24) -> bytes:
        return _compress(model, data, block, level, frame)

    inline = Level("fuzz-inline", (fmt.METHOD_MIXED,), config=INLINE_CONFIG)
    with _level(inline.name, inline) as level:
        inline_seed = make(text[:200], 64, level, frame=128)
    # Two segments where the default count is three: the count is written out.
    given = Level("fuzz-given", (fmt.METHOD_MODEL,), segments=lambda n: 2)
    with _level(given.name, given) as level:
        given_seed = make(more_text, 768, level)
    seeds = [
        make(b"", 64),  # the empty stream: 6 bytes
        make(b"x", 64),  # one stored block; names no model
        make(text[:100], 128, "fast"),  # one model block
        make(text + bytes(100) + noise, 100, frame=200),  # 3 frames of 2 blocks, an index
        make(bytes(300), 256),  # repeat blocks of a period of one byte
        make(noise * 2 + b"!", 401),  # noise, then the same noise again: LZMA2 wins
        make(noise * 3, 600),  # a repeat block of a period of 200 bytes, tried and kept
        make(noise, 64),  # stored blocks in a stream that names the model
        inline_seed,  # mixed blocks under an inline configuration, 2 frames
        make(more_text[:600], 600, "max"),  # --max: one segment, the fewest (default: two)
        given_seed,  # a model block of 768 bytes in 2 segments: an explicit count
    ]
    seeds.append(seeds[2] + seeds[5])
    seeds.append(seeds[3] + seeds[0] + seeds[1])
    return seeds + binary_seeds(model)


def loop_seeds(model: IntModel) -> tuple[list[bytes], list[bytes]]:
    """The random loop's seeds, clamped as its inputs are: ``seed_archives``, and the
    crafted hostile archives small enough to mutate (``crafted_archives(scale="light")``)."""
    crafted = [c.blob for c in crafted_archives(model, "light") if c.seed]
    return (
        [clamp_block_sizes(b) for b in seed_archives(model)],
        [clamp_block_sizes(b) for b in crafted],
    )


# ----------------------------------------------------------------------------- walking
@dataclass
class Block:
    """One block as found: its header bytes (descriptor and varints), payload and check,
    and what its check needs besides them: the CRC32 of its decoded bytes (``raw_crc``,
    None if unknown) and their number ``n``."""

    head: bytes
    payload: bytes
    check: int
    n: int
    raw_crc: int | None

    @property
    def end(self) -> int:
        return (self.head[0] >> 2) & 3


@dataclass
class Stream:
    """One stream as found: header bytes, blocks and, after an END_INDEX block, the index
    (its body, the varints, and the 12 bytes of CRC and footer after it; ``keep_tail``:
    write those 12 bytes as they are, even when fixing checks)."""

    header: fmt.Header
    header_bytes: bytes
    blocks: list[Block] = field(default_factory=list)
    index_body: bytes | None = None
    index_tail: bytes = b""
    keep_tail: bool = False


def _zeros_crc(n: int, state: int) -> int:
    return zlib.crc32(bytes(n), state)


def _continue(raw_crc: int, n: int, state: int) -> int:
    """``crc32(raw, state)`` from ``crc32(raw)`` and ``len(raw)``: CRC32 is affine in its
    initial value."""
    return raw_crc ^ _zeros_crc(n, state) ^ _zeros_crc(n, 0)


def _stored_bytes(payload: bytes, n: int, param: int) -> bytes:
    """A stored block's decoded bytes: its payload, or for a repeat block
    (``format.STORED_REPEAT``) the payload repeated to ``n`` bytes. (A copy block's,
    ``format.STORED_COPY``, are its frame's earlier bytes: ``_raw_crc`` takes them from
    its check.)"""
    return fmt.repeated(payload, n) if param == fmt.STORED_REPEAT and payload else payload


def _raw_crc(bh: fmt.BlockHeader, head: bytes, payload: bytes, check: int, prev: int) -> int | None:
    """The CRC32 of a block's decoded bytes: of the payload for stored blocks (repeated, for
    repeat blocks), of the decoded payload for LZMA blocks that decode, else the one that
    ``check`` implies."""
    if bh.method == fmt.METHOD_STORED and bh.param != fmt.STORED_COPY:
        return zlib.crc32(_stored_bytes(payload, bh.raw_len, bh.param))
    if bh.method == fmt.METHOD_LZMA:
        try:
            raw = _lzma_decompress(payload, bh.raw_len, bh.param)
        except Exception:
            raw = b""
        if len(raw) == bh.raw_len:
            return zlib.crc32(raw)
    if bh.raw_len > _MAX_RECHAIN:
        return None
    # check = crc32(raw, s) with s = crc32(head, prev): undo the dependence on s.
    s = zlib.crc32(head, prev)
    return check ^ _zeros_crc(bh.raw_len, s) ^ _zeros_crc(bh.raw_len, 0)


def _read_index_body(f: io.BytesIO, size: int) -> tuple[bytes, bytes]:
    """An index's varints and its 12 trailing bytes, without checking either (the bytes
    that ``format.read_index`` reads before it checks them)."""
    start = f.tell()
    count, _ = fmt.read_varint(f, "index", _INDEX_LIMIT)
    fmt.read_varint(f, "index", 1 << 16)
    for _ in range(min(count, size)):
        fmt.read_varint(f, "index", _INDEX_LIMIT)
        fmt.read_varint(f, "index", _INDEX_LIMIT)
    end = f.tell()
    tail = f.read(fmt.CHECK_SIZE + fmt.INDEX_FOOTER)
    if count > size or len(tail) != fmt.CHECK_SIZE + fmt.INDEX_FOOTER:
        raise fmt.FormatError("truncated index")
    f.seek(start)
    body = f.read(end - start)
    f.seek(len(tail), io.SEEK_CUR)
    return body, tail


def parse(blob: bytes, crcs: bool = True) -> tuple[list[Stream], bytes]:
    """The streams of ``blob`` that parse (the last one possibly cut short) and the bytes
    after them. Follows the decoder's path -- the same header and block-header readers, the
    end codes -- without decoding model payloads or comparing checks. ``crcs``: work out
    each block's ``raw_crc`` (else None). Never raises."""
    f = io.BytesIO(blob)
    streams: list[Stream] = []
    pos = 0
    while pos < len(blob):
        try:
            header, header_bytes = fmt.read_header(f)
        except fmt.FormatError:
            break
        stream = Stream(header, header_bytes)
        streams.append(stream)
        pos = f.tell()
        if not header.block_size:
            continue
        frame = raw = 0
        prev = fmt.frame_seed(header_bytes, frame, raw)
        end = fmt.END_NONE
        try:
            while end not in (fmt.END_STREAM, fmt.END_INDEX):
                bh, head = fmt.read_block_header(f, header)
                payload = fmt.read_payload(f, bh)
                check = fmt.read_check(f)
                raw_crc = _raw_crc(bh, head, payload, check, prev) if crcs else None
                stream.blocks.append(Block(head, payload, check, bh.raw_len, raw_crc))
                pos = f.tell()
                end = bh.end
                prev = check
                raw += bh.raw_len
                if end != fmt.END_NONE:
                    frame += 1
                    prev = fmt.frame_seed(header_bytes, frame, raw)
            if end == fmt.END_INDEX:
                stream.index_body, stream.index_tail = _read_index_body(f, len(blob))
                pos = f.tell()
        except fmt.FormatError:
            break
    return streams, blob[pos:]


def serialize(
    streams: list[Stream],
    tail: bytes,
    fix: bool = True,
    max_block: int | None = MAX_FUZZ_BLOCK,
    rebuild_index: bool = False,
) -> bytes:
    """Inverse of ``parse``. ``fix``: recompute every check whose block's decoded CRC is
    known, and every index's CRC and length; ``max_block``: clamp headers' block sizes;
    ``rebuild_index``: write an index anew from the frames as they now are after every
    stream whose last block says END_INDEX (and none after the others)."""
    out = bytearray()
    for s in streams:
        hb = s.header_bytes
        if max_block is not None:
            hb = _clamp_header(hb, max_block)
        out += hb
        prev = fmt.frame_seed(hb, 0, 0)
        frames: list[fmt.FrameEntry] = []
        frame = fmt.FrameEntry(0, 0)
        for b in s.blocks:
            check = b.check
            if fix and b.raw_crc is not None:
                check = _continue(b.raw_crc, b.n, zlib.crc32(b.head, prev))
            record = b.head + b.payload + fmt.CHECK.pack(check)
            out += record
            frame.raw_len += b.n
            frame.coded_len += len(record)
            prev = check
            if b.end != fmt.END_NONE:
                frames.append(frame)
                frame = fmt.FrameEntry(0, 0)
                prev = fmt.frame_seed(hb, len(frames), sum(fr.raw_len for fr in frames))
        if rebuild_index:
            if s.blocks and s.blocks[-1].end == fmt.END_INDEX:
                out += fmt.Index(len(hb), frames).pack()
        elif s.index_body is not None:
            if fix and not s.keep_tail:
                body = s.index_body + fmt.CHECK.pack(zlib.crc32(s.index_body))
                out += body + len(body).to_bytes(4, "little") + fmt.INDEX_MAGIC
            else:
                out += s.index_body + s.index_tail
    return bytes(out + tail)


def _clamp_header(header_bytes: bytes, max_block: int) -> bytes:
    """Header bytes with a block size above ``max_block`` cut down (the size is the
    header's last field)."""
    try:
        header, raw = fmt.read_header(io.BytesIO(header_bytes))
    except fmt.FormatError:
        return header_bytes
    if header.block_size <= max_block or raw != header_bytes:
        return header_bytes
    size = fmt.varint(header.block_size)
    return header_bytes[: -len(size)] + fmt.varint(header.block_size % max_block + 1)


def clamp_block_sizes(blob: bytes, max_block: int = MAX_FUZZ_BLOCK) -> bytes:
    """``blob`` with the block sizes of the headers the decoder reaches clamped to
    ``max_block``, nothing else changed. Never raises. (Repeated until nothing changes: a
    smaller block size can let a block parse that did not, and the decoder go further.)"""
    for _ in range(64):
        out = serialize(*parse(blob, crcs=False), fix=False, max_block=max_block)
        if out == blob:
            break
        blob = out
    return blob


def fix_crcs(blob: bytes, max_block: int = MAX_FUZZ_BLOCK) -> bytes:
    """``blob`` with its block sizes clamped (``clamp_block_sizes``) and every check and
    index CRC it can recompute made to match. Leaves valid archives whose block sizes are
    within the clamp unchanged. Never raises."""
    blob = clamp_block_sizes(blob, max_block)
    return serialize(*parse(blob), fix=True, max_block=max_block)


# ----------------------------------------------------------------------------- mutation
_INTERESTING = [
    0,
    1,
    2,
    3,
    7,
    8,
    15,
    16,
    63,
    64,
    65,
    127,
    128,
    255,
    256,
    400,
    511,
    512,
    513,
    1023,
    1024,
    1025,
    4096,
    65535,
    65536,
    65537,
    2**21,
    fmt.MAX_BLOCK,
    fmt.MAX_BLOCK + 1,
    2**35 - 1,
    2**35,
    2**62,
    2**62 + 1,
]


def _varint_field(value: int, rng: random.Random) -> bytes:
    """A varint for ``value``: mostly minimal, sometimes one byte longer than minimal (which
    decoders must refuse), or too long to be a varint at all."""
    r = rng.random()
    v = fmt.varint(value)
    if r < 0.8:
        return v
    if r < 0.9:
        return v[:-1] + bytes([v[-1] | 0x80, 0])
    return b"\xff" * rng.randint(5, 7) + b"\x01"


def _random_config(rng: random.Random) -> Config:
    kinds = rng.sample(sorted(contexts.NAMES), rng.randint(1, min(32, len(contexts.NAMES))))
    return Config(
        contexts=tuple(kinds),
        mix_shifts=(rng.randint(8, 24), rng.randint(8, 24), rng.randint(8, 24)),
        final_shift=rng.randint(8, 24),
        apm_rate=rng.randint(1, 12),
        table_bits=rng.randint(12, 22),
        match_bits=rng.randint(12, 24),
        network_weight=rng.randint(0, 65535),
    )


def _mutate_header(s: Stream, rng: random.Random) -> None:
    h = s.header
    choice = rng.randrange(5)
    if choice == 0:  # the block size (the clamp keeps it small)
        size = fmt.varint(h.block_size)
        new = _varint_field(rng.choice(_INTERESTING), rng)
        s.header_bytes = s.header_bytes[: -len(size)] + new
        return
    if choice == 1:  # the descriptor byte, raw: the fields after it are misread
        hb = bytearray(s.header_bytes)
        hb[4] = rng.choice([rng.randrange(256), hb[4] ^ 1 << rng.randrange(8)])
        s.header_bytes = bytes(hb)
        return
    if choice == 2:  # an inline configuration of random bytes, or a preset written out
        body = rng.randbytes(rng.choice([0, 1, 10, 42, rng.randrange(256)]))
        if rng.random() < 0.5 and body:
            body = bytes([max(0, len(body) - 10)]) + body[1:]  # a plausible context count
        if rng.random() < 0.2:
            body = rng.choice(list(fmt.PRESETS.values())).pack()
        model = h.model or fmt.MODEL_HASH
        prefix = h.model_prefix if model == fmt.MODEL_HASH else ""
        cfg = bytes([len(body)]) + body
        s.header_bytes = raw_header(h.block_size, model, prefix, kind=fmt.CONFIG_INLINE, data=cfg)
        return
    # A well-formed header with another model reference or configuration.
    model, prefix, config = h.model, h.model_prefix, h.config
    if choice == 3:
        model = rng.choice([fmt.MODEL_NONE, 1, 2, 3, 14, fmt.MODEL_HASH])
        if model == fmt.MODEL_HASH and (not prefix or rng.random() < 0.5):
            prefix = rng.randbytes(rng.choice(PREFIX_SIZES)).hex()
        elif model != fmt.MODEL_HASH:
            prefix = ""
    else:
        config = _random_config(rng) if rng.random() < 0.8 else fmt.PRESETS[fmt.DEFAULT_PRESET]
    s.header_bytes = raw_header(h.block_size, model, prefix, config)
    if rng.random() < 0.2 and model != fmt.MODEL_NONE:  # a preset number nobody released
        number = bytes([rng.choice([0, 2, 255])])
        s.header_bytes = raw_header(
            h.block_size, model, prefix, kind=fmt.CONFIG_PRESET, data=number
        )


#: The lengths of hash prefix a header may name a model by (format.HASH_PREFIX, and the
#: short one where this format has it).
PREFIX_SIZES = sorted({fmt.HASH_PREFIX, getattr(fmt, "SHORT_HASH_PREFIX", fmt.HASH_PREFIX)})


def raw_header(
    block_size: int,
    model: int = fmt.MODEL_NONE,
    prefix: str = "",
    config: Config | None = None,
    kind: int | None = None,
    data: bytes = b"",
) -> bytes:
    """Header bytes as format 1 lays them out, without ``format.Header.pack``'s checks (a
    writer's: a reader must meet what they refuse, such as an empty stream that names a
    model). The configuration is ``config``, named as ``Header.pack`` names it, or with
    ``kind`` (``format.CONFIG_*``) the bytes ``data``, whatever they are. A prefix of
    the short length sets the descriptor's short-hash flag where the format has one; model
    15 without a prefix gets 8 zero bytes."""
    if model == fmt.MODEL_HASH and not prefix:
        prefix = "00" * fmt.HASH_PREFIX
    ref = bytes.fromhex(prefix) if model == fmt.MODEL_HASH else b""
    short = 0
    if ref and len(ref) == getattr(fmt, "SHORT_HASH_PREFIX", None):
        short = fmt.SHORT_HASH_FLAG
    if kind is None:
        kind = fmt.CONFIG_DEFAULT
        if config is not None and model != fmt.MODEL_NONE:
            preset = preset_of(config)
            if preset is None:
                packed = config.pack()
                kind, data = fmt.CONFIG_INLINE, bytes([len(packed)]) + packed
            elif preset != fmt.DEFAULT_PRESET:
                kind, data = fmt.CONFIG_PRESET, bytes([preset])
    return fmt.MAGIC + bytes([model | kind << 4 | short]) + ref + data + fmt.varint(block_size)


def _head_fields(head: bytes) -> list[int]:
    """The varints after a (well-formed) block header's descriptor."""
    f = io.BytesIO(head[1:])
    out = []
    while f.tell() < len(head) - 1:
        out.append(fmt.read_varint(f, "field", _INDEX_LIMIT)[0])
    return out


def _mutate_block(s: Stream, i: int, rng: random.Random) -> None:
    b = s.blocks[i]
    desc, fields = b.head[0], _head_fields(b.head)
    choice = rng.randrange(8)
    if choice == 0:  # the end code: frames split, joined, or the stream cut short
        desc = desc & ~0x0C | rng.randrange(4) << 2
    elif choice == 1:  # the "full" bit, without adding or removing the raw length
        desc ^= 0x10
    elif choice == 2:  # the method, or the LZMA variant / segment-count bits
        if rng.random() < 0.5:
            desc = desc & ~3 | rng.randrange(4)
        else:
            desc = desc & 0x1F | rng.randrange(8) << 5
    elif choice == 3:  # a random descriptor
        desc = rng.randrange(256)
    elif choice == 4 and fields:  # a length or the segment count
        fields[rng.randrange(len(fields))] = rng.choice(_INTERESTING + [b.n - 1, b.n + 1])
    elif choice == 5:  # how the segment count is given: default, fewest, a varint, 3
        if (desc >> 5) & 3 == fmt.SEGMENTS_GIVEN and desc & 3 in fmt.MODEL_METHODS and fields:
            fields.pop()
        kind = rng.randrange(4)
        desc = desc & ~0x60 | kind << 5
        if kind == fmt.SEGMENTS_GIVEN or rng.random() < 0.1:
            lo, hi = fmt.fewest_segments(b.n), fmt.segment_count(b.n)
            near = [lo - 1, lo, lo + 1, hi - 1, hi, hi + 1]
            fields.append(max(0, rng.choice(near + [0, 2, 3, 8, 16, 1023, 1024, 1025])))
    elif choice == 6 and b.payload:  # payload bytes (a stored block gets a matching check)
        p = bytearray(b.payload)
        for _ in range(rng.randint(1, 4)):
            p[rng.randrange(len(p))] = rng.randrange(256)
        b.payload = bytes(p)
        if fmt.METHOD_STORED == desc & 3:
            b.raw_crc = zlib.crc32(_stored_bytes(b.payload, b.n, desc >> 5))
        return
    else:  # the payload's length changed without telling the header
        if rng.random() < 0.5:
            b.payload = b.payload[: rng.randint(0, len(b.payload))]
        else:
            b.payload += rng.randbytes(rng.randint(1, 8))
        return
    b.head = bytes([desc]) + b"".join(_varint_field(v, rng) for v in fields)


def _mutate_index(s: Stream, rng: random.Random) -> None:
    assert s.index_body is not None
    f = io.BytesIO(s.index_body)
    values = []
    while f.tell() < len(s.index_body):
        values.append(fmt.read_varint(f, "index", _INDEX_LIMIT)[0])
    choice = rng.randrange(4)
    if choice == 0 and values:  # one field: the count, the header length, an entry
        values[rng.randrange(len(values))] = rng.choice(_INTERESTING)
    elif choice == 1 and len(values) > 2:  # an entry dropped (with the count)
        k = 2 + 2 * rng.randrange((len(values) - 2) // 2)
        del values[k : k + 2]
        values[0] -= 1
    elif choice == 2 and len(values) > 2:  # entries swapped
        k = 2 + 2 * rng.randrange((len(values) - 2) // 2)
        values[2:4], values[k : k + 2] = values[k : k + 2], values[2:4]
    else:  # the CRC or the footer (its length or magic)
        tail = bytearray(s.index_tail)
        tail[rng.randrange(len(tail))] ^= 1 << rng.randrange(8)
        s.index_tail = bytes(tail)
        s.keep_tail = True
        return
    s.index_body = b"".join(fmt.varint(v) for v in values)


def _split_frames(blocks: list[Block]) -> list[list[Block]]:
    """A stream's blocks frame by frame (the last frame possibly without its end)."""
    frames: list[list[Block]] = [[]]
    for b in blocks:
        frames[-1].append(b)
        if b.end != fmt.END_NONE:
            frames.append([])
    return [f for f in frames if f]


def _move_frames(s: Stream, rng: random.Random) -> None:
    """Whole frames dropped, repeated or swapped; each frame's last block then gets the end
    code its new place needs (so only the order is wrong: the frames' seeds catch it, unless
    the checks are recomputed)."""
    frames = _split_frames(s.blocks)
    final = frames[-1][-1].end
    i, j = rng.randrange(len(frames)), rng.randrange(len(frames))
    op = rng.randrange(3)
    if op == 0:
        del frames[i]
    elif op == 1:
        frames.insert(j, [replace(b) for b in frames[i]])
    else:
        frames[i], frames[j] = frames[j], frames[i]
    blocks = [replace(b) for f in frames for b in f]
    ends = {len(blocks) - 1}
    at = 0
    for f in frames:
        at += len(f)
        ends.add(at - 1)
    for k in sorted(ends):
        code = final if k == len(blocks) - 1 else fmt.END_FRAME
        head = blocks[k].head
        blocks[k].head = bytes([head[0] & ~0x0C | code << 2]) + head[1:]
    s.blocks = blocks


def _set_field(blob: bytes, rng: random.Random) -> bytes:
    """One structure-aware edit of ``blob`` (a field, a block or whole frames), with checks
    recomputed (and usually the index rebuilt) so that the edit is what the decoder meets;
    frames moved keep their checks half the time, so that their seeds are what fails."""
    streams, tail = parse(blob)
    if not streams:
        return blob
    s = rng.choice(streams)
    targets = (
        ["header"] + ["block"] * (2 if s.blocks else 0) + ["index"] * (s.index_body is not None)
    )
    targets += ["blocks"] if len(s.blocks) > 1 else []
    targets += ["frames"] if len(_split_frames(s.blocks)) > 1 else []
    kind = rng.choice(targets)
    rebuild = rng.random() < 0.7
    fix = True
    if kind == "header":
        _mutate_header(s, rng)
    elif kind == "block":
        _mutate_block(s, rng.randrange(len(s.blocks)), rng)
    elif kind == "index":
        _mutate_index(s, rng)
        rebuild = False
    elif kind == "frames":
        _move_frames(s, rng)
        rebuild, fix = True, rng.random() < 0.5
    else:  # blocks dropped, repeated or swapped, also across frames
        i, j = rng.randrange(len(s.blocks)), rng.randrange(len(s.blocks))
        op = rng.randrange(3)
        if op == 0:
            del s.blocks[i]
        elif op == 1:
            s.blocks.insert(j, replace(s.blocks[i]))
        else:
            s.blocks[i], s.blocks[j] = s.blocks[j], s.blocks[i]
    return serialize(streams, tail, fix=fix, rebuild_index=rebuild)


def mutate(blob: bytes, rng: random.Random, seeds: list[bytes], max_len: int = 8192) -> bytes:
    """One to four random edits of ``blob``; with probability 3/4 checks are then fixed.
    Block sizes are always clamped."""
    b = bytearray(blob)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(8)
        n = len(b)
        if op == 0 and n:  # bit flip
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # overwrite a span
            i = rng.randrange(n)
            b[i : i + rng.randint(1, 8)] = rng.randbytes(rng.randint(1, 8))
        elif op == 2:  # insert
            i = rng.randint(0, n)
            b[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 3 and n:  # delete
            i = rng.randrange(n)
            del b[i : i + rng.randint(1, 16)]
        elif op == 4 and n:  # truncate
            del b[rng.randrange(n) :]
        elif op == 5:  # splice with another seed
            other = rng.choice(seeds)
            i, j = rng.randint(0, n), rng.randint(0, len(other))
            b = b[:i] + bytearray(other[j:])
        elif op == 6:  # duplicate a span (repeated blocks, concatenated streams)
            if n:
                i = rng.randrange(n)
                j = rng.randint(i, min(n, i + 64))
                b[j:j] = b[i:j]
        else:
            b = bytearray(_set_field(bytes(b), rng))
    out = bytes(b[:max_len])
    return fix_crcs(out) if rng.random() < 0.75 else clamp_block_sizes(out)


def mutate_unchecked(blob: bytes, rng: random.Random, max_len: int = 8192) -> bytes:
    """One to four raw edits of ``blob`` -- bit flips, overwrites, insertions, deletions,
    truncations -- with no check recomputed (block sizes are clamped, as always): damage as
    a disk or a network makes it, which the checks must catch (``legal_outputs``)."""
    b = bytearray(blob)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        n = len(b)
        if op == 0 and n:
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            i = rng.randrange(n)
            k = rng.randint(1, 8)
            b[i : i + k] = rng.randbytes(min(k, n - i))
        elif op == 2:
            i = rng.randint(0, n)
            b[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 3 and n:
            i = rng.randrange(n)
            del b[i : i + rng.randint(1, 16)]
        elif n:
            del b[rng.randrange(n) :]
    return clamp_block_sizes(bytes(b[:max_len]))


# ----------------------------------------------------------------------------- the target
def lookup_for(model: IntModel) -> Callable[[fmt.Header], IntModel]:
    def get(header: fmt.Header) -> IntModel:
        if not names(model, header.model, header.model_prefix):
            raise ModelError(f"archive needs {describe_ref(header.model, header.model_prefix)}")
        return model

    return get


def names(model: IntModel, ref: int, prefix: str) -> bool:
    """Whether a header's model reference (a registry number, or a hash prefix of any
    length the format allows) names ``model``."""
    if ref == fmt.MODEL_HASH:
        return bool(prefix) and model.sha256.startswith(prefix)
    return ref != fmt.MODEL_NONE and model_ref(model) == (ref, "")


def _kind(e: BaseException) -> str:
    return next(kind.__name__ for kind in ALLOWED if isinstance(e, kind))


def decode(blob: bytes, model: IntModel, threads: int = 0) -> tuple[str, bytes, StreamInfo | None]:
    """Decode ``blob``: the outcome ("ok", "FormatError", "ModelError"), what was written
    (all of it, or what came before the error), and the decoder's StreamInfo (None unless
    "ok"). Other exceptions propagate."""
    out = io.BytesIO()
    try:
        info = decompress_stream(io.BytesIO(blob), out, lookup_for(model), threads=threads)
    except ALLOWED as e:
        return _kind(e), out.getvalue(), None
    return "ok", out.getvalue(), info


def trailing(info: StreamInfo | None) -> int:
    """Bytes after the last stream that the decoder ignored as trailing data (decoders
    that refuse trailing data have no such count: 0)."""
    return getattr(info, "trailing", 0) if info is not None else 0


def read_all(blob: bytes, model: IntModel) -> tuple[str, bytes]:
    """``ArchiveReader`` over ``blob``, read to its end: the outcome and the bytes."""
    from nncompress.reader import ArchiveReader

    try:
        return "ok", ArchiveReader(io.BytesIO(blob), lookup_for(model)).read()
    except ALLOWED as e:
        return _kind(e), b""


class Finding(Exception):
    """A broken promise other than an exception: ``kind`` names it (module docstring)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class DecodeTimeout(BaseException):
    """Raised by ``time_limit`` in the middle of a decode that takes too long. A
    BaseException, so that no ``except Exception`` on the way up takes it for damage."""


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise DecodeTimeout in the calling (main) thread after ``seconds`` of wall time
    (SIGALRM; None or 0: no limit, and where there is no SIGALRM)."""
    if not seconds or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise DecodeTimeout(f"over {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Seed:
    """A seed archive and what it decodes to: ``output`` is all of it if ``outcome`` is
    "ok", else what the decoder wrote before the error; ``pieces``: its streams that
    decode on their own, each with its bytes and output."""

    blob: bytes
    outcome: str
    output: bytes
    pieces: list[tuple[bytes, bytes]] = field(default_factory=list)


def prepare_seeds(blobs: list[bytes], model: IntModel) -> list[Seed]:
    """Decode every seed once, keeping its output beside it (``legal_outputs``)."""
    seeds = []
    for blob in blobs:
        outcome, output, _ = decode(blob, model)
        pieces = []
        for s in parse(blob, crcs=False)[0]:
            piece = serialize([s], b"", fix=False, max_block=None)
            if blob.find(piece) >= 0:
                got, out, _ = decode(piece, model)
                if got == "ok":
                    pieces.append((piece, out))
        seeds.append(Seed(blob, outcome, output, pieces))
    return seeds


#: The 6 bytes of an empty archive. Format 1 gives it no check, so damage that turns an
#: archive into exactly these bytes (a cut after the descriptor, and the block size's
#: first byte set to 0) is a valid archive of nothing: like a concatenation cut at a
#: stream boundary, a damage no check can see. The oracle counts it apart.
EMPTY_ARCHIVE = fmt.Header(0).pack()


def legal_outputs(blob: bytes, seed: Seed) -> list[bytes]:
    """What an unchecked mutation of ``seed`` (``mutate_unchecked``) may decode to: the
    seed's own output (all of it; for a seed that fails, what it writes before failing,
    as when the damage is trailing data cut off), or, if ``blob`` is nothing but some of
    the seed's whole streams in order, their outputs. (Streams are self-delimiting, so at
    most one distinct stream starts at any offset, and taking the first that matches is
    exact.) Nothing else: in particular, the decoder may not take damaged streams for
    trailing data to ignore."""
    legal = [seed.output]
    pos, i, out = 0, 0, []
    while pos < len(blob):
        for j in range(i, len(seed.pieces)):
            piece, piece_out = seed.pieces[j]
            if blob.startswith(piece, pos):
                pos, i = pos + len(piece), j + 1
                out.append(piece_out)
                break
        else:
            return legal
    legal.append(b"".join(out))
    return legal


@dataclass
class Result:
    outcome: str  # "ok", "FormatError", "ModelError"
    output: bytes
    trailing: int = 0  # bytes ignored after the last stream
    reader: str | None = None  # ArchiveReader's outcome, where it ran
    #: How an unchecked mutation that decoded matched its seed: "seed" (the same output)
    #: or "streams" (whole streams left out).
    oracle: str | None = None


def run_one(
    blob: bytes,
    model: IntModel,
    seed: Seed | None = None,
    reader: bool = False,
) -> Result:
    """Decode and list ``blob`` (and with ``reader``, read it through ``ArchiveReader``),
    checking every promise of the module docstring but time; ``seed``: the seed that
    ``blob`` is an unchecked mutation of (``legal_outputs``). Raises Finding for a broken
    promise; other exceptions than FormatError and ModelError propagate."""
    try:
        listed: int | None = list_stream(io.BytesIO(blob)).raw_len
    except fmt.FormatError:
        listed = None
    outcome, out, info = decode(blob, model)
    result = Result(outcome, out, trailing(info))
    legal = None if seed is None else legal_outputs(blob, seed)
    if outcome == "ok":
        assert info is not None
        if listed != len(out) or info.raw_len != len(out):
            raise Finding(
                "length-mismatch",
                f"decoded {len(out)} bytes (counted {info.raw_len}), list_stream says {listed}",
            )
        if legal is not None:
            if blob == EMPTY_ARCHIVE:
                result.oracle = "empty"
            elif out not in legal:
                raise Finding(
                    "silent-corruption",
                    f"an unchecked mutation decodes to {len(out)} bytes that are not its "
                    f"seed's ({' or '.join(str(len(x)) for x in legal)} bytes"
                    f"; {result.trailing} trailing bytes ignored)",
                )
            else:
                result.oracle = "seed" if out == legal[0] else "streams"
        one = decode(blob, model, threads=1)
        if one[:2] != (outcome, out):
            raise Finding(
                "threads-mismatch", f"one thread: {one[0]}, {len(one[1])} bytes; else {len(out)}"
            )
    if reader and blob:
        result.reader, got = read_all(blob, model)
        if (
            result.reader == "ok"
            and legal is not None
            and got not in legal
            and blob != EMPTY_ARCHIVE
        ):
            raise Finding(
                "silent-corruption",
                f"ArchiveReader reads an unchecked mutation as {len(got)} bytes that are "
                "not its seed's",
            )
        if outcome == "ok" and (result.reader, got) != (outcome, out):
            # A reader may refuse trailing data that decompress_stream ignores; it may
            # never read other bytes.
            if result.reader == "ok" or not result.trailing:
                raise Finding(
                    "reader-mismatch",
                    f"ArchiveReader: {result.reader}, {len(got)} bytes; "
                    f"decompress_stream: {len(out)} bytes",
                )
    return result


def check_one(blob: bytes, model: IntModel) -> str:
    """Decode (and list) ``blob``. Returns the outcome: "ok", "FormatError" or "ModelError"
    (also for their subclasses, such as ``TruncatedError``); any other exception, or a
    Finding, propagates -- that is the bug this harness looks for."""
    return run_one(blob, model).outcome


# ----------------------------------------------------------------------------- the plain loop
def _save(crash_dir: Path, kind: str, blob: bytes, note: str) -> Path:
    crash_dir.mkdir(parents=True, exist_ok=True)
    path = crash_dir / f"{kind}-{hashlib.sha256(blob).hexdigest()[:16]}.nnc"
    path.write_bytes(blob)
    path.with_suffix(".txt").write_text(note)
    return path


#: The loop's seeds, prepared, by model hash: how many are valid ones, and all of them.
_PREPARED: dict[str, tuple[int, list[Seed]]] = {}


@dataclass
class LoopReport:
    """What ``fuzz_loop`` saw: counts by kind of input and outcome, the findings (kind,
    saved path), and the slowest input."""

    inputs: int = 0
    seconds: float = 0.0
    outcomes: Counter = field(default_factory=Counter)
    findings: list[tuple[str, Path]] = field(default_factory=list)
    slowest: tuple[float, bytes, str] = (0.0, b"", "")

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        dt, blob, how = self.slowest
        found = Counter(kind for kind, _ in self.findings)
        return (
            f"{self.inputs} inputs in {self.seconds:.1f}s ({counts}); slowest input "
            f"{dt * 1e3:.1f} ms, {len(blob)} bytes ({how}); "
            + (
                "findings: " + ", ".join(f"{k} {v}" for k, v in sorted(found.items()))
                if found
                else "no crash, hang or silent corruption"
            )
        )


def fuzz_loop(
    iterations: int,
    seed: int,
    crash_dir: Path,
    model: IntModel | None = None,
    timeout: float | None = 10.0,
    unchecked: float = 0.3,
    reader: float = 0.25,
    keep_going: bool = False,
    report_every: int = 0,
    save_slowest: Path | None = None,
) -> LoopReport:
    """The seeded random loop: ``iterations`` mutated seeds, a share ``unchecked`` of them
    damaged without recomputing checks (and held to ``legal_outputs``), a share ``reader``
    also read through ``ArchiveReader``, each under a wall-clock limit of ``timeout``
    seconds. Stops at the first finding unless ``keep_going``; findings are saved in
    ``crash_dir`` (the input, and a .txt saying what happened)."""
    model = model or build_model()
    if model.sha256 not in _PREPARED:  # (the same for every run with this model)
        valid, crafted = loop_seeds(model)
        _PREPARED[model.sha256] = (len(valid), prepare_seeds(valid + crafted, model))
    n_valid, seeds = _PREPARED[model.sha256]
    n_crafted = len(seeds) - n_valid
    blobs = [s.blob for s in seeds]
    rng = random.Random(seed)
    report = LoopReport()
    start = time.monotonic()
    for i in range(iterations):
        # As many inputs from the valid seeds as from the (many more) crafted ones.
        if rng.random() < 0.5:
            k = rng.randrange(n_valid)
        else:
            k = n_valid + rng.randrange(n_crafted)
        against = None
        if rng.random() < unchecked:
            blob = mutate_unchecked(seeds[k].blob, rng)
            against = seeds[k]
            how = f"seed {k}, unchecked"
        else:
            blob = mutate(seeds[k].blob, rng, blobs)
            how = f"seed {k}, checks recomputed"
        read = rng.random() < reader
        t0 = time.monotonic()
        kind = note = None
        try:
            with time_limit(timeout):
                result = run_one(blob, model, against, read)
        except DecodeTimeout:
            kind, note = "hang", f"over {timeout} s"
        except Finding as e:
            kind, note = e.kind, str(e)
        except Exception:
            kind, note = "crash", traceback.format_exc()
        dt = time.monotonic() - t0
        report.inputs += 1
        if dt > report.slowest[0]:
            report.slowest = (dt, blob, how)
        if kind is not None:
            assert note is not None
            note = f"iteration {i} of --seed {seed} ({how}): {note}\n"
            path = _save(crash_dir, kind, blob, note)
            report.findings.append((kind, path))
            report.outcomes[kind] += 1
            print(f"{note.rstrip()}\ninput saved to {path}", file=sys.stderr, flush=True)
            if not keep_going:
                break
            continue
        mode = "unchecked" if against is not None else "fixed"
        report.outcomes[f"{mode} {result.outcome}"] += 1
        if result.oracle == "streams":
            report.outcomes["unchecked ok: whole streams left out"] += 1
        if result.oracle == "empty":
            report.outcomes["unchecked ok: cut and damaged into the empty archive"] += 1
        if result.trailing:
            report.outcomes[f"{mode} ok with trailing data"] += 1
        if result.reader is not None:
            report.outcomes[f"reader {result.reader}"] += 1
            if result.reader == "ok" and result.outcome != "ok":
                report.outcomes["reader reads what decompress_stream refuses"] += 1
                note = f"iteration {i} of --seed {seed} ({how}): decoder {result.outcome}\n"
                _save(crash_dir, "reader-lenient", blob, note)
            if result.reader != "ok" and result.outcome == "ok":
                report.outcomes["reader refuses trailing data"] += 1
        if report_every and (i + 1) % report_every == 0:
            report.seconds = time.monotonic() - start
            print(f"[{i + 1}] {report.summary()}", flush=True)
    report.seconds = time.monotonic() - start
    if save_slowest is not None:
        save_slowest.write_bytes(report.slowest[1])
    return report


def run_plain(
    iterations: int,
    seed: int,
    crash_dir: Path,
    hidden: int = 16,
    timeout: float | None = 10.0,
    **kwargs: object,
) -> int:
    report = fuzz_loop(iterations, seed, crash_dir, build_model(hidden), timeout, **kwargs)  # type: ignore[arg-type]
    print(report.summary(), flush=True)
    return 1 if report.findings else 0


def replay(paths: list[Path], hidden: int, timeout: float | None) -> int:
    """Decode saved inputs again: outcome, time, or the traceback."""
    model = build_model(hidden)
    bad = 0
    for path in paths:
        blob = path.read_bytes()
        t0 = time.monotonic()
        try:
            with time_limit(timeout):
                r = run_one(blob, model, reader=True)
            what = (
                f"{r.outcome}, {len(r.output)} bytes written, {r.trailing} trailing bytes "
                f"ignored; reader {r.reader}"
            )
        except DecodeTimeout:
            what, bad = f"hang (over {timeout} s)", bad + 1
        except Exception:
            what, bad = "crash\n" + traceback.format_exc(), bad + 1
        print(f"{path}: {what} ({time.monotonic() - t0:.3f} s)", flush=True)
    return 1 if bad else 0


def run_atheris(argv: list[str], hidden: int) -> None:
    import atheris

    model = build_model(hidden)
    valid, crafted = loop_seeds(model)
    seeds = valid + crafted

    def test_one_input(data: bytes) -> None:
        run_one(clamp_block_sizes(data), model)
        run_one(fix_crcs(data), model)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if not data or rng.random() < 0.2:
            data = rng.choice(seeds)
        if rng.random() < 0.5:
            return mutate(data, rng, seeds, max_size)
        return atheris.Mutate(data, max_size)

    atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


# ----------------------------------------------------------------------------- crafted archives
#: Sizes of the crafted archives by scale: "light" ones seed the random loop (each within
#: the clamp where it can be, and a few KB at most), "test" ones are what the test suite
#: decodes (seconds each), "big" ones the script's --scale big (the largest blocks).
SCALES: dict[str, dict[str, int]] = {
    "light": {"bomb": 1024, "bound": 1024, "frames": 60, "table_data": 64},
    "test": {"bomb": 16 << 20, "bound": 64 << 10, "frames": 2000, "table_data": 64},
    "big": {"bomb": fmt.MAX_BLOCK, "bound": 1 << 20, "frames": 100_000, "table_data": 64 << 10},
}
_MiB = 1 << 20


@dataclass
class Crafted:
    """A hostile archive and what decoding it must do: end in one of ``expect`` ("ok",
    "FormatError", "ModelError") having written ``out_len`` bytes with CRC32 ``out_crc``
    (all of the output, or what comes before the error), within ``seconds`` and with at
    most ``memory`` bytes of peak resident memory above what the process held before.
    ``lookup``: "harness" (the harness's model only) or "zoo" (``zoo.model_for_archive``,
    with no model folders but the package's and the repository's); ``reader``: the
    outcomes ``ArchiveReader`` may have (None: not tried), which, if it reads the archive,
    must read the same bytes; ``seed``: also a seed of the random loop."""

    name: str
    blob: bytes
    expect: tuple[str, ...]
    out_len: int = 0
    out_crc: int = 0
    seconds: float = 5.0
    memory: int = 64 * _MiB
    lookup: str = "harness"
    reader: tuple[str, ...] | None = None
    seed: bool = True
    group: str = ""


_ZEROS = bytes(_MiB)


def crc_zeros(n: int, state: int = 0) -> int:
    """``zlib.crc32(bytes(n), state)`` without the bytes."""
    view = memoryview(_ZEROS)
    while n > 0:
        k = min(n, len(_ZEROS))
        state = zlib.crc32(view[:k], state)
        n -= k
    return state


def lzma_zeros(n: int, claimed: int, variant: int = 0) -> bytes:
    """A raw LZMA2 stream of ``n`` zero bytes that a block of ``claimed`` bytes with LZMA2
    variant ``variant`` decodes (its settings and dictionary; a fast preset: the decoder
    does not care which)."""
    filters = _lzma_filters(claimed, variant)
    filters[-1] = {**filters[-1], "preset": 1}
    comp = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=filters)
    parts, view = [], memoryview(_ZEROS)
    while n > 0:
        k = min(n, len(_ZEROS))
        parts.append(comp.compress(view[:k]))
        n -= k
    parts.append(comp.flush())
    return b"".join(parts)


@dataclass
class Blk:
    """A block to assemble: ``content`` is its decoded bytes, or their number if they are
    all zeros (the check is then right), or None (the check is 0: the block is garbage).
    ``param``: the segment count or LZMA2 variant (None: the default count, variant 0)."""

    method: int
    raw_len: int
    payload: bytes
    content: bytes | int | None = None
    param: int | None = None
    distance: int = 0  # a copy block's (``format.STORED_COPY``)


def assemble(
    header: fmt.Header, frames: list[list[Blk]], final: int = fmt.END_STREAM, index: bool = True
) -> tuple[bytes, list[fmt.FrameEntry]]:
    """A stream of ``frames`` with every check chained as format 1 says (blocks whose
    content is unknown get check 0), its last block coded ``final``; after END_INDEX, the
    true index unless ``index`` is False. Returns the bytes and the frames' index entries.
    Nothing is validated: any field the format allows in a header or block can be set."""
    hb = header.pack()
    out, entries, raw = [hb], [], 0
    for k, frame in enumerate(frames):
        prev = fmt.frame_seed(hb, k, raw)
        entry = fmt.FrameEntry(0, 0)
        for i, b in enumerate(frame):
            end = fmt.END_NONE
            if i == len(frame) - 1:
                end = final if k == len(frames) - 1 else fmt.END_FRAME
            param = b.param
            if param is None:
                param = fmt.segment_count(b.raw_len) if b.method in fmt.MODEL_METHODS else 0
            head = fmt.BlockHeader(
                b.method, b.raw_len, len(b.payload), param, end, distance=b.distance
            ).pack(header.block_size)
            state = zlib.crc32(head, prev)
            if isinstance(b.content, bytes):
                check = zlib.crc32(b.content, state)
            elif isinstance(b.content, int):
                check = crc_zeros(b.content, state)
            else:
                check = 0
            record = head + b.payload + fmt.CHECK.pack(check)
            out.append(record)
            entry.raw_len += b.raw_len
            entry.coded_len += len(record)
            prev = check
        entries.append(entry)
        raw += entry.raw_len
    blob = b"".join(out)
    if final == fmt.END_INDEX and index:
        blob += fmt.Index(len(hb), entries).pack()
    return blob, entries


def index_bytes(values: list[int], length_delta: int = 0, magic: bytes = fmt.INDEX_MAGIC) -> bytes:
    """An index of the varints ``values`` (count, header length, lengths) with a valid CRC,
    its length field off by ``length_delta``, and ``magic``."""
    body = b"".join(fmt.varint(v) for v in values)
    body += fmt.CHECK.pack(zlib.crc32(body))
    return body + (len(body) + length_delta).to_bytes(4, "little") + magic


def payload_bound(method: int, coded_len: int) -> int | None:
    """The most raw bytes this decoder lets a block of ``method`` claim from ``coded_len``
    payload bytes (``format.max_raw_len``; None: no bound but the block size)."""
    bound = getattr(fmt, "max_raw_len", None)
    return None if bound is None else bound(method, coded_len)


def _least_payload(method: int, raw_len: int) -> int:
    """The fewest payload bytes (whole words) from which a block may claim ``raw_len``."""
    c = 4
    while (payload_bound(method, c) or raw_len) < raw_len:
        c *= 2
    lo, hi = c // 2, c
    while hi - lo > 4:
        mid = (lo + hi) // 8 * 4
        if (payload_bound(method, mid) or raw_len) >= raw_len:
            hi = mid
        else:
            lo = mid
    return hi


def _bounds_of(header: fmt.Header, block: int) -> int:
    """Memory that decoding ``block``-byte blocks under ``header`` may take by design: the
    mixed method's tables at the header's block size and configuration (all of them: a
    byte touches 8 slots per context, on pages all over them), the block a few times over,
    LZMA2's dictionary, and 48 MiB for everything else."""
    from nncompress.adaptive import table_bits

    tb, mb = table_bits(header.block_size, header.config)
    tables = (len(header.config.contexts) << tb) * 8 + (8 << mb) + (18 * _MiB)
    return tables + 3 * block + min(block, 64 * _MiB) + 48 * _MiB


@dataclass
class _Ctx:
    model: IntModel
    scale: str

    @property
    def size(self) -> dict[str, int]:
        return SCALES[self.scale]

    @property
    def widest(self) -> int:
        """The block size of streams that ask for the largest tables (light seeds: the
        clamp's, which costs the coder that makes them no memory)."""
        return MAX_FUZZ_BLOCK if self.scale == "light" else fmt.MAX_BLOCK

    @property
    def ref(self) -> tuple[int, str]:
        return model_ref(self.model)

    def header(self, block_size: int, config: Config | None = None) -> fmt.Header:
        ref, prefix = self.ref
        if config is None:
            return fmt.Header(block_size, ref, prefix)
        return fmt.Header(block_size, ref, prefix, config)


def _crc(data: bytes) -> int:
    return zlib.crc32(data)


def _huge_claims(c: _Ctx) -> list[Crafted]:
    """A block claiming up to 2**28 raw bytes (format.MAX_BLOCK) from 100 payload bytes,
    for every method: refused at once, without the memory or time the claim asks for."""
    header = c.header(fmt.MAX_BLOCK)
    garbage = random.Random(6).randbytes(100)
    payloads = {
        fmt.METHOD_STORED: {"data": garbage},
        fmt.METHOD_LZMA: {"lzma": lzma_zeros(100, fmt.MAX_BLOCK), "garbage": garbage},
        fmt.METHOD_MODEL: {"random": garbage, "zeros": bytes(100)},
        fmt.METHOD_MIXED: {"random": garbage, "zeros": bytes(100)},
    }
    out = []
    for raw_len, tag in ((fmt.MAX_BLOCK, "full"), (fmt.MAX_BLOCK - 1, "short"), (_MiB, "1mib")):
        for method, named in payloads.items():
            for label, payload in named.items():
                blob, _ = assemble(header, [[Blk(method, raw_len, payload)]])
                name = f"huge-{fmt.METHOD_NAMES[method]}-{tag}-{label}"
                out.append(Crafted(name, blob, ("FormatError",)))
    for method in fmt.MODEL_METHODS:  # the fewest segments: a MiB each
        fewest = fmt.fewest_segments(fmt.MAX_BLOCK)
        blob, _ = assemble(header, [[Blk(method, fmt.MAX_BLOCK, bytes(100), param=fewest)]])
        out.append(Crafted(f"huge-{fmt.METHOD_NAMES[method]}-full-fewest", blob, ("FormatError",)))
    return out


#: Seconds per raw byte a model or mixed block may take to decode in the crafted cases
#: (the harness's tiny model decodes far faster; a loaded 2-core machine is slower).
_PER_BYTE = 50e-6

#: Seconds per MiB of tables a case's header makes the decoder touch for the first time.
#: On a virtual machine whose host takes back the memory a guest frees, the first touch
#: of fresh pages is a fault on the host too: touching the widest tables (~700 MiB of
#: them) took 0.1-0.3 s on an idle machine and 5-9 s late in the test suite on loaded
#: ones. The bound is there to catch loops that run on, not the host's paging.
_PER_TABLE_MIB = 20e-3


def _at_bound(c: _Ctx) -> list[Crafted]:
    """Model and mixed blocks of zero payload bytes, as few as may claim the block (all
    zeros is a valid range-coder input: it decodes to the end, then fails its check): the
    decoder's time is proportional to the claim, so this is the slowest a payload byte
    can make it. Past the bound (``format.max_raw_len``), refused at once."""
    n = c.size["bound"]
    out = []
    for method in fmt.MODEL_METHODS:
        name = fmt.METHOD_NAMES[method]
        least = _least_payload(method, n)
        header = c.header(n)
        blob, _ = assemble(header, [[Blk(method, n, bytes(least))]])
        out.append(
            Crafted(
                f"bound-{name}-{n}-from-{least}",
                blob,
                ("FormatError",),
                seconds=5 + n * _PER_BYTE,
                memory=_bounds_of(header, n),
            )
        )
        bound = payload_bound(method, least)
        if bound is not None and bound < fmt.MAX_BLOCK:
            blob, _ = assemble(c.header(fmt.MAX_BLOCK), [[Blk(method, bound + 1, bytes(least))]])
            out.append(
                Crafted(f"over-bound-{name}-{bound + 1}-from-{least}", blob, ("FormatError",))
            )
    return out


def _bombs(c: _Ctx) -> list[Crafted]:
    """LZMA2 of many zero bytes, as real ``lzma`` makes it, with correct checks: a valid
    archive that decodes (in memory proportional to the block size, not to the whole
    output), and ones whose claims lie about what the payload holds."""
    n = c.size["bomb"]
    q, small = n // 4, max(n // 16, 1)
    payload = lzma_zeros(n, n)
    quarter = lzma_zeros(q, q)
    zeros = crc_zeros(n)
    ok = ("ok",)
    whole = dict(out_len=n, out_crc=zeros, seconds=5 + n * 100e-9)
    out = [
        Crafted(
            f"bomb-lzma-{n}",
            assemble(fmt.Header(n), [[Blk(fmt.METHOD_LZMA, n, payload, n)]])[0],
            ok,
            memory=_bounds_of(fmt.Header(n), n),
            reader=ok,
            **whole,  # type: ignore[arg-type]
        ),
        Crafted(
            f"bomb-lzma-{n}-named-model",
            assemble(c.header(fmt.MAX_BLOCK), [[Blk(fmt.METHOD_LZMA, n, payload, n)]])[0],
            ok,
            memory=_bounds_of(c.header(fmt.MAX_BLOCK), n),
            **whole,  # type: ignore[arg-type]
        ),
        Crafted(
            f"bomb-lzma-4-blocks-of-{q}",
            assemble(fmt.Header(q), [[Blk(fmt.METHOD_LZMA, q, quarter, q)] * 4])[0],
            ok,
            memory=_bounds_of(fmt.Header(q), q),
            reader=ok,
            **whole,  # type: ignore[arg-type]
        ),
        Crafted(
            f"bomb-lzma-4-frames-of-{q}",
            assemble(fmt.Header(q), [[Blk(fmt.METHOD_LZMA, q, quarter, q)]] * 4, fmt.END_INDEX)[0],
            ok,
            memory=_bounds_of(fmt.Header(q), q),
            reader=ok,
            **whole,  # type: ignore[arg-type]
        ),
        Crafted(
            f"bomb-lzma-{n}-claims-{small}",
            assemble(fmt.Header(n), [[Blk(fmt.METHOD_LZMA, small, lzma_zeros(n, small), small)]])[
                0
            ],
            ("FormatError",),
            memory=_bounds_of(fmt.Header(n), small),
        ),
        Crafted(
            f"bomb-lzma-{small}-claims-{n - 1}",
            assemble(fmt.Header(n), [[Blk(fmt.METHOD_LZMA, n - 1, lzma_zeros(small, n - 1))]])[0],
            ("FormatError",),
            memory=_bounds_of(fmt.Header(n), n),
        ),
        Crafted(
            f"bomb-lzma-{n}-cut",
            assemble(fmt.Header(n), [[Blk(fmt.METHOD_LZMA, n, payload[: len(payload) // 2], n)]])[
                0
            ],
            ("FormatError",),
            memory=_bounds_of(fmt.Header(n), n),
        ),
    ]
    # Repeat blocks (``format.STORED_REPEAT``): a byte, or a period of 3 that does not
    # divide the block, repeated to the block size; and periods the block cannot hold.
    rep = fmt.STORED_REPEAT
    three = fmt.repeated(b"abc", n)
    for name, period, content, crc in (
        ("byte", b"\x00", n, zeros),
        ("period-3", b"abc", three, zlib.crc32(three)),
    ):
        out.append(
            Crafted(
                f"bomb-repeat-{name}-{n}",
                assemble(fmt.Header(n), [[Blk(fmt.METHOD_STORED, n, period, content, rep)]])[0],
                ok,
                out_len=n,
                out_crc=crc,
                seconds=whole["seconds"],
                memory=_bounds_of(fmt.Header(n), n),
                reader=ok,
            )
        )
    for label, period in (("period-of-the-block", bytes(small)), ("empty-period", b"")):
        blob = assemble(fmt.Header(n), [[Blk(fmt.METHOD_STORED, small, period, None, rep)]])[0]
        out.append(Crafted(f"bomb-repeat-{label}", blob, ("FormatError",)))
    # Copy blocks (``format.STORED_COPY``): three stored bytes copied to the block size
    # (a distance shorter than the block), and distances before the frame's start.
    cp, abc = fmt.STORED_COPY, b"abc"
    copy_frame = [Blk(fmt.METHOD_STORED, 3, abc, abc), Blk(fmt.METHOD_STORED, n, b"", three, cp, 3)]
    out.append(
        Crafted(
            f"bomb-copy-period-3-{n}",
            assemble(fmt.Header(n), [copy_frame])[0],
            ok,
            out_len=n + 3,
            out_crc=zlib.crc32(abc + three),
            seconds=whole["seconds"],
            memory=_bounds_of(fmt.Header(n), n),
            reader=ok,
        )
    )
    good = Blk(fmt.METHOD_STORED, 3, abc, abc)  # written before the bad copy is refused
    for label, frames, written in (
        ("first-block", [[Blk(fmt.METHOD_STORED, n, b"", None, cp, 1)]], b""),
        ("past-the-frame", [[good, Blk(fmt.METHOD_STORED, 8, b"", None, cp, 4)]], abc),
        ("other-frame", [[good], [Blk(fmt.METHOD_STORED, 8, b"", None, cp, 3)]], abc),
    ):
        blob = assemble(fmt.Header(n), frames)[0]
        out.append(
            Crafted(
                f"bomb-copy-{label}",
                blob,
                ("FormatError",),
                out_len=len(written),
                out_crc=zlib.crc32(written),
            )
        )
    return out


#: Valid configurations at the edges of what format 1 allows (a configuration has at most
#: 32 kinds: "highest" has the 32 highest ids, "reversed" the 32 lowest, so every kind is
#: in one of them).
_KINDS = sorted(contexts.NAMES)
BOUNDARY_CONFIGS = {
    "lowest": Config(
        contexts=(1,),
        mix_shifts=(8, 8, 8),
        final_shift=8,
        apm_rate=1,
        table_bits=12,
        match_bits=12,
        network_weight=0,
    ),
    "highest": Config(
        contexts=tuple(_KINDS[-32:]),
        mix_shifts=(24, 24, 24),
        final_shift=24,
        apm_rate=12,
        table_bits=22,
        match_bits=24,
        network_weight=65535,
    ),
    "reversed": Config(contexts=tuple(reversed(_KINDS[:32]))),
}


def _config_body(kinds: list[int], fixed: list[int]) -> bytes:
    *small, weight = fixed
    return bytes([len(kinds), *kinds, *small]) + weight.to_bytes(2, "little")


def bad_config_bodies() -> dict[str, bytes]:
    """Configurations written out that format 1 refuses, one field past its range each."""
    fixed = [14, 14, 13, 16, 6, 21, 22, 3 << 14]  # 3 mixer shifts, final, apm, tables, w0
    kinds = sorted(contexts.NAMES)
    out = {
        "no-contexts": _config_body([], fixed),
        "33-contexts": _config_body(list(range(1, 34)), fixed),
        "kind-0": _config_body([1, 0], fixed),
        "kind-unknown": _config_body([1, max(kinds) + 1], fixed),
        "kind-twice": _config_body([1, 2, 1], fixed),
        "too-long": _config_body([1, 2], fixed) + b"\x00",
        "too-short": _config_body([1, 2], fixed)[:-1],
        "preset-1-written-out": fmt.PRESETS[fmt.DEFAULT_PRESET].pack(),
        "length-255": bytes([255]) + bytes(254),
    }
    for i, (label, low, high) in enumerate(
        [
            ("mix-1", 8, 24),
            ("mix-2", 8, 24),
            ("mix-3", 8, 24),
            ("final", 8, 24),
            ("refinement", 1, 12),
            ("table-bits", 12, 22),
            ("match-bits", 12, 24),
        ]
    ):
        for value, side in ((low - 1, "low"), (high + 1, "high")):
            f = list(fixed)
            f[i] = value
            out[f"{label}-{side}"] = _config_body([1, 2], f)
    return out


def _headers(c: _Ctx) -> list[Crafted]:
    """Headers naming shipped models by number (unknown ones too), models by a hash no
    model has, and configurations at and past their bounds; the largest tables a header
    can ask for."""
    text = _text(200, 3)
    garbage = random.Random(7).randbytes(100)
    stored = [[Blk(fmt.METHOD_STORED, len(text), text, text)]]
    zoo, out = "zoo", []
    for number in (3, 14):  # registry numbers no release has given out
        header = fmt.Header(512, number)
        blob, _ = assemble(header, [[Blk(fmt.METHOD_MIXED, 400, garbage)]])
        out.append(Crafted(f"registry-{number}-mixed", blob, ("ModelError",), lookup=zoo))
        blob, _ = assemble(header, stored)
        ok = dict(out_len=len(text), out_crc=_crc(text), lookup=zoo)
        out.append(Crafted(f"registry-{number}-stored", blob, ("ok",), **ok))  # type: ignore[arg-type]
    for number in (1, 2):  # the shipped models: found (in the repository) or not
        blob, _ = assemble(fmt.Header(512, number), [[Blk(fmt.METHOD_MODEL, 400, garbage)]])
        out.append(
            Crafted(
                f"registry-{number}-model-garbage",
                blob,
                ("FormatError", "ModelError"),
                seconds=30,
                memory=256 * _MiB,
                lookup=zoo,
                seed=False,
            )
        )
    unknown = random.Random(8).randbytes(fmt.HASH_PREFIX).hex()
    header = fmt.Header(512, fmt.MODEL_HASH, unknown)
    blob, _ = assemble(header, [[Blk(fmt.METHOD_MIXED, 400, garbage)]])
    out.append(Crafted("hash-unknown-mixed", blob, ("ModelError",), seconds=30, lookup=zoo))
    blob, _ = assemble(header, stored)
    ok = dict(out_len=len(text), out_crc=_crc(text), lookup=zoo)
    out.append(Crafted("hash-unknown-stored", blob, ("ok",), **ok))  # type: ignore[arg-type]

    data = _text(600, 4)
    for label, config in BOUNDARY_CONFIGS.items():
        level = Level(f"fuzz-{label}", (fmt.METHOD_MIXED,), config=config)
        with _level(level.name, level) as name:
            blob = _compress(c.model, data, 300, name)  # two blocks: the header names it
        ok = dict(out_len=len(data), out_crc=_crc(data))
        out.append(Crafted(f"config-{label}", blob, ("ok",), **ok))  # type: ignore[arg-type]
    ref, prefix = c.ref
    for label, body in bad_config_bodies().items():
        cfg = bytes([len(body) & 0xFF]) + body
        blob = raw_header(512, ref, prefix, kind=fmt.CONFIG_INLINE, data=cfg)
        blob += assemble(fmt.Header(512), stored)[0][6:]  # (a block, never reached)
        out.append(Crafted(f"config-bad-{label}", blob, ("FormatError",)))

    widest = BOUNDARY_CONFIGS["highest"]
    header = c.header(c.widest, widest)
    blob, _ = assemble(header, [[Blk(fmt.METHOD_MIXED, 400, garbage)]])
    memory = _bounds_of(header, 400)
    touch = 5 + memory / _MiB * _PER_TABLE_MIB
    out.append(
        Crafted("widest-tables-garbage", blob, ("FormatError",), seconds=touch, memory=memory)
    )
    data = _text(c.size["table_data"], 5)
    blob = _mixed_stream(c, header, data)
    out.append(
        Crafted(
            f"widest-tables-{len(data)}",
            blob,
            ("ok",),
            len(data),
            _crc(data),
            seconds=touch + len(data) * _PER_BYTE * 10,
            memory=memory,
            seed=len(blob) < 4096,
        )
    )
    return out


def _mixed_payload(c: _Ctx, header: fmt.Header, data: bytes) -> bytes:
    """The payload of a frame's first block, ``data`` coded by the mixed method under
    ``header`` (any block size and configuration, which the encoder's API would not let a
    small input have), in the default number of segments."""
    from nncompress.adaptive import StreamState
    from nncompress.coder import encode_block_mixed

    segments = fmt.segment_count(len(data))
    state = StreamState(header.config, header.block_size)
    return encode_block_mixed(c.model, data, state, None, segments, False)[0]


def _mixed_stream(c: _Ctx, header: fmt.Header, data: bytes) -> bytes:
    """A stream of one mixed block of ``data`` under ``header``."""
    payload = _mixed_payload(c, header, data)
    return assemble(header, [[Blk(fmt.METHOD_MIXED, len(data), payload, data)]])[0]


def _trailing(c: _Ctx) -> list[Crafted]:
    """Valid streams followed by zero padding or garbage: refused after the stream's bytes
    have been written (and by the reader)."""
    text = _text(300, 6)
    single = _compress(c.model, text, 300)
    chunks = [text[i : i + 64] for i in range(0, len(text), 64)]
    frames = [[Blk(fmt.METHOD_STORED, len(x), x, x)] for x in chunks]
    framed, _ = assemble(fmt.Header(64), frames, fmt.END_INDEX)
    rng = random.Random(9)
    either = ("ok", "FormatError")
    tails = {
        "zeros-1": bytes(1),
        "zeros-3": bytes(3),
        "zeros-4": bytes(4),
        "zeros-6": bytes(6),
        "zeros-512": bytes(512),
        "garbage": rng.randbytes(64),
        "magic": fmt.MAGIC,
        "magic-start": fmt.MAGIC[:2],
        "magic-descriptor": fmt.MAGIC + b"\x00",
        "pre-release-magic": fmt.PRE_RELEASE_MAGIC + bytes(8),
        "format-2": b"NNC\x02" + bytes(8),
        "half-a-stream": single[: len(single) // 2],
        "empty-index": fmt.Index(6, []).pack(),
    }
    out = []
    for base_name, base in (("stream", single), ("framed", framed)):
        for label, tail in tails.items():
            # Bytes that cannot begin a stream may be ignored as trailing data (as gzip
            # does) or refused; bytes that begin like one ("NNC") are a stream, refused.
            expect = ("FormatError",) if tail.startswith(b"NNC"[: len(tail)]) else either
            out.append(
                Crafted(
                    f"trailing-{label}-after-{base_name}",
                    base + tail,
                    expect,
                    len(text),
                    _crc(text),
                    reader=either,
                )
            )
        out.append(
            Crafted(
                f"trailing-empty-stream-after-{base_name}",
                base + fmt.Header(0).pack(),
                ("ok",),
                len(text),
                _crc(text),
                reader=("ok",),
            )
        )
    return out


def _tiny_frames(c: _Ctx) -> list[Crafted]:
    """Many frames of one byte each (a stream's per-frame cost: fresh statistics, a frame
    seed, an index entry), many empty streams."""
    k = c.size["frames"]
    content = bytes((i * 7) % 256 for i in range(k))
    frames = [[Blk(fmt.METHOD_STORED, 1, content[i : i + 1], content[i : i + 1])] for i in range(k)]
    ok = dict(out_len=k, out_crc=_crc(content), seconds=5 + k * 1e-3)
    m = max(k // 40, 6)
    wide = c.header(c.widest)
    one_mixed = Blk(fmt.METHOD_MIXED, 1, _mixed_payload(c, wide, b"e"), b"e", 1)
    out = [
        Crafted(
            f"tiny-frames-{k}",
            assemble(fmt.Header(1), frames, fmt.END_INDEX)[0],
            ("ok",),
            reader=("ok",),
            **ok,  # type: ignore[arg-type]
        ),
        # Several frames, no index: format 1 says a writer adds one; readers need not.
        Crafted(
            f"tiny-frames-{k}-no-index",
            assemble(fmt.Header(1), frames, fmt.END_STREAM)[0],
            ("ok", "FormatError"),
            reader=("ok", "FormatError"),
            **ok,  # type: ignore[arg-type]
        ),
        # Each frame of a stream of 2**28-byte blocks that names a model.
        Crafted(
            f"tiny-frames-{k}-widest-header",
            assemble(c.header(fmt.MAX_BLOCK), frames, fmt.END_INDEX)[0],
            ("ok",),
            reader=("ok",),
            **ok,  # type: ignore[arg-type]
        ),
        # Each frame one mixed byte in a stream of 2**28-byte blocks: fresh statistics,
        # as large as that block size makes them, for every byte.
        Crafted(
            f"tiny-mixed-frames-{m}-widest-header",
            assemble(wide, [[one_mixed]] * m, fmt.END_INDEX)[0],
            ("ok",),
            m,
            _crc(b"e" * m),
            seconds=5 + m * 0.1,
            memory=_bounds_of(wide, 1),
            reader=("ok",),
        ),
        Crafted(
            f"empty-streams-{k}",
            fmt.Header(0).pack() * k,
            ("ok",),
            reader=("ok",),
            seconds=5 + k * 1e-3,
        ),
    ]
    return out


def _lying_indexes(c: _Ctx) -> list[Crafted]:
    """Indexes with a valid CRC and footer that misdescribe their stream (and an index
    after a stream that says none follows, one missing, one damaged in its footer): the
    decoder refuses each after writing the frames, and the reader never reads other
    bytes."""
    t1, t2 = _text(100, 7), _text(50, 8)
    header = fmt.Header(512)
    frames = [
        [Blk(fmt.METHOD_STORED, 100, t1, t1)],
        [Blk(fmt.METHOD_LZMA, 300, lzma_zeros(300, 300), 300)],
        [Blk(fmt.METHOD_STORED, 50, t2, t2)],
    ]
    body, entries = assemble(header, frames, fmt.END_INDEX, index=False)
    content = t1 + bytes(300) + t2
    hl = len(header.pack())
    true = [(e.raw_len, e.coded_len) for e in entries]

    def values(es: list[tuple[int, int]], count: int | None = None, hl: int = hl) -> list[int]:
        return [len(es) if count is None else count, hl] + [v for e in es for v in e]

    moved = [(true[0][0] - 100, true[0][1]), (true[1][0] + 100, true[1][1]), true[2]]
    lies = {
        "count-more": values(true + [(1, 1)]),
        "count-fewer": values(true[:-1]),
        "raw-length": values([true[0], (true[1][0] + 1, true[1][1]), true[2]]),
        "coded-length": values([(true[0][0], true[0][1] - 1), *true[1:]]),
        "length-moved": values(moved),
        "header-length": values(true, hl=hl + 1),
        "header-length-huge": values(true, hl=60000),
        "swapped": values(true[::-1]),
        "huge-raw": values([*true[:2], (1 << 62, true[2][1])]),
        "huge-count": values(true, count=1 << 40),
        "zero-count": values([]),
    }
    fe = ("FormatError",)
    written = dict(out_len=len(content), out_crc=_crc(content))
    out = [
        Crafted(f"index-{label}", body + index_bytes(v), fe, reader=fe, **written)  # type: ignore[arg-type]
        for label, v in lies.items()
    ]
    out.append(
        Crafted(
            "index-footer-length",
            body + index_bytes(values(true), length_delta=1),
            fe,
            reader=fe,
            **written,  # type: ignore[arg-type]
        )
    )
    out.append(
        Crafted(
            "index-footer-magic",
            body + index_bytes(values(true), magic=b"NNCj"),
            fe,
            reader=fe,
            **written,  # type: ignore[arg-type]
        )
    )
    out.append(Crafted("index-missing", body, fe, reader=fe, **written))  # type: ignore[arg-type]
    glued, _ = assemble(header, frames, fmt.END_STREAM)
    out.append(
        Crafted(
            "index-after-a-stream-without-one",
            glued + fmt.Index(hl, entries).pack(),
            ("ok", "FormatError"),  # (trailing data to a decoder that ignores it)
            reader=("ok", "FormatError"),
            **written,  # type: ignore[arg-type]
        )
    )
    return out


def _damaged_headers(c: _Ctx) -> list[Crafted]:
    """Stream headers damaged without recomputing anything (a header has no check of its
    own; frames' checks start from its bytes): a block size turned to 0, which makes an
    empty stream of it and leaves its blocks behind it; a later stream's magic damaged.
    Either must be refused (after the streams before it are written): the blocks left
    behind are not trailing data to ignore."""
    text, more = _text(300, 10), _text(200, 11)
    first, second = _compress(c.model, text, 300), _compress(c.model, more, 200)
    header, raw = fmt.read_header(io.BytesIO(first))
    size = fmt.varint(header.block_size)
    emptied = raw[: -len(size)] + b"\x00" + first[len(raw) :]
    flipped = bytes([second[0] ^ 1]) + second[1:]
    fe = ("FormatError",)
    return [
        Crafted("block-size-zeroed", emptied, fe),
        Crafted("second-block-size-zeroed", first + emptied, fe, len(text), _crc(text)),
        Crafted("second-magic-damaged", first + flipped, fe, len(text), _crc(text)),
        Crafted("second-magic-cut", first + second[1:], fe, len(text), _crc(text)),
    ]


def _zeroed_streams(c: _Ctx) -> list[Crafted]:
    """Streams cut or zeroed right after their header's descriptor and model reference,
    as a write that stopped early leaves a file (its tail never written, or zero-filled):
    the block size reads 0, an empty stream, which has no check, and then zeros, which
    look like padding. Each must be refused: nothing says the stream was meant empty
    (an encoder writes an empty stream as 4E 4E 43 01 00 00, naming no model)."""
    text = _text(300, 12)
    named = _compress(c.model, text, 300)
    plain = _compress(c.model, random.Random(13).randbytes(300), 300)  # stored: no model
    out = []
    for label, blob in (("named-model", named), ("no-model", plain)):
        header, raw = fmt.read_header(io.BytesIO(blob))
        at = len(raw) - len(fmt.varint(header.block_size))
        fe = ("FormatError",)
        out.append(Crafted(f"zeroed-after-header-{label}", raw[:at] + bytes(len(blob) - at), fe))
        if header.model:
            out.append(Crafted(f"cut-to-empty-header-{label}", raw[:at] + b"\x00", fe))
    return out


#: The crafted archives by group (``crafted_archives``).
CRAFTED_GROUPS: dict[str, Callable[[_Ctx], list[Crafted]]] = {
    "huge-claims": _huge_claims,
    "at-bound": _at_bound,
    "lzma-bombs": _bombs,
    "headers": _headers,
    "trailing": _trailing,
    "tiny-frames": _tiny_frames,
    "lying-indexes": _lying_indexes,
    "damaged-headers": _damaged_headers,
    "zeroed-streams": _zeroed_streams,
}


def crafted_archives(
    model: IntModel, scale: str = "test", groups: list[str] | None = None
) -> list[Crafted]:
    """The hostile archives of ``groups`` (default all of CRAFTED_GROUPS) at ``scale``
    (SCALES), made for ``model``, which their model-coded blocks name."""
    ctx = _Ctx(model, scale)
    out = []
    for group in groups or list(CRAFTED_GROUPS):
        for case in CRAFTED_GROUPS[group](ctx):
            case.group = group
            if scale == "light":
                case.seed = case.seed and len(case.blob) <= 8192
            out.append(case)
    return out


# ----------------------------------------------------------------------------- measuring
class _Sink:
    """A destination that keeps only the length and CRC32 of what is written (so that the
    memory measured is the decoder's, not the output's)."""

    def __init__(self) -> None:
        self.n = self.crc = 0

    def write(self, data: bytes) -> int:
        self.n += len(data)
        self.crc = zlib.crc32(data, self.crc)
        return len(data)


def _rss_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field_name}:\s+(\d+) kB", f.read(), re.M)
    assert m is not None
    return int(m.group(1))


class _Peak:
    """Peak memory of a stretch of code: resident memory (Linux: the high-water mark,
    reset through /proc/self/clear_refs, less what was resident before), else what
    tracemalloc saw allocated (numpy's arrays included, but not liblzma's buffers)."""

    def __enter__(self) -> _Peak:
        self.peak: int | None = None
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.base = _rss_kib("VmRSS")
            self.how = "rss"
        except OSError:
            import tracemalloc

            tracemalloc.start()
            self.how = "tracemalloc"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.how == "rss":
            self.peak = (_rss_kib("VmHWM") - self.base) * 1024
        else:
            import tracemalloc

            self.peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()


def _measure_one(
    path: Path, get_model: Callable[[fmt.Header], IntModel], limit: float, reader: bool
) -> dict[str, object]:
    r: dict[str, object] = {}
    for threads in (1, 0):
        if r.get("outcome") == "hang":  # (once is enough to know)
            r["threads0"] = {k: r[k] for k in ("outcome", "message", "out_len", "out_crc")}
            return r
        sink, message, info = _Sink(), "", None
        gc.collect()
        with _Peak() as peak:
            t0 = time.perf_counter()
            try:
                with time_limit(limit), open(path, "rb") as f:
                    info = decompress_stream(f, sink, get_model, threads=threads)
                outcome = "ok"
            except ALLOWED as e:
                outcome, message = _kind(e), str(e)[:300]
            except DecodeTimeout:
                outcome, message = "hang", f"over {limit} s"
            except Exception:
                outcome, message = "crash", traceback.format_exc()
        got = {
            "outcome": outcome,
            "message": message,
            "seconds": round(time.perf_counter() - t0, 4),
            "memory": peak.peak,
            "out_len": sink.n,
            "out_crc": sink.crc,
            "trailing": trailing(info),
        }
        if threads == 1:  # measured on one thread: all of it in this process
            r.update(got, memory_by=peak.how)
        else:
            r["threads0"] = got
    if reader:
        from nncompress.reader import ArchiveReader

        sink, message = _Sink(), ""
        t0 = time.perf_counter()
        try:
            with time_limit(limit), open(path, "rb") as f:
                r_ = ArchiveReader(f, get_model)
                while chunk := r_.read(1 << 20):
                    sink.write(chunk)
            outcome = "ok"
        except ALLOWED as e:
            outcome, message = _kind(e), str(e)[:300]
        except DecodeTimeout:
            outcome, message = "hang", f"over {limit} s"
        except Exception:
            outcome, message = "crash", traceback.format_exc()
        r["reader"] = {
            "outcome": outcome,
            "message": message,
            "seconds": round(time.perf_counter() - t0, 4),
            "out_len": sink.n,
            "out_crc": sink.crc,
        }
    return r


def _measure_dir(folder: Path) -> int:
    """The subprocess side of ``measure``: decode every case listed in
    ``folder/cases.json``, write ``folder/results.json``."""
    spec = json.loads((folder / "cases.json").read_text())
    if spec.get("model"):
        from nncompress.zoo import load_model

        model = load_model(spec["model"])
    else:
        model = build_model(spec.get("hidden", 16))
    harness = lookup_for(model)

    def zoo_lookup(h: fmt.Header) -> IntModel:
        from nncompress.zoo import model_for_archive

        return model_for_archive(h.model, h.model_prefix)

    # Warm up (imports, first allocations) on a small archive of every method.
    warm = _compress(model, _text(3000) + bytes(3000) + random.Random(1).randbytes(500), 1000)
    decompress_stream(io.BytesIO(warm), io.BytesIO(), harness, threads=1)
    results = {}
    for case in spec["cases"]:
        get = harness if case["lookup"] == "harness" else zoo_lookup
        limit = max(3 * case["seconds"], 10.0) + 10.0
        results[case["name"]] = _measure_one(
            folder / case["file"], get, limit, case["reader"] is not None
        )
    (folder / "results.json").write_text(json.dumps(results, indent=1))
    return 0


def measure(
    cases: list[Crafted], folder: Path, model_spec: str | None = None, hidden: int = 16
) -> dict[str, dict]:
    """Decode ``cases`` unclamped in a fresh Python process (on one thread, then with the
    default thread count; and through ArchiveReader where the case says), each measured
    for time and peak memory; returns the results by case name. ``folder``: where the
    archives are written (and kept). The model is ``zoo.load_model(model_spec)``, or the
    harness's ``build_model(hidden)``: the one the cases were made for."""
    folder.mkdir(parents=True, exist_ok=True)
    listed = []
    for i, case in enumerate(cases):
        name = f"{i:03d}-{case.name}.nnc"
        (folder / name).write_bytes(case.blob)
        listed.append({**asdict(case), "blob": None, "file": name})
    spec = {"model": model_spec, "hidden": hidden, "cases": listed}
    (folder / "cases.json").write_text(json.dumps(spec, indent=1))
    env = dict(os.environ)
    models = folder / "no-models"
    models.mkdir(exist_ok=True)
    env.update(NNCOMPRESS_MODELS=str(models), XDG_DATA_HOME=str(folder / "xdg"))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    budget = sum(max(3 * c.seconds, 10.0) + 10.0 for c in cases) * 3 + 120
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure", str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=budget,
    )
    if proc.returncode:
        raise RuntimeError(f"the measuring process failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads((folder / "results.json").read_text())


def judge(case: Crafted, r: dict) -> list[str]:
    """What in ``r`` (``measure``'s result for ``case``) breaks the case's promises."""
    problems = []
    if r["outcome"] not in case.expect:
        problems.append(f"{r['outcome']} ({r['message'].strip()}), not {'/'.join(case.expect)}")
    if (r["out_len"], r["out_crc"]) != (case.out_len, case.out_crc):
        problems.append(f"wrote {r['out_len']} bytes, not the {case.out_len} expected")
    if r["seconds"] > case.seconds:
        problems.append(f"took {r['seconds']:.2f} s (bound {case.seconds:.1f} s)")
    if r["memory"] is not None and r["memory"] > case.memory:
        problems.append(
            f"peak memory {r['memory'] / _MiB:.0f} MiB (bound {case.memory / _MiB:.0f})"
        )
    t0 = r["threads0"]
    if (t0["outcome"], t0["out_len"], t0["out_crc"]) != (r["outcome"], r["out_len"], r["out_crc"]):
        problems.append(
            f"with the default thread count: {t0['outcome']} ({t0['message'].strip()}), "
            f"{t0['out_len']} bytes"
        )
    reader = r.get("reader")
    if case.reader is not None and reader is not None:
        if reader["outcome"] not in case.reader:
            problems.append(
                f"ArchiveReader: {reader['outcome']} ({reader['message'].strip()}), "
                f"not {'/'.join(case.reader)}"
            )
        got = (reader["out_len"], reader["out_crc"])
        if reader["outcome"] == "ok" and got != (case.out_len, case.out_crc):
            problems.append(f"ArchiveReader reads {reader['out_len']} other bytes")
    return problems


def run_crafted(scale: str, keep: Path | None, model_spec: str | None, hidden: int) -> int:
    """The --crafted mode: make, measure and judge every crafted archive; a table."""
    if model_spec:
        from nncompress.zoo import load_model

        model = load_model(model_spec)
    else:
        model = build_model(hidden)
    t0 = time.monotonic()
    cases = crafted_archives(model, scale)
    print(f"{len(cases)} crafted archives made in {time.monotonic() - t0:.1f}s", flush=True)
    with contextlib.ExitStack() as stack:
        folder = keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        results = measure(cases, folder, model_spec, hidden)
    bad = 0
    print(f"{'case':48} {'bytes':>9} {'outcome':12} {'s':>7} {'MiB':>6}  reader")
    for case in cases:
        r = results[case.name]
        problems = judge(case, r)
        bad += bool(problems)
        mem = "-" if r["memory"] is None else f"{r['memory'] / _MiB:.0f}"
        reader = r.get("reader", {}).get("outcome", "")
        print(
            f"{case.name:48} {len(case.blob):9} {r['outcome']:12} {r['seconds']:7.2f} "
            f"{mem:>6}  {reader}"
        )
        for p in problems:
            print(f"    PROBLEM: {p}")
    print(f"{len(cases) - bad} of {len(cases)} as promised", flush=True)
    return 1 if bad else 0


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--plain",
        action="store_true",
        help="use the random-mutation loop even if atheris is importable",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=10000,
        help="inputs to try in the plain loop (default 10000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the plain loop")
    parser.add_argument(
        "--crash-dir",
        type=Path,
        default=Path("fuzz-crashes"),
        help="where the plain loop saves an input that breaks a promise",
    )
    parser.add_argument("--hidden", type=int, default=16, help="width of the test model")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds an input may take before it counts as a hang (default 10; 0: none)",
    )
    parser.add_argument(
        "--unchecked",
        type=float,
        default=0.3,
        help="share of inputs damaged without recomputing checks (default 0.3)",
    )
    parser.add_argument(
        "--reader",
        type=float,
        default=0.25,
        help="share of inputs also read through ArchiveReader (default 0.25)",
    )
    parser.add_argument(
        "--keep-going", action="store_true", help="save findings and go on (exit 1 at the end)"
    )
    parser.add_argument(
        "--report-every", type=int, default=0, help="print a summary every N inputs"
    )
    parser.add_argument("--save-slowest", type=Path, help="write the slowest input here")
    parser.add_argument(
        "--crafted", action="store_true", help="decode the crafted hostile archives, measured"
    )
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="test",
        help="sizes of the crafted archives (big: 256 MiB bombs, 100,000 frames)",
    )
    parser.add_argument("--keep", type=Path, help="keep the crafted archives in this folder")
    parser.add_argument("--model", help="craft for this model (a name or path) instead")
    parser.add_argument("--replay", type=Path, nargs="+", help="decode saved inputs again")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv[1:])
    timeout = args.timeout or None
    if args.measure:
        return _measure_dir(args.measure)
    if args.crafted:
        return run_crafted(args.scale, args.keep, args.model, args.hidden)
    if args.replay:
        return replay(args.replay, args.hidden, timeout)
    try:
        import atheris  # noqa: F401
    except ImportError:
        have_atheris = False
    else:
        have_atheris = True
    if have_atheris and not args.plain:
        run_atheris([argv[0], *rest], args.hidden)
        return 0
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)} (libFuzzer flags need atheris)")
    return run_plain(
        args.iterations,
        args.seed,
        args.crash_dir,
        args.hidden,
        timeout,
        unchecked=args.unchecked,
        reader=args.reader,
        keep_going=args.keep_going,
        report_every=args.report_every,
        save_slowest=args.save_slowest,
    )


if __name__ == "__main__":
    sys.exit(main())
