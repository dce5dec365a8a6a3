#!/usr/bin/env bash
# Run the whole test suite: ruff, mypy, pytest. Extra arguments go to pytest.
#
# The tests need Debian's chromium (browser tests) and a PostgreSQL server on 127.0.0.1:5432
# that trusts local connections, with a database `test` (or CONCIERGE_TEST_POSTGRES_URL). When
# one is missing this script says what it would change on the machine (packages, pg_hba.conf,
# a started cluster, a database) and does it only with consent: CI=true,
# CONCIERGE_TEST_SETUP=1, or a "yes" typed in a terminal. Otherwise it changes nothing and
# exits 2. The Python packages go into .venv in the repository, without asking.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
PG_URL="postgresql://postgres@127.0.0.1:5432/test"

pg_up() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
test_db_exists() {
  psql "${PG_URL%/test}/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1
}

# 1. What is missing, and what setting it up would change.
plan=()
need_chromium="" need_pg_install="" need_pg_start="" need_db=""
if ! command -v chromium >/dev/null 2>&1; then
  need_chromium=1
  plan+=("install Debian's chromium package (${SUDO:+sudo }apt-get install chromium): the browser tests drive it")
fi
if [ -z "${CONCIERGE_TEST_POSTGRES_URL:-}" ]; then
  if ! pg_up; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      need_pg_install=1
      plan+=("install Debian's postgresql package (${SUDO:+sudo }apt-get install postgresql)")
    fi
    need_pg_start=1
    plan+=("put 'trust' lines for 127.0.0.1, ::1 and the local postgres user at the top of the cluster's pg_hba.conf (/etc/postgresql/<version>/main/pg_hba.conf): the tests connect without a password")
    plan+=("start the PostgreSQL cluster (pg_ctlcluster <version> main start) on 127.0.0.1:5432")
    need_db=1
    plan+=("create the database 'test' if it is missing (the tests make throw-away databases beside it)")
  elif ! test_db_exists; then
    need_db=1
    plan+=("create the database 'test' on the PostgreSQL at 127.0.0.1:5432 (the tests make throw-away databases beside it)")
  fi
fi

# 2. Consent.
if [ ${#plan[@]} -gt 0 ]; then
  echo "== the tests need changes to this machine's configuration:"
  for line in "${plan[@]}"; do echo "   - $line"; done
  if [ "${CI:-}" = "true" ] || [ "${CONCIERGE_TEST_SETUP:-}" = "1" ]; then
    echo "== making them (CI=true or CONCIERGE_TEST_SETUP=1)"
  elif [ -t 0 ] && [ -t 1 ]; then
    read -r -p "Make these changes now? [y/N] " answer
    case "$answer" in
      y | Y | yes | YES) ;;
      *)
        echo "nothing was changed; run again with CONCIERGE_TEST_SETUP=1 to allow it" >&2
        exit 2
        ;;
    esac
  else
    {
      echo "nothing was changed. To allow these changes run"
      echo "    CONCIERGE_TEST_SETUP=1 bash scripts/test.sh $*"
      echo "(or run it in a terminal and answer yes). Or provide them yourself: Debian's chromium,"
      echo "and a PostgreSQL on 127.0.0.1:5432 that trusts local connections with a database"
      echo "'test', or CONCIERGE_TEST_POSTGRES_URL=postgresql://USER@HOST:PORT/DB for another one."
    } >&2
    exit 2
  fi
fi

# 3. The changes, each announced.
apt_install() {
  if [ -z "${APT_UPDATED:-}" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
if [ -n "$need_chromium" ]; then
  echo "== installing chromium"
  apt_install chromium
fi
if [ -n "$need_pg_install" ]; then
  echo "== installing postgresql"
  apt_install postgresql
fi
if [ -n "$need_pg_start" ]; then
  ver=$(ls /etc/postgresql | sort -n | tail -1)
  hba=/etc/postgresql/$ver/main/pg_hba.conf
  if ! $SUDO grep -q "concierge-tests" "$hba"; then
    echo "== adding trust lines for local test connections to $hba"
    printf '# concierge-tests\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all postgres trust\n' \
      | $SUDO sh -c "cat - '$hba' > '$hba.new' && mv '$hba.new' '$hba'"
  fi
  echo "== starting PostgreSQL $ver"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if [ -n "$need_db" ] && pg_up && ! test_db_exists; then
  echo "== creating the database 'test'"
  psql "${PG_URL%/test}/postgres" -c "CREATE DATABASE test" >/dev/null || {
    echo "error: cannot create the database 'test' as postgres on 127.0.0.1:5432;" \
      "set CONCIERGE_TEST_POSTGRES_URL to a database you may use" >&2
    exit 2
  }
fi

# 4. Python packages (in .venv, nothing outside the repository).
if [ ! -x .venv/bin/pytest ] || [ pyproject.toml -nt .venv/.installed-dev ]; then
  echo "== installing Python packages into .venv"
  "$PY" -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e ".[dev]"
  touch .venv/.installed-dev
fi

# 5. Lint, types, tests.
.venv/bin/ruff check bot channels tests bench
.venv/bin/mypy
exec .venv/bin/pytest "$@"
