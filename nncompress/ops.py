"""The handful of array operations the integer model needs, on numpy or on torch.

The model's arithmetic is written once against this interface. numpy is the CPU default
(it imports in a fraction of the time torch takes, which matters for a CLI); torch runs the
same integer arithmetic on CUDA. Every operation is exact on integers, so all backends give
identical results.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Ops:
    """numpy implementation; ``TorchOps`` overrides what differs."""

    name = "numpy"

    def asarray(self, a: np.ndarray) -> Any:
        return np.asarray(a)

    def to_numpy(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def zeros_int(self, shape: tuple[int, ...]) -> Any:
        return np.zeros(shape, dtype=np.int32)

    def exact_matmul(self, x: Any, w_t: Any) -> Any:
        """``x @ w_t`` for small-integer x and int8-valued float32 ``w_t``.

        Exact because every partial sum stays below 2**24 in magnitude (callers keep
        |x| <= 127 and K <= 1024), so float32 accumulation in any order is exact.
        """
        return (x.astype(np.float32) @ w_t).astype(np.int32)

    def take(self, table: Any, idx: Any) -> Any:
        return np.take(table, idx)

    def take_rows(self, table: Any, idx: Any) -> Any:
        return table[idx]

    def clip(self, a: Any, lo: int, hi: int) -> Any:
        return np.clip(a, lo, hi)

    def rowmax(self, a: Any) -> Any:
        return a.max(axis=1, keepdims=True)

    def shape(self, a: Any) -> tuple[int, ...]:
        return tuple(a.shape)

    def reshape(self, a: Any, shape: tuple[int, ...]) -> Any:
        return a.reshape(shape)

    def stack(self, arrays: list[Any], axis: int) -> Any:
        return np.stack(arrays, axis)

    def concat_cols(self, a: Any, b: Any) -> Any:
        return np.concatenate([a, b], axis=1)


class TorchOps(Ops):
    """The same operations on torch tensors, on any torch device."""

    def __init__(self, device: str = "cpu") -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.name = f"torch-{self.device}"
        if self.device.type == "cuda":
            # Exactness needs true float32 accumulation, never TF32 or reduced precision.
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
            torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False

    def asarray(self, a: np.ndarray) -> Any:
        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def to_numpy(self, a: Any) -> np.ndarray:
        return a.cpu().numpy() if hasattr(a, "cpu") else np.asarray(a)

    def zeros_int(self, shape: tuple[int, ...]) -> Any:
        return self.torch.zeros(shape, dtype=self.torch.int32, device=self.device)

    def exact_matmul(self, x: Any, w_t: Any) -> Any:
        return (x.to(self.torch.float32) @ w_t).to(self.torch.int32)

    def take(self, table: Any, idx: Any) -> Any:
        return table[idx]

    def clip(self, a: Any, lo: int, hi: int) -> Any:
        return self.torch.clamp(a, lo, hi)

    def rowmax(self, a: Any) -> Any:
        return a.amax(dim=1, keepdim=True)

    def stack(self, arrays: list[Any], axis: int) -> Any:
        return self.torch.stack(arrays, axis)

    def concat_cols(self, a: Any, b: Any) -> Any:
        return self.torch.cat([a, b], dim=1)


def numpy_ops() -> Ops:
    return Ops()
