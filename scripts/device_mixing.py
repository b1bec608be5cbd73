#!/usr/bin/env python3
"""The mixed method's predictor in torch (``nncompress/torchmix.py``, ``torchbytes.py``)
against the compiled loops, side by side: the same block coded both ways at several
segment counts, its time each way, and whether the payloads are the same bytes. With
``--ops``, also how many torch operations a settled step runs (encoder and decoder): on a
device each is a kernel, launched from Python or replayed in a CUDA graph.

    python scripts/device_mixing.py [FILE] [--bytes N] [--segments 64 256 1024]
        [--device torch|cuda] [--decode] [--preset N] [--ops] [--compile] [--triton]

``--compile`` compiles each settled stage first (``NNCOMPRESS_TORCH_COMPILE=1``: fused
kernels, C++ on a CPU, Triton on a GPU; its times include the compiling, minutes, which
inductor caches on disk for later runs of the same shapes). ``--triton`` runs a step
as ``tritonmix``'s kernels (``NNCOMPRESS_TRITON=1``): compiled on a GPU, and on
CPU tensors through Triton's interpreter, some milliseconds a launch (a check, not a
speed).
``--device torch`` runs the torch code on CPU tensors (what CI checks); ``cuda`` on the
GPU (it sets ``NNCOMPRESS_TORCH_MIXING=1``, without which ``--device cuda`` keeps the
compiled loops). The network runs where the mixing does; the compiled loops' row runs
the network on numpy. Without FILE the input is Calgary's book1 where ``../shared`` has
it, else generated text. A step codes one byte of each segment, so the torch path's
cost per step is about the same for 64 segments as for 4,096: its speed grows with the
segment count, the compiled loops' does not.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nncompress import coder, torchmix, tritonmix  # noqa: E402
from nncompress.adaptive import StreamState  # noqa: E402
from nncompress.coder import decode_block_mixed, encode_block_mixed  # noqa: E402
from nncompress.config import PRESETS  # noqa: E402
from nncompress.zoo import load_model  # noqa: E402


def _input(path: Path | None, n: int) -> bytes:
    if path is None:
        book1 = ROOT.parent / "shared" / "corpus" / "calgary" / "book1"
        if book1.is_file():
            path = book1
    if path is not None:
        return path.read_bytes()[:n]
    words = b"the model of a block codes every byte with the statistics it learns".split()
    out, x = bytearray(), 1
    while len(out) < n:
        x = (x * 1103515245 + 12345) % (1 << 31)
        out += words[(x >> 16) % len(words)] + b" "
    return bytes(out[:n])


def _run(model, data: bytes, segments: int, decode: bool, config) -> tuple[bytes, float, float]:
    state = StreamState(config, block_size=len(data))
    t = time.perf_counter()
    payload, _ = encode_block_mixed(model, data, state, segments=segments, pipelined=False)
    enc = time.perf_counter() - t
    dec = float("nan")
    if decode:
        state = StreamState(config, block_size=len(data))
        t = time.perf_counter()
        out = decode_block_mixed(model, payload, len(data), segments, state, pipelined=False)
        dec = time.perf_counter() - t
        assert out == data, "decoded bytes differ"
    return payload, enc, dec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", type=Path)
    ap.add_argument("--bytes", type=int, default=32768, help="input length (default 32768)")
    ap.add_argument("--segments", type=int, nargs="+", default=[64, 256, 1024])
    ap.add_argument("--device", default="torch", help="torch (CPU tensors) or cuda[:N]")
    ap.add_argument("--decode", action="store_true", help="also decode, and time it")
    ap.add_argument("--model", default=None)
    ap.add_argument("--preset", type=int, default=36, help="configuration (default 36)")
    ap.add_argument("--ops", action="store_true", help="count a settled step's operations")
    ap.add_argument("--compile", action="store_true", help="compile settled stages")
    ap.add_argument(
        "--triton", action="store_true", help="a bit's work as Triton kernels (tritonmix)"
    )
    ap.add_argument(
        "--host", action="store_true", help="the host's time a settled step, device work replayed"
    )
    ap.add_argument(
        "--pipelined", action="store_true", help="--host: the network's steps from a thread"
    )
    ap.add_argument(
        "--repeat", type=int, default=5, help="--host: replays of each side (default 5)"
    )
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="--host: the N functions that took most of the replays' own time, each side",
    )
    a = ap.parse_args()
    if a.compile:
        os.environ[torchmix.TORCH_COMPILE] = "1"
    if a.triton:
        os.environ[tritonmix.TRITON] = "1"
    config = PRESETS[a.preset]
    if a.device.startswith("cuda"):
        os.environ[coder.TORCH_MIXING] = "1"
    data = _input(a.file, a.bytes)
    loops, device = load_model(a.model, "cpu"), load_model(a.model, a.device)
    print(
        f"{len(data):,} bytes, preset {a.preset}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, device {a.device}"
    )
    print("segments  steps  loops enc KB/s  torch enc KB/s  ratio  loops dec  torch dec  same")
    for s in a.segments:
        ref, e0, d0 = _run(loops, data, s, a.decode, config)
        got, e1, d1 = _run(device, data, s, a.decode, config)
        kb = len(data) / 1000
        print(
            f"{s:8d} {-(-len(data) // s):6d} {kb / e0:14.1f} {kb / e1:15.2f} {e1 / e0:6.1f}"
            f" {kb / d0:10.1f} {kb / d1:10.2f}  {'yes' if got == ref else 'NO'}"
        )
        if got != ref:
            return 1
    refused = torchmix.Captured.refusals
    if a.device.startswith("cuda") or a.compile:
        print(
            f"CUDA graphs: {torchmix.Captured.recorded} of the predictor's stages and "
            f"{torchmix.NetworkSteps.recorded} of the network's steps recorded; stages "
            f"compiled: {torchmix.Captured.compiled}; {len(refused)} refused"
        )
        if a.compile:
            from torch._inductor import metrics

            # Across every graph compiled in this run (a stage whose shapes are new
            # compiles again), without the library calls between them (sorts, scans).
            print(f"fused kernels generated: {metrics.generated_kernel_count}")
        for what, (n, why) in _refusal_kinds(refused).items():
            print(f"refused {n} times: {what}: {why}")
    if a.ops:
        _census(device, data, a.segments[0], config)
    if a.host:
        _host_time(device, data, a.segments[0], config, a.pipelined, a.repeat, a.profile)
    return 0


def _refusal_kinds(refused: list[str]) -> dict[str, list]:
    """What ``torchmix.Captured.refusals`` holds, each kind once (any stage of a step,
    with its copies, its inputs' alone, or none: ``torchmix.RECORDED_COPIES``; the
    network's step with its bytes' copy or without; a compiling): [times, the first
    reason's first line]."""
    kinds: dict[str, list] = {}
    for r in refused:
        what, _, why = r.partition(": ")
        what = re.sub(r"^(compiling )?stage \d+ of (\d+)", r"\1a stage of \2", what)
        kinds.setdefault(what, [0, why.split("\n")[0]])[0] += 1
    return kinds


def _host_time(
    model, data: bytes, segments: int, config, pipelined: bool, repeat: int, profile: int = 0
) -> None:
    """The host's time a settled step, the device's work taken out: a first run records
    what every settled stage (``torchmix.Captured``) and network step returned, and
    ``repeat`` later runs replay them through the coder's own code, with stand-ins for
    the CUDA graphs (``_Replayed``, which the coder's own recording makes) whose
    ``replay`` puts back what the step returned, and into the host's buffers where a
    graph would copy it; so a replay does all a GPU's host does but launch the graphs
    and wait for them: the coder's loop, the range coder, the copies a graph does not
    hold, and ``Captured.run``'s own bookkeeping. Frames in threads share one GIL, so it
    bounds them together: bytes/s <= segments a step / host time a step. ``pipelined``:
    the network's steps launched from a thread of their own, as the CPU path runs them
    (on a CUDA device the coder launches them itself). The least of the replays' times
    is reported: on a shared machine, the replay that was least disturbed. ``profile``:
    also the functions that took most of the replays' own time (``cProfile``, which
    slows what it watches: read its shares, not its times)."""
    seen: dict = {}  # (stages or network, its place among this run's, step, stage): output
    replay = [False]
    made: dict[int, int] = {}  # id() of each Captured and NetworkSteps: its creation order
    keep: list = []  # ... and the objects, so that no id() is reused
    real = torchmix.Captured.run, torchmix.NetworkSteps.step
    captures = torchmix.Captured._capture, torchmix.NetworkSteps._capture
    clock = {"start": None, "steps": 0}
    spent = [0.0]  # the stand-ins' own time, this run (``_Replayed``)
    watch = [cProfile.Profile()]  # where ``profile`` asks: the replays from their clock's start
    written = b""

    def place(obj) -> int:
        if id(obj) not in made:
            made[id(obj)] = len(made)
            keep.append(obj)
        return made[id(obj)]

    def run(self, i, *inputs):
        if not replay[0]:
            t = self.work.t
            out = real[0](self, i, *inputs)
            seen[place(self), t, i] = out.clone()
            left = _left(self, i)
            if left:
                seen[place(self), t, i, "left"] = [
                    (name, at, _tensor(self, name)[at].clone()) for name, at in left
                ]
            return out
        self.record = True  # a settled step: each stage is "recorded" at its first
        if clock["start"] is None:  # the first settled step: from here on
            clock["start"] = time.perf_counter()
            spent[0] = 0.0
            if profile:
                watch[0].enable()
        clock["steps"] += i == len(self.stages) - 1
        return real[0](self, i, *inputs)

    def net(self, prev):
        if not replay[0]:
            out = real[1](self, prev)
            seen[place(self), self.steps, None] = out.clone()
            return out
        self.record = True
        return real[1](self, prev)

    def stage_graph(self, i, copies, where):
        return _Replayed(self, i, place(self), seen, copies[1], spent)

    def net_graph(self, copied, source):
        return _Replayed(self, None, place(self), seen, False, spent)

    torchmix.Captured.run, torchmix.NetworkSteps.step = run, net
    torchmix.Captured._capture, torchmix.NetworkSteps._capture = stage_graph, net_graph
    usable = len(data) // segments * segments  # no shorter last step: it runs in full
    try:
        for side in ("encoder", "decoder"):
            times, own = [], []
            watch[0] = cProfile.Profile()
            for replay[0] in (False,) + (True,) * repeat:
                made.clear()
                keep.clear()
                clock.update(start=None, steps=0)
                spent[0] = 0.0
                state = StreamState(config, block_size=usable)
                if side == "encoder":
                    payload, _ = encode_block_mixed(
                        model, data[:usable], state, segments=segments, pipelined=pipelined
                    )
                    written = written if replay[0] else payload
                    assert payload == written, "the replayed encoder wrote another payload"
                else:
                    got = decode_block_mixed(
                        model, payload, usable, segments, state, pipelined=pipelined
                    )
                    # What the stand-ins handed back is what the device computed.
                    assert got == data[:usable], "the replayed decoder lost the input"
                times.append(time.perf_counter() - (clock["start"] or 0))
                watch[0].disable()
                own.append(spent[0])
            steps = max(clock["steps"], 1)
            k = segments // 2 if segments > 1 else 1
            least = min(range(1, repeat + 1), key=times.__getitem__)
            print(
                f"host time a settled {side}'s step of a group of {k} segments, the "
                f"device's work replayed: {1e6 * times[least] / steps:,.0f} us, the least "
                f"of {repeat} runs (median {1e6 * statistics.median(times[1:]) / steps:,.0f}; "
                f"{steps} steps each), {1e6 * own[least] / steps:,.0f} us of it the "
                "stand-ins' own (a GPU's host launches its graphs instead)"
            )
            if profile:
                pstats.Stats(watch[0]).sort_stats("tottime").print_stats(profile)
    finally:
        torchmix.Captured.run, torchmix.NetworkSteps.step = real
        torchmix.Captured._capture, torchmix.NetworkSteps._capture = captures


def _left(stages, i: int) -> list[tuple[str, Any]]:
    """What a whole step on the device leaves besides its output (``torchmix``'s
    ``DeviceBits``, ``DeviceProbs``), as (the coder's tensor, the part of it): a
    decoder's, its bytes' row of the ring, the ring's place and the range decoder's
    state; an encoder's, its probabilities' row of the ring, the ring's place and the
    grid's. Nothing for other stages."""
    coder, stage = stages.owners[0], stages.stages[i]
    at = int(coder.ring_at) - 1
    every = slice(None)
    if stage == getattr(coder, "_decode_step", None):
        return [("ring", at), ("ring_at", every), ("dec.device.state", every)]
    if stage == getattr(coder, "_encode_whole", None):
        return [("probs_ring", at), ("ring_at", every), ("grid_at", every)]
    return []


def _tensor(stages, name: str):
    """The coder's tensor ``name`` (a dotted path) of a stage's owner (``_left``)."""
    obj = stages.owners[0]
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


class _Replayed:
    """A stand-in for a recorded CUDA graph (``_host_time``): its ``replay`` copies what
    the step it replays returned into the owner's output (``Captured.out[stage]``, or
    ``NetworkSteps.freqs`` where ``stage`` is None), the same tensor every replay, as a
    graph's replay leaves it, and with ``copied`` into the stage's host buffer
    (``Captured.into``), as a graph that holds that copy does; a whole step on the
    device also leaves what ``_left`` names. The step is read where the real code keeps it:
    ``ByteWork.t``, ``NetworkSteps.steps``. Its own time is added to ``spent[0]``, which
    the measure reports apart: a GPU's host spends a graph's launch there."""

    def __init__(
        self, owner, stage: int | None, place: int, seen: dict, copied: bool, spent: list
    ) -> None:
        self.owner, self.stage, self.place, self.seen = owner, stage, place, seen
        self.copied, self.spent = copied, spent

    def replay(self) -> None:
        t = time.perf_counter()
        o = self.owner
        if self.stage is None:
            o.freqs.copy_(self.seen[self.place, o.steps, None])
        else:
            key = self.place, o.work.t, self.stage
            if o.out[self.stage] is None:  # the recording's output, as a graph's
                o.out[self.stage] = self.seen[key].clone()
            out = o.out[self.stage]
            out.copy_(self.seen[key])
            into = o.into[self.stage]
            if self.copied and into is not None:
                into.numpy()[...] = out.numpy()
            for name, at, value in self.seen.get((*key, "left"), ()):
                _tensor(o, name)[at].copy_(value)
        self.spent[0] += time.perf_counter() - t


def _census(model, data: bytes, segments: int, config) -> None:
    """Count the operations of each settled step's stages (``torchmix.Captured``); where
    they are compiled, what torch's profiler sees them call (``_compiled_calls``)."""
    # Per side: operations (or, compiled, calls), steps, and operations that launch a
    # kernel (the rest are views: ``torchmix.NO_KERNEL``).
    totals: dict[str, list[int]] = {"encoder": [0, 0, 0], "decoder": [0, 0, 0]}
    real = torchmix.Captured.run
    compiled = os.environ.get(torchmix.TORCH_COMPILE) == "1"
    names: Counter[str] = Counter()  # what the compiled encoder's steps called
    stages: dict[int, int] = {}  # the decoder's kernels by stage, the most of any step
    if compiled:
        import torch

        # The kernels of a replayed CUDA graph are hidden from the profiler: count the
        # compiled stages as they run without one.
        os.environ[torchmix.CUDA_GRAPHS] = "0"

    def counted(self, i, *inputs):
        side = "encoder" if self.stages[0].__name__.startswith("_encode") else "decoder"
        if compiled:
            if not self.compile or self.fused[i] is None:
                return real(self, i, *inputs)  # not yet compiled, or refused
            with torch.profiler.profile() as prof:
                out = real(self, i, *inputs)
            calls = _compiled_calls(prof.events())
            totals[side][0] += len(calls)
            if side == "encoder":
                names.update(calls)
        else:
            with torchmix.operation_log() as log:
                out = real(self, i, *inputs)
            totals[side][0] += sum(log.counts.values())
            totals[side][2] += log.kernels
            if side == "decoder":
                stages[i] = max(stages.get(i, 0), log.kernels)
        totals[side][1] += i == len(self.stages) - 1  # a step ends with its last stage
        return out

    network: list[tuple[int, int]] = []  # operations, kernels of each network step
    real_net = torchmix.NetworkSteps._step

    def net_counted(self):
        with torchmix.operation_log() as log:
            out = real_net(self)
        network.append((sum(log.counts.values()), log.kernels))
        return out

    torchmix.Captured.run = counted
    torchmix.NetworkSteps._step = net_counted
    try:
        _run(model, data, segments, True, config)
    finally:
        torchmix.Captured.run = real
        torchmix.NetworkSteps._step = real_net
    if network:
        ops, kernels = max(network)
        print(
            f"the network's step: {ops} operations, {kernels} of them kernels (recorded as "
            "one graph on a GPU)"
        )
    what = "operations"
    if compiled:
        on_gpu = model.ops.device.type == "cuda"
        what = "kernels" if on_gpu else "library operations between fused kernels"
    for side, (ops, steps, kernels) in totals.items():
        n = max(steps, 1)
        also = "" if compiled else f", {kernels / n:,.0f} of them kernels"
        print(f"{side}: {ops / n:,.0f} {what} a settled step{also} ({steps} steps)")
    if len(stages) == 9:  # the host decodes the bits (``NNCOMPRESS_HOST_BITS=1``)
        bits = sorted({stages[i] for i in range(1, len(stages) - 1)})
        print(
            f"decoder's kernels a stage: {stages[0]:,} (the byte's work, bit 0), "
            f"{'-'.join(map(str, bits))} (each of bits 1-7), {stages[len(stages) - 1]:,} "
            "(the last bit's update, the byte's end)"
        )
    if names:
        steps = max(totals["encoder"][1], 1)
        each = ", ".join(f"{n} {c / steps:g}" for n, c in names.most_common(12))
        print(f"encoder's step, by name: {each}")


#: What a compiled graph calls that computes nothing: allocations and views.
_NO_WORK = ("aten::empty", "aten::as_strided", "aten::view", "aten::reshape", "aten::resize_")


def _compiled_calls(events) -> list[str]:
    """On a GPU, the kernels a compiled stage ran. On the CPU, the library operations its
    graph called between its fused kernels (sorts, scans, scatters; not allocations or
    views): the profiler does not see the fused C++ kernels themselves."""
    gpu = [e.name for e in events if e.device_type.name == "CUDA"]
    if gpu:
        return gpu
    return [
        e.name
        for e in events
        if e.cpu_parent is not None
        and e.cpu_parent.name.startswith("## Call CompiledFxGraph")
        and not e.name.startswith(_NO_WORK)
        and "fused" not in e.name
    ]


if __name__ == "__main__":
    sys.exit(main())
