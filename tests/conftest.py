"""Shared fixtures: tiny random-weight integer models, sample data, the shipped model, corpora.

The random-weight models are built with numpy only (no torch) through ``export_gru`` and
``save_model``, exactly the path a trained model takes, so format, coder, determinism and CLI
tests run anywhere in seconds. Their output bias is set to a skewed distribution over a small
alphabet, and ``sample_text`` draws from that distribution, so the model really compresses
it: blocks of sample text take the model path, not just the stored/LZMA fallbacks.
"""

from __future__ import annotations

# ruff: noqa: E402
import os

# One BLAS thread unless the caller says otherwise: the test models are tiny, and OpenBLAS
# threads on [64, 32] products cost 10-20x more than they save on a busy 2-core machine.
# (Must happen before numpy is imported. The determinism tests set 1 and 2 explicitly.)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import importlib.util
import io
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# No per-example deadline: a loaded CI machine (or a training job beside the tests) makes
# timings jittery, and a deadline failure there says nothing about correctness.
settings.register_profile("nncompress", deadline=None, print_blob=True)
settings.load_profile("nncompress")

from dataclasses import replace

from nncompress import contexts
from nncompress import format as fmt
from nncompress.config import FINE_TEXT, Config
from nncompress.engine import compress_stream, decompress_stream
from nncompress.format import Header
from nncompress.model import IntModel, ModelError, export_gru, save_model
from nncompress.zoo import cuda_available, describe_ref, model_ref, names

# Where there is no GPU, Triton's kernels (``tritonmix``) run in its interpreter, which
# must be chosen before anything imports Triton (torch's compiler may, in other tests).
if not cuda_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parents[1]


def script(name: str):
    """``scripts/<name>.py`` as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


#: The golden archives' script: what they hold and how each was made.
make_golden = script("make_golden")
#: Its generator of computed data, which the tests use too: ``rand = numbers(seed)``,
#: ``rand(k)`` the next number below ``k`` (no library's, whose streams may change).
numbers = make_golden.numbers
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
DEFAULT_MODEL_PATH = REPO / "models" / "default.nnm"
DATA = Path(__file__).resolve().parent / "data"

#: Name recorded in archives made with the main test model (its file is ``default.nnm``).
TINY_NAME = "tiny-test"
#: The symbols the test models favour, most likely first.
ALPHABET = b" etaoinshrdlucmfwypvbgkjqxz"


def alphabet_probs() -> np.ndarray:
    """A Zipf-like distribution over ``ALPHABET`` (entropy about 4.3 bits)."""
    p = 1.0 / np.arange(1, len(ALPHABET) + 1)
    return p / p.sum()


def sample_text(n: int, seed: int = 0) -> bytes:
    """``n`` bytes drawn i.i.d. from ``alphabet_probs``: data the test models compress."""
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(ALPHABET), size=n, p=alphabet_probs())
    return np.frombuffer(ALPHABET, dtype=np.uint8)[idx].tobytes()


#: The configuration the compiled-stage tests compile (``test_torchmix``,
#: ``test_devicepool``): four contexts and two extra mixers keep the compiler's time
#: down, and one configuration and geometry for both let them share inductor's cache.
COMPILED_CONFIG = replace(FINE_TEXT, contexts=FINE_TEXT.contexts[:4], mixers=FINE_TEXT.mixers[:2])


def cxx_compiler() -> bool:
    """Whether a C++ compiler is there for inductor's CPU kernels."""
    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


def prose(n: int, seed: int) -> bytes:
    """Sentences of a small vocabulary, picked by a linear congruential sequence: text
    with words and repeats, which the mixed method codes (random letters go to LZMA)."""
    words = (
        b"the a of to and in that is for it with as was on be by this are from or at "
        b"model block segment stream coder table mixer weight context match byte bit "
        b"learns codes reads writes predicts every each one two many all"
    ).split()
    out, x = bytearray(), seed + 1
    while len(out) < n:
        x = (x * 1103515245 + 12345) % (1 << 31)
        out += words[(x >> 16) % len(words)] + (b".\n" if (x >> 8) % 11 == 0 else b" ")
    return bytes(out[:n])


def random_gru(
    hidden: int, layers: int, seed: int, name: str
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Integer model tensors from seeded random float weights (PyTorch GRU layout).

    Recurrent and input weights are large enough that the gates saturate and the hidden state
    matters (so batching/ordering bugs would show), the head is small next to a bias that
    encodes ``alphabet_probs``, so the model codes ``sample_text`` well below 8 bits/byte.
    """
    rng = np.random.default_rng(seed)
    h = hidden
    embed = rng.normal(0.0, 1.0, (256, h))
    w_ih = [rng.normal(0.0, 0.5, (3 * h, h)) for _ in range(layers)]
    w_hh = [rng.normal(0.0, 0.5, (3 * h, h)) for _ in range(layers)]
    b_ih = [rng.normal(0.0, 0.2, 3 * h) for _ in range(layers)]
    b_hh = [rng.normal(0.0, 0.2, 3 * h) for _ in range(layers)]
    head_w = rng.normal(0.0, 0.1, (256, h))
    head_b = np.full(256, np.log(alphabet_probs().min()) - 5.0)
    head_b[np.frombuffer(ALPHABET, dtype=np.uint8)] = np.log(alphabet_probs())
    return export_gru(embed, w_ih, w_hh, b_ih, b_hh, head_w, head_b, {"name": name})


def write_random_model(path: Path, hidden: int, layers: int, seed: int, name: str) -> str:
    tensors, meta = random_gru(hidden, layers, seed, name)
    return save_model(path, tensors, meta)


def compress(
    data: bytes,
    model: IntModel,
    block_size: int = 1 << 20,
    level: str = "default",
    frame_size: int = 16 << 20,
) -> bytes:
    out = io.BytesIO()
    compress_stream(io.BytesIO(data), out, model, block_size, level, frame_size=frame_size)
    return out.getvalue()


def lookup_for(*models: IntModel):
    """A ``get_model`` callback that knows only ``models`` (by hash), like a user's zoo."""

    def get(header: Header) -> IntModel:
        for m in models:
            if names(m, header.model, header.model_prefix):
                return m
        raise ModelError(f"archive needs {describe_ref(header.model, header.model_prefix)}")

    return get


def decompress(blob: bytes, *models: IntModel) -> bytes:
    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, lookup_for(*models))
    return out.getvalue()


def decompress_damaged(blob: bytes, *models: IntModel, threads: int = 1) -> tuple[bytes, str]:
    """Decode an archive that must fail: what was written before the ``FormatError``, and
    its message."""
    out = io.BytesIO()
    with pytest.raises(fmt.FormatError) as e:
        decompress_stream(io.BytesIO(blob), out, lookup_for(*models), threads=threads)
    return out.getvalue(), str(e.value)


_MEMORY_MODELS: dict[int, IntModel] = {}


def memory_model(layers: int = 1) -> IntModel:
    """The test models again, built in memory (same tensors as the ``tiny_model`` fixtures),
    for ``@given`` tests, where function-scoped fixtures do not mix."""
    if layers not in _MEMORY_MODELS:
        name, seed = (TINY_NAME, 1) if layers == 1 else ("tiny-two", 2)
        tensors, meta = random_gru(32, layers, seed=seed, name=name)
        _MEMORY_MODELS[layers] = IntModel.from_tensors(tensors, meta, sha256=f"{layers:064x}")
    return _MEMORY_MODELS[layers]


def header_size(model: IntModel, block_size: int = 1) -> int:
    """Bytes of the header of a stream coded with ``model`` (that names it)."""
    ref, prefix = model_ref(model)
    return len(Header(block_size, ref, prefix).pack())


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(autouse=True)
def _no_terminal_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output sized as a pipe's, whoever runs the tests: a shell that exports
    ``COLUMNS``, or pytest-xdist, whose workers are given ``COLUMNS=80`` (``compare``'s
    table takes its width from it, and folds its last columns at 80)."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder holding the test models; ``default.nnm`` is the 1-layer one, so with
    ``NNCOMPRESS_MODELS`` pointing here it is the CLI's default model, and ``large.nnm``
    the one ``--max`` takes."""
    d = tmp_path_factory.mktemp("models")
    write_random_model(d / "default.nnm", 32, 1, seed=1, name=TINY_NAME)
    write_random_model(d / "two.nnm", 32, 2, seed=2, name="tiny-two")
    write_random_model(d / "large.nnm", 48, 1, seed=3, name="tiny-large")
    return d


@pytest.fixture(scope="session")
def other_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model outside the search folders, for "wrong --model" tests."""
    p = tmp_path_factory.mktemp("other") / "other.nnm"
    write_random_model(p, 32, 1, seed=3, name="tiny-other")
    return p


@pytest.fixture(scope="session")
def tiny_model(model_dir: Path) -> IntModel:
    return IntModel.load(model_dir / "default.nnm")


@pytest.fixture(scope="session")
def tiny_model2(model_dir: Path) -> IntModel:
    """The 2-layer variant (exercises the layer-to-layer input projection)."""
    return IntModel.load(model_dir / "two.nnm")


@pytest.fixture(params=["one-layer", "two-layer"])
def any_model(request: pytest.FixtureRequest, tiny_model: IntModel, tiny_model2: IntModel):
    return tiny_model if request.param == "one-layer" else tiny_model2


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> int:
    """Make the coder cut blocks into 64-byte segments, so many-segment layouts (and their
    boundaries) are exercised with a few dozen model steps instead of thousands. The
    decoder takes the segment count from the block header, so this changes only the
    encoder's choice, exactly as a different ``segment_count`` would."""
    set_segment_bytes(monkeypatch, 64)
    return 64


def set_segment_bytes(mp: pytest.MonkeyPatch, n: int) -> None:
    """Segments of ``n`` bytes (the encoder writes, and this process's decoder checks, the
    patched rule)."""
    mp.setattr(fmt, "SEGMENT_BYTES", n)
    mp.setattr(fmt, "MIN_SEGMENT_BYTES", min(fmt.MIN_SEGMENT_BYTES, n))


def shrink_tables(mp: pytest.MonkeyPatch, bits: int = 10) -> None:
    """Shrink the mixed method's hash tables (2**21 slots per context and 2**22 match
    slots: about 340 MB allocated per stream, and copied once per block by the encoder's
    snapshot) to 2**bits slots. The arithmetic is unchanged -- only hash slots collide more
    -- and encoder and decoder in this process both see the small tables. For tests that
    code hundreds of tiny archives, where that fixed cost would dominate."""
    from nncompress import adaptive

    mp.setattr(adaptive, "table_bits", lambda block_size, config: (bits, bits))


@pytest.fixture
def small_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    shrink_tables(monkeypatch)


@pytest.fixture
def model_env(monkeypatch: pytest.MonkeyPatch, model_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Point model lookup at the test models only (and away from ~/.local/share), for
    in-process CLI runs; returns a matching environment for subprocesses."""
    xdg = tmp_path / "xdg"
    xdg.mkdir()
    monkeypatch.setenv("NNCOMPRESS_MODELS", str(model_dir))
    monkeypatch.setenv("XDG_DATA_HOME", str(xdg))
    # The CLI sets the BLAS thread variables (-T); restore them after each test.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, "1"))
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


@pytest.fixture(scope="session")
def default_model() -> IntModel:
    """The shipped model, ``models/default.nnm``."""
    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip(f"{DEFAULT_MODEL_PATH} is not there yet (the shipped model is committed later)")
    return IntModel.load(DEFAULT_MODEL_PATH)


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpora not found at {CORPUS}")
    return CORPUS


def cli_executable() -> str:
    """The ``nncompress`` console script of the running interpreter's environment."""
    exe = Path(sys.executable).parent / "nncompress"
    if exe.is_file():
        return str(exe)
    found = shutil.which("nncompress")
    if found is None:
        pytest.skip("the nncompress console script is not installed")
    return found


@pytest.fixture
def cli(model_env: dict[str, str]) -> Iterator[str]:
    yield cli_executable()


# ----------------------------------------------------------------------------- archives
def walk_blocks(blob: bytes) -> list[tuple[int, fmt.BlockHeader, int]]:
    """(offset, header, size) of every block of every stream in a well-formed ``blob``,
    read with the format's own readers."""
    f = io.BytesIO(blob)
    out = []
    while f.tell() < len(blob):
        header, _ = fmt.read_header(f)
        end = fmt.END_NONE if header.block_size else fmt.END_STREAM
        while end not in (fmt.END_STREAM, fmt.END_INDEX):
            at = f.tell()
            bh, _ = fmt.read_block_header(f, header)
            f.seek(bh.coded_len + fmt.CHECK_SIZE, os.SEEK_CUR)
            out.append((at, bh, f.tell() - at))
            end = bh.end
        if end == fmt.END_INDEX:
            fmt.read_index(f)
    return out


def decode_or_damage(blob: bytes, *models: IntModel) -> tuple[bytes, Exception | None]:
    """What the decoder writes, and the damage error it raised (None if it succeeded)."""
    out = io.BytesIO()
    try:
        decompress_stream(io.BytesIO(blob), out, lookup_for(*models))
    except (fmt.FormatError, ModelError) as e:
        return out.getvalue(), e
    return out.getvalue(), None


#: A configuration of the mixed method that is not a preset.
CUSTOM = Config(
    contexts=(1, 2, 3, 4, contexts.WORD, contexts.COLUMN),
    mix_shifts=(13, 14, 15),
    final_shift=15,
    apm_rate=5,
    table_bits=16,
    match_bits=16,
    network_weight=1 << 15,
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Where the suite ran the module of loops built ahead of time, every call of an entry
    loop must have been one it was built for: a call handed to numba instead means the
    warm-up (``nncompress/warmup.py``) misses a path that users take, who would then pay
    numba's memory and compile time. Fails the run, naming the loops. (Tests that call a
    loop that is not an entry, such as ``contexts.context_hash``, run it in numba.)"""
    from nncompress import jit

    if jit.fallbacks:
        names = ", ".join(sorted(set(jit.fallbacks)))
        session.config.get_terminal_writer().line(
            f"\nnncompress: the built module had no export for calls of {names} "
            "(add the path to nncompress/warmup.py)",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
