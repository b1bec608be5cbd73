"""Finding fixed-length records in a block, for the record contexts (``contexts.RECORD``).

Tables, spreadsheets, bitmaps and numeric arrays repeat a layout every R bytes: the byte R
back (the one "above") predicts the next far better than the bytes just before it. The
encoder looks for such an R in each block and writes it in the block's header, so the
decoder never has to guess; how R is found is the encoder's business and may improve
without touching the format.

The search: distances between successive occurrences of each byte value peak at R (a
column that repeats a value), so the most frequent distances are the candidates; each is
then scored by how often a byte equals the one R back, against the same score at distances
unrelated to R (about R/2 and 3R/2). A record length stands out; text, whose coincidences
are spread over every distance, has none.
"""

from __future__ import annotations

import functools
import zlib

import numpy as np

from . import filters
from . import format as fmt
from .config import (
    BINARY_2,
    BINARY_3,
    BINARY_4,
    BINARY_SPARSE_MIXERS,
    BITMAP,
    COLOUR_24,
    COLOUR_32,
    DEFAULT,
    IMAGE_MIXERS,
    TEXT_PRESETS,
    Config,
)

#: Longest record length the encoder looks for (the format takes up to
#: ``format.MAX_RECORD``), and how much of a block it looks at.
SEARCH_MAX = 4096
SAMPLE = 1 << 18
#: A block shorter than this many records has too few rows for the contexts to learn, and
#: one shorter than ``MIN_BYTES`` too little to pay for three more contexts.
MIN_ROWS = 16
MIN_BYTES = 1024
#: Candidates scored, and how far a length must stand out: the share of bytes equal to the
#: one R back must exceed that at unrelated distances (``_unrelated``) by ``MIN_GAIN`` and
#: be ``STAND_OUT`` times it (text: gains below 0.02; a dithered bitmap 0.07, tables and
#: images 0.1 to 0.8). A multiple of a record length scores about as well: it wins only
#: with a share ``MULTIPLE_MARGIN`` above the shorter one's; another longer length, with
#: ``LONGER_BETTER`` times the gain.
CANDIDATES = 12
MIN_GAIN = 0.05
STAND_OUT = 1.2
LONGER_BETTER = 1.25
MULTIPLE_MARGIN = 0.1
#: A length one longer than the best so far that gains at least ``NEIGHBOUR_SHARE`` of
#: its gain (and not enough more to win outright) may be an image's row beside the pixel
#: above-right: on a vertical edge the byte where a row's value changes equals the one
#: R - 1 back as often as the one R back, so the two shares tie. The longer wins where
#: it separates equal fresh bytes ``NEIGHBOUR_COUNTS`` times as often (screenshots 3,024
#: pixels wide: 451 times against 31, where the tie took 3,023; in a smooth photograph
#: the distances around its row are all common, within a factor of 1.5 of each other).
NEIGHBOUR_SHARE = 0.9
NEIGHBOUR_COUNTS = 4


def _share(a: np.ndarray, fresh: np.ndarray, r: int) -> float:
    """The share of the ``fresh`` bytes of ``a`` (those that differ from the byte before:
    runs would make every distance look good) equal to the byte ``r`` before them."""
    if r <= 0 or r >= len(a):
        return 0.0
    f = fresh[r:]
    return float(np.count_nonzero((a[r:] == a[:-r]) & f)) / max(1, int(np.count_nonzero(f)))


def _unrelated(r: int) -> tuple[int, ...]:
    """Distances to hold a candidate length against: neither near it nor near a multiple
    (in an image the bytes just beside the one above, and the rows above it, are alike
    too), so that only a layout that repeats every ``r`` bytes stands out."""
    return (r + 1,) if r < 6 else (r // 2 + 1, r + r // 2 + 1)


def detect(data: bytes, rows: bool = False) -> int:
    """The record length of ``data``, or 0 if it shows none (deterministic: the same bytes
    give the same answer on every machine): first by bytes equal to the one R back, then,
    if that finds none, by bytes close to it (``smooth_record``). ``rows``: in a stream of
    images (``ROW_CONFIGS``), a record of 3 or 4 bytes is taken for a pixel, and
    the image's row, where ``pixel_row`` finds one, is the record."""
    record, row = _record_and_row(data, rows)
    return row or record


#: A block is searched chunk by chunk too (``alternative``) where it is at least
#: ``MIN_CHUNKS`` chunks of ``CHUNK`` bytes long: ``detect`` reads only its start.
CHUNK = 1 << 17
MIN_CHUNKS = 4


def alternative(data: bytes, record: int, rows: bool = False) -> int | None:
    """The record length that more than half of ``data``'s chunks of ``CHUNK`` bytes show
    (``detect`` on each), where that is not ``record`` (``detect``'s, from the block's
    first ``SAMPLE`` bytes) and shorter than ``IMAGE_RECORD``; None where there is none,
    or the block is shorter than ``MIN_CHUNKS`` chunks.

    A block that holds several kinds of data (a database's text records, then its hash
    buckets of 24-byte entries; the end of one file of a tarball and the start of the
    next) may show one record length at its start and another in most of it. Neither is
    surely the better (a length the start alone shows still helps some blocks more), so
    the encoder codes such a block both ways and keeps the smaller
    (``engine.compress_block``)."""
    if len(data) < MIN_CHUNKS * CHUNK:
        return None
    found = [detect(data[i : i + CHUNK], rows) for i in range(0, len(data) - CHUNK // 2, CHUNK)]
    most, count = max(((r, found.count(r)) for r in found), key=lambda rc: rc[1])
    if 2 * count <= len(found) or most == record or most >= IMAGE_RECORD:
        return None
    return most


def row_candidate(data: bytes) -> tuple[int, int]:
    """(pixel, row) where ``data`` has records of 3 or 4 bytes and ``pixel_row`` finds a
    row, else (record length, 0): a first block that may be a 24- or 32-bit image, for
    which the encoder tries a colour image preset (``engine._image_config``)."""
    return _record_and_row(data, True)


def _record_and_row(data: bytes, rows: bool) -> tuple[int, int]:
    """``detect``'s record length, and where ``rows`` and it is a pixel's 3 or 4 bytes,
    the row behind it (0: none, or not looked for)."""
    if len(data) < MIN_BYTES:
        return 0, 0
    return _search(bytes(data[:SAMPLE]), len(data), rows)


@functools.lru_cache(maxsize=4)
def _search(sample: bytes, n: int, rows: bool) -> tuple[int, int]:
    """``_record_and_row`` of a block of ``n`` bytes that starts with ``sample``, all it
    reads. Kept for the last few blocks: an image's first block is searched by the
    stream's preset choice, its trial and its coding (the row search 0.2-0.4 s each on
    this machine), and a copy of the sample is all the cache holds, not the block."""
    a = np.frombuffer(sample, dtype=np.uint8)
    longest = min(SEARCH_MAX, n // MIN_ROWS)
    fresh, counts = _distances(a, longest)
    record = _equal_record(a, fresh, counts) or smooth_record(a, longest)
    record = record or _outstanding_record(a, fresh, counts)
    if not (rows and record in PIXEL_BYTES):
        return record, 0
    return record, pixel_row(a, record, min(ROW_LONGEST, n // MIN_ROWS))


def _texty(a: np.ndarray) -> bool:
    """Whether at least ``TEXT_SHARE`` of the bytes of ``a`` are printable ASCII, tab,
    line feed or carriage return: text, which ``smooth_record`` need not search."""
    printable = np.count_nonzero((a >= 32) & (a <= 126))
    space = np.count_nonzero((a == 9) | (a == 10) | (a == 13))
    return printable + space >= TEXT_SHARE * len(a)


def _distances(a: np.ndarray, longest: int) -> tuple[np.ndarray, np.ndarray]:
    """The bytes of ``a`` that differ from the one before (``fresh``), and how often each
    distance up to ``longest`` separates such a byte from the last one equal to it."""
    fresh = np.ones(len(a), dtype=bool)
    fresh[1:] = a[1:] != a[:-1]
    where = np.flatnonzero(fresh)
    order = where[np.argsort(a[where], kind="stable")]
    same = a[order[1:]] == a[order[:-1]]
    dist = (order[1:] - order[:-1])[same]
    counts = np.bincount(dist[dist <= longest], minlength=longest + 1)
    counts[:2] = 0
    return fresh, counts


def _equal_record(a: np.ndarray, fresh: np.ndarray, counts: np.ndarray) -> int:
    """The record length by bytes equal to the one R back (tables, bitmaps, code-like
    layouts), among the most frequent distances between equal bytes (``_distances``),
    or 0."""
    top = np.argsort(-counts, kind="stable")[:CANDIDATES]
    return _best_record(a, fresh, [int(x) for x in top if counts[x] > 0], counts)


def _outstanding_record(a: np.ndarray, fresh: np.ndarray, counts: np.ndarray) -> int:
    """The record length by bytes equal to the one R back, among the distances whose
    count stands out most from their neighbours' counts, or 0: where the short distances
    within a record outnumber it (a bitmap of large text, whose glyphs' bytes repeat
    along a row; an executable's tables; a message catalogue's offsets), and neither the
    most frequent distances nor bytes close to the one R back (``smooth_record``, which
    finds a photograph's rows) showed one. Text is not searched (``_texty``), so a text
    stream keeps its text preset as before."""
    if _texty(a):
        return 0
    spikes = counts.copy()
    spikes[1:-1] -= np.maximum(counts[:-2], counts[2:])
    peaks = np.argsort(-spikes, kind="stable")[:CANDIDATES]
    return _best_record(a, fresh, [int(x) for x in peaks if spikes[x] > 0], counts)


def _best_record(
    a: np.ndarray, fresh: np.ndarray, candidates: list[int], counts: np.ndarray
) -> int:
    """The record length among ``candidates`` that stands out most (``_equal_record``'s
    rules), or 0. ``counts``: how often each distance separates equal fresh bytes
    (``_distances``), which decides between neighbours (``NEIGHBOUR_SHARE``)."""
    best, best_share, best_gain = 0, 0.0, 0.0
    for r in sorted(candidates):
        share = _share(a, fresh, r)
        beside = max(_share(a, fresh, d) for d in _unrelated(r))
        gain = share - beside
        if gain < MIN_GAIN or share < STAND_OUT * beside:
            continue
        if not best:
            better = True
        elif r % best == 0:  # (its unrelated distances fall beside the shorter record)
            better = share > best_share + MULTIPLE_MARGIN
        elif r == best + 1 and NEIGHBOUR_SHARE * best_gain <= gain <= LONGER_BETTER * best_gain:
            better = counts[r] > NEIGHBOUR_COUNTS * counts[best]  # (a tie: the row's count)
        else:
            better = gain > LONGER_BETTER * best_gain
        if better:
            best, best_share, best_gain = r, share, gain
    return best


#: Smooth data: in a photograph or a sampled signal the byte a row (or a sample) back is
#: seldom equal to the one being coded but often close to it, within ``NEAR``. Of the
#: bytes at ``NEAR_POSITIONS`` positions spread over the sample, the share close to the
#: one R back, less that at R's unrelated distances (``_unrelated``), is R's gain; the R
#: of the largest gain must gain ``NEAR_GAIN`` and its share be ``NEAR_STAND_OUT`` times
#: the unrelated one. In scratch runs on this machine's files: an 8-bit grayscale
#: photograph (a 614-byte row) 0.48 against 0.05, which byte equality missed (0.10
#: against 0.05); text at most 0.32 against 0.22 (a man page's 79-character lines), code
#: and logs less. Blocks of which ``TEXT_SHARE`` of the bytes are printable ASCII or
#: white space are not searched.
NEAR = 4
NEAR_POSITIONS = 4096
NEAR_GAIN = 0.2
NEAR_STAND_OUT = 3.0
NEAR_BEST_OF = 5  # a row a multiple of which gains the most: within a fifth of it
TEXT_SHARE = 0.9


def smooth_record(a: np.ndarray, longest: int) -> int:
    """The record length of smooth data ``a`` (bytes close to the one R back), or 0. Text
    is not searched (``_texty``): it costs some 50 ms a block, as much as coding 3-5 KB."""
    widest = longest + longest // 2 + 1  # the farthest unrelated distance
    if longest < 2 or len(a) <= widest + NEAR_POSITIONS or _texty(a):
        return 0
    alike = _alike(a, widest)
    gains = [0, 0]
    for r in range(2, longest + 1):
        gains.append(int(alike[r]) - max(int(alike[u]) for u in _unrelated(r)))
    best = int(np.argmax(gains))
    # A multiple of the row (give or take a pixel) can gain about as much as the row.
    for k in (4, 3, 2):
        near = range(max(best // k - 1, 2), best // k + 2)
        r = max(near, key=lambda d: gains[d], default=0)
        if r and gains[r] * NEAR_BEST_OF >= gains[best] * (NEAR_BEST_OF - 1):
            best = r
            break
    best_gain = gains[best]
    beside = max(int(alike[u]) for u in _unrelated(best))
    share = int(alike[best])
    if best_gain < NEAR_GAIN * NEAR_POSITIONS or share < NEAR_STAND_OUT * beside:
        return 0
    return best


def _spread(where: np.ndarray) -> np.ndarray:
    """``NEAR_POSITIONS`` of the positions ``where``, spread evenly over them."""
    return where[
        np.arange(NEAR_POSITIONS, dtype=np.int64) * (len(where) - 1) // (NEAR_POSITIONS - 1)
    ]


def _alike(a: np.ndarray, widest: int, pos: np.ndarray | None = None) -> np.ndarray:
    """For each distance d from 2 to ``widest``: how many of the positions ``pos`` (by
    default ``NEAR_POSITIONS`` spread over ``a`` from ``widest`` on) hold a byte within
    ``NEAR`` of the one d back."""
    if pos is None:
        pos = _spread(np.arange(widest, len(a), dtype=np.int64))
    here = a[pos].astype(np.int16)
    alike = np.zeros(widest + 1, dtype=np.int64)
    for lo in range(2, widest + 1, 256):
        d = np.arange(lo, min(lo + 256, widest + 1), dtype=np.int64)
        back = a[pos[None, :] - d[:, None]].astype(np.int16)
        alike[d] = np.count_nonzero(np.abs(here[None, :] - back) <= NEAR, axis=1)
    return alike


#: Images of 24 and 32 bits a pixel: the byte equal to (or close to) the one being coded
#: is most often the same colour of the pixel to the left, so the search finds the pixel
#: (3 or 4 bytes), and the image went down the path of short records, without the image
#: kinds and the rows above. Where it finds 3 or 4, the row is looked for among the
#: distances of at least ``ROW_MIN_PIXELS`` pixels, first at the bytes not close to the
#: pixel to their left (an edge, which in a picture goes on in the row below; in a
#: screenshot's flat areas every distance looks like a row): the distance where most of
#: them are close to the byte that far back (``_alike``). Then, of that distance and those
#: a pixel either side, the one where most of all bytes are, which must be a peak (more
#: than at the distances a byte either side) with at least ``ROW_SHARE`` of the pixel's
#: count. Measured on eight 24- and 32-bit images of this machine (a photograph,
#: screenshots, diagrams, charts): the row's count 0.93-1.04 of the pixel's; a float
#: array's best distance 0.82 of its 4-byte record's.
#: But tables and code with 4-byte fields pass too (a locale table, a shared library's
#: second MiB), and the image preset codes such a table 18% larger, so the encoder takes
#: the image presets only where a trial on the first block says so (``engine._image_config``).
#: Rows are looked for up to ``ROW_LONGEST`` bytes (5,461 pixels of 24 bits, 4,096 of
#: 32), longer than other records (``SEARCH_MAX``): a screenshot is often 1,920 pixels
#: wide or more.
PIXEL_BYTES = (3, 4)
ROW_LONGEST = 1 << 14
ROW_MIN_PIXELS = 64
ROW_SHARE = 0.85
ROW_MIN_EDGES = 256


def pixel_row(a: np.ndarray, pixel: int, longest: int) -> int:
    """The row length of an image of ``pixel``-byte pixels ``a``, or 0."""
    lo, widest = ROW_MIN_PIXELS * pixel, longest + pixel + 1
    if longest <= lo or len(a) <= widest + NEAR_POSITIONS:
        return 0
    at = np.arange(widest, len(a), dtype=np.int64)
    edges = at[np.abs(a[at].astype(np.int16) - a[at - pixel]) > NEAR]
    if len(edges) < ROW_MIN_EDGES:
        return 0
    by_edges = _alike(a, widest, _spread(edges) if len(edges) > NEAR_POSITIONS else edges)
    row = lo + int(np.argmax(by_edges[lo : longest + 1]))
    alike = _alike(a, widest)
    row = max((row, row - pixel, row + pixel), key=lambda d: alike[d])  # the first of equals
    peak = alike[row] > max(alike[row - 1], alike[row + 1])
    return row if peak and alike[row] >= ROW_SHARE * alike[pixel] else 0


#: Record blocks want segments of at least this many records: the record contexts know
#: nothing of a segment's first record (the one above it is another segment's, coded later).
ROWS_PER_SEGMENT = 16
#: Binary blocks (records or x86 code) want segments of at least this many bytes: each
#: segment starts cold, and there the network, which would carry it on text, has little
#: to say; and binary data changes along the file, so its statistics are worth most where
#: they come from nearby, which in the lockstep means from the same segment. Measured
#: with ``scripts/block_kinds.py --segment-bytes`` on 13 binary files of this machine
#: (bitmaps of 1, 8 and 24 bits, the starts of libc, python3, bash, ``ls`` and
#: ``libz.so``, tables of ``os.stat`` and package records, a man-db index, a float array,
#: a WAV): 16 KiB segments instead of 4 KiB coded them 1.0% smaller in all (none larger;
#: on four of them, 1.4%, where 8 KiB gained 0.8% and 64 KiB 3.5% at a quarter of the
#: speed or less); on the four binary files of the Calgary and Canterbury corpora that
#: zpaq -m5 beat, 2.7% (the spreadsheet 9%). The cost is speed: fewer segments per
#: network step, so binary files code at a half to a third of their speed with 4 KiB
#: segments, which the engine wins back in part with int8 products (``engine._int8_for``).
#: Once the range coder ran inside the compiled loop (``rangecoder``), a step's fixed cost
#: fell, and 32 KiB became worth it: ``scripts/presets.py --presets auto --segment-bytes
#: 16384,32768,65536`` on 11 binary files (Calgary's obj2 and pic, kennedy.xls, the first
#: 256 KiB of libc and python3, libz.so, a man-db index, package records, two bitmaps, a
#: WAV) coded them 0.37% smaller in all than 16 KiB (machine code 0.7-1.4%, the
#: spreadsheet 0.6%, pic 0.5% larger), 64 KiB 0.42%; at 32 KiB the files that changed
#: coded 14-41% slower than at 16 KiB, about as fast as before that change.
BINARY_SEGMENT_BYTES = 32768
#: ...except images and wide tables (records of ``IMAGE_RECORD`` bytes or more, not x86
#: code), which keep 16 KiB: there 32 KiB made Calgary's pic 0.5% larger and another
#: 1-bit bitmap 0.3% smaller, and pic some 40% slower.
IMAGE_SEGMENT_BYTES = 16384
#: ...but at least this many segments, where the block is long enough for the default
#: count to allow them: a step's work has a fixed part (the network's step; then also
#: the Python calls of each bit, since moved into the compiled loop) that one or two
#: segments pay alone, so a 38 KB executable cut into two segments took 8 s to decompress
#: (``nncompress compare``, Canterbury's ``sum``), where 8 segments bound a small block's
#: time at about that of 4 KiB segments.
MIN_BINARY_SEGMENTS = 8


#: Text that zlib's fastest level keeps less than this share of (logs, generated code and
#: markup, symbol lists) takes longer segments: ``REDUNDANT_SEGMENT_BYTES``, but at least
#: ``MIN_REDUNDANT_SEGMENTS`` of them. Each segment starts without context, its first
#: bytes cost some 20 bits where the rest costs a fraction of a bit, and its match model
#: has yet to find the lines it repeats; the more of the data is repeats, the larger that
#: start's share (docs/DESIGN.md, section 3). The floor keeps the batch of a step large.
#: ``scripts/presets.py --ratios 0,0.2`` on 11 logs, generated headers and scripts of
#: this machine and the training corpus: 7.0% smaller in all with the floor at 64 (up to
#: 22% on a log), 10.1% at 16; but then a decoder's step cost about as much as 50
#: segments' bytes before the first, and at 16 files of 30-110 KB decoded up to 4 times
#: slower than with 1 KiB segments. With the range coder in the compiled loop
#: (``rangecoder``), ``scripts/presets.py --presets auto --min-redundant 64`` (then 32,
#: 16) on the same files, 2026-12-02 17:42-17:46 UTC: 76,501 bytes in all, 74,558 at 32
#: (the 300 KB logs and this machine's dpkg.log 1.0-6.8% smaller), 73,883 at 16; at 32
#: they compressed at 27.0-46.0 KB/s and decompressed at 27.1-48.7, against 34.4-53.4
#: and 34.0-61.3 at 64 (xz -9e compressed them at 288-1,506), and at 16 the headers
#: at 21.0-26.8.
REDUNDANT_RATIO = 0.2
REDUNDANT_SEGMENT_BYTES = 8192
MIN_REDUNDANT_SEGMENTS = 32


def looks_redundant(data: bytes) -> bool:
    """Whether ``data`` (a text block) is repetitive enough for ``REDUNDANT_SEGMENT_BYTES``:
    zlib at level 1 keeps less than ``REDUNDANT_RATIO`` of it (some 10 ms per MiB)."""
    return len(zlib.compress(data, 1)) < REDUNDANT_RATIO * len(data)


#: Whether the encoder codes binary and redundant blocks without the network
#: (``flat``); off, it codes every mixed block with it, as it did before the option
#: existed (``scripts/make_golden.py`` makes its older archives so).
FLAT_BLOCKS = True
#: Whether the encoder codes an image's or wide table's block without the network in one
#: segment too, and keeps the smaller (``engine._if_smaller``); off, it keeps
#: the rows' segments, as it did before (``scripts/make_golden.py`` makes its older
#: archives so).
IMAGE_TRIAL = True
#: Repetitive text goes without the network only where that codes its first this many
#: bytes smaller than the network does (``engine._network_pays``): on 300,000-byte pieces
#: of the training corpus's logs, which the network learnt, the network won by 0.4-12.7%,
#: on this machine's logs and markup flat won by 0.1-14%; 64 KiB picked the smaller way
#: on all eight, 32 KiB not on two (``scripts/presets.py``, docs/DESIGN.md section 3).
#: A block no longer than this is coded both ways whole instead, and the smaller kept.
#: 0: no trial.
TRIAL_BYTES = 1 << 16
#: The image trial (``engine._image_config``) codes this much of the first block both
#: ways.
IMAGE_TRIAL_BYTES = 1 << 16


def flat(record: int, x86: bool, redundant: bool, binary: bool = False) -> bool:
    """Whether a mixed block may go without the network (``format.OPTION_FLAT``): blocks
    with records of ``record`` bytes, of x86 code and other binary data (``binary``:
    ``looks_binary``) do, and text that ``looks_redundant`` or ``looks_mixed``
    (``redundant``) does where a trial on its start says so (``TRIAL_BYTES``).

    A network trained on text has little to say about tables, bitmaps and machine code
    (the binary presets start it at 1/8 of its weight), and in repetitive text the
    statistics of the file itself and its long matches say most of it; what the network
    costs there is its step, which only many segments in lockstep make affordable, and
    many segments start cold many times. Without it a block can be one segment (or, for
    images, keep its rows' segments) at the speed of the statistics alone. Measured with
    ``scripts/presets.py --presets auto`` on binary files and logs of this machine
    (docs/DESIGN.md, section 3, has the figures)."""
    return FLAT_BLOCKS and bool(record or x86 or binary or redundant)


def segments(
    n: int,
    default: int,
    record: int = 0,
    x86: bool = False,
    redundant: bool = False,
    flat: bool = False,
) -> int:
    """The segment count of a mixed block of ``n`` bytes, given the count it would have
    as text (``default``): for a block coded without the network (``flat``), the fewest
    the format allows; fewer, longer segments for binary blocks (with records of
    ``record`` bytes, or x86 code; images' shorter, ``IMAGE_SEGMENT_BYTES``), and at
    least ``ROWS_PER_SEGMENT`` rows where the records are long (a bitmap's rows), but not
    fewer than ``MIN_BINARY_SEGMENTS`` where the rows allow; for text
    that ``looks_redundant`` (``redundant``), segments of ``REDUNDANT_SEGMENT_BYTES``;
    never more than ``default``, never fewer than the format allows. Images (records of
    ``IMAGE_RECORD`` bytes or more, not x86 code) keep their segments even without the
    network: some pictures code smaller that way, others in one segment, and the encoder
    tries both (``engine._if_smaller``)."""
    image = record >= IMAGE_RECORD and not x86
    if flat and not image:
        return fmt.fewest_segments(n)
    if not record and not x86:
        if not redundant:
            return default
        count = max(n // REDUNDANT_SEGMENT_BYTES, MIN_REDUNDANT_SEGMENTS)
        return max(fmt.fewest_segments(n), min(default, count))
    length = max(IMAGE_SEGMENT_BYTES if image else BINARY_SEGMENT_BYTES, ROWS_PER_SEGMENT * record)
    count = max(n // length, MIN_BINARY_SEGMENTS)
    if record:
        count = min(count, n // (ROWS_PER_SEGMENT * record))
    return max(fmt.fewest_segments(n), min(default, count))


#: The presets binary streams get: code and short records the machine-word contexts,
#: streams with long records (bitmaps, wide tables) not.
BINARY_CONFIG = BINARY_3
IMAGE_CONFIG = BINARY_2
BITMAP_CONFIG = BINARY_4
#: ...and where the level's text preset has extra mixers, preset 12, whose mixers choose
#: by the pixels around (its two weight tables are small, so short bitmaps get it too).
BITMAP_MIXERS_CONFIG = BITMAP
#: ...and for code and short records preset 13, preset 8 with the sparse and match kinds;
#: for images and wide tables preset 14, preset 9 with the 8-bit image kinds.
BINARY_MIXERS_CONFIG = BINARY_SPARSE_MIXERS
IMAGE_MIXERS_CONFIG = IMAGE_MIXERS
#: ...and for a 24- or 32-bit image, by its pixel's bytes, preset 16 or 17: preset 14 with
#: the colour kinds (given where the encoder's trial on the first block says rows pay,
#: ``engine._image_config``).
COLOUR_CONFIGS = {3: COLOUR_24, 4: COLOUR_32}
#: The presets whose blocks look for an image's row behind its pixel (``detect``'s
#: ``rows``).
ROW_CONFIGS = (IMAGE_MIXERS_CONFIG, *COLOUR_CONFIGS.values())
#: Records at least this long take a block for an image or a wide table: its neighbours
#: are the row above, not the bytes 4 and 8 back (``config.BINARY_3``'s contexts, which
#: made 1-bit bitmaps with rows of 216 and 380 bytes 0.7-1.1% larger, and a table of
#: 78-byte records 0.6% larger, where records of 56 bytes and less gained).
IMAGE_RECORD = 64


#: 1-bit bitmaps get the bit-level pixel contexts (``config.BINARY_4``). They show in
#: their bytes' bits: the last pixel of a byte and the first of the next are neighbours,
#: and agree far more often than the first and last pixel of one byte, which in any other
#: data (where a byte's top and bottom bits mean unrelated things) agree as often as the
#: bottom bit of a byte and the top bit of the next. Pairs of bytes both 0 or 255 are left
#: out (blank areas agree either way). Measured on the first MiB of files of this machine
#: (the test reads the first ``SAMPLE`` bytes): the share of neighbour pixels that agree
#: was 0.76-0.87 in three 1-bit bitmaps made from screenshots (text thresholded at two
#: levels, a dithered picture) and in Calgary's ``pic``, 0.045-0.33 above the share
#: within bytes; at most 0.68 in anything else (a spreadsheet, 68000 code, a man-db
#: index, an array of floats, a WAV, synthetic 8- and 24-bit bitmaps, a CSV, English),
#: and never more than 0.01 above its share within bytes.
BITMAP_AGREE = 0.7
BITMAP_MARGIN = 0.03
BITMAP_MIN_PAIRS = 256


def looks_like_bitmap(data: bytes) -> bool:
    """Whether ``data`` looks like a 1-bit bitmap (pixels packed 8 to a byte)."""
    a = np.frombuffer(data, dtype=np.uint8)[:SAMPLE].astype(np.int64)
    left, right = a[:-1], a[1:]
    blank = ((left == 0) | (left == 255)) & ((right == 0) | (right == 255))
    left, right = left[~blank], right[~blank]
    if len(left) < BITMAP_MIN_PAIRS:
        return False
    across = np.count_nonzero((left & 1) == (right >> 7)) / len(left)
    within = np.count_nonzero((left & 1) == (left >> 7)) / len(left)
    return across >= BITMAP_AGREE and across >= within + BITMAP_MARGIN


#: Binary data without records or x86 code (compiled Python, object files of other
#: machines, message catalogues, fonts without a record length found): control bytes
#: (0-8, 14-31, 127) make up more than this share of it. Measured on the first 256 KiB of
#: files of this machine: 0.27-0.76 in executables, libraries, compiled Python, a font,
#: a locale and a message catalogue; 0 in its text, source, logs, CSV and XML; 0.013 in
#: a colour ``ls -R`` listing and 0.128 in colour ``grep`` output (ANSI escapes), the most
#: any text had.
BINARY_CONTROL_SHARE = 0.2


#: Text with binary parts (message catalogues: tables of offsets before their strings;
#: terminal transcripts): control bytes make up more than this share of it, but no more
#: than ``BINARY_CONTROL_SHARE``. Such a block goes without the network where a trial on
#: its start says so (``flat``): the network, which learnt text, misjudges the tables and
#: the text around them (it coded this machine's Polish glib catalogue at 7.6 bits a
#: byte on its own). Measured on files of this machine and the corpora: 0.055-0.15 in
#: five message catalogues, 0.09 in Calgary's ``trans``, 0 in other text (above).
MIXED_CONTROL_SHARE = 0.02


def _control_share(data: bytes) -> float:
    """The share of control bytes (0-8, 14-31, 127) in the start of ``data`` (``SAMPLE``),
    or 0 where it is too short to tell (``MIN_BYTES``)."""
    a = np.frombuffer(data, dtype=np.uint8)[:SAMPLE]
    if len(a) < MIN_BYTES:
        return 0.0
    return np.count_nonzero((a < 9) | ((a >= 14) & (a < 32)) | (a == 127)) / len(a)


def looks_binary(data: bytes) -> bool:
    """Whether ``data`` looks like binary data rather than text (``BINARY_CONTROL_SHARE``),
    where neither records nor x86 code said so."""
    return _control_share(data) > BINARY_CONTROL_SHARE


#: ...and whose bytes take at most this many bits each at order 0: compressed and random
#: data has as many control bytes (28 of the 256 values) but takes nearly 8 (7.9-8.0 in a
#: jar and a gzip file of this machine, 5.0-5.5 in its message catalogues and ``trans``),
#: and is left to storing and LZMA2 without the trial's cost.
MIXED_MAX_ENTROPY = 7.0


def order0_bits(data: bytes) -> float:
    """The bits a byte of ``data`` takes at order 0 (its byte frequencies' entropy)."""
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / len(data)
    return float(-(p * np.log2(p)).sum())


def looks_mixed(data: bytes) -> bool:
    """Whether ``data`` looks like text with binary parts (``MIXED_CONTROL_SHARE``,
    ``MIXED_MAX_ENTROPY``), where it does not ``looks_binary``."""
    if not MIXED_CONTROL_SHARE < _control_share(data) <= BINARY_CONTROL_SHARE:
        return False
    return order0_bits(data[:SAMPLE]) <= MIXED_MAX_ENTROPY


#: Text streams shorter than this (their first block is all of them) keep preset 1, which
#: costs no header byte, rather than the level's preset 6: with at most 8 segments its
#: nearby probes have little to find (``scripts/presets.py --presets 1,6`` on 8 KiB pieces
#: of this machine's code, prose and logs: from 7 bytes smaller to 5 larger).
NEARBY_MIN = 8192


def config_for(config: Config, first_block: bytes) -> Config:
    """The configuration of a stream whose first block is ``first_block``, when its level
    asks for ``config``: a binary preset instead of the default when the block is x86
    code, has records or otherwise ``looks_binary``, the bit-level pixels where those
    records are a 1-bit bitmap's rows (text streams keep the level's text preset, and do
    not pay for contexts they cannot use; short ones preset 1, ``NEARBY_MIN``). A level
    whose text preset has extra mixers (``Config.mixers``) gets the binary presets with
    the same mixers, except for streams shorter than ``NEARBY_MIN``, which go without
    them as short text does: their weights (24-33 MB) take longer to set up than a few
    KiB to code, for nothing (``scripts/presets.py --presets 4,8`` on the first 2,000
    and 6,000 bytes of libz.so and 6,000 of a table of this machine: 4,055 bytes either
    way, compressing 16-39% slower with them). Code and short records get the sparse and
    match kinds with them (``BINARY_MIXERS_CONFIG``), images and wide tables the 8-bit
    image kinds (``IMAGE_MIXERS_CONFIG``), 1-bit bitmaps mixers of their own
    (``BITMAP_MIXERS_CONFIG``)."""
    if config not in TEXT_PRESETS:
        return config
    short = len(first_block) < NEARBY_MIN
    if filters.looks_like_x86(first_block):
        binary = BINARY_CONFIG
    else:
        record = detect(first_block)
        if not record and not looks_binary(first_block):
            return DEFAULT if short else config
        if looks_like_bitmap(first_block):
            if config.mixers:
                return BITMAP_MIXERS_CONFIG
            binary = BITMAP_CONFIG
        else:
            binary = BINARY_CONFIG if record < IMAGE_RECORD else IMAGE_CONFIG
    if short or not config.mixers:
        return binary
    return BINARY_MIXERS_CONFIG if binary == BINARY_CONFIG else IMAGE_MIXERS_CONFIG
