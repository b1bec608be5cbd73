"""The Python API, in the shape of the standard library's ``lzma`` and ``compression.zstd``.

    import nncompress
    blob = nncompress.compress(data)                      # bytes -> .nnc bytes
    data = nncompress.decompress(blob)                    # concatenated streams too
    with nncompress.open("logs.txt.nnc", "wt") as f:      # a file object, text or binary
        f.write("...")
    with nncompress.open("logs.txt.nnc") as f:            # reads seek through the index,
        f.seek(10_000_000); f.read(100)                   # decoding only the frames needed
    c = nncompress.Compressor(); out = c.compress(part) + c.flush()
    d = nncompress.Decompressor(); data = d.decompress(blob)

Every error is an ``NNCError`` (``FormatError`` for damaged or foreign input, ``ModelError``
for a missing or wrong model, ``WorkerError`` for a failed worker process), with the one-line
message the command line prints. ``model`` is a model name, a ``.nnm`` path or a loaded
``IntModel`` (None: the level's shipped model); archives name their model, so decompression
finds it by itself. ``threads``: 0 (every core) or N workers for inputs of several frames,
1 for one core; the bytes are the same whatever the count or the ``device``.
"""

from __future__ import annotations

import builtins
import io
import os
from collections.abc import Callable
from typing import IO, Any, BinaryIO

from . import format as fmt
from .engine import FrameInfo, StreamEncoder, decompress_stream
from .errors import NNCError
from .format import FormatError, TruncatedError
from .levels import LEVELS
from .model import IntModel, ModelError
from .workers import WorkerError
from .zoo import load_model, model_for_archive, model_spec, names

__all__ = [
    "NNCError",
    "FormatError",
    "TruncatedError",
    "ModelError",
    "WorkerError",
    "compress",
    "decompress",
    "open",
    "NNCFile",
    "Compressor",
    "Decompressor",
    "compress_bytes",
    "decompress_bytes",
    "load_model",
    "model_spec",
]

ModelSpec = str | os.PathLike | IntModel | None


def _model(model: ModelSpec, level: str, device: str) -> IntModel:
    if isinstance(model, IntModel):
        return model
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r} (use {', '.join(LEVELS)})")
    name = os.fspath(model) if model is not None else None
    return load_model(model_spec(name, level), device)


def _lookup(model: ModelSpec, device: str) -> Callable[[fmt.Header], IntModel]:
    """How decoders find the model an archive names: ``model`` if it is that one (a name
    or path is checked against the archive's hash), else the search folders."""

    def get(header: fmt.Header) -> IntModel:
        if isinstance(model, IntModel):
            if names(model, header.model, header.model_prefix):
                return model
            return model_for_archive(header.model, header.model_prefix, None, device)
        spec = os.fspath(model) if model is not None else None
        return model_for_archive(header.model, header.model_prefix, spec, device)

    return get


def compress(
    data: bytes,
    level: str = "default",
    *,
    model: ModelSpec = None,
    threads: int = 0,
    device: str = "cpu",
    block_size: int | None = None,
    frame_size: int | None = None,
    memory: int | None = None,
) -> bytes:
    """The ``.nnc`` archive of ``data``, one stream. ``level``: ``fast``, ``default`` or
    ``max`` (``levels.LEVELS``). ``frame_size``: None leaves it to the encoder, as the
    command line does without ``-F`` (``engine.StreamEncoder``)."""
    c = Compressor(
        level,
        model=model,
        threads=threads,
        device=device,
        block_size=block_size,
        frame_size=frame_size,
        memory=memory,
    )
    return c.compress(data) + c.flush()


def decompress(
    data: bytes,
    *,
    model: ModelSpec = None,
    threads: int = 0,
    device: str = "cpu",
    memory: int | None = None,
) -> bytes:
    """The original bytes of an archive of one or more streams. Zero bytes after the last
    stream are ignored; anything else there raises ``FormatError``."""
    out = io.BytesIO()
    decompress_stream(io.BytesIO(data), out, _lookup(model, device), threads=threads, memory=memory)
    return out.getvalue()


def compress_bytes(
    data: bytes,
    model: IntModel | None = None,
    block_size: int | None = None,
    level: str = "default",
    int8_products: bool = False,
) -> bytes:
    """``compress`` as ``compare`` calls it. ``int8_products``: let large blocks switch the
    model to int8 products through torch (for callers that own the process: it sets
    torch's thread count)."""
    c = Compressor(level, model=model, block_size=block_size, int8_products=int8_products)
    return c.compress(data) + c.flush()


def decompress_bytes(
    blob: bytes, model: IntModel | None = None, int8_products: bool = False
) -> bytes:
    """``decompress`` as ``compare`` calls it (``int8_products``: as for ``compress_bytes``)."""
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, _lookup(model, "cpu"), int8_products=int8_products)
    return out.getvalue()


class Compressor:
    """Compress data incrementally into one stream: ``compress`` returns the archive
    bytes that are ready (a frame's worth at a time), ``flush`` ends the stream and
    returns the rest; then the object is spent, as ``lzma.LZMACompressor`` is.
    ``int8_products``: let large blocks switch the model to int8 products through torch
    (the same bytes, faster on some CPUs; for callers that own the process: it sets
    torch's thread count)."""

    def __init__(
        self,
        level: str = "default",
        *,
        model: ModelSpec = None,
        threads: int = 0,
        device: str = "cpu",
        block_size: int | None = None,
        frame_size: int | None = None,
        memory: int | None = None,
        int8_products: bool = False,
    ) -> None:
        self._enc = StreamEncoder(
            _model(model, level, device),
            block_size,
            level,
            threads=threads,
            frame_size=frame_size,
            memory=memory,
            int8_products=int8_products,
        )
        self._flushed = False

    def compress(self, data: bytes) -> bytes:
        if self._flushed:
            raise ValueError("Compressor has been flushed")
        return self._enc.write(bytes(data))

    def close(self) -> None:
        """Stop the worker processes of an abandoned stream (``flush`` does it too)."""
        self._enc.close()

    def __enter__(self) -> Compressor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def flush(self) -> bytes:
        if self._flushed:
            raise ValueError("repeated call to flush()")
        self._flushed = True
        try:
            return self._enc.finish()
        finally:
            self._enc.close()


class Decompressor:
    """Decompress one stream incrementally, as ``lzma.LZMADecompressor`` does: feed it
    bytes with ``decompress``, which returns what it could decode, at most ``max_length``
    bytes if that is given (the rest waits for the next call). A frame decodes once all of
    its bytes have arrived. ``eof``: the stream has ended and everything decoded has been
    returned; ``unused_data``: what followed the stream; ``needs_input``: False while
    decoded bytes, or whole frames, are waiting."""

    def __init__(self, *, model: ModelSpec = None, device: str = "cpu") -> None:
        self._get_model = _lookup(model, device)
        self._input = bytearray()
        self._output = bytearray()
        self._frames: Any = None
        self._header_len = 0
        self._entries: list[fmt.FrameEntry] = []  # frames decoded, for the index's check
        self._blocks = 0
        self._ended = False  # the stream's last byte has been read
        self._stalled = True  # the input holds no whole frame (or header, or index)
        self.unused_data = b""

    @property
    def eof(self) -> bool:
        return self._ended and not self._output

    @property
    def needs_input(self) -> bool:
        return not self._ended and not self._output and self._stalled

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if self.eof:
            raise EOFError("already at end of stream")
        if self._ended:
            self.unused_data += bytes(data)
        else:
            self._input += data
        limit = max_length if max_length >= 0 else None
        while not self._ended and (limit is None or len(self._output) < limit):
            if not self._step():
                break
        if limit is None:
            out, self._output = bytes(self._output), bytearray()
        else:
            out = bytes(self._output[:limit])
            del self._output[:limit]
        return out

    def _step(self) -> bool:
        """Decode the next header, frame or index if all of it is here; False if not."""
        from .engine import StreamInfo, _Frames, read_index_of

        src = io.BytesIO(self._input)
        try:
            if self._frames is None:
                header, header_bytes = fmt.read_header(src)
                self._frames = _Frames(
                    header, header_bytes, self._get_model, None, False, True, False
                )
                self._header_len = len(header_bytes)
                self._ended = header.block_size == 0
            elif self._index_next:
                frames = [FrameInfo(0, e.coded_len, 0, e.raw_len) for e in self._entries]
                read_index_of(src, frames, self._header_len)
                self._ended = True
            else:
                size = self._whole_frame()
                if size is None:
                    self._stalled = True
                    return False
                out = io.BytesIO()
                info = StreamInfo(raw_len=sum(e.raw_len for e in self._entries))
                raw_offset = info.raw_len
                src = io.BytesIO(bytes(self._input[:size]))
                end = self._frames.frame(
                    src, info, out, True, self._blocks, len(self._entries), raw_offset
                )
                self._blocks += len(info.blocks)
                self._entries.append(fmt.FrameEntry(info.raw_len - raw_offset, size))
                self._output += out.getvalue()
                self._index_next = end == fmt.END_INDEX
                self._ended = end == fmt.END_STREAM
        except TruncatedError:
            self._stalled = True
            return False
        self._stalled = False
        del self._input[: src.tell()]
        if self._ended:
            self.unused_data, self._input = bytes(self._input), bytearray()
        return True

    _index_next = False  # the last frame said the index follows

    def _whole_frame(self) -> int | None:
        """The length of the next frame if all of it has arrived (read from its block
        headers alone, without decoding), else None."""
        src = io.BytesIO(self._input)
        header = self._frames.header
        while True:
            bh, _ = fmt.read_block_header(src, header)
            src.seek(bh.coded_len + fmt.CHECK_SIZE, io.SEEK_CUR)
            if src.tell() > len(self._input):
                return None
            if bh.end != fmt.END_NONE:
                return src.tell()


class _StreamReader(io.RawIOBase):
    """The decoded bytes of a non-seekable archive (streams back to back), read forwards."""

    def __init__(self, fileobj: BinaryIO, model: ModelSpec, device: str) -> None:
        self._f, self._model, self._device = fileobj, model, device
        self._dec: Decompressor | None = None
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._pending:
            if self._dec is None or self._dec.eof:
                started = self._dec is not None
                data = self._dec.unused_data if self._dec is not None else b""
                data = data or self._f.read(1 << 16)
                if not data:
                    if started:
                        return 0  # the end of the last stream
                    raise FormatError("not a nncompress archive (empty input)")
                self._dec = Decompressor(model=self._model, device=self._device)
            else:
                data = self._f.read(1 << 16)
                if not data:
                    raise TruncatedError("truncated archive: unexpected end of data")
            self._pending = self._dec.decompress(data)
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


class NNCFile(io.BufferedIOBase):
    """A file object over a ``.nnc`` archive, as ``lzma.LZMAFile`` is over an ``.xz``.

    Reading (``"rb"``) decodes as the reader asks; on a seekable file ``seek`` goes through
    the archive's index and decodes only the frames that hold the bytes read. Writing
    (``"wb"``, ``"xb"``, ``"ab"``: a new stream appended) codes frames as they fill and
    ends the stream at ``close``."""

    def __init__(
        self,
        filename: str | bytes | os.PathLike | BinaryIO,
        mode: str = "rb",
        *,
        level: str = "default",
        model: ModelSpec = None,
        threads: int = 0,
        device: str = "cpu",
        block_size: int | None = None,
        frame_size: int | None = None,
    ) -> None:
        mode = mode.replace("b", "")
        if mode not in ("r", "w", "x", "a"):
            raise ValueError(f"invalid mode: {mode!r}")
        self._mode = mode
        self._reader: io.BufferedReader | None = None
        self._enc: StreamEncoder | None = None
        self._written = 0
        self._owns = False
        self._target: str | None = None  # a new file, written under a temporary name
        self._append_at: int | None = None  # where an appended stream starts
        if isinstance(filename, (str, bytes, os.PathLike)):
            name = os.fsdecode(filename)
            if mode in ("w", "x"):
                if mode == "x" and os.path.lexists(name):
                    raise FileExistsError(f"{name} already exists")
                name = os.path.realpath(name)  # write through a symbolic link, not over it
                self._target = name
                folder, base = os.path.split(name)
                name = os.path.join(folder, f".{base}.{os.getpid()}.{id(self)}.tmp")
            self._fp: BinaryIO = builtins.open(name, "xb" if self._target else mode + "b")
            self._owns = True
            if mode == "a":
                self._append_at = self._fp.tell()
        elif hasattr(filename, "read" if mode == "r" else "write"):
            self._fp = filename  # type: ignore[assignment]
        else:
            raise TypeError("filename must be a str, bytes, os.PathLike or file object")
        try:
            if mode == "r":
                if self._fp.seekable():
                    from .reader import ArchiveReader

                    raw: io.RawIOBase = ArchiveReader(self._fp, _lookup(model, device))
                else:
                    raw = _StreamReader(self._fp, model, device)
                self._reader = io.BufferedReader(raw, 1 << 16)
            else:
                self._enc = StreamEncoder(
                    _model(model, level, device),
                    block_size,
                    level,
                    threads=threads,
                    frame_size=frame_size,
                    sink=self._fp.write,
                )
        except BaseException:
            self._release(keep=False)  # (a new file is not created, an old one untouched)
            raise

    # io plumbing
    def readable(self) -> bool:
        self._check()
        return self._reader is not None

    def writable(self) -> bool:
        self._check()
        return self._enc is not None

    def seekable(self) -> bool:
        self._check()
        return self._reader is not None and self._reader.seekable()

    def _check(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def _reading(self) -> io.BufferedReader:
        self._check()
        if self._reader is None:
            raise io.UnsupportedOperation("File not open for reading")
        return self._reader

    def read(self, size: int | None = -1) -> bytes:
        return self._reading().read(-1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        return self._reading().read1(size)

    def readinto(self, b: Any) -> int:
        return self._reading().readinto(b)

    def readline(self, size: int | None = -1) -> bytes:
        return self._reading().readline(-1 if size is None else size)

    def peek(self, size: int = 0) -> bytes:
        return self._reading().peek(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        reader = self._reading()
        if not reader.seekable():
            raise io.UnsupportedOperation("the archive is not seekable")
        return reader.seek(offset, whence)

    def tell(self) -> int:
        self._check()
        if self._reader is not None:
            return self._reader.tell()
        return self._written

    def write(self, data: Any) -> int:
        self._check()
        if self._enc is None:
            raise io.UnsupportedOperation("File not open for writing")
        data = memoryview(data).cast("B")
        self._enc.write(bytes(data))
        self._written += len(data)
        return len(data)

    def fileno(self) -> int:
        self._check()
        return self._fp.fileno()

    def close(self) -> None:
        """Finish the stream (writing) and close; a new file appears under its name only
        now, complete."""
        if self.closed:
            return
        done = False
        try:
            if self._enc is not None:
                self._enc.finish()
            done = True
        finally:
            self._release(keep=done)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """On an exception, writing leaves nothing behind: no new file, and an appended
        stream is cut off again."""
        if exc_type is None or self.closed:
            self.close()
        else:
            self._release(keep=self._enc is None)

    def _release(self, keep: bool) -> None:
        try:
            if self._enc is not None:
                self._enc.close()
            if self._owns:
                if not keep and self._append_at is not None:
                    self._fp.truncate(self._append_at)
                self._fp.close()
                if self._target is not None:
                    tmp = self._fp.name
                    try:
                        if keep:
                            _publish(tmp, self._target, exclusive=self._mode == "x")
                    finally:
                        if os.path.lexists(tmp):
                            os.unlink(tmp)
        finally:
            super().close()


def _publish(tmp: str, target: str, exclusive: bool) -> None:
    """Give the finished file ``tmp`` its name: ``exclusive``, only if no file of that name
    appeared meanwhile (a hard link refuses one; where links are not supported, a check
    just before the rename). A file it replaces passes on its permission bits."""
    if exclusive:
        try:
            os.link(tmp, target)
            return
        except FileExistsError:
            raise
        except OSError:
            if os.path.lexists(target):
                raise FileExistsError(f"{target} already exists") from None
    elif os.path.exists(target):
        import shutil

        shutil.copymode(target, tmp)
    os.replace(tmp, target)


def open(  # noqa: A001  (the shape of lzma.open)
    filename: str | bytes | os.PathLike | BinaryIO,
    mode: str = "rb",
    *,
    level: str = "default",
    model: ModelSpec = None,
    threads: int = 0,
    device: str = "cpu",
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
) -> NNCFile | IO[str]:
    """Open a ``.nnc`` archive in binary (``"rb"``, ``"wb"``, ``"xb"``, ``"ab"``) or text
    (``"rt"``, ``"wt"``, ...) mode; text modes wrap the binary file in ``io.TextIOWrapper``
    with ``encoding``, ``errors`` and ``newline``."""
    if "t" in mode:
        if "b" in mode:
            raise ValueError(f"invalid mode: {mode!r}")
    elif encoding is not None or errors is not None or newline is not None:
        raise ValueError("encoding, errors and newline are for text mode only")
    binary = NNCFile(
        filename, mode.replace("t", ""), level=level, model=model, threads=threads, device=device
    )
    if "t" in mode:
        return io.TextIOWrapper(binary, io.text_encoding(encoding), errors, newline)
    return binary
