#!/usr/bin/env bash
# Installs, then runs the test suite (CPU, a few minutes) on up to 4 cores
# with pytest-xdist (PYTEST_WORKERS=N to choose). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
workers="${PYTEST_WORKERS:-$(.venv/bin/python -c \
  'import os; print(max(1, min(len(os.sched_getaffinity(0)), 4)))')}"
# Test files stay whole on one worker, so module fixtures run once.
exec .venv/bin/python -m pytest -q -n "$workers" --dist loadfile tests "$@"
