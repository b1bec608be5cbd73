"""nncompress: lossless compression with a pretrained, integer-exact neural network.

The Python API (``nncompress.api``) in the shape of ``lzma``: ``compress``, ``decompress``,
``open`` / ``NNCFile``, ``Compressor``, ``Decompressor`` and the ``NNCError`` family.
``import nncompress`` stays light on purpose (the command line's ``--help`` and
``--version`` must not pay for numpy or torch): the API's names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import NNCError

__version__ = "0.1.0"

_API = (
    "compress",
    "decompress",
    "open",
    "NNCFile",
    "Compressor",
    "Decompressor",
    "FormatError",
    "TruncatedError",
    "ModelError",
    "WorkerError",
)
__all__ = ["NNCError", "register_fsspec", *_API]

if TYPE_CHECKING:
    from .api import (  # noqa: F401
        Compressor,
        Decompressor,
        FormatError,
        ModelError,
        NNCFile,
        TruncatedError,
        WorkerError,
        compress,
        decompress,
        open,
    )


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'nncompress' has no attribute {name!r}")


def register_fsspec() -> None:
    """Make ``fsspec`` (and what is built on it: pandas through file objects, Dask) read
    and write ``.nnc``: ``fsspec.open("x.csv.nnc", compression="infer")`` or
    ``compression="nnc"``. fsspec finds compressions only by registration, not by entry
    points: call this once (``import nncompress; nncompress.register_fsspec()``)."""
    from fsspec.compression import register_compression

    from .api import NNCFile

    register_compression("nnc", NNCFile, "nnc", force=True)
