#!/usr/bin/env bash
# Every GPU check in one go, for a session that has a CUDA GPU for a few minutes:
#
#   1. the whole test suite (the CUDA tests in the foreground, the rest on the CPU cores beside them),
#   2. where a training step waits for the device (benchmarks/sync_check.py),
#   3. the speed table against plain PyTorch (benchmarks/speed.py --device cuda --write),
#      with docs/benchmarks.md copied to OUT,
#   4. a profile of one pix2pix and one DCGAN step (benchmarks/profile_step.py --device cuda),
#   5. multi-process training on the host's CPU cores, 1 against 2, 4 and 8 processes with gloo
#      (benchmarks/distributed_speed.py), since a lent machine has one GPU but many cores.
#
#   bash benchmarks/cuda_session.sh [OUT]     # logs into OUT (default: $OUT, else /tmp/ganctl-cuda)
#
# Each part has its own time limit, so a hang costs that part, not the session. On an H200 host
# (2026-12-04) the parts took: install 9 s, CUDA tests 60 s (the CPU tests beside them 171 s),
# sync check 15 s, speed (a)-(d) about 190 s, profiles 30 s: give the call about 9 minutes. A machine with no
# package index can bring wheels in .whl/ (installed with --no-index); ganctl itself is installed
# editable without build isolation, so nothing is downloaded.
set -u
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-/tmp/ganctl-cuda}}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 GANCTL_DISABLE_PROGRESS_BARS=1
PY=${PYTHON:-python3}
started=$(date +%s)
stamp() { echo "[$(( $(date +%s) - started )) s] $*"; }

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    $PY -c "import torch, sys; print(sys.version.split()[0], torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())"
    # wheels the image lacks (platformdirs, torch-fidelity and its tqdm); what it has stays
    if [ -d .whl ]; then $PY -m pip install -q --no-index --find-links .whl platformdirs torch-fidelity; fi
    $PY -m pip install -q --no-index --no-deps --no-build-isolation -e . || echo "editable install failed: running from the tree"
    $PY -m pip list 2>/dev/null | grep -i -E "^(torch|torchvision|typer|rich|pillow|safetensors|platformdirs|pytest|numpy|torch-fidelity|tqdm|onnx|onnxruntime|tensorboard) "
} >"$OUT/env.txt" 2>&1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
stamp "installed: $(tail -n 8 "$OUT/env.txt" | tr '\n' ' ')"

# the CPU tests run beside the GPU work; their timing is not measured
(timeout 300 $PY -m pytest -q -p no:cacheprovider --ignore=tests/test_cuda.py >"$OUT/suite.txt" 2>&1
 echo "exit $?" >>"$OUT/suite.txt") &
suite=$!

timeout 180 $PY -m pytest -q -p no:cacheprovider -rA tests/test_cuda.py >"$OUT/cuda-tests.txt" 2>&1
stamp "CUDA tests: $(tail -n 1 "$OUT/cuda-tests.txt")"
timeout 90 $PY benchmarks/sync_check.py >"$OUT/sync.txt" 2>&1
stamp "sync check: exit $?"
wait $suite
stamp "CPU suite: $(tail -n 2 "$OUT/suite.txt" | tr '\n' ' ')"
# short copies that come back even when the whole logs do not (a lent machine's limits on returned files)
grep -E "^(FAILED|ERROR) |^E  |passed|failed" "$OUT/suite.txt" | head -n 120 >"$OUT/suite-summary.txt"
grep -E "^(FAILED|ERROR) |^E  |passed|failed" "$OUT/cuda-tests.txt" | head -n 120 >"$OUT/cuda-summary.txt"
tail -n 60 "$OUT/sync.txt" >"$OUT/sync-summary.txt"

# issue 21's rows; the end-to-end rows (e, f, g) took over 3 minutes on an H200 host: SPEED_ROWS=a,b,c,d,e,f,g
timeout 300 $PY benchmarks/speed.py --device cuda --rounds 1 --only "${SPEED_ROWS:-a,b,c,d}" --write \
    >"$OUT/speed.md" 2>"$OUT/speed.err"
stamp "speed: exit $?"
for model in ${PROFILE_MODELS:-pix2pix dcgan}; do
    timeout 60 $PY benchmarks/profile_step.py "$model" --device cuda --top 12
done >"$OUT/profile.txt" 2>&1
stamp "profiles: exit $?"
timeout ${DIST_TIMEOUT:-120} $PY benchmarks/distributed_speed.py --processes "${DIST_PROCESSES:-2,4,8}" \
    --section distributed_speed_gpu_host --write >"$OUT/distributed.md" 2>"$OUT/distributed.err"
stamp "distributed on the CPU cores: exit $?"
cp docs/benchmarks.md "$OUT/"
