#!/usr/bin/env bash
# Main job: install, then ConST-CL demo pretraining + evaluation against a
# randomly initialized network (kNN; linear probe, fine-tuning and retrieval
# on the demo classes). Extra flags go to run_demo (--nodownstream: kNN only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/python -m official_projects_const_cl.tools.run_demo \
  --model_dir="${MODEL_DIR:-runs/const_cl_demo}" "$@"
