#!/usr/bin/env bash
# The checks that need a GPU, as one run: what a lent GPU machine (no network, its own
# Python with torch and numba) should run in its few minutes, writing what it finds to
# $OUT (or ./gpu-check). Run from the repository root:
#
#     bash scripts/gpu_check.sh
#
# The parts run in order of what they are needed for, each under a timeout (their sum,
# 560 s, fits one command of a lent machine's 600), and each writes what it printed
# before its timeout, so one run brings back every part's results, whole or in part.
#
# 1. The machine: nvidia-smi, torch's view of the device, the CPU count.
# 2. The CUDA tests (170 s): tests/test_torchmix.py with the torch model on cuda (the
#    predictor on the GPU, recorded as CUDA graphs, network included, against the
#    compiled loops, archive for archive), tests/test_tritonmix.py's on cuda (a bit's
#    work as Triton kernels, compiled), tests/test_torchbytes.py's on cuda (the byte's
#    work, step by step) and tests/test_determinism.py's CUDA tests (the network on the
#    GPU against numpy); only the CUDA cases (-k cuda): their CPU cases run in every test
#    run, and the compiled one alone takes minutes of the machine's time.
# 3. scripts/device_mixing.py --device cuda (45 s): the predictor on the GPU (its steps
#    replayed as CUDA graphs) against the compiled loops on the same machine's CPU, at
#    256 and 2,048 segments a step (--wide's 128 a frame), both ways; then (60 s) the
#    same with a bit's work as Triton kernels (--triton), at 256 to 4,096, and (30 s) at
#    256 and 2,048 with the host coding each step's decisions (NNCOMPRESS_HOST_BITS=1:
#    what the device's range decoder and the encoder's rings save, side by side), and
#    (20 s) its kernels a step (--ops); then (20 s, --host) the host's time a settled
#    step at --wide's 128 segments, with the real waits but the graphs' replays (and the
#    copies they hold) stood in for.
# 4. scripts/device_frames.py (60 s): four frames on the GPU in one thread and in four
#    (nncompress/devicepool.py), beside the compiled loops.
# 5. scripts/coder_speed.py (20 s): the range coder's decisions per second on that
#    machine's CPU, called once per bit position of a step, the ceiling it puts on a
#    device; then (25 s) how many operations a settled step runs (--ops).
# 6. scripts/scaling.py (90 s): the command line with the predictor on the GPU (as Triton
#    kernels, NNCOMPRESS_TRITON=1: a step some 80 kernels, where torch's are 2,200), beside
#    the CPU path and xz/zstd (the measurement, at a size that fits a lent
#    machine's minutes; the is --mb 64): --wide on two 2 MiB frames at -T1 and
#    -T2, where -T2 codes them in two threads on the GPU, and on the CPU in two worker
#    processes.
# 7. The predictor without the graphs (20 s, NNCOMPRESS_CUDA_GRAPHS=0), one operation at
#    a time, at 1,024 and 2,048 segments. (Each stage compiled by torch.compile,
#    --compile, took 85 s here until a bit's work became Triton kernels of its own; its
#    compiling alone may take that, so it is left to a longer loan.)
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
timeout 170 python3 -m pytest -q -p no:cacheprovider tests/test_torchmix.py \
    tests/test_tritonmix.py tests/test_torchbytes.py tests/test_determinism.py -k cuda 2>&1 | tee "$out/tests.txt" | tail -15
timeout 45 python3 scripts/device_mixing.py --device cuda --bytes 65536 \
    --segments 256 2048 --decode 2>&1 | tee "$out/device_mixing.txt"
timeout 60 python3 scripts/device_mixing.py --device cuda --triton --bytes 65536 \
    --segments 256 1024 2048 4096 --decode 2>&1 | tee "$out/device_mixing_triton.txt"
NNCOMPRESS_HOST_BITS=1 timeout 30 python3 scripts/device_mixing.py --device cuda --triton \
    --bytes 65536 --segments 256 2048 --decode 2>&1 | tee "$out/device_mixing_host_bits.txt"
timeout 20 python3 scripts/device_mixing.py --device cuda --triton --bytes 16384 \
    --segments 1024 --ops 2>&1 | tee "$out/operations_triton.txt"
timeout 20 python3 scripts/device_mixing.py --device cuda --bytes 16384 --segments 256 \
    --host --repeat 3 2>&1 | tee "$out/host_time.txt"
timeout 60 python3 scripts/device_frames.py --device cuda --frames 4 --threads 1,4 2>&1 \
    | tee "$out/device_frames.txt"
timeout 20 python3 scripts/coder_speed.py --segments 64,1024,2048,4096 2>&1 \
    | tee "$out/coder_speed.txt"
timeout 25 python3 scripts/device_mixing.py --device cuda --bytes 16384 --segments 1024 --ops \
    2>&1 | tee "$out/operations.txt"
NNCOMPRESS_TORCH_MIXING=1 NNCOMPRESS_TRITON=1 timeout 90 python3 scripts/scaling.py --mb 4 --threads 1,2 \
    --frame-size 2M --variant="--wide, GPU|--wide --device cuda|--device cuda" \
    --variant="--wide, CPU|--wide|" --same-archives 2>&1 | tee "$out/scaling_wide.txt"
NNCOMPRESS_CUDA_GRAPHS=0 timeout 20 python3 scripts/device_mixing.py --device cuda \
    --bytes 32768 --segments 1024 2048 --decode 2>&1 | tee "$out/device_mixing_no_graphs.txt"
