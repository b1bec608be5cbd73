"""Streams in, streams out: block-by-block compression and decompression of ``.nnc`` data.

Memory stays bounded on endless pipes: input is read one block at a time, each block is
written as soon as it is coded, and the adaptive statistics carried across blocks have a
fixed size (the match window keeps the last 64 MiB). Every block takes whichever method is
smallest -- the network mixed with adaptive statistics, raw LZMA2 (a classical fallback),
or stored -- so the output is never more than a few bytes per block larger than the input.
"""

from __future__ import annotations

import functools
import lzma
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

from . import format as fmt
from .adaptive import Spending, StreamState
from .coder import decode_block, decode_block_mixed, encode_block, encode_block_mixed
from .config import DEFAULT, Config
from .levels import DEFAULT_BLOCK, DEFAULT_FRAME, LEVELS
from .model import IntModel

LZMA_PRESET = 9 | lzma.PRESET_EXTREME
#: LZMA2 settings a block may use (its header's ``segments`` field holds the index; part
#: of the format): xz's default, then literal/position settings for aligned binary data,
#: and branch-call filters for SPARC and x86 code.
LZMA_VARIANTS: tuple[tuple[int | None, int, int, int], ...] = (
    (None, 3, 0, 2),
    (None, 0, 2, 2),
    (None, 1, 0, 0),
    (None, 0, 1, 1),
    (None, 4, 0, 0),
    (lzma.FILTER_SPARC, 3, 0, 2),
    (lzma.FILTER_X86, 3, 0, 2),
)
LZMA_SAMPLE = 1 << 16  # larger blocks rank the variants on their first 64 KiB


def _lzma_filters(n: int, variant: int) -> list[dict]:
    """Preset 9e with the dictionary cut to the block (at least 4 KiB: a 64 MiB dictionary
    for a small block only costs allocation time, in the encoder and the decoder)."""
    bcj, lc, lp, pb = LZMA_VARIANTS[variant]
    lz = {
        "id": lzma.FILTER_LZMA2,
        "preset": LZMA_PRESET,
        "lc": lc,
        "lp": lp,
        "pb": pb,
        "dict_size": max(4096, min(n, 64 << 20)),
    }
    return ([{"id": bcj}] if bcj else []) + [lz]


Progress = Callable[[int], None]

#: With ``int8_products``, a model block at least this long switches the model to int8
#: products (``IntModel.use_int8_products``): importing torch costs about a second, which
#: such a block repays.
INT8_MIN_BLOCK = 512 << 10
#: Models with more weights than this are "large": their float products are slow enough
#: (the ``large`` model's float step runs at a third of the default's) that int8 products
#: repay the import on blocks from INT8_MIN_BLOCK_LARGE, and pay with a second core too.
#: With the default model the coder's thread sets the pace there, and int8 products
#: gained too little to pay for the import on book1.
INT8_LARGE_WEIGHTS = 400_000
INT8_MIN_BLOCK_LARGE = 64 << 10


def _int8_for(model: IntModel | None, n: int, allowed: bool, parallel: bool) -> None:
    """Switch ``model`` to int8 products for a block of ``n`` bytes, if allowed and worth
    it. Torch then runs on one thread: the caller's only one, or the network's own."""
    if not allowed or model is None or model.ops.name != "numpy":
        return
    large = model.parameters > INT8_LARGE_WEIGHTS
    if n < (INT8_MIN_BLOCK_LARGE if large else INT8_MIN_BLOCK) or (parallel and not large):
        return
    if model.use_int8_products():
        import torch

        torch.set_num_threads(1)


@dataclass
class BlockInfo:
    method: int
    raw_len: int
    coded_len: int
    #: Segment count of model and mixed blocks, filter variant of LZMA blocks, 0 if stored.
    segments: int
    frame: int = 0


@dataclass
class FrameInfo:
    """A frame's place in the archive: where its first block starts (``offset``, from the
    start of the file or input) and where its bytes start in the decoded output."""

    offset: int
    coded_len: int
    raw_offset: int
    raw_len: int


@dataclass
class StreamInfo:
    """What was read or written: the header fields, every frame and every block."""

    model: int = fmt.MODEL_NONE
    model_prefix: str = ""
    config: Config = DEFAULT
    block_size: int = 0
    raw_len: int = 0
    archive_len: int = 0
    streams: int = 0
    blocks: list[BlockInfo] = field(default_factory=list)
    frames: list[FrameInfo] = field(default_factory=list)
    #: Where the bits of mixed blocks went (only when accounting was asked for).
    spending: Spending | None = None

    def add_spending(self, state: StreamState | None) -> None:
        spent = state.spent() if state is not None else None
        if spent is None:
            return
        if self.spending is None or self.spending.inputs != spent.inputs:
            self.spending = spent  # (streams of other configurations: the later one's)
        else:
            self.spending.totals += spent.totals

    @property
    def model_name(self) -> str:
        from .zoo import REGISTRY

        if self.model in REGISTRY:
            return REGISTRY[self.model][0]
        return f"sha256:{self.model_prefix}" if self.model_prefix else "-"


def _read_full(src: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes; short only at end of input (pipes return short reads)."""
    parts, got = [], 0
    while got < n:
        chunk = src.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _lzma(data: bytes, n: int, variant: int) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=_lzma_filters(n, variant))


def _lzma_compress(data: bytes) -> tuple[bytes, int]:
    """The smallest LZMA2 coding of ``data`` over the variants, and the variant's index.
    Blocks larger than the sample are coded in full with the variant best on their start."""
    variants = range(len(LZMA_VARIANTS))
    if len(data) > 2 * LZMA_SAMPLE:
        sample = data[:LZMA_SAMPLE]
        best = min(variants, key=lambda v: (len(_lzma(sample, len(data), v)), v))
        return _lzma(data, len(data), best), best
    return min(((_lzma(data, len(data), v), v) for v in variants), key=lambda c: (len(c[0]), c[1]))


@functools.cache
def _trial_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="nncompress-lzma", initializer=_lowest_priority
    )


def _lowest_priority() -> None:
    """Run the calling thread at the lowest CPU priority (Linux gives each thread its own):
    the LZMA2 trial then takes the time the coder's threads leave idle instead of slowing
    the network's thread, which sets the pace."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:
            pass


def _lzma_decompress(payload: bytes, n: int, variant: int) -> bytes:
    d = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=_lzma_filters(n, variant))
    return d.decompress(payload, max_length=n + 1)


def compress_block(
    model: IntModel,
    data: bytes,
    methods: tuple[int, ...],
    state: StreamState,
    progress: Progress | None = None,
    parallel: bool = True,
    segment_rule: Callable[[int], int] = fmt.segment_count,
) -> tuple[int, bytes, int]:
    """Code one block with the smallest of the allowed methods (stored is always allowed);
    returns (method, payload, segment count or LZMA variant). ``parallel``: run the LZMA2
    trial, and the mixed method's network, in threads of their own. ``segment_rule``: the
    mixed method's segment count for the block's length.

    ``state`` ends up as the decoder will have it after this block: updated by the mixed
    method only if that method is the one written, and holding the block in its history.
    """
    # Candidates in order of preference: on equal sizes the earlier one wins, so the
    # choice does not depend on which trial finished first.
    cands: list[tuple[int, bytes, int]] = [(fmt.METHOD_STORED, data, 0)]
    lzma_trial = None
    if fmt.METHOD_LZMA in methods:
        # liblzma releases the GIL: with a core to spare, its trial runs beside the
        # network's (about a tenth of the block's time, otherwise).
        if parallel and any(m in methods for m in fmt.MODEL_METHODS):
            lzma_trial = _trial_pool().submit(_lzma_compress, data)
        else:
            packed, variant = _lzma_compress(data)
            cands.append((fmt.METHOD_LZMA, packed, variant))
    if fmt.METHOD_MODEL in methods:
        payload, segments = encode_block(model, data, progress, segment_rule(len(data)))
        cands.append((fmt.METHOD_MODEL, payload, segments))
    before = None
    if fmt.METHOD_MIXED in methods:
        before = state.snapshot()
        payload, segments = encode_block_mixed(
            model, data, state, progress, segment_rule(len(data)), parallel
        )
        cands.append((fmt.METHOD_MIXED, payload, segments))
    if lzma_trial is not None:
        packed, variant = lzma_trial.result()
        cands.insert(1, (fmt.METHOD_LZMA, packed, variant))
    best = min(cands, key=lambda c: len(c[1]))
    if best[0] != fmt.METHOD_MIXED:
        if before is not None:
            state.restore(before)
        state.add_other_block(data)
    return best


def compress_stream(
    src: BinaryIO,
    dst: BinaryIO,
    model: IntModel,
    block_size: int = DEFAULT_BLOCK,
    level: str = "default",
    progress: Progress | None = None,
    account: bool = False,
    threads: int = 0,
    int8_products: bool = False,
    frame_size: int = DEFAULT_FRAME,
    config: Config | None = None,
) -> StreamInfo:
    """Compress all of ``src`` into one ``.nnc`` stream on ``dst``: frames of ``frame_size``
    bytes (rounded down to whole blocks, at least one), each of blocks of ``block_size``.
    ``config``: the mixed method's configuration (default: the level's), written in the
    header as a preset number or in full.
    ``account``: record where the bits went (``StreamInfo.spending``). ``threads``: 1 keeps
    everything on one thread; otherwise the LZMA2 trial runs beside the network when there
    are cores for it. ``int8_products``: let large blocks switch the model to int8 products
    through torch where that pays (``_int8_for``; the same archive, faster; for callers
    that own the process, as the CLI does).

    The input is read one block ahead, so that each block's descriptor can say whether the
    frame or the stream ends with it; a stream that is one block long, coded without the
    model, names no model (the header is written after that block is coded)."""
    from .zoo import model_ref

    if not 0 < block_size <= fmt.MAX_BLOCK:
        raise ValueError(f"block size must be between 1 and {fmt.MAX_BLOCK}")
    if frame_size < 1:
        raise ValueError("frame size must be positive")
    lvl = LEVELS[level]
    config = config or lvl.config
    frame_blocks = max(1, frame_size // block_size)
    data = _read_full(src, block_size)
    info = StreamInfo(config=config, streams=1)
    if not data:
        out = fmt.Header(0).pack()
        dst.write(out)
        info.archive_len = len(out)
        return info
    nxt = _read_full(src, block_size)
    if not nxt and len(data) < block_size:
        # The whole input is one short block: say so in the header, which bounds the
        # decoder's buffers and sizes the adaptive tables to the data.
        block_size = len(data)
    ref, prefix = model_ref(model)
    header = fmt.Header(block_size, ref, prefix, config)
    header_bytes = b""
    parallel = threads != 1 and (os.cpu_count() or 1) > 1
    state = StreamState(config, block_size, account)
    seed = check = 0
    in_frame = 0
    frame = FrameInfo(0, 0, 0, 0)
    while data:
        _int8_for(model, len(data), int8_products, parallel)
        method, payload, param = compress_block(
            model, data, lvl.methods, state, progress, parallel, lvl.segments
        )
        if not header_bytes:
            if not nxt and method not in fmt.MODEL_METHODS:
                header = fmt.Header(block_size)  # a stream of one block needs no model
            header_bytes = header.pack()
            dst.write(header_bytes)
            info.model, info.model_prefix = header.model, header.model_prefix
            info.block_size, info.archive_len = block_size, len(header_bytes)
            seed = check = fmt.crc32(header_bytes)
            frame.offset = len(header_bytes)
        in_frame += 1
        if not nxt:
            end = fmt.END_INDEX if info.frames else fmt.END_STREAM
        else:
            end = fmt.END_FRAME if in_frame == frame_blocks else fmt.END_NONE
        bh = fmt.BlockHeader(method, len(data), len(payload), param, end)
        head = bh.pack(block_size)
        check = fmt.block_check(head, data, check)
        dst.write(head)
        dst.write(payload)
        dst.write(fmt.CHECK.pack(check))
        size = len(head) + len(payload) + fmt.CHECK_SIZE
        info.blocks.append(BlockInfo(method, len(data), len(payload), param, len(info.frames)))
        info.raw_len += len(data)
        info.archive_len += size
        frame.coded_len += size
        frame.raw_len += len(data)
        if end != fmt.END_NONE:
            info.frames.append(frame)
            frame = FrameInfo(info.archive_len, 0, info.raw_len, 0)
            info.add_spending(state)
            in_frame, check = 0, seed
            if end == fmt.END_FRAME:
                state = StreamState(config, block_size, account)
        data, nxt = nxt, (_read_full(src, block_size) if nxt else b"")
    if len(info.frames) > 1:
        entries = [fmt.FrameEntry(f.raw_len, f.coded_len) for f in info.frames]
        out = fmt.Index(len(header_bytes), entries).pack()
        dst.write(out)
        info.archive_len += len(out)
    return info


ModelLookup = Callable[[fmt.Header], IntModel]


class _Frames:
    """Decodes the frames of one stream, one after the other or any one alone: what a
    frame's blocks need is the stream's header, the model (looked up when a block first
    needs it, so stored and LZMA archives decode without it) and fresh statistics."""

    def __init__(
        self,
        header: fmt.Header,
        header_bytes: bytes,
        get_model: ModelLookup,
        progress: Progress | None,
        account: bool,
        parallel: bool,
        int8_products: bool,
    ) -> None:
        self.header, self.seed = header, fmt.crc32(header_bytes)
        self.get_model, self.model = get_model, None
        self.progress, self.account = progress, account
        self.parallel, self.int8_products = parallel, int8_products

    def frame(
        self,
        src: BinaryIO,
        info: StreamInfo,
        dst: BinaryIO | None,
        decode: bool = True,
    ) -> int:
        """Read (and with ``decode`` check and decode, to ``dst`` unless None) one frame's
        blocks from ``src``; returns the last block's end code. Raises FormatError at the
        first damaged block, after the good blocks before it have been written."""
        state = StreamState(self.header.config, self.header.block_size, self.account)
        check = self.seed
        frame = FrameInfo(info.archive_len, 0, info.raw_len, 0)
        try:
            while True:
                bh, head = fmt.read_block_header(src, self.header)
                if decode or not src.seekable():
                    payload = fmt.read_payload(src, bh)
                else:
                    src.seek(bh.coded_len, os.SEEK_CUR)
                    payload = b""
                stored = fmt.read_check(src)
                size = len(head) + bh.coded_len + fmt.CHECK_SIZE
                info.blocks.append(
                    BlockInfo(bh.method, bh.raw_len, bh.coded_len, bh.param, len(info.frames))
                )
                if decode:
                    raw = self._block(bh, payload, state)
                    check = fmt.block_check(head, raw, check)
                    if len(raw) != bh.raw_len or check != stored:
                        index = len(info.blocks) - 1
                        end = info.raw_len + bh.raw_len
                        raise fmt.FormatError(
                            f"corrupted archive: block {index} (bytes {info.raw_len}..{end}) "
                            "checksum mismatch"
                        )
                    if dst is not None:
                        dst.write(raw)
                info.raw_len += bh.raw_len
                info.archive_len += size
                frame.coded_len += size
                frame.raw_len += bh.raw_len
                if bh.end != fmt.END_NONE:
                    info.frames.append(frame)
                    return bh.end
        finally:
            info.add_spending(state if decode else None)

    def _block(self, bh: fmt.BlockHeader, payload: bytes, state: StreamState) -> bytes:
        """A block's raw bytes; ``state`` advances exactly as the encoder's did."""
        model = None
        if bh.method in fmt.MODEL_METHODS:
            if self.model is None:
                self.model = self.get_model(self.header)
            model = self.model
            _int8_for(model, bh.raw_len, self.int8_products, self.parallel)
        try:
            if bh.method == fmt.METHOD_MIXED:
                assert model is not None
                return decode_block_mixed(
                    model, payload, bh.raw_len, bh.param, state, self.progress, self.parallel
                )
            if bh.method == fmt.METHOD_STORED:
                raw = payload
            elif bh.method == fmt.METHOD_LZMA:
                raw = _lzma_decompress(payload, bh.raw_len, bh.param)
            else:
                assert model is not None
                raw = decode_block(model, payload, bh.raw_len, bh.param, self.progress)
            state.add_other_block(raw)
            return raw
        except (lzma.LZMAError, ValueError, RuntimeError) as e:
            raise fmt.FormatError(f"corrupted archive: block cannot be decoded ({e})") from None


def decompress_stream(
    src: BinaryIO,
    dst: BinaryIO | None,
    get_model: ModelLookup,
    progress: Progress | None = None,
    decode: bool = True,
    account: bool = False,
    threads: int = 0,
    int8_products: bool = False,
) -> StreamInfo:
    """Decode one or more concatenated ``.nnc`` streams from ``src`` to ``dst``.

    ``dst=None`` checks integrity only; ``decode=False`` only walks the headers (seeking
    over payloads where ``src`` can seek). The model is looked up only when a block needs
    it. Raises ``FormatError`` at the first damaged block, after the good blocks before it
    have been written. ``account``: record where the bits went, as ``compress_stream``
    does. ``threads``: 1 keeps everything on one thread; otherwise the network runs in a
    thread of its own when there are cores. ``int8_products``: as for ``compress_stream``.
    """
    parallel = threads != 1 and (os.cpu_count() or 1) > 1
    first = src.read(4)
    if not first:
        raise fmt.FormatError("not a nncompress archive (empty input)")
    info = StreamInfo()
    while first:
        header, header_bytes = fmt.read_header(src, first)
        info.streams += 1
        info.model, info.model_prefix = header.model, header.model_prefix
        info.config, info.block_size = header.config, header.block_size
        info.archive_len += len(header_bytes)
        if header.block_size:
            frames = _Frames(
                header, header_bytes, get_model, progress, account, parallel, int8_products
            )
            first_frame = len(info.frames)
            while (end := frames.frame(src, info, dst, decode)) == fmt.END_FRAME:
                pass
            if end == fmt.END_INDEX:
                index = fmt.read_index(src)
                mine = info.frames[first_frame:]
                got = [fmt.FrameEntry(f.raw_len, f.coded_len) for f in mine]
                if index.frames != got or index.header_len != len(header_bytes):
                    raise fmt.FormatError("corrupted archive: the index does not match the frames")
                info.archive_len += len(index.pack())
        first = src.read(4)
    return info


def list_stream(src: BinaryIO) -> StreamInfo:
    """Headers, frames and blocks of an archive, read without decoding any payload."""
    return decompress_stream(src, None, lambda h: None, decode=False)  # type: ignore[arg-type,return-value]
