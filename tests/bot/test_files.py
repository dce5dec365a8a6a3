"""The files ``concierge run`` creates hold conversations and secrets: only their owner may
read them (0600), on a fresh start of the process as users run it."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx

from bot.settings import Settings
from tests.auxil.warm import warm_nlu
from tests.auxil.workdir_process import ConciergeProcess
from tests.conftest import REPO


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_database_secret_and_log_are_private(tmp_path: Path, model_cache: Path) -> None:
    model_dir = model_cache / "demo"
    warm_nlu(
        Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url="sqlite+aiosqlite://",
            content_dir=REPO,
            model_dir=model_dir,
            secret_key="x",
        )
    )
    shop = tmp_path / "shop"
    proc = ConciergeProcess(shop, model_dir=model_dir, log_file=shop / "concierge.log").start()
    try:
        r = httpx.post(
            f"{proc.url}/webhooks/rest/webhook",
            json={"sender": "s1", "message": "Do you ship to Austria?"},
            timeout=30,
        )
        assert r.status_code == 200
        files = [shop / n for n in ("concierge.db", ".concierge-secret", "concierge.log")]
        files += [p for p in (shop / "concierge.db-wal", shop / "concierge.db-shm") if p.exists()]
        assert {p.name: mode(p) for p in files} == {p.name: "0o600" for p in files}
    finally:
        proc.stop()
