"""Compile every kernel of ``nncompress/tritonmix.py`` for a GPU, on a machine without one.

Triton builds a kernel for a named target without a device (its ptxas ships with it), so
what only the compiler checks (the kinds of values, the atomics' types, loops that carry
tensors, a helper each kernel calls) is checked here before a lent GPU's minutes go to
it; Triton's interpreter, which runs the kernels in the tests, checks their arithmetic
but not that they compile. ::

    python scripts/triton_compile.py [--arch 90 ...] [--preset N ...]

First, in this process, a short text is coded through each preset and decoded again
with the kernels interpreted on CPU tensors (``NNCOMPRESS_TRITON=1``, ``--device
torch``; the decoder's bits by their kernel too, as on a GPU), and every launch's
kernel, argument types and compile-time constants are recorded; then a second
process, where Triton compiles rather than interprets (a process does one or the
other, chosen when it first imports Triton), builds each for each target at the block
of segments a GPU's programs take (``tritonmix.GPU_BLOCK``): per kernel the seconds
and the cubin's bytes. The exit status is 1 if any kernel did not compile. The default
targets, 90, are the lent machines' (H100 and H200); the presets are the default
level's (36: text kinds with fine probabilities, nearby probes, extra mixers), preset
1's (no probes, no extra mixers) and a binary one's (13: the record and sparse kinds,
whose hashes take the kernel's other half).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_TYPES = {"torch.int64": "*i64", "torch.int32": "*i32", "torch.uint8": "*u8", "torch.bool": "*i1"}


def _arg_type(value: object) -> str:
    """The Triton type of one launch argument: a tensor's pointer, or an integer."""
    if hasattr(value, "dtype"):
        return _TYPES[str(value.dtype)]
    assert isinstance(value, int), type(value)
    return "i32" if -(1 << 31) <= value < (1 << 31) else "i64"


def record(presets: list[int], n: int) -> list[dict]:
    """Code ``n`` bytes of text through each preset with the kernels interpreted; every
    distinct launch: its kernel, its arguments' types, its constants."""
    os.environ["NNCOMPRESS_TRITON"] = "1"
    from nncompress import format as fmt
    from nncompress import torchmix, tritonmix
    from nncompress.config import PRESETS
    from nncompress.engine import compress_stream, decompress_stream
    from nncompress.zoo import load_model

    assert tritonmix.wanted(load_model(None, "torch").ops.device), "Triton cannot run here"
    seen: dict[str, dict] = {}
    real = tritonmix._Launcher.__call__

    def spy(self, name, k, *args, **consts):
        fixed = {**consts, "BLOCK": tritonmix.GPU_BLOCK}
        spec = {"kernel": name, "types": [_arg_type(a) for a in args], "consts": fixed}
        seen.setdefault(json.dumps(spec, sort_keys=True), spec)
        return real(self, name, k, *args, **consts)

    def spy_alone(name, interpret, *args, **consts):
        spec = {"kernel": name, "types": [_arg_type(a) for a in args], "consts": consts}
        seen.setdefault(json.dumps(spec, sort_keys=True), spec)
        return real_alone(name, interpret, *args, **consts)

    real_alone = tritonmix.launch_alone
    tritonmix._Launcher.__call__ = spy
    tritonmix.launch_alone = spy_alone
    # The decoder's bits too, as a GPU decodes them (``torchmix.DeviceBits``).
    torchmix.DeviceBits.KERNEL_ON_CPU = True
    # One segment of ``n`` bytes: a step's launches are the same for any number of
    # segments, and the interpreter's time goes by the launch.
    fmt.SEGMENT_BYTES, fmt.MIN_SEGMENT_BYTES = n, n
    model = load_model(None, "torch")
    words = b"the model of a block codes every byte with the statistics it learns\n".split(b" ")
    text, x = bytearray(), 7
    while len(text) < n:
        x = (x * 1103515245 + 12345) % (1 << 31)
        text += words[(x >> 16) % len(words)] + b" "
    try:
        for p in presets:
            out = io.BytesIO()
            compress_stream(io.BytesIO(bytes(text[:n])), out, model, config=PRESETS[p])
            back = io.BytesIO()
            decompress_stream(io.BytesIO(out.getvalue()), back, lambda header: model)
            assert back.getvalue() == bytes(text[:n])
    finally:
        tritonmix._Launcher.__call__ = real
        tritonmix.launch_alone = real_alone
    return list(seen.values())


def build(specs: list[dict], archs: list[int]) -> int:
    """Compile each spec for each target (in a process that compiles); print a line each.
    Returns how many failed."""
    import inspect

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.runtime.jit import JITFunction

    from nncompress.tritonkernels import KERNELS

    kernels = {f.__name__: f for f in KERNELS}
    failed = 0
    print(f"triton {triton.__version__}; {len(specs)} launches' kinds, for sm_{archs}")
    print(f"{'kernel':14} {'arch':>4} {'seconds':>7} {'cubin bytes':>11}  constants")
    for spec in specs:
        f = kernels[spec["kernel"]]
        names = list(inspect.signature(f).parameters)
        consts = spec["consts"]
        values = iter(spec["types"])
        signature = {p: "constexpr" if p in consts else next(values) for p in names}
        at = {(names.index(p),): v for p, v in consts.items()}
        shown = " ".join(f"{p}={v}" for p, v in sorted(consts.items()))
        for arch in archs:
            t = time.perf_counter()
            try:
                done = triton.compile(
                    ASTSource(JITFunction(f), signature, constexprs=at),
                    target=GPUTarget("cuda", arch, 32),
                )
                size = f"{len(done.asm['cubin']):11,}"
            except Exception as e:  # noqa: BLE001 -- each failure is reported, then counted
                failed += 1
                size = f"FAILED: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            print(f"{spec['kernel']:14} {arch:>4} {time.perf_counter() - t:7.2f} {size}  {shown}")
    return failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", type=int, nargs="+", default=[90], help="sm_ targets (90)")
    ap.add_argument("--preset", type=int, nargs="+", default=[36, 1, 13])
    ap.add_argument("--bytes", type=int, default=12, help="text coded through each preset")
    ap.add_argument("--specs", type=Path, help=argparse.SUPPRESS)  # the compiling process's
    a = ap.parse_args()
    if a.specs is not None:
        return 1 if build(json.loads(a.specs.read_text()), a.arch) else 0
    specs = record(a.preset, a.bytes)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"nncompress-kernels-{os.getpid()}.json"
    path.write_text(json.dumps(specs))
    cmd = [sys.executable, __file__, "--specs", str(path), "--arch", *map(str, a.arch)]
    # A cache of its own, so that each kernel is compiled (and timed), not found.
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        env["TRITON_CACHE_DIR"] = cache
        try:
            return subprocess.run(cmd, env=env, check=False).returncode
        finally:
            path.unlink()


if __name__ == "__main__":
    sys.exit(main())
