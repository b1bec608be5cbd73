"""The ``.nnc`` container: header, blocks, end marker. docs/FORMAT.md is the byte-level spec.

This module knows bytes and checksums only; which method coded a block's payload and how is
the business of ``engine.py``. Every field a decoder acts on is covered by a CRC32, so
damage is reported where it happened instead of being decoded into garbage.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO

MAGIC = b"NNC\x1a"
VERSION = 6  # what the encoder writes
READ_VERSIONS = (1, 2, 3, 4, 5, 6)  # what the decoder reads
#: The largest raw block any decoder of this version accepts (bounds decoder memory).
MAX_BLOCK = 1 << 28

#: Segment layout. Many short segments make fast lockstep steps; the network warms up
#: within a few dozen bytes and the adaptive statistics are shared by all segments, so
#: short segments cost little ratio on large blocks. On small blocks each segment's cold
#: start shows: version 1 cut a 1.5 KB block into 16 segments of 96 bytes, and one segment
#: codes it 25-30% smaller; version 2 keeps small-block segments at 256 bytes or more,
#: which recovers most of that and bounds a small block at 511 steps. Version 3 makes
#: segments of 1 KiB where versions 1 and 2 made them of 512 bytes: the same 1,024
#: segments for a 1 MiB block (so the same speed), longer segments below 1 MiB (measured:
#: book1 -0.2%, paper1, progc, paper2, alice29, fields.c and progp -0.8% in all).
#:
#: Version 4 keeps version 3's count as the default and lets the encoder choose fewer,
#: longer segments, down to one per MiB: ``--max`` codes a block of up to 1 MiB as one
#: segment, 1.6-7.8% smaller on Calgary's text and code of 25-400 KB, at a fifth of the
#: speed compressing and a fifteenth decompressing. (Segments of 4 KiB as the default
#: cost the decoder a quarter of its speed on book1, 81.7 against 109.3 KB/s: four times
#: the steps, each with 8 calls into the coder.) A decoder accepts any count in that range,
#: which bounds a block's steps at 1 MiB.
#:
#: Version 5 keeps version 4's segments and codes them in two groups (``segment_groups``);
#: version 6 keeps version 5's segments and groups (it changes the mixed method only).
SEGMENT_BYTES = {1: 512, 2: 512, 3: 1024, 4: 1024, 5: 1024, 6: 1024}  # by format version
MIN_SEGMENT_BYTES = {1: 64, 2: 256, 3: 256, 4: 256, 5: 256, 6: 256}
MAX_SEGMENT_BYTES = 1 << 20  # version 4 on: the longest segment a decoder accepts
SMALL_SEGMENTS = 16
MAX_BLOCK_SEGMENTS = 1024


def segment_count(n: int, version: int = VERSION) -> int:
    """The default number of lockstep segments for a block of ``n`` bytes: one per
    SEGMENT_BYTES, but up to 16 of at least MIN_SEGMENT_BYTES for small inputs, at most
    MAX_BLOCK_SEGMENTS. Before version 4 it is the only count allowed."""
    small = min(SMALL_SEGMENTS, n // MIN_SEGMENT_BYTES[version])
    return max(1, min(MAX_BLOCK_SEGMENTS, max(n // SEGMENT_BYTES[version], small)))


def fewest_segments(n: int, version: int = VERSION) -> int:
    """The fewest segments a block of ``n`` bytes may have (``--max`` uses this count).
    Not a free choice: one segment for a huge block would let a tiny archive keep the
    decoder busy for hours."""
    if version < 4:
        return segment_count(n, version)
    return max(1, -(-n // MAX_SEGMENT_BYTES))


def segment_groups(segments: int, version: int = VERSION) -> list[tuple[int, int]]:
    """The groups ``[lo, hi)`` of a mixed block's segments, coded one after the other at
    each step: each group's bytes are mixed with the adaptive statistics and range-coded
    before the next group's.

    Version 5 (and 6) makes two groups (the first half of the segments, rounded up, and the rest)
    so that a decoder can run the network's step for one group while it decodes the
    other's bytes, on two cores; in versions 1-4 all segments form one group, so the
    network had to wait for every byte of a step. Measured on book1 on a 2-core VM
    (``scripts/bench.py --skip-corpus``): 123-131 KB/s compressing and 131-149 KB/s
    decompressing, against 95 KB/s both ways for version 4 in the same hour; the archive
    is 72 bytes smaller (190,868 bytes; group 1 learns from group 0's step)."""
    if version < 5 or segments < 2:
        return [(0, segments)]
    half = (segments + 1) // 2
    return [(0, half), (half, segments)]


METHOD_STORED = 0
METHOD_MODEL = 1
METHOD_LZMA = 2
METHOD_MIXED = 3
METHOD_END = 0xFF
METHOD_NAMES = {
    METHOD_STORED: "stored",
    METHOD_MODEL: "model",
    METHOD_LZMA: "lzma",
    METHOD_MIXED: "mixed",
}
MODEL_METHODS = (METHOD_MODEL, METHOD_MIXED)
#: LZMA blocks name one of this many filter settings in their segment field (engine.py).
LZMA_VARIANT_COUNT = 7

_BLOCK = struct.Struct("<BIIII")  # method, raw_len, coded_len, segments, raw_crc
_END = struct.Struct("<BQI")  # METHOD_END, total raw length, CRC32 of all raw bytes
_CRC = struct.Struct("<I")


class FormatError(Exception):
    """The input is not a well-formed ``.nnc`` stream (wrong file, truncated, corrupted)."""


@dataclass(frozen=True)
class Header:
    model_name: str
    model_sha256: str  # 64 hex digits
    block_size: int
    version: int = VERSION

    def pack(self) -> bytes:
        name = self.model_name.encode("utf-8")
        if len(name) > 255:
            raise ValueError("model name longer than 255 bytes")
        body = (
            MAGIC
            + bytes([self.version, 0])
            + struct.pack("<I", self.block_size)
            + bytes([len(name)])
            + name
            + bytes.fromhex(self.model_sha256)
        )
        return body + _CRC.pack(zlib.crc32(body))


@dataclass(frozen=True)
class BlockHeader:
    method: int
    raw_len: int
    coded_len: int
    segments: int
    raw_crc: int

    def pack(self) -> bytes:
        body = _BLOCK.pack(self.method, self.raw_len, self.coded_len, self.segments, self.raw_crc)
        return body + _CRC.pack(zlib.crc32(body))


@dataclass(frozen=True)
class End:
    total_len: int
    total_crc: int

    def pack(self) -> bytes:
        body = _END.pack(METHOD_END, self.total_len, self.total_crc)
        return body + _CRC.pack(zlib.crc32(body))


BLOCK_OVERHEAD = _BLOCK.size + _CRC.size  # 21 bytes
END_SIZE = _END.size + _CRC.size  # 17 bytes


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise FormatError(f"truncated archive: unexpected end of data in {what}")
    return data


def _check_crc(body: bytes, crc_bytes: bytes, what: str) -> None:
    if zlib.crc32(body) != _CRC.unpack(crc_bytes)[0]:
        raise FormatError(f"corrupted archive: {what} checksum mismatch")


def read_header(f: BinaryIO, first: bytes = b"") -> Header:
    """Read and check a stream header. ``first``: magic bytes the caller already consumed."""
    head = first + _read_exact(f, 4 - len(first), "header")
    if head != MAGIC:
        raise FormatError("not a nncompress archive (bad magic)")
    rest = _read_exact(f, 7, "header")
    version, flags = rest[0], rest[1]
    if version not in READ_VERSIONS:
        raise FormatError(
            f"unsupported archive format version {version} (this reads up to {VERSION})"
        )
    if flags != 0:
        raise FormatError(f"unsupported archive flags 0x{flags:02x}")
    (block_size,) = struct.unpack("<I", rest[2:6])
    name_len = rest[6]
    name = _read_exact(f, name_len, "header")
    sha = _read_exact(f, 32, "header")
    _check_crc(head + rest + name + sha, _read_exact(f, 4, "header"), "header")
    if not 0 < block_size <= MAX_BLOCK:
        raise FormatError(f"corrupted archive: block size {block_size} out of range")
    try:
        model_name = name.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("corrupted archive: model name is not UTF-8") from None
    return Header(model_name, sha.hex(), block_size, version)


def read_block_header(f: BinaryIO, header: Header) -> BlockHeader | End:
    """The next block header, or the end marker. Validates every field before use."""
    method = _read_exact(f, 1, "block header")
    if method[0] == METHOD_END:
        body = method + _read_exact(f, _END.size - 1, "end marker")
        _check_crc(body, _read_exact(f, 4, "end marker"), "end marker")
        _, total_len, total_crc = _END.unpack(body)
        return End(total_len, total_crc)
    body = method + _read_exact(f, _BLOCK.size - 1, "block header")
    _check_crc(body, _read_exact(f, 4, "block header"), "block header")
    b = BlockHeader(*_BLOCK.unpack(body))
    if b.method not in METHOD_NAMES:
        raise FormatError(f"unknown block method {b.method}")
    if b.raw_len > header.block_size or b.raw_len == 0:
        raise FormatError(f"corrupted archive: block length {b.raw_len} out of range")
    if b.method == METHOD_STORED and b.coded_len != b.raw_len:
        raise FormatError("corrupted archive: stored block with coded length != raw length")
    if b.method == METHOD_LZMA and b.segments >= LZMA_VARIANT_COUNT:
        raise FormatError(f"corrupted archive: unknown LZMA2 variant {b.segments}")
    if b.method == METHOD_STORED and b.segments != 0:
        raise FormatError("corrupted archive: stored block with a nonzero segment field")
    if b.method in MODEL_METHODS and not (
        fewest_segments(b.raw_len, header.version)
        <= b.segments
        <= segment_count(b.raw_len, header.version)
    ):
        raise FormatError(f"corrupted archive: {b.segments} segments for {b.raw_len} bytes")
    if b.coded_len > b.raw_len + (1 << 16):
        raise FormatError("corrupted archive: coded block longer than possible")
    return b


def read_payload(f: BinaryIO, b: BlockHeader) -> bytes:
    return _read_exact(f, b.coded_len, "block data")


def crc32(data: bytes, prev: int = 0) -> int:
    return zlib.crc32(data, prev)
