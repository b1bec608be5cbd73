"""The ``.nnc`` container, format 1: stream header, blocks, frames and the index.

docs/FORMAT.md is the byte-level spec. This module knows bytes and checks only; how a
block's payload is coded is the business of ``engine.py`` and ``coder.py``.

The framing is small because small files and records are where users feel it: a stream of
one block costs 10 bytes plus its lengths (6 for empty input, 12 for one byte). Fields are
varints, the model is named by a registry number or 4 bytes of its SHA-256, and each block
carries one CRC32 that chains the frame's block headers and content, so damage, truncation
and reordering are caught at the block where they happen.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from .config import DEFAULT_PRESET, PRESETS, Config, ConfigError, preset_of
from .errors import NNCError

#: "NNC" and the format number: a reader refuses other numbers with a clear message.
MAGIC = b"NNC\x01"
FORMAT = 1
#: What the pre-release formats (retired before format 1) started with.
PRE_RELEASE_MAGIC = b"NNC\x1a"
#: The end of a stream's index: the index's length (u32) and this.
INDEX_MAGIC = b"NNCi"
#: The largest raw block any decoder accepts (bounds decoder memory).
MAX_BLOCK = 1 << 28

METHOD_STORED = 0
METHOD_MODEL = 1
METHOD_LZMA = 2
METHOD_MIXED = 3
METHOD_NAMES = {
    METHOD_STORED: "stored",
    METHOD_MODEL: "model",
    METHOD_LZMA: "lzma",
    METHOD_MIXED: "mixed",
}
#: A stored block whose descriptor has bit 5 (its ``param`` 1) holds one period of its
#: bytes, which repeat to its raw length: a run of one byte, a fill pattern, a line said
#: over and over, in a few bytes where LZMA2 takes some 200 a MiB (zstd's RLE blocks,
#: for any period). Readers of format 1 before it refuse the bit ("unknown block flags").
STORED_REPEAT = 1
REPEAT_NAME = "repeat"
#: A stored block whose descriptor has bit 6 (its ``param`` 2) has no payload: its bytes
#: are those its frame decoded ``distance`` bytes before it (as an LZ77 match: a distance
#: shorter than the block repeats the last ``distance`` bytes). A file stored twice in one
#: frame costs a few bytes a block where the mixed method spends some 300 a MiB, and no
#: time. The distance is at most ``COPY_WINDOW`` and the frame's bytes before the block.
#: Readers of format 1 before it refuse the bit ("unknown block flags").
STORED_COPY = 2
COPY_NAME = "copy"
#: How far back a copy block may reach: the match model's window, what the decoder of a
#: frame keeps of its output.
COPY_WINDOW = 64 << 20


def method_name(method: int, param: int) -> str:
    """A block's method as listings name it: "repeat" for a stored block that repeats
    its payload (``STORED_REPEAT``), "copy" for one that copies its frame's earlier bytes
    (``STORED_COPY``)."""
    if method == METHOD_STORED and param == STORED_REPEAT:
        return REPEAT_NAME
    if method == METHOD_STORED and param == STORED_COPY:
        return COPY_NAME
    return METHOD_NAMES[method]


def repeated(period: bytes, n: int) -> bytes:
    """The ``n`` bytes of a repeat block whose payload is ``period``."""
    return (period * -(-n // len(period)))[:n]


def copied(before: bytes | bytearray | memoryview, distance: int, n: int) -> bytes:
    """The ``n`` bytes of a copy block ``distance`` bytes back, after ``before`` (what its
    frame decoded before it, at least ``distance`` bytes of it)."""
    assert 0 < distance <= len(before)
    start = len(before) - distance
    if distance >= n:
        return bytes(before[start : start + n])
    return repeated(bytes(before[start:]), n)


MODEL_METHODS = (METHOD_MODEL, METHOD_MIXED)
#: LZMA blocks name one of this many filter settings (engine.LZMA_VARIANTS).
LZMA_VARIANT_COUNT = 7

#: Where a block stands in its stream (bits 2-3 of its descriptor).
END_NONE = 0  # more blocks of this frame follow
END_FRAME = 1  # the frame ends here; another frame follows
END_STREAM = 2  # the stream ends here, without an index
END_INDEX = 3  # the stream ends here, and its index follows

#: How a model or mixed block gives its segment count (bits 5-6 of its descriptor): the
#: default count, the fewest allowed (``--max``), or a varint that follows.
SEGMENTS_DEFAULT, SEGMENTS_FEWEST, SEGMENTS_GIVEN = 0, 1, 2

#: How the header names the model (bits 0-3 of its descriptor): 0 none, 1..14 a registered
#: model (``zoo.REGISTRY``), 15 the first 4 or 8 bytes of the model file's SHA-256.
MODEL_NONE = 0
MODEL_HASH = 15
HASH_PREFIX = 8
#: Bit 6 of the header's descriptor, with model 15: the model is named by the first 4
#: bytes of its SHA-256 instead of 8, as zstd names a dictionary by a 4-byte ID. Small
#: records are where headers show: a record of 250 bytes codes to some 35.
SHORT_HASH_PREFIX = 4
SHORT_HASH_FLAG = 0x40
#: How it names the mixed method's configuration (bits 4-5): the default preset, a preset
#: number in one byte, or the configuration written out (a length byte, then ``Config.pack``).
CONFIG_DEFAULT, CONFIG_PRESET, CONFIG_INLINE = 0, 1, 2
#: Bit 7 of a mixed block's descriptor: an options varint follows the segment count. Its
#: bits: a record length follows (a varint, read by the record contexts,
#: ``contexts.RECORD``); the block's bytes were coded after the x86 branch transform
#: (``filters.x86_encode``), which the decoder undoes; the block was coded without the
#: network (its input to the mixers is that of equal frequencies for every byte, and no
#: network runs: binary and repetitive data, where it has little to say, docs/FORMAT.md,
#: "Without the network"). Other bits are refused, so a later option is refused by this
#: reader rather than misread.
OPTIONS_FLAG = 0x80
OPTION_RECORD, OPTION_X86, OPTION_FLAT = 1, 2, 4
KNOWN_OPTIONS = OPTION_RECORD | OPTION_X86 | OPTION_FLAT
MIN_RECORD, MAX_RECORD = 2, 1 << 17

# ----------------------------------------------------------------------------- segments
#: Segment layout of model and mixed blocks. Many short segments make fast lockstep steps;
#: the network warms up within a few dozen bytes and the adaptive statistics are shared by
#: all segments, so short segments cost little ratio on large blocks. The default count is
#: one segment per KiB (1,024 for a 1 MiB block), but up to 16 of at least 256 bytes for
#: small blocks (a small block's segments each start cold). The encoder may choose fewer,
#: longer segments, down to one per MiB: ``--max`` codes a block of up to 1 MiB as one
#: segment (1.6-7.8% smaller on Calgary's text and code of 25-400 KB, at a fifth of the
#: speed compressing and a fifteenth decompressing). A decoder accepts any count in that
#: range, which bounds a block's steps at 1 MiB.
SEGMENT_BYTES = 1024
MIN_SEGMENT_BYTES = 256
MAX_SEGMENT_BYTES = 1 << 20
SMALL_SEGMENTS = 16
MAX_BLOCK_SEGMENTS = 1024
#: Blocks longer than 1 MiB may also be cut into more segments than the default count:
#: up to one per KiB, and at most this many. A device runs thousands of segments in one
#: step (``--wide``, ``levels.wide_segments``); the cap bounds what a decoder holds per
#: segment (a model's state, a few hundred integers) and a step's size. Readers before
#: this refused a count above the default, so such a block is refused by them, never
#: misread.
MAX_WIDE_SEGMENTS = 1 << 14


def segment_count(n: int) -> int:
    """The default number of lockstep segments for a block of ``n`` bytes."""
    small = min(SMALL_SEGMENTS, n // MIN_SEGMENT_BYTES)
    return max(1, min(MAX_BLOCK_SEGMENTS, max(n // SEGMENT_BYTES, small)))


def most_segments(n: int) -> int:
    """The most segments a block of ``n`` bytes may have: the default count, or for blocks
    over 1 MiB one per KiB up to ``MAX_WIDE_SEGMENTS``."""
    return max(segment_count(n), min(MAX_WIDE_SEGMENTS, n // SEGMENT_BYTES))


def fewest_segments(n: int) -> int:
    """The fewest segments a block of ``n`` bytes may have (``--max`` uses this count).
    Not a free choice: one segment for a huge block would let a tiny archive keep the
    decoder busy for hours."""
    return max(1, -(-n // MAX_SEGMENT_BYTES))


#: The most raw bytes a payload byte of each model method can stand for. An arithmetic
#: coder spends at least -log2(p) bits on a symbol it was told has probability p, so a
#: block of n bytes needs at least n times the cheapest byte's cost, less the coder's
#: 64-bit state (``PAYLOAD_SLACK`` bytes, with room to spare). The mixed method never gives
#: a bit more than 65514/65536 (``adaptive.SQUASH``'s top; its refinement tables start
#: there and are clamped below it): at least 0.003875 bits a byte, 2,064.5 bytes a payload
#: byte. The network alone gives the likeliest byte at most 2^16 of 2^16 + 255: 0.005603
#: bits, 1,427.9 bytes. The limits below leave 6% and 5% to spare (the range coder's
#: quantisation of probabilities moves them by far less). No encoder can exceed them, so a
#: decoder refuses a block that claims more before it spends memory or time on the claim:
#: 100 bytes of payload cannot make a 256 MiB block.
MAX_EXPANSION = {METHOD_MODEL: 1500, METHOD_MIXED: 2200}
#: The mixed method's limit in a stream whose configuration has fine probabilities
#: (``Config.fine``): its refinement stages reach 65535/65536, so a bit gets at most
#: (2 x 65514 + 6 x 65535) / 8 = 65529/65536 (``adaptive._predict``'s final blend):
#: at least 0.0012329 bits a byte, 6,488.9 bytes a payload byte, and 6% to spare.
MAX_EXPANSION_FINE = 6900
PAYLOAD_SLACK = 16


def max_raw_len(method: int, coded_len: int, fine: bool = False) -> int | None:
    """The most raw bytes a block of ``method`` with ``coded_len`` payload bytes can hold
    (None: no bound below ``MAX_BLOCK``; LZMA2's bombs are bounded by the block size),
    in a stream whose configuration has fine probabilities where ``fine``. (A repeat
    block's coded length is its period: it is bounded by the block size too.)"""
    if method == METHOD_STORED:
        return coded_len
    ratio = MAX_EXPANSION.get(method)
    if fine and method == METHOD_MIXED:
        ratio = MAX_EXPANSION_FINE
    return None if ratio is None else ratio * (coded_len + PAYLOAD_SLACK)


def segment_groups(segments: int) -> list[tuple[int, int]]:
    """The groups ``[lo, hi)`` of a mixed block's segments, coded one after the other at
    each step: the first half of the segments (rounded up) and the rest, so that a decoder
    can run the network's step for one group while it decodes the other's bytes."""
    if segments < 2:
        return [(0, segments)]
    half = (segments + 1) // 2
    return [(0, half), (half, segments)]


class FormatError(NNCError):
    """The input is not a well-formed ``.nnc`` stream (wrong file, truncated, corrupted)."""


class TruncatedError(FormatError):
    """The input ends before the stream does (an incremental decoder waits for more)."""


# ----------------------------------------------------------------------------- varints
def varint(n: int) -> bytes:
    """LEB128: 7 bits a byte, low first, the high bit set on all but the last."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise TruncatedError(f"truncated archive: unexpected end of data in {what}")
    return data


def read_varint(f: BinaryIO, what: str, limit: int = MAX_BLOCK) -> tuple[int, bytes]:
    """A varint of at most ``limit`` and its bytes. Only the shortest encoding is valid, so
    that every archive has one reading."""
    raw = bytearray()
    value = 0
    while True:
        b = _read_exact(f, 1, what)[0]
        raw.append(b)
        value |= (b & 0x7F) << (7 * (len(raw) - 1))
        if not b & 0x80:
            break
        if len(raw) >= (limit.bit_length() + 6) // 7:
            raise FormatError(f"corrupted archive: {what} too long")
    if len(raw) > 1 and raw[-1] == 0:
        raise FormatError(f"corrupted archive: {what} not in its shortest form")
    if value > limit:
        raise FormatError(f"corrupted archive: {what} {value} out of range")
    return value, bytes(raw)


# ----------------------------------------------------------------------------- header
@dataclass(frozen=True)
class Header:
    """A stream's header. ``model``: ``MODEL_NONE``, a registry number, or ``MODEL_HASH``
    with ``model_prefix`` (hex); ``block_size``: the longest block (0: the stream is empty);
    ``config``: the mixed method's configuration."""

    block_size: int
    model: int = MODEL_NONE
    model_prefix: str = ""
    config: Config = PRESETS[DEFAULT_PRESET]

    def pack(self) -> bytes:
        if not 0 <= self.model <= MODEL_HASH or not 0 <= self.block_size <= MAX_BLOCK:
            raise ValueError("model reference or block size out of range")
        if self.block_size == 0 and self.model != MODEL_NONE:
            raise ValueError("an empty stream names no model")
        prefix = self.model_prefix
        short = 0
        if self.model == MODEL_HASH:
            if len(prefix) not in (2 * HASH_PREFIX, 2 * SHORT_HASH_PREFIX) or (
                prefix != prefix.lower()
            ):
                raise ValueError(
                    "model reference 15 takes 8 or 4 bytes of SHA-256 in lowercase hex"
                )
            short = SHORT_HASH_FLAG if len(prefix) == 2 * SHORT_HASH_PREFIX else 0
        elif prefix:
            raise ValueError("a hash prefix goes with model reference 15 only")
        preset = preset_of(self.config)
        if self.model == MODEL_NONE or preset == DEFAULT_PRESET:
            cfg_kind, cfg = CONFIG_DEFAULT, b""
        elif preset is not None:
            cfg_kind, cfg = CONFIG_PRESET, bytes([preset])
        else:
            packed = self.config.pack()
            cfg_kind, cfg = CONFIG_INLINE, bytes([len(packed)]) + packed
        ref = bytes.fromhex(self.model_prefix) if self.model == MODEL_HASH else b""
        desc = self.model | cfg_kind << 4 | short
        return MAGIC + bytes([desc]) + ref + cfg + varint(self.block_size)

    @property
    def needs_model(self) -> bool:
        return self.model != MODEL_NONE


def read_header(f: BinaryIO, first: bytes = b"") -> tuple[Header, bytes]:
    """Read a stream header (``first``: bytes of it the caller already consumed); returns it
    and its bytes, which seed the check of each frame's first block."""
    head = first + _read_exact(f, 4 - len(first), "header")
    if head == PRE_RELEASE_MAGIC:
        raise FormatError("archive of a pre-release format (retired before format 1)")
    if head[:3] == MAGIC[:3] and head != MAGIC:
        raise FormatError(f"unsupported archive format {head[3]} (this reads format {FORMAT})")
    if head != MAGIC:
        raise FormatError("not a nncompress archive (bad magic)")
    desc = _read_exact(f, 1, "header")
    raw = head + desc
    model, cfg_kind = desc[0] & 0x0F, (desc[0] >> 4) & 0x03
    short = desc[0] & SHORT_HASH_FLAG
    if desc[0] >> 7 or (short and model != MODEL_HASH):
        raise FormatError(
            f"unsupported archive flags 0x{desc[0]:02x} (a damaged archive, or one made "
            "by a newer release)"
        )
    prefix = ""
    if model == MODEL_HASH:
        ref = _read_exact(f, SHORT_HASH_PREFIX if short else HASH_PREFIX, "header")
        raw += ref
        prefix = ref.hex()
    config = PRESETS[DEFAULT_PRESET]
    if cfg_kind != CONFIG_DEFAULT and model == MODEL_NONE:
        raise FormatError("corrupted archive: a configuration without a model")
    if cfg_kind == CONFIG_PRESET:
        number = _read_exact(f, 1, "header")
        raw += number
        if number[0] == DEFAULT_PRESET:
            raise FormatError("corrupted archive: the default preset named by number")
        if number[0] not in PRESETS:
            raise FormatError(f"unknown mixed-method preset {number[0]} (made by a newer release?)")
        config = PRESETS[number[0]]
    elif cfg_kind == CONFIG_INLINE:
        length = _read_exact(f, 1, "header")
        body = _read_exact(f, length[0], "header")
        raw += length + body
        try:
            config = Config.unpack(body)
        except ConfigError as e:
            raise FormatError(f"corrupted archive: {e}") from None
        if preset_of(config) is not None:
            raise FormatError("corrupted archive: a preset configuration written out")
    elif cfg_kind != CONFIG_DEFAULT:
        raise FormatError(
            f"unsupported archive flags 0x{desc[0]:02x} (a damaged archive, or one made "
            "by a newer release)"
        )
    block_size, b = read_varint(f, "block size")
    if block_size == 0 and model != MODEL_NONE:
        # (writers name no model for empty input; a damaged block size could otherwise turn
        # a stream's header into a valid empty stream, silently decoding to nothing)
        raise FormatError("corrupted archive: an empty stream that names a model")
    return Header(block_size, model, prefix, config), raw + b


# ----------------------------------------------------------------------------- blocks
@dataclass(frozen=True)
class BlockHeader:
    """A block's descriptor and lengths. ``param``: the segment count of model and mixed
    blocks, the filter variant of LZMA blocks, for stored ones ``STORED_REPEAT`` where
    the payload is one period of the block, else 0. ``record``: a mixed
    block's record length for the record contexts (0: none); ``x86``: a mixed block coded
    after the x86 branch transform; ``flat``: a mixed block coded without the network."""

    method: int
    raw_len: int
    coded_len: int
    param: int = 0
    end: int = END_NONE
    record: int = 0
    x86: bool = False
    flat: bool = False
    #: A copy block's distance (``STORED_COPY``; its coded length is 0), else 0.
    distance: int = 0

    def pack(self, block_size: int) -> bytes:
        """Descriptor, then the raw length (unless the block is ``block_size`` long), the
        coded length (unless stored), the segment count (unless the default or the
        fewest, which the descriptor names), the options and the record length (mixed
        blocks that have options: bit 7 of the descriptor)."""
        full = self.raw_len == block_size
        desc = self.method | self.end << 2 | full << 4
        tail = b""
        if self.method == METHOD_LZMA or self.method == METHOD_STORED:
            desc |= self.param << 5
        elif self.method in MODEL_METHODS and self.param != segment_count(self.raw_len):
            if self.param == fewest_segments(self.raw_len):
                desc |= SEGMENTS_FEWEST << 5
            else:
                desc |= SEGMENTS_GIVEN << 5
                tail = varint(self.param)
        options = (
            (OPTION_RECORD if self.record else 0)
            | (OPTION_X86 if self.x86 else 0)
            | (OPTION_FLAT if self.flat else 0)
        )
        if options:
            assert self.method == METHOD_MIXED
            assert not self.record or MIN_RECORD <= self.record <= MAX_RECORD
            desc |= OPTIONS_FLAG
            tail += varint(options) + (varint(self.record) if self.record else b"")
        out = bytes([desc]) + (b"" if full else varint(self.raw_len))
        if self.method != METHOD_STORED or self.param == STORED_REPEAT:
            out += varint(self.coded_len)
        elif self.param == STORED_COPY:
            assert self.coded_len == 0 and 0 < self.distance <= COPY_WINDOW
            out += varint(self.distance)
        return out + tail


CHECK = struct.Struct("<I")
CHECK_SIZE = CHECK.size


def read_block_header(f: BinaryIO, header: Header) -> tuple[BlockHeader, bytes]:
    """The next block header and its bytes. Validates every field before use."""
    raw = _read_exact(f, 1, "block header")
    d = raw[0]
    method, end, full, extra = d & 3, (d >> 2) & 3, (d >> 4) & 1, d >> 5
    raw_len = header.block_size
    if not full:
        raw_len, b = read_varint(f, "block length", header.block_size)
        raw += b
        if raw_len == header.block_size:
            raise FormatError("corrupted archive: a full block without the full flag")
    if raw_len == 0:
        raise FormatError("corrupted archive: empty block")
    coded_len, distance = raw_len, 0
    repeat = method == METHOD_STORED and extra == STORED_REPEAT
    copy = method == METHOD_STORED and extra == STORED_COPY
    if repeat:  # its coded length is the period, shorter than the block
        coded_len, b = read_varint(f, "period", raw_len - 1)
        raw += b
        if coded_len == 0:
            raise FormatError("corrupted archive: a repeat block of period 0")
    elif copy:  # no payload: a distance back into the frame
        coded_len = 0
        distance, b = read_varint(f, "copy distance", COPY_WINDOW)
        raw += b
        if distance == 0:
            raise FormatError("corrupted archive: a copy block of distance 0")
    elif method != METHOD_STORED:
        coded_len, b = read_varint(f, "coded length", raw_len + (1 << 16))
        raw += b
    if method in MODEL_METHODS and not header.needs_model:
        raise FormatError("corrupted archive: a model-coded block in a stream without a model")
    bound = None if repeat or copy else max_raw_len(method, coded_len, bool(header.config.fine))
    if bound is not None and raw_len > bound:
        raise FormatError(
            f"corrupted archive: a {METHOD_NAMES[method]} block claims {raw_len:,} bytes "
            f"from {coded_len:,} bytes of payload, more than it can hold ({bound:,})"
        )
    has_options = method == METHOD_MIXED and bool(d & OPTIONS_FLAG)
    if has_options:
        extra &= 3
    param = record = 0
    if method == METHOD_LZMA:
        param = extra
        if param >= LZMA_VARIANT_COUNT:
            raise FormatError(f"corrupted archive: unknown LZMA2 variant {param}")
    elif method in MODEL_METHODS:
        default, fewest = segment_count(raw_len), fewest_segments(raw_len)
        if extra == SEGMENTS_DEFAULT:
            param = default
        elif extra == SEGMENTS_FEWEST and fewest != default:
            param = fewest
        elif extra == SEGMENTS_GIVEN:
            param, b = read_varint(f, "segment count", MAX_WIDE_SEGMENTS)
            raw += b
            if not fewest < param <= most_segments(raw_len) or param == default:
                raise FormatError(f"corrupted archive: {param} segments for {raw_len} bytes")
        else:
            raise FormatError(f"corrupted archive: unknown block flags 0x{d:02x}")
    elif repeat:
        param = STORED_REPEAT
    elif copy:
        param = STORED_COPY
    elif extra:
        raise FormatError(f"corrupted archive: unknown block flags 0x{d:02x}")
    options = 0
    if has_options:
        options, b = read_varint(f, "block options", 127)
        raw += b
        if not options or options & ~KNOWN_OPTIONS:
            raise FormatError(f"corrupted archive: unknown block options 0x{options:02x}")
    if options & OPTION_RECORD:
        record, b = read_varint(f, "record length", MAX_RECORD)
        raw += b
        if not MIN_RECORD <= record < raw_len:
            raise FormatError(f"corrupted archive: records of {record} bytes in {raw_len}")
    x86, flat = bool(options & OPTION_X86), bool(options & OPTION_FLAT)
    return BlockHeader(method, raw_len, coded_len, param, end, record, x86, flat, distance), raw


def block_check(header_bytes: bytes, raw: bytes, prev: int) -> int:
    """A block's check: CRC32 of its header bytes, then its decoded bytes, continuing from
    ``prev`` (the check of the frame's previous block, or ``frame_seed`` for a frame's first
    block). The last block's check thus covers the whole frame."""
    return zlib.crc32(raw, zlib.crc32(header_bytes, prev))


def frame_seed(header_bytes: bytes, frame: int, raw_offset: int) -> int:
    """Where the check chain of a stream's frame number ``frame`` (from 0) starts: the CRC32
    of the stream's header bytes, then of the frame's number and of the offset of its first
    byte in the stream's decoded bytes, as varints. So a frame checks against its stream's
    header and its place: frames swapped, repeated or moved from another stream fail their
    first block's check, and so does a frame read through an index that misplaces it."""
    return zlib.crc32(varint(frame) + varint(raw_offset), zlib.crc32(header_bytes))


def read_payload(f: BinaryIO, b: BlockHeader) -> bytes:
    return _read_exact(f, b.coded_len, "block data")


def read_check(f: BinaryIO) -> int:
    return CHECK.unpack(_read_exact(f, CHECK_SIZE, "block check"))[0]


# ----------------------------------------------------------------------------- index
@dataclass
class FrameEntry:
    """One frame of a stream: its decoded and coded lengths (blocks, from the first block's
    descriptor to the last block's check)."""

    raw_len: int
    coded_len: int


@dataclass
class Index:
    """The table at the end of a stream of several frames: the header's length and every
    frame's lengths, so that a reader finds any frame from the end of the file."""

    header_len: int
    frames: list[FrameEntry] = field(default_factory=list)

    def pack(self) -> bytes:
        body = varint(len(self.frames)) + varint(self.header_len)
        for fr in self.frames:
            body += varint(fr.raw_len) + varint(fr.coded_len)
        body += CHECK.pack(zlib.crc32(body))
        return body + struct.pack("<I", len(body)) + INDEX_MAGIC


INDEX_FOOTER = 4 + len(INDEX_MAGIC)
_BIG = 1 << 62  # frames and streams may be far larger than blocks


def read_index(f: BinaryIO) -> Index:
    """Read an index (forwards, after a block that says one follows) and check it."""
    count, raw = read_varint(f, "index", _BIG)
    header_len, b = read_varint(f, "index", 1 << 16)
    raw += b
    frames = []
    for _ in range(count):
        r, b1 = read_varint(f, "index", _BIG)
        c, b2 = read_varint(f, "index", _BIG)
        raw += b1 + b2
        frames.append(FrameEntry(r, c))
    crc = _read_exact(f, CHECK_SIZE, "index")
    if zlib.crc32(raw) != CHECK.unpack(crc)[0]:
        raise FormatError("corrupted archive: index checksum mismatch")
    size, magic = struct.unpack("<I4s", _read_exact(f, INDEX_FOOTER, "index"))
    if magic != INDEX_MAGIC or size != len(raw) + CHECK_SIZE:
        raise FormatError("corrupted archive: bad index footer")
    return Index(header_len, frames)


def index_before(f: BinaryIO, end: int) -> tuple[Index, int] | None:
    """The index that ends at offset ``end`` of a seekable file, and where it starts; None if
    no index ends there (a stream of one frame, or not an archive)."""
    if end < INDEX_FOOTER:
        return None
    f.seek(end - INDEX_FOOTER)
    size, magic = struct.unpack("<I4s", f.read(INDEX_FOOTER))
    if magic != INDEX_MAGIC or size > end - INDEX_FOOTER:
        return None
    start = end - INDEX_FOOTER - size
    f.seek(start)
    try:
        return read_index(f), start
    except FormatError:
        return None  # bytes that only look like an index's end: walk instead


def crc32(data: bytes, prev: int = 0) -> int:
    return zlib.crc32(data, prev)
