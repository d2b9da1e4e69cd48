#!/usr/bin/env bash
# Creates .venv (Python 3.10-3.12) and installs the project with its test
# extras. Re-running is cheap: pip is skipped while setup.py is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  for cand in python3.11 python3.12 python3.10 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
  done
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "[setup] creating .venv with $PY"
  "$PY" -m venv .venv
fi
stamp=".venv/.const_cl_installed"
want="$(sha256sum setup.py | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  echo "[setup] installing tensorflow 2.20, tf-models-official 2.20 and the project (first time: ~3 min, ~3 GB)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi
