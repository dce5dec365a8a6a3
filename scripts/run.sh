#!/usr/bin/env bash
# Run Concierge with the embedded defaults: web chat on http://127.0.0.1:8000, SQLite file,
# the demo shop content. No tokens needed. Extra arguments go to `concierge run`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/concierge ] || [ pyproject.toml -nt .venv/.installed ]; then
  "$PY" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e .
  touch .venv/.installed
fi
echo "concierge is installed in $PWD/.venv: run '. .venv/bin/activate' to put the 'concierge' command on PATH (or call .venv/bin/concierge)."
exec .venv/bin/concierge run "$@"
