#!/usr/bin/env bash
# Run HERE (where pip reaches PyPI), before a GPU check: downloads the wheels of requirements.txt
# that the GPU machine's image lacks (it holds torch, torchvision, numpy, opencv-headless, pandas,
# scipy, scikit-learn, matplotlib, onnx, onnxruntime; it reaches no network) into .whl/, for
# Python 3.12 on x86-64. The device tool then carries .whl (name it in `carry`). Nothing else:
# gradio, plotly and polars are not needed by the check (it imports neither).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
pins() { grep -E "^$1==" requirements.txt | sed 's/ .*//'; }
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLAT[@]}" -d .whl \
  "$(pins ultralytics)" "$(pins pycocotools)" "$(pins faster-coco-eval)" ultralytics-thop
# grad-cam and ttach publish pure-Python sources only: built into wheels here (any Python, any platform).
python3 -m pip wheel -q --no-deps -w .whl "$(pins grad-cam)" ttach
du -sh .whl && ls .whl
