"""``concierge run`` in a process of its own, as a deployment runs it (for crash tests and
bench/faults.py): environment variables in, ``/healthz`` waited for, stopped by a signal."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

REPO = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ConciergeProcess:
    """``python -m channels.cli run`` with ``env`` (``CONCIERGE_*``) on a port of its own."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "CONCIERGE_HOST": "127.0.0.1",
            "CONCIERGE_PORT": str(self.port),
            **env,
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    def start(self, timeout: float = 120) -> ConciergeProcess:
        self._out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "channels.cli", "run"],
            cwd=REPO,
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"concierge run exited with {self.proc.returncode}: {self.log}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"concierge run did not start: {self.log}")
            time.sleep(0.1)

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """``kill -9``: no cleanup of any kind."""
        self.signal(signal.SIGKILL)
        self.wait()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, as a deploy stops a process; waits for the exit."""
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        if self._out is not None:
            self._out.close()
            self._out = None
        return code
