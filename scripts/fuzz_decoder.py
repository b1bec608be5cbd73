#!/usr/bin/env python3
"""Fuzz target for the ``.nnc`` decoder: whatever bytes it is given, ``decompress_stream`` (and
``list_stream``) may only succeed or raise ``FormatError``/``ModelError``. Any other exception
is a crash a user would see as a traceback, and this harness reports it.

Two engines:

* atheris (libFuzzer, coverage guided), when it is importable::

      python scripts/fuzz_decoder.py [libFuzzer flags, e.g. -runs=100000 -max_len=4096]

* otherwise (or with ``--plain``) a seeded random-mutation loop::

      python scripts/fuzz_decoder.py --plain --iterations 20000 --seed 1

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
frame's number and its offset in the stream's decoded bytes.)

A block's check is CRC32 over its header bytes and its *decoded* bytes, chained through the
frame from the frame's seed, so recomputing it needs the decoded bytes. Stored blocks hold
them; LZMA blocks are decoded here; for model and mixed blocks the harness keeps the CRC32
of the decoded bytes that the check it found implies (CRC32 is affine in its initial
value), so a block whose header, neighbours, stream header or frame number changed gets the
check its unchanged content needs.

Every input is also clamped (``clamp_block_sizes``): a header's block size above
``MAX_FUZZ_BLOCK`` is cut down. A model block's decoding time is proportional to the raw
length it claims (one model step per byte per segment), whatever the size of its payload,
and a "full" block is as long as the header's block size: a fuzzer that asks for 2**28-byte
blocks would spend hours on a single input. The clamp keeps every input to milliseconds.
(A size above it becomes ``size % MAX_FUZZ_BLOCK + 1``.)

The test suite runs the same functions for a bounded number of examples
(``tests/test_format.py``); the model is a tiny random-weight GRU, built here with numpy.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import random
import sys
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from nncompress import contexts
from nncompress import format as fmt
from nncompress.config import Config
from nncompress.engine import _lzma_decompress, compress_stream, decompress_stream, list_stream
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


# ----------------------------------------------------------------------------- model, seeds
def build_model(hidden: int = 16, layers: int = 1, seed: int = 0) -> IntModel:
    """A small random-weight integer model whose output favours lowercase text."""
    from safetensors.numpy import save

    rng = np.random.default_rng(seed)
    h = hidden
    head_b = np.full(256, -8.0)
    head_b[np.frombuffer(b" etaoinshrdlu", dtype=np.uint8)] = 0.0
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
    raw = save(dict(sorted(tensors.items())), metadata=meta)
    return IntModel.from_tensors(tensors, meta, sha256=hashlib.sha256(raw).hexdigest())


@contextlib.contextmanager
def _level(name: str, level: Level) -> Iterator[str]:
    """``level`` registered under ``name`` for the duration (compress_stream takes levels
    by name; the seeds need one with a configuration that is not a preset)."""
    LEVELS[name] = level
    try:
        yield name
    finally:
        del LEVELS[name]


def seed_archives(model: IntModel) -> list[bytes]:
    """Valid archives covering every block method, both model references a test model can
    have (none, hash prefix), an inline configuration, every way a block gives its segment
    count (the default, the fewest, a varint), empty streams, several frames with an index,
    and concatenation."""
    rng = np.random.default_rng(1)
    text = bytes(rng.choice(list(b" etaoinshrdlu"), 300).astype(np.uint8))
    noise = rng.integers(0, 256, 200, dtype=np.uint8).tobytes()
    more_text = bytes(rng.choice(list(b" etaoinshrdlu"), 768).astype(np.uint8))

    def make(data: bytes, block: int, level: str = "default", frame: int = 1 << 24) -> bytes:
        out = io.BytesIO()
        compress_stream(io.BytesIO(data), out, model, block, level, frame_size=frame)
        return out.getvalue()

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
        make(bytes(300), 256),
        make(noise * 2, 400),  # noise, then the same noise again: LZMA2 wins
        make(noise, 64),  # stored blocks in a stream that names the model
        inline_seed,  # mixed blocks under an inline configuration, 2 frames
        make(more_text[:600], 600, "max"),  # --max: one segment, the fewest (default: two)
        given_seed,  # a model block of 768 bytes in 2 segments: an explicit count
    ]
    seeds.append(seeds[2] + seeds[5])
    seeds.append(seeds[3] + seeds[0] + seeds[1])
    return seeds


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


def _raw_crc(bh: fmt.BlockHeader, head: bytes, payload: bytes, check: int, prev: int) -> int | None:
    """The CRC32 of a block's decoded bytes: of the payload for stored blocks, of the
    decoded payload for LZMA blocks that decode, else the one that ``check`` implies."""
    if bh.method == fmt.METHOD_STORED:
        return zlib.crc32(payload)
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
    kinds = rng.sample(sorted(contexts.NAMES), rng.randint(1, len(contexts.NAMES)))
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
        ref = b""
        if model == fmt.MODEL_HASH:
            ref = bytes.fromhex(h.model_prefix or "00" * fmt.HASH_PREFIX)
        s.header_bytes = (
            fmt.MAGIC
            + bytes([model | fmt.CONFIG_INLINE << 4])
            + ref
            + bytes([len(body)])
            + body
            + fmt.varint(h.block_size)
        )
        return
    # A well-formed header with another model reference or configuration.
    model, prefix, config = h.model, h.model_prefix, h.config
    if choice == 3:
        model = rng.choice([fmt.MODEL_NONE, 1, 2, 3, 14, fmt.MODEL_HASH])
        if model == fmt.MODEL_HASH and (not prefix or rng.random() < 0.5):
            prefix = rng.randbytes(fmt.HASH_PREFIX).hex()
        elif model != fmt.MODEL_HASH:
            prefix = ""
    else:
        config = _random_config(rng) if rng.random() < 0.8 else fmt.PRESETS[fmt.DEFAULT_PRESET]
    s.header_bytes = fmt.Header(h.block_size, model, prefix, config).pack()
    if rng.random() < 0.2 and model != fmt.MODEL_NONE:  # a preset number nobody released
        hb = bytearray(fmt.Header(h.block_size, model, prefix).pack())
        hb[4] |= fmt.CONFIG_PRESET << 4
        at = 5 + (fmt.HASH_PREFIX if model == fmt.MODEL_HASH else 0)
        hb[at:at] = bytes([rng.choice([0, 2, 255])])
        s.header_bytes = bytes(hb)


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
            b.raw_crc = zlib.crc32(b.payload)
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


# ----------------------------------------------------------------------------- the target
def lookup_for(model: IntModel) -> Callable[[fmt.Header], IntModel]:
    def get(header: fmt.Header) -> IntModel:
        if model_ref(model) != (header.model, header.model_prefix):
            raise ModelError(f"archive needs {describe_ref(header.model, header.model_prefix)}")
        return model

    return get


def check_one(blob: bytes, model: IntModel) -> str:
    """Decode (and list) ``blob``. Returns the outcome: "ok", "FormatError" or "ModelError"
    (also for their subclasses, such as ``TruncatedError``); any other exception propagates
    -- that is the bug this harness looks for."""
    try:
        list_stream(io.BytesIO(blob))
    except fmt.FormatError:
        pass
    try:
        decompress_stream(io.BytesIO(blob), io.BytesIO(), lookup_for(model))
    except ALLOWED as e:
        return next(kind.__name__ for kind in ALLOWED if isinstance(e, kind))
    return "ok"


def run_plain(iterations: int, seed: int, crash_dir: Path, hidden: int) -> int:
    model = build_model(hidden)
    seeds = seed_archives(model)
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    slowest = (0.0, b"")
    start = time.monotonic()
    for i in range(iterations):
        blob = mutate(rng.choice(seeds), rng, seeds)
        t0 = time.monotonic()
        try:
            outcomes[check_one(blob, model)] += 1
        except Exception:
            crash_dir.mkdir(parents=True, exist_ok=True)
            path = crash_dir / f"crash-{hashlib.sha256(blob).hexdigest()[:16]}.nnc"
            path.write_bytes(blob)
            traceback.print_exc()
            print(f"iteration {i}: unexpected exception; input saved to {path}", file=sys.stderr)
            return 1
        dt = time.monotonic() - t0
        if dt > slowest[0]:
            slowest = (dt, blob)
    elapsed = time.monotonic() - start
    summary = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    print(
        f"{iterations} inputs in {elapsed:.1f}s ({summary}); slowest input "
        f"{slowest[0] * 1e3:.1f} ms, {len(slowest[1])} bytes; no unexpected exception"
    )
    return 0


def run_atheris(argv: list[str], hidden: int) -> None:
    import atheris

    model = build_model(hidden)
    seeds = seed_archives(model)

    def test_one_input(data: bytes) -> None:
        check_one(clamp_block_sizes(data), model)
        check_one(fix_crcs(data), model)

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if not data or rng.random() < 0.2:
            data = rng.choice(seeds)
        if rng.random() < 0.5:
            return mutate(data, rng, seeds, max_size)
        return atheris.Mutate(data, max_size)

    atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


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
        help="where the plain loop saves a crashing input",
    )
    parser.add_argument("--hidden", type=int, default=16, help="width of the test model")
    args, rest = parser.parse_known_args(argv[1:])
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
    return run_plain(args.iterations, args.seed, args.crash_dir, args.hidden)


if __name__ == "__main__":
    sys.exit(main())
