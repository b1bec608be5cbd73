"""The integer model: loading and validation of model files, identity, the frequency
contract the coder relies on, the lookup of models by name and hash, and the gap between
the float network and its integer export.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_NAME, memory_model, random_gru, write_random_model
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import save

from nncompress import format as fmt
from nncompress import zoo
from nncompress.model import (
    EXP_SIZE,
    FREQ_BITS,
    IntModel,
    ModelError,
    build_luts,
    save_model,
)


def _write(path: Path, tensors: dict[str, np.ndarray], meta: dict[str, str]) -> Path:
    path.write_bytes(save(dict(sorted(tensors.items())), metadata=meta))
    return path


@pytest.fixture(scope="module")
def parts() -> tuple[dict[str, np.ndarray], dict[str, str]]:
    return random_gru(16, 2, seed=7, name="parts")


# ----------------------------------------------------------------------------- identity
def test_sha256_is_the_hash_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.nnm"
    sha = write_random_model(path, 16, 1, seed=4, name="ident")
    m = IntModel.load(path)
    assert m.sha256 == sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert m.name == "ident" and m.hidden == 16 and m.layers == 1 and m.path == path
    assert m.short_id == f"ident@{sha[:12]}"


def test_metadata_round_trip(tmp_path: Path) -> None:
    """Names are UTF-8 (archives record them); extra metadata survives the canonical header."""
    tensors, meta = random_gru(16, 1, seed=8, name="naïve-模型")
    meta = meta | {"preset": "tiny", "train_steps": "12"}
    sha = save_model(tmp_path / "m.nnm", tensors, meta)
    m = IntModel.load(tmp_path / "m.nnm")
    assert m.name == "naïve-模型" and m.sha256 == sha
    assert {k: m.meta[k] for k in meta} == meta


def test_save_is_deterministic(tmp_path: Path, parts) -> None:
    """The identity of a model must not depend on dict order or on when it was saved."""
    tensors, meta = parts
    a = save_model(tmp_path / "a.nnm", tensors, meta)
    b = save_model(tmp_path / "b.nnm", dict(reversed(list(tensors.items()))), meta)
    assert a == b
    assert (tmp_path / "a.nnm").read_bytes() == (tmp_path / "b.nnm").read_bytes()
    assert not list(tmp_path.glob("*.tmp"))


def test_model_file_is_plain_safetensors(tiny_model: IntModel) -> None:
    """Data, never code: the file is a JSON header plus raw tensors, and nothing in it is a
    pickle."""
    raw = Path(tiny_model.path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and raw[8 + n - 1 : 8 + n].strip() in (b"}", b"")
    assert b"\x80\x04\x95" not in raw[: 8 + n]  # no pickle protocol-4 frame in the header


def test_parameters(tiny_model: IntModel, tiny_model2: IntModel) -> None:
    h = 32
    assert tiny_model.parameters == 3 * h * h + 256 * h
    assert tiny_model2.parameters == 2 * 3 * h * h + 3 * h * h + 256 * h


# ----------------------------------------------------------------------------- rejection
@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello, world\n",
        b"\x00" * 100,
        pickle.dumps({"embed_table": [1, 2, 3]}),
        b"PK\x03\x04" + bytes(100),
        (10**6).to_bytes(8, "little") + b"{}",  # header length beyond the end of the file
        (2).to_bytes(8, "little") + b"[]",
        (9).to_bytes(8, "little") + b'{"a": 1}',
    ],
    ids=["empty", "text", "zeros", "pickle", "zip", "long-header", "json-list", "bad-tensor"],
)
def test_rejects_non_safetensors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.nnm"
    path.write_bytes(content)
    with pytest.raises(ModelError):
        IntModel.load(path)


def test_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="absent.nnm not found"):
        IntModel.load(tmp_path / "absent.nnm")


def test_rejects_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        IntModel.load(tmp_path)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"format": None}, "format"),
        ({"format": "something-else"}, "format"),
        ({"format_version": "2"}, "version"),
        ({"format_version": None}, "version"),
        ({"family": "transformer"}, "family"),
        ({"hidden": None}, "hidden"),
        ({"layers": "two"}, "hidden/layers"),
        ({"hidden": "17"}, "shape"),
        ({"layers": "1"}, None),  # a 2-layer file read as 1 layer: extra tensors are ignored
        ({"layers": "3"}, "shape"),
        ({"hidden": "0"}, None),
        ({"hidden": "-16"}, None),
        ({"hidden": "100000"}, None),
    ],
)
def test_rejects_wrong_metadata(tmp_path: Path, parts, change: dict, message: str | None) -> None:
    tensors, meta = parts
    meta = {k: v for k, v in meta.items() if change.get(k, v) is not None}
    meta |= {k: v for k, v in change.items() if v is not None}
    path = _write(tmp_path / "m.nnm", tensors, meta)
    if change == {"layers": "1"}:
        assert IntModel.load(path).layers == 1
        return
    with pytest.raises(ModelError, match=message):
        IntModel.load(path)


@pytest.mark.parametrize(
    "key, shape",
    [
        ("embed_table", (255, 48)),
        ("l0.h.w", (16, 48)),  # transposed
        ("l1.in.w", (48, 15)),
        ("head.b", (255,)),
        ("lut.exp", (EXP_SIZE - 1,)),
        ("lut.sigmoid", None),  # missing
        ("l1.h.m", None),
    ],
)
def test_rejects_wrong_shapes(tmp_path: Path, parts, key: str, shape) -> None:
    tensors, meta = parts
    tensors = dict(tensors)
    if shape is None:
        del tensors[key]
    else:
        tensors[key] = np.zeros(shape, dtype=tensors[key].dtype)
    with pytest.raises(ModelError, match=key.replace(".", r"\.")):
        IntModel.load(_write(tmp_path / "m.nnm", tensors, meta))


@pytest.mark.parametrize("value", [128, 200, -129, 32767])
@pytest.mark.parametrize("key", ["l0.h.w", "l1.in.w", "head.w"])
def test_rejects_weights_beyond_int8(tmp_path: Path, parts, key: str, value: int) -> None:
    """Weights outside int8 would break the exactness bound of the float32 products."""
    tensors, meta = parts
    tensors = dict(tensors)
    w = tensors[key].astype(np.int16)
    w[1, 2] = value
    tensors[key] = w
    with pytest.raises(ModelError, match=key.replace(".", r"\.")):
        IntModel.load(_write(tmp_path / "m.nnm", tensors, meta))


@pytest.mark.parametrize("key", ["head.w", "embed_table"])
def test_rejects_float_tensors(tmp_path: Path, parts, key: str) -> None:
    """Every tensor must hold integers (docs/DESIGN.md, section 2): a float tensor with fractional
    values would make the 'exact' products inexact, so loading must refuse it."""
    tensors, meta = parts
    tensors = dict(tensors)
    tensors[key] = tensors[key].astype(np.float32) + 0.5
    with pytest.raises(ModelError):
        IntModel.load(_write(tmp_path / "m.nnm", tensors, meta))


def test_rejects_zero_frequencies_in_exp_table(tmp_path: Path, parts) -> None:
    """The coder needs every frequency >= 1; a model whose exp table holds 0 must not load."""
    tensors, meta = parts
    tensors = dict(tensors)
    tensors["lut.exp"] = np.zeros_like(tensors["lut.exp"])
    with pytest.raises(ModelError):
        IntModel.load(_write(tmp_path / "m.nnm", tensors, meta))


# ----------------------------------------------------------------------------- frequencies
def _check_freqs(f: np.ndarray) -> None:
    assert f.shape[-1] == 256
    assert np.issubdtype(f.dtype, np.integer)
    assert f.min() >= 1
    assert f.max() <= 1 << FREQ_BITS
    assert (f.max(axis=-1) == 1 << FREQ_BITS).all()  # the most likely symbol
    assert (f.sum(axis=-1, dtype=np.int64) < 1 << 24).all()
    # Exact in float32, as handed to the coder.
    assert (f.astype(np.float32).astype(np.int64) == f).all()


@settings(max_examples=30, deadline=None)
@given(
    rows=st.lists(st.binary(min_size=12, max_size=12), min_size=1, max_size=6),
    layers=st.sampled_from([1, 2]),
)
def test_frequency_contract(rows: list[bytes], layers: int) -> None:
    """For any history: every frequency >= 1, the top one 2**16, the sum below 2**24."""
    model = memory_model(layers)
    seq = np.array([list(r) for r in rows], dtype=np.int64)
    _check_freqs(np.asarray(model.forward_sequence(seq)))


def test_frequency_contract_on_extremes(any_model: IntModel) -> None:
    """Sequences that drive the state to saturation (long runs of one byte)."""
    seqs = np.array([[b] * 200 for b in (0, 1, 32, 101, 127, 128, 200, 255)], dtype=np.int64)
    freqs = np.asarray(any_model.forward_sequence(seqs))
    _check_freqs(freqs)
    # The first step sees previous byte 0 and the empty state for every row.
    assert (freqs[:, 0] == freqs[0, 0]).all()


def test_step_shapes_and_initial_state(any_model: IntModel) -> None:
    state = any_model.initial_state(5)
    assert len(state) == any_model.layers
    assert all(np.asarray(h).shape == (5, 32) and not np.asarray(h).any() for h in state)
    freqs, new = any_model.step(np.array([0, 1, 2, 3, 255]), state)
    assert np.asarray(freqs).shape == (5, 256) and len(new) == any_model.layers
    for h in new:
        h = np.asarray(h)
        assert h.shape == (5, 32) and h.min() >= -127 and h.max() <= 127
        assert h.any()  # the state moves


def test_luts() -> None:
    """Monotone, in range, and the exp table never gives a zero frequency."""
    luts = build_luts()
    sig, tanh, exp = luts["lut.sigmoid"], luts["lut.tanh"], luts["lut.exp"]
    assert (np.diff(sig) >= 0).all() and sig.min() >= 0
    assert (np.diff(tanh) >= 0).all() and tanh.min() == -tanh.max()
    assert (np.diff(exp) <= 0).all() and exp[0] == 1 << FREQ_BITS and exp.min() >= 1
    assert len(exp) == EXP_SIZE
    assert all(np.issubdtype(t.dtype, np.integer) for t in luts.values())


def test_exported_tensors_are_integers(parts) -> None:
    tensors, _ = parts
    for k, t in tensors.items():
        assert np.issubdtype(t.dtype, np.integer), k
        if k.endswith(".w"):
            assert t.dtype == np.int8 and t.min() >= -127, k


# ----------------------------------------------------------------------------- lookup
def test_zoo_reads_the_environment_at_call_time(
    monkeypatch: pytest.MonkeyPatch, model_dir: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("NNCOMPRESS_MODELS", str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="not found"):
        zoo.find_path("two")
    monkeypatch.setenv("NNCOMPRESS_MODELS", str(model_dir))
    assert zoo.find_path("two") == model_dir / "two.nnm"
    assert zoo.find_path(None) == model_dir / "default.nnm"
    assert zoo.load_model().name == TINY_NAME
    assert model_dir / "two.nnm" in zoo.available_models()


def test_zoo_paths(model_dir: Path, tmp_path: Path) -> None:
    assert zoo.find_path(str(model_dir / "two.nnm")) == model_dir / "two.nnm"
    with pytest.raises(ModelError, match="not found"):
        zoo.find_path(str(tmp_path / "absent.nnm"))
    with pytest.raises(ModelError):
        zoo.make_ops("tpu")


def test_model_for_archive(
    monkeypatch: pytest.MonkeyPatch,
    model_dir: Path,
    tmp_path: Path,
    tiny_model: IntModel,
    other_model_path: Path,
) -> None:
    """Found by the hash prefix the archive records, whatever its file is called; a wrong
    --model is refused by name and hash; a missing one is reported with its hash; a shipped
    model is found by its registry number and checked against the whole hash."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.setenv("NNCOMPRESS_MODELS", str(model_dir))
    ref, prefix = zoo.model_ref(tiny_model)
    assert ref == fmt.MODEL_HASH and prefix == tiny_model.sha256[:8]
    got = zoo.model_for_archive(ref, prefix)
    assert got.sha256 == tiny_model.sha256
    with pytest.raises(ModelError) as e:
        zoo.model_for_archive(ref, prefix, spec=str(other_model_path))
    msg = str(e.value)
    assert prefix in msg and "tiny-other" in msg
    with pytest.raises(ModelError, match="sha256 0000000000000000.*not installed"):
        zoo.model_for_archive(ref, "00" * 8)
    # The test folder's default.nnm is not the shipped one: registry number 1 skips it.
    monkeypatch.setenv("NNCOMPRESS_MODELS", str(model_dir))
    shipped = Path(__file__).resolve().parents[1] / "models" / "default.nnm"
    if shipped.is_file():
        assert zoo.model_for_archive(1, "").sha256 == zoo.REGISTRY[1][1]
        assert zoo.model_ref(zoo.model_for_archive(1, "")) == (1, "")
    with pytest.raises(ModelError, match="unknown shipped model 14"):
        zoo.model_for_archive(14, "")


# ----------------------------------------------------------------------------- float vs int
@pytest.mark.parametrize("layers", [1, 2])
def test_float_vs_integer_gap(layers: int) -> None:
    """The integer export of a (randomly initialised) float GRU costs at most 0.02 bits per
    byte more than the float network on text, run as the coder runs it."""
    torch = pytest.importorskip("torch")
    from conftest import CORPUS, DATA

    from nncompress.train import FloatGRU, float_bpb, int_bpb, val_streams

    golden = DATA / "golden.txt"
    if golden.is_file():
        text = golden.read_bytes()
    elif (CORPUS / "canterbury" / "alice29.txt").is_file():
        text = (CORPUS / "canterbury" / "alice29.txt").read_bytes()[:8192]
    else:
        text = Path(__file__).read_bytes()
    streams = val_streams(np.frombuffer(text, dtype=np.uint8), 256, 8)
    assert len(streams) >= 4
    torch.manual_seed(layers)
    net = FloatGRU(64, layers, "cpu")
    tensors, meta = net.export({"name": "gap"})
    imodel = IntModel.from_tensors(tensors, meta)
    fb = float_bpb(net, streams, 64)
    ib = int_bpb(imodel, streams)
    assert abs(ib - fb) < 0.02, (fb, ib)


def test_levels_name_their_models() -> None:
    """``--max`` takes the shipped ``large`` model unless a model is named; the other
    levels take the default model."""
    assert zoo.model_spec(None, "max") == "large"
    assert zoo.model_spec("two", "max") == "two"
    assert zoo.model_spec(None, "default") is None
    assert zoo.model_spec(None, "fast") is None
    assert (Path(__file__).resolve().parents[1] / "models" / "large.nnm").is_file()
