"""The package as a user installs it: build the wheel, ``pip install`` it into an empty
virtualenv, run ``concierge run`` in an empty folder and ask the shop a question (issue 18)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, missing

# what the build reads: the packages, the content the wheel carries, the build files
SOURCES = ["bot", "channels", "nlu_data", "flows"]
BUILD_FILES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE"]


def build_wheel(out: Path, work: Path) -> Path:
    """``pip wheel`` of a copy of the sources (the checkout is left as it is)."""
    src = work / "src"
    for name in SOURCES:
        shutil.copytree(
            REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "demo_content")
        )
    for name in BUILD_FILES:
        shutil.copy(REPO / name, src / name)
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if r.returncode != 0 and "No matching distribution" in r.stderr:
        missing(f"the build backend could not be installed: {r.stderr.strip()[-300:]}")
    assert r.returncode == 0, r.stdout + r.stderr
    # the build's own warnings (setuptools deprecations...), not pip's about this machine's
    # index configuration
    warnings = [
        line
        for line in (r.stdout + r.stderr).splitlines()
        if "warn" in line.lower() and not line.startswith("WARNING: Location ")
    ]
    assert not warnings, "\n".join(warnings)
    (wheel,) = out.glob("concierge-*.whl")
    return wheel


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(900)
def test_the_installed_wheel_answers_in_an_empty_folder(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist", tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "bot/demo_content/nlu_data/en/nlu.yml" in names
    assert "bot/demo_content/flows/prompts.yml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONCIERGE_", "PYTHON"))}
    r = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "concierge"), "run", "--port", str(port)],
            cwd=empty,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300  # the first start trains the NLU model
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        r2 = httpx.post(
            f"{url}/webhooks/rest/webhook",
            json={"sender": "visitor", "message": "Do you ship to Austria?"},
            timeout=30,
        )
        assert r2.status_code == 200, r2.text
        assert "We ship to every EU country" in r2.json()[0]["text"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # the database and the model are made in the folder it runs in; no content was copied there
    assert (empty / "concierge.db").exists()
    assert not (empty / "nlu_data").exists()
