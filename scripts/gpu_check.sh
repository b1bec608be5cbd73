#!/usr/bin/env bash
# The checks that need a GPU, as one run: what a lent GPU machine (no network, its own
# Python with torch and numba) should run in its few minutes, writing what it finds to
# $OUT (or ./gpu-check). Run from the repository root:
#
#     bash scripts/gpu_check.sh
#
# 1. The machine: nvidia-smi, torch's view of the device, the CPU count.
# 2. The CUDA tests: tests/test_torchmix.py with the torch model on cuda (the predictor
#    on the GPU, recorded as CUDA graphs, against the compiled loops, archive for archive),
#    tests/test_torchbytes.py's on cuda (the byte's work, step by step) and
#    tests/test_determinism.py's CUDA tests (the network on the GPU against numpy); only
#    the CUDA cases (-k cuda): their CPU cases run in every test run, and the compiled
#    one alone takes minutes of the machine's time.
# 3. scripts/device_mixing.py --device cuda: the predictor on the GPU (its steps replayed
#    as CUDA graphs) against the compiled loops on the same machine's CPU, at 256 to 4,096
#    segments a step (--wide's 128; eight frames side by side would give 1,024), both
#    ways; then at 1,024 and 2,048
#    without the graphs (NNCOMPRESS_CUDA_GRAPHS=0), one operation at a time; then at
#    2,048 with each stage compiled into fused kernels first (--compile).
# 4. scripts/coder_speed.py: the range coder's decisions per second on that machine's CPU,
#    called once per bit position of a step, the ceiling it puts on a device; then
#    scripts/device_frames.py: four frames on the GPU in one thread and in four.
# 5. scripts/scaling.py: the command line with the predictor on the GPU, beside the CPU
#    path and xz/zstd with all threads (the measurement, at sizes that fit a lent
#    machine's minutes; the is --mb 64): at -T1 and -T2, where -T2 codes the two
#    frames in two threads on the GPU (nncompress/devicepool.py), and on the CPU in two
#    worker processes.
#
# Packages the machine lacks (constriction; threadpoolctl, rarfile where missing) travel
# as wheels in .whl/ (``echo /.whl/ >> .git/info/exclude``, then ``pip download --no-deps
# --only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64 -d .whl
# constriction``); this script installs whatever is there into /tmp/site first.
set -u
out=${OUT:-gpu-check}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{
    date -u
    nvidia-smi 2>&1 | head -15
    nproc
    python3 -c 'import torch; print(torch.__version__, torch.cuda.is_available(),
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")'
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_torchmix.py tests/test_torchbytes.py \
    tests/test_determinism.py -k cuda 2>&1 | tee "$out/tests.txt" | tail -15
python3 scripts/device_mixing.py --device cuda --bytes 131072 --segments 256 1024 2048 4096 \
    --decode 2>&1 | tee "$out/device_mixing.txt"
# The same with each step run one operation at a time (no CUDA graphs), at two widths.
NNCOMPRESS_CUDA_GRAPHS=0 python3 scripts/device_mixing.py --device cuda --bytes 65536 \
    --segments 1024 2048 --decode 2>&1 | tee "$out/device_mixing_no_graphs.txt"
# Each settled stage compiled (torch.compile: fused Triton kernels), then recorded as a
# CUDA graph, at 2,048 segments (a new width is a new compilation, minutes);
# then the kernels a compiled settled step launches (--ops, the same shapes).
timeout 480 python3 scripts/device_mixing.py --device cuda --compile --ops --bytes 131072 \
    --segments 2048 --decode 2>&1 | tee "$out/device_mixing_compiled.txt"
# How many operations (kernels in a graph) a settled step runs.
python3 scripts/device_mixing.py --device cuda --bytes 16384 --segments 1024 --ops 2>&1 \
    | tee "$out/operations.txt"
python3 scripts/coder_speed.py --segments 64,1024,2048,4096 2>&1 | tee "$out/coder_speed.txt"
# Four frames of 256 KiB (128 segments a step each) on the GPU, one thread and four, beside
# the compiled loops: what frames side by side gain there (nncompress/devicepool.py).
timeout 300 python3 scripts/device_frames.py --device cuda --frames 4 --threads 1,4 2>&1 \
    | tee "$out/device_frames.txt"
# 5. The command line on Python source: --wide with the predictor on the GPU and on this
#    machine's CPU (the same archive, checked; 4 MiB, --wide's two blocks in frames of
#    2 MiB, one frame at a time and two side by side), then the default level on every
#    core (16 MiB); xz -9 and zstd -19 with as many threads beside each.
NNCOMPRESS_TORCH_MIXING=1 python3 scripts/scaling.py --mb 4 --threads 1,2 --frame-size 2M \
    --variant="--wide, GPU|--wide --device cuda|--device cuda" \
    --variant="--wide, CPU|--wide|" --same-archives 2>&1 | tee "$out/scaling_wide.txt"
python3 scripts/scaling.py --mb 16 --threads "$(nproc)" 2>&1 | tee "$out/scaling_default.txt"
