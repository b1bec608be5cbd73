"""The golden archive: ``tests/data/golden.nnc`` must keep decompressing to
``tests/data/golden.txt``, and recompressing the text must give the same bytes, so that no
change to the format, the coder or the shipped model can slip by (DESIGN.md section 2).

When such a change is intended, rebuild the pair with ``python scripts/make_golden.py`` and
commit it with the change. The archives earlier versions wrote stay here too
(``golden-v1.nnc``, ``golden-v2.nnc``, ``golden-v3.nnc``: the text once, formats 1 and 2
with the first default model, format 3 with the current one; ``golden-v4.nnc`` and
``golden-v5.nnc``: the text twice in blocks of 9000, as ``golden.nnc`` holds it, in
formats 4 and 5), and must keep decoding: with the model the archive names, found by its
hash.
"""

from __future__ import annotations

import importlib.util
import io

import pytest
from conftest import DATA, DEFAULT_MODEL_PATH, REPO

from nncompress.engine import compress_stream, decompress_stream, list_stream
from nncompress.model import IntModel


def _make_golden():
    spec = importlib.util.spec_from_file_location(
        "make_golden", REPO / "scripts" / "make_golden.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_golden = _make_golden()
TEXT = DATA / "golden.txt"
ARCHIVE = DATA / "golden.nnc"
#: The text once, as written by format versions 1 and 2 with the first default model
#: (shipped as models/default-2026-11-25.nnm), which every later reader must decode.
LEGACY = {
    1: DATA / "golden-v1.nnc",
    2: DATA / "golden-v2.nnc",
    3: DATA / "golden-v3.nnc",
    4: DATA / "golden-v4.nnc",
    5: DATA / "golden-v5.nnc",
}
FIRST_MODEL_SHA256 = "2e0de4d1f5885b8583a7a8931c95adaf5086202134dd6aeda280c7e68a1af426"
#: The model of golden-v3.nnc to golden-v5.nnc: the current default (models/default.nnm).
MODEL_V3_SHA256 = "f54397debb4455525081923ba6b05b35cac6b4f27554b2204a0b2cd5d70e3e9e"


def test_golden_text_is_the_scripts_text() -> None:
    assert TEXT.read_bytes() == make_golden.golden_data()
    assert len(TEXT.read_bytes()) > make_golden.BLOCK_SIZE  # more than one block


@pytest.fixture(scope="module")
def golden(default_model: IntModel) -> bytes:
    if not ARCHIVE.is_file():
        pytest.fail(
            f"{ARCHIVE} is missing although {DEFAULT_MODEL_PATH} exists: "
            "run `python scripts/make_golden.py` and commit the result"
        )
    blob = ARCHIVE.read_bytes()
    info = list_stream(io.BytesIO(blob))
    if info.model_sha256 != default_model.sha256:
        pytest.fail(
            f"golden.nnc was made with model {info.model_name} "
            f"(sha256 {info.model_sha256[:16]}...) but models/default.nnm is "
            f"{default_model.name} (sha256 {default_model.sha256[:16]}...). If the new "
            "model is intended, run `python scripts/make_golden.py` and commit it."
        )
    return blob


def test_golden_decompresses(golden: bytes, default_model: IntModel) -> None:
    out = io.BytesIO()
    decompress_stream(io.BytesIO(golden), out, lambda header: default_model)
    assert out.getvalue() == TEXT.read_bytes()


@pytest.mark.parametrize("version", sorted(LEGACY))
def test_archives_of_earlier_versions_still_decompress(
    version: int, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Found the way the CLI finds it: the header names model ``default``; for versions 1
    and 2 its current file has another hash, so the search goes on by hash to the first
    default model."""
    from nncompress import format as fmt
    from nncompress.zoo import model_for_archive

    monkeypatch.setenv("NNCOMPRESS_MODELS", "")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # no user models
    blob = LEGACY[version].read_bytes()
    assert blob[4] == version
    info = list_stream(io.BytesIO(blob))
    sha = FIRST_MODEL_SHA256 if version < 3 else MODEL_V3_SHA256
    assert (info.model_name, info.model_sha256) == ("default", sha)
    out = io.BytesIO()
    decompress_stream(
        io.BytesIO(blob), out, lambda h: model_for_archive(h.model_name, h.model_sha256)
    )
    text = make_golden.golden_data() if version >= 4 else make_golden.GOLDEN_TEXT.encode("utf-8")
    assert out.getvalue() == text
    if version == 1:
        # A block whose segment count differs between the versions: the reader really
        # applied version 1's rule.
        assert any(b.segments != fmt.segment_count(b.raw_len) for b in info.blocks)


def test_golden_recompresses_identically(golden: bytes, default_model: IntModel) -> None:
    info = list_stream(io.BytesIO(golden))
    assert info.block_size == make_golden.BLOCK_SIZE
    out = io.BytesIO()
    compress_stream(
        io.BytesIO(TEXT.read_bytes()), out, default_model, info.block_size, make_golden.LEVEL
    )
    assert out.getvalue() == golden


def test_golden_with_torch_backend(golden: bytes, default_model: IntModel) -> None:
    """The shipped model on the torch backend decodes the golden archive too."""
    pytest.importorskip("torch")
    from nncompress.ops import TorchOps

    model = default_model.to(TorchOps("cpu"))
    out = io.BytesIO()
    decompress_stream(io.BytesIO(golden), out, lambda header: model)
    assert out.getvalue() == TEXT.read_bytes()
