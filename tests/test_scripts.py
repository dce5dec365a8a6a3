"""``scripts/test.sh`` changes nothing on the machine without consent (issue 18)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import REPO


def path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH with every command of this machine's PATH except ``missing``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not folder or not Path(folder).is_dir():
            continue
        for tool in Path(folder).iterdir():
            target = bin_dir / tool.name
            if tool.name in missing or target.exists() or target.is_symlink():
                continue
            target.symlink_to(tool)
    return str(bin_dir)


def test_test_sh_says_what_it_would_change_and_changes_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CONCIERGE_TEST_SETUP")}
    env["PATH"] = path_without(tmp_path, "chromium", "apt-get", "sudo")
    env["CONCIERGE_TEST_POSTGRES_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    r = subprocess.run(
        ["bash", str(REPO / "scripts" / "test.sh"), "-k", "nothing"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "install Debian's chromium package" in r.stdout
    assert "nothing was changed" in r.stderr
    assert "CONCIERGE_TEST_SETUP=1 bash scripts/test.sh -k nothing" in r.stderr
    assert "== installing" not in r.stdout and "ruff" not in r.stdout  # stopped before anything


def test_test_sh_asks_before_touching_postgresql(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CI", "CONCIERGE_TEST_SETUP", "CONCIERGE_TEST_POSTGRES_URL")
    }
    env["PATH"] = path_without(tmp_path, "pg_isready", "pg_ctlcluster", "apt-get", "sudo")
    r = subprocess.run(
        ["bash", str(REPO / "scripts" / "test.sh")],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "install Debian's postgresql package" in r.stdout
    assert "pg_hba.conf" in r.stdout and "start the PostgreSQL cluster" in r.stdout
    assert "CONCIERGE_TEST_SETUP=1 bash scripts/test.sh" in r.stderr
