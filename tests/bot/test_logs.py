"""What ``concierge run`` writes to its log: no bot token, visitor token, signature or whole
rejected body, in the log file and on stderr (the process started as users start it)."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from bot.settings import Settings
from channels.web.identity import user_hash
from tests.auxil.build_messages import slack_dm, tg_message
from tests.auxil.warm import warm_nlu
from tests.auxil.workdir_process import ConciergeProcess
from tests.conftest import REPO
from tests.fakes.slack_api import FakeSlack, send_event
from tests.fakes.telegram_api import FakeTelegram

TG_TOKEN = "7012345678:AAHk3mQ-tDz9xVb_Lq2w4Ry7uI8oP0sNm1c"
SLACK_TOKEN = "xoxb-1111-2222-SeCrEtSlAcKtOkEn"
SLACK_SECRET = "slack-signing-secret-42"
IDENTITY_SECRET = "shop-identity-secret"


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram(token=TG_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def product(
    tmp_path: Path, telegram: FakeTelegram, slack: FakeSlack, model_cache: Path
) -> Iterator[ConciergeProcess]:
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
    proc = ConciergeProcess(
        tmp_path / "shop",
        model_dir=model_dir,
        log_file=tmp_path / "shop" / "logs" / "concierge.log",
        log_level="INFO",
        telegram_token=TG_TOKEN,
        telegram_api_url=telegram.url,
        slack_bot_token=SLACK_TOKEN,
        slack_signing_secret=SLACK_SECRET,
        slack_api_url=slack.api_url,
        web_identity_secret=IDENTITY_SECRET,
    ).start()
    yield proc
    proc.stop()


async def chat_twice(port: int) -> str:
    """A visitor chats, then comes back with the token (and the shop's identification)."""
    url = f"ws://127.0.0.1:{port}/ws/chat"
    async with websockets.connect(url) as ws:
        token = await frame(ws, "session")
        await ws.send(json.dumps({"type": "message", "text": "hello", "client_id": "a"}))
        await frame(ws, "ack")
    visitor_token = str(token["token"])
    query = f"token={visitor_token}&user_id=42&user_hash={user_hash(IDENTITY_SECRET, '42')}"
    async with websockets.connect(f"{url}?{query}") as ws:
        await frame(ws, "history")
    return visitor_token


async def frame(ws: websockets.ClientConnection, kind: str) -> dict[str, object]:
    async def go() -> dict[str, object]:
        while True:
            f = json.loads(await ws.recv())
            if f["type"] == kind:
                return dict(f)

    return await asyncio.wait_for(go(), 30)


def test_no_secret_reaches_the_log(
    product: ConciergeProcess, telegram: FakeTelegram, slack: FakeSlack, tmp_path: Path
) -> None:
    telegram.push_update(tg_message("hello", user_id=77))
    telegram.wait_for("sendMessage", 1, timeout=60)
    send_event(product.url, SLACK_SECRET, slack_dm("hello", channel="D1"))
    slack.wait_for("chat.postMessage", 1, timeout=60)
    visitor_token = asyncio.run(chat_twice(product.port))
    # five unsigned 900 KB bodies, one with a signature-shaped header
    for i in range(5):
        r = httpx.post(
            f"{product.url}/slack/events",
            content=b'{"type": "event_callback", "x": "' + b"A" * 900_000 + b'"}',
            headers={
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": "1700000000",
                "X-Slack-Signature": "v0=" + f"{i}" * 64,
            },
            timeout=30,
        )
        assert r.status_code == 401
    product.stop()

    log_file = product.workdir / "logs" / "concierge.log"
    for text in (product.stderr(), log_file.read_text()):
        # the lines are there (httpx's request lines, uvicorn's access log), redacted
        assert "/bot<redacted>/getUpdates" in text
        assert "/ws/chat?token=<redacted>" in text
        assert TG_TOKEN not in text and TG_TOKEN.split(":")[1] not in text
        assert visitor_token not in text
        assert SLACK_TOKEN not in text
        assert user_hash(IDENTITY_SECRET, "42") not in text
        assert "A" * 3000 not in text
    assert log_file.stat().st_size < 200_000
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
