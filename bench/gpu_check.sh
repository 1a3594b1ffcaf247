#!/usr/bin/env bash
# The GPU check of issue 37, for one call of the device tool (a few minutes on an H100):
#   here:   bash bench/gpu_wheels.sh && bash bench/gpu_stage.sh aside
#   device: run(command="bash bench/gpu_check.sh", carry=[".whl", ".bccd"], timeout_s=540)
#   here:   bash bench/gpu_stage.sh back
# Installs only the carried wheels (pins of requirements.txt the image lacks), then runs the GPU
# tests and bench/gpu_check.py; everything lands in $OUT (gpu_check.json, gpu_tests.log, the log).
# The device tool sends at most 64 MiB of working tree and weights/ alone is ~290 MB: around the
# call, `bash bench/gpu_stage.sh aside` (here, before: keeps the checkpoints the check loads, copies
# BCCD into .bccd/) and `bash bench/gpu_stage.sh back` (after); then carry=[".whl", ".bccd"].
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu-check}"; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 YOLO_OFFLINE=1 YOLO_AUTOINSTALL=false YOLO_CONFIG_DIR=/tmp/ycfg
[ -d .bccd/BCCD ] && export ATTENTION_LENS_BCCD="$PWD/.bccd"  # the GPU tests' data set, carried (gpu_stage.sh)
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:${PYTHONPATH:-} || exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, ultralytics; print('torch', torch.__version__, 'ultralytics', ultralytics.__version__, 'cuda', torch.cuda.is_available())"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/runtime/test_gpu.py tests/test_device.py -rs 2>&1 | tee "$OUT/gpu_tests.log"
timeout 330 python3 -m bench.gpu_check --device cuda --out "$OUT" 2>&1 | tee "$OUT/gpu_check.log"
