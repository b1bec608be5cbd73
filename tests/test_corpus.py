"""Round trips of the standard corpora with the shipped model (``models/default.nnm``).

Every file of canterbury, artificial and calgary, and the first 256 KiB of each file of
``large``, compressed with the default settings and decompressed again, byte for byte. These
are the slowest tests (the real model, megabytes of data); they are marked ``slow`` but run
by default (deselect with ``-m "not slow"``). They skip cleanly when ../shared or the model
is absent.
"""

from __future__ import annotations

import io
import math

import pytest
from conftest import CORPUS

from nncompress import format as fmt
from nncompress.api import compress_bytes, decompress_bytes
from nncompress.engine import list_stream
from nncompress.levels import DEFAULT_BLOCK
from nncompress.model import IntModel
from nncompress.zoo import REGISTRY

LARGE_SAMPLE = 256 << 10


def _files(group: str) -> list[str]:
    d = CORPUS / group
    return sorted(p.name for p in d.iterdir() if p.is_file()) if d.is_dir() else []


CASES = [
    pytest.param(group, name, id=f"{group}/{name}")
    for group in ("canterbury", "artificial", "calgary", "large")
    for name in _files(group)
] or [pytest.param("canterbury", "absent", id="corpus-absent")]


def _round_trip(model: IntModel, data: bytes) -> bytes:
    blob = compress_bytes(data, model)
    blocks = max(1, math.ceil(len(data) / DEFAULT_BLOCK)) if data else 0
    # docs/FORMAT.md's worst case: a header of at most 18 bytes, 15 per block.
    assert len(blob) <= len(data) + 18 + 15 * blocks
    assert decompress_bytes(blob, model) == data
    return blob


@pytest.mark.slow
@pytest.mark.parametrize("group, name", CASES)
def test_corpus_round_trip(default_model: IntModel, group: str, name: str) -> None:
    path = CORPUS / group / name
    if not path.is_file():
        pytest.skip(f"shared corpora not found at {CORPUS}")
    data = path.read_bytes()
    if group == "large":
        data = data[:LARGE_SAMPLE]
    blob = _round_trip(default_model, data)
    info = list_stream(io.BytesIO(blob))
    assert info.raw_len == len(data)
    if any(b.method in fmt.MODEL_METHODS for b in info.blocks):
        assert REGISTRY[info.model][1] == default_model.sha256


@pytest.mark.slow
def test_text_uses_the_model(default_model: IntModel) -> None:
    """On English text the shipped model must beat both storing and LZMA (otherwise it is
    not earning its keep): the block is coded with the model."""
    path = CORPUS / "canterbury" / "alice29.txt"
    if not path.is_file():
        pytest.skip(f"shared corpora not found at {CORPUS}")
    data = path.read_bytes()[:32768]
    blob = compress_bytes(data, default_model)
    methods = [b.method for b in list_stream(io.BytesIO(blob)).blocks]
    assert len(methods) == 1 and methods[0] not in (fmt.METHOD_STORED, fmt.METHOD_LZMA)
