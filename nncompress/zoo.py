"""Finding models: by name, by path, and by the SHA-256 an archive records.

Search order for a model named NAME (file ``NAME.nnm``), first hit wins:
``$NNCOMPRESS_MODELS`` (colon-separated folders), ``$XDG_DATA_HOME/nncompress/models``
(default ``~/.local/share/nncompress/models``), the models shipped inside the package, and the
repository's ``models/`` folder (for a source checkout). The default model is ``default``;
``--max`` compresses with ``large`` unless a model is named.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .model import IntModel, ModelError
from .ops import Ops, TorchOps, numpy_ops

DEFAULT_MODEL = "default"
#: The model a compression level uses when none is named. ``max`` trades speed for size
#: throughout, so it takes the larger network: it runs at 1/3 of the default's speed with
#: float products and would pace the default level's coder, but at ``--max``'s few
#: segments the per-byte coding work, not the network, sets the pace.
LEVEL_MODELS = {"max": "large"}
MODEL_SUFFIX = ".nnm"

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
    """The model to compress with at ``level``: the one named, else the level's own, else
    None (the default model)."""
    return spec or LEVEL_MODELS.get(level)


def find_path(spec: str | None) -> Path:
    """The file for a model name or path (None: the default model)."""
    spec = spec or DEFAULT_MODEL
    p = Path(spec)
    if p.suffix == MODEL_SUFFIX or os.sep in spec or p.is_file():
        if p.is_file():
            return p
        raise ModelError(f"model file {spec} not found")
    for d in model_dirs():
        cand = d / (spec + MODEL_SUFFIX)
        if cand.is_file():
            return cand
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


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_for_archive(
    name: str, sha256: str, spec: str | None = None, device: str = "cpu"
) -> IntModel:
    """The model an archive was made with. With ``spec`` (``--model``) that model must match
    the archive's hash; otherwise the search folders are scanned, name first, then by hash."""
    want = f"{name} (sha256 {sha256[:16]}...)"
    if spec is not None:
        m = load_model(spec, device)
        if m.sha256 != sha256:
            raise ModelError(
                f"archive needs model {want}, but {spec} is {m.name} (sha256 {m.sha256[:16]}...)"
            )
        return m
    candidates = [d / (name + MODEL_SUFFIX) for d in model_dirs()] + available_models()
    for path in candidates:
        if path.is_file() and file_sha256(path) == sha256:
            return _load(path, make_ops(device))
    raise ModelError(f"archive needs model {want}, which is not installed; pass it with --model")
