#!/usr/bin/env bash
# Build the benchmark environment of tools/bench_vs_references.py (never used by `make test`).
#
# timm needs torchvision, and PyPI's torchvision does not import beside the project's pinned
# torch 2.13.0 CPU wheel; torch 2.14.1 + torchvision 0.29.1 is the pair that installs and imports
# here (about 5.5 GB, a CUDA build that also runs on the CPU). The project goes in without its
# dependencies, so the pins of requirements/lock.txt stay what `make test` uses.
#
#   tools/make_bench_env.sh [ENV_DIR]        (default: .bench-venv)
#   ENV_DIR/bin/python tools/bench_vs_references.py
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ENV_DIR="${1:-$ROOT/.bench-venv}"
PYTHON="${PYTHON:-python3}"

test -x "$ENV_DIR/bin/python" || "$PYTHON" -m venv "$ENV_DIR"
PY="$ENV_DIR/bin/python"
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
# The rest at the project's own pins where it has them (the lock file names tensorflow, keras, ...).
pins=()
# pytorch-lightning, torchmetrics: deepvision's PyTorch models import them (the project goes in with --no-deps).
for pkg in tensorflow_cpu keras h5py safetensors numpy ml_dtypes huggingface_hub pytorch-lightning torchmetrics lightning-utilities; do
  line="$(grep -i -E "^${pkg}==" "$ROOT/requirements/lock.txt" | head -1 || true)"
  pins+=("${line:-$pkg}")
done
"$PY" -m pip install --quiet "${pins[@]}" timm
"$PY" -m pip install --quiet --no-deps --no-build-isolation -e "$ROOT"
"$PY" - <<'PY'
# torch/torchvision first: torchvision imported after TensorFlow segfaults (a clash of their bundled
# native libraries), so the bench scripts import torch, torchvision and timm before TensorFlow too.
import torch, torchvision, timm
import keras, tensorflow as tf
import deepvision  # noqa: F401
print(f"bench env ready: torch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}, "
      f"tensorflow {tf.__version__}, keras {keras.__version__}")
PY
