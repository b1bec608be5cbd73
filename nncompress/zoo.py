"""Finding models: by name, by path, and by the SHA-256 an archive records.

Search order for a model named NAME (file ``NAME.nnm``), first hit wins:
``$NNCOMPRESS_MODELS`` (colon-separated folders), ``$XDG_DATA_HOME/nncompress/models``
(default ``~/.local/share/nncompress/models``), the models shipped inside the package, and the
repository's ``models/`` folder (for a source checkout). The default model is ``default``;
``--max`` compresses with ``large`` unless a model is named (``levels.py``).

An archive names a shipped model by its number in ``REGISTRY`` (one part of a byte) and any
other model by the first 4 bytes of its file's SHA-256 (8 in the first archives of format
1); either way the model file found is checked against the hash before it is used.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .model import IntModel, ModelError, check_model_file
from .ops import Ops, TorchOps, numpy_ops

DEFAULT_MODEL = "default"
MODEL_SUFFIX = ".nnm"
#: Shipped models by number (part of the format: a number, once released, always means the
#: same file; a new model gets a new number, 1..14).
REGISTRY: dict[int, tuple[str, str]] = {
    1: ("default", "f54397debb4455525081923ba6b05b35cac6b4f27554b2204a0b2cd5d70e3e9e"),
    2: ("large", "d3a116d0ebeae2f0d8845d4bbda00223c2097a7457bb9d2dc71ff25e4c255948"),
}

_cache: dict[tuple[str, str], IntModel] = {}


def model_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("NNCOMPRESS_MODELS", "").split(os.pathsep) if p]
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    dirs.append(Path(data_home) / "nncompress" / "models")
    here = Path(__file__).resolve().parent
    dirs += [here / "models", here.parent / "models"]
    return dirs


def cuda_available() -> bool:
    """Whether CUDA can be used, without importing torch on machines with no NVIDIA driver
    (importing torch costs seconds, which a CLI called in a loop should not pay)."""
    if not (Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidiactl").exists()):
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def make_ops(device: str) -> Ops:
    """Array backend for a ``--device`` value: ``auto``, ``cpu`` (numpy), ``cuda[:N]``, or
    ``torch`` (torch on the CPU; the same results, for checking backends against each other)."""
    if device == "auto":
        device = "cuda" if cuda_available() else "cpu"
    if device == "cpu":
        return numpy_ops()
    if device == "torch":
        return TorchOps("cpu")
    if device.startswith("cuda"):
        try:
            import torch
        except ImportError:
            raise ModelError("--device cuda needs torch installed") from None
        if not torch.cuda.is_available():
            raise ModelError("--device cuda: no CUDA device is available")
        return TorchOps(device)
    raise ModelError(f"unknown device {device!r} (use auto, cpu, cuda or torch)")


def _load(path: Path, ops: Ops) -> IntModel:
    key = (str(path.resolve()), ops.name)
    if key not in _cache:
        m = IntModel.load(path)
        _cache[key] = m if ops.name == "numpy" else m.to(ops)
    return _cache[key]


def model_spec(spec: str | None, level: str) -> str | None:
    """The model to compress with at ``level``: the one named, else the level's own if it
    is not the default model, else None (the default model)."""
    from .levels import LEVELS

    own = LEVELS[level].model
    return spec or (None if own == DEFAULT_MODEL else own)


def find_path(spec: str | None) -> Path:
    """The file for a model name or path (None: the default model). A path (with the
    ``.nnm`` suffix or a folder in it, or an existing file) is checked and used; a name
    is looked up in the search folders."""
    spec = spec or DEFAULT_MODEL
    p = Path(spec)
    if p.suffix == MODEL_SUFFIX or os.sep in spec or p.is_file():
        check_model_file(p)
        return p
    for d in model_dirs():
        cand = d / (spec + MODEL_SUFFIX)
        if cand.is_file():
            return cand
    if os.path.lexists(spec):  # a folder or special file here, and no model of that name
        check_model_file(p)
    raise ModelError(f"model {spec!r} not found (searched {', '.join(map(str, model_dirs()))})")


def load_model(spec: str | None = None, device: str = "cpu") -> IntModel:
    """Load a model by name or path, laid out for ``device``."""
    return _load(find_path(spec), make_ops(device))


def available_models() -> list[Path]:
    """Every model file in the search folders (first of each name), in search order."""
    seen: dict[str, Path] = {}
    for d in model_dirs():
        if d.is_dir():
            for f in sorted(d.glob("*" + MODEL_SUFFIX)):
                seen.setdefault(f.name, f)
    return list(seen.values())


_hashes: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """The SHA-256 of a model file, remembered while the file is unchanged (a process that
    decodes many archives scans its model folders each time)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _hashes:
        check_model_file(path)
        _hashes[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _hashes[key]


def model_ref(model: IntModel) -> tuple[int, str]:
    """How an archive names ``model``: its registry number, or ``(MODEL_HASH, prefix)``."""
    from .format import MODEL_HASH, SHORT_HASH_PREFIX

    for number, (_, sha) in REGISTRY.items():
        if sha == model.sha256:
            return number, ""
    return MODEL_HASH, model.sha256[: 2 * SHORT_HASH_PREFIX]


def describe_ref(ref: int, prefix: str) -> str:
    """The model an archive names, for messages."""
    if ref in REGISTRY:
        name, sha = REGISTRY[ref]
        return f"model {name!r} (shipped model {ref}, sha256 {sha[:16]}...)"
    if prefix:
        return f"the model with sha256 {prefix}..."
    return f"unknown shipped model {ref} (made by a newer release?)"


def names(model: IntModel, ref: int, prefix: str) -> bool:
    """Whether an archive's model reference (registry number, or a hash prefix of 4 or 8
    bytes) names ``model``."""
    return _matches(model.sha256, ref, prefix)


def _matches(sha256: str, ref: int, prefix: str) -> bool:
    if ref in REGISTRY:
        return sha256 == REGISTRY[ref][1]
    return bool(prefix) and sha256.startswith(prefix)


def model_for_archive(
    ref: int, prefix: str, spec: str | None = None, device: str = "cpu"
) -> IntModel:
    """The model an archive names (``Header.model`` and ``model_prefix``). With ``spec``
    (``--model``) that model must match the archive's hash; otherwise the search folders
    are scanned, a shipped model's name first, then every model file by hash."""
    want = describe_ref(ref, prefix)
    if spec is not None:
        m = load_model(spec, device)
        if not _matches(m.sha256, ref, prefix):
            raise ModelError(
                f"archive needs {want}, but {spec} is {m.name} (sha256 {m.sha256[:16]}...)"
            )
        return m
    candidates = []
    if ref in REGISTRY:
        candidates = [d / (REGISTRY[ref][0] + MODEL_SUFFIX) for d in model_dirs()]
    found: dict[str, Path] = {}  # by SHA-256: a short prefix may match more than one model
    for path in candidates + available_models():
        try:
            if path.is_file() and _matches(sha := file_sha256(path), ref, prefix):
                if ref in REGISTRY:
                    return _load(path, make_ops(device))
                found.setdefault(sha, path)
        except ModelError:
            continue  # not a model: the search goes on (``models`` lists it as unusable)
    if len(found) == 1:
        return _load(next(iter(found.values())), make_ops(device))
    if len(found) > 1:
        names = ", ".join(str(p) for p in found.values())
        raise ModelError(
            f"archive needs {want}, and several models match ({names}); pass one with --model"
        )
    hint = "" if ref in REGISTRY else " (or the archive is damaged)"
    raise ModelError(f"archive needs {want}, which is not installed{hint}; pass it with --model")
