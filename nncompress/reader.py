"""Reading an archive at random: a seekable file object over the decoded bytes.

Frames start with fresh statistics, so any frame decodes on its own from the stream's
header. A stream of several frames ends with an index (docs/FORMAT.md, "Index"), found
from the end of the file, which gives every frame's offset without reading the frames;
streams without one (a single frame) are walked block header by block header, seeking
over payloads. Reading at an offset decodes only the frames that hold the bytes asked for.
"""

from __future__ import annotations

import bisect
import io
import os
from dataclasses import dataclass
from typing import BinaryIO

from . import format as fmt
from .engine import ModelLookup, StreamInfo, _Frames, read_index_of


@dataclass
class _Frame:
    header: fmt.Header
    header_bytes: bytes
    number: int  # in its stream
    stream_offset: int  # of its first byte, in its stream's decoded bytes
    offset: int  # of its first block, in the archive
    raw_offset: int  # of its first byte, in the decoded output
    raw_len: int
    #: The end code its last block must have (END_FRAME, END_STREAM or END_INDEX), as the
    #: index or the walk found it: checked when the frame is decoded.
    end: int = fmt.END_FRAME
    #: Its length in the archive, as the index or the walk found it (checked too).
    coded_len: int | None = None


def _stream_from_index(f: BinaryIO, end: int) -> tuple[int, list[_Frame]] | None:
    """The stream whose index ends at ``end``: its start and frames (raw offsets from the
    stream's start); None if no index ends there."""
    found = fmt.index_before(f, end)
    if found is None:
        return None
    index, index_start = found
    start = index_start - sum(e.coded_len for e in index.frames) - index.header_len
    if start < 0:
        raise fmt.FormatError("corrupted archive: the index points before the file")
    f.seek(start)
    header, header_bytes = fmt.read_header(f)
    if len(header_bytes) != index.header_len:
        raise fmt.FormatError("corrupted archive: the index does not match the header")
    frames, offset, raw = [], start + index.header_len, 0
    for number, e in enumerate(index.frames):
        frames.append(
            _Frame(header, header_bytes, number, raw, offset, raw, e.raw_len, coded_len=e.coded_len)
        )
        offset += e.coded_len
        raw += e.raw_len
    if frames:  # (the stream must say that its index follows, or the index is not its own)
        frames[-1].end = fmt.END_INDEX
    return start, frames


def _walk(f: BinaryIO, begin: int, end: int) -> list[list[_Frame]]:
    """The streams in ``f[begin:end]``, walked forwards (headers only)."""
    from .engine import _may_begin_stream

    streams: list[list[_Frame]] = []
    f.seek(begin)
    while f.tell() < end:
        start = f.tell()
        if any(streams) and not _may_begin_stream(f.read(4)):
            f.seek(start)
            if f.read(end - start).strip(b"\0"):
                raise fmt.FormatError("corrupted archive: garbage after the last stream")
            break  # zero padding, ignored as decompression ignores it
        f.seek(start)
        header, header_bytes = fmt.read_header(f)
        frames: list[_Frame] = []
        if header.block_size:
            info = StreamInfo(archive_len=start + len(header_bytes))
            walker = _Frames(header, header_bytes, lambda h: None, None, False, False, False)  # type: ignore[arg-type,return-value]
            while (code := walker.frame(f, info, None, decode=False)) == fmt.END_FRAME:
                pass
            if code == fmt.END_INDEX:
                read_index_of(f, info.frames, len(header_bytes))
            for n, fr in enumerate(info.frames):
                frames.append(
                    _Frame(
                        header, header_bytes, n, fr.raw_offset, fr.offset, fr.raw_offset, fr.raw_len
                    )
                )
            frames[-1].end = code
        streams.append(frames)
    return streams


def _end_before_zeros(f: BinaryIO, begin: int, end: int) -> int:
    """The position after the last non-zero byte of ``f[begin:end]`` (where an index that
    zero padding follows ends: an index ends with "NNCi")."""
    pos = end
    while pos > begin:
        n = min(1 << 16, pos - begin)
        f.seek(pos - n)
        stripped = f.read(n).rstrip(b"\0")
        if stripped:
            return pos - n + len(stripped)
        pos -= n
    return begin


def frame_table(f: BinaryIO, begin: int = 0) -> list[_Frame]:
    """Every frame of every stream in a seekable archive that starts at offset ``begin``,
    with raw offsets from the start of the decoded output. Indexes are read from the end;
    what no index covers is walked."""
    file_end = f.seek(0, os.SEEK_END)
    end = _end_before_zeros(f, begin, file_end)  # (zero padding after the last stream)
    tail: list[list[_Frame]] = []
    while end > begin:
        found = _stream_from_index(f, end)
        if found is None or found[0] < begin:
            break
        end, frames = found
        tail.insert(0, frames)
    if not tail:
        end = file_end  # the walk decides what the end holds, as decompression does
    streams = (_walk(f, begin, end) if end > begin else []) + tail
    out, raw = [], 0
    for frames in streams:
        for fr in frames:
            fr.raw_offset += raw
            out.append(fr)
        if frames:
            raw = frames[-1].raw_offset + frames[-1].raw_len
    return out


class ArchiveReader(io.RawIOBase):
    """The decoded bytes of a seekable ``.nnc`` archive as a read-only, seekable file. The
    archive starts at the file's current position, as ``lzma.LZMAFile`` reads from there.

    ``get_model``: finds the model a stream's header names (``zoo.model_for_archive`` by
    default). Each read decodes the frames that hold the bytes asked for (the last one is
    kept, so sequential reads decode each frame once); ``frames_decoded`` counts them."""

    def __init__(self, fileobj: BinaryIO, get_model: ModelLookup | None = None) -> None:
        if get_model is None:
            from .zoo import model_for_archive

            def get_model(h: fmt.Header):
                return model_for_archive(h.model, h.model_prefix)

        self._f = fileobj
        self._get_model = get_model
        self._frames = frame_table(fileobj, fileobj.tell())
        self._starts = [fr.raw_offset for fr in self._frames]
        self._size = self._frames[-1].raw_offset + self._frames[-1].raw_len if self._frames else 0
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None
        self.frames_decoded = 0

    @property
    def size(self) -> int:
        return self._size

    @property
    def frame_count(self) -> int:
        return len(self._frames)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def _frame(self, i: int) -> bytes:
        if self._cached is None or self._cached[0] != i:
            fr = self._frames[i]
            self._f.seek(fr.offset)
            out = io.BytesIO()
            frames = _Frames(fr.header, fr.header_bytes, self._get_model, None, False, True, False)
            end = frames.frame(
                self._f, StreamInfo(), out, number=fr.number, raw_offset=fr.stream_offset
            )
            self.frames_decoded += 1
            coded = self._f.tell() - fr.offset
            if end != fr.end or fr.coded_len not in (None, coded):
                raise fmt.FormatError(
                    f"corrupted archive: frame {fr.number} does not end as its index says"
                )
            if len(out.getvalue()) != fr.raw_len:
                raise fmt.FormatError(
                    f"corrupted archive: frame {fr.number} is not as long as its index says"
                )
            self._cached = (i, out.getvalue())
        return self._cached[1]

    def readinto(self, buffer) -> int:
        """Bytes from the current position up to the end of its frame at most (a short read,
        as raw files may give), so that a buffered reader above decodes no frame ahead."""
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        i = bisect.bisect_right(self._starts, self._pos) - 1
        data = self._frame(i)
        at = self._pos - self._starts[i]
        n = min(len(view), len(data) - at)
        view[:n] = data[at : at + n]
        self._pos += n
        return n
