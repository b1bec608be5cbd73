"""The compiled loops: the ahead-of-time module and numba write the same archives, and the
module's argument check hands anything it was not built for to numba."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nncompress import jit

ROOT = Path(__file__).resolve().parents[1]

# Inputs that take every path a loop is built for: text in many segments ending unevenly,
# a table (records), x86 code (the E8/E9 transform), a 1-bit bitmap's rows, a 1-bit picture
# (the bit-level pixel contexts), the accounting of -v, the level that runs the network
# alone, --max's model, and a model of two layers.
CASES = r"""
import hashlib, io, json, random, sys
import nncompress
from nncompress import jit
from nncompress.engine import compress_stream, decompress_stream
from nncompress.zoo import load_model

rng = random.Random(7)
words = [bytes(rng.choice(b"etaoinshrdlu") for _ in range(rng.randint(2, 9))) for _ in range(300)]
text = b" ".join(rng.choice(words) for _ in range(9000))[:40_000]
table = b"".join(
    i.to_bytes(4, "little") + bytes([i % 7, 65 + i % 26]) + rng.randbytes(2) for i in range(3000)
)
targets = [rng.randrange(0, 16_000) for _ in range(40)]
def call(at):
    offset = ((rng.choice(targets) - at - 9) % 2**32).to_bytes(4, "little")
    return bytes([0x55, 0x48, 0x89, 0xE5, 0xE8]) + offset + bytes([0x90, 0xC3])
code = b"".join(call(11 * i) for i in range(1500))
rows = [bytearray(rng.randbytes(40))]
for y in range(299):
    row = bytearray(rows[-1])
    row[rng.randrange(40)] ^= 1 << rng.randrange(8)
    rows.append(row)
bitmap = b"".join(rows)
import runpy
from pathlib import Path
golden_script = Path(nncompress.__file__).parents[1] / "scripts" / "make_golden.py"
picture = runpy.run_path(str(golden_script))["picture_data"]()
out = {}
for name, data, level, account in [
    ("text", text, "default", False),
    ("text-v", text[:9000], "default", True),
    ("table", table, "default", False),
    ("code", code, "default", False),
    ("bitmap", bitmap, "default", False),
    ("picture", picture, "default", False),
    ("fast", text[:5000], "fast", False),
    ("max", text[:3000], "max", False),
    ("two layers", text[:3000], "two layers", False),
    ("torch", text[:3000], "torch", False),
]:
    if level == "two layers":
        from nncompress.warmup import _two_layers
        model, level = _two_layers(), "default"
    elif level == "torch":  # the per-bit work in torch, the byte's loops from Python
        model, level = load_model(None, "torch"), "default"
    else:
        model = load_model("large" if level == "max" else None)
    packed = io.BytesIO()
    compress_stream(io.BytesIO(data), packed, model, level=level, account=account)
    back = io.BytesIO()
    decompress_stream(io.BytesIO(packed.getvalue()), back, lambda h: model, account=account)
    assert back.getvalue() == data, name
    out[name] = hashlib.sha256(packed.getvalue()).hexdigest()
out["mode"] = jit.mode()
out["numba imported"] = "numba" in sys.modules
print(json.dumps(out))
"""


def _run(env_jit: str) -> dict:
    env = dict(os.environ, NNCOMPRESS_JIT=env_jit, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-c", CASES], env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _built() -> bool:
    return (jit.PACKAGE / f"{jit.module_name()}.json").exists()


@pytest.mark.skipif(not _built(), reason="no ahead-of-time module (python -m nncompress.warmup)")
def test_the_ahead_of_time_module_and_numba_write_the_same_archives() -> None:
    aot, numba = _run("0"), _run("1")
    assert aot.pop("mode") == "aot", "a module was built but not used"
    assert numba.pop("mode") == "jit"
    # Every path ran in the built module: no loop fell back to numba.
    assert aot.pop("numba imported") is False
    numba.pop("numba imported")
    assert aot == numba


def test_the_source_digest_names_the_module() -> None:
    assert jit.module_name() == f"_aot_{jit.digest()}"
    assert len(jit.digest()) == 16
    assert set(jit.SOURCES) >= {"adaptive", "contexts", "model", "filters", "jit"}


def _spec(*args: list) -> tuple:
    return jit._spec(["t", list(args)])


def test_the_argument_check_accepts_only_what_was_built() -> None:
    spec = _spec(["a", "<i8", 2, "C", True], ["t", [["a", "|u1", 1, "A", False], ["i"]]], ["b"])
    a = np.zeros((3, 4), dtype=np.int64)
    u = np.zeros(5, dtype=np.uint8)
    assert jit._fits((a, (u, 3), True), spec)
    assert jit._fits((a, (u[::2], np.int64(3)), False), spec)  # any layout where built so
    assert not jit._fits((a.astype(np.int32), (u, 3), True), spec)  # dtype
    assert not jit._fits((a[:, :2], (u, 3), True), spec)  # not contiguous
    assert not jit._fits((a.ravel(), (u, 3), True), spec)  # dimensions
    ro = a.copy()
    ro.flags.writeable = False
    assert not jit._fits((ro, (u, 3), True), spec)  # built to write into it
    assert not jit._fits((a, (u, 3, 4), True), spec)  # tuple length
    assert not jit._fits((a, [u, 3], True), spec)  # not a tuple
    assert not jit._fits((a, (u, 3.0), True), spec)  # a float for an integer
    assert not jit._fits((a, (u, True), True), spec)  # a bool for an integer
    assert not jit._fits((a, (u, 3)), spec)  # argument count


# Run in a fresh process: turning to numba is for the whole process.
FALLBACK = r"""
import numpy as np
from numba import njit
from nncompress import filters, jit

jit.bind()
lazy = next(x for x in jit._registry if x.key == "filters._transform")
calls = []
built_for = jit._spec(["t", [["a", "|u1", 1, "C", True], ["b"]]])
checked = jit._Checked(lazy, [(lambda *a: calls.append(a), built_for)])
data = bytes([0xE8, 0x10, 0, 0, 0, 0x90]) * 8
checked(np.frombuffer(data, dtype=np.uint8).copy(), True)
assert len(calls) == 1 and jit.fallbacks == []  # what it was built for: the module's
# A view with a stride was not: numba runs the real loop on it.
doubled = np.zeros(2 * len(data), dtype=np.uint8)
doubled[::2] = np.frombuffer(data, dtype=np.uint8)
view = doubled[::2]
checked(view, True)
assert len(calls) == 1 and jit.fallbacks == ["filters._transform"]
assert bytes(view) == filters.x86_encode(data)
# From then on numba runs every loop, and takes the tuples made for the module.
@njit
def total(t):
    return t[0].sum() + t[1].sum()
assert total(jit.Args((np.arange(4, dtype=np.int64), np.ones((2, 2), dtype=np.int32)))) == 10
assert jit.mode() == "jit"
print("ok")
"""


def test_what_the_module_was_not_built_for_goes_to_numba() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [sys.executable, "-c", FALLBACK], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


def test_built_modules_record_the_cpu_they_need() -> None:
    if not _built():
        pytest.skip("no ahead-of-time module")
    built = json.loads((jit.PACKAGE / f"{jit.module_name()}.json").read_text())
    if built["cpu"] is not None:
        assert set(built["cpu"]) <= (jit.cpu_flags() or set())
    assert set(built["loops"]) == {x.key for x in jit._registry if x.entry}


def test_an_args_tuple_is_checked_once_and_remembers_what_it_fits() -> None:
    spec = _spec(["t", [["a", "<i8", 1, "C", True], ["a", "<i4", 2, "C", True]]])
    inner = spec[1][0]
    good = jit.Args((np.zeros(3, dtype=np.int64), np.zeros((2, 2), dtype=np.int32)))
    bad = jit.Args((np.zeros(3, dtype=np.int64), np.zeros((2, 2), dtype=np.int64)))
    assert "fits" not in good.__dict__
    assert jit._fits(good, inner)
    assert good.fits is inner  # the next call passes by this mark
    assert jit._fits(good, inner)
    assert not jit._fits(bad, inner)
    assert "fits" not in bad.__dict__
    # The same type read twice is one object, so a mark serves every variant that has it.
    assert jit._spec(["a", "<i8", 1, "C", True]) is inner[1][0]


# In a fresh process, as the fallback above.
DIRECT = r"""
import numpy as np
from nncompress import jit

jit.bind()
lazy = next(x for x in jit._registry if x.key == "filters._transform")
def variant(*a):
    return "module"
built_for = jit._spec(["t", [["a", "|u1", 1, "C", True], ["b"]]])
setattr(lazy.module, lazy.fn.__name__, jit._Checked(lazy, [(variant, built_for)]))
data = np.zeros(12, dtype=np.uint8)
checked = getattr(lazy.module, lazy.fn.__name__)
assert jit.direct(lazy, data, True) is variant and jit.fallbacks == []
assert jit.direct(checked, data, True) is variant  # as imported once bound
fn = jit.direct(lazy, data[::2], True)  # a view with a stride: not what it was built for
assert fn is lazy.dispatcher and jit.fallbacks == ["filters._transform"]
assert jit.direct(lazy, data, True) is lazy.dispatcher  # numba runs everything now
assert jit.direct(lazy.dispatcher, data, True) is lazy.dispatcher  # as imported then
print("ok")
"""


def test_a_loop_found_once_is_what_each_call_would_run() -> None:
    """``jit.direct``: the module's function that fits the arguments, found once for a hot
    loop to call without the check; numba's where the module was not built for them."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop(jit.FORCE_JIT, None)
    run = subprocess.run(
        [sys.executable, "-c", DIRECT], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]
