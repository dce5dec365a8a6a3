"""A fresh clone, alone in an empty folder, passes its tests: nothing outside the repository
(no folder beside it, no file of this checkout) is needed by the product or the tests (issue 18)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, missing

# a fast subset that reads the content, trains the NLU and answers over real HTTP
SUBSET = [
    "tests/bot/test_engine.py",
    "tests/bot/nlu/test_model.py",
    "tests/channels/web/test_rest.py",
    "tests/bot/test_cli.py",
]

RUN = """
import sys
import bot, pytest
print("bot from", bot.__file__, flush=True)
sys.exit(pytest.main(sys.argv[1:]))
"""


def clone_alone(tmp_path: Path) -> Path:
    """``git clone`` of this checkout's HEAD into ``<empty folder>/repo``."""
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        missing("git and a git checkout are needed to clone the repository")
    assert git
    head = subprocess.run(
        [git, "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    alone = tmp_path / "alone"
    alone.mkdir()
    dest = alone / "repo"
    subprocess.run(
        [git, "clone", "--quiet", "--no-checkout", str(REPO), str(dest)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [git, "-C", str(dest), "checkout", "--quiet", head], check=True, capture_output=True
    )
    assert [p.name for p in alone.iterdir()] == ["repo"]  # nothing beside it
    return dest


@pytest.mark.timeout(900)
def test_a_fresh_clone_alone_passes_its_tests(tmp_path: Path) -> None:
    clone = clone_alone(tmp_path)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONCIERGE_", "PYTEST_")) or k == "CONCIERGE_TEST_POSTGRES_URL"
    }
    env["PYTHONPATH"] = str(clone)  # the clone's own packages, not this checkout's install
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN,
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "not postgres",
            *SUBSET,
        ],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert f"bot from {clone / 'bot' / '__init__.py'}" in r.stdout, out[:2000]
    assert " passed" in r.stdout and " failed" not in r.stdout and " error" not in r.stdout
