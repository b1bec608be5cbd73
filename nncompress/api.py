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
from .engine import StreamEncoder, decompress_stream
from .errors import NNCError
from .format import FormatError, TruncatedError
from .levels import DEFAULT_BLOCK, DEFAULT_FRAME, LEVELS
from .model import IntModel, ModelError
from .zoo import load_model, model_for_archive, model_ref, model_spec

__all__ = [
    "NNCError",
    "FormatError",
    "ModelError",
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
            if model_ref(model) == (header.model, header.model_prefix):
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
    block_size: int = DEFAULT_BLOCK,
    frame_size: int = DEFAULT_FRAME,
    memory: int | None = None,
) -> bytes:
    """The ``.nnc`` archive of ``data``, one stream. ``level``: ``fast``, ``default`` or
    ``max`` (``levels.LEVELS``)."""
    enc = StreamEncoder(
        _model(model, level, device),
        block_size,
        level,
        threads=threads,
        frame_size=frame_size,
        memory=memory,
    )
    try:
        return enc.write(bytes(data)) + enc.finish()
    finally:
        enc.close()


def decompress(
    data: bytes,
    *,
    model: ModelSpec = None,
    threads: int = 0,
    device: str = "cpu",
    memory: int | None = None,
) -> bytes:
    """The original bytes of an archive of one or more streams."""
    out = io.BytesIO()
    decompress_stream(io.BytesIO(data), out, _lookup(model, device), threads=threads, memory=memory)
    return out.getvalue()


def compress_bytes(
    data: bytes,
    model: IntModel | None = None,
    block_size: int = DEFAULT_BLOCK,
    level: str = "default",
    int8_products: bool = False,
) -> bytes:
    """``compress`` as ``compare`` calls it. ``int8_products``: let large blocks switch the
    model to int8 products through torch (for callers that own the process: it sets
    torch's thread count)."""
    enc = StreamEncoder(_model(model, level, "cpu"), block_size, level, int8_products=int8_products)
    try:
        return enc.write(bytes(data)) + enc.finish()
    finally:
        enc.close()


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
    returns the rest; then the object is spent, as ``lzma.LZMACompressor`` is."""

    def __init__(
        self,
        level: str = "default",
        *,
        model: ModelSpec = None,
        threads: int = 0,
        device: str = "cpu",
        block_size: int = DEFAULT_BLOCK,
        frame_size: int = DEFAULT_FRAME,
        memory: int | None = None,
    ) -> None:
        self._enc = StreamEncoder(
            _model(model, level, device),
            block_size,
            level,
            threads=threads,
            frame_size=frame_size,
            memory=memory,
        )
        self._flushed = False

    def compress(self, data: bytes) -> bytes:
        if self._flushed:
            raise ValueError("Compressor has been flushed")
        return self._enc.write(bytes(data))

    def flush(self) -> bytes:
        if self._flushed:
            raise ValueError("repeated call to flush()")
        self._flushed = True
        return self._enc.finish()


class Decompressor:
    """Decompress one stream incrementally, as ``lzma.LZMADecompressor`` does: feed it
    bytes with ``decompress``; it returns what it could decode (a frame at a time, up to
    ``max_length`` bytes if given). ``eof`` says the stream has ended; ``unused_data``
    holds what followed it; ``needs_input`` is False while decoded bytes are waiting."""

    def __init__(self, *, model: ModelSpec = None, device: str = "cpu") -> None:
        self._get_model = _lookup(model, device)
        self._input = bytearray()
        self._output = bytearray()
        self._frames: Any = None
        self._number = self._blocks = self._raw = 0  # frames, blocks and bytes decoded
        self._index = False
        self.eof = False
        self.unused_data = b""

    @property
    def needs_input(self) -> bool:
        return not self.eof and not self._output

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if self.eof and data:
            raise EOFError("already at end of stream")
        self._input += data
        if not self.eof:
            self._advance()
        if max_length < 0:
            out, self._output = bytes(self._output), bytearray()
        else:
            out = bytes(self._output[:max_length])
            del self._output[:max_length]
        return out

    def _advance(self) -> None:
        from .engine import StreamInfo, _Frames

        while not self.eof:
            src = io.BytesIO(self._input)
            out = io.BytesIO()
            info = StreamInfo(raw_len=self._raw)
            try:
                if self._frames is None:
                    header, header_bytes = fmt.read_header(src)
                    frames = _Frames(
                        header, header_bytes, self._get_model, None, False, True, False
                    )
                    self._frames = frames
                    self.eof = header.block_size == 0
                elif self._index:
                    fmt.read_index(src)
                    self.eof = True
                else:
                    end = self._frames.frame(
                        src, info, out, True, self._blocks, self._number, self._raw
                    )
                    self._number += 1
                    self._blocks += len(info.blocks)
                    self._raw = info.raw_len
                    self._index = end == fmt.END_INDEX
                    self.eof = end == fmt.END_STREAM
            except TruncatedError:
                return  # wait for more input (a frame decodes once it is all here)
            self._output += out.getvalue()
            del self._input[: src.tell()]
        self.unused_data = bytes(self._input)
        self._input.clear()


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
        block_size: int = DEFAULT_BLOCK,
        frame_size: int = DEFAULT_FRAME,
    ) -> None:
        mode = mode.replace("b", "")
        if mode not in ("r", "w", "x", "a"):
            raise ValueError(f"invalid mode: {mode!r}")
        self._target: str | None = None  # a new file, written under a temporary name
        self._append_at: int | None = None  # where an appended stream starts
        if isinstance(filename, (str, bytes, os.PathLike)):
            name = os.fsdecode(filename)
            if mode in ("w", "x"):
                if mode == "x" and os.path.lexists(name):
                    raise FileExistsError(f"{name} already exists")
                self._target = name
                folder, base = os.path.split(name)
                name = os.path.join(folder, f".{base}.{os.getpid()}.{id(self)}.tmp")
            self._fp: BinaryIO = builtins.open(name, "xb" if self._target else mode + "b")
            if mode == "a":
                self._append_at = self._fp.tell()
            self._owns = True
        elif hasattr(filename, "read" if mode == "r" else "write"):
            self._fp, self._owns = filename, False  # type: ignore[assignment]
        else:
            raise TypeError("filename must be a str, bytes, os.PathLike or file object")
        self._mode = mode
        self._reader: io.BufferedReader | None = None
        self._enc: StreamEncoder | None = None
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
            if self._owns:
                self._fp.close()
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
        assert self._enc is not None
        return self._enc.info.raw_len + len(self._enc._input)

    def write(self, data: Any) -> int:
        self._check()
        if self._enc is None:
            raise io.UnsupportedOperation("File not open for writing")
        data = memoryview(data).cast("B")
        self._enc.write(bytes(data))
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
                        if keep and self._mode == "x":
                            os.link(tmp, self._target)  # refuses a file that appeared since
                        elif keep:
                            os.replace(tmp, self._target)
                    finally:
                        if os.path.lexists(tmp):
                            os.unlink(tmp)
        finally:
            super().close()


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
