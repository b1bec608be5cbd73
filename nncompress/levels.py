"""Compression levels: the one table of what each level does.

A level is the encoder's choice only: which block methods it tries, how many lockstep
segments its model-coded blocks get, which model and which mixed-method configuration it
uses when none is named, and how long its frames are. Everything it chooses is recorded in
the stream, so a decoder needs no level.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from . import format as fmt
from . import repeats
from .config import FINE_MAX, FINE_TEXT, LONG_TEXT, TEXT_MIXERS, WIDE_TEXT, Config

#: Blocks of 1 MiB: large enough that a block's lockstep segments (one per KiB) fill a
#: batched network step, small enough that memory stays low and damage is located.
DEFAULT_BLOCK = 1 << 20
#: Frames of 16 MiB: the adaptive statistics start afresh at each frame, which is what lets
#: frames be coded in parallel and read at random. Measured with scripts/frame_cost.py
#: (docs/FORMAT.md, "Frames"): +0.51% on 20 MB of Python source, against +2.07% for frames
#: of 4 MiB and +5.91% for 1 MiB.
DEFAULT_FRAME = 16 << 20
#: Where the frame size is left to the encoder, an input longer than this but at most two
#: default frames long is cut into two frames of nearly equal length (``split_frames``),
#: so that two cores code it at once, each way, instead of one: a speed a user of any
#: machine with two cores sees on the inputs where waiting hurts, for a cost measured with
#: scripts/frame_cost.py (docs/FORMAT.md, "Frames") at +0.44% on 12 MiB of English text
#: and +1.07% on 12 MiB of Python source. Shorter inputs stay one frame: their halves
#: would be under 4 MiB, where the cost grows (frames of 4 MiB: +2.07% on Python source).
SPLIT_MIN = 8 << 20
#: ...unless the second half repeats the first: where this share of its anchored strings
#: occur in the first (``repeats.shared``), the input stays one frame, whose second half
#: the match model then finds in the first. 9 MB of text with one file in it twice, 2.5
#: MB each, 4.5 MB apart (Canterbury's large world192.txt, then bible.txt between):
#: 1,441,233 bytes in two frames, 1,066,544 in one, where xz -9e writes 1,361,868
#: (`nncompress -c` and `-F 16M`, 2026-12-07, AMD EPYC, 2 cores). Between the halves of
#: 6.5-9 MB of text, logs, CSV, XML and Python's PEPs of this machine 0.2-0.8% of the
#: strings recur, of that text 55%, of a tar of this repository's sources 31%
#: (``scripts/frame_cost.py --shared``).
SPLIT_SHARED = 1 / 8
#: A longer input is cut into default frames as it streams in, but the encoder holds up
#: to this much of it and lets one frame take several default frames' worth where a later
#: one repeats an earlier one (``SPLIT_SHARED`` again, ``repeats.frame_parts``): a file
#: stored twice in a tarball, tens of MiB apart, whose second copy a cut would code afresh
#: (xz -9e's dictionary, of the same size, finds it): 20 MiB of books twice 8,557,178 bytes
#: in default frames, 4,305,070 in one, xz -9e 5,667,800 (DESIGN.md, section 6, with what
#: it costs in speed). The match model's window (``adaptive.WINDOW``): a frame any longer
#: would not reach its start.
MERGED_FRAME = 64 << 20


def merged_frame(held: bytes | bytearray, frame: int) -> int:
    """The length of the next frame where the input's rest, ``held``, is longer than a
    default frame of ``frame`` bytes: as many of them, of those ``MERGED_FRAME`` holds,
    as ``repeats.frame_parts`` keeps together; one where none repeats another."""
    count = max(1, MERGED_FRAME // frame)
    parts = [bytes(held[i : i + frame]) for i in range(0, min(len(held), count * frame), frame)]
    return frame * repeats.frame_parts(parts, SPLIT_SHARED)


def split_frames(n: int, block: int) -> int:
    """The length of the first frame of an input of ``n`` bytes that ``SPLIT_MIN`` says to
    cut in two (``SPLIT_MIN < n <= 2 * DEFAULT_FRAME``): half of it rounded to the nearest
    whole block of ``block`` bytes, the second frame taking the rest. 0 where it stays one
    frame (blocks too large to cut it)."""
    if not SPLIT_MIN < n <= 2 * DEFAULT_FRAME:
        return 0
    first = max((n // 2 + block // 2) // block, 1) * block
    return first if first < n else 0


#: The default level's text segments: 8 KiB, where the format's default count
#: (``format.segment_count``) gives 1 KiB. Each segment starts with a network that has seen
#: none of its bytes. ``scripts/presets.py --presets auto --text-segment-bytes 1024,2048``
#: on eight texts of this machine (1.2 MB): 2 KiB 0.7% smaller than 1 KiB, book1 at the
#: same speed (with the extra mixers of presets 7-11 the mixing, more than the network's
#: step, sets its pace), the others 0-10% slower. The same with ``2048,4096`` on eight
#: texts of 117-600 KB (Vim manuals, Python source, a changelog, English novels; 2026-12-03
#: 08:50 UTC): 4 KiB 0.42% smaller (0.9% on the source, 0.2% on a novel), at the same speed
#: within the VM's noise (the six files that changed: 392 and 384 KB/s in all compressing,
#: 419 and 417 decompressing). With ``4096,8192`` on those of 400 KB or more and four more
#: (C headers, PEPs, man pages, Japanese Wikipedia XML; 2026-12-03 09:09 UTC): 8 KiB 0.36%
#: smaller (1.2% on the headers; a novel 0.1% larger), at the same speed again (the seven
#: files that changed: 459 and 456 KB/s in all compressing, 477 and 481 decompressing;
#: xz -9e 1,514-3,080 KB/s each). Blocks under 512 KiB keep their 64 segments.
TEXT_SEGMENT_BYTES = 8192
#: But at least this many segments where the default count has them (blocks under 64 KiB
#: keep it): a short text in fewer segments takes more steps, each costing nearly what it
#: costs with more segments (a 35 KB licence in 17 segments instead of 34 coded 28%
#: slower, for 0.4%).
MIN_TEXT_SEGMENTS = 64


def text_segments(n: int, length: int = TEXT_SEGMENT_BYTES) -> int:
    """The segment count of a text block of ``n`` bytes in segments of ``length`` bytes,
    at least ``MIN_TEXT_SEGMENTS``: never more than the format's default count
    (``format.segment_count``), never fewer than it allows."""
    count = max(n // length, MIN_TEXT_SEGMENTS)
    return max(fmt.fewest_segments(n), min(fmt.segment_count(n), count))


#: ``--wide``: blocks of 2 MiB, eight to a default frame, so that a block's segments are
#: more than the default's without hiding much of what a byte is predicted from. A step of
#: the mixed method runs one segment group (half a block's segments), and a device needs
#: many segments in a step; but in a block the statistics see only the first bytes of each
#: segment, so the more bytes a block holds, the more of its neighbourhood a byte's
#: prediction misses. On 16 MiB of Python source (``scripts/wide_cost.py --levels wide
#: --block-mb 2,4,8 --segment-bytes 8192``, 2026-12-05) blocks of 2, 4 and 8 MiB in 8 KiB
#: segments came out -0.04%, +1.00% and +2.57% against the default level, and on 64 MiB
#: blocks of 2 and 4 MiB +0.12% and +1.51% (the 16 MiB blocks in 4 KiB segments that
#: ``--wide`` took before: more still, section 10's tables): 2 MiB is the largest block
#: within the 1% a device's level may cost. More segments a step come from frames coded
#: side by side (docs/DESIGN.md, section 10, "Segments for a device").
WIDE_BLOCK = 2 << 20
#: ...in segments of 8 KiB, as the default level's text (256 in a full block: 128 a step):
#: at the same width shorter segments cost more than larger blocks (256 a step on 16 MiB
#: of Python source: blocks of 4 MiB in 8 KiB segments +1.00%, of 1 MiB in 2 KiB segments
#: +1.71%, ``wide_cost.py --levels default --text-segment-bytes 2048``).
WIDE_SEGMENT_BYTES = 8192


def wide_segments(n: int) -> int:
    """The segment count of a text block of ``n`` bytes at ``--wide``: blocks that the
    format allows no more than its default count (up to 1 MiB) as the default level cuts
    them (``text_segments``: an input that small is quick anyway), longer ones in one
    segment per ``WIDE_SEGMENT_BYTES`` up to what the format allows
    (``format.most_segments``)."""
    if fmt.most_segments(n) == fmt.segment_count(n):
        return text_segments(n)
    return max(text_segments(n), min(fmt.most_segments(n), n // WIDE_SEGMENT_BYTES))


#: The default level's long texts: a text stream of at least 1 MiB goes without the
#: network, each block in one segment, in ``config.LONG_TEXT`` (``--max``'s text preset
#: without bit histories). The lockstep pays for the network's step with many segments,
#: and in a block of many segments a byte's prediction sees only the first bytes of the
#: other segments: the more of a file the statistics have learnt, the more that costs
#: beside what the network adds to them. It costs wall-clock time where a core is free:
#: one segment runs on one core, where the network's steps ran on a second one beside
#: the coder; on inputs of several frames (``-T``) every core has a frame to code.
#: ``scripts/presets.py --presets auto --long-text 0,...`` on prefixes and whole files
#: of this machine's texts puts the crossing between 512 KiB and 1 MiB; its figures are
#: in docs/MEASUREMENTS.md ("Long texts without the network").
LONG_TEXT_BYTES = 1 << 20


@dataclass(frozen=True)
class Level:
    name: str
    #: Block methods tried (stored is always possible; the smallest wins).
    methods: tuple[int, ...]
    #: Segment count of a model-coded block of n bytes.
    segments: Callable[[int], int] = fmt.segment_count
    #: The model used when none is named (a name in the model search path).
    model: str = "default"
    #: The mixed method's configuration (for text: a stream whose first block holds
    #: records or code gives way to a binary preset, ``records.config_for``).
    config: Config = TEXT_MIXERS
    #: Whether repetitive text (``records.looks_redundant``) may be coded without the
    #: network, in one segment, where a trial on its start says that is smaller than the
    #: network in many shorter segments (``records.flat``, ``engine._network_pays``;
    #: binary blocks always are); where every block is one segment anyway, the network's
    #: few percent are worth its time.
    flat_text: bool = True
    #: Whether binary blocks, which go without the network, are coded with it as well and
    #: the smaller kept (``engine._if_smaller``): a second coding of each, for a few
    #: percent on binaries that hold text, where the level's time allows it.
    network_trial: bool = False
    #: Whether a block that LZMA2 codes in almost nothing (long runs, a line repeated:
    #: ``engine.looks_trivial``) is taken by LZMA2 without trying the mixed method, which
    #: codes such a block at its usual pace, tens of KB/s, for a few hundred bytes a MiB
    #: at most (``engine.TRIVIAL``).
    runs_by_lzma: bool = True
    #: The block size where the caller names none (``-B``).
    block: int = DEFAULT_BLOCK
    #: A text stream at least this long (as much of it as the encoder holds when it
    #: settles the stream's configuration: the whole input, or more than a frame) takes
    #: ``long_config`` in place of ``config`` and codes every text block without the
    #: network, in one segment (``engine.compress_block``'s ``long_text``); 0: never.
    long_text: int = 0
    long_config: Config | None = None
    #: Whether a stream that gives up the text preset for a binary one takes it
    #: ``slotted`` (presets 31-35: slot groups, the mixers' warm-up, a match context of
    #: 2 bytes; 37-41 with fine probabilities, where the level's text preset has them),
    #: where the level's text preset has neither bit histories nor those.
    binary_slots: bool = False


LEVELS: dict[str, Level] = {
    # The network alone: no adaptive statistics, no LZMA trial.
    "fast": Level("fast", (fmt.METHOD_MODEL,)),
    # Text in preset 36 (7 with fine probabilities), binary streams in presets 37-41
    # (31-35 so): their blocks go without the network in one segment, so the mixing
    # sets their pace, which slot groups and the warm-up hardly slow, and fine
    # probabilities not at all (docs/DESIGN.md, section 4); text streams of 1 MiB or
    # more in LONG_TEXT, their text without the network too (LONG_TEXT_BYTES). --wide
    # keeps the presets a device can run, and the network.
    "default": Level(
        "default",
        (fmt.METHOD_MIXED, fmt.METHOD_LZMA),
        segments=text_segments,
        config=FINE_TEXT,
        binary_slots=True,
        long_text=LONG_TEXT_BYTES,
        long_config=LONG_TEXT,
    ),
    # Strongest and slowest: each block of up to 1 MiB as one segment, and the larger
    # network (a third of the default's speed with float products, which at one segment
    # does not set the pace: the per-byte coding work does). Preset 42 (preset 1 with
    # the extra mixers, rates for one segment, bit histories, slot groups, the mixers'
    # warm-up, a match context of 2 bytes and fine probabilities; 15, 19, then 25
    # before it): where a block is one segment, the latest occurrence of a context is
    # the nearest one, so it needs no nearby probes.
    "max": Level(
        "max",
        (fmt.METHOD_MIXED, fmt.METHOD_LZMA),
        segments=fmt.fewest_segments,
        model="large",
        config=FINE_MAX,
        flat_text=False,
        network_trial=True,
        runs_by_lzma=False,
    ),
    # The default's method in blocks of 2 MiB in 256 segments: a device's geometry, within
    # 1% of the default (docs/DESIGN.md, section 10). The archive depends on the level,
    # never on the device that codes it.
    "wide": Level(
        "wide",
        (fmt.METHOD_MIXED, fmt.METHOD_LZMA),
        segments=wide_segments,
        config=WIDE_TEXT,
        block=WIDE_BLOCK,
    ),
}


@contextlib.contextmanager
def changed(name: str, **fields: object) -> Iterator[Level]:
    """Level ``name`` with ``fields`` replaced while the ``with`` block runs, and as it
    was after it, an error or not: for scripts that measure, or pin in a golden archive,
    what a level did or might do (an archive never depends on the level, so any variant
    decodes)."""
    level = LEVELS[name]
    LEVELS[name] = dataclasses.replace(level, **fields)  # type: ignore[arg-type]
    try:
        yield LEVELS[name]
    finally:
        LEVELS[name] = level
