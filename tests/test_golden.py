"""The golden archives: format 1's promise, enforced.

``tests/data/golden*.nnc`` are archives of format 1 made with the shipped default model
(``scripts/make_golden.py`` says how each was made). Every one must keep decompressing to
``tests/data/golden.txt``, found the way the CLI finds its model (by the number the header
names), and recompressing the text the same way must give the same bytes, so that no
change to the format, the coder, a configuration or the shipped model can slip by
(docs/DESIGN.md, section 7). Released golden archives are never rebuilt; a new
feature of the format adds a golden beside them: ``golden-primed.nnc`` pins primed models
and the 4-byte model hash, with a model that ``make_golden.primed_model`` rebuilds from
the shipped one (its hash pinned below); ``golden-records.nnc`` and ``golden-x86.nnc`` pin the
options of mixed blocks (record lengths with the binary preset, the x86 transform) on data
that ``make_golden`` computes.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import DATA, make_golden

from nncompress import format as fmt
from nncompress.config import (
    BINARY,
    BINARY_2,
    BINARY_3,
    BINARY_4,
    BINARY_SPARSE_MIXERS,
    BITMAP,
    COLOUR_24,
    COLOUR_32,
    DEFAULT,
    DEFAULT_2,
    FINE_MAX,
    FINE_TEXT,
    IMAGE_MIXERS,
    MAX_HISTORIES,
    MAX_REFINED,
    MAX_TEXT,
    TEXT_MIXERS,
    WIDE_TEXT,
    like_level,
    preset_of,
)
from nncompress.engine import compress_stream, decompress_stream, list_stream
from nncompress.levels import LEVELS
from nncompress.model import IntModel
from nncompress.reader import ArchiveReader
from nncompress.zoo import REGISTRY, model_for_archive

TEXT = DATA / "golden.txt"


def test_golden_text_is_the_scripts_text() -> None:
    assert TEXT.read_bytes() == make_golden.golden_data()
    assert len(TEXT.read_bytes()) > 9000  # more than one block


def test_every_golden_is_there() -> None:
    for name in make_golden.GOLDENS:
        assert (DATA / name).is_file(), f"{name} is missing: run scripts/make_golden.py"


def test_the_second_configuration_differs() -> None:
    """The second golden really exercises another configuration, written out in full."""
    second = make_golden.SECOND_CONFIG
    assert second != DEFAULT and second.contexts != DEFAULT.contexts
    blob = (DATA / "golden-config2.nnc").read_bytes()
    header, _ = fmt.read_header(io.BytesIO(blob))
    assert header.config == second
    assert (blob[4] >> 4) & 3 == fmt.CONFIG_INLINE


def test_the_text_presets_goldens_pin() -> None:
    """golden-nearby.nnc pins preset 6 (nearby match probes), golden-mixers.nnc the
    level's text preset from 7 (and the extra mixers), golden-max.nnc --max's, 15,
    golden-wide.nnc --wide's, 18, golden-max-histories.nnc --max's from 19 (bit
    histories), golden-max-refined.nnc --max's from 25 (slot groups, warm-up and a
    match context of 2 bytes), golden-fine.nnc and golden-max-fine.nnc the level's and
    --max's since, 36 and 42 (fine probabilities), all named by number."""
    pins = (
        ("golden-nearby.nnc", DEFAULT_2, 6),
        ("golden-mixers.nnc", TEXT_MIXERS, 7),
        ("golden-max.nnc", MAX_TEXT, 15),
        ("golden-wide.nnc", WIDE_TEXT, 18),
        ("golden-max-histories.nnc", MAX_HISTORIES, 19),
        ("golden-max-refined.nnc", MAX_REFINED, 25),
        ("golden-fine.nnc", FINE_TEXT, 36),
        ("golden-max-fine.nnc", FINE_MAX, 42),
    )
    for name, config, number in pins:
        blob = (DATA / name).read_bytes()
        header, _ = fmt.read_header(io.BytesIO(blob))
        assert header.config == config and preset_of(config) == number
        assert (blob[4] >> 4) & 3 != fmt.CONFIG_INLINE
    assert DEFAULT_2.mixers == () and TEXT_MIXERS.mixers
    assert LEVELS["default"].config == FINE_TEXT == replace(TEXT_MIXERS, fine=1)
    assert LEVELS["max"].config == FINE_MAX == replace(MAX_REFINED, fine=1)
    assert LEVELS["wide"].config == WIDE_TEXT
    assert replace(MAX_HISTORIES, histories=0) == MAX_TEXT
    assert like_level(MAX_TEXT, MAX_REFINED) == MAX_REFINED


@pytest.fixture(autouse=True)
def shipped_models_only(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("NNCOMPRESS_MODELS", "")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # no user models


@pytest.mark.parametrize("name", sorted(make_golden.GOLDENS))
def test_golden_decompresses(name: str, default_model: IntModel) -> None:
    blob = (DATA / name).read_bytes()
    info = list_stream(io.BytesIO(blob))
    assert REGISTRY[info.model] == ("default", default_model.sha256), (
        f"{name} names shipped model {info.model}; models/default.nnm must stay its file"
    )
    block, frame, _ = make_golden.GOLDENS[name]
    assert info.block_size == block
    assert len(info.frames) == -(-len(TEXT.read_bytes()) // max(block, frame // block * block))
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, lambda h: model_for_archive(h.model, h.model_prefix))
    assert out.getvalue() == TEXT.read_bytes()


@pytest.mark.parametrize("name", sorted(make_golden.GOLDENS))
def test_golden_recompresses_identically(name: str, default_model: IntModel) -> None:
    block, frame, config = make_golden.GOLDENS[name]
    out = io.BytesIO()
    compress_stream(
        io.BytesIO(TEXT.read_bytes()),
        out,
        default_model,
        block,
        make_golden.LEVEL,
        frame_size=frame,
        config=config,
    )
    assert out.getvalue() == (DATA / name).read_bytes()


def test_golden_frames_read_at_random(default_model: IntModel) -> None:
    """The index of the framed golden leads straight to its second frame."""
    reader = ArchiveReader(io.BytesIO((DATA / "golden-frames.nnc").read_bytes()))
    assert reader.frame_count == 2
    reader.seek(9000)
    assert reader.read(200) == TEXT.read_bytes()[9000:9200]
    assert reader.frames_decoded == 1


def test_golden_with_torch_backend(default_model: IntModel) -> None:
    """The shipped model on the torch backend decodes the golden archives too, their
    per-bit work in torch (``torchmix``, as ``--device torch`` runs it): the first
    configuration, one written out in full, and the default level's preset (7)."""
    pytest.importorskip("torch")
    from nncompress.ops import TorchOps

    model = default_model.to(TorchOps("cpu"))
    for name in ("golden.nnc", "golden-config2.nnc", "golden-mixers.nnc"):
        out = io.BytesIO()
        decompress_stream(io.BytesIO((DATA / name).read_bytes()), out, lambda header: model)
        assert out.getvalue() == TEXT.read_bytes()


#: The SHA-256 of each primed golden model (by model file format version) as
#: ``make_golden.primed_model`` writes it: the identity the primed golden archives name
#: (by its first 4 bytes).
PRIMED_SHA256 = {
    "2": "1bceb245755d44b55d3634cc022658f92dc65a96cd3dd341b468674d227b4558",
    "3": "c152b9006ae29317bda686ece458ba8b4b2953b0756c4d241ff1df38001c45f9",
}


@pytest.fixture
def primed_models(tmp_path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Both primed golden models, in a model folder of their own: by version."""
    d = tmp_path / "primed"
    d.mkdir()
    paths = {v: make_golden.primed_model(d, version=v) for v in PRIMED_SHA256}
    monkeypatch.setenv("NNCOMPRESS_MODELS", str(d))
    return paths


@pytest.mark.parametrize("name", sorted(make_golden.PRIMED_GOLDENS))
def test_primed_golden_decompresses(name: str, primed_models) -> None:
    """A primed model's archive (format 1 with the short-hash bit and a version 2 or 3
    model): found by 4 bytes of its hash in the model folders, decoded through its prime
    (with version 3, into tables sized for the prime too)."""
    block, frame, version = make_golden.PRIMED_GOLDENS[name]
    model = IntModel.load(primed_models[version])
    assert model.sha256 == PRIMED_SHA256[version], "the primed golden model's file changed"
    assert model.prime == make_golden.prime_bytes(version)
    assert model.prime_sizes_tables == (version == "3")
    blob = (DATA / name).read_bytes()
    assert blob[4] == fmt.MODEL_HASH | fmt.SHORT_HASH_FLAG
    assert blob[5:9] == bytes.fromhex(PRIMED_SHA256[version][:8])
    info = list_stream(io.BytesIO(blob))
    assert info.block_size == block and len(info.frames) == -(-len(TEXT.read_bytes()) // frame)
    assert {b.method for b in info.blocks} == {fmt.METHOD_MIXED}
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, lambda h: model_for_archive(h.model, h.model_prefix))
    assert out.getvalue() == TEXT.read_bytes()


@pytest.mark.parametrize("name", sorted(make_golden.PRIMED_GOLDENS))
def test_primed_golden_recompresses_identically(name: str, primed_models) -> None:
    assert make_golden.make_primed_archive(name) == (DATA / name).read_bytes()


@pytest.mark.parametrize("name", sorted(make_golden.DATA_GOLDENS))
def test_data_golden_decompresses(name: str, default_model: IntModel) -> None:
    """Archives of computed data: a table (the binary preset, config preset 2, and a
    record length in every mixed block's options), code (the x86 branch transform,
    block option 2), a 1-bit bitmap (preset 3, the pixel contexts), longer code
    (preset 4, the machine-word contexts) and a 1-bit picture (preset 5, the bit-level
    pixel contexts); and the code, a package log and the picture without the network
    (block option 4); and the code and the picture again with the extra mixers (presets
    8 and 10; the encoder chose them from the text preset 7), and the picture and the
    code with the presets that the encoder chooses for them from 7 now (12, the bitmaps'
    own mixers; 13, the sparse and match kinds); an 8-bit picture (14, the image
    kinds); a 24-bit and a 32-bit picture (16 and 17, the colour kinds); and the code
    and the picture with the presets the encoder chooses for them from --max's text
    presets 19 (20 and 22: 13 and 12 with bit histories) and 25 (26 and 28: with slot
    groups, warm-up and a match context of 2 bytes too), and from the default level's
    since its binary streams take those but for bit histories (31 and 33)."""
    source, block, _, _, rule = make_golden.DATA_GOLDENS[name]
    flat, text = rule[2], rule[3]
    blob = (DATA / name).read_bytes()
    info = list_stream(io.BytesIO(blob))
    assert info.block_size == block
    kinds = {(b.method, b.record, b.x86) for b in info.blocks}
    assert {b.flat for b in info.blocks} == {flat}  # block option 4, or none
    chosen = {"long code": BINARY_3, "picture": BINARY_4, "log": DEFAULT_2, "bitmap": BINARY_2}
    expected = replace(chosen.get(source, BINARY), mixers=text.mixers)
    if source == "picture" and text.mixers:  # a 1-bit bitmap's own preset (12)
        expected = BITMAP
    if source == "long code" and text.mixers:  # code's sparse and match kinds (13)
        expected = BINARY_SPARSE_MIXERS
    if source == "photo":  # the 8-bit image kinds (14)
        expected = IMAGE_MIXERS
    if source.startswith("colour"):  # the colour kinds (16, 17)
        expected = COLOUR_32 if source.endswith("32") else COLOUR_24
    # the binary preset with bit histories (20, 22), and slot groups and the rest (26, 28);
    # from the default level's text preset, slot groups and the rest alone (31, 33), and
    # since 36 with fine probabilities too (37, 39)
    expected = like_level(expected, text, make_golden.binary_slots(rule))
    if make_golden.DATA_GOLDENS[name][3] is not None:  # made with the configuration given
        expected = make_golden.DATA_GOLDENS[name][3]
    assert info.config == expected and blob[5] == preset_of(expected)
    if source == "records":
        assert kinds == {(fmt.METHOD_MIXED, 20, False)}
    elif source == "code":
        assert kinds == {(fmt.METHOD_MIXED, 0, True)}
    elif source == "long code":
        assert kinds == {(fmt.METHOD_MIXED, 0, True)}
        assert [b.segments for b in info.blocks] == ([1, 1] if flat else [8, 8])
    elif source == "picture":
        assert kinds == {(fmt.METHOD_MIXED, 64, False)} and len(info.blocks) == 2
        assert all(b.segments > 1 for b in info.blocks)  # an image keeps its segments
    elif source == "photo":
        assert kinds == {(fmt.METHOD_MIXED, 96, False)} and len(info.blocks) == 2
        assert all(b.segments > 1 for b in info.blocks)
    elif source.startswith("colour"):
        row = 640 if source.endswith("32") else 480
        assert kinds == {(fmt.METHOD_MIXED, row, False)} and len(info.blocks) == 2
    elif source == "log":
        assert kinds == {(fmt.METHOD_MIXED, 0, False)}
        assert [b.segments for b in info.blocks] == [1, 1, 1]
    else:
        assert kinds == {(fmt.METHOD_MIXED, 48, False)} and len(info.blocks) == 2
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, lambda h: default_model)
    assert out.getvalue() == make_golden.DATA_SOURCES[source]()


@pytest.mark.parametrize("name", sorted(make_golden.DATA_GOLDENS))
def test_data_golden_recompresses_identically(name: str, default_model: IntModel) -> None:
    assert make_golden.make_data_archive(name) == (DATA / name).read_bytes()


def test_many_segments_golden_decompresses(default_model: IntModel) -> None:
    """A block of more than the default count of segments (1,026 of 1 KiB, which only a
    block over 1 MiB may have: the geometry a device runs), coded in two groups of 513,
    with the level's text preset written out in full (its mixers and match probes too)."""
    blob = (DATA / make_golden.MANY_SEGMENTS).read_bytes()
    data = make_golden.story_data()
    info = list_stream(io.BytesIO(blob))
    assert info.config == make_golden.MANY_SEGMENTS_CONFIG and preset_of(info.config) is None
    assert info.config.mixers and info.config.match_probes
    assert (blob[4] >> 4) & 3 == fmt.CONFIG_INLINE
    [block] = info.blocks
    assert (block.method, block.raw_len, block.flat) == (fmt.METHOD_MIXED, len(data), False)
    assert block.segments == len(data) // 1024 == fmt.most_segments(len(data))
    assert block.segments > fmt.MAX_BLOCK_SEGMENTS == fmt.segment_count(len(data))
    assert fmt.segment_groups(block.segments) == [(0, 513), (513, 1026)]
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, lambda h: model_for_archive(h.model, h.model_prefix))
    assert out.getvalue() == data


def test_many_segments_golden_recompresses_identically() -> None:
    blob = make_golden.make_many_segments_archive()
    assert blob == (DATA / make_golden.MANY_SEGMENTS).read_bytes()


def test_long_text_golden_decompresses() -> None:
    """The default level's long text (``levels.Level.long_text``): its configuration
    written out in the header, every block without the network in one segment."""
    blob = (DATA / make_golden.LONG_TEXT_GOLDEN).read_bytes()
    info = list_stream(io.BytesIO(blob))
    assert info.config == make_golden.LONG_TEXT_CONFIG and preset_of(info.config) is None
    assert (blob[4] >> 4) & 3 == fmt.CONFIG_INLINE
    assert info.config.slot_ways == 4 and not info.config.histories and info.config.fine
    assert len(info.blocks) > 1
    assert all((b.method, b.segments, b.flat) == (fmt.METHOD_MIXED, 1, True) for b in info.blocks)
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, lambda h: model_for_archive(h.model, h.model_prefix))
    assert out.getvalue() == TEXT.read_bytes()


def test_long_text_golden_recompresses_identically() -> None:
    blob = make_golden.make_long_text_archive()
    assert blob == (DATA / make_golden.LONG_TEXT_GOLDEN).read_bytes()


def test_repeat_golden_decompresses() -> None:
    """Repeat blocks (a stored block's descriptor bit 5, ``format.STORED_REPEAT``) between
    mixed ones: a run, a fill pattern and a period that does not divide the block, each
    its period alone (a ruler line, which the mixed method codes in less, is mixed); the
    text's start again after them, which the match model finds (the history holds the
    repeat blocks' bytes as the decoder made them); and the frame read at random too."""
    blob = (DATA / make_golden.REPEAT).read_bytes()
    data = make_golden.runs_data()
    info = list_stream(io.BytesIO(blob))
    names = [fmt.method_name(b.method, b.segments) for b in info.blocks]
    assert names == ["mixed", "repeat", "repeat", "mixed", "repeat", "mixed", "mixed"]
    assert [info.blocks[i].coded_len for i in (1, 2, 4)] == [1, 4, 37]
    assert info.blocks[3].coded_len < 31
    assert info.blocks[5].coded_len * 10 < info.blocks[0].coded_len
    get = lambda h: model_for_archive(h.model, h.model_prefix)  # noqa: E731
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, get)
    assert out.getvalue() == data
    reader = ArchiveReader(io.BytesIO(blob), get)
    reader.seek(3 * make_golden.REPEAT_BLOCK - 10)
    assert reader.read(30) == data[3 * make_golden.REPEAT_BLOCK - 10 :][:30]


def test_repeat_golden_recompresses_identically() -> None:
    assert make_golden.make_repeat_archive() == (DATA / make_golden.REPEAT).read_bytes()


def test_copy_golden_decompresses() -> None:
    """A copy block (a stored block's descriptor bit 6, ``format.STORED_COPY``) of x86
    code the mixed method coded after the x86 transform: its bytes are the frame's output
    132,072 bytes back, not what the match model's window holds; the block after it, and
    a read at random across it, come out right."""
    blob = (DATA / make_golden.COPY).read_bytes()
    data = make_golden.copies_data()
    info = list_stream(io.BytesIO(blob))
    names = [fmt.method_name(b.method, b.segments) for b in info.blocks]
    assert names == ["mixed", "mixed", "mixed", "copy", "mixed"]
    assert info.blocks[3].distance == 132_072 and info.blocks[3].coded_len == 0
    assert info.blocks[2].x86 and info.blocks[4].x86
    get = lambda h: model_for_archive(h.model, h.model_prefix)  # noqa: E731
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, get)
    assert out.getvalue() == data
    reader = ArchiveReader(io.BytesIO(blob), get)
    reader.seek(4 * make_golden.COPY_BLOCK - 10)
    assert reader.read(30) == data[4 * make_golden.COPY_BLOCK - 10 :][:30]


def test_copy_golden_recompresses_identically() -> None:
    assert make_golden.make_copy_archive() == (DATA / make_golden.COPY).read_bytes()
