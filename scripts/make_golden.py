#!/usr/bin/env python3
"""(Re)create the golden files of ``tests/test_golden.py``:

* ``tests/data/golden.txt`` -- original prose (written for this project; it is in this
  script, so the pair can always be rebuilt), twice over, and
* ``tests/data/golden*.nnc`` -- that text compressed with ``models/default.nnm`` in the
  ways ``GOLDENS`` lists: the default level in blocks of 9000 bytes; in frames of two
  blocks of 4096 (so the index and the frame restarts are pinned); and with a second
  mixed-method configuration written out in the header (so the generic decoder is pinned
  on a configuration other than the default); and, as ``golden-nearby.nnc``,
  ``golden-mixers.nnc``, ``golden-max.nnc``, ``golden-wide.nnc`` and
  ``golden-max-histories.nnc``, ``golden-max-refined.nnc``, ``golden-fine.nnc`` and
  ``golden-max-fine.nnc``, in blocks of 9000 with the text presets 6 (the match model's
  nearby probes), 7 (the default level's until 36), 15 (``--max``'s until 19), 18
  (``--wide``'s), 19 (``--max``'s until 25, with bit histories), 25 (``--max``'s until
  42, with slot groups, warm-up and a short match context), 36 (the default level's,
  with fine probabilities) and 42 (``--max``'s, the same);
* ``tests/data/golden-primed.nnc`` and ``golden-primed3.nnc`` -- the text with a primed
  model, of model file format version 2 and 3 (whose prime sizes the tables too), and
  ``golden-records.nnc``, ``golden-x86.nnc``, ``golden-bitmap.nnc``, ``golden-words.nnc``
  and ``golden-bitpixels.nnc`` -- a computed table, computed code, a computed 1-bit
  bitmap, longer code and a computed 1-bit picture, for the binary presets (2; 3 with the
  pixel contexts; 4 with the machine words; 5 with the bit-level pixels) and the options
  of mixed blocks;
* ``tests/data/golden-many-segments.nnc`` -- a computed text of 1,026 KiB in one block of
  1,026 segments, more than the 1,024 a block may have up to 1 MiB (``format.
  most_segments``: the geometry a device runs, ``--wide``), coded in two groups of 513;
* ``tests/data/golden-repeat.nnc`` -- the text's start, runs and fill patterns, most in
  repeat blocks (``format.STORED_REPEAT``), the text's start again and a short end, in
  blocks of 4096 (``runs_data``);
* ``tests/data/golden-copy.nnc`` -- computed code, a little text, the code again with a
  block of it a copy block (``format.STORED_COPY``), and a short end, in blocks of 64 KiB
  (``copies_data``); and
* ``tests/data/golden-long-text.nnc`` -- the text as the default level codes a long text
  (``levels.Level.long_text``): the configuration written out, blocks of 9000 bytes
  each without the network in one segment.

These are archives of format 1, which every release must decode: the golden test
decompresses each and recompresses golden.txt, demanding identical bytes, so any change to
the format, the coder, the configurations or the shipped model shows up as a failing test.
A golden archive is never rebuilt once released; a new format feature gets a new golden
beside them::

    python scripts/make_golden.py            # write the files that are missing
    python scripts/make_golden.py --check    # exit 1 if any archive would differ
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import struct
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nncompress import contexts  # noqa: E402
from nncompress.config import (  # noqa: E402
    BINARY,
    BINARY_2,
    BINARY_3_MIXERS,
    BINARY_4_MIXERS,
    DEFAULT,
    DEFAULT_2,
    FINE_MAX,
    FINE_TEXT,
    LONG_TEXT,
    MAX_HISTORIES,
    MAX_REFINED,
    MAX_TEXT,
    TEXT_MIXERS,
    WIDE_TEXT,
    Config,
)

DATA = REPO / "tests" / "data"
TEXT_PATH = DATA / "golden.txt"
MODEL_PATH = REPO / "models" / "default.nnm"
#: The level users get. make_golden refuses an archive with a stored or LZMA block: the
#: golden must pin the network, the adaptive model and the range coder (and must not depend
#: on the liblzma version, which would code a fallback block).
LEVEL = "default"
#: A configuration unlike the default one: fewer contexts in another order, other
#: learning rates, smaller tables, a different start for the network's weight.
SECOND_CONFIG = Config(
    contexts=(
        contexts.WORD,
        1,
        2,
        3,
        5,
        7,
        contexts.COLUMN,
        contexts.SPARSE,
        contexts.LINE,
    ),
    mix_shifts=(13, 15, 12),
    final_shift=15,
    apm_rate=7,
    table_bits=18,
    match_bits=20,
    network_weight=1 << 15,
)
#: file name -> (block size, frame size, configuration or None for the level's; the first
#: archives were made when the level's was preset 1, and name it now; the nearby golden
#: when it was preset 6)
GOLDENS: dict[str, tuple[int, int, Config | None]] = {
    # Two blocks (9000 bytes in 16 lockstep segments, coded in two groups of 8, and the
    # rest in 2, a group each): the lockstep, the groups, the block boundary, the
    # statistics the second block inherits and the match model's repeats.
    "golden.nnc": (9000, 16 << 20, DEFAULT),
    # Blocks of 4096 in frames of two: three blocks, two frames, an index.
    "golden-frames.nnc": (4096, 8192, DEFAULT),
    "golden-config2.nnc": (9000, 16 << 20, SECOND_CONFIG),
    # The default level's text preset since it became 6 (the match model's probes of the
    # segment's own bytes and its neighbours'), in golden.nnc's layout.
    "golden-nearby.nnc": (9000, 16 << 20, DEFAULT_2),
    # The default level's text preset from 7 to 36 (extra mixers, chosen by mixer
    # contexts), in the same layout.
    "golden-mixers.nnc": (9000, 16 << 20, TEXT_MIXERS),
    # --max's text preset since it became 15 (preset 11 with rates for one segment), with
    # the default model, in the same layout: it pins the preset's number and rates.
    "golden-max.nnc": (9000, 16 << 20, MAX_TEXT),
    # --wide's text preset 18 (preset 7 with context and match tables of up to 2^24
    # slots), in the same layout: it pins the preset's number and table sizes.
    "golden-wide.nnc": (9000, 16 << 20, WIDE_TEXT),
    # --max's text preset since it became 19 (preset 15 with bit histories), in the same
    # layout: its blocks' 16 and 2 segments pin how a step's histories are learnt, in
    # segment order.
    "golden-max-histories.nnc": (9000, 16 << 20, MAX_HISTORIES),
    # --max's text preset since it became 25 (19 with slot groups, the mixers' warm-up and
    # a match context of 2 bytes), in the same layout: its blocks' 16 and 2 segments pin
    # how a step's segments claim a group's slots and count their weight sets' updates.
    "golden-max-refined.nnc": (9000, 16 << 20, MAX_REFINED),
    # The default level's text preset since it became 36 (7 with fine probabilities: the
    # refinement curves in Q22, count-based moves rounded), and --max's since 42 (25 so),
    # in the same layout.
    "golden-fine.nnc": (9000, 16 << 20, None),
    "golden-max-fine.nnc": (9000, 16 << 20, FINE_MAX),
}

#: Archives made with the shipped network primed with PRIME (docs/FORMAT.md, "Primed
#: models"), named by 4 bytes of the primed model's hash (header bit 6): file name ->
#: (block size, frame size, model file format version). The primed models are rebuilt from
#: models/default.nnm by ``primed_model``; their hashes are pinned, so a change to how
#: model files are written shows.
PRIMED_GOLDENS: dict[str, tuple[int, int, str]] = {
    # Blocks of 4096 in frames of two: each frame learns the prime before its first block.
    "golden-primed.nnc": (4096, 8192, "2"),
    # A version 3 model, blocks of 100 bytes in frames of 1000: context tables sized for
    # 2540 // 4 bytes (13 bits) instead of 100 (12), ten frames each learning the prime.
    "golden-primed3.nnc": (100, 1000, "3"),
}
PRIMED_NAME = "golden-primed"


def prime_bytes(version: str = "2") -> bytes:
    """The prime, a sample of the data: the golden text's first paragraph after its title
    for the version 2 model, its first five (2,540 bytes, so that a quarter of them sizes
    larger tables than blocks of 100 bytes do) for the version 3 model."""
    paragraphs = GOLDEN_TEXT.encode("utf-8").split(b"\n\n")
    return b"\n\n".join(paragraphs[1 : 2 if version == "2" else 6]) + b"\n"


def primed_model(directory: Path, model_path: Path = MODEL_PATH, version: str = "2") -> Path:
    """Write the primed golden model of model file format ``version`` (the network of
    ``model_path`` with ``prime_bytes``) in ``directory``; returns its path."""
    from safetensors.numpy import load_file

    from nncompress.model import _read_metadata, save_model, with_prime

    tensors = load_file(str(model_path))
    meta = _read_metadata(model_path.read_bytes())
    name = PRIMED_NAME if version == "2" else f"{PRIMED_NAME}{version}"
    path = directory / f"{name}.nnm"
    save_model(path, *with_prime(tensors, meta, prime_bytes(version), name, version))
    return path


GOLDEN_TEXT = """\
The Keeper of the Northern Light

On the last island before the open sea there stood a lighthouse whose lamp had not failed
in ninety years. The keeper, a patient woman named Ilse Marrow, kept a ledger of every night
the light burned, and in the margins she wrote down whatever the weather taught her. Fog
came from the east in spring and from nowhere at all in autumn. Storms announced themselves
with a low hum in the iron railings, a sound she learned to hear in her sleep.

She rose each evening an hour before sunset. First she climbed the hundred and twelve steps,
counting them aloud out of habit rather than doubt. Then she polished the great lens, a
beehive of glass prisms taller than a man, until not one thumbprint remained to scatter the
beam. She trimmed the wick, checked the oil, wound the clockwork that turned the lens, and
wrote the time in the ledger: lit at nineteen minutes past six, wind north-west, sea moderate.

Ships passed in the dark and never knew her name. That was the nature of the work. A light
that is noticed has usually failed somebody already; a light that does its job is only a
point of certainty in a black and moving world, a promise that the rocks are here and not
there. Ilse found a quiet pride in being invisible. She told her sister, in one of the long
letters the supply boat carried twice a month, that she felt like the full stop at the end of
a sentence: small, easily overlooked, and the only thing that kept the words from running
into the reef.

In the winter of her eleventh year the supply boat did not come. The first week she was not
worried; the sea had been rough, and the captain was a careful man. The second week she began
to count the oil. There was enough for thirty nights if she burned the lamp at full strength,
and perhaps forty-five if she trimmed the flame and accepted a dimmer beam. She sat at the
kitchen table with the ledger open and did the arithmetic three times, and each time the
answer was the same, and each time she disliked it a little more.

A dimmer light would still be seen by a ship that was looking for it. A ship in trouble,
however, is rarely looking for anything; it is busy with its own emergency, and the light has
to reach out and take hold of the helmsman's eye. So she kept the flame at full strength and
began, instead, to save everything else. She cooked once a day. She read by the glow that
spilled down the stairwell from the lantern room. She stopped heating the bedroom and slept
in the kitchen beside the stove, wrapped in two coats and a blanket that smelled of tar.

On the twenty-third night the wind turned south and rose to a gale. Around midnight she saw,
far out, a single green light lifting and falling where no green light should be. It was the
starboard lamp of a fishing boat, too close to the shoal and moving the wrong way. Ilse could
not shout across two miles of storm, and she had no radio; the old one had died in the
summer and its replacement was somewhere on the missing supply boat. What she had was the
lighthouse, and a rule written on the first page of the ledger by a keeper long dead: the
light speaks only one sentence, so make sure it is the right one.

She did something no rule allowed. She stopped the clockwork, and the great beam, which had
swept the horizon every twelve seconds for ninety years, stood still. She aimed it by hand,
leaning her whole weight against the brass frame, until the light lay straight across the
shoal like a white road. Then she waited. For a long time the green light kept coming. Then
it wavered, swung, and crept away to the north along the edge of the beam, keeping the
brightness on its left hand as a blind man keeps his hand on a wall.

In the morning the storm was gone and the sea was flat and grey and innocent. The fishing
boat was anchored in the lee of the island, and by noon its crew had rowed ashore with a sack
of potatoes, a tin of coffee, and forty litres of lamp oil that they swore they did not need.
The skipper said that in twenty years he had never seen a lighthouse stop turning, and that
when it did he had understood at once that it was talking to him.

Ilse wrote it all down in the ledger that evening, in the same small handwriting she used for
wind and tide: lit at twenty-two minutes past five, wind south, falling; beam held fixed from
midnight until two for a vessel standing into danger; vessel safe. Then, because there was
room at the bottom of the page, she added one more line for whoever would keep the light after
her. A rule is a promise about the usual night. Keep it, and know which night is not usual.

The supply boat arrived four days later with a new radio, a crate of oranges, and a letter
from her sister asking whether anything interesting had happened lately.
"""


#: Archives of computed data other than text, for the block options of mixed blocks: file
#: name -> (data, block size, frame size, configuration: None for the encoder's choice,
#: the encoder's segment rule for binary blocks: their shortest segment and fewest
#: segments, and whether it codes binary and repetitive blocks without the network). The
#: first two were made when the encoder chose preset 2 for them, the third preset 3, and
#: keep them; all three when it cut binary blocks into segments of at least 4 KiB
#: (``records.BINARY_SEGMENT_BYTES``) with no floor on their number
#: (``records.MIN_BINARY_SEGMENTS``), and keep that; all but the last two before blocks
#: could go without the network (``records.FLAT_BLOCKS``). The rule's fourth item is the
#: level's text preset, from which the encoder chose the binary one: 6 (the binary
#: presets without extra mixers) for all made before preset 7; a fifth, where given, says
#: the level took binary presets ``slotted`` (``binary_slots``; none did before 31).
Rule = tuple[int, int, bool, Config] | tuple[int, int, bool, Config, bool]
DATA_GOLDENS: dict[str, tuple[str, int, int, Config | None, Rule]] = {
    # A table of fixed-length records (``records_data``) in three blocks of 12,000 bytes:
    # the binary preset (config preset 2), a record length in each block's options, the
    # record contexts across segments and blocks.
    "golden-records.nnc": ("records", 12_000, 16 << 20, BINARY, (4096, 1, False, DEFAULT_2)),
    # Code-like bytes (``code_data``): the x86 branch transform (block option 2).
    "golden-x86.nnc": ("code", 16_000, 16 << 20, BINARY, (4096, 1, False, DEFAULT_2)),
    # A 1-bit bitmap (``bitmap_data``) in two blocks: preset 3, the pixel contexts.
    "golden-bitmap.nnc": ("bitmap", 6_000, 16 << 20, BINARY_2, (4096, 1, False, DEFAULT_2)),
    # Code-like bytes again, in blocks of 40,000: preset 4, the machine-word contexts, and
    # segments of at least 16 KiB but at least 8 of them.
    "golden-words.nnc": ("long code", 40_000, 16 << 20, None, (16384, 8, False, DEFAULT_2)),
    # A 1-bit picture of filled shapes (``picture_data``) in two blocks: preset 5, the
    # bit-level pixel contexts, which the encoder chooses for it.
    "golden-bitpixels.nnc": ("picture", 12_000, 16 << 20, None, (16384, 8, False, DEFAULT_2)),
    # Without the network (block option 4): longer code in two blocks of one segment each,
    # then a package log (``log_data``, repetitive text: the text preset, one segment),
    # and the picture again, whose blocks keep their segments.
    "golden-flat.nnc": ("long code", 40_000, 16 << 20, None, (32768, 8, True, DEFAULT_2)),
    "golden-flat-log.nnc": ("log", 12_000, 16 << 20, None, (32768, 8, True, DEFAULT_2)),
    "golden-flat-picture.nnc": ("picture", 12_000, 16 << 20, None, (16384, 8, True, DEFAULT_2)),
    # The binary presets with the extra mixers that the text preset 7 gives way to: the
    # longer code (preset 8, the encoder's choice for it until preset 13, and named since)
    # and the picture (preset 10, the encoder's choice for it until preset 12, and named
    # since).
    "golden-mixers-code.nnc": (
        "long code",
        40_000,
        16 << 20,
        BINARY_3_MIXERS,
        (32768, 8, True, TEXT_MIXERS),
    ),
    "golden-mixers-picture.nnc": (
        "picture",
        12_000,
        16 << 20,
        BINARY_4_MIXERS,
        (16384, 8, True, TEXT_MIXERS),
    ),
    # The picture with the preset the encoder chooses for it now: 12, the wide bit-level
    # pixel windows and the mixers chosen by the pixels around.
    "golden-bitmap-mixers.nnc": ("picture", 12_000, 16 << 20, None, (16384, 8, True, TEXT_MIXERS)),
    # The longer code with the preset the encoder chooses for it now: 13, the sparse and
    # match kinds.
    "golden-binary-sparse.nnc": (
        "long code",
        40_000,
        16 << 20,
        None,
        (32768, 8, True, TEXT_MIXERS),
    ),
    # An 8-bit grayscale picture (``photo_data``) in two blocks: preset 14, the 8-bit image
    # kinds.
    "golden-image.nnc": ("photo", 12_000, 16 << 20, None, (16384, 8, True, TEXT_MIXERS)),
    # A 24-bit and a 32-bit picture of coloured boxes (``colour_data``) in two blocks each:
    # presets 16 and 17, the colour kinds, which the encoder's trial chooses for them, and
    # each block's row found behind its pixel.
    "golden-colour24.nnc": ("colour", 40_000, 16 << 20, None, (16384, 8, True, TEXT_MIXERS)),
    "golden-colour32.nnc": ("colour 32", 50_000, 16 << 20, None, (16384, 8, True, TEXT_MIXERS)),
    # The longer code and the picture with the presets the encoder chooses for them from
    # --max's text preset 19: 20 and 22, presets 13 and 12 with bit histories (the picture
    # in its segments, so with several segments a step).
    "golden-histories-code.nnc": (
        "long code",
        40_000,
        16 << 20,
        None,
        (32768, 8, True, MAX_HISTORIES),
    ),
    "golden-histories-picture.nnc": (
        "picture",
        12_000,
        16 << 20,
        None,
        (16384, 8, True, MAX_HISTORIES),
    ),
    # The same from --max's text preset since 25: 26 and 28, presets 13 and 12 with bit
    # histories, slot groups, the warm-up and a match context of 2 bytes.
    "golden-refined-code.nnc": ("long code", 40_000, 16 << 20, None, (32768, 8, True, MAX_REFINED)),
    "golden-refined-picture.nnc": (
        "picture",
        12_000,
        16 << 20,
        None,
        (16384, 8, True, MAX_REFINED),
    ),
    # The same from the default level's text preset 7 since its binary streams take slot
    # groups, the warm-up and a match context of 2 bytes: 31 and 33, presets 13 and 12 so
    # ``slotted``.
    "golden-slotted-code.nnc": (
        "long code",
        40_000,
        16 << 20,
        None,
        (32768, 8, True, TEXT_MIXERS, True),
    ),
    "golden-slotted-picture.nnc": (
        "picture",
        12_000,
        16 << 20,
        None,
        (16384, 8, True, TEXT_MIXERS, True),
    ),
    # The same from the default level's text preset since 36, with fine probabilities: 37
    # and 39, presets 31 and 33 with them.
    "golden-fine-code.nnc": (
        "long code",
        40_000,
        16 << 20,
        None,
        (32768, 8, True, FINE_TEXT, True),
    ),
    "golden-fine-picture.nnc": (
        "picture",
        12_000,
        16 << 20,
        None,
        (16384, 8, True, FINE_TEXT, True),
    ),
}


def binary_slots(rule: Rule) -> bool:
    """Whether the level that made a data golden took binary presets ``slotted``
    (``levels.Level.binary_slots``): the rule's fifth item, False where it has none."""
    return len(rule) > 4 and bool(rule[4])


RECORD_NAMES = [b"anchor", b"bolt", b"cable", b"drill", b"eyelet", b"flange", b"gasket", b"hinge"]


def records_data(rows: int = 1800) -> bytes:
    """A parts table of 20-byte records, computed (no random generator, whose streams may
    change between library versions): an id, a name padded to 8 bytes, a quantity, a price
    in cents, a day number and a flag."""
    out = bytearray()
    for i in range(rows):
        name = RECORD_NAMES[(i * 7 + i // 3) % len(RECORD_NAMES)].ljust(8, b"\0")
        qty = (i * i * 31) % 997
        cents = 100 + (i * 7919) % 50_000 // 25 * 25
        out += struct.pack("<I8sHIBx", 5000 + i, name, qty, cents, (i // 11) % 5)
    return bytes(out)


def numbers(seed: int) -> Callable[[int], int]:
    """A generator of our own (no library's, whose streams may change between versions):
    ``rand(k)`` gives the next number below ``k`` of a 64-bit linear congruential sequence
    started at ``seed``."""
    state = seed

    def rand(k: int) -> int:
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return (state >> 33) % k

    return rand


def code_data(n: int = 24_000) -> bytes:
    """Bytes shaped like x86-64 code, computed: runs of instruction bytes between calls and
    jumps (E8/E9 and an offset relative to the next instruction) to 24 functions."""
    rand = numbers(12345)
    functions = sorted(rand(n) for _ in range(24))
    bodies = [bytes(rand(256) for _ in range(2 + rand(10))) for _ in range(20)]
    out = bytearray()
    while len(out) < n:
        kind = rand(100)
        if kind < 10:
            out += b"\x55\x48\x89\xe5\x48\x83\xec\x10"
        elif kind < 45:
            target = functions[rand(len(functions))]
            out += bytes([0xE8 if rand(5) else 0xE9]) + struct.pack("<i", target - len(out) - 5)
        else:
            out += bodies[rand(len(bodies))]
    return bytes(out[:n])


def bitmap_data(width: int = 384, rows: int = 250) -> bytes:
    """A 1-bit bitmap, rows of ``width / 8`` bytes with the leftmost pixel in the top bit:
    three rings, a diagonal and lines of dashes like text, computed in integers."""
    stride = width // 8
    out = bytearray(stride * rows)
    rings = ((90, 70, 50), (270, 150, 80), (200, 200, 30))
    for y in range(rows):
        for x in range(width):
            ring = any(abs((x - cx) ** 2 + (y - cy) ** 2 - r * r) < 2 * r for cx, cy, r in rings)
            diagonal = abs(x - 2 * y + 40) < 2
            text = 20 <= y % 40 < 27 and x % 50 < 44 and (x * 7 + y // 40 * 13) % 11 > 3
            if ring or diagonal or text:
                out[y * stride + x // 8] |= 0x80 >> (x % 8)
    return bytes(out)


def picture_data(width: int = 512, rows: int = 300) -> bytes:
    """A 1-bit picture as a scanner or a plotter makes them, with runs of pixels: filled
    discs, a band, and blocks of strokes like lines of text, each inverting what is under
    it, computed in integers."""
    stride = width // 8
    out = bytearray(stride * rows)
    discs = ((120, 90, 60), (350, 180, 90), (250, 60, 25))
    for y in range(rows):
        for x in range(width):
            disc = any((x - cx) ** 2 + (y - cy) ** 2 < r * r for cx, cy, r in discs)
            band = abs(x - 2 * y + 100) < 6
            text = 10 <= y % 32 < 22 and x % 48 < 40 and (x // 4 * 7 + y // 32 * 5) % 9 > 2
            if disc != (band or text):
                out[y * stride + x // 8] |= 0x80 >> (x % 8)
    return bytes(out)


def photo_data(width: int = 96, rows: int = 250) -> bytes:
    """An 8-bit grayscale picture of smooth shading with a little grain, as a photograph
    has, computed in integers: rows of 96 bytes, each pixel close to its neighbours."""
    out = bytearray()
    for y in range(rows):
        for x in range(width):
            shade = 40 + x + y // 2 + ((x - 48) * (x - 48) + (y - 125) * (y - 125)) // 160
            out.append(min(shade + (x * 7 + y * 13 + x * y) % 5, 255))
    return bytes(out)


def colour_data(pixel: int = 3, width: int = 160, rows: int = 150) -> bytes:
    """A 24-bit (``pixel`` 3) or 32-bit (4) picture as a screenshot has it, computed:
    boxes of colours overlapping on a light background, a few pixels a shade off, in rows
    padded to 4 bytes as a BMP file has them."""
    boxes = [
        ((i * 37) % width, (i * 23) % rows, 12 + i * 13 % 50, 8 + i * 7 % 40) for i in range(24)
    ]
    out = bytearray()
    for y in range(rows):
        for x in range(width):
            colour = [200, 210, 220, 255][:pixel]
            for i, (bx, by, bw, bh) in enumerate(boxes):
                if bx <= x < bx + bw and by <= y < by + bh:
                    colour = [i * 71 % 256, (i * 113 + 40) % 256, (i * 29 + 90) % 256, 255][:pixel]
            shade = (x + y) % 3 if x * y % 7 == 0 else 0
            out += bytes(min(v + shade, 255) for v in colour)
        out += bytes(-(width * pixel) % 4)
    return bytes(out)


def log_data(lines: int = 500) -> bytes:
    """A package manager's log, computed: timestamps counting up, packages going through
    their states, repeated nearby as such logs do."""
    packages = [b"zlib1g", b"libssl3", b"openssh-server", b"tzdata", b"curl", b"vim-tiny"]
    states = [b"half-installed", b"unpacked", b"half-configured", b"installed"]
    out = bytearray()
    for i in range(lines):
        package = packages[(i // 4 * 5 + i // 24) % len(packages)]
        parts = [b"%d" % ((i // 4 * k * 37) % 300) for k in range(1, 2 + (i // 4) % 4)]
        version = b".".join(parts) + b"-%d" % ((i // 4) % 3 + 1)
        day, hour = 1 + i // 200, 8 + i // 60 % 10
        stamp = b"2026-11-%02d %02d:%02d:%02d" % (day, hour, i % 60, i * 7 % 60)
        out += stamp + b" status " + states[i % 4] + b" " + package + b":amd64 " + version + b"\n"
    return bytes(out)


def story_data(n: int = 1026 << 10) -> bytes:
    """``n`` bytes of text made of the golden text's words, computed: each word one that
    follows the word before somewhere in the story, picked by a generator of our own (no
    library's, whose streams may change), in lines of up to 88 columns and paragraphs.
    Not repetitive enough for the encoder's redundant-text rule (zlib at level 1 keeps
    0.24 of it), so it is coded as ordinary text is."""
    words = GOLDEN_TEXT.split()
    follow: dict[str, list[str]] = {}
    for a, b in zip(words[:-1], words[1:], strict=True):
        follow.setdefault(a, []).append(b)
    rand = numbers(2026)
    out = bytearray()
    column = 0
    word = words[0]
    while len(out) < n:
        choices = follow.get(word) or words
        word = choices[rand(len(choices))]
        if column + len(word) > 88:
            out += b"\n\n" if rand(8) == 0 else b"\n"
            column = 0
        elif column:
            out += b" "
            column += 1
        out += word.encode("utf-8")
        column += len(word)
    return bytes(out[:n])


#: The block of more than 1,024 segments: ``story_data`` in one block, cut into the most
#: segments the format allows it (``format.most_segments``: one per KiB, 1,026), with the
#: level's text preset written out with small tables (2^16 slots a context, 2^18 for the
#: match model), so that decoding it takes seconds and little memory; the segment count
#: and the two groups of 513 are what it pins, which no other golden reaches.
MANY_SEGMENTS = "golden-many-segments.nnc"
MANY_SEGMENTS_CONFIG = dataclasses.replace(TEXT_MIXERS, table_bits=16, match_bits=18)


def make_many_segments_archive(model_path: Path = MODEL_PATH) -> bytes:
    from nncompress import format as fmt
    from nncompress import levels
    from nncompress.engine import compress_stream
    from nncompress.model import IntModel

    data = story_data()
    model = IntModel.load(model_path)
    out = io.BytesIO()
    with levels.changed(LEVEL, segments=fmt.most_segments):
        compress_stream(io.BytesIO(data), out, model, len(data), LEVEL, config=MANY_SEGMENTS_CONFIG)
    return out.getvalue()


LONG_TEXT_GOLDEN = "golden-long-text.nnc"
#: The default level's configuration for long texts when the golden was made (written out
#: in the header: slot groups, warm-up and a match context of 2 without bit histories, and
#: a final mixer shift of 17).
LONG_TEXT_CONFIG = LONG_TEXT


def make_long_text_archive(model_path: Path = MODEL_PATH) -> bytes:
    """The text as the default level codes a long text (``levels.Level.long_text``, its
    threshold brought down to the text's length): ``LONG_TEXT_CONFIG`` written out, each
    block of 9000 bytes without the network in one segment."""
    from nncompress import levels
    from nncompress.engine import compress_stream
    from nncompress.model import IntModel

    data = golden_data()
    model = IntModel.load(model_path)
    out = io.BytesIO()
    with levels.changed(LEVEL, long_text=len(data), long_config=LONG_TEXT_CONFIG):
        compress_stream(io.BytesIO(data), out, model, 9000, LEVEL)
    return out.getvalue()


REPEAT = "golden-repeat.nnc"
REPEAT_BLOCK = 4096


def runs_data(b: int = REPEAT_BLOCK) -> bytes:
    """Blocks of ``b`` bytes: the golden text's start; zeros; a fill pattern of 4 bytes; a
    ruler line of 31 bytes said over and over (which the mixed method codes in less than
    its period); 37 computed bytes said over and over (a period that does not divide the
    block, and that nothing codes in less); the text's start again, which the match model
    finds past the runs (the history holds every block, whatever its method); and the
    text's next 900 bytes."""
    from nncompress import format as fmt

    text = golden_data()
    rand = numbers(37)
    noise = bytes(rand(256) for _ in range(37))
    periods = [b"\x00", b"\xde\xad\xbe\xef", b"-" * 30 + b"\n", noise]
    runs = b"".join(fmt.repeated(period, b) for period in periods)
    return text[:b] + runs + text[:b] + text[b : b + 900]


def make_repeat_archive(model_path: Path = MODEL_PATH) -> bytes:
    from nncompress.engine import compress_stream
    from nncompress.model import IntModel

    out = io.BytesIO()
    model = IntModel.load(model_path)
    compress_stream(io.BytesIO(runs_data()), out, model, REPEAT_BLOCK, LEVEL, config=FINE_TEXT)
    return out.getvalue()


COPY = "golden-copy.nnc"
COPY_BLOCK = 1 << 16


def copies_data(b: int = COPY_BLOCK) -> bytes:
    """Blocks of ``b`` bytes: two of computed x86 code (coded after the x86 transform, so
    the match model's window holds other bytes than the output); 1,000 bytes of the
    golden text; the code again from its start, the block that lies wholly inside it a
    copy block of the output (``format.STORED_COPY``); the copy's last 1,000 bytes and
    900 more of the text."""
    code, text = code_data(2 * b), golden_data()
    return code + text[:1000] + code + text[1000:1900]


def make_copy_archive(model_path: Path = MODEL_PATH) -> bytes:
    from nncompress.engine import compress_stream
    from nncompress.model import IntModel

    out = io.BytesIO()
    model = IntModel.load(model_path)
    compress_stream(io.BytesIO(copies_data()), out, model, COPY_BLOCK, LEVEL)
    return out.getvalue()


def long_code_data() -> bytes:
    """``code_data`` long enough for two blocks of 40,000 bytes."""
    return code_data(70_000)


DATA_SOURCES = {
    "records": records_data,
    "code": code_data,
    "bitmap": bitmap_data,
    "long code": long_code_data,
    "log": log_data,
    "picture": picture_data,
    "photo": photo_data,
    "colour": colour_data,
    "colour 32": functools.partial(colour_data, 4),
}


def golden_data() -> bytes:
    """What golden.nnc holds: the text twice."""
    return 2 * GOLDEN_TEXT.encode("utf-8")


def make_archive(name: str, model_path: Path = MODEL_PATH) -> bytes:
    from nncompress.engine import compress_stream
    from nncompress.model import IntModel

    block, frame, config = GOLDENS[name]
    model = IntModel.load(model_path)
    out = io.BytesIO()
    compress_stream(
        io.BytesIO(golden_data()), out, model, block, LEVEL, frame_size=frame, config=config
    )
    return out.getvalue()


def make_primed_archive(name: str, model_path: Path = MODEL_PATH) -> bytes:
    import tempfile

    from nncompress.engine import compress_stream
    from nncompress.model import IntModel

    block, frame, version = PRIMED_GOLDENS[name]
    with tempfile.TemporaryDirectory() as tmp:
        model = IntModel.load(primed_model(Path(tmp), model_path, version))
    out = io.BytesIO()
    compress_stream(
        io.BytesIO(golden_data()), out, model, block, LEVEL, frame_size=frame, config=DEFAULT
    )
    return out.getvalue()


def make_data_archive(name: str, model_path: Path = MODEL_PATH) -> bytes:
    from nncompress import levels, records
    from nncompress.engine import compress_stream
    from nncompress.model import IntModel

    source, block, frame, config, rule = DATA_GOLDENS[name]
    out = io.BytesIO()
    model = IntModel.load(model_path)
    data = DATA_SOURCES[source]()
    # The encoder's segment rule of the day the archive was made (an encoder's choice,
    # recorded in each block, so any rule decodes).
    current = records.BINARY_SEGMENT_BYTES, records.MIN_BINARY_SEGMENTS, records.FLAT_BLOCKS
    records.BINARY_SEGMENT_BYTES, records.MIN_BINARY_SEGMENTS, records.FLAT_BLOCKS = rule[:3]
    # Every one was made before the encoder also tried images in one segment.
    image_trial, records.IMAGE_TRIAL = records.IMAGE_TRIAL, False
    try:
        with levels.changed(LEVEL, config=rule[3], binary_slots=binary_slots(rule)):
            compress_stream(
                io.BytesIO(data), out, model, block, LEVEL, frame_size=frame, config=config
            )
    finally:
        records.BINARY_SEGMENT_BYTES, records.MIN_BINARY_SEGMENTS, records.FLAT_BLOCKS = current
        records.IMAGE_TRIAL = image_trial
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=MODEL_PATH, help="model file to use")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if an archive would differ"
    )
    args = parser.parse_args()
    if not args.model.is_file():
        print(f"make_golden: {args.model} not found", file=sys.stderr)
        return 1
    from nncompress.engine import list_stream
    from nncompress.format import COPY_NAME, MODEL_METHODS, REPEAT_NAME, method_name

    text = golden_data()
    status = 0
    if not args.check and not TEXT_PATH.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        TEXT_PATH.write_bytes(text)
    if TEXT_PATH.read_bytes() != text:
        print("make_golden: golden.txt differs from the script's text", file=sys.stderr)
        return 1
    specials = [MANY_SEGMENTS, REPEAT, COPY, LONG_TEXT_GOLDEN]
    for name in [*GOLDENS, *PRIMED_GOLDENS, *DATA_GOLDENS, *specials]:
        path = DATA / name
        if name in GOLDENS:
            blob = make_archive(name, args.model)
        elif name in PRIMED_GOLDENS:
            blob = make_primed_archive(name, args.model)
        elif name == MANY_SEGMENTS:
            blob = make_many_segments_archive(args.model)
        elif name == REPEAT:
            blob = make_repeat_archive(args.model)
        elif name == COPY:
            blob = make_copy_archive(args.model)
        elif name == LONG_TEXT_GOLDEN:
            blob = make_long_text_archive(args.model)
        else:
            blob = make_data_archive(name, args.model)
        info = list_stream(io.BytesIO(blob))
        methods = [b.method for b in info.blocks]
        names = [method_name(b.method, b.segments) for b in info.blocks]
        # Repeat and copy blocks (which no library codes) only where the golden is theirs.
        allowed = [
            m in MODEL_METHODS
            or (name == REPEAT and n == REPEAT_NAME)
            or (name == COPY and n == COPY_NAME)
            for m, n in zip(methods, names, strict=True)
        ]
        if not all(allowed):
            print(f"make_golden: {name}: expected network-coded blocks, got {names}")
            return 1
        if path.exists():
            same = path.read_bytes() == blob
            print(f"{name}: {'up to date' if same else 'WOULD CHANGE (released: keep it)'}")
            status |= not same
            continue
        if args.check:
            print(f"{name}: missing")
            status = 1
            continue
        path.write_bytes(blob)
        raw = info.raw_len
        print(
            f"wrote {path.relative_to(REPO)} ({len(blob):,} bytes, {len(info.frames)} frames, "
            f"{len(methods)} blocks, {8 * len(blob) / raw:.3f} bpb) with {args.model}"
        )
    return status


if __name__ == "__main__":
    sys.exit(main())
