"""Telegram end to end: the real python-telegram-bot client against a fake Bot API server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bot.settings import Settings
from tests.auxil.build_messages import tg_callback, tg_message
from tests.auxil.warm import warm_nlu
from tests.conftest import LiveServer
from tests.fakes.telegram_api import FakeTelegram


@pytest.fixture
def start_server(start_server: Callable[..., LiveServer]) -> Callable[..., LiveServer]:
    """The live server, its NLU model trained before the server's start deadline runs."""

    def start(settings: Settings, **kwargs: Any) -> LiveServer:
        return start_server(warm_nlu(settings), **kwargs)

    return start


@pytest.fixture
def polling(
    telegram: FakeTelegram,
    db_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> LiveServer:
    return start_server(
        make_settings(
            db_url,
            telegram_token=telegram.token,
            telegram_api_url=telegram.url,
        )
    )


def test_german_question_gets_german_answer(telegram: FakeTelegram, polling: LiveServer) -> None:
    telegram.push_update(
        tg_message("Wie lange habe ich Garantie auf die Maschine?", language_code="de", user_id=7)
    )
    sent = telegram.wait_for("sendMessage", 1, where=lambda c: str(c.params["chat_id"]) == "7")
    assert sent, "no answer sent"
    assert "Garantie" in str(sent[0].params["text"])
    assert telegram.calls_to("sendChatAction")  # typing while working
    assert telegram.calls_to("deleteWebhook")  # polling mode clears a webhook


def test_button_press_is_answered_and_takes_the_engine_path(
    telegram: FakeTelegram, polling: LiveServer
) -> None:
    telegram.push_update(tg_message("How long is the warranty?", user_id=8))
    calls = telegram.wait_for("sendMessage", 2, where=lambda c: str(c.params["chat_id"]) == "8")
    keyboard = calls[-1].params["reply_markup"]["inline_keyboard"]
    yes = keyboard[0][0]
    telegram.push_update(tg_callback(yes["callback_data"], user_id=8))
    assert telegram.wait_for("answerCallbackQuery", 1)
    texts = [
        str(c.params["text"])
        for c in telegram.wait_for(
            "sendMessage", 3, where=lambda c: str(c.params["chat_id"]) == "8"
        )
    ]
    assert texts[-1] == "Thanks for letting me know!"


@pytest.mark.parametrize("scenario", ["429", "500", "reset"])
def test_outage_delays_but_every_message_arrives_once(
    telegram: FakeTelegram, polling: LiveServer, scenario: str
) -> None:
    telegram.play(scenario, "sendMessage", times=2, retry_after=1)
    for i, q in enumerate(["hello", "Do you ship to Norway?", "Can I pay with PayPal?"]):
        telegram.push_update(tg_message(q, user_id=100 + i))
    for i in range(3):
        telegram.wait_for(
            "sendMessage",
            1,
            timeout=20,
            where=lambda c, i=i: str(c.params["chat_id"]) == str(100 + i),
        )
    polling.wait_drained()  # every send and retry done: a wrongly repeated send shows now
    for i in range(3):
        texts = telegram.sent_texts(100 + i)
        assert len(texts) == len(set(texts)), f"chat {100 + i} got a message twice: {texts}"
    # the failed calls were really made, then retried
    assert len(telegram.calls_to("sendMessage", failed=True)) == 2


def test_long_button_payload_works_after_a_restart(
    telegram: FakeTelegram,
    db_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> None:
    """A payload over Telegram's 64 bytes of callback data travels as a reference to the sent
    message; pressing the button after a restart still gives the engine the whole payload."""
    settings = make_settings(
        db_url,
        telegram_token=telegram.token,
        telegram_api_url=telegram.url,
    )
    first = start_server(settings)
    payload = '/feedback_helpful{"topic": "faq/warranty", "asked_from": "a long campaign name"}'
    assert len(payload.encode()) > 64

    async def enqueue() -> None:
        from bot.clock import utcnow
        from bot.engine.writer import Reply, write
        from bot.storage.db import Database
        from bot.types import Button, Outbound

        db = Database(db_url)
        async with db.session() as s:
            await write(
                s,
                [
                    Reply(
                        channel="telegram",
                        address="31",
                        message=Outbound("Was this helpful?", buttons=(Button("Yes", payload),)),
                        idempotency_key="long-button",
                    )
                ],
                now=utcnow(),
            )
        await db.dispose()

    asyncio.run(enqueue())
    [sent] = telegram.wait_for("sendMessage", 1, where=lambda c: str(c.params["chat_id"]) == "31")
    keyboard = sent.params["reply_markup"]["inline_keyboard"]
    data = keyboard[0][0]["callback_data"]
    assert len(data.encode()) <= 64
    first.stop()

    start_server(settings)  # a new process: nothing of the first one's memory is left
    [message_id] = telegram.message_ids(31)
    telegram.push_update(tg_callback(data, user_id=31, message_id=message_id, keyboard=keyboard))
    assert telegram.wait_for("answerCallbackQuery", 1)
    answers = telegram.wait_for("sendMessage", 2, where=lambda c: str(c.params["chat_id"]) == "31")
    assert answers[-1].params["text"] == "Thanks for letting me know!"


def test_blocked_user_is_marked_unreachable(telegram: FakeTelegram, polling: LiveServer) -> None:
    telegram.play("403", "sendMessage", times=5)
    telegram.push_update(tg_message("hello", user_id=55))
    import asyncio

    from sqlalchemy import select

    from bot.storage.db import Database
    from bot.storage.models import Identity, OutboxMessage

    async def check() -> tuple[bool, list[str]]:
        db = Database(polling.app.state.runtime.settings.database_url)
        for _ in range(100):
            async with db.session() as s:
                ident = (
                    await s.execute(select(Identity).where(Identity.external_id == "55"))
                ).scalar_one_or_none()
                rows = (await s.execute(select(OutboxMessage.status))).scalars().all()
            if ident is not None and not ident.reachable:
                break
            await asyncio.sleep(0.1)
        await db.dispose()
        assert ident is not None
        return ident.reachable, list(rows)

    reachable, statuses = asyncio.run(check())
    assert reachable is False
    assert "dead" in statuses


def test_webhook_checks_the_secret_token(
    telegram: FakeTelegram,
    sqlite_url: str,
    make_settings: Callable[..., Settings],
    start_server: Callable[..., LiveServer],
) -> None:
    srv = start_server(
        make_settings(
            sqlite_url,
            telegram_token=telegram.token,
            telegram_api_url=telegram.url,
            telegram_mode="webhook",
            telegram_webhook_secret="s3cret",
            public_url="https://shop.example",
        )
    )
    assert telegram.webhook_url == "https://shop.example/telegram/webhook"
    update = {"update_id": 1, **tg_message("hello", user_id=9)}
    bad = httpx.post(
        f"{srv.url}/telegram/webhook",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": "nope"},
    )
    assert bad.status_code == 403
    assert httpx.post(f"{srv.url}/telegram/webhook", json=update).status_code == 403
    ok = httpx.post(
        f"{srv.url}/telegram/webhook",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"},
    )
    assert ok.status_code == 200
    assert telegram.wait_for("sendMessage", 1, where=lambda c: str(c.params["chat_id"]) == "9")
    # the same update delivered again (Telegram retries) is answered once
    httpx.post(
        f"{srv.url}/telegram/webhook",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret"},
    )
    srv.wait_drained()
    assert len(telegram.sent_texts(9)) == 1
