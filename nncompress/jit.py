"""Compiled loops: built ahead of time where the install could, compiled by numba otherwise.

The per-bit loops of the adaptive layer, the network's integer step and the x86 transform
are Python functions compiled to machine code. numba compiles them at first use and caches
the result, but a process that runs them through numba pays for numba itself: importing it
and loading its cached code costs some 110 MB of resident memory and half a second
(``scripts/memory.py`` prints these floors), more than a small file needs in all.

So ``python -m nncompress.warmup``, which the in-place install runs (``hatch_build.py``),
also compiles the loops that Python calls (``@entry``) and everything they call (``@jit``)
into an extension module with numba's ahead-of-time compiler (``numba.pycc``):
``_aot_<digest>`` beside these sources, its name carrying the SHA-256 of the sources it
was built from (``SOURCES``). A process whose sources match it runs it without importing
numba. Anywhere else (no C compiler at install, sources edited since,
``NNCOMPRESS_JIT=1``) numba compiles and caches the loops as before. Both compile the same
Python source with the same compiler, in integer arithmetic: the tests check that they
write the same archives.

The ahead-of-time functions were built for fixed argument types and trust what they are
given (an int32 array passed where int64 was built would be misread), so every call
checks its arguments against those types first (a few microseconds) and hands anything
else to numba.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: The modules whose loops are compiled, and so whose sources name the compiled module.
SOURCES = ("adaptive", "contexts", "filters", "model", "rangecoder", "jit")
PACKAGE = Path(__file__).resolve().parent
#: Set to 1 to run numba's compiler even where an ahead-of-time module is present.
FORCE_JIT = "NNCOMPRESS_JIT"

_lock = threading.RLock()
_registry: list[_Lazy] = []
_mode: str | None = None  # "aot" or "jit", once bound
#: The entries called with arguments the ahead-of-time module was not built for, in call
#: order: paths the warm-up misses (a test run fails on any).
fallbacks: list[str] = []


class _Lazy:
    """A loop before the process has chosen how to run it. Calling it chooses."""

    def __init__(self, fn: Callable, entry: bool) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.entry = entry
        self.module = sys.modules[fn.__module__]
        self.key = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"
        self.dispatcher: Any = None

    def __call__(self, *args: Any) -> Any:
        bind()
        impl = getattr(self.module, self.fn.__name__)
        if impl is self:  # a @jit loop called from Python (a test, a probe) runs in numba
            impl = _numba_for(self)
        return impl(*args)


def jit(fn: Callable) -> _Lazy:
    """A loop called only from other compiled loops, compiled without reference counts.

    numba counts references to every array a function is handed, and to every array it
    takes out of a tuple, with an atomic add on entry and another on exit: the adaptive
    layer's helpers, handed the block's tuples of 45 arrays, took some 600 such operations
    a bit. A loop called only from compiled loops borrows its arrays from a caller that
    holds them for the call, so it needs none: numba's ``_nrt`` option off, it counts
    nothing. The price: such a loop may not allocate an array (numba refuses to compile
    ``np.empty`` there) nor return one; the entries (``entry``), which Python calls, keep
    the counts and make the arrays their callees work in."""
    lazy = _Lazy(fn, entry=False)
    _registry.append(lazy)
    return lazy


def entry(fn: Callable) -> _Lazy:
    """A loop called from Python: exported by the ahead-of-time module."""
    lazy = _Lazy(fn, entry=True)
    _registry.append(lazy)
    return lazy


def digest() -> str:
    """The first 16 hex digits of the SHA-256 of ``SOURCES`` (LF line ends)."""
    h = hashlib.sha256()
    for name in SOURCES:
        h.update(name.encode() + b"\0")
        h.update((PACKAGE / f"{name}.py").read_bytes().replace(b"\r\n", b"\n"))
    return h.hexdigest()[:16]


def module_name() -> str:
    return f"_aot_{digest()}"


def cpu_flags() -> frozenset[str] | None:
    """The instruction-set flags of this machine's CPU as Linux lists them, or None."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def mode() -> str:
    """How this process runs its loops: "aot" or "jit" (choosing now if it has not)."""
    bind()
    assert _mode is not None
    return _mode


def bind() -> None:
    """Choose, once per process: the ahead-of-time module if it matches the sources and
    the variable ``NNCOMPRESS_JIT`` is not set, else numba."""
    global _mode
    if _mode is not None:
        return
    with _lock:
        if _mode is not None:
            return
        for name in SOURCES:  # every loop registered, before anything is replaced
            importlib.import_module(f"{__package__}.{name}")
        if os.environ.get(FORCE_JIT, "") in ("", "0") and _bind_aot():
            _mode = "aot"
        else:
            _bind_numba()
            _mode = "jit"


def _bind_aot() -> bool:
    name = module_name()
    try:
        built = json.loads((PACKAGE / f"{name}.json").read_text())
    except OSError:
        return False
    # Before the module is loaded: its code may use instructions this CPU lacks.
    if built["cpu"] is not None:
        cpu = cpu_flags()
        if cpu is None or not set(built["cpu"]) <= cpu:
            return False
    try:
        compiled = importlib.import_module(f"{__package__}.{name}")
    except ImportError:
        return False
    for lazy in _registry:
        variants = built["loops"].get(lazy.key)
        if lazy.entry and variants:
            checked = _Checked(lazy, [(getattr(compiled, s), _spec(["t", t])) for s, t in variants])
            setattr(lazy.module, lazy.fn.__name__, checked)
    return True


def _bind_numba() -> None:
    """Every loop becomes a numba dispatcher, in its own module and wherever another
    module imported it by name (numba resolves a loop's callees through its globals).
    Where the ahead-of-time module ran until now (a call it was not built for), the whole
    process turns to numba, and ``Args`` tuples made for the module are typed as tuples."""
    global _mode
    from numba import njit
    from numba.core.typing.typeof import typeof_impl

    with _lock:
        typeof_impl.register(Args)(lambda value, c: typeof_impl(tuple(value), c))
        for lazy in _registry:
            if lazy.dispatcher is None:
                lazy.dispatcher = njit(cache=True, nogil=True, _nrt=lazy.entry)(lazy.fn)
        modules = {id(lazy.module): lazy.module for lazy in _registry}
        for module in modules.values():
            for key, value in list(vars(module).items()):
                if isinstance(value, (_Lazy, _Checked)):
                    lazy = value if isinstance(value, _Lazy) else value.lazy
                    setattr(module, key, lazy.dispatcher)
        if _mode == "aot":
            _mode = "jit"


def direct(loop: Any, *args: Any) -> Callable:
    """The compiled function that ``loop`` (an ``entry`` loop, as imported) runs for ``args``,
    to call directly where a hot loop passes arguments of the same types on every call:
    checking them again on each (``_Checked``) costs some microseconds, which a device's
    decoder pays eight times a step (``torchmix.TorchBlockCoder.decode_byte``)."""
    bind()
    if isinstance(loop, _Checked):  # imported by name once the module was bound
        loop = loop.lazy
    elif not isinstance(loop, _Lazy):  # numba's dispatcher, which checks for itself
        return loop
    impl = getattr(loop.module, loop.fn.__name__)
    if isinstance(impl, _Checked):
        return impl.find(args)
    return _numba_for(loop) if impl is loop else impl


def _numba_for(lazy: _Lazy) -> Any:
    if lazy.dispatcher is None:
        _bind_numba()
    return lazy.dispatcher


def dispatchers() -> dict[str, Any]:
    """The numba dispatchers of the entry loops by key (binding to numba): what the
    ahead-of-time build reads the compiled signatures from."""
    _bind_numba()
    return {lazy.key: lazy.dispatcher for lazy in _registry if lazy.entry}


# Argument types of an ahead-of-time function, as JSON (written by ``build``):
# ["a", dtype.str, ndim, layout, mutable] an array, ["t", [...]] a tuple, ["i"] an integer,
# ["f"] a float, ["b"] a bool.
_Spec = tuple


_specs: dict[str, _Spec] = {}


def _spec(text: list) -> _Spec:
    """The check's form of a JSON type; equal types give the same object (an ``Args``
    remembers the one it passed)."""
    key = json.dumps(text)
    known = _specs.get(key)
    if known is not None:
        return known
    kind = text[0]
    if kind == "a":
        spec: _Spec = ("a", np.dtype(text[1]), int(text[2]), text[3] == "C", bool(text[4]))
    elif kind == "t":
        spec = ("t", tuple(_spec(t) for t in text[1]))
    else:
        spec = (kind,)
    return _specs.setdefault(key, spec)


class Args(tuple):
    """A loop's tuple of arrays that remembers which argument type it was found to fit.
    Checking the 40-odd arrays of the adaptive layer's tuples on every call cost as much
    as the loops themselves on a bitmap's many small steps; built once per block
    (``args``) and passed to every call, a tuple is checked once. Sound because neither a
    tuple's items nor an array's dtype, shape or layout change after they are made."""


def args(*items: Any) -> tuple:
    """The tuple of ``items`` to pass to a loop on every call: an ``Args`` where the
    ahead-of-time module runs, a plain tuple for numba (which types tuples itself)."""
    bind()
    return Args(items) if _mode == "aot" else items


_INTS = (int, np.integer)


def _fits(value: Any, spec: _Spec) -> bool:
    """Whether ``value`` (a loop's arguments, or a tuple among them) fits the tuple type
    ``spec``. Runs for every call of a loop, once per segment group and step of a mixed
    block: the items are checked in one loop, calls only for tuples within (an ``Args``
    by its mark)."""
    if type(value) is Args and value.__dict__.get("fits") is spec:
        return True
    inner = spec[1]
    if not isinstance(value, tuple) or len(value) != len(inner):
        return False
    for v, s in zip(value, inner, strict=True):
        kind = s[0]
        if kind == "a":
            if type(v) is not np.ndarray or v.dtype is not s[1] or v.ndim != s[2]:
                return False
            f = v.flags
            if (s[3] and not f.c_contiguous) or (s[4] and not f.writeable) or not f.aligned:
                return False
        elif kind == "t":
            if not _fits(v, s):
                return False
        elif kind == "i":
            if not isinstance(v, _INTS) or isinstance(v, (bool, np.bool_)):
                return False
        elif kind == "f":
            if not isinstance(v, (float, np.floating)):
                return False
        elif kind != "b" or not isinstance(v, (bool, np.bool_)):
            return False
    if type(value) is Args:
        value.fits = spec  # type: ignore[attr-defined]
    return True


class _Checked:
    """An ahead-of-time function behind a check of its arguments' types; anything it was
    not built for goes to numba."""

    def __init__(self, lazy: _Lazy, variants: list[tuple[Callable, _Spec]]) -> None:
        self.lazy = lazy
        self.variants = variants

    def __call__(self, *args: Any) -> Any:
        return self.find(args)(*args)

    def find(self, args: tuple) -> Callable:
        """The module's function built for ``args``, else numba's (the whole process
        turns to numba then)."""
        for fn, spec in self.variants:
            if _fits(args, spec):
                return fn
        fallbacks.append(self.lazy.key)
        return _numba_for(self.lazy)


def _type_spec(t: Any) -> list:
    """JSON of a numba type, for the argument check (``_spec``)."""
    from numba import types
    from numba.np.numpy_support import as_dtype

    if isinstance(t, types.Array):
        return ["a", as_dtype(t.dtype).str, t.ndim, t.layout, bool(t.mutable)]
    if isinstance(t, types.BaseTuple):
        return ["t", [_type_spec(u) for u in t.types]]
    if isinstance(t, types.Boolean):
        return ["b"]
    if isinstance(t, types.Integer):
        return ["i"]
    if isinstance(t, types.Float):
        return ["f"]
    raise TypeError(f"no ahead-of-time export for arguments of type {t}")


def _any_layout(sig: Any) -> Any:
    """``sig`` with its array arguments (not those in tuples, which hold a block's tables
    and scratch, always whole arrays) of layout "A"."""
    from numba import types

    args = (t.copy(layout="A") if isinstance(t, types.Array) else t for t in sig.args)
    return sig.return_type(*args)


def build(out_dir: Path = PACKAGE) -> Path:
    """Compile every entry loop, with each signature numba has compiled it for in this
    process (run them first: ``warmup``), into ``out_dir/_aot_<digest>`` and its JSON of
    argument types; remove modules built from older sources. Needs a C compiler."""
    import warnings

    from numba.core.errors import NumbaPendingDeprecationWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaPendingDeprecationWarning)
        import numba.pycc.compiler as pycc_compiler
        from numba.pycc import CC

    name = module_name()
    cc = CC(name)
    cc.output_dir = str(out_dir)
    # For this CPU (generic code for its architecture coded book1 slower here), where
    # its instruction sets can be read back (Linux): a process on a CPU that lacks any of
    # them (a shared home, a copied image) uses numba instead.
    cpu = cpu_flags()
    cc.target_cpu = "host" if cpu is not None else ""
    exported: dict[str, list] = {}
    for key, dispatcher in dispatchers().items():
        sigs = list(dispatcher.nopython_signatures)
        # Each also for array arguments of any layout, after the contiguous ones it was run
        # with: a slice the warm-up happened not to pass (the last step of a block whose
        # segments end unevenly) then still runs here. Where a loop needs a contiguous
        # argument (it reshapes it), numba refuses the variant, and it is left out.
        for sig in list(sigs):
            relaxed = _any_layout(sig)
            if relaxed not in sigs:
                try:
                    dispatcher.compile(relaxed.args)
                except Exception:
                    continue
                sigs.append(relaxed)
        for i, sig in enumerate(dict.fromkeys(sigs)):
            symbol = f"{key.replace('.', '__')}__{i}"
            cc.export(symbol, sig)(dispatcher.py_func)
            exported.setdefault(key, []).append([symbol, [_type_spec(t) for t in sig.args]])
    if not exported:
        raise RuntimeError("no loop has run in this process: nothing to build")
    # The exported wrappers release the GIL as numba's nogil dispatchers do, so that the
    # network's step and the coder's loops run on two cores at once.
    flags = pycc_compiler.Flags

    class _NoGil(flags):  # type: ignore[misc, valid-type]
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            self.release_gil = True

    pycc_compiler.Flags = _NoGil
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cc.compile()
    finally:
        pycc_compiler.Flags = flags
    built = {"cpu": sorted(cpu) if cpu is not None else None, "loops": exported}
    (out_dir / f"{name}.json").write_text(json.dumps(built))
    for old in out_dir.glob("_aot_*"):
        if not old.name.startswith(name + "."):
            old.unlink(missing_ok=True)
    built = [p for p in out_dir.glob(f"{name}.*") if p.suffix != ".json"]
    return built[0]
