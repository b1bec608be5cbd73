"""The mixed method's configuration: which contexts, table sizes and learning rates.

The structure of the adaptive layer is data, not code. A stream names its configuration in
its header, either as a preset number from ``PRESETS`` (one byte, or none for preset 1) or
written out in full (``Config.pack``), and one generic decoder (``adaptive.py``) reads it.
So the mixed method improves by adding a preset or a context kind beside the old ones,
never by copying a module: every configuration ever written keeps decoding through the same
code. Presets, once released, never change (docs/DESIGN.md, section 7).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from . import contexts


class ConfigError(ValueError):
    """A configuration that no decoder of this format can use."""


_FIXED = struct.Struct("<BBBBBBBH")  # shifts x3, final shift, APM rate, table bits, match bits, w0
MAX_MATCH_PROBES = 8
MAX_MIXERS = 8
#: The largest context tables a configuration may ask for (2^24 slots each; up to 2^22
#: before preset 18, and readers of then refuse more).
MAX_TABLE_BITS = 24


@dataclass(frozen=True)
class Config:
    """One configuration of the mixed method.

    - ``contexts``: the context kinds (``contexts.NAMES``), in the order of their tables
      and mixer inputs; each kind at most once.
    - ``mix_shifts``: learning rates of the three mixers (the extra ones, ``mixers``,
      learn at the third one's), as right shifts of
      ``input * error`` (weights in Q16): larger is slower.
    - ``final_shift``: the learning rate of the final mixer, which mixes the mixers.
    - ``apm_rate``: the refinement stages move by ``error >> apm_rate``.
    - ``table_bits`` / ``match_bits``: the most slots (log2) per context table and in the
      match model's table; streams of small blocks use fewer (``adaptive.table_bits``).
    - ``network_weight``: the network's initial mixer weight (Q16: 65536 is 1).
    - ``match_probes``: where the match model looks first for an earlier occurrence of the
      current context. 0 (presets 1-5): the latest in the stream, whichever segment wrote
      it. From 1 to 8: the latest in the segment's own part of the block, then in those
      of the segments nearest it (the one before, the one after, the second before, ...),
      that many segments in all, and only then the latest in the stream. In the lockstep
      the stream's latest occurrence is in whichever segment is furthest along the file,
      usually far from the byte being coded; the nearest earlier one (the previous line
      of a log, the previous call of a function) predicts better. Written out only when
      not 0, so a reader that predates it refuses it.
    - ``mixers``: extra mixers beside the three, each named by the mixer context that
      picks its weight set (``contexts.MIXER_NAMES``), all mixing the same inputs and
      feeding the final mixer with the three. Written out only when there are any, after
      the match probes, so a reader that predates them refuses them.
    - ``histories``: 1 where each context slot also keeps its last outcomes (a bit
      history), and each context's input is the mean, in the logit domain, of the slot's
      probability and of what that history has been followed by in the stream
      (``adaptive._train_histories``); 0 where it does not. Written out only when 1, after
      the mixers (a count of 0 where there are none), so a reader that predates it
      refuses it.
    - ``slot_ways``: 1 where a context's hash names one slot of its table; 4 where it
      names an aligned group of four (one cache line's half), and the context takes the
      slot of the group that holds it, else the one with the fewest observations (the
      first on a tie), so that a context seen often is not pushed out by one seen once.
    - ``warmup``: 1 where each mixer weight set learns faster while it is young, its
      error multiplied by (256 + 512 * 16 / (n + 16)) / 256 (integer division) after n
      updates of the set, 0 where it learns at its rate from the start.
    - ``match_min``: how many bytes of context (2 to 8) the match model hashes to find
      the latest earlier occurrence: 5 until these fields; 2 finds a shorter but more
      recent one, whose next byte predicts better on text and binaries alike.
    - The last three are written out only when not (1, 0, 5), after the histories (then
      written even when 0), so a reader that predates them refuses them.
    - ``fine``: 1 where a probability may come within 1/65536 of certainty: the
      refinement stages keep their curves in Q22 (``adaptive.FINE_Q``) and every
      count-based estimate rounds its move to the nearest. 0 where the moves are
      truncated, and a curve stops 2^apm_rate/65536 short of 1 and a slot counted to
      1023 1/64 short: on a page of white or a column of equal bytes, a thousandth of a
      bit or more for each bit. Written out only when 1, after the last three (then
      written even when they are (1, 0, 5)), so a reader that predates it refuses it.
    """

    contexts: tuple[int, ...]
    mix_shifts: tuple[int, int, int] = (14, 14, 13)
    final_shift: int = 16
    apm_rate: int = 6
    table_bits: int = 21
    match_bits: int = 22
    network_weight: int = 3 << 14
    match_probes: int = 0
    mixers: tuple[int, ...] = ()
    histories: int = 0
    slot_ways: int = 1
    warmup: int = 0
    match_min: int = 5
    fine: int = 0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Refuse what the decoder could not run, or could be made to run out of memory by."""
        if not 1 <= len(self.contexts) <= 32:
            raise ConfigError(f"a configuration has 1 to 32 contexts, not {len(self.contexts)}")
        for k in self.contexts:
            if k not in contexts.NAMES:
                raise ConfigError(f"unknown context kind {k}")
        if len(set(self.contexts)) != len(self.contexts):
            raise ConfigError("a context kind is listed twice")
        if len(self.mix_shifts) != 3 or not all(8 <= s <= 24 for s in self.mix_shifts):
            raise ConfigError(f"mixer learning rates out of range: {self.mix_shifts}")
        if not 8 <= self.final_shift <= 24:
            raise ConfigError(f"final mixer learning rate out of range: {self.final_shift}")
        if not 1 <= self.apm_rate <= 12:
            raise ConfigError(f"refinement rate out of range: {self.apm_rate}")
        if not 12 <= self.table_bits <= MAX_TABLE_BITS or not 12 <= self.match_bits <= 24:
            raise ConfigError("table sizes out of range")
        if not 0 <= self.network_weight <= 65535:
            raise ConfigError(f"network weight out of range: {self.network_weight}")
        if not 0 <= self.match_probes <= MAX_MATCH_PROBES:
            raise ConfigError(f"match probes out of range: {self.match_probes}")
        if len(self.mixers) > MAX_MIXERS:
            raise ConfigError(f"at most {MAX_MIXERS} extra mixers, not {len(self.mixers)}")
        for k in self.mixers:
            if k not in contexts.MIXER_NAMES:
                raise ConfigError(f"unknown mixer context {k}")
        if len(set(self.mixers)) != len(self.mixers):
            raise ConfigError("a mixer context is listed twice")
        if self.histories not in (0, 1):
            raise ConfigError(f"unknown bit history setting {self.histories}")
        if self.slot_ways not in (1, 4):
            raise ConfigError(f"context slots in groups of 1 or 4, not {self.slot_ways}")
        if self.warmup not in (0, 1):
            raise ConfigError(f"unknown mixer warm-up setting {self.warmup}")
        if not 2 <= self.match_min <= 8:
            raise ConfigError(f"match contexts of 2 to 8 bytes, not {self.match_min}")
        if self.fine not in (0, 1):
            raise ConfigError(f"unknown fine probability setting {self.fine}")

    @property
    def has_refinements(self) -> bool:
        """Whether the fields after the histories are written out (not their defaults)."""
        return (self.slot_ways, self.warmup, self.match_min) != (1, 0, 5)

    @property
    def names(self) -> list[str]:
        return [contexts.NAMES[k] for k in self.contexts]

    @property
    def reads_records(self) -> bool:
        """Whether a record kind is among the contexts: a binary configuration, whose
        blocks are searched for a record length and cut into long segments."""
        return not contexts.RECORD_KINDS.isdisjoint(self.contexts)

    def pack(self) -> bytes:
        """The configuration written out (docs/FORMAT.md, "Configuration")."""
        fixed = _FIXED.pack(
            *self.mix_shifts,
            self.final_shift,
            self.apm_rate,
            self.table_bits,
            self.match_bits,
            self.network_weight,
        )
        refinements = self.has_refinements or self.fine
        more = self.mixers or self.histories or refinements
        extra = bytes([self.match_probes]) if self.match_probes or more else b""
        if more:
            extra += bytes([len(self.mixers), *self.mixers])
        if self.histories or refinements:
            extra += bytes([self.histories])
        if refinements:
            extra += bytes([self.slot_ways, self.warmup, self.match_min])
        if self.fine:
            extra += bytes([self.fine])
        return bytes([len(self.contexts), *self.contexts]) + fixed + extra

    @classmethod
    def unpack(cls, data: bytes) -> Config:
        """Inverse of ``pack``; raises ConfigError on anything but a whole, valid one."""
        end = 1 + data[0] + _FIXED.size if data else 0
        # The match probes, then the count of mixers and their ids, then the histories,
        # then the slot ways, the mixers' warm-up and the match context's length, then
        # the fine probabilities.
        rest = len(data) - end
        tail = rest - 2 - data[end + 1] if rest >= 2 else -1
        mixed = tail in (0, 1, 4, 5)
        if not data or not (rest in (0, 1) or mixed):
            raise ConfigError("configuration of the wrong length")
        n = data[0]
        s1, s2, s3, fs, apm, tb, mb, w0 = _FIXED.unpack(data[1 + n : end])
        probes = data[end] if rest else 0
        if rest == 1 and probes == 0:
            raise ConfigError("match probes of 0 written out")
        mixers = tuple(data[end + 2 : end + 2 + data[end + 1]]) if mixed else ()
        after = data[end + 2 + len(mixers) :] if mixed else b""
        histories = after[0] if after else 0
        ways, warmup, match_min = tuple(after[1:4]) if len(after) >= 4 else (1, 0, 5)
        fine = after[4] if len(after) == 5 else 0
        if len(after) == 1 and not histories:
            raise ConfigError("bit histories of 0 written out")
        if len(after) == 4 and (ways, warmup, match_min) == (1, 0, 5):
            raise ConfigError("default slot ways, warm-up and match length written out")
        if len(after) == 5 and not fine:
            raise ConfigError("fine probabilities of 0 written out")
        if mixed and not (mixers or after):  # a count of 0 only before histories
            raise ConfigError("configuration of the wrong length")
        return cls(
            tuple(data[1 : 1 + n]),
            (s1, s2, s3),
            fs,
            apm,
            tb,
            mb,
            w0,
            probes,
            mixers,
            histories,
            ways,
            warmup,
            match_min,
            fine,
        )


#: The configuration of format 1's first release: orders 1-4, 6 and 8, three word
#: contexts, two column contexts, and six for code and tables.
DEFAULT = Config(
    contexts=(
        1,
        2,
        3,
        4,
        6,
        8,
        contexts.WORD,
        contexts.WORD_2,
        contexts.WORD_BYTE,
        contexts.COLUMN,
        contexts.COLUMN_2,
        contexts.SPARSE,
        contexts.INDENT,
        contexts.LINE,
        contexts.SPARSE_2,
        contexts.WORD_3,
        contexts.VERTICAL,
    )
)

#: For binary data: the default configuration, the three record contexts, and the network
#: at 1/8 of its weight to start with (trained on text, it has little to say about
#: tables, bitmaps or machine code: on such files of this machine -- a table of package
#: records, 1- and 8-bit bitmaps, a float array, the starts of libc and python3 --
#: ``scripts/block_kinds.py --network-weight`` coded them 0.3-1.7% smaller with 1/8 than
#: with 3/4, and within 0.05% of that with 0). For streams whose first
#: block has records (``records.detect``) or is x86 code (``filters.looks_like_x86``);
#: text pays nothing for it: its streams keep preset 1.
BINARY = Config(
    contexts=(*DEFAULT.contexts, contexts.RECORD, contexts.RECORD_2, contexts.RECORD_3),
    network_weight=1 << 13,
)

#: For binary data, the second: preset 2 and the two pixel contexts (``contexts.PIXELS``,
#: ``contexts.PIXELS_2``), which see a 1-bit bitmap's neighbouring pixels. Chosen among
#: variants by scratch runs on a 1-bit BMP of this machine, then compared with
#: ``scripts/block_kinds.py --presets 2,3`` on it (2.9% smaller than with preset 2), on the
#: other binary files named above and a few more (from 1.4% smaller on a 24-bit bitmap to
#: 0.2% larger on a database; 0.8% smaller in all) and on Calgary's fax bitmap ``pic``
#: (8.5% smaller).
BINARY_2 = Config(
    contexts=(*BINARY.contexts, contexts.PIXELS, contexts.PIXELS_2),
    network_weight=BINARY.network_weight,
)

#: For machine code and short records: preset 3 and the three machine-word contexts
#: (``contexts.ALIGN_4``, ``contexts.SKIP_4``, ``contexts.SKIP_1_4``). Chosen among six
#: kinds by ``scripts/block_kinds.py --presets 3,4`` on the first 256 KiB of binary files
#: of this machine (code of libc, python3 and ``libz.so``, a float array, tables of file
#: and package records, a man-db index, an 8-bit bitmap): 1.0% smaller in all, 2.5% on
#: ``libz.so``; then checked on whole files: x86 code 2.0-2.4% smaller, Calgary's obj2
#: and Canterbury's ``sum`` 0.5% and 1.7%, but 1-bit bitmaps 0.7-1.1% larger (their
#: neighbours are a row away, not 4 bytes), so streams whose records are long keep
#: preset 3 (``records.config_for``).
BINARY_3 = Config(
    contexts=(*BINARY_2.contexts, contexts.ALIGN_4, contexts.SKIP_4, contexts.SKIP_1_4),
    network_weight=BINARY.network_weight,
)

#: For 1-bit bitmaps (``records.looks_like_bitmap``): preset 3 and the two bit-level pixel
#: contexts (``contexts.BIT_PIXELS``, ``contexts.BIT_PIXELS_2``), windows of pixels
#: centred on the one being coded. Chosen among four such kinds by scratch runs on three
#: 1-bit bitmaps made from screenshots of this machine (text thresholded at two levels, a
#: dithered picture) and on Calgary's ``pic``: a third (3 pixels above, 1 two rows above,
#: 2 left) coded them 0.1% smaller still, not worth a third table and input. With the two
#: kept, ``scripts/block_kinds.py --presets 3,5`` codes the four 5.9-12.9% smaller than
#: preset 3 (7.6% in all).
BINARY_4 = Config(
    contexts=(*BINARY_2.contexts, contexts.BIT_PIXELS, contexts.BIT_PIXELS_2),
    network_weight=BINARY.network_weight,
)

#: For text: preset 1 with the match model looking first at the segment's own earlier
#: bytes and the three segments nearest it (``Config.match_probes``).
#: ``scripts/presets.py --presets 1,6`` on logs, code and prose of this machine: 0.2-6.5%
#: smaller (this machine's dpkg.log 6.5%); 4 probes did as well as 8. Binary presets
#: with probes were within 0.5% either way (``scripts/block_kinds.py`` on executables,
#: tables and bitmaps), so they stay without.
DEFAULT_2 = replace(DEFAULT, match_probes=4)

#: The extra mixers of presets 7-11 (``contexts.MIXER_NAMES``): weight sets chosen by the
#: kinds of the last bytes, by the word being written, by the last byte and by the byte
#: the match model expects, each with the partial byte or the bit position. The three
#: mixers before them choose by the match state, by how many contexts have been seen and
#: by the last byte with the bit position only, so one weight set had to serve, say,
#: the first letter of a word and the digit after a digit. Chosen among eleven such
#: contexts by scratch runs on eight texts of this machine (Python and C sources, English
#: prose, Markdown, a changelog, a licence, a to-do list, 1.2 MB), adding one at a time
#: while it paid. ``scripts/presets.py --presets 6,7`` on those texts: 1.3% smaller; on
#: 2 MiB of Python's standard library 1.9% smaller, at 10-15% less speed. The first three
#: choose among 2,048-4,096 sets, the last two among 65,536 or more.
MIXERS = (
    contexts.MIX_CLASSES_2,
    contexts.MIX_CLASSES_3,
    contexts.MIX_WORD,
    contexts.MIX_ORDER_1,
    contexts.MIX_EXPECTED,
)
#: Presets 6, 4, 3, 5 and 1 with the extra mixers (their numbers in ``PRESETS``).
TEXT_MIXERS = replace(DEFAULT_2, mixers=MIXERS)
BINARY_3_MIXERS = replace(BINARY_3, mixers=MIXERS)
BINARY_2_MIXERS = replace(BINARY_2, mixers=MIXERS)
BINARY_4_MIXERS = replace(BINARY_4, mixers=MIXERS)
DEFAULT_MIXERS = replace(DEFAULT, mixers=MIXERS)
#: For 1-bit bitmaps, where the level's text preset has extra mixers: the orders 1-4 and 6,
#: the record and pixel kinds of preset 5 and three more bit-level windows (wider, taller,
#: smaller: ``contexts.BIT_PIXELS_3`` to ``BIT_PIXELS_5``), and two mixers that choose
#: their weights by the pixels around the one being coded (``contexts.MIX_PIXELS``,
#: ``MIX_PIXELS_NEAR``) instead of preset 10's, which read letters and words. Without
#: the word, column and line kinds, whose statistics a bitmap only blurs. Chosen among
#: variants by scratch runs on five 1-bit bitmaps of this machine (screenshots and
#: diagrams thresholded, two pages of rendered text); ``scripts/presets.py --presets 10,12``
#: on them is in docs/DESIGN.md, section 4.
BITMAP = Config(
    contexts=(
        1,
        2,
        3,
        4,
        6,
        contexts.RECORD,
        contexts.RECORD_2,
        contexts.RECORD_3,
        contexts.PIXELS,
        contexts.PIXELS_2,
        contexts.BIT_PIXELS,
        contexts.BIT_PIXELS_2,
        contexts.BIT_PIXELS_3,
        contexts.BIT_PIXELS_4,
        contexts.BIT_PIXELS_5,
    ),
    network_weight=BINARY.network_weight,
    mixers=(contexts.MIX_PIXELS, contexts.MIX_PIXELS_NEAR),
)
#: For binary data where the level's text preset has extra mixers: preset 8 and the sparse
#: and match kinds (``contexts.SKIP_1``, ``SKIP_1_3``, ``NIBBLES_3``, ``EXPECTED``). Chosen
#: among fourteen such kinds by scratch runs on nine binary files of this machine (the
#: starts of bash and libcrypto, libz.so, a slice of a static library, compiled Python,
#: a font, a locale table, a float array and 16-bit samples), adding the best while it
#: paid; ``scripts/presets.py --presets 8,13`` on them is in docs/DESIGN.md, section 4.
BINARY_SPARSE_MIXERS = replace(
    BINARY_3_MIXERS,
    contexts=(
        *BINARY_3.contexts,
        contexts.SKIP_1,
        contexts.SKIP_1_3,
        contexts.NIBBLES_3,
        contexts.EXPECTED,
    ),
)
#: For images and wide tables (records of 64 bytes or more) where the level's text preset
#: has extra mixers: preset 9 and the four 8-bit image kinds (``contexts.IMAGE_GRADIENT``,
#: ``IMAGE_QUANT``, ``IMAGE_AVERAGE``, ``IMAGE_SLOPE``). Chosen among eight such kinds by
#: scratch runs on three 8-bit grayscale images of this machine (a photograph, a
#: screenshot, a page of a manual): all eight coded them 0.5% smaller than these four,
#: the gradient alone 1.8% larger. ``scripts/presets.py --presets 9,14`` on them is in
#: docs/DESIGN.md, section 4.
IMAGE_MIXERS = replace(
    BINARY_2_MIXERS,
    contexts=(
        *BINARY_2.contexts,
        contexts.IMAGE_GRADIENT,
        contexts.IMAGE_QUANT,
        contexts.IMAGE_AVERAGE,
        contexts.IMAGE_SLOPE,
    ),
)
#: For 24- and 32-bit images where the level's text preset has extra mixers: preset 14 and
#: the five colour kinds of the image's pixel size (``contexts.COLOUR_3``,
#: ``contexts.COLOUR_4``), which read the neighbours in the same colour channel and the
#: previous channel's move. Chosen by scratch runs on seven 24- and 32-bit images of this
#: machine (a photograph, screenshots, charts): with the five added, 5.8% smaller than
#: preset 14 (the photograph 6.4%, two of the seven 0.4-0.6% larger); with them in place
#: of the four 8-bit image kinds, 4.8%. ``nncompress compare`` before and after, on
#: fifteen files with those among them, is in docs/DESIGN.md, section 4.
COLOUR_24, COLOUR_32 = (
    replace(
        IMAGE_MIXERS,
        contexts=(*IMAGE_MIXERS.contexts, *range(base, base + contexts.COLOUR_KINDS_EACH)),
    )
    for base in (contexts.COLOUR_3, contexts.COLOUR_4)
)
#: For text at the strongest level, where a block is one segment: preset 11 with the
#: final mixer learning four times as slowly, the refinement stages twice as fast, and the
#: network starting at 1/2 of its weight. Their rates were set where many segments share
#: each weight set and table row in a step (``_update``'s batches); one segment updates
#: them once a bit and needs slower mixing. Chosen among rates by scratch runs of ``--max``
#: on eight texts of this machine (100 KB each of Python and C sources, a man page, a
#: changelog, a package list, German text, a licence): the final mixer's rate alone 0.5%
#: smaller, the three together 0.6%; at the default level the slower final mixer is 0.1%
#: larger. ``scripts/presets.py --level max --presets 11,15`` is in docs/DESIGN.md,
#: section 4.
MAX_TEXT = replace(DEFAULT_MIXERS, final_shift=18, apm_rate=5, network_weight=1 << 15)
#: For text in thousands of segments (``--wide``): preset 7 with context and match tables
#: of up to 2^24 slots, eight and four times the default's. A table remembers the last of
#: what was coded, and in the lockstep that is the last bytes of every segment: with
#: 2,048 segments a step, the default's 2^21 slots of a context hold only the last 128
#: bytes or so of each, and the high orders forget what they need. On 8 MiB of Python
#: source in 2,048 segments, 3.3% larger than the default level against 8.4% with preset
#: 7's tables (``scripts/wide_cost.py --mb 8 --presets 7,18``), for 2,390 MB of tables a
#: stream in --wide's 2 MiB blocks against 360 MB (``scripts/memory.py --tables
#: --block-mb 2``). docs/DESIGN.md, section 10.
WIDE_TEXT = replace(TEXT_MIXERS, table_bits=24, match_bits=24)
#: For text at the strongest level since format 1 grew bit histories: preset 15 with them
#: (``Config.histories``). A slot's probability, counted to 1023, says how often a bit
#: followed its context; its history says what followed it lately, and what such a
#: history has been followed by elsewhere in the stream, which the count learns late in a
#: context seen a few times or one whose data drifts. As inputs of their own (twice the
#: mixers' inputs) they made eight texts of this machine 1.6% larger; as the mean of the
#: two logits, 0.2% smaller, and binary files 1-3% (docs/DESIGN.md, section 4). Binary
#: streams of a level whose text preset has them get the binary preset with them
#: (``with_histories``). They cost a quarter more time a byte where no network sets the
#: pace, so only ``--max`` takes them.
MAX_HISTORIES = replace(MAX_TEXT, histories=1)


def with_histories(config: Config) -> Config:
    """``config`` with bit histories (``Config.histories``)."""
    return replace(config, histories=1)


#: The binary presets with bit histories, for the streams of ``--max``: presets 13, 14,
#: 12, 16 and 17 with them.
BINARY_HISTORIES, IMAGE_HISTORIES, BITMAP_HISTORIES, COLOUR_24_HISTORIES, COLOUR_32_HISTORIES = (
    with_histories(c) for c in (BINARY_SPARSE_MIXERS, IMAGE_MIXERS, BITMAP, COLOUR_24, COLOUR_32)
)


def refined(config: Config) -> Config:
    """``config`` with bit histories, context slots in groups of four, the mixers'
    warm-up and a match context of 2 bytes (``Config.slot_ways``, ``warmup``,
    ``match_min``), and the third mixer (with the extra ones) and the final mixer
    learning half as fast, which the warm-up's faster start makes pay: ``--max``'s
    presets since 25. A configuration so refined already is returned as it is."""
    if config.has_refinements:
        return config
    s1, s2, s3 = config.mix_shifts
    return replace(
        config,
        mix_shifts=(s1, s2, s3 + 1),
        final_shift=config.final_shift + 1,
        histories=1,
        slot_ways=4,
        warmup=1,
        match_min=2,
    )


def slotted(config: Config) -> Config:
    """``refined`` but for bit histories, which ``config`` keeps as it has them: slot
    groups, the mixers' warm-up, a match context of 2 bytes and the slower third and
    final mixers. What the default level's binary streams take (presets 31-35): they cost
    a few compares a slot and a counter a weight set, where bit histories cost a table
    access per context and bit, a third of a binary stream's speed (docs/DESIGN.md,
    section 4)."""
    return replace(refined(config), histories=config.histories)


def with_fine(config: Config) -> Config:
    """``config`` with fine probabilities (``Config.fine``)."""
    return replace(config, fine=1)


def like_level(config: Config, level: Config, slots: bool = False) -> Config:
    """``config`` (a binary preset taken for a stream, or the level's text preset) as
    ``level``, the level's text preset, has it: ``refined``, or with bit histories
    (``with_histories``), or as it is; and a binary preset, where ``slots``
    (``levels.Level.binary_slots``), ``slotted``. Then with fine probabilities
    (``with_fine``) where ``level`` has them."""
    if level.has_refinements:
        config = refined(config)
    elif level.histories:
        config = with_histories(config)
    elif slots and config not in TEXT_PRESETS:
        config = slotted(config)
    return with_fine(config) if level.fine else config


def variants(config: Config) -> tuple[Config, ...]:
    """``config`` as it is, with bit histories, ``refined`` and ``slotted``, each also
    with fine probabilities: what a level may make of a binary preset."""
    made = (config, with_histories(config), refined(config), slotted(config))
    return made + tuple(with_fine(c) for c in made)


#: For text at the strongest level since format 1 grew slot groups, the mixers' warm-up
#: and the match length (``refined``): preset 19 with them. Chosen by scratch runs of
#: ``--max`` on eleven files of this machine of 120 KB each (C headers, Python source, a
#: man page, a changelog, the package database, its log, a novel, an ELF executable and
#: a shared library, compiled Python, time-zone data), each change alone and then
#: together (docs/DESIGN.md, section 4; ``nncompress compare`` on Calgary before and
#: after is in docs/MEASUREMENTS.md). Slot groups cost a few compares a slot (the group is half a
#: cache line), the warm-up a counter a weight set; the network sets ``--max``'s pace.
MAX_REFINED = refined(MAX_TEXT)
#: The binary presets so refined, for the streams of ``--max``: presets 13, 14, 12, 16
#: and 17 with bit histories, slot groups, warm-up and a match length of 2.
BINARY_REFINED, IMAGE_REFINED, BITMAP_REFINED, COLOUR_24_REFINED, COLOUR_32_REFINED = (
    refined(c) for c in (BINARY_SPARSE_MIXERS, IMAGE_MIXERS, BITMAP, COLOUR_24, COLOUR_32)
)
#: The binary presets for the default level's streams since format 1 grew slot groups:
#: presets 13, 14, 12, 16 and 17 ``slotted``. ``nncompress compare`` on binaries of this
#: machine and of Calgary and Canterbury before and after is in docs/MEASUREMENTS.md
#: ("Slot groups at the default level").
BINARY_SLOTTED, IMAGE_SLOTTED, BITMAP_SLOTTED, COLOUR_24_SLOTTED, COLOUR_32_SLOTTED = (
    slotted(c) for c in (BINARY_SPARSE_MIXERS, IMAGE_MIXERS, BITMAP, COLOUR_24, COLOUR_32)
)
#: For text at the default level since format 1 grew fine probabilities (``Config.fine``):
#: preset 7 with them. Its binary streams take presets 31-35 with them (37-41): a
#: screenshot, a spreadsheet or a bitmap is mostly bits the model is all but certain of,
#: and each paid a thousandth of a bit or more where a 1 was certain. ``nncompress
#: compare`` before and after is in docs/DESIGN.md, section 4.
FINE_TEXT = with_fine(TEXT_MIXERS)
#: The same for the strongest level: preset 25 with fine probabilities, its binary streams
#: presets 26-30 with them (43-47).
FINE_MAX = with_fine(MAX_REFINED)
(
    BINARY_SLOTTED_FINE,
    IMAGE_SLOTTED_FINE,
    BITMAP_SLOTTED_FINE,
    COLOUR_24_SLOTTED_FINE,
    COLOUR_32_SLOTTED_FINE,
) = (
    with_fine(c)
    for c in (BINARY_SLOTTED, IMAGE_SLOTTED, BITMAP_SLOTTED, COLOUR_24_SLOTTED, COLOUR_32_SLOTTED)
)
(
    BINARY_REFINED_FINE,
    IMAGE_REFINED_FINE,
    BITMAP_REFINED_FINE,
    COLOUR_24_REFINED_FINE,
    COLOUR_32_REFINED_FINE,
) = (
    with_fine(c)
    for c in (BINARY_REFINED, IMAGE_REFINED, BITMAP_REFINED, COLOUR_24_REFINED, COLOUR_32_REFINED)
)
#: For the default level's long texts (``levels.LONG_TEXT_BYTES``), whose blocks go without
#: the network in one segment: ``--max``'s text preset without bit histories (preset 1 with
#: the extra mixers, the rates for one segment, slot groups, the mixers' warm-up, a match
#: context of 2 bytes and fine probabilities), as the default level's binary streams take
#: their presets ``slotted``: bit histories cost a table access per context and bit, a
#: third more time a byte where the mixing sets the pace. Its final mixer learns faster
#: than ``slotted`` makes it (a shift of 17, not 19): the first MiB of HTML pages that
#: share one template around short bodies (some 130:1) came out 8.0% smaller so, five
#: texts of other kinds 0.14% in all (docs/MEASUREMENTS.md, "Long texts without the
#: network"). Not a preset: written out in the header, so that every reader of format 1
#: reads it. ``scripts/presets.py --long-config 36,42,long`` compares it with presets 36
#: and 42 in its place.
LONG_TEXT = replace(with_fine(slotted(MAX_TEXT)), final_shift=17)
#: The text presets a level may ask for, which a stream of binary data gives up for a
#: binary one (``records.config_for``).
TEXT_PRESETS = (
    DEFAULT,
    DEFAULT_2,
    TEXT_MIXERS,
    DEFAULT_MIXERS,
    MAX_TEXT,
    WIDE_TEXT,
    MAX_HISTORIES,
    MAX_REFINED,
    FINE_TEXT,
    FINE_MAX,
)

#: Released presets by number (part of the format: never change or reuse a number).
PRESETS: dict[int, Config] = {
    1: DEFAULT,
    2: BINARY,
    3: BINARY_2,
    4: BINARY_3,
    5: BINARY_4,
    6: DEFAULT_2,
    7: TEXT_MIXERS,
    8: BINARY_3_MIXERS,
    9: BINARY_2_MIXERS,
    10: BINARY_4_MIXERS,
    11: DEFAULT_MIXERS,
    12: BITMAP,
    13: BINARY_SPARSE_MIXERS,
    14: IMAGE_MIXERS,
    15: MAX_TEXT,
    16: COLOUR_24,
    17: COLOUR_32,
    18: WIDE_TEXT,
    19: MAX_HISTORIES,
    20: BINARY_HISTORIES,
    21: IMAGE_HISTORIES,
    22: BITMAP_HISTORIES,
    23: COLOUR_24_HISTORIES,
    24: COLOUR_32_HISTORIES,
    25: MAX_REFINED,
    26: BINARY_REFINED,
    27: IMAGE_REFINED,
    28: BITMAP_REFINED,
    29: COLOUR_24_REFINED,
    30: COLOUR_32_REFINED,
    31: BINARY_SLOTTED,
    32: IMAGE_SLOTTED,
    33: BITMAP_SLOTTED,
    34: COLOUR_24_SLOTTED,
    35: COLOUR_32_SLOTTED,
    36: FINE_TEXT,
    37: BINARY_SLOTTED_FINE,
    38: IMAGE_SLOTTED_FINE,
    39: BITMAP_SLOTTED_FINE,
    40: COLOUR_24_SLOTTED_FINE,
    41: COLOUR_32_SLOTTED_FINE,
    42: FINE_MAX,
    43: BINARY_REFINED_FINE,
    44: IMAGE_REFINED_FINE,
    45: BITMAP_REFINED_FINE,
    46: COLOUR_24_REFINED_FINE,
    47: COLOUR_32_REFINED_FINE,
}
#: What ``-v`` calls them.
PRESET_NAMES: dict[int, str] = {
    1: "default",
    2: "binary",
    3: "binary with pixels",
    4: "binary with machine words",
    5: "binary with bit pixels",
    6: "text with nearby matches",
    7: "text with more mixers",
    8: "binary with machine words and more mixers",
    9: "binary with pixels and more mixers",
    10: "binary with bit pixels and more mixers",
    11: "default with more mixers",
    12: "1-bit bitmap",
    13: "binary with sparse and match contexts",
    14: "image",
    15: "text at the strongest level",
    16: "24-bit image",
    17: "32-bit image",
    18: "text in many segments",
    19: "text at the strongest level, with bit histories",
    20: "binary with sparse and match contexts and bit histories",
    21: "image with bit histories",
    22: "1-bit bitmap with bit histories",
    23: "24-bit image with bit histories",
    24: "32-bit image with bit histories",
    25: "text at the strongest level, with bit histories and slot groups",
    26: "binary with sparse and match contexts, bit histories and slot groups",
    27: "image with bit histories and slot groups",
    28: "1-bit bitmap with bit histories and slot groups",
    29: "24-bit image with bit histories and slot groups",
    30: "32-bit image with bit histories and slot groups",
    31: "binary with sparse and match contexts and slot groups",
    32: "image with slot groups",
    33: "1-bit bitmap with slot groups",
    34: "24-bit image with slot groups",
    35: "32-bit image with slot groups",
    36: "text with more mixers and fine probabilities",
    37: "binary with sparse and match contexts, slot groups and fine probabilities",
    38: "image with slot groups and fine probabilities",
    39: "1-bit bitmap with slot groups and fine probabilities",
    40: "24-bit image with slot groups and fine probabilities",
    41: "32-bit image with slot groups and fine probabilities",
    42: "text at the strongest level, with bit histories, slot groups and fine probabilities",
    43: "binary with sparse and match contexts, bit histories, slot groups and fine probabilities",
    44: "image with bit histories, slot groups and fine probabilities",
    45: "1-bit bitmap with bit histories, slot groups and fine probabilities",
    46: "24-bit image with bit histories, slot groups and fine probabilities",
    47: "32-bit image with bit histories, slot groups and fine probabilities",
}
DEFAULT_PRESET = 1


#: What ``-v`` calls the configurations a level writes out in full (not presets).
WRITTEN_NAMES: dict[Config, str] = {
    LONG_TEXT: "long text: one segment a block, slot groups and fine probabilities",
}


def preset_of(config: Config) -> int | None:
    """The preset number of ``config``, or None if it has to be written out."""
    for number, c in PRESETS.items():
        if c == config:
            return number
    return None
