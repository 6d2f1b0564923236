#!/usr/bin/env bash
# Paper scale on a CUDA GPU: bench/scale.py at ImageNet's 1000 classes (16-shot, every image
# really encoded) with CLIP ViT-B/16 shapes, once in float32 and once in float16, then the
# agreement of the two (bench/agreement.py: rank correlation of the templates' scores, accuracy
# differences, same selected template, test H).
#
#   bench/gpu.sh [CLASSES] [STEPS]        # defaults: 1000 classes, 10 steps
#
# Prints, per dtype: images/s (image tower), prompts/s (text tower), s/step and its split,
# memory and cache sizes; then the agreement. Not part of `make test`.
# Needs: a CUDA build of torch in $PYTHON's environment (the Makefile's .venv holds the CPU
# build; e.g. `pip install torch --index-url https://download.pytorch.org/whl/cu124` in another
# venv with `pip install -e . && pip install --no-deps open_clip_torch`), and the open_clip
# wheel for CLIP's vocabulary. Set PYTHON to that interpreter and WORK to keep the files.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
CLASSES=${1:-1000}
STEPS=${2:-10}
SHOTS=${SHOTS:-16}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/ipo-gpu-XXXXXX")}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

"$PYTHON" - <<'PY' || { echo "gpu.sh: needs a CUDA device and a CUDA build of torch (see the header)" >&2; exit 2; }
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device")
print(f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
PY

for dtype in float32 float16; do
    mkdir -p "$WORK/$dtype"
    if [ "$dtype" != float32 ]; then  # one checkpoint for both: the same random weights
        ln -sfn "$WORK/float32/clip-vit-b-16" "$WORK/$dtype/clip-vit-b-16"
    fi
    echo "== $dtype =="
    "$PYTHON" bench/scale.py --classes "$CLASSES" --steps "$STEPS" --shots "$SHOTS" --device cuda --dtype "$dtype" \
        --encode-images --image-sample 256 --work "$WORK/$dtype" --json "$WORK/$dtype.json"
done

echo "== float16 against float32 =="
"$PYTHON" bench/agreement.py "$WORK/float32/run-$CLASSES" "$WORK/float16/run-$CLASSES"
"$PYTHON" - "$WORK" <<'PY'
import json
import sys
rows = {d: json.load(open(f"{sys.argv[1]}/{d}.json"))[0] for d in ("float32", "float16")}
for d, r in rows.items():
    print(f"{d}: {1 / r['sec_per_image']:.0f} images/s, {r['prompts_s']:.0f} prompts/s, {r['s_step']:.2f} s/step")
print(f"float16 speed-up: text x{rows['float16']['prompts_s'] / rows['float32']['prompts_s']:.2f}, "
      f"images x{rows['float32']['sec_per_image'] / rows['float16']['sec_per_image']:.2f}")
print(f"files in {sys.argv[1]}")
PY
