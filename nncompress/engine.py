"""Streams in, streams out: block-by-block compression and decompression of ``.nnc`` data.

Memory stays bounded on endless pipes: input is read one block at a time, each block is
written as soon as it is coded, and the adaptive statistics carried across blocks have a
fixed size (the match window keeps the last 64 MiB). Every block takes whichever method is
smallest -- the network mixed with adaptive statistics, raw LZMA2 (a classical fallback),
or stored -- so the output is never more than a few bytes per block larger than the input.
"""

from __future__ import annotations

import functools
import io
import lzma
import os
import sys
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from . import filters, levels, records, repeats
from . import format as fmt
from .adaptive import Spending, StreamState, copy_snapshot
from .coder import (
    decode_block,
    decode_block_mixed,
    encode_block,
    encode_block_mixed,
    prime_state,
    stop_event,
    stopping,
)
from .config import DEFAULT, Config, like_level, variants
from .levels import LEVELS
from .model import IntModel

if TYPE_CHECKING:
    from .workers import FramePool, Workers

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

#: Frames shorter than this are coded in the calling process whatever the thread count:
#: starting a worker process (a fresh interpreter and its imports) costs a second or two,
#: which a frame of 256 KiB repays (it takes about two seconds to code).
MIN_WORKER_FRAME = 256 << 10

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


def _int8_for(
    model: IntModel | None, n: int, allowed: bool, parallel: bool, config: Config = DEFAULT
) -> None:
    """Switch ``model`` to int8 products for a block of ``n`` bytes of a stream of
    ``config``, if allowed and worth it. Torch then runs on one thread: the caller's only
    one, or the network's own. Binary streams count as large models do: their blocks have
    long segments (``records.segments``), so each network step has few rows, and there the
    float products' cost per step, not the coder, sets the pace."""
    if not allowed or model is None or model.ops.name != "numpy":
        return
    slow = model.parameters > INT8_LARGE_WEIGHTS or config.reads_records
    if n < (INT8_MIN_BLOCK_LARGE if slow else INT8_MIN_BLOCK) or (parallel and not slow):
        return
    if model.use_int8_products():
        import torch

        torch.set_num_threads(1)


@dataclass
class BlockInfo:
    method: int
    raw_len: int
    coded_len: int
    #: Segment count of model and mixed blocks, filter variant of LZMA blocks, for stored
    #: ones ``format.STORED_REPEAT`` if a repeat block, else 0.
    segments: int
    frame: int = 0
    #: A mixed block's record length (0: none), whether it was coded after the x86
    #: branch transform, and whether without the network.
    record: int = 0
    x86: bool = False
    flat: bool = False
    #: A copy block's distance (``format.STORED_COPY``), else 0.
    distance: int = 0

    @property
    def kind(self) -> str:
        """What the encoder took a mixed block for, as ``-v`` says it."""
        parts = ["x86 code"] if self.x86 else []
        if self.record:
            parts.append(f"records of {self.record} bytes")
        if self.flat:
            parts.append("without the network")
        return ", ".join(parts) or "plain"

    @classmethod
    def of(cls, bh: fmt.BlockHeader, frame: int = 0) -> BlockInfo:
        """What a block header says, for a block of frame number ``frame``."""
        return cls(
            bh.method,
            bh.raw_len,
            bh.coded_len,
            bh.param,
            frame,
            bh.record,
            bh.x86,
            bh.flat,
            bh.distance,
        )


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

    #: The worker processes that coded the frames (None: the calling process did).
    workers: Workers | None = None
    #: Bytes after the last stream that do not begin another (ignored, as gzip ignores
    #: them, with a warning from the command line), and whether they are all zeros.
    trailing: int = 0
    trailing_zeros: bool = True

    def add_spending(self, spent: Spending | None) -> None:
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
    rebuild: Callable[[], StreamState] | None = None,
    flat_text: bool = True,
    network_trial: bool = False,
    runs_by_lzma: bool = False,
    copy: int = 0,
    long_text: bool = False,
) -> Choice:
    """Code one block with the smallest of the allowed methods (stored is always allowed).
    ``parallel``: run the LZMA2 trial, and the mixed method's network, in threads of their
    own. ``segment_rule``: the mixed method's segment count for the block's length. The
    mixed method codes x86 code after the branch transform (``filters.looks_like_x86``),
    and looks for a record length (``records.detect``) when the stream's configuration has
    the record contexts. Binary blocks are coded without the network, and so is text that
    ``records.looks_redundant`` or ``records.looks_mixed`` where ``flat_text`` and a trial
    on its start (``_network_pays``) say so (``records.flat``); such text no longer than
    the trial is coded both ways, and the smaller kept. ``network_trial``: code
    such binary blocks with the network as well, and keep the smaller (``_if_smaller``).
    ``runs_by_lzma``: a block that LZMA2 codes in next to nothing (``TRIVIAL``; long runs,
    one line repeated: ``looks_trivial``) is taken by LZMA2 without trying the mixed
    method (``Choice.trivial``). At every level, a block that repeats a period of at most
    half its length (``repeats.period``) may be written as that period (a repeat block,
    ``format.STORED_REPEAT``), without trying anything else where no other method could
    be smaller (``REPEAT_UNTRIED``). ``copy``: the distance back at which the block's
    bytes occurred earlier in its frame (``repeats.Copies``; 0: nowhere); such a block is
    written as a copy block (``format.STORED_COPY``), untried: it costs a few bytes of
    header, where the mixed method spends some 300 bytes a MiB on a copy it has found,
    and more to find it. ``long_text``: the block is of a long text stream
    (``levels.Level.long_text``): text goes without the network, in one segment,
    untried.

    A binary block coded without the network most of whose chunks show another record
    length than its start (``records.alternative``) is coded with that one too, and the
    smaller kept.

    ``state`` ends up as the decoder will have it after this block: updated by the mixed
    method only if that method is the one written, and holding the block in its history.
    If another method wins, the mixed method's updates are undone: by ``rebuild()``, which
    returns the state as it was before the block, else from a copy taken before (the
    tables' size again: some 340 MB for blocks of 1 MiB).
    """
    period = repeats.period(data)
    repeat = Choice(fmt.METHOD_STORED, data[:period], fmt.STORED_REPEAT, trivial=True)
    if _repeat_untried(period, len(data)):
        state.add_other_block(data)
        return repeat
    if copy:
        state.add_other_block(data)
        return Choice(fmt.METHOD_STORED, b"", fmt.STORED_COPY, trivial=True, distance=copy)
    # Candidates in order of preference: on equal sizes the earlier one wins, so the
    # choice does not depend on which trial finished first.
    cands = [Choice(fmt.METHOD_STORED, data)]
    if period:
        cands.append(Choice(fmt.METHOD_STORED, repeat.payload, fmt.STORED_REPEAT))
    lzma_trial = None
    if runs_by_lzma and fmt.METHOD_LZMA in methods and looks_trivial(data):
        packed, variant = _lzma_compress(data)
        if len(packed) <= TRIVIAL_BYTES + len(data) * TRIVIAL:
            state.add_other_block(data)
            if period and period < len(packed):
                return repeat
            return Choice(fmt.METHOD_LZMA, packed, variant, trivial=True)
        cands.append(Choice(fmt.METHOD_LZMA, packed, variant))
    elif fmt.METHOD_LZMA in methods:
        # liblzma releases the GIL: with a core to spare, its trial runs beside the
        # network's (about a tenth of the block's time, otherwise).
        if parallel and any(m in methods for m in fmt.MODEL_METHODS):
            lzma_trial = _trial_pool().submit(_lzma_compress, data)
        else:
            packed, variant = _lzma_compress(data)
            cands.append(Choice(fmt.METHOD_LZMA, packed, variant))
    if fmt.METHOD_MODEL in methods:
        payload, segments = encode_block(model, data, progress, segment_rule(len(data)))
        cands.append(Choice(fmt.METHOD_MODEL, payload, segments))
    before = None
    if fmt.METHOD_MIXED in methods:
        if rebuild is None:
            before = state.snapshot()
        x86 = filters.looks_like_x86(data)
        coded = filters.x86_encode(data) if x86 else data
        record, rows = 0, False
        if state.config.reads_records:
            rows = any(state.config in variants(c) for c in records.ROW_CONFIGS)
            record = records.detect(coded, rows=rows)
        # Binary data of no kind found (compiled Python, other machines' code): without
        # the network, as records and x86 code are, where the stream has a binary preset.
        binary = state.config.reads_records and not record and not x86
        binary = binary and records.looks_binary(coded)
        # Repetitive text, and text with binary parts, take long segments, and go
        # without the network where a trial on their start says so; a long text's text
        # goes without it, untried.
        text = not (record or x86 or binary)
        redundant = (
            text
            and not long_text
            and (records.looks_mixed(coded) or records.looks_redundant(coded))
        )
        default = segment_rule(len(data))
        flat = records.flat(record, x86, (redundant and flat_text) or (long_text and text), binary)
        text_segments = records.segments(len(data), default, redundant=True)
        # Repetitive text no longer than the trial is coded both ways, the smaller kept,
        # rather than tried whole and then coded a third time.
        both = flat and redundant and 0 < len(coded) <= records.TRIAL_BYTES
        if flat and redundant and records.TRIAL_BYTES and not both:
            flat = not _network_pays(model, coded, state.config, text_segments, parallel)
        segments = records.segments(len(data), default, record, x86, redundant, flat)
        fewest = fmt.fewest_segments(len(data))
        trial = records.IMAGE_TRIAL and flat and segments > fewest
        # A binary kind (records, x86 code, other binary data) coded in the fewest segments
        # without the network: the blocks the two trials below may code a second way.
        binary_kind = flat and not trial and bool(record or x86 or binary)
        binary_trial = network_trial and binary_kind
        other = None
        if binary_kind and state.config.reads_records and record < records.IMAGE_RECORD:
            other = _other_record(coded, record, rows, x86)
        start = None
        if trial or binary_trial or both or other is not None:
            # Primed first (as the first coding would be), so that no second coding learns
            # the model's prime beside the first, through the cache of primed states.
            prime_state(model, state)
            start = state.snapshot()
        # The second coding of a block without the network either way (another record
        # length, or an image in the fewest segments) starts from ``start`` as the first
        # does, so it runs beside the first where there is a core for it.
        beside = None
        if other is not None:
            # Most of the block shows another record length than its start: coded again
            # with that one (in the same, fewest, segments), the smaller kept.
            # A coding takes the snapshot's arrays for its own: the network's trial below
            # needs them as they are.
            since = copy_snapshot(start) if binary_trial else start
            beside = _Second(model, coded, since, (segments, False, other, True), parallel)
        elif trial:
            # An image's or wide table's block without the network, in its rows' segments,
            # coded again in the fewest. One segment coded this machine's 8-bit photographs
            # and its database tables 2-25% smaller, but some diagrams and 1-bit bitmaps 4-7%
            # larger (lockstep rows learn from the whole picture at once), and nothing in the
            # bytes told them apart; the second coding costs their compression time only.
            beside = _Second(model, coded, start, (fewest, False, record, True), parallel)
        try:
            payload, segments = encode_block_mixed(
                model, coded, state, progress, segments, parallel, record, flat
            )
        except BaseException:
            if beside is not None:
                beside.abandon()
            raise
        if beside is not None and (kept := _if_smaller(state, payload, beside)) is not None:
            if other is not None:
                payload, record = kept, other
            else:
                payload, segments = kept, fewest
        if binary_trial:
            # A binary block without the network coded again with it, in the same segments.
            # The network was trained on text, but binary files carry text too (names,
            # messages, docstrings): at --max, where a block is one segment and the level's
            # time is the network's, compiled Python modules, a database and a message
            # catalogue of this machine came out 0.8-4.4% smaller with it, while a font and
            # two executables kept the coding without it (docs/DESIGN.md, section 4). The
            # first coding, without it, costs about a sixth of the second.
            how = (segments, parallel, record, False)
            net = _if_smaller(state, payload, _Second(model, coded, start, how, False))
            payload, flat = (payload, True) if net is None else (net, False)
        elif both and not trial:
            # Repetitive text without the network in one segment, coded again with it in
            # repetitive text's segments: what ``_network_pays`` decides on a longer
            # block's start, decided on the whole block for the price of the trial alone.
            how = (text_segments, parallel, 0, False)
            net = _if_smaller(state, payload, _Second(model, coded, start, how, False))
            if net is not None:
                payload, segments, flat = net, text_segments, False
        cands.append(Choice(fmt.METHOD_MIXED, payload, segments, record, x86, flat))
    if lzma_trial is not None:
        packed, variant = lzma_trial.result()
        cands.insert(1, Choice(fmt.METHOD_LZMA, packed, variant))
    best = min(cands, key=lambda c: len(c.payload))
    if best.method != fmt.METHOD_MIXED:
        if before is not None:
            state.restore(before)
        elif fmt.METHOD_MIXED in methods:
            assert rebuild is not None
            # The lost block's tables on a device go before the rebuilt state's are made
            # there: two sets at once could be more than the device holds.
            state.resident = None
            state.restore(vars(rebuild()))
        state.add_other_block(data)
    return best


def _other_record(coded: bytes, record: int, rows: bool, x86: bool) -> int | None:
    """The record length a binary block coded without the network with records of
    ``record`` bytes is coded with too (``records.alternative``), where with it the block
    would still be coded without the network: as records, x86 code or binary data. None:
    no other."""
    other = records.alternative(coded, record, rows)
    if other == 0 and not x86 and not records.looks_binary(coded):
        return None
    return other


class _Second:
    """A block's second coding: ``data`` coded from ``start``, the state before its first,
    the way ``how`` says (``encode_block_mixed``'s segments, pipelined, record and flat).
    ``parallel``: it starts now, in a thread of its own (the compiled loops release the
    GIL), and runs beside the first on a second core; else it runs when ``result`` asks.
    Either way it is the same coding of the same bytes from the same statistics: the
    archive does not depend on which. A coding beside stops at its next step once this
    thread's caller gives up (``coder.stopping``) or ``abandon`` says the block is lost."""

    def __init__(
        self,
        model: IntModel,
        data: bytes,
        start: dict[str, Any],
        how: tuple[int, bool, int, bool],
        parallel: bool,
    ) -> None:
        self._args = (model, data, start, how)
        self._abandoned = threading.Event()
        self._caller = stop_event()
        self._out: tuple[bytes, StreamState] | BaseException | None = None
        self._thread: threading.Thread | None = None
        if parallel:
            self._thread = threading.Thread(target=self._run, name="nncompress-beside", daemon=True)
            self._thread.start()

    def is_set(self) -> bool:
        """Whether to stop (``coder.stopping``'s event, for the thread beside)."""
        return self._abandoned.is_set() or (self._caller is not None and self._caller.is_set())

    def abandon(self) -> None:
        self._abandoned.set()

    def result(self) -> tuple[bytes, StreamState]:
        """The payload and the state it leaves (raising what the coding raised)."""
        if self._thread is None:
            return self._code()
        try:
            self._thread.join()
        except BaseException:  # (Ctrl-C while waiting: the coding is not wanted)
            self.abandon()
            raise
        if isinstance(self._out, BaseException):
            raise self._out
        assert self._out is not None
        return self._out

    def _run(self) -> None:
        try:
            with stopping(self):
                self._out = self._code()
        except BaseException as e:  # handed to ``result``, in the caller's thread
            self._out = e

    def _code(self) -> tuple[bytes, StreamState]:
        model, data, start, how = self._args
        other = StreamState.__new__(StreamState)
        other.restore(start)
        again, _ = encode_block_mixed(model, data, other, None, *how)
        return again, other


def _if_smaller(state: StreamState, payload: bytes, second: _Second) -> bytes | None:
    """The block's ``second`` coding if it is smaller than its first (``payload``), with
    ``state`` left as it leaves it; else None, and ``state`` left as the first coding
    left it."""
    again, other = second.result()
    if len(again) >= len(payload):
        return None
    state.restore(vars(other))
    return again


def _flat_size(model: IntModel, sample: bytes, config: Config, record: int = 0) -> int:
    """The size of ``sample`` coded without the network in one segment from fresh
    statistics of ``config`` (records of ``record`` bytes): the encoder's trials of a
    block's start, which compare such codings."""
    state = StreamState(config, len(sample))
    payload, _ = encode_block_mixed(model, sample, state, None, 1, False, record, True)
    return len(payload)


def _network_pays(
    model: IntModel, data: bytes, config: Config, segments: int, parallel: bool
) -> bool:
    """Whether repetitive text ``data`` codes smaller with the network, in segments as long
    as ``segments`` of them would be, than without it in one segment: both tried on its
    first ``records.TRIAL_BYTES`` with fresh statistics. The network knows some kinds of
    logs well (those like its training data), others not at all, and nothing in the
    bytes alone told them apart."""
    sample = data[: records.TRIAL_BYTES]
    length = -(-len(data) // segments)
    count = max(1, min(len(sample) // length, fmt.segment_count(len(sample))))
    state = StreamState(config, len(sample))
    net, _ = encode_block_mixed(model, sample, state, None, count, parallel, 0, False)
    return len(net) < _flat_size(model, sample, config)


def _image_config(model: IntModel, data: bytes) -> Config | None:
    """The colour image preset of a first block of 3- or 4-byte records with a row
    (``records.row_candidate``: a 24- or 32-bit image, or a table that looks like one),
    where it is an image: where its first ``records.IMAGE_TRIAL_BYTES`` code no larger
    with the 8-bit image preset in rows than with the preset of short records in pixels,
    both without the network in one segment from fresh statistics (on equal sizes, a
    picture's start all one colour, the row found is trusted). None where it is no
    image. The trial asks only whether rows pay: the colour kinds help a table's start
    too (a locale table's first 64 KiB came out 1.5% smaller with them in rows, its first
    128 KiB 16% larger, the whole table 7.9%), the 8-bit ones did not. Only such blocks
    pay for the trial."""
    pixel, row = records.row_candidate(data)
    if not row:
        return None
    sample = data[: records.IMAGE_TRIAL_BYTES]
    rows = _flat_size(model, sample, records.IMAGE_MIXERS_CONFIG, row)
    pixels = _flat_size(model, sample, records.BINARY_MIXERS_CONFIG, pixel)
    return records.COLOUR_CONFIGS[pixel] if rows <= pixels else None


def _bitmap_config(model: IntModel, data: bytes) -> Config | None:
    """The 1-bit bitmap preset for a first block of long records that
    ``records.looks_like_bitmap`` did not take for a bitmap, where its first
    ``records.IMAGE_TRIAL_BYTES`` code smaller with it than with the 8-bit image preset,
    both without the network in one segment from fresh statistics; else None. A bitmap
    of thin strokes (small text, line art) has few neighbouring pixels across its bytes'
    edges that agree, as the test asks, and the image preset coded three such pages of
    this machine 53-74% larger than the bitmap preset (docs/DESIGN.md, section 4). Only
    such streams pay for the trial: images, and tables of records of 64 bytes or more."""
    record = records.detect(data)
    sample = data[: records.IMAGE_TRIAL_BYTES]
    bitmap = _flat_size(model, sample, records.BITMAP_MIXERS_CONFIG, record)
    image = _flat_size(model, sample, records.IMAGE_MIXERS_CONFIG, record)
    return records.BITMAP_MIXERS_CONFIG if bitmap < image else None


@dataclass(frozen=True)
class Choice:
    """How a block is written: its method and payload, the segment count, LZMA variant or
    ``format.STORED_REPEAT`` (``param``), and a mixed block's record length, x86
    transform and whether it was coded without the network."""

    method: int
    payload: bytes
    param: int = 0
    record: int = 0
    x86: bool = False
    flat: bool = False
    #: Taken without trying the mixed method (by LZMA2, ``compress_block``'s
    #: ``runs_by_lzma``, or as a repeat or copy block): the statistics only saw its
    #: bytes, as the decoder's will.
    trivial: bool = False
    #: A copy block's distance (``format.STORED_COPY``).
    distance: int = 0

    def header(self, raw_len: int, end: int) -> fmt.BlockHeader:
        return fmt.BlockHeader(
            self.method,
            raw_len,
            len(self.payload),
            self.param,
            end,
            self.record,
            self.x86,
            self.flat,
            self.distance,
        )

    def info(self, raw_len: int) -> BlockInfo:
        return BlockInfo.of(self.header(raw_len, fmt.END_NONE))


#: The most a block's LZMA2 payload may be, for the block to be taken by LZMA2 without
#: trying the mixed method (levels' ``runs_by_lzma``): ``TRIVIAL_BYTES`` (LZMA2's cost of
#: coding anything: 56 bytes for 16 KiB of zeros) plus ``TRIVIAL`` of the block, 4 bits
#: a KiB. With fine probabilities the mixed method spends at least 0.0012 bits a byte
#: (docs/FORMAT.md, "What a payload can hold"), 162 bytes a MiB, so skipping it costs at
#: most about 420 bytes a MiB of such blocks (1 MiB of zeros: 206 bytes for LZMA2, 181
#: for the whole archive the mixed method wrote), and saves the seconds it takes to code
#: them. Blocks under ``TRIVIAL_MIN`` bytes keep the trial: it takes a second or less,
#: and LZMA2's fixed cost weighs more there.
TRIVIAL = 1 / 2048
TRIVIAL_BYTES = 64
TRIVIAL_MIN = 1 << 16
#: Blocks of at least this many bytes are looked up among their frame's earlier bytes
#: (``repeats.Copies``) and written as a copy block where found. Shorter ones are left to
#: the other methods: the mixed method codes a copy it finds in a few bytes a KiB, and its
#: time, which a copy block saves, is a fraction of a second there.
COPY_MIN = 1 << 16
#: ``looks_trivial``'s bound on zlib's level 1, as a share of the block's length: deflate
#: codes no block in less than about 1/1000 of it, and level 1 stopped at 1/228 on 1 MiB
#: of zeros, 1/157 on a log line repeated, 1/4 on a column of counters.
TRIVIAL_ZLIB = 1 / 128


def looks_trivial(data: bytes) -> bool:
    """Whether ``data`` may be so redundant that LZMA2 codes it in next to nothing
    (``TRIVIAL``): zlib's fastest level (a few milliseconds a MiB) finds it in
    ``TRIVIAL_ZLIB`` of it. Text, code and tables are nowhere near, and so pay only for
    zlib; where it says yes, ``compress_block`` runs LZMA2 first (tens of milliseconds a
    MiB on such data)."""
    return len(data) >= TRIVIAL_MIN and len(zlib.compress(data, 1)) <= len(data) * TRIVIAL_ZLIB


#: A block that repeats a period no longer than 1/``REPEAT_UNTRIED`` of it is written as
#: a repeat block without trying any other method: the mixed method spends at least
#: 0.0012329 bits a byte, so it cannot code the block in fewer bytes than that
#: (docs/FORMAT.md, "What a payload can hold": at most 6,488.9 raw bytes a payload byte),
#: the network alone and LZMA2 more (206 bytes for a MiB of zeros). A MiB repeating up
#: to 161 bytes; a block of 4 KiB, none (its trials take some tens of milliseconds).
#: Longer periods are one candidate among the others, the smallest kept.
REPEAT_UNTRIED = 6489


def _repeat_untried(period: int, n: int) -> bool:
    """Whether a block of ``n`` bytes of this period (0: none) goes as a repeat block
    without trying the other methods (``REPEAT_UNTRIED``)."""
    return 0 < period and period * REPEAT_UNTRIED <= n


def _looks_like_run(data: bytes) -> bool:
    """A block that says nothing of the data around it: a repeat or a long run."""
    return bool(repeats.period(data)) or looks_trivial(data)


def looks_incompressible(data: bytes) -> bool:
    """Whether a block's byte frequencies say that storing or LZMA2 will likely beat the
    mixed method (more than 7.5 bits a byte at order 0: compressed, encrypted or random
    data). Only a hint for where to keep a copy of the statistics: see ``encode_frame``."""
    return len(data) >= 4096 and records.order0_bits(data) > 7.5


@dataclass(frozen=True)
class FrameJob:
    """What coding one frame needs besides its bytes and the model: everything here is
    small and picklable, so a frame can be coded in another process."""

    level: str
    config: Config
    block_size: int
    #: Where the frame's check chain starts (``format.frame_seed``).
    seed: int
    #: End code of the frame's last block (END_FRAME, END_STREAM or END_INDEX).
    end: int
    account: bool = False
    #: Run the network and the LZMA2 trial in threads of their own.
    parallel: bool = True
    int8_products: bool = False
    #: The stream is a long text (``levels.Level.long_text``).
    long_text: bool = False


@dataclass
class CodedFrame:
    """A frame as it goes into the archive, and what was learned coding it."""

    data: bytes
    blocks: list[BlockInfo]
    raw_len: int
    spending: Spending | None = None


def _block_bytes(
    choice: Choice, raw: bytes, end: int, block_size: int, check: int
) -> tuple[bytes, int]:
    """A block as written (descriptor, lengths, payload, check) and its check."""
    head = choice.header(len(raw), end).pack(block_size)
    check = fmt.block_check(head, raw, check)
    return head + choice.payload + fmt.CHECK.pack(check), check


def encode_frame(
    model: IntModel,
    blocks: list[bytes],
    job: FrameJob,
    progress: Progress | None = None,
    emit: Callable[[bytes], None] | None = None,
) -> CodedFrame:
    """Code one frame: ``blocks`` with fresh statistics, each with the smallest method the
    level allows, chained checks from ``job.seed``. ``emit``: called with each block's
    bytes as soon as it is coded (else they are collected in the result)."""
    lvl = LEVELS[job.level]
    state = StreamState(job.config, job.block_size, job.account)
    parts: list[bytes] = []
    infos: list[BlockInfo] = []
    check = job.seed
    # Rolling back a block that the mixed method lost: while it has lost none so far
    # (every block mixed, or taken by LZMA2 without trying it), by coding them again from
    # fresh statistics (the same computation, so the same state), which costs time only
    # where the mixed method loses, instead of a copy of the tables before every block,
    # which costs their size in memory always. After a block that another method won,
    # and before one that looks incompressible, by a copy: a frame that mixes kinds of
    # data must not be coded again and again.
    all_mixed = True
    # Copy blocks (``COPY_MIN``): the frame's anchored strings, block by block.
    copies = None
    if any(len(raw) >= COPY_MIN for raw in blocks[1:]):
        copies = repeats.Copies(b"".join(blocks), fmt.COPY_WINDOW)
    for i, raw in enumerate(blocks):
        copy = copies.next(len(raw), len(raw) >= COPY_MIN) if copies is not None else 0
        _int8_for(model, len(raw), job.int8_products, job.parallel, job.config)
        rebuild = None
        if all_mixed and not looks_incompressible(raw):
            done = [(b, info) for b, info in zip(blocks[:i], infos, strict=True)]
            rebuild = functools.partial(_recode, model, job, done)
        choice = compress_block(
            model,
            raw,
            lvl.methods,
            state,
            progress,
            job.parallel,
            lvl.segments,
            rebuild,
            lvl.flat_text,
            lvl.network_trial,
            lvl.runs_by_lzma,
            copy,
            job.long_text,
        )
        all_mixed = all_mixed and (choice.method == fmt.METHOD_MIXED or choice.trivial)
        end = job.end if i == len(blocks) - 1 else fmt.END_NONE
        out, check = _block_bytes(choice, raw, end, job.block_size, check)
        (emit or parts.append)(out)
        infos.append(choice.info(len(raw)))
    return CodedFrame(b"".join(parts), infos, sum(map(len, blocks)), state.spent())


def _recode(model: IntModel, job: FrameJob, done: list[tuple[bytes, BlockInfo]]) -> StreamState:
    """The statistics after a frame's first blocks, coded by the mixed method (each as it
    was: segment count, record length, x86 transform, network or not) or taken without
    trying it (``Choice.trivial``: only their bytes seen), coded again from fresh
    statistics."""
    state = StreamState(job.config, job.block_size, job.account)
    for raw, info in done:
        if info.method != fmt.METHOD_MIXED:
            state.add_other_block(raw)
            continue
        coded = filters.x86_encode(raw) if info.x86 else raw
        encode_block_mixed(
            model, coded, state, None, info.segments, job.parallel, info.record, info.flat
        )
    return state


class StreamEncoder:
    """One ``.nnc`` stream, coded as its input arrives: ``write`` takes input and returns
    the archive bytes that are ready, ``finish`` ends the stream and returns the rest (or,
    with ``sink``, every archive byte goes to ``sink`` as soon as it is coded).

    Frames of ``frame_size`` bytes (rounded down to whole blocks, at least one) of blocks
    of ``block_size``; a frame is coded once the input holds more than it (so the frame
    knows it is not the last) or at ``finish``. ``frame_size`` None (the default) leaves it
    to the encoder: frames of ``levels.DEFAULT_FRAME``, but an input of at most two of
    them is cut in two as ``levels.split_frames`` says, unless its halves share long
    strings (``levels.SPLIT_SHARED``), and a longer one's frame takes several default
    frames where a later one repeats an earlier one (``levels.MERGED_FRAME``; the input
    is held back until it is longer than that, or ends). ``config``: the mixed method's
    configuration (default: the level's), written in the header as a preset number or in
    full. ``account``: record where the bits went (``info.spending``). ``threads``: 1 keeps
    everything on one thread; 0 (all cores) or N > 1 codes the frames of a stream of
    several in worker processes, as many as ``threads`` and ``memory`` (bytes; default:
    ``workers.memory_budget``) allow, each with the network and the LZMA2 trial beside its
    coder where cores are left for them (in threads on the device instead, where the
    model's predictor runs on one: ``devicepool``). The archive is the same whatever the
    count.
    ``int8_products``: let large blocks switch the model to int8 products through torch
    where that pays (``_int8_for``; the same archive, faster; for callers that own the
    process, as the CLI does). ``pool``: code the frames of a stream of several there
    instead (an object with ``FramePool``'s ``submit``, ``drain`` and ``threaded``, such as
    ``cluster.DaskFrames``; the caller closes it).

    A stream that is one block long, coded without the model, names no model: its header
    is written after that block is coded. Otherwise the header comes with the first
    frame."""

    def __init__(
        self,
        model: IntModel,
        block_size: int | None = None,
        level: str = "default",
        progress: Progress | None = None,
        account: bool = False,
        threads: int = 0,
        int8_products: bool = False,
        frame_size: int | None = None,
        config: Config | None = None,
        memory: int | None = None,
        sink: Callable[[bytes], object] | None = None,
        pool: Any = None,
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r} (use {', '.join(LEVELS)})")
        block_size = LEVELS[level].block if block_size is None else block_size
        if not 0 < block_size <= fmt.MAX_BLOCK:
            raise ValueError(f"block size must be between 1 and {fmt.MAX_BLOCK}")
        if frame_size is not None and frame_size < 1:
            raise ValueError("frame size must be positive")
        self.model, self.level, self.block_size = model, level, block_size
        self.config = config or LEVELS[level].config
        #: The level's configuration may give way to the binary preset once the first
        #: block is seen (``records.config_for``); one given by the caller is kept.
        self._config_open = config is None
        #: A long text (``levels.Level.long_text``): settled with the configuration.
        self.long_text = False
        self._seen = 0  # input bytes written so far
        self.frame_bytes = max(1, (frame_size or levels.DEFAULT_FRAME) // block_size) * block_size
        self._may_split = frame_size is None
        self._merging = False  # whether a frame may take several (``_next_frame``)
        self.progress, self.account, self.threads = progress, account, threads
        self.int8_products, self.memory, self.sink = int8_products, memory, sink
        self.parallel = threads != 1 and (os.cpu_count() or 1) > 1
        self.info = StreamInfo(config=self.config, streams=1)
        self._input = bytearray()
        self._output: list[bytes] = []
        self._header = b""
        self._pool: FramePool | None = None
        self._external_pool = pool
        self._started = 0  # frames handed to the coder
        self._offset = 0  # and the bytes they hold
        self._done = False

    # ------------------------------------------------------------------ public
    def write(self, data: bytes) -> bytes:
        if self._done:
            raise ValueError("write after finish, or after an error")
        self._input += data
        self._seen += len(data)
        try:
            while len(self._input) > self._holding():
                n = self._next_frame(self._input)
                frame = bytes(self._input[:n])
                del self._input[:n]
                self._frame(frame, last=False)
        except BaseException:
            self._done = True  # a frame is lost: the stream cannot go on
            self.close()
            raise
        return self._take()

    def finish(self) -> bytes:
        """End the stream: code what is left, the index of a stream of several frames."""
        if self._done:
            return b""
        self._done = True
        data, self._input = bytes(self._input), bytearray()
        try:
            if not self._header and len(data) <= self.block_size:
                self._single(data)
            else:
                if self._whole() and len(data) <= 2 * levels.DEFAULT_FRAME:
                    first = levels.split_frames(len(data), self.block_size)
                    if first and repeats.shared(data[:first], data[first:]) >= levels.SPLIT_SHARED:
                        first = 0  # the second half repeats the first: one frame sees both
                    if first:
                        self._frame(data[:first], last=False)
                        data = data[first:]
                while len(data) > self.frame_bytes and (n := self._next_frame(data)) < len(data):
                    self._frame(data[:n], last=False)
                    data = data[n:]
                self._frame(data, last=True)
                self._collect(self._pool.drain() if self._pool is not None else ())
                if len(self.info.frames) > 1:
                    entries = [fmt.FrameEntry(f.raw_len, f.coded_len) for f in self.info.frames]
                    self._put(fmt.Index(len(self._header), entries).pack())
        finally:
            self.close()
        return self._take()

    def close(self) -> None:
        """Stop the worker processes, if any (``finish`` does; for abandoned streams)."""
        if self._pool is not None and self._pool is not self._external_pool:
            assert self.info.workers is not None
            self.info.workers.peak = self._pool.close()
        self._pool = None

    # ------------------------------------------------------------------ inside
    def _whole(self) -> bool:
        """Whether the input is still held whole where the frame size is the encoder's: no
        frame coded yet, so one that ends within two default frames may be cut in two."""
        return self._may_split and not self._started

    def _holding(self) -> int:
        """Input held back before a frame is coded: a frame and at least a byte more (so
        that the frame knows it is not the last); where the frame size is the encoder's,
        ``levels.MERGED_FRAME`` (the most a frame may take, and at least the two default
        frames an input cut in two may be)."""
        if self._may_split:
            return max(self.frame_bytes, levels.MERGED_FRAME)
        return self.frame_bytes

    def _next_frame(self, held: bytes | bytearray) -> int:
        """The length of the next frame of the input ``held`` (longer than a frame): a
        frame of ``frame_bytes``, or where the frame size is the encoder's, as many of
        them as ``levels.merged_frame`` keeps together."""
        if not self._may_split:
            return self.frame_bytes
        self._merging = True  # (frames of up to MERGED_FRAME: the workers' memory)
        return levels.merged_frame(held, self.frame_bytes)

    def _put(self, out: bytes) -> None:
        self.info.archive_len += len(out)
        if self.sink is not None:
            self.sink(out)
        else:
            self._output.append(out)

    def _take(self) -> bytes:
        out, self._output = b"".join(self._output), []
        return out

    def _write_header(self, header: fmt.Header) -> None:
        self._header = header.pack()
        self._put(self._header)
        info = self.info
        info.model, info.model_prefix, info.block_size = (
            header.model,
            header.model_prefix,
            header.block_size,
        )

    def _settle_config(self, first_block: bytes | None, length: int | None = None) -> None:
        """Choose the stream's configuration from its first block (or the first that is
        not a run), before the header (a level that never codes a mixed block names
        preset 1, which costs no byte). None: every block so far is a run, which says
        nothing of what may follow; the level's own configuration stays, untried. A text
        stream of the level's ``long_text`` bytes or more is a long text: it takes the
        level's ``long_config``. Its length is the input's at ``finish``; a stream whose
        first frame is coded before (from ``write``) is known to be longer than what the
        encoder holds back (``_holding``), however its input was cut into writes.
        ``length``: the stream's length where the caller knows it (a script settling a
        whole input it has not written)."""
        if self._config_open:
            lvl = LEVELS[self.level]
            mixes = fmt.METHOD_MIXED in lvl.methods
            config = self.config if mixes else DEFAULT
            if mixes and first_block is not None:
                config = records.config_for(self.config, first_block)
                if config == records.BINARY_MIXERS_CONFIG:
                    config = _image_config(self.model, first_block) or config
                elif config == records.IMAGE_MIXERS_CONFIG != self.config:
                    # (taken for an image here, not named by the level)
                    config = _bitmap_config(self.model, first_block) or config
                if config.mixers:  # (short streams have no mixers)
                    config = like_level(config, self.config, lvl.binary_slots)
                if length is None:
                    length = self._seen if self._done else self._holding() + 1
                if lvl.long_config and config == self.config and length >= lvl.long_text > 0:
                    config, self.long_text = lvl.long_config, True
            self.config = self.info.config = config
        self._config_open = False

    def _single(self, data: bytes) -> None:
        """The whole stream is ``data``, at most one block: the header says its length (it
        bounds the decoder's buffers and sizes the adaptive tables to the data), and names
        the model only if the block needs it."""
        from .zoo import model_ref

        if not data:
            self._write_header(fmt.Header(0))
            return
        n, lvl = len(data), LEVELS[self.level]
        # A repeat block untried needs no configuration.
        self._settle_config(None if _repeat_untried(repeats.period(data), n) else data)
        fresh = functools.partial(StreamState, self.config, n, self.account)
        state = fresh()
        _int8_for(self.model, n, self.int8_products, self.parallel, self.config)
        choice = compress_block(
            self.model,
            data,
            lvl.methods,
            state,
            self.progress,
            self.parallel,
            lvl.segments,
            fresh,
            lvl.flat_text,
            lvl.network_trial,
            lvl.runs_by_lzma,
            long_text=self.long_text,
        )
        header = fmt.Header(n)
        if choice.method in fmt.MODEL_METHODS:
            header = fmt.Header(n, *model_ref(self.model), self.config)
        self._write_header(header)
        seed = fmt.frame_seed(self._header, 0, 0)
        out, _ = _block_bytes(choice, data, fmt.END_STREAM, n, seed)
        self._put(out)
        self.info.blocks.append(choice.info(n))
        self.info.frames.append(FrameInfo(len(self._header), len(out), 0, n))
        self.info.raw_len = n
        self.info.add_spending(state.spent())

    def _settle_from(self, blocks: list[bytes], length: int | None = None) -> None:
        """The stream's configuration, from its first block that is not a run
        (``_looks_like_run``): a disk image's zeros say nothing of what follows them, and
        took text for binary data (the binary preset coded a text 0.5% larger after a MiB
        of zeros). ``length``: as ``_settle_config``'s."""
        self._settle_config(next((b for b in blocks if not _looks_like_run(b)), None), length)

    def _frame(self, data: bytes, last: bool) -> None:
        from .devicepool import frame_pool
        from .workers import plan_workers
        from .zoo import model_ref

        info, bs = self.info, self.block_size
        blocks = [data[i : i + bs] for i in range(0, len(data), bs)]
        if not self._header:
            self._settle_from(blocks)
            self._write_header(fmt.Header(bs, *model_ref(self.model), self.config))
        number, self._started = self._started, self._started + 1
        end = fmt.END_FRAME if not last else fmt.END_INDEX if number else fmt.END_STREAM
        if number == 0 and not last and self._external_pool is not None:
            self._pool = self._external_pool
        elif number == 0 and not last and self.frame_bytes >= MIN_WORKER_FRAME:
            header = fmt.read_header(io.BytesIO(self._header))[0]
            most = max(self.frame_bytes, levels.MERGED_FRAME if self._merging else 0)
            workers = plan_workers(self.threads, header, most, self.memory, True)
            self._pool = frame_pool(workers, header, self.model, self.account)
            if self._pool is not None:
                info.workers = workers
        seed = fmt.frame_seed(self._header, number, self._offset)
        self._offset += len(data)
        args = (self.level, self.config, bs, seed, end, self.account)
        if self._pool is None:
            job = FrameJob(*args, self.parallel, self.int8_products, self.long_text)
            offset = info.archive_len
            self._add(encode_frame(self.model, blocks, job, self.progress, self._put), offset)
        else:
            # (each worker's model switches to int8 products on its own, where that pays)
            job = FrameJob(*args, self._pool.threaded, self.int8_products, self.long_text)
            self._collect(self._pool.submit(encode_frame, self.model, blocks, job))

    def _collect(self, done: Iterator[CodedFrame]) -> None:
        for frame in done:
            self._add(frame, self.info.archive_len)
            if self.progress:
                self.progress(frame.raw_len)

    def _add(self, frame: CodedFrame, offset: int) -> None:
        """Account for a frame written from ``offset`` on (writing it first, unless its
        blocks were emitted as they were coded)."""
        info = self.info
        self._put(frame.data)
        index = len(info.frames)
        info.frames.append(
            FrameInfo(offset, info.archive_len - offset, info.raw_len, frame.raw_len)
        )
        for b in frame.blocks:
            b.frame = index
        info.blocks += frame.blocks
        info.raw_len += frame.raw_len
        info.add_spending(frame.spending)


def compress_stream(
    src: BinaryIO,
    dst: BinaryIO,
    model: IntModel,
    block_size: int | None = None,
    level: str = "default",
    progress: Progress | None = None,
    account: bool = False,
    threads: int = 0,
    int8_products: bool = False,
    frame_size: int | None = None,
    config: Config | None = None,
    memory: int | None = None,
) -> StreamInfo:
    """Compress all of ``src`` into one ``.nnc`` stream on ``dst`` (``StreamEncoder`` says
    what the options do), reading a block at a time and writing each block as soon as it is
    coded (or each frame, from worker processes)."""
    enc = StreamEncoder(
        model,
        block_size,
        level,
        progress,
        account,
        threads,
        int8_products,
        frame_size,
        config,
        memory,
        sink=dst.write,
    )
    try:
        while chunk := _read_full(src, enc.block_size):
            enc.write(chunk)
        enc.finish()
    finally:
        enc.close()
    return enc.info


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
        self.header, self.header_bytes = header, header_bytes
        self.count = 0  # frames read so far
        self.raw = 0  # and the bytes they decode to
        self.get_model, self.model = get_model, None
        self.progress, self.account = progress, account
        self.parallel, self.int8_products = parallel, int8_products

    def frame(
        self,
        src: BinaryIO,
        info: StreamInfo,
        dst: BinaryIO | None,
        decode: bool = True,
        block_base: int = 0,
        number: int | None = None,
        raw_offset: int | None = None,
    ) -> int:
        """Read (and with ``decode`` check and decode, to ``dst`` unless None) one frame's
        blocks from ``src``; returns the last block's end code. Raises FormatError at the
        first damaged block, after the good blocks before it have been written.
        ``block_base``: the number of the stream's blocks before ``info.blocks`` (for
        messages); ``number`` and ``raw_offset``: the frame's number in its stream and the
        offset of its first byte in the stream's decoded bytes (default: the next frame's)."""
        state = StreamState(self.header.config, self.header.block_size, self.account)
        if number is None:
            number, raw_offset = self.count, self.raw
        assert raw_offset is not None
        self.count = number + 1
        self.raw = raw_offset
        check = fmt.frame_seed(self.header_bytes, number, raw_offset)
        frame = FrameInfo(info.archive_len, 0, info.raw_len, 0)
        window = bytearray()  # the frame's last bytes, for copy blocks (format.COPY_WINDOW)
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
                info.blocks.append(BlockInfo.of(bh, len(info.frames)))
                if decode:
                    index = block_base + len(info.blocks) - 1
                    where = f"block {index} (bytes {info.raw_len}..{info.raw_len + bh.raw_len})"
                    try:
                        raw = self._block(bh, payload, state, window)
                    except fmt.FormatError as e:
                        raise fmt.FormatError(f"corrupted archive: {where} {e}") from None
                    check = fmt.block_check(head, raw, check)
                    if len(raw) != bh.raw_len or check != stored:
                        raise fmt.FormatError(f"corrupted archive: {where} checksum mismatch")
                    if dst is not None:
                        dst.write(raw)
                    window += raw
                    if len(window) > fmt.COPY_WINDOW:
                        del window[: len(window) - fmt.COPY_WINDOW]
                info.raw_len += bh.raw_len
                self.raw += bh.raw_len
                info.archive_len += size
                frame.coded_len += size
                frame.raw_len += bh.raw_len
                if bh.end != fmt.END_NONE:
                    info.frames.append(frame)
                    return bh.end
        finally:
            info.add_spending(state.spent() if decode else None)

    def _block(
        self, bh: fmt.BlockHeader, payload: bytes, state: StreamState, window: bytearray
    ) -> bytes:
        """A block's raw bytes; ``state`` advances exactly as the encoder's did. ``window``:
        the frame's bytes before the block (its last ``format.COPY_WINDOW``)."""
        model = None
        if bh.method in fmt.MODEL_METHODS:
            if self.model is None:
                self.model = self.get_model(self.header)
            model = self.model
            _int8_for(model, bh.raw_len, self.int8_products, self.parallel, state.config)
        try:
            if bh.method == fmt.METHOD_MIXED:
                assert model is not None
                raw = decode_block_mixed(
                    model,
                    payload,
                    bh.raw_len,
                    bh.param,
                    state,
                    self.progress,
                    self.parallel,
                    bh.record,
                    bh.flat,
                )
                return filters.x86_decode(raw) if bh.x86 else raw
            if bh.method == fmt.METHOD_STORED and bh.param == fmt.STORED_REPEAT:
                raw = fmt.repeated(payload, bh.raw_len)
            elif bh.method == fmt.METHOD_STORED and bh.param == fmt.STORED_COPY:
                if bh.distance > len(window):
                    raise fmt.FormatError(
                        f"copies from {bh.distance:,} bytes back, before its frame's start"
                    )
                raw = fmt.copied(window, bh.distance, bh.raw_len)
            elif bh.method == fmt.METHOD_STORED:
                raw = payload
            elif bh.method == fmt.METHOD_LZMA:
                raw = _lzma_decompress(payload, bh.raw_len, bh.param)
            else:
                assert model is not None
                raw = decode_block(model, payload, bh.raw_len, bh.param, self.progress)
            if self.header.needs_model:  # (else no mixed block can follow to use it)
                state.add_other_block(raw)
            return raw
        except (lzma.LZMAError, ValueError, RuntimeError) as e:
            raise fmt.FormatError(f"cannot be decoded ({e})") from None


def decompress_stream(
    src: BinaryIO,
    dst: BinaryIO | None,
    get_model: ModelLookup,
    progress: Progress | None = None,
    decode: bool = True,
    account: bool = False,
    threads: int = 0,
    int8_products: bool = False,
    memory: int | None = None,
    trailing_garbage: bool = False,
) -> StreamInfo:
    """Decode one or more concatenated ``.nnc`` streams from ``src`` to ``dst``.

    Zero bytes after the last stream (padding) are counted in ``info.trailing`` and
    otherwise ignored; other bytes that do not begin a stream are damage (FormatError)
    unless ``trailing_garbage`` allows them (the command line then warns, as gzip does).
    Nothing may follow streams that are all empty: an empty stream has no check, and a
    damaged archive can read as one followed by zeros.

    ``dst=None`` checks integrity only; ``decode=False`` only walks the headers (seeking
    over payloads where ``src`` can seek). The model is looked up only when a block needs
    it. Raises ``FormatError`` at the first damaged block, after the good blocks before it
    have been written. ``account``: record where the bits went, as ``compress_stream``
    does. ``threads``: 1 keeps everything on one thread; 0 (all cores) or N > 1 decodes
    the frames of a stream of several in worker processes, as ``compress_stream`` codes
    them, and a frame in the calling process runs the network in a thread of its own
    when there are cores. ``int8_products``: as for ``compress_stream``.
    """
    parallel = threads != 1 and (os.cpu_count() or 1) > 1
    first = src.read(4)
    if not first:
        raise fmt.FormatError("not a nncompress archive (empty input)")
    info = StreamInfo()
    while first:
        if info.streams and not _may_begin_stream(first):
            _skip_trailing(first, src, info)
            if not info.raw_len:  # (an empty stream has no check: this is damage)
                raise fmt.FormatError(
                    f"corrupted archive: {info.trailing:,} bytes after an empty stream"
                )
            if not info.trailing_zeros and not trailing_garbage:
                raise fmt.FormatError(
                    f"corrupted archive: {info.trailing:,} bytes of garbage after the last stream"
                )
            break
        header, header_bytes = fmt.read_header(src, first)
        check_memory(header, memory)
        info.streams += 1
        info.model, info.model_prefix = header.model, header.model_prefix
        info.config, info.block_size = header.config, header.block_size
        info.archive_len += len(header_bytes)
        if header.block_size:
            frames = _Frames(
                header, header_bytes, get_model, progress, account, parallel, int8_products
            )
            first_frame = len(info.frames)
            if decode and threads != 1 and (os.cpu_count() or 1) > 1:
                end = _decode_frames(src, dst, frames, info, header_bytes, threads, memory)
            else:
                while (end := frames.frame(src, info, dst, decode)) == fmt.END_FRAME:
                    pass
            if end == fmt.END_INDEX:
                index = read_index_of(src, info.frames[first_frame:], len(header_bytes))
                info.archive_len += len(index.pack())
        first = src.read(4)
    return info


def _may_begin_stream(first: bytes) -> bool:
    """Whether bytes after a stream look like the start of another ("NNC"): anything else
    is trailing data, ignored; something that does is decoded, and refused if damaged."""
    n = min(len(first), 3)
    return first[:n] == fmt.MAGIC[:n]


def _skip_trailing(first: bytes, src: BinaryIO, info: StreamInfo) -> None:
    """Count what follows the last stream (reading it through, a MiB at a time)."""
    chunk = first
    while chunk:
        info.trailing += len(chunk)
        info.trailing_zeros = info.trailing_zeros and not chunk.strip(b"\0")
        chunk = src.read(1 << 20)


class MemoryLimitError(fmt.FormatError):
    """An archive needs more memory to decode than the limit allows (``--memory``)."""


def check_memory(header: fmt.Header, memory: int | None) -> None:
    """Refuse, before allocating, a stream whose decoding needs more memory than the limit
    (``workers.memory_budget``: ``--memory``, ``$NNCOMPRESS_MEMORY`` or half the machine's):
    the mixed method's tables, the largest block in and out and the match window, which
    the header's block size sets."""
    from .workers import WORKER_BASE, frame_memory, memory_budget

    if not header.block_size:
        return
    need = frame_memory(header, header.block_size, compress=False) - WORKER_BASE
    budget = memory_budget(memory)
    if need > budget:
        raise MemoryLimitError(
            f"decoding needs about {need / 2**20:,.0f} MiB (blocks of "
            f"{header.block_size:,} bytes), more than the memory limit of "
            f"{budget / 2**20:,.0f} MiB (raise it with --memory or NNCOMPRESS_MEMORY)"
        )


def read_index_of(src: BinaryIO, frames: list[FrameInfo], header_len: int) -> fmt.Index:
    """Read the index that follows a stream's frames, and check it against them."""
    index = fmt.read_index(src)
    got = [fmt.FrameEntry(f.raw_len, f.coded_len) for f in frames]
    if index.frames != got or index.header_len != header_len:
        raise fmt.FormatError("corrupted archive: the index does not match the frames")
    return index


@dataclass
class DecodedFrame:
    raw: bytes
    spending: Spending | None
    #: The FormatError's message if the frame is damaged (``raw``: its good blocks).
    error: str | None = None


def decode_frame(
    model: IntModel | None,
    header: fmt.Header,
    header_bytes: bytes,
    data: bytes,
    block_base: int,
    raw_base: int,
    account: bool,
    parallel: bool,
    number: int,
    stream_offset: int,
    int8_products: bool = False,
) -> DecodedFrame:
    """Decode one frame's bytes (a worker's job): ``block_base`` and ``raw_base`` are the
    numbers of blocks and bytes before it, for messages; ``number`` and ``stream_offset``
    are the frame's number in its stream and the offset of its first byte there."""
    frames = _Frames(header, header_bytes, lambda h: model, None, account, parallel, int8_products)  # type: ignore[arg-type,return-value]
    info = StreamInfo(raw_len=raw_base)
    out = io.BytesIO()
    try:
        frames.frame(io.BytesIO(data), info, out, True, block_base, number, stream_offset)
    except fmt.FormatError as e:
        return DecodedFrame(out.getvalue(), None, str(e))
    return DecodedFrame(out.getvalue(), info.spending)


#: The most of a stream's first frame that decompression reads ahead before decoding it, to
#: learn whether more frames follow (then the first one goes to a worker too).
FIRST_FRAME_AHEAD = 64 << 20
_LIMIT = -1  # _read_frame's end code when it stopped at its limit


class _Chain:
    """Bytes already read, then the rest of the input, as one input."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head, self.rest = io.BytesIO(head), rest

    def read(self, n: int = -1) -> bytes:
        out = self.head.read(n)
        if n < 0 or len(out) < n:
            out += self.rest.read(-1 if n < 0 else n - len(out))
        return out

    def seekable(self) -> bool:
        return False


def _read_frame(
    src: BinaryIO, header: fmt.Header, limit: int | None = None
) -> tuple[bytes, int | None, list[BlockInfo]]:
    """One frame's bytes, read without decoding, its end code and its blocks. If the input
    ends inside the frame: its whole blocks and None, so that they can still be decoded
    (and written) before the truncation is reported; if the frame grows past ``limit``
    bytes: what was read, and ``_LIMIT``."""
    parts: list[bytes] = []
    blocks: list[BlockInfo] = []
    size = 0
    while True:
        if limit is not None and size > limit:
            return b"".join(parts), _LIMIT, blocks
        try:
            bh, head = fmt.read_block_header(src, header)
            block = [head, fmt.read_payload(src, bh), fmt.CHECK.pack(fmt.read_check(src))]
        except fmt.TruncatedError:
            return b"".join(parts), None, blocks
        parts += block
        size += sum(map(len, block))
        blocks.append(BlockInfo.of(bh))
        if bh.end != fmt.END_NONE:
            return b"".join(parts), bh.end, blocks


def _decode_frames(
    src: BinaryIO,
    dst: BinaryIO | None,
    frames: _Frames,
    info: StreamInfo,
    header_bytes: bytes,
    threads: int,
    memory: int | None,
) -> int:
    """Decode a stream's frames: in worker processes (threads on the model's device,
    ``devicepool.frame_pool``) if there are several and the budget allows, else here.
    The first frame is read ahead (up to FIRST_FRAME_AHEAD bytes) to learn which; a
    stream of one frame is decoded here from what was read. Returns the last block's end
    code."""
    from .devicepool import frame_pool
    from .workers import plan_workers

    header = frames.header
    first, end, blocks = _read_frame(src, header, FIRST_FRAME_AHEAD)
    size = sum(b.raw_len for b in blocks)
    pool = None
    if end == fmt.END_FRAME and size >= MIN_WORKER_FRAME:
        # A later frame may be longer than the first (the encoder lets one take up to
        # levels.MERGED_FRAME where it holds a copy): the workers are planned for that.
        most = max(size, levels.MERGED_FRAME)
        workers = plan_workers(threads, header, most, memory, compress=False)
        if workers.count > 1 and any(b.method in fmt.MODEL_METHODS for b in blocks):
            frames.model = frames.get_model(header)  # (whether it runs on a device)
        pool = frame_pool(workers, header, frames.model, frames.account)
    if pool is None:
        end = frames.frame(_Chain(first, src), info, dst)  # type: ignore[arg-type]
        while end == fmt.END_FRAME:
            end = frames.frame(src, info, dst)
        return end
    info.workers = workers
    waiting: deque[tuple[int, int, list[BlockInfo]]] = deque()

    def take(done: DecodedFrame) -> None:
        offset, coded, blocks = waiting.popleft()
        if dst is not None:
            dst.write(done.raw)
        if done.error is not None:
            raise fmt.FormatError(done.error)
        index = len(info.frames)
        info.frames.append(FrameInfo(offset, coded, info.raw_len, len(done.raw)))
        for b in blocks:
            b.frame = index
        info.blocks += blocks
        info.raw_len += len(done.raw)
        info.add_spending(done.spending)
        if frames.progress:
            frames.progress(len(done.raw))

    pos = info.archive_len  # where the next frame starts (frames in flight are not counted)
    pending: tuple[bytes, int | None, list[BlockInfo]] | None = (first, end, blocks)
    try:
        while end == fmt.END_FRAME:
            data, end, blocks = pending or _read_frame(src, header)
            pending = None
            if end is None:  # the input ends inside this frame: what is whole decodes here
                for done in pool.drain():
                    take(done)
                info.archive_len = pos
                frames.frame(io.BytesIO(data), info, dst)
                raise AssertionError("unreachable: the frame above is truncated")
            model = None
            if any(b.method in fmt.MODEL_METHODS for b in blocks):
                if frames.model is None:
                    frames.model = frames.get_model(header)
                model = frames.model
            in_flight = [b for w in waiting for b in w[2]]
            base = len(info.blocks) + len(in_flight)
            raw_base = info.raw_len + sum(b.raw_len for b in in_flight)
            waiting.append((pos, len(data), blocks))
            pos += len(data)
            job = (model, header, header_bytes, data, base, raw_base, frames.account, pool.threaded)
            job += (frames.count, frames.raw, frames.int8_products)
            frames.count += 1
            frames.raw += sum(b.raw_len for b in blocks)
            for done in pool.submit(decode_frame, *job):
                take(done)
        for done in pool.drain():
            take(done)
        info.archive_len = pos
        return end
    finally:
        info.workers.peak = pool.close()


def list_stream(src: BinaryIO) -> StreamInfo:
    """Headers, frames and blocks of an archive, read without decoding any payload."""
    return decompress_stream(src, None, lambda h: None, decode=False)  # type: ignore[arg-type,return-value]
