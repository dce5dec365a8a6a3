"""``concierge run`` as users start it: a process of its own, configured by environment only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ConciergeProcess:
    """``python -m channels.cli run`` in ``workdir`` (its database, secret and log live there),
    with ``CONCIERGE_*`` from ``env`` only (nothing from the caller's environment or .env)."""

    def __init__(self, workdir: Path, **env: Any) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {k: v for k, v in os.environ.items() if not k.startswith("CONCIERGE_")}
        self.env = {
            **base,
            "CONCIERGE_PORT": str(self.port),
            "CONCIERGE_CONTENT_DIR": str(REPO),
            **{f"CONCIERGE_{k.upper()}": str(v) for k, v in env.items()},
        }
        self.stderr_path = workdir / "stderr.txt"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 240) -> ConciergeProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.stderr_path.open("ab") as err:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "channels.cli", "run"],
                cwd=self.workdir,
                env=self.env,
                stdout=err,
                stderr=err,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"concierge run exited:\n{self.stderr()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"concierge run did not answer:\n{self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
