"""The integer-exact byte model: what the coder asks for the next byte's frequencies.

A model file (``.nnm``) is a safetensors file: integer tensors plus string metadata, never
pickled code. Its identity is the SHA-256 of the file's bytes; archives record it.

Every quantity on the coding path is an integer (docs/DESIGN.md, section 2):

* the hidden state is int8 (Q7, value/128), weights are int8 with one integer rescale
  multiplier (7 bits) and shift per output row;
* matrix products run on float32 carriers with every partial sum below 2**24, hence exact
  in any summation order, on any BLAS, CPU or GPU;
* rescaling is ``(acc * m + 2**(s-1)) >> s`` in int32, every intermediate bounded below
  2**31 by construction; sigmoid, tanh and exp are lookup tables stored in the model file.

So the frequencies are bit-identical whatever the thread count, batch shape or device, and
whether the sequence is evaluated step by step (``step``) or layer by layer over a whole
sequence at once (``forward_sequence``).

The network is a GRU: an embedding of the previous byte (folded into a 256-row table of
pre-activations), ``layers`` GRU layers, and a linear head giving 256 logits.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NNCError
from .jit import entry, jit
from .ops import Ops, numpy_ops

MODEL_FORMAT = "nncompress-model"
MODEL_FORMAT_VERSION = "1"
#: Version 2 is version 1 with a prime: bytes of the user's data (a uint8 tensor "prime")
#: that every frame's statistics learn before its first mixed block (docs/FORMAT.md,
#: "Primed models"). A reader that knows only version 1 refuses such a model by name
#: instead of decoding with statistics its writer did not have.
PRIMED_FORMAT_VERSION = "2"
#: Version 3 is version 2 whose prime also sizes the statistics: a frame's tables are made
#: as for a block of the stream's block size or a quarter of the prime, the larger
#: (``adaptive.StreamState.make_room_for_prime``). Under version 2 a record-sized stream
#: learned a prime of 64 KiB into 4,096 slots per context, where it mostly overwrote
#: itself. ``train`` writes version 3; version 2 models decode as they always did.
PRIME_TABLES_FORMAT_VERSION = "3"
PRIMED_VERSIONS = (PRIMED_FORMAT_VERSION, PRIME_TABLES_FORMAT_VERSION)
#: The largest prime a model may carry (it is coded before a frame's first mixed block).
MAX_PRIME = 1 << 20

#: Fixed-point scales of the integer pipeline.
PRE_BITS = 10  # gate pre-activations: Q10 (value * 1024)
GATE_BITS = 14  # sigmoid / tanh outputs: Q14
STATE_BITS = 7  # hidden state: Q7 in int8 [-127, 127]
LOGIT_BITS = 8  # output logits: Q8 nats
MULT_MAX = 127  # row multipliers are 7-bit: |acc| * m < 2**30 for hidden <= 512
MAX_HIDDEN = 512
GH_CLAMP = (1 << 15) - 1  # bounds r * gh_n below 2**29
LUT_RANGE = 8  # sigmoid / tanh tables cover pre-activations in [-8, 8)
LUT_SIZE = 2 * LUT_RANGE << PRE_BITS  # 16384 entries
EXP_RANGE = 16  # exp table covers logit gaps of 0 .. 16 nats
EXP_SIZE = (EXP_RANGE << LOGIT_BITS) + 1
FREQ_BITS = 16  # the most likely symbol gets 2**16, every symbol at least 1
#: The CPU step's float32 products take a batch of more than one row padded to a multiple
#: of this many rows (``IntModel._product``).
PRODUCT_ROWS = 4


class ModelError(NNCError):
    """A model file that cannot be used (missing, malformed, wrong kind)."""


@functools.cache
def int8_dot_products() -> bool:
    """Whether this CPU has int8 dot-product instructions, which make int8 products
    faster than float32 ones: AVX-512 VNNI or AVX-VNNI on x86, the dot-product extension
    on ARM (Linux reports them in /proc/cpuinfo; elsewhere: assumed absent, so the float32
    products, which are fast everywhere, are used)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set()
            for line in f:
                if line.startswith(("flags", "Features")):
                    flags.update(line.split(":", 1)[1].split())
    except OSError:
        return False
    return bool(flags & {"avx512_vnni", "avx_vnni", "asimddp"})


#: The largest model file a reader opens (the biggest network the format allows, 8 layers
#: of 512, is about 20 MB of int8 weights): a file named .nnm is checked against this and
#: its header before it is read whole or hashed.
MAX_MODEL_FILE = 256 << 20


def check_model_file(path: Path) -> None:
    """Refuse what cannot be a model before reading it whole: anything but a regular file,
    a file larger than MAX_MODEL_FILE, one without a safetensors header (an 8-byte length,
    then JSON)."""
    import stat

    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelError(f"model file {path} not found") from None
    except OSError as e:
        raise ModelError(f"cannot read model {path}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelError(f"model {path} is a directory, not a model file")
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"model {path} is not a regular file")
    if st.st_size > MAX_MODEL_FILE:
        raise ModelError(f"{path}: not a nncompress model ({st.st_size:,} bytes, too large)")
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as e:
        raise ModelError(f"cannot read model {path}: {e.strerror or e}") from None
    n = int.from_bytes(head[:8], "little") if len(head) == 9 else 0
    if not (2 <= n <= st.st_size - 8 and head[8:9] == b"{"):
        raise ModelError(f"{path}: not a nncompress model (no safetensors header)")


@dataclass
class IntModel:
    """An integer GRU byte model, ready to code with.

    ``tensors`` holds the integer tensors as numpy arrays; ``ops`` says where they live
    (numpy on the CPU, or torch on CPU/CUDA) -- the arithmetic is the same everywhere.
    """

    name: str
    sha256: str
    hidden: int
    layers: int
    tensors: dict[str, Any]
    meta: dict[str, str] = field(default_factory=dict)
    ops: Ops = field(default_factory=numpy_ops)
    path: Path | None = None
    #: Data the adaptive statistics learn before a frame's first mixed block (format 2
    #: model files; empty: none). See ``adaptive.StreamState.prime``.
    prime: bytes = b""
    #: Exact int8 products through torch (``use_int8_products``), or None: float32 ones.
    _int8: _Int8Products | None = field(default=None, repr=False, compare=False)

    # ----------------------------------------------------------------- loading / moving
    @classmethod
    def load(cls, path: str | Path) -> IntModel:
        """Load a ``.nnm`` file (safetensors, no code) and check that it is complete."""
        from safetensors import SafetensorError
        from safetensors.numpy import load

        path = Path(path)
        check_model_file(path)
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ModelError(f"cannot read model {path}: {e.strerror or e}") from None
        try:
            tensors = load(raw)
            meta = _read_metadata(raw)
        except (SafetensorError, ValueError) as e:
            raise ModelError(f"{path}: not a nncompress model ({e})") from None
        return cls.from_tensors(tensors, meta, sha256=hashlib.sha256(raw).hexdigest(), path=path)

    @classmethod
    def from_tensors(
        cls,
        tensors: dict[str, np.ndarray],
        meta: dict[str, str],
        sha256: str = "",
        path: Path | None = None,
    ) -> IntModel:
        if meta.get("format") != MODEL_FORMAT:
            raise ModelError("not a nncompress model (metadata 'format' missing)")
        version = meta.get("format_version")
        if version not in (MODEL_FORMAT_VERSION, *PRIMED_VERSIONS):
            raise ModelError(f"unsupported model format version {version!r}")
        prime = tensors.get("prime")
        if (prime is not None) != (version in PRIMED_VERSIONS):
            raise ModelError(
                f"model format version {version} with{'out' * (prime is None)} a prime"
            )
        if prime is not None and (
            prime.dtype != np.uint8 or prime.ndim != 1 or not 0 < len(prime) <= MAX_PRIME
        ):
            raise ModelError(f"model prime must be 1 to {MAX_PRIME} bytes (uint8)")
        if meta.get("family") != "gru":
            raise ModelError(f"unknown model family {meta.get('family')!r}")
        try:
            hidden, layers = int(meta["hidden"]), int(meta["layers"])
        except (KeyError, ValueError):
            raise ModelError("model metadata lacks hidden/layers") from None
        if not (0 < hidden <= MAX_HIDDEN and 0 < layers <= 8):
            raise ModelError(f"unsupported model size {layers}x{hidden} (hidden <= {MAX_HIDDEN})")
        model = cls(meta.get("name", "unnamed"), sha256, hidden, layers, {}, meta, path=path)
        expected = model.tensor_shapes()
        for key, shape in expected.items():
            t = tensors.get(key)
            if t is None or tuple(t.shape) != shape:
                got = None if t is None else tuple(t.shape)
                raise ModelError(f"model tensor {key}: expected shape {shape}, got {got}")
        # Bounds that make every product exact and every int32 intermediate overflow-free.
        for k in expected:
            t, kind = tensors[k], k.rsplit(".", 1)[-1]
            if not np.issubdtype(t.dtype, np.integer):
                raise ModelError(f"model tensor {k} is {t.dtype}, not integer")
            lo, hi = {"w": (-127, 127), "m": (0, MULT_MAX), "s": (1, 30)}.get(kind, (None, None))
            if lo is not None and (int(t.min()) < lo or int(t.max()) > hi):
                raise ModelError(f"model tensor {k} outside [{lo}, {hi}]")
            if k.startswith("lut."):
                lo, hi = (
                    (1, 1 << FREQ_BITS) if k == "lut.exp" else (-(1 << GATE_BITS), 1 << GATE_BITS)
                )
                if int(t.min()) < lo or int(t.max()) > hi:
                    raise ModelError(f"model table {k} outside [{lo}, {hi}]")
            if kind in ("b", "table") or k == "embed_table":
                if int(np.abs(t).max()) >= 1 << 24:
                    raise ModelError(f"model tensor {k} too large")
        model.tensors = {k: np.ascontiguousarray(tensors[k]) for k in expected}
        model.prime = b"" if prime is None else prime.tobytes()
        model._prepare()
        return model

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every tensor a model of this size must have, with its shape."""
        h = self.hidden
        shapes: dict[str, tuple[int, ...]] = {"embed_table": (256, 3 * h)}
        for i in range(self.layers):
            if i > 0:
                shapes |= _linear_shapes(f"l{i}.in", 3 * h, h)
            shapes |= _linear_shapes(f"l{i}.h", 3 * h, h)
        shapes |= _linear_shapes("head", 256, h)
        shapes |= {"lut.sigmoid": (LUT_SIZE,), "lut.tanh": (LUT_SIZE,), "lut.exp": (EXP_SIZE,)}
        return shapes

    def _prepare(self) -> None:
        """Lay out the tensors for ``self.ops``: weights as float32 carriers (transposed for
        ``x @ w``), everything else int32, plus each row's rounding offset ``2**(s-1)``."""
        o = self.ops
        self._t: dict[str, Any] = {}
        for k, v in self.tensors.items():
            if k.endswith(".w"):
                self._t[k] = o.asarray(np.ascontiguousarray(v.astype(np.float32).T))
            else:
                self._t[k] = o.asarray(v.astype(np.int32))
            if k.endswith(".s"):
                self._t[k[:-2] + ".r"] = o.asarray((1 << (v.astype(np.int32) - 1)).astype(np.int32))

    def to(self, ops: Ops) -> IntModel:
        """The same model with its tensors laid out for another backend/device."""
        m = IntModel(
            self.name,
            self.sha256,
            self.hidden,
            self.layers,
            self.tensors,
            self.meta,
            ops,
            self.path,
            self.prime,
        )
        m._prepare()
        return m

    @property
    def prime_sizes_tables(self) -> bool:
        """Whether the prime also sizes the statistics' tables (model format version 3)."""
        return self.meta.get("format_version") == PRIME_TABLES_FORMAT_VERSION

    @property
    def short_id(self) -> str:
        return f"{self.name}@{self.sha256[:12]}"

    @property
    def parameters(self) -> int:
        return sum(int(np.prod(s)) for k, s in self.tensor_shapes().items() if k.endswith(".w"))

    # ----------------------------------------------------------------- inference
    def initial_state(self, batch: int) -> list[Any]:
        """The empty state every segment starts from: all-zero hidden vectors."""
        return [self.ops.zeros_int((batch, self.hidden)) for _ in range(self.layers)]

    def _linear(self, x: Any, key: str) -> Any:
        """Exact integer ``x @ w.T`` rescaled by the per-row multiplier, plus bias."""
        o, t = self.ops, self._t
        acc = o.exact_matmul(x, t[key + ".w"])
        return ((acc * t[key + ".m"] + t[key + ".r"]) >> t[key + ".s"]) + t[key + ".b"]

    def _gru_cell(self, gi: Any, h: Any, layer: int) -> Any:
        """One GRU update on integer tensors; ``gi``, ``gh`` are Q10 pre-activations."""
        o, t, n = self.ops, self._t, self.hidden
        gh = self._linear(h, f"l{layer}.h")
        lo, hi = -(LUT_RANGE << PRE_BITS), (LUT_RANGE << PRE_BITS) - 1
        off = LUT_RANGE << PRE_BITS
        rz = o.take(t["lut.sigmoid"], o.clip(gi[:, : 2 * n] + gh[:, : 2 * n], lo, hi) + off)
        r, z = rz[:, :n], rz[:, n:]
        pre_n = gi[:, 2 * n :] + ((r * o.clip(gh[:, 2 * n :], -GH_CLAMP, GH_CLAMP)) >> GATE_BITS)
        cand = o.take(t["lut.tanh"], o.clip(pre_n, lo, hi) + off)
        shift = GATE_BITS - STATE_BITS
        h_new = cand + ((z * ((h << shift) - cand)) >> GATE_BITS)
        return o.clip((h_new + (1 << (shift - 1))) >> shift, -127, 127)

    def _freqs(self, h_top: Any) -> Any:
        """Integer frequencies from the top hidden state: exp table over logit gaps."""
        o, t = self.ops, self._t
        logits = self._linear(h_top, "head")
        gap = o.clip(o.rowmax(logits) - logits, 0, EXP_SIZE - 1)
        return o.take(t["lut.exp"], gap)

    def step(self, prev: Any, state: list[Any]) -> tuple[Any, list[Any]]:
        """Advance every stream by one byte.

        ``prev``: [S] integer previous bytes; ``state``: per-layer [S, H] int32 hidden states.
        Returns [S, 256] int32 frequencies for the next byte (each >= 1) and the new state.
        """
        if self.ops.name == "numpy":
            return self._step_compiled(np.asarray(prev, dtype=np.int64), state)
        return self._step_arrays(self.ops.take_rows(self._t["embed_table"], prev), state)

    def _step_arrays(self, x: Any, state: list[Any]) -> tuple[Any, list[Any]]:
        """``step`` by array operations from the embedded input ``x`` ([S, 3H]): what every
        backend but the compiled CPU step runs."""
        new_state = []
        for i, h in enumerate(state):
            gi = x if i == 0 else self._linear(x, f"l{i}.in")
            x = self._gru_cell(gi, h, i)
            new_state.append(x)
        return self._freqs(x), new_state

    def use_int8_products(self) -> bool:
        """Compute the CPU step's matrix products as int8 x int8 -> int32 with torch
        (``torch._int_mm``) instead of on float32 carriers: the same integers, four times
        as fast on a core with int8 dot-product instructions (``scripts/gemm_bench.py``).
        Each batch size is checked against the exact product before it is used (worst-case
        values included, which a kernel summing pairs of products in 16 bits would
        saturate); where the check fails the float32 product is used. Returns whether torch
        was available and the CPU has int8 dot-product instructions (``int8_dot_products``:
        without them torch's int8 products ran at 0.6 GOP/s against numpy float32's 27 on
        an AVX2-only EPYC, ten times slower). Importing torch costs about a second, so
        callers enable this for large inputs only."""
        if self.ops.name != "numpy" or not int8_dot_products():
            return False
        if self._int8 is None:
            try:
                self._int8 = _Int8Products(self.tensors)
            except ImportError:
                return False
        return True

    def _product(self, x: np.ndarray, key: str) -> np.ndarray:
        """``x @ w`` for the weights ``key``: int8 ``x`` through the int8 products when
        they are exact for this batch size, else on float32 carriers."""
        if x.dtype == np.int8:
            assert self._int8 is not None
            out = self._int8(x, key)
            if out is not None:
                return out
            x = x.astype(np.float32)
        rows = len(x)
        if rows > 1 and rows % PRODUCT_ROWS:
            # OpenBLAS multiplies a batch whose rows are a multiple of 4 faster than one row
            # fewer (``scripts/step_profile.py --segments 47`` on an AVX2 EPYC: the default
            # model's products for 47 rows 343 us padded, 382 us as they are); the padding
            # rows are zeros, and each row's product is its own. One row stays one: a
            # matrix-vector product, what one-segment blocks take (``--model large
            # --segments 1 4``: 74 us for one row, 255 us for four).
            padded = np.zeros((rows + PRODUCT_ROWS - rows % PRODUCT_ROWS, x.shape[1]), x.dtype)
            padded[:rows] = x
            return (padded @ self._t[key + ".w"])[:rows]
        return x @ self._t[key + ".w"]

    def _step_compiled(self, prev: np.ndarray, state: list[Any]) -> tuple[Any, list[Any]]:
        """``step`` on the CPU: the same arithmetic, with each layer's elementwise work fused
        into one compiled loop after its product (in numpy, that work was a dozen passes
        over [S, 3H] arrays and cost as much as the products)."""
        t = self._t
        src, rows = t["embed_table"], prev
        new_state = []
        xf = None
        carrier = np.int8 if self._int8 is not None else np.float32
        for i, h in enumerate(state):
            if i > 0:
                key = f"l{i}.in"
                src = np.empty((len(prev), 3 * self.hidden), dtype=np.int64)
                _rescale(
                    self._product(xf, key),
                    t[key + ".m"],
                    t[key + ".r"],
                    t[key + ".s"],
                    t[key + ".b"],
                    src,
                )
                rows = np.arange(len(prev))
            key = f"l{i}.h"
            acc = self._product(np.asarray(h).astype(carrier), key)
            h_new = np.empty(h.shape, dtype=np.int32)
            xf = np.empty(h.shape, dtype=carrier)
            _gru_kernel(
                src,
                rows,
                acc,
                t[key + ".m"],
                t[key + ".r"],
                t[key + ".s"],
                t[key + ".b"],
                h,
                t["lut.sigmoid"],
                t["lut.tanh"],
                h_new,
                xf,
            )
            new_state.append(h_new)
        freqs = np.empty((len(prev), 256), dtype=np.int32)
        _freqs_kernel(
            self._product(xf, "head"),
            t["head.m"],
            t["head.r"],
            t["head.s"],
            t["head.b"],
            t["lut.exp"],
            freqs,
        )
        return freqs, new_state

    def forward_sequence(self, seq: Any) -> Any:
        """Frequencies for every position of [S, T] byte sequences, computed layer by layer:
        each layer's input projection for all T steps in one product, then the recurrence.

        Position t predicts seq[:, t] from seq[:, :t] (position 0 from the start byte 0).
        Returns [S, T, 256]; equal, bit for bit, to T calls of ``step``.
        """
        o = self.ops
        s, steps = o.shape(seq)
        prev = o.concat_cols(o.zeros_int((s, 1)), seq[:, :-1])
        x = o.take_rows(self._t["embed_table"], o.reshape(prev, (-1,)))  # [S*T, 3H]
        for i in range(self.layers):
            gi = x if i == 0 else self._linear(x, f"l{i}.in")
            gi = o.reshape(gi, (s, steps, -1))
            h = o.zeros_int((s, self.hidden))
            outs = []
            for t in range(steps):
                h = self._gru_cell(gi[:, t], h, i)
                outs.append(h)
            x = o.reshape(o.stack(outs, 1), (s * steps, self.hidden))
        return o.reshape(self._freqs(x), (s, steps, 256))


class _Int8Products:
    """``x @ w`` for int8 ``x`` and a model's int8 weights, through ``torch._int_mm``
    (int32 accumulation: exact for any int8 values, K <= 2**16). A kernel that sums pairs
    of u8 x s8 products in 16 bits (AVX2's vpmaddubsw, which some int8 GEMMs use) would
    saturate on large values, so each batch size is checked once against the exact
    product, on the worst case and on random values, before it is trusted."""

    def __init__(self, tensors: dict[str, np.ndarray]) -> None:
        import torch

        self.torch = torch
        # [N, K] int8 as stored, seen as [K, N]: the layout torch's kernel takes fastest.
        self.w = {
            k[:-2]: torch.from_numpy(np.ascontiguousarray(v.astype(np.int8))).t()
            for k, v in tensors.items()
            if k.endswith(".w")
        }
        self.exact: dict[int, bool] = {}

    def __call__(self, x: np.ndarray, key: str) -> np.ndarray | None:
        rows = len(x)
        if rows not in self.exact:
            self.exact[rows] = self._check(rows)
        if not self.exact[rows]:
            return None
        return self.torch._int_mm(self.torch.from_numpy(x), self.w[key]).numpy()

    def _check(self, rows: int) -> bool:
        torch = self.torch
        rng = np.random.default_rng(rows)
        try:
            for w in self.w.values():
                k, n = w.shape
                tops = [np.full((n, k), 127, dtype=np.int8), rng.integers(-127, 128, (n, k))]
                for w_np in (*tops, w.t().numpy()):
                    w_np = np.ascontiguousarray(w_np, dtype=np.int8)
                    for x in (
                        np.full((rows, k), 127, dtype=np.int8),
                        np.full((rows, k), -127, dtype=np.int8),
                        rng.integers(-127, 128, (rows, k)).astype(np.int8),
                    ):
                        got = torch._int_mm(torch.from_numpy(x), torch.from_numpy(w_np).t())
                        want = x.astype(np.int64) @ w_np.T.astype(np.int64)
                        if not np.array_equal(got.numpy(), want):
                            return False
        except RuntimeError:  # a shape or build this torch cannot multiply
            return False
        return True


# ------------------------------------------------------------------ compiled CPU kernels
# The loops below compute exactly what _linear, _gru_cell and _freqs compute with array
# operations, one row at a time, in 32-bit integers: every intermediate is below 2**31 in
# magnitude (|acc| * m < 2**30 by MULT_MAX, plus a rounding offset of at most 2**29; biases
# and input tables below 2**24; gates times clamped values below 2**29), so the results
# are those of unbounded integers. Python's integer semantics (floor shifts) are numba's
# too. numba widens int32 arithmetic to 64 bits unless each result is cast back, and in
# 64 bits the loops do not vectorise (AVX2 has no 64-bit multiply or arithmetic shift by
# a vector): the casts made the recurrent layer's loop twice as fast.
_LO, _HI, _OFF = -(LUT_RANGE << PRE_BITS), (LUT_RANGE << PRE_BITS) - 1, LUT_RANGE << PRE_BITS
_I32 = np.int32


@jit
def _scaled(a, m, r, s, b) -> int:
    """A product's accumulator ``a`` rescaled by its row's multiplier and shift, plus bias."""
    return _I32(_I32(_I32(_I32(a) * m) + r) >> s) + b


@entry
def _rescale(acc, m, r, s, b, out) -> None:
    for i in range(acc.shape[0]):
        for u in range(acc.shape[1]):
            out[i, u] = _scaled(acc[i, u], m[u], r[u], s[u], b[u])


@entry
def _gru_kernel(src, rows, acc, m, r, s, b, h, sig, tanh, h_out, hf_out) -> None:
    """One GRU layer for every row: rescale, gates, candidate, new state. The table
    lookups have loops of their own: mixed into the arithmetic they serialise on cache
    latency (measured 6x slower), alone they overlap."""
    n = h.shape[1]
    shift = _I32(GATE_BITS - STATE_BITS)
    half, gate_bits = _I32(1 << (shift - 1)), _I32(GATE_BITS)
    lo, hi, off, clamp = _I32(_LO), _I32(_HI), _I32(_OFF), _I32(GH_CLAMP)
    gh = np.empty(3 * n, dtype=np.int32)
    idx = np.empty(2 * n, dtype=np.int32)
    gate = np.empty(2 * n, dtype=np.int32)
    cand = np.empty(n, dtype=np.int32)
    for i in range(h.shape[0]):
        gi, a = src[rows[i]], acc[i]
        for u in range(3 * n):
            gh[u] = _scaled(a[u], m[u], r[u], s[u], b[u])
        for u in range(2 * n):  # r and z gates
            idx[u] = _I32(min(max(_I32(gi[u] + gh[u]), lo), hi) + off)
        for u in range(2 * n):
            gate[u] = sig[idx[u]]
        for u in range(n):  # candidate: input part plus r * recurrent part
            v = 2 * n + u
            pre = _I32(gi[v] + _I32(_I32(gate[u] * min(max(gh[v], -clamp), clamp)) >> gate_bits))
            idx[u] = _I32(min(max(pre, lo), hi) + off)
        for u in range(n):
            cand[u] = tanh[idx[u]]
        for u in range(n):  # h' = cand + z * (h - cand), back to Q7
            c = cand[u]
            d = _I32(_I32(h[i, u]) << shift) - c
            hn = _I32(c + _I32(_I32(gate[n + u] * _I32(d)) >> gate_bits))
            out = min(max(_I32(_I32(hn + half) >> shift), _I32(-127)), _I32(127))
            h_out[i, u] = out
            hf_out[i, u] = out


@entry
def _freqs_kernel(acc, m, r, s, b, exp, out) -> None:
    logits = np.empty(acc.shape[1], dtype=np.int32)
    last = _I32(EXP_SIZE - 1)
    for i in range(acc.shape[0]):
        a = acc[i]
        for u in range(acc.shape[1]):
            logits[u] = _scaled(a[u], m[u], r[u], s[u], b[u])
        top = logits[0]
        for u in range(acc.shape[1]):
            top = max(top, logits[u])
        for u in range(acc.shape[1]):
            out[i, u] = exp[min(max(_I32(top - logits[u]), _I32(0)), last)]


def _read_metadata(raw: bytes) -> dict[str, str]:
    """The string metadata of a safetensors file (its JSON header's ``__metadata__``)."""
    import json
    import struct

    if len(raw) < 8:
        raise ValueError("file too short")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError("header length beyond end of file")
    header = json.loads(raw[8 : 8 + n])
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise ValueError("bad metadata")
    return {str(k): str(v) for k, v in meta.items()}


def build_luts() -> dict[str, np.ndarray]:
    """The nonlinearity tables, computed once at export time in float64 and stored as ints.

    Inference never evaluates a transcendental function; it only indexes these.
    """
    x = (np.arange(LUT_SIZE, dtype=np.float64) - (LUT_RANGE << PRE_BITS)) / (1 << PRE_BITS)
    sig = np.rint((1 << GATE_BITS) / (1.0 + np.exp(-x))).astype(np.int32)
    tanh = np.rint((1 << GATE_BITS) * np.tanh(x)).astype(np.int32)
    gap = np.arange(EXP_SIZE, dtype=np.float64) / (1 << LOGIT_BITS)
    exp = np.maximum(1, np.rint((1 << FREQ_BITS) * np.exp(-gap))).astype(np.int32)
    return {"lut.sigmoid": sig, "lut.tanh": tanh, "lut.exp": exp}


def quantize_rows(
    w: np.ndarray, in_bits: int, out_bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int8 weights with a 7-bit multiplier ``m`` and a shift ``s`` per output row.

    ``(q @ x * m + 2**(s-1)) >> s`` approximates ``w @ x`` in Q``out_bits`` for x in
    Q``in_bits``. The row scale ``m * 2**-s`` is chosen first (rounded up, so that no weight
    needs more than 127) and the weights are quantized against that exact scale.
    """
    w = np.asarray(w, dtype=np.float64)
    want = np.maximum(np.abs(w).max(axis=1), 1e-12) / 127.0 * 2.0 ** (out_bits - in_bits)
    s = np.floor(np.log2(MULT_MAX / want)).astype(np.int64)
    s = np.clip(s, 1, 30)
    m = np.clip(np.ceil(want * 2.0**s), 1, MULT_MAX).astype(np.int64)
    scale = m * 2.0 ** (-s.astype(np.float64)) / 2.0 ** (out_bits - in_bits)
    q = np.clip(np.rint(w / scale[:, None]), -127, 127).astype(np.int8)
    return q, m.astype(np.int32), s.astype(np.int32)


def _linear_shapes(key: str, rows: int, cols: int) -> dict[str, tuple[int, ...]]:
    return {f"{key}.w": (rows, cols), f"{key}.m": (rows,), f"{key}.s": (rows,), f"{key}.b": (rows,)}


def _linear_tensors(key: str, w: np.ndarray, bias: np.ndarray, out_bits: int) -> dict:
    q, m, s = quantize_rows(w, STATE_BITS, out_bits)
    b = np.rint(bias).astype(np.int32)
    return {f"{key}.w": q, f"{key}.m": m, f"{key}.s": s, f"{key}.b": b}


def export_gru(
    embed: np.ndarray,
    w_ih: list[np.ndarray],
    w_hh: list[np.ndarray],
    b_ih: list[np.ndarray],
    b_hh: list[np.ndarray],
    head_w: np.ndarray,
    head_b: np.ndarray,
    meta: dict[str, str],
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Turn float GRU weights (PyTorch's layout, gates r, z, n) into integer model tensors."""
    hidden = w_hh[0].shape[1]
    layers = len(w_hh)
    pre = float(1 << PRE_BITS)
    t: dict[str, np.ndarray] = {}
    # Layer 0's input projection of each possible previous byte, biases folded in.
    table = embed.astype(np.float64) @ w_ih[0].astype(np.float64).T + b_ih[0]
    table[:, : 2 * hidden] += b_hh[0][: 2 * hidden]
    t["embed_table"] = np.rint(table * pre).astype(np.int32)
    for i in range(layers):
        if i > 0:
            b = b_ih[i].astype(np.float64).copy()
            b[: 2 * hidden] += b_hh[i][: 2 * hidden]
            t |= _linear_tensors(f"l{i}.in", w_ih[i], b * pre, PRE_BITS)
        b = np.zeros(3 * hidden)
        b[2 * hidden :] = b_hh[i][2 * hidden :]  # r and z biases were folded into the input
        t |= _linear_tensors(f"l{i}.h", w_hh[i], b * pre, PRE_BITS)
    t |= _linear_tensors("head", head_w, head_b * (1 << LOGIT_BITS), LOGIT_BITS)
    t |= build_luts()
    full_meta = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "family": "gru",
        "hidden": str(hidden),
        "layers": str(layers),
    } | meta
    return t, full_meta


def with_prime(
    tensors: dict[str, np.ndarray],
    meta: dict[str, str],
    prime: bytes,
    name: str,
    version: str = PRIME_TABLES_FORMAT_VERSION,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """A model's tensors and metadata with ``prime`` as its prime, under a new name: the
    same network, statistics that start from the user's data. ``version``: the model file
    format version, 3 (the prime sizes the tables too) unless a test needs 2."""
    if not 0 < len(prime) <= MAX_PRIME:
        raise ModelError(f"a prime must be 1 to {MAX_PRIME} bytes")
    if version not in PRIMED_VERSIONS:
        raise ModelError(f"model format version {version} has no prime")
    tensors = dict(tensors, prime=np.frombuffer(prime, dtype=np.uint8).copy())
    meta = dict(meta, name=name, format_version=version, prime_bytes=str(len(prime)))
    return tensors, meta


def save_model(path: str | Path, tensors: dict[str, np.ndarray], meta: dict[str, str]) -> str:
    """Write a model file; returns its SHA-256 (the identity archives record)."""
    from safetensors.numpy import save

    raw = save({k: np.ascontiguousarray(v) for k, v in sorted(tensors.items())}, metadata=meta)
    raw = _canonical_header(raw)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(raw)
    tmp.replace(path)
    return hashlib.sha256(raw).hexdigest()


def _canonical_header(raw: bytes) -> bytes:
    """The same safetensors file with its JSON header's keys sorted. safetensors writes the
    metadata from a Rust HashMap, in a different order on every call, so without this the
    same weights would get a different SHA-256 (a different model identity) each save."""
    import json

    n = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8 : 8 + n]), sort_keys=True, separators=(",", ":"))
    text = header.encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data must stay 8-byte aligned
    return len(text).to_bytes(8, "little") + text + raw[8 + n :]
