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

from . import adaptive
from . import format as fmt
from .adaptive import Spending, StreamState
from .coder import decode_block, decode_block_mixed, encode_block, encode_block_mixed
from .model import IntModel

DEFAULT_BLOCK = 1 << 20  # 1 MiB
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


#: Which methods a compression level tries (stored is always possible). ``fast`` runs the
#: network alone: no adaptive statistics, no LZMA trial. ``max`` tries what ``default``
#: does, but cuts its mixed blocks into fewer segments (SEGMENT_RULES).
LEVELS: dict[str, tuple[int, ...]] = {
    "fast": (fmt.METHOD_MODEL,),
    "default": (fmt.METHOD_MIXED, fmt.METHOD_LZMA),
    "max": (fmt.METHOD_MIXED, fmt.METHOD_LZMA),
}
#: How many lockstep segments a level's mixed blocks get, from the block length, where
#: not the format's default count: ``max`` takes the fewest the format allows (one per
#: MiB), slower and smaller.
SEGMENT_RULES: dict[str, Callable[[int], int]] = {"max": fmt.fewest_segments}

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
    segments: int


@dataclass
class StreamInfo:
    """What was read or written: the header fields and every block."""

    model_name: str = ""
    model_sha256: str = ""
    block_size: int = 0
    raw_len: int = 0
    archive_len: int = 0
    blocks: list[BlockInfo] = field(default_factory=list)
    #: Where the bits of mixed blocks went (only when accounting was asked for).
    spending: Spending | None = None

    def add_spending(self, state: StreamState) -> None:
        if state.spending is None:
            return
        if self.spending is None or type(self.spending) is not state.spending_type:
            # (streams of different versions back to back: the later one's accounts)
            self.spending = state.spending_type(state.spending.copy())
        else:
            self.spending.totals += state.spending


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
    version: int = fmt.VERSION,
) -> tuple[fmt.BlockHeader, bytes]:
    """Code one block with the smallest of the allowed methods (stored is always allowed).
    ``parallel``: run the LZMA2 trial, and the mixed method's network, in threads of their
    own. ``segment_rule``: the mixed method's segment count for the block's length.
    ``version``: the stream's format version.

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
        payload, segments = encode_block(model, data, progress)
        cands.append((fmt.METHOD_MODEL, payload, segments))
    before = None
    if fmt.METHOD_MIXED in methods:
        before = state.snapshot()
        payload, segments = encode_block_mixed(
            model, data, state, progress, segment_rule(len(data)), version, parallel
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
    method, payload, segments = best
    return fmt.BlockHeader(method, len(data), len(payload), segments, fmt.crc32(data)), payload


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
) -> StreamInfo:
    """Compress all of ``src`` into one ``.nnc`` stream on ``dst``. ``account``: record
    where the bits went (``StreamInfo.spending``). ``threads``: 1 keeps everything on one
    thread; otherwise the LZMA2 trial runs beside the network when there are cores for it.
    ``int8_products``: let large blocks switch the model to int8 products through torch
    where that pays (``_int8_for``; the same archive, faster; for callers that own the
    process, as the CLI does)."""
    if not 0 < block_size <= fmt.MAX_BLOCK:
        raise ValueError(f"block size must be between 1 and {fmt.MAX_BLOCK}")
    methods = LEVELS[level]
    segment_rule = SEGMENT_RULES.get(level, fmt.segment_count)
    data = _read_full(src, block_size)
    if 0 < len(data) < block_size:
        # The whole input is one short block: say so in the header, which sizes the
        # decoder's buffers and the adaptive tables to the data.
        block_size = len(data)
    header = fmt.Header(model.name, model.sha256, block_size)
    info = StreamInfo(model.name, model.sha256, block_size)
    out = header.pack()
    dst.write(out)
    info.archive_len += len(out)
    total_crc = 0
    state = stream_state(header, account)
    parallel = threads != 1 and (os.cpu_count() or 1) > 1
    while data:
        _int8_for(model, len(data), int8_products, parallel)
        bh, payload = compress_block(
            model, data, methods, state, progress, parallel, segment_rule, header.version
        )
        out = bh.pack()
        dst.write(out)
        dst.write(payload)
        total_crc = fmt.crc32(data, total_crc)
        info.raw_len += len(data)
        info.archive_len += len(out) + len(payload)
        info.blocks.append(BlockInfo(bh.method, bh.raw_len, bh.coded_len, bh.segments))
        data = _read_full(src, block_size)
    out = fmt.End(info.raw_len, total_crc).pack()
    dst.write(out)
    info.archive_len += len(out)
    info.add_spending(state)
    return info


def stream_state(header: fmt.Header, account: bool = False) -> StreamState:
    """The adaptive statistics of a new stream: the mixed method learns as the header's
    format version specifies (version 6: ``adaptive``, 4 and 5: ``adaptive_v5``, 3:
    ``adaptive_v3``, all with tables sized by the block size; 1 and 2: ``adaptive_v2``).
    The frozen modules are imported only for their archives: each builds its tables at
    import, a tenth of a second that every run of the program would otherwise pay."""
    if header.version >= 6:
        return adaptive.StreamState(account, header.block_size)
    if header.version >= 4:
        from . import adaptive_v5

        return adaptive_v5.StreamState(account, header.block_size)  # type: ignore[return-value]
    if header.version == 3:
        from . import adaptive_v3

        return adaptive_v3.StreamState(account, header.block_size)  # type: ignore[return-value]
    from . import adaptive_v2

    return adaptive_v2.StreamState(account)  # type: ignore[return-value]


ModelLookup = Callable[[fmt.Header], IntModel]


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

    ``dst=None`` checks integrity only; ``decode=False`` only walks the block table. The
    model is looked up only when a block needs it, so stored/LZMA-only archives decode
    without it. Raises ``FormatError`` at the first
    damaged block, after the good blocks before it have been written. ``account``: record
    where the bits went, as ``compress_stream`` does. ``threads``: 1 keeps everything on
    one thread; otherwise the network runs in a thread of its own when there are cores.
    ``int8_products``: as for ``compress_stream``.
    """
    parallel = threads != 1 and (os.cpu_count() or 1) > 1
    first = src.read(4)
    if not first:
        raise fmt.FormatError("not a nncompress archive (empty input)")
    info = StreamInfo()
    while first:
        header = fmt.read_header(src, first)
        info.model_name, info.model_sha256 = header.model_name, header.model_sha256
        info.block_size = header.block_size
        info.archive_len += len(header.pack())
        model: IntModel | None = None
        state = stream_state(header, account)
        total_crc, total_len, index = 0, 0, 0
        while True:
            bh = fmt.read_block_header(src, header)
            if isinstance(bh, fmt.End):
                info.archive_len += fmt.END_SIZE
                if decode and (bh.total_len != total_len or bh.total_crc != total_crc):
                    raise fmt.FormatError("corrupted archive: whole-stream checksum mismatch")
                info.add_spending(state)
                break
            payload = fmt.read_payload(src, bh)
            info.raw_len += bh.raw_len
            info.archive_len += fmt.BLOCK_OVERHEAD + bh.coded_len
            info.blocks.append(BlockInfo(bh.method, bh.raw_len, bh.coded_len, bh.segments))
            if not decode:
                continue
            if bh.method in fmt.MODEL_METHODS:
                if model is None:
                    model = get_model(header)
                _int8_for(model, bh.raw_len, int8_products, parallel)
            raw = _decode_payload(model, bh, payload, state, progress, header.version, parallel)
            if len(raw) != bh.raw_len or fmt.crc32(raw) != bh.raw_crc:
                end = total_len + bh.raw_len
                raise fmt.FormatError(
                    f"corrupted archive: block {index} (bytes {total_len}..{end}) checksum mismatch"
                )
            if dst is not None:
                dst.write(raw)
            total_crc = fmt.crc32(raw, total_crc)
            total_len += len(raw)
            index += 1
        first = src.read(4)
    return info


def _decode_payload(
    model: IntModel | None,
    bh: fmt.BlockHeader,
    payload: bytes,
    state: StreamState,
    progress: Progress | None,
    version: int,
    parallel: bool,
) -> bytes:
    """A block's raw bytes; ``state`` advances exactly as the encoder's did."""
    try:
        if bh.method == fmt.METHOD_MIXED:
            assert model is not None
            return decode_block_mixed(
                model, payload, bh.raw_len, bh.segments, state, progress, version, parallel
            )
        if bh.method == fmt.METHOD_STORED:
            raw = payload
        elif bh.method == fmt.METHOD_LZMA:
            raw = _lzma_decompress(payload, bh.raw_len, bh.segments)
        else:
            assert model is not None
            raw = decode_block(model, payload, bh.raw_len, bh.segments, progress)
        state.add_other_block(raw)
        return raw
    except (lzma.LZMAError, ValueError, RuntimeError) as e:
        raise fmt.FormatError(f"corrupted archive: block cannot be decoded ({e})") from None


def list_stream(src: BinaryIO) -> StreamInfo:
    """Header and block table of an archive, read without decoding any payload."""
    return decompress_stream(src, None, lambda h: None, decode=False)  # type: ignore[arg-type,return-value]
