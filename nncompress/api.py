"""In-memory convenience API: bytes in, bytes out (used by ``compare`` and by tests)."""

from __future__ import annotations

import io

from .engine import DEFAULT_BLOCK, compress_stream, decompress_stream
from .model import IntModel
from .zoo import load_model, model_for_archive, model_ref, model_spec

__all__ = ["compress_bytes", "decompress_bytes", "load_model", "model_spec"]


def compress_bytes(
    data: bytes,
    model: IntModel | None = None,
    block_size: int = DEFAULT_BLOCK,
    level: str = "default",
    int8_products: bool = False,
) -> bytes:
    """The ``.nnc`` archive of ``data`` (the level's model unless one is given).
    ``int8_products``: as for ``engine.compress_stream`` (for callers that own the
    process: it sets torch's thread count)."""
    out = io.BytesIO()
    model = model or load_model(model_spec(None, level))
    compress_stream(io.BytesIO(data), out, model, block_size, level, int8_products=int8_products)
    return out.getvalue()


def decompress_bytes(
    blob: bytes, model: IntModel | None = None, int8_products: bool = False
) -> bytes:
    """The original bytes of an archive. ``model`` if given must be the archive's model;
    otherwise it is found by the hash the archive records. ``int8_products``: as for
    ``compress_bytes``."""

    def lookup(header):
        if model is not None and model_ref(model) == (header.model, header.model_prefix):
            return model
        return model_for_archive(header.model, header.model_prefix)

    out = io.BytesIO()
    decompress_stream(io.BytesIO(blob), out, lookup, int8_products=int8_products)
    return out.getvalue()
