#!/usr/bin/env bash
# Run the whole test suite. Installs what a fresh Debian machine lacks (Python packages,
# Debian's chromium, a PostgreSQL server) and starts PostgreSQL if none is running.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

apt_install() {
  if [ -z "${APT_UPDATED:-}" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# 1. Chromium for the browser tests (Debian's package; Playwright drives it by path).
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium"
  apt_install chromium
fi

# 2. PostgreSQL on 127.0.0.1:5432 with a `test` database (trust auth), unless told otherwise.
if [ -z "${CONCIERGE_TEST_POSTGRES_URL:-}" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "== starting PostgreSQL"
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then apt_install postgresql; fi
    ver=$(ls /etc/postgresql | sort -n | tail -1)
    hba=/etc/postgresql/$ver/main/pg_hba.conf
    if ! $SUDO grep -q "concierge-tests" "$hba"; then
      printf '# concierge-tests\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all postgres trust\n' \
        | $SUDO sh -c "cat - '$hba' > '$hba.new' && mv '$hba.new' '$hba'"
    fi
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1 \
      || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
  fi
fi

# 3. Python packages.
if [ ! -x .venv/bin/pytest ] || [ pyproject.toml -nt .venv/.installed-dev ]; then
  echo "== installing Python packages"
  "$PY" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e ".[dev]"
  touch .venv/.installed-dev
fi

# 4. Lint, types, tests.
.venv/bin/ruff check bot channels tests bench
.venv/bin/mypy
exec .venv/bin/pytest "$@"
