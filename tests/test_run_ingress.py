"""Messages coming in, as ``concierge run`` takes them: the runtime and app factory the command
builds (``Runtime(settings)`` then ``create_app(settings, runtime=...)``), under uvicorn, with
the fake Telegram and Slack servers over real HTTP.

What a person notices: a message that reached us is never lost, whatever fails while it is
answered (they get a short apology in their language and their next message works); a platform
event acknowledged once is processed once, even across a crash; polling survives any error.
Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.engine import Turn
from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.models import Message
from tests.auxil.build_messages import slack_dm, tg_message
from tests.auxil.process import REPO, ConciergeProcess
from tests.auxil.warm import warm_nlu
from tests.conftest import LiveServer
from tests.fakes.rasa_api import FakeRasa
from tests.fakes.slack_api import FakeSlack, event_callback, send_event
from tests.fakes.telegram_api import FakeTelegram

SECRET = "signing-secret"


@pytest.fixture
def settings(
    telegram: FakeTelegram, slack: FakeSlack, db_url: str, make_settings: Callable[..., Settings]
) -> Settings:
    return warm_nlu(
        make_settings(
            db_url,
            telegram_token=telegram.token,
            telegram_api_url=telegram.url,
            slack_bot_token="xoxb-test",
            slack_signing_secret=SECRET,
            slack_api_url=slack.api_url,
        )
    )


async def _boom(turn: Turn) -> bool:
    if "boom" in turn.inbound.text:
        raise ZeroDivisionError("a bug in a feature")
    return False


def stored(db_url: str, channel: str) -> list[tuple[str, str]]:
    """``(direction, text)`` of the stored messages of a channel, oldest first."""

    async def go() -> list[tuple[str, str]]:
        db = Database(db_url)
        try:
            async with db.session() as s:
                rows = await s.execute(
                    select(Message.direction, Message.text)
                    .where(Message.channel == channel)
                    .order_by(Message.id)
                )
                return [(d, t) for d, t in rows.all()]
        finally:
            await db.dispose()

    return asyncio.run(go())


def until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def metric(url: str, metric_name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(f"{metric_name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_failing_feature_keeps_the_message_and_apologises_in_the_persons_language(
    telegram: FakeTelegram,
    settings: Settings,
    db_url: str,
    start_server: Callable[..., LiveServer],
) -> None:
    runtime = Runtime(settings)
    runtime.engine.add_policy("boom", _boom, priority=1)
    errors: list[tuple[str, BaseException]] = []
    runtime.engine.error_hooks.append(lambda inbound, e: errors.append((inbound.text, e)))
    server = start_server(settings, runtime=runtime)

    telegram.push_update(tg_message("boom, wo ist mein Paket?", user_id=51, language_code="de"))
    [apology] = telegram.wait_for(
        "sendMessage", 1, timeout=20, where=lambda c: str(c.params["chat_id"]) == "51"
    )
    assert apology.params["text"].startswith("Entschuldige, bei uns ist etwas schiefgelaufen")
    assert ("in", "boom, wo ist mein Paket?") in stored(db_url, "telegram")
    assert [(t, type(e)) for t, e in errors] == [("boom, wo ist mein Paket?", ZeroDivisionError)]
    assert metric(server.url, "concierge_turn_errors_total", channel="telegram") == 1

    # the person's next message is answered as usual
    telegram.push_update(tg_message("Do you ship to Austria?", user_id=51, language_code="de"))
    calls = telegram.wait_for(
        "sendMessage", 2, timeout=20, where=lambda c: str(c.params["chat_id"]) == "51"
    )
    assert len(calls) >= 2
    assert "schiefgelaufen" not in calls[1].params["text"]
    assert [d for d, _ in stored(db_url, "telegram")].count("in") == 2
    assert metric(server.url, "concierge_turn_errors_total", channel="telegram") == 1


def test_a_slack_event_caught_by_a_crash_is_processed_when_slack_sends_it_again(
    slack: FakeSlack, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    """``concierge run`` is killed (kill -9) while an event's turn is under way: Slack got no
    acknowledgement, sends the event again, and the restarted process answers it; a further
    retry, after the event was processed, is dropped."""
    rasa = FakeRasa().start()
    env = {
        "CONCIERGE_DATABASE_URL": db_url,
        "CONCIERGE_CONTENT_DIR": str(REPO),
        "CONCIERGE_MODEL_DIR": str(settings.resolved_model_dir),
        "CONCIERGE_SECRET_KEY": "test-secret",
        "CONCIERGE_SLACK_BOT_TOKEN": "xoxb-test",
        "CONCIERGE_SLACK_SIGNING_SECRET": SECRET,
        "CONCIERGE_SLACK_API_URL": slack.api_url,
        # the NLU is a Rasa server that can be told to hang: the turn is caught midway
        "CONCIERGE_NLU_BACKEND": "rasa",
        "CONCIERGE_RASA_URL": rasa.url,
        "CONCIERGE_RASA_TIMEOUT": "60",
        "CONCIERGE_DELIVERY_POLL_INTERVAL": "0.05",
    }
    event = slack_dm("hello there", user="U9", channel="D9")
    try:
        rasa.play("hang", "parse")
        first = ConciergeProcess(env, tmp_path / "run.log").start()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            delivery = pool.submit(send_event, first.url, SECRET, event, event_id="EvCRASH")
            until(lambda: bool(rasa.calls_to("parse", failed=True)))
            first.kill()  # the turn is waiting for the NLU
            try:
                acknowledged = delivery.result(10).status_code == 200
            except httpx.HTTPError:
                acknowledged = False
        assert not acknowledged, "Slack was told the event arrived, then it was lost"
        assert not [t for d, t in stored(db_url, "slack") if d == "in"]

        second = ConciergeProcess(env, tmp_path / "run.log").start()
        try:
            again = send_event(second.url, SECRET, event, event_id="EvCRASH", retry=1)
            assert again.status_code == 200
            assert [t for d, t in stored(db_url, "slack") if d == "in"] == ["hello there"]
            replies = slack.wait_for(
                "chat.postMessage", 1, timeout=20, where=lambda c: c.params["channel"] == "D9"
            )
            assert replies, "the event sent again was not answered"
            answered = len([d for d, _ in stored(db_url, "slack") if d == "out"])
            # once processed, a retry is dropped: nothing more is stored (the acknowledgement
            # comes after the processing, so this is seen at once)
            late = send_event(second.url, SECRET, event, event_id="EvCRASH", retry=2)
            assert late.status_code == 200
            assert [d for d, _ in stored(db_url, "slack")].count("in") == 1
            assert len([d for d, _ in stored(db_url, "slack") if d == "out"]) == answered
        finally:
            second.stop()
    finally:
        rasa.stop()


def health(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{url}/healthz").json()
    return body


def test_telegram_polling_survives_conflict_and_rate_limit_and_reports_its_state(
    telegram: FakeTelegram, settings: Settings, start_server: Callable[..., LiveServer]
) -> None:
    """A 409 (another instance polls, as in a deploy) and a 429 on getUpdates: polling waits
    and goes on; /healthz says degraded with the reason meanwhile, then ok; /metrics too."""
    telegram.play("409", "getUpdates", times=1000)
    server = start_server(settings)
    until(lambda: health(server.url)["status"] == "degraded")
    state = health(server.url)
    assert "Conflict" in state["degraded"]["telegram"], state
    assert metric(server.url, "concierge_connection_up", name="telegram") == 0
    telegram.clear_scenarios()
    telegram.play("429", "getUpdates", times=1, retry_after=1)
    telegram.push_update(tg_message("Do you ship to Austria?", user_id=61))
    assert telegram.wait_for(
        "sendMessage", 1, timeout=30, where=lambda c: str(c.params["chat_id"]) == "61"
    ), "polling did not come back"
    assert health(server.url)["status"] == "ok"
    assert metric(server.url, "concierge_connection_up", name="telegram") == 1
    assert metric(server.url, "concierge_connection_failures_total", name="telegram") >= 2


def test_slack_socket_mode_away_at_start_is_waited_out_and_reported(
    slack: FakeSlack,
    db_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> None:
    """Slack refuses the first Socket Mode connections: the product starts anyway, says
    degraded (with the reason) until the connection is up, then answers envelopes."""
    slack.play("500", "apps.connections.open", times=1)
    settings = warm_nlu(
        make_settings(
            db_url,
            slack_bot_token="xoxb-test",
            slack_app_token="xapp-test",
            slack_api_url=slack.api_url,
        )
    )
    server = start_server(settings)
    state = health(server.url)
    assert state["status"] == "degraded" and "socket mode" in state["degraded"]["slack_socket"]
    until(lambda: "500" in health(server.url).get("degraded", {}).get("slack_socket", ""))
    until(lambda: health(server.url)["status"] == "ok", timeout=30)
    assert slack.calls_to("socket.connect")
    assert metric(server.url, "concierge_connection_up", name="slack_socket") == 1
    slack.push_envelope(event_callback(slack_dm("Do you ship to Austria?", channel="D30")))
    assert slack.wait_for("chat.postMessage", 1, where=lambda c: c.params.get("channel") == "D30")


def test_telegram_update_that_could_not_be_stored_is_fetched_again(
    telegram: FakeTelegram,
    pg_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> None:
    """The database is away when an update arrives by polling: the offset stays before it,
    Telegram hands it over again, and once the database is back it is answered."""
    import asyncpg

    from tests.conftest import PG_ADMIN_URL

    name = pg_url.rsplit("/", 1)[1]
    settings = warm_nlu(
        make_settings(pg_url, telegram_token=telegram.token, telegram_api_url=telegram.url)
    )
    start_server(settings)

    async def admin(*sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            for q in sql:
                await conn.execute(q)
        finally:
            await conn.close()

    asyncio.run(
        admin(
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
        )
    )
    try:
        telegram.push_update(tg_message("Do you ship to Austria?", user_id=71))
        # handed over, not stored, asked for again
        until(lambda: len(telegram.calls_to("getUpdates")) >= 2, timeout=30)
    finally:
        asyncio.run(admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    assert telegram.wait_for(
        "sendMessage", 1, timeout=30, where=lambda c: str(c.params["chat_id"]) == "71"
    ), "the update was lost"
